#!/bin/bash
# k3s-infra node boot, run once per instance by cloud-init (runcmd), after it wrote
# boot.env, the role's K3s config, the rejoin drop-in (first server) and the servers'
# manifests (bootstrap/__init__.py lists them). It reads main (at the bottom) top-down:
# discover the instance, decide init / join / restore (first server), fetch the tokens,
# install, start and wait, publish (a new or restored cluster), signal CloudFormation.
# Every path that gives up signals FAILURE and reports the instance Unhealthy.
# Joiners use only secure tokens, K10<sha256 of the cluster CA>::<credentials>, which
# pin the CA (https://docs.k3s.io/cli/token, "Token Format").
# Test hooks: K3S_INFRA_ROOT prefixes every path, K3S_INFRA_IMDS_URL replaces the metadata
# endpoint, K3S_INFRA_RETRY_BASE/_MAX, _JOIN/_PROBE/_READY/_TOKEN_ATTEMPTS and
# K3S_INFRA_START_TIMEOUT shorten the waits.
set -euo pipefail
# Command substitutions fail like any other command: outside POSIX mode bash clears -e in
# their subshells unless inherit_errexit is set (Bash Reference Manual, Command Substitution, shopt).
shopt -s inherit_errexit
umask 077

root=${K3S_INFRA_ROOT:-}
imds=${K3S_INFRA_IMDS_URL:-http://169.254.169.254}

# Every setting, port, path and bound comes from boot.env (bootstrap: the role's settings
# and boot_constants, each from the project's one home of that fact); it is the one path
# the script knows. Unset constants fail at first use (set -u).
# shellcheck source=/dev/null
. "$root/etc/k3s-infra/boot.env"
: "${ROLE:?}" "${K3S_SERVICE:?}" "${API_HOST:?}" "${K3S_VERSION:?}" "${RELEASE_URL:?}" "${CHECKSUM_URL:?}"
: "${TOKEN_SECRET:?}" "${TOKEN_FILE:?}" "${SIGNAL_STACK:?}" "${SIGNAL_RESOURCE:?}"
# Every wait is bounded and all of them together stay inside the group's signal timeout
# (defaults.BOOT_WAITS); the test hooks shorten them.
retry_base=${K3S_INFRA_RETRY_BASE:-$RETRY_BASE}
retry_max=${K3S_INFRA_RETRY_MAX:-$RETRY_MAX}
join_attempts=${K3S_INFRA_JOIN_ATTEMPTS:-$JOIN_ATTEMPTS}
probe_attempts=${K3S_INFRA_PROBE_ATTEMPTS:-$PROBE_ATTEMPTS}
ready_attempts=${K3S_INFRA_READY_ATTEMPTS:-$READY_ATTEMPTS}
start_timeout=${K3S_INFRA_START_TIMEOUT:-$START_TIMEOUT}
token_attempts=${K3S_INFRA_TOKEN_ATTEMPTS:-$TOKEN_ATTEMPTS}
k3s_dir=$root${K3S_CONFIG%/*}
# K3s's server data: the manifests it applies, and both tokens in the secure format once
# it runs (k3s-io/k3s:pkg/server/server.go, printTokens: <data-dir>/server/token, and
# agent-token when an agent token is configured).
k3s_tokens=$root$K3S_SERVER_DIR
manifests=$k3s_tokens/manifests
api_url=https://$API_HOST:$API_PORT
kubeconfig_file=$k3s_dir/k3s.yaml
k3s_bin=$root$K3S_BINARY
service=$K3S_SERVICE
# A private folder for every temporary file (downloads, the kubeconfig copy, the error
# output of the last attempt of a retry -u command): the EXIT trap removes it on every path.
work=$(mktemp -d)
errors=$work/errors

# Set by discover, read by the EXIT trap to signal: they must outlive every function.
instance_id=
region=
# Signal at most once, even when the EXIT trap follows a signal.
signalled=false

log() { printf 'k3s-infra-boot: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Sleep before attempt $1 + 1: exponential from retry_base, capped at retry_max, jittered.
backoff() {
  local delay=$retry_base step=1
  while [ "$step" -lt "$1" ] && [ "$delay" -lt "$retry_max" ]; do
    delay=$((delay * 2))
    step=$((step + 1))
  done
  if [ "$delay" -gt "$retry_max" ]; then delay=$retry_max; fi
  if [ "$delay" -gt 1 ]; then delay=$((delay / 2 + RANDOM % (delay / 2 + 1))); fi
  sleep "$delay"
}

# retry [-u PATTERN] ATTEMPTS COMMAND...: run COMMAND until it succeeds, at most ATTEMPTS
# times, backing off between; 1 once all failed. With -u its errors go to $errors and
# one matching PATTERN (grep) is final: 3 at once.
retry() {
  local stop='' n=0 attempts
  if [ "$1" = -u ]; then stop=$2; shift 2; fi
  attempts=$1
  shift
  until if [ -z "$stop" ]; then "$@"; else "$@" 2>"$errors"; fi; do
    if [ -n "$stop" ] && grep -q "$stop" "$errors"; then return 3; fi
    n=$((n + 1))
    if [ "$n" -ge "$attempts" ]; then return 1; fi
    backoff "$n"
  done
}

# signal STATUS: tell CloudFormation how this instance's boot ended, at most once.
# After the stack settled (a scale-out, a health replacement) nobody waits for the
# signal and SignalResource answers ValidationError: logged, never a boot failure.
signal() {
  if [ "$signalled" = true ]; then return 0; fi
  signalled=true
  if [ -z "$region" ]; then
    log "cannot signal $1: no region from IMDS"
    return 0
  fi
  # retry: 0 signalled, 1 attempts spent, 3 a ValidationError ("... cannot be signaled":
  # the stack settled; anything else is a wrong stack or resource).
  if retry -u '(ValidationError)' "$FETCH_ATTEMPTS" aws --region "$region" cloudformation signal-resource --stack-name "$SIGNAL_STACK" \
    --logical-resource-id "$SIGNAL_RESOURCE" --unique-id "$instance_id" --status "$1"; then
    log "signalled $1 for $instance_id to $SIGNAL_STACK/$SIGNAL_RESOURCE"
  elif [ $? -eq 1 ]; then
    log "cannot signal $1: $(cat "$errors")"
  elif grep -q 'cannot be signaled' "$errors"; then
    log "signal $1 not expected by $SIGNAL_STACK (it is not waiting)"
  else
    log "signal $1 rejected by CloudFormation: $(cat "$errors")"
  fi
}

# Every exit that is not a success (die, a set -e failure) signals FAILURE and asks the
# group to replace this instance. ShouldRespectGracePeriod defaults to true, which would
# ignore the report during the (boot-long) grace period:
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceHealth.html
on_exit() {
  local status=$?
  trap - EXIT
  if [ "$status" -ne 0 ] && [ "$signalled" = false ]; then
    log "boot gave up (exit $status)"
    signal FAILURE
    if [ -n "$instance_id" ] && [ -n "$region" ]; then
      aws --region "$region" autoscaling set-instance-health --instance-id "$instance_id" \
        --health-status Unhealthy --no-should-respect-grace-period ||
        log "cannot report $instance_id unhealthy"
    fi
  fi
  rm -rf "$work"
  exit "$status"
}
trap on_exit EXIT

awscli() { aws --region "$region" --output text "$@"; }

# Instance metadata, IMDSv2 only: a session token, then imds_get TOKEN KEY.
imds_new_token() {
  curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 600' "$imds/latest/api/token"
}
imds_get() {
  curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $1" "$imds/latest/meta-data/$2"
}

# discover: this instance from IMDS (sets instance_id and region), and what only it
# knows as a K3s config drop-in.
discover() {
  local token zone
  token=$(retry "$AWS_ATTEMPTS" imds_new_token) || die "no IMDSv2 token from $imds"
  instance_id=$(retry "$FETCH_ATTEMPTS" imds_get "$token" instance-id) || die "no instance-id from IMDS"
  zone=$(retry "$FETCH_ATTEMPTS" imds_get "$token" placement/availability-zone) || die "no availability zone from IMDS"
  region=$(retry "$FETCH_ATTEMPTS" imds_get "$token" placement/region) || die "no region from IMDS"
  log "$ROLE node $instance_id in $zone"
  mkdir -p "$k3s_dir/config.yaml.d"
  cat >"$k3s_dir/config.yaml.d/50-instance.yaml" <<EOF
node-name: $instance_id
kubelet-arg+:
  - provider-id=aws:///$zone/$instance_id
node-label+:
  - topology.kubernetes.io/region=$region
  - topology.kubernetes.io/zone=$zone
EOF
}

# Node packages the enabled add-ons need (Longhorn: the iSCSI and NFS clients).
install_packages() {
  local packages services unit
  [ -n "${PACKAGES:-}" ] || return 0
  read -ra packages <<<"$PACKAGES"
  read -ra services <<<"${SERVICES:-}"
  log "installing ${packages[*]}"
  retry "$FETCH_ATTEMPTS" dnf install -y "${packages[@]}" || die "cannot install ${packages[*]}"
  for unit in "${services[@]}"; do
    systemctl enable --now "$unit" || die "cannot start $unit"
  done
}

# values_secret NAME KEY VALUE: one chart value as a Secret a HelmChart's valuesSecrets
# names. printf is a builtin: the value is never on a command line or in the log.
# The value is a YAML double-quoted scalar on one line: \ and " escaped, and line breaks
# and tabs as \n \r \t (YAML 1.2 spec, 5.7 "Escaped Characters").
values_secret() {
  local value=${3//\\/\\\\}
  value=${value//\"/\\\"}
  value=${value//$'\n'/\\n}
  value=${value//$'\r'/\\r}
  value=${value//$'\t'/\\t}
  printf '%s\n' "apiVersion: v1" "kind: Secret" "metadata:" "  name: $1" "  namespace: kube-system" \
    "type: Opaque" "stringData:" "  values.yaml: |" "    $2: \"$value\"" >"$manifests/$1.yaml"
}
# secret_value NAME KEY ARN: the same, with the value read from Secrets Manager.
secret_value() {
  local secret
  secret=$(awscli secretsmanager get-secret-value --secret-id "$3" --query SecretString) || return 1
  values_secret "$1" "$2" "$secret"
}
# The add-ons' values known only at boot, for the helm controller.
write_addon_values() {
  local entries entry name key arn value
  [ -n "${ADDON_SECRETS:-}${ADDON_VALUES:-}" ] || return 0
  mkdir -p "$manifests"
  read -ra entries <<<"${ADDON_SECRETS:-}"
  for entry in "${entries[@]}"; do  # name=key=arn
    IFS='=' read -r name key arn <<<"$entry"
    retry "$AWS_ATTEMPTS" secret_value "$name" "$key" "$arn" || die "cannot read the add-on secret for $name"
  done
  read -ra entries <<<"${ADDON_VALUES:-}"
  for entry in "${entries[@]}"; do  # name=key=value
    IFS='=' read -r name key value <<<"$entry"
    values_secret "$name" "$key" "$value"
  done
  log "add-on values written for the helm controller"
}

# read_parameter NAME: prints its value; 0 found, 3 absent (ParameterNotFound, the
# only answer that means absent), 1 any other error after retries.
read_parameter() {
  local status=0
  retry -u '(ParameterNotFound)' "$AWS_ATTEMPTS" awscli ssm get-parameter --name "$1" --query Parameter.Value || status=$?
  if [ "$status" -eq 1 ]; then log "$(cat "$errors")"; fi
  return "$status"
}

# marker_is_ours VALUE: the marker names this cluster's first-server stack ("initialised":
# written by releases before the marker named its stack, taken as this cluster's).
marker_is_ours() { [ "$1" = initialised ] || [ "$1" = "$CLUSTER_STACK_ID" ]; }

api_answers() { curl -ksf --max-time 5 "$api_url/ping" >/dev/null; }

# The API target group: "<healthy targets> <other servers registered>". A healthy target
# means a cluster serves even when this node cannot reach it; no other registered server
# means this one is the cluster's only server (known at boot, so growing from one server
# to three never changes this server's user data).
api_targets() {
  retry "$FETCH_ATTEMPTS" awscli elbv2 describe-target-health --target-group-arn "$TARGET_GROUP" \
    --query "[length(TargetHealthDescriptions[?TargetHealth.State=='healthy']), length(TargetHealthDescriptions[?Target.Id!='$instance_id'])]"
}

# The newest etcd snapshot K3s uploaded (by LastModified; K3s keeps its own metadata
# under <folder>/.metadata/, not a snapshot), as the name --cluster-reset-restore-path takes.
# JSON output: the CLI runs --query once over every page of 1,000 keys merged; text output
# would run it per page, so "newest" would be the newest of the last page
# (https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-output-format.html).
newest_snapshot() {
  local key
  key=$(retry "$FETCH_ATTEMPTS" aws --region "$region" --output json s3api list-objects-v2 \
    --bucket "$SNAPSHOT_BUCKET" --prefix "$SNAPSHOT_FOLDER/" \
    --query "sort_by(Contents[?!contains(Key, '/.metadata/')] || \`[]\`, &LastModified)[-1].Key") || return 1
  key=${key#\"} key=${key%\"}
  if [ "$key" != null ]; then printf '%s\n' "${key##*/}"; fi
}

