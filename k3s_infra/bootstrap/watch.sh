# k3s-infra node script, part 3 of 4: the servers' watch (k3s-infra-watch.service, started
# by the boot once the server is up; `<script> watch`). Server groups use EC2 health, not
# the load balancer's: a signal that every server fails at once (a K3s restart everywhere,
# one bad security-group rule) must not replace every etcd member. Instead each server
# judges itself: it asks to be replaced only when its own K3s has been down for
# UNHEALTHY_AFTER seconds and replacing it cannot take quorum (replacement_is_safe). It
# also acts on its own termination (the snapshot hook holds it in Terminating:Wait).

# The server groups: "<desired servers> <instances> <instances not InService and Healthy>
# <whether this instance is one of them>".
server_groups() {
  retry "$AWS_ATTEMPTS" awscli autoscaling describe-auto-scaling-groups \
    --filters "Name=tag:$CLUSTER_TAG,Values=$CLUSTER_NAME" "Name=tag:$ROLE_TAG,Values=$SERVER_ROLES" \
    --query "[sum(AutoScalingGroups[].DesiredCapacity), length(AutoScalingGroups[].Instances[]), length(AutoScalingGroups[].Instances[?LifecycleState!='InService' || HealthStatus!='Healthy'][]), contains(AutoScalingGroups[].Instances[].InstanceId, '$instance_id')]"
}

# replacement_is_safe: replacing this server (its K3s is down) removes one etcd member and
# never quorum: the server groups are settled (as many instances as desired, all InService
# and Healthy: no other replacement under way), a majority of all servers is healthy in the
# API target group without this one, and this is the first (lowest instance ID) of the
# servers not healthy, so two broken servers are replaced one after the other. A lone
# server never asks: its disk holds data newer than its snapshots.
replacement_is_safe() {
  local groups desired instances unsettled member targets healthy others first quorum
  groups=$(server_groups) || return 1
  read -r desired instances unsettled member <<<"$groups"
  targets=$(api_targets) || return 1
  read -r healthy others first <<<"$targets"
  quorum=$((desired / 2 + 1))
  if [ "$member" != True ] || [ "$desired" -lt 1 ]; then
    # Nothing known about the groups (tags, permissions): never a reason to be replaced.
    log "K3s is down, but this instance is in none of the server groups found"
  elif [ "$desired" -eq 1 ]; then
    # Its etcd on disk is newer than any snapshot, and a stopped K3s cannot take one.
    log "K3s is down on the cluster's only server: not asking for a replacement that would lose its data"
  elif [ "$unsettled" -ne 0 ] || [ "$instances" -ne "$desired" ]; then
    log "K3s is down, but the server groups are changing ($instances of $desired servers, $unsettled unsettled)"
  elif [ "$healthy" -lt "$quorum" ]; then
    log "K3s is down, but only $healthy other server(s) of $desired are healthy: replacing this one could take quorum"
  elif [ "$first" != "$instance_id" ]; then
    log "K3s is down, and $first (not healthy either) is replaced first"
  else
    return 0
  fi
  return 1
}

# request_pending: a restore request that has not expired is waiting (`k3s-infra restore`
# terminates this server to act on it: its snapshot must not be replaced by ours).
request_pending() {
  local value status=0
  value=$(read_parameter "$RESTORE_PARAMETER") || status=$?
  if [ "$status" -eq 3 ]; then return 1; fi
  if [ "$status" -ne 0 ]; then return 0; fi # unreadable: do not risk overwriting it
  [[ $value =~ expires=([0-9]+)$ ]] && [ "$(now)" -lt "${BASH_REMATCH[1]}" ]
}

# lone_server: the server groups want one server in all (the first server alone). Counted
# from the groups, not the target group: the replacement registers there while this one
# is still terminating.
lone_server() {
  local groups desired
  groups=$(server_groups) || return 1
  read -r desired _ <<<"$groups"
  [ "$desired" -eq 1 ]
}

