#!/bin/bash
# k3s-infra node boot, run once per instance by cloud-init (runcmd).
#
# cloud-init has already written, from the launch template's user data:
#   /etc/k3s-infra/boot.env        settings of this node role (no secrets)
#   /etc/rancher/k3s/config.yaml   the K3s configuration of this role
#   /etc/k3s-infra/rejoin.yaml     (first server only) the settings that make it join instead
#   .../server/manifests/          (servers) HelmCharts of the cloud controller and add-ons
# This script adds what only the instance knows, fetches the token with the
# instance role, installs the add-ons' node packages, writes the add-on values
# known only at boot (generated passwords, the drain queue URL) as Secrets for
# the HelmCharts, installs the pinned K3s and, on the first server, publishes
# the kubeconfig and marks the cluster initialised.
#
# Test hooks: K3S_INFRA_ROOT prefixes every path, K3S_INFRA_IMDS_URL replaces
# the metadata endpoint, K3S_INFRA_RETRY_BASE/_MAX (seconds) and
# K3S_INFRA_JOIN_ATTEMPTS bound the retries.
set -euo pipefail
umask 077

root=${K3S_INFRA_ROOT:-}
imds=${K3S_INFRA_IMDS_URL:-http://169.254.169.254}
retry_base=${K3S_INFRA_RETRY_BASE:-5}
retry_max=${K3S_INFRA_RETRY_MAX:-60}
join_attempts=${K3S_INFRA_JOIN_ATTEMPTS:-120}

log() { printf 'k3s-infra-boot: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=/dev/null
. "$root/etc/k3s-infra/boot.env"
: "${ROLE:?}" "${API_HOST:?}" "${K3S_VERSION:?}" "${INSTALLER_URL:?}" "${TOKEN_SECRET:?}" "${TOKEN_FILE:?}"
k3s_dir=$root/etc/rancher/k3s
manifests=$root/var/lib/rancher/k3s/server/manifests
api_url=https://$API_HOST:6443

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

# retry ATTEMPTS COMMAND...: run COMMAND until it succeeds (0 attempts: forever).
retry() {
  local attempts=$1 n=0
  shift
  until "$@"; do
    n=$((n + 1))
    if [ "$attempts" -gt 0 ] && [ "$n" -ge "$attempts" ]; then return 1; fi
    backoff "$n"
  done
}

# Instance metadata, IMDSv2 only.
imds_token=
imds_new_token() {
  imds_token=$(curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 600' \
    "$imds/latest/api/token")
}
imds_get() {
  curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $imds_token" "$imds/latest/meta-data/$1"
}
retry 10 imds_new_token || die "no IMDSv2 token from $imds"
instance_id=$(retry 5 imds_get instance-id) || die "no instance-id from IMDS"
zone=$(retry 5 imds_get placement/availability-zone) || die "no availability zone from IMDS"
region=$(retry 5 imds_get placement/region) || die "no region from IMDS"
log "$ROLE node $instance_id in $zone"

awscli() { aws --region "$region" --output text "$@"; }

# fetch_secret ARN PATH: the secret into a root-only file; it never passes through stdout.
fetch_secret() {
  mkdir -p "$(dirname "$root$2")"
  awscli secretsmanager get-secret-value --secret-id "$1" --query SecretString >"$root$2"
}

api_answers() { curl -ksf --max-time 5 "$api_url/ping" >/dev/null; }

# An existing cluster: the marker written after the first init, or an API answering.
cluster_exists() {
  local state
  state=$(retry 10 awscli ssm get-parameter --name "$STATE_PARAMETER" --query Parameter.Value) ||
    die "cannot read the cluster-state marker $STATE_PARAMETER"
  if [ "$state" = initialised ]; then
    log "marker $STATE_PARAMETER says the cluster is initialised"
    return 0
  fi
  if api_answers; then
    log "an API answers at $api_url"
    return 0
  fi
  return 1
}

install_k3s() {
  local installer status=0
  installer=$(mktemp)
  if curl -fsSL --max-time 120 -o "$installer" "$INSTALLER_URL"; then
    INSTALL_K3S_VERSION=$K3S_VERSION INSTALL_K3S_EXEC=${ROLE%-init} INSTALL_K3S_SKIP_SELINUX_RPM=true \
      sh "$installer" || status=$?
  else
    status=1
  fi
  rm -f "$installer"
  return "$status"
}

mkdir -p "$k3s_dir/config.yaml.d"
cat >"$k3s_dir/config.yaml.d/50-instance.yaml" <<EOF
# Written at boot by k3s-infra: what only this instance knows.
node-name: $instance_id
kubelet-arg+:
  - provider-id=aws:///$zone/$instance_id
node-label+:
  - topology.kubernetes.io/region=$region
  - topology.kubernetes.io/zone=$zone
EOF

retry 10 fetch_secret "$TOKEN_SECRET" "$TOKEN_FILE" || die "cannot read the token secret"
if [ -n "${AGENT_TOKEN_SECRET:-}" ]; then
  retry 10 fetch_secret "$AGENT_TOKEN_SECRET" "$AGENT_TOKEN_FILE" || die "cannot read the agent token secret"
fi

# Node packages the enabled add-ons need (Longhorn: the iSCSI and NFS clients).
if [ -n "${PACKAGES:-}" ]; then
  read -ra packages <<<"$PACKAGES"
  read -ra services <<<"${SERVICES:-}"
  log "installing ${packages[*]}"
  retry 5 dnf install -y "${packages[@]}" || die "cannot install ${packages[*]}"
  for service in "${services[@]}"; do
    systemctl enable --now "$service" || die "cannot start $service"
  done
fi

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
  local value
  value=$(awscli secretsmanager get-secret-value --secret-id "$3" --query SecretString) || return 1
  values_secret "$1" "$2" "$value"
}
if [ -n "${ADDON_SECRETS:-}${ADDON_VALUES:-}" ]; then
  mkdir -p "$manifests"
  read -ra entries <<<"${ADDON_SECRETS:-}"
  for entry in "${entries[@]}"; do  # name=key=arn
    IFS='=' read -r name key arn <<<"$entry"
    retry 10 secret_value "$name" "$key" "$arn" || die "cannot read the add-on secret for $name"
  done
  read -ra entries <<<"${ADDON_VALUES:-}"
  for entry in "${entries[@]}"; do  # name=key=value
    IFS='=' read -r name key value <<<"$entry"
    values_secret "$name" "$key" "$value"
  done
  log "add-on values written for the helm controller"
fi

initialising=false
if [ "$ROLE" = server-init ]; then
  if cluster_exists; then
    log "joining the existing cluster through $api_url"
    cp "$root/etc/k3s-infra/rejoin.yaml" "$k3s_dir/config.yaml.d/10-rejoin.yaml"
  else
    log "no cluster yet: initialising embedded etcd"
    initialising=true
  fi
fi
if [ "$initialising" = false ]; then
  retry "$join_attempts" api_answers || die "the API at $api_url never answered"
fi

log "installing K3s $K3S_VERSION"
retry 5 install_k3s || die "K3s install failed"

if [ "$initialising" = true ]; then
  retry 60 k3s kubectl --kubeconfig "$k3s_dir/k3s.yaml" get --raw=/readyz >/dev/null ||
    die "the new cluster never became ready"
  kubeconfig=$(mktemp)
  sed "s#^\( *server: \)https://.*#\1$api_url#" "$k3s_dir/k3s.yaml" >"$kubeconfig"
  retry 10 awscli secretsmanager put-secret-value --secret-id "$KUBECONFIG_SECRET" \
    --secret-string "file://$kubeconfig" >/dev/null || die "cannot publish the kubeconfig"
  rm -f "$kubeconfig"
  retry 10 awscli ssm put-parameter --name "$STATE_PARAMETER" --value initialised --overwrite >/dev/null ||
    die "cannot write the cluster-state marker"
  log "cluster initialised; kubeconfig published"
fi
log "done"