# decide_mode: prints "MODE SNAPSHOT", MODE one of join, init, restore (a lone server healed
# from the newest snapshot) or requested (the snapshot a restore request names). All but
# the first server join. Never two clusters: "init" only when the marker is absent AND
# no API answers AND the API target group has no healthy target.
decide_mode() {
  local mode=join snapshot status=0 marker targets healthy others
  if [ "$ROLE" != server-init ]; then echo "join "; return; fi
  snapshot=$(read_parameter "$RESTORE_PARAMETER") || status=$?
  case $status in
    0) echo "requested $snapshot"; return ;;
    3) ;;
    *) die "cannot read the restore request $RESTORE_PARAMETER" ;;
  esac
  status=0
  marker=$(read_parameter "$STATE_PARAMETER") || status=$?
  case $status in
    0) ;;
    3) marker=absent ;;
    *) die "cannot read the cluster-state marker $STATE_PARAMETER" ;;
  esac
  if [ "$marker" != absent ] && ! marker_is_ours "$marker"; then
    log "the marker names $marker, not this cluster: left by a stack deleted since"
    marker=absent
  fi
  log "cluster-state marker $STATE_PARAMETER: $marker"
  if retry "$probe_attempts" api_answers; then
    log "an API answers at $api_url"
  elif ! targets=$(api_targets); then
    die "cannot read the health of the API target group"
  elif read -r healthy others <<<"$targets" && [ "$healthy" -gt 0 ]; then
    log "$healthy healthy API target(s): a cluster is up"
  elif [ "$marker" = absent ]; then
    mode=init
  elif [ "$others" -eq 0 ]; then
    # A lone server was replaced: its data lives only in the snapshots.
    snapshot=$(newest_snapshot) || die "cannot list the etcd snapshots"
    if [ -z "$snapshot" ]; then
      die "the cluster was initialised but no etcd snapshot exists in s3://$SNAPSHOT_BUCKET/$SNAPSHOT_FOLDER: cannot heal"
    fi
    mode=restore
  fi
  echo "$mode $snapshot"
}