# before_termination: the group terminates this server (a roll, a resize, a replacement).
# A lone first server takes an on-demand snapshot to S3, stops K3s whatever came of it (so
# nothing is written after it, and no agent keeps writing to a cluster about to vanish),
# and names the snapshot in a restore request its replacement acts on; a pending request
# (a restore under way) is left as it is. Then the termination goes on.
before_termination() {
  local group snapshot prefix
  if [ "$ROLE" = server-init ] && lone_server; then
    prefix=$PRE_TERMINATION_SNAPSHOT-$instance_id
    if request_pending; then
      log "a restore request is pending: no snapshot of this cluster replaces it"
    elif bounded "$SNAPSHOT_TIMEOUT" "$k3s_bin" etcd-snapshot save --name "$prefix" "${etcd_s3[@]}" \
      --etcd-s3-region="$region" && snapshot=$(newest_snapshot "$prefix-") && [ -n "$snapshot" ]; then
      systemctl stop "$service" || log "cannot stop $service"
      if retry "$AWS_ATTEMPTS" awscli ssm put-parameter --name "$RESTORE_PARAMETER" --type String --overwrite \
        --value "snapshot=$snapshot replaces=$instance_id expires=$(($(now) + REQUEST_LIFETIME))" >/dev/null; then
        log "snapshot $snapshot taken; the replacement restores it"
      else
        log "cannot write the restore request for $snapshot: the replacement restores the newest snapshot"
      fi
    else
      log "no on-demand snapshot: the replacement restores the newest scheduled one"
    fi
    systemctl stop "$service" || log "cannot stop $service"
  fi
  group=$(retry "$AWS_ATTEMPTS" awscli autoscaling describe-auto-scaling-instances --instance-ids "$instance_id" \
    --query 'AutoScalingInstances[0].AutoScalingGroupName') || group=
  # Text output prints a missing value as None.
  if [ -z "$group" ] || [ "$group" = None ] || ! retry "$AWS_ATTEMPTS" awscli autoscaling complete-lifecycle-action \
    --lifecycle-hook-name "$SNAPSHOT_HOOK" --auto-scaling-group-name "$group" --instance-id "$instance_id" \
    --lifecycle-action-result CONTINUE >/dev/null; then
    log "cannot complete $SNAPSHOT_HOOK: the termination goes on after its timeout"
  fi
}

# watch: every WATCH_INTERVAL seconds, the target lifecycle state (the group sets
# "Terminated" when it starts terminating this instance:
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html)
# and whether this server's K3s answers; K3S_INFRA_WATCH_ROUNDS bounds it for tests. Once
# the termination is handled it only waits for the end (exiting would have systemd start it
# again, and it would snapshot twice).
watch() {
  local token state down_since=0 rounds=${K3S_INFRA_WATCH_ROUNDS:-0} interval=${K3S_INFRA_WATCH_INTERVAL:-$WATCH_INTERVAL}
  local terminating=false
  trap 'rm -rf "$work"' EXIT
  identify
  log "watching $instance_id"
  while [ "${K3S_INFRA_WATCH_ROUNDS:-0}" -eq 0 ] || [ "$rounds" -gt 0 ]; do
    rounds=$((rounds - 1))
    if [ "$terminating" = true ]; then
      sleep "$interval"
      continue
    fi
    if token=$(imds_new_token) && state=$(imds_get "$token" autoscaling/target-lifecycle-state) &&
      [ "$state" = Terminated ]; then
      log "this instance is being terminated"
      before_termination
      terminating=true
    elif k3s_answers; then
      down_since=0
      if [ "$ROLE" = server-init ]; then issuer_current; pod_roles_current || log "cannot check the controllers' pods"; fi
    elif [ "$down_since" -eq 0 ]; then
      down_since=$(now)
    elif [ $(($(now) - down_since)) -ge "${K3S_INFRA_UNHEALTHY_AFTER:-$UNHEALTHY_AFTER}" ] && replacement_is_safe; then
      log "K3s has been down since $(date -d "@$down_since" -u +%H:%M:%S): asking for a replacement"
      report_unhealthy
      down_since=0
    fi
    sleep "$interval"
  done
}
