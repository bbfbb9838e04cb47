#!/bin/bash
# k3s-infra node script, part 1 of 4 (bootstrap.BOOT_PARTS: boot_lib.sh, first_server.sh,
# watch.sh, boot.sh; nodes get them as one script): settings, logging, bounded retries,
# the CloudFormation signal, instance metadata and the AWS reads the other parts share.
# Test hooks: K3S_INFRA_ROOT prefixes every path, K3S_INFRA_IMDS_URL replaces the metadata
# endpoint, K3S_INFRA_RETRY_BASE/_MAX, _JOIN/_PROBE/_READY/_TOKEN/_FACT_ATTEMPTS,
# K3S_INFRA_START_TIMEOUT, K3S_INFRA_BOOT_DEADLINE and K3S_INFRA_WATCH_* shorten the waits.
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
: "${ROLE:?}" "${K3S_SERVICE:?}" "${API_HOST:?}" "${K3S_VERSION:?}"
: "${TOKEN_SECRET:?}" "${TOKEN_FILE:?}" "${SIGNAL_STACK:?}" "${SIGNAL_RESOURCE:?}"
# Every wait is bounded (defaults.BOOT_WAITS), and the boot as a whole by BOOT_DEADLINE,
# shorter than the group's signal timeout; the test hooks shorten them.
retry_base=${K3S_INFRA_RETRY_BASE:-$RETRY_BASE}
retry_max=${K3S_INFRA_RETRY_MAX:-$RETRY_MAX}
join_attempts=${K3S_INFRA_JOIN_ATTEMPTS:-$JOIN_ATTEMPTS}
probe_attempts=${K3S_INFRA_PROBE_ATTEMPTS:-$PROBE_ATTEMPTS}
ready_attempts=${K3S_INFRA_READY_ATTEMPTS:-$READY_ATTEMPTS}
start_timeout=${K3S_INFRA_START_TIMEOUT:-$START_TIMEOUT}
token_attempts=${K3S_INFRA_TOKEN_ATTEMPTS:-$TOKEN_ATTEMPTS}
fact_attempts=${K3S_INFRA_FACT_ATTEMPTS:-$FACT_ATTEMPTS}
# No wait may start past this moment (epoch seconds); main sets it, the watch has none.
deadline=
k3s_dir=$root${K3S_CONFIG%/*}
# K3s's server data: the manifests it applies, and both tokens in the secure format once
# it runs (k3s-io/k3s:pkg/server/server.go, printTokens: <data-dir>/server/token, and
# agent-token when an agent token is configured).
k3s_tokens=$root${K3S_SERVER_DIR:-}
manifests=$k3s_tokens/manifests
api_url=https://$API_HOST:$API_PORT
local_api=https://127.0.0.1:$API_PORT
kubeconfig_file=$k3s_dir/k3s.yaml
k3s_bin=$root$K3S_BINARY
service=$K3S_SERVICE
# A private folder for every temporary file (downloads, the kubeconfig copy, the error
# output of the last attempt of a retry -u command): the EXIT trap removes it on every path.
work=$(mktemp -d)
errors=$work/errors

# Set by identify, read by the EXIT trap to signal: they must outlive every function.
instance_id=
region=
zone=
# Signal at most once, even when the EXIT trap follows a signal.
signalled=false

log() { printf 'k3s-infra-boot: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s; }

# Seconds left before the boot's deadline (a day when there is none).
remaining() {
  if [ -z "$deadline" ]; then echo 86400; else echo $((deadline - $(now))); fi
}

# bounded SECONDS COMMAND...: COMMAND under timeout, never past the deadline.
bounded() {
  local limit=$1 left
  shift
  left=$(remaining)
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$limit" -le 0 ]; then log "the boot deadline has passed"; return 124; fi
  timeout "$limit" "$@"
}

# Sleep before attempt $1 + 1: exponential from retry_base, capped at retry_max, jittered;
# 1 without sleeping when the sleep would end past the deadline.
backoff() {
  local delay=$retry_base step=1
  while [ "$step" -lt "$1" ] && [ "$delay" -lt "$retry_max" ]; do
    delay=$((delay * 2))
    step=$((step + 1))
  done
  if [ "$delay" -gt "$retry_max" ]; then delay=$retry_max; fi
  if [ "$delay" -gt 1 ]; then delay=$((delay / 2 + RANDOM % (delay / 2 + 1))); fi
  if [ "$delay" -ge "$(remaining)" ]; then log "the boot deadline leaves no time for another attempt"; return 1; fi
  sleep "$delay"
}

# retry [-u PATTERN] ATTEMPTS COMMAND...: run COMMAND until it succeeds, at most ATTEMPTS
# times and never past the deadline, backing off between; 1 once all failed. With -u its
# errors go to $errors and one matching PATTERN (grep) is final: 3 at once.
retry() {
  local stop='' n=0 attempts
  if [ "$1" = -u ]; then stop=$2; shift 2; fi
  attempts=$1
  shift
  until if [ -z "$stop" ]; then "$@"; else "$@" 2>"$errors"; fi; do
    if [ -n "$stop" ] && grep -q "$stop" "$errors"; then return 3; fi
    n=$((n + 1))
    if [ "$n" -ge "$attempts" ]; then return 1; fi
    backoff "$n" || return 1
  done
}

# signal STATUS: tell CloudFormation how this instance's boot ended, at most once, with
# its own short allowance past the deadline. After the stack settled (a scale-out, a
# health replacement) nobody waits for the signal and SignalResource answers
# ValidationError: logged, never a boot failure.
signal() {
  if [ "$signalled" = true ]; then return 0; fi
  signalled=true
  deadline=$(($(now) + SIGNAL_ALLOWANCE))
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

# report_unhealthy: ask the group to replace this instance. ShouldRespectGracePeriod
# defaults to true, which would ignore the report during the (boot-long) grace period:
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceHealth.html
report_unhealthy() {
  aws --region "$region" autoscaling set-instance-health --instance-id "$instance_id" \
    --health-status Unhealthy --no-should-respect-grace-period || log "cannot report $instance_id unhealthy"
}

# Every AWS CLI call is bounded: the CLI v2 waits 60 s to connect and 60 s per read by
# default (https://awscli.amazonaws.com/v2/documentation/api/latest/reference/index.html,
# --cli-connect-timeout, --cli-read-timeout), which retries would multiply past the deadline.
aws() { command aws --cli-connect-timeout 5 --cli-read-timeout 30 "$@"; }
awscli() { aws --region "$region" --output text "$@"; }

# Instance metadata, IMDSv2 only: a session token, then imds_get TOKEN KEY.
imds_new_token() {
  curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 600' "$imds/latest/api/token"
}
imds_get() {
  curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $1" "$imds/latest/meta-data/$2"
}

# identify: this instance from IMDS (sets instance_id, zone and region).
identify() {
  local token
  token=$(retry "$AWS_ATTEMPTS" imds_new_token) || die "no IMDSv2 token from $imds"
  instance_id=$(retry "$FETCH_ATTEMPTS" imds_get "$token" instance-id) || die "no instance-id from IMDS"
  zone=$(retry "$FETCH_ATTEMPTS" imds_get "$token" placement/availability-zone) || die "no availability zone from IMDS"
  region=$(retry "$FETCH_ATTEMPTS" imds_get "$token" placement/region) || die "no region from IMDS"
}

# read_parameter NAME: prints its value; 0 found, 3 absent (ParameterNotFound, the
# only answer that means absent), 1 any other error after retries.
read_parameter() {
  local status=0
  retry -u '(ParameterNotFound)' "$AWS_ATTEMPTS" awscli ssm get-parameter --name "$1" --query Parameter.Value || status=$?
  if [ "$status" -eq 1 ]; then log "$(cat "$errors")"; fi
  return "$status"
}

api_answers() { curl -ksf --max-time 5 "$api_url/ping" >/dev/null; }
k3s_answers() { curl -ksf --max-time 5 "$local_api/ping" >/dev/null; }

# The API target group: "<healthy targets other than this one> <other servers registered>
# <the lowest ID of the targets not healthy, None if none>". A healthy target means a
# cluster serves even when this node cannot reach it; no other registered server means
# this one is the cluster's only server (known at run time, so growing from one server to
# three never changes this server's user data).
api_targets() {
  retry "$FETCH_ATTEMPTS" awscli elbv2 describe-target-health --target-group-arn "$TARGET_GROUP" \
    --query "[length(TargetHealthDescriptions[?TargetHealth.State=='healthy' && Target.Id!='$instance_id']), length(TargetHealthDescriptions[?Target.Id!='$instance_id']), sort(TargetHealthDescriptions[?TargetHealth.State!='healthy'].Target.Id)[0]]"
}

# The etcd-s3 flags of every K3s snapshot command (https://docs.k3s.io/cli/etcd-snapshot).
etcd_s3=()
if [ -n "${SNAPSHOT_BUCKET:-}" ]; then
  etcd_s3=(--etcd-s3 --etcd-s3-bucket="$SNAPSHOT_BUCKET" --etcd-s3-folder="$SNAPSHOT_FOLDER")
fi

# newest_snapshot [PREFIX]: the newest etcd snapshot K3s uploaded whose name starts with
# PREFIX (by LastModified; K3s keeps its own metadata under <folder>/.metadata/, not a
# snapshot), as the name --cluster-reset-restore-path takes; nothing when there is none.
# JSON output: the CLI runs --query once over every page of 1,000 keys merged; text output
# would run it per page, so "newest" would be the newest of the last page
# (https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-output-format.html).
newest_snapshot() {
  local key
  key=$(retry "$FETCH_ATTEMPTS" aws --region "$region" --output json s3api list-objects-v2 \
    --bucket "$SNAPSHOT_BUCKET" --prefix "$SNAPSHOT_FOLDER/${1:-}" \
    --query "sort_by(Contents[?!contains(Key, '/.metadata/')] || \`[]\`, &LastModified)[-1].Key") || return 1
  key=${key#\"} key=${key%\"}
  if [ "$key" != null ]; then printf '%s\n' "${key##*/}"; fi
}