# prepare_join: a first server that joins takes the rejoin drop-in; every joiner waits
# (bounded) for the API.
prepare_join() {
  if [ "$ROLE" = server-init ]; then
    log "joining the existing cluster through $api_url"
    cp "$root$REJOIN_CONFIG" "$k3s_dir/config.yaml.d/10-rejoin.yaml"
  fi
  retry "$join_attempts" api_answers || die "the API at $api_url never answered"
}

# fetch_secret ARN PATH: the secret into a root-only file; it never passes through stdout.
fetch_secret() {
  mkdir -p "$(dirname "$root$2")"
  awscli secretsmanager get-secret-value --secret-id "$1" --query SecretString >"$root$2"
}

# secure_token PATH: the file holds a secure token (read by grep, never an argument).
secure_token() { grep -Eq '^K10[0-9a-f]{64}::.' "$root$1"; }

# fetch_secure_token ARN PATH: the secret, only if it holds a secure token.
fetch_secure_token() {
  fetch_secret "$1" "$2" || return 1
  if secure_token "$2"; then return 0; fi
  rm -f "$root$2"
  log "$1 holds no secure token yet: waiting for the first server to publish it"
  return 1
}

# fetch_tokens MODE: the token this node starts with. A joiner takes only a secure one and
# waits (bounded) for the first server to publish it. A new cluster starts from the password
# alone (K3s takes a secure token only with a CA that exists); a restore keeps the token as
# it is, secure or not: the CA comes back with the snapshot, encrypted with that token
# (https://docs.k3s.io/datastore/backup-restore: restore with the same token).
fetch_tokens() {
  if [ "$1" = join ]; then
    retry "$token_attempts" fetch_secure_token "$TOKEN_SECRET" "$TOKEN_FILE" ||
      die "refusing to join with a short token: $TOKEN_SECRET never held a secure one (K10<CA hash>::...)"
  else
    retry "$AWS_ATTEMPTS" fetch_secret "$TOKEN_SECRET" "$TOKEN_FILE" || die "cannot read the token secret"
    if [ "$1" = init ]; then sed -i -E 's/^K10[0-9a-f]{64}::[^:]*://' "$root$TOKEN_FILE"; fi
  fi
  if [ -n "${AGENT_TOKEN_SECRET:-}" ]; then
    retry "$AWS_ATTEMPTS" fetch_secret "$AGENT_TOKEN_SECRET" "$AGENT_TOKEN_FILE" || die "cannot read the agent token secret"
  fi
}

# The pinned release binary, run only once its SHA-256 matches: pinned in config (boot.env)
# or published with the release (sha256sum-<arch>.txt), always from the official release
# even when the binary comes from a mirror (as k3s-io/k3s:install.sh, download_hash/verify).
install_k3s() {
  local arch name version expected actual sums binary link
  log "installing K3s $K3S_VERSION"
  case $(uname -m) in
    x86_64 | amd64) arch=amd64 name=k3s expected=${K3S_SHA256_AMD64:-} ;;
    aarch64 | arm64) arch=arm64 name=k3s-arm64 expected=${K3S_SHA256_ARM64:-} ;;
    *) die "unsupported architecture $(uname -m)" ;;
  esac
  version=${K3S_VERSION//+/%2B}
  if [ -z "$expected" ]; then
    sums=$(mktemp -p "$work")
    retry "$FETCH_ATTEMPTS" curl -fsSL --max-time 60 -o "$sums" "$CHECKSUM_URL/$version/sha256sum-$arch.txt" ||
      die "cannot download the published checksums of K3s $K3S_VERSION"
    expected=$(awk -v n="$name" '$2 == n { print $1 }' "$sums")
    rm -f "$sums"
    [ -n "$expected" ] || die "no checksum for $name in sha256sum-$arch.txt of K3s $K3S_VERSION"
  fi
  binary=$(mktemp -p "$work")
  retry "$FETCH_ATTEMPTS" curl -fsSL --max-time 300 -o "$binary" "$RELEASE_URL/$version/$name" ||
    die "cannot download K3s $K3S_VERSION from $RELEASE_URL"
  actual=$(sha256sum "$binary")
  actual=${actual%% *}
  log "K3s $K3S_VERSION $name sha256: expected $expected, actual $actual"
  if [ "$actual" != "$expected" ]; then
    rm -f "$binary"
    die "checksum mismatch: refusing to install K3s $K3S_VERSION"
  fi
  mkdir -p "$(dirname "$k3s_bin")"
  install -m 0755 "$binary" "$k3s_bin"
  rm -f "$binary"
  for link in kubectl crictl ctr; do ln -sf k3s "$(dirname "$k3s_bin")/$link"; done
}

# restore_snapshot NAME: reset this server's etcd to an S3 snapshot, before K3s first starts.
# K3s restores from S3 with --cluster-reset --cluster-reset-restore-path=<snapshot name>
# plus the etcd-s3 settings, and the same token, then exits; the service starts afterwards
# (https://docs.k3s.io/datastore/backup-restore, https://docs.k3s.io/cli/etcd-snapshot).
restore_snapshot() {
  log "restoring etcd snapshot $1 from s3://$SNAPSHOT_BUCKET/$SNAPSHOT_FOLDER"
  timeout "$start_timeout" "$k3s_bin" server --cluster-reset --cluster-reset-restore-path="$1" \
    --etcd-s3 --etcd-s3-bucket="$SNAPSHOT_BUCKET" --etcd-s3-folder="$SNAPSHOT_FOLDER" \
    --etcd-s3-region="$region" || die "restoring snapshot $1 failed"
}

# Up and joined: a server's API is ready and its Node registered; an agent's kubelet is healthy.
server_ready() {
  "$k3s_bin" kubectl --kubeconfig "$kubeconfig_file" get --raw=/readyz >/dev/null &&
    "$k3s_bin" kubectl --kubeconfig "$kubeconfig_file" get node "$instance_id" >/dev/null
}
kubelet_healthy() { curl -fsS --max-time 5 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" >/dev/null; }

# start_k3s MODE SNAPSHOT: restore first if MODE says so, start with a bounded wait, and
# wait (bounded) until K3s is up and joined.
start_k3s() {
  case $1 in restore | requested) restore_snapshot "$2" ;; esac
  systemctl daemon-reload
  systemctl enable "$service"
  timeout "$start_timeout" systemctl start "$service" || die "$service did not start within ${start_timeout}s"
  if [ "$ROLE" = agent ]; then
    retry "$ready_attempts" kubelet_healthy || die "the kubelet never became healthy"
  else
    retry "$ready_attempts" server_ready || die "K3s never became ready on this server"
  fi
}

# publish_token ARN NAME: the secure token K3s wrote, into its secret, as a file:// argument.
publish_token() {
  local file=$k3s_tokens/$2
  grep -Eq '^K10[0-9a-f]{64}::.' "$file" || die "K3s wrote no secure $2"
  retry "$AWS_ATTEMPTS" awscli secretsmanager put-secret-value --secret-id "$1" --secret-string "file://$file" \
    >/dev/null || die "cannot publish the secure $2"
  log "published the secure $2 to $1"
}

# The kubeconfig K3s wrote, with the API endpoint as server and the cluster's name for
# its cluster, user and context (K3s names all three 'default').
publish_kubeconfig() {
  local kubeconfig
  kubeconfig=$(mktemp -p "$work")
  # People use the published kubeconfig: the public API name when there is one.
  sed -e "s#^\( *server: \)https://.*#\1https://${KUBECONFIG_HOST:-$API_HOST}:$API_PORT#" \
    -e "s#^\( *-\{0,1\} *\)\(name\|cluster\|user\|current-context\): default\$#\1\2: $CLUSTER_NAME#" \
    "$kubeconfig_file" >"$kubeconfig"
  retry "$AWS_ATTEMPTS" awscli secretsmanager put-secret-value --secret-id "$KUBECONFIG_SECRET" \
    --secret-string "file://$kubeconfig" >/dev/null || die "cannot publish the kubeconfig"
  rm -f "$kubeconfig"
}

# The marker names this cluster's first-server stack: created once (no --overwrite:
# create-if-absent); one already there is this cluster's, or one a deleted stack left,
# which is replaced.
ensure_marker() {
  local status=0 found
  retry -u '(ParameterAlreadyExists)' "$AWS_ATTEMPTS" awscli ssm put-parameter --name "$STATE_PARAMETER" \
    --type String --value "$CLUSTER_STACK_ID" >/dev/null || status=$?
  case $status in
    0) return ;;
    3) ;;
    *) die "cannot write the cluster-state marker: $(cat "$errors")" ;;
  esac
  found=$(read_parameter "$STATE_PARAMETER") || die "cannot read the cluster-state marker"
  if ! marker_is_ours "$found"; then
    retry "$AWS_ATTEMPTS" awscli ssm put-parameter --name "$STATE_PARAMETER" --type String \
      --value "$CLUSTER_STACK_ID" --overwrite >/dev/null || die "cannot replace the marker of a deleted stack"
  fi
}

# publish MODE (a new or restored cluster, once ready): the secure tokens, the kubeconfig,
# the marker; a restore request honoured is deleted.
publish() {
  publish_token "$TOKEN_SECRET" token
  publish_token "$AGENT_TOKEN_SECRET" agent-token
  publish_kubeconfig
  ensure_marker
  if [ "$1" = requested ]; then
    retry "$AWS_ATTEMPTS" awscli ssm delete-parameter --name "$RESTORE_PARAMETER" >/dev/null ||
      die "cannot delete the restore request $RESTORE_PARAMETER"
  fi
  if [ "$1" = init ]; then log "cluster initialised; kubeconfig published"; else
    log "cluster restored; kubeconfig published"; fi
}

# The phases in order; a failure anywhere exits through on_exit (FAILURE signalled).
main() {
  local decision mode snapshot
  discover
  install_packages
  write_addon_values
  decision=$(decide_mode)
  mode=${decision%% *} snapshot=${decision#* }
  case $mode in
    init) log "no cluster yet: initialising embedded etcd" ;;
    join) prepare_join ;;
    restore | requested) log "restoring the cluster from snapshot $snapshot" ;;
    *) die "unknown boot mode '$mode'" ;;
  esac
  fetch_tokens "$mode"
  install_k3s
  start_k3s "$mode" "$snapshot"
  if [ "$mode" != join ]; then publish "$mode"; fi
  signal SUCCESS
  log "done"
}

main "$@"
