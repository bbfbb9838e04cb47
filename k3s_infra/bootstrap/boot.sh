# k3s-infra node script, part 4 of 4: the boot, run once per instance by cloud-init
# (runcmd), after it wrote boot.env, the role's K3s config, the rejoin drop-in (first
# server) and the servers' manifests (bootstrap/__init__.py lists them). It reads main (at
# the bottom) top-down: discover the instance, decide init / join / restore (first server),
# fetch the tokens, install, start and wait, account for etcd's members (joining servers),
# publish (a new or restored cluster), mark the instance ready, signal CloudFormation.
# Every path that gives up signals FAILURE and reports the instance Unhealthy, and no wait
# starts past BOOT_DEADLINE, shorter than the group's signal timeout.
# Joiners use only secure tokens, K10<sha256 of the cluster CA>::<credentials>, which
# pin the CA (https://docs.k3s.io/cli/token, "Token Format").

# Every exit that is not a success (die, a set -e failure) signals FAILURE (first: nothing
# after it may outlast the signal timeout) and asks the group to replace this instance; a
# server stops K3s (no half-started cluster for others to join), and one that joined etcd
# leaves it (leave_cluster).
on_exit() {
  local status=$?
  trap - EXIT
  if [ "$status" -ne 0 ] && [ "$signalled" = false ]; then
    log "boot gave up (exit $status)"
    signal FAILURE
    if [ "$ROLE" != agent ]; then timeout 60 systemctl stop "$service" || log "cannot stop $service"; fi
    if [ "$joined" = true ]; then leave_cluster; fi
    if [ -n "$instance_id" ] && [ -n "$region" ]; then report_unhealthy; fi
  fi
  rm -rf "$work"
  exit "$status"
}

# Set once this server's K3s joined etcd: giving up after that removes its member.
joined=false

# discover: this instance from IMDS, and what only it knows as a K3s config drop-in.
discover() {
  identify
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

# install_bundle (servers): the rest of this server's boot (bootstrap/bundle.py) from its SSM
# parameters (joined in order), extracted only if its SHA-256 is the one this launch template
# pins; then its scripts are sourced (the first server's logic, the watch).
install_bundle() {
  local value="" name actual
  for name in $BUNDLE_PARAMETERS; do  # SSM names: no spaces, no glob characters
    value+=$(read_parameter "$name") || die "cannot read the server bundle part $name"
  done
  base64 -d <<<"$value" >"$work/bundle.tgz" || die "the server bundle is not base64"
  actual=$(sha256sum "$work/bundle.tgz")
  actual=${actual%% *}
  if [ "$actual" != "$BUNDLE_SHA256" ]; then
    die "the server bundle's sha256 is $actual, not $BUNDLE_SHA256: refusing it"
  fi
  tar -xzf "$work/bundle.tgz" -C "$root/" --no-same-owner || die "cannot extract the server bundle"
  source_bundle
  log "server bundle $BUNDLE_SHA256 installed"
}
source_bundle() {
  local part
  # shellcheck source=/dev/null
  . "$root$BUNDLE_DIR/bundle.env"
  for part in "$root$BUNDLE_DIR"/*.sh; do
    # shellcheck source=/dev/null
    . "$part"
  done
}

# Node packages the enabled add-ons need (Longhorn: the iSCSI and NFS clients).
install_packages() {
  local packages services unit
  [ -n "${PACKAGES:-}" ] || return 0
  read -ra packages <<<"$PACKAGES"
  read -ra services <<<"${SERVICES:-}"
  log "installing ${packages[*]}"
  retry "$FETCH_ATTEMPTS" bounded 600 dnf install -y "${packages[@]}" || die "cannot install ${packages[*]}"
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



# prepare_join: a first server that joins takes the rejoin drop-in; every joiner waits
# (bounded) for the API.
prepare_join() {
  if [ "$ROLE" = server-init ]; then
    log "joining the existing cluster through $api_url"
    cp "$root$REJOIN_CONFIG" "$k3s_dir/config.yaml.d/10-rejoin.yaml"
  fi
  retry "$join_attempts" api_answers || die "the API at $api_url never answered"
}

# bind_facts [NAME...]: the facts this role reads at boot (FACTS: NAME=<SSM parameter>
# each; the NAMEs given, else all), written by stacks no node stack waits for (the API load
# balancers' DNS names once they exist, the OIDC issuer's URL once CloudFront deployed it:
# stacks/api_endpoint.py, identity.py). Each still marked in the files cloud-init wrote is
# waited for (bounded) and put in place of its marker, and this shell reads them again. Only
# an https URL or a DNS name is taken, so no value can add a line or a key to the K3s config.
bind_facts() {
  local facts fact name parameter value host files
  read -ra facts <<<"${FACTS:-}"
  files=("$root/etc/k3s-infra/boot.env" "$root$K3S_CONFIG")
  if [ -n "${REJOIN_CONFIG:-}" ]; then files+=("$root$REJOIN_CONFIG"); fi
  for fact in "${facts[@]}"; do
    name=${fact%%=*} parameter=${fact#*=}
    if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
    grep -qF "@@K3S_INFRA_FACT_${name}@@" "${files[@]}" || continue  # bound already (decide_mode)
    log "waiting for $parameter"
    value=$(retry "$fact_attempts" read_parameter "$parameter") || die "$parameter never appeared"
    # A URL fact (NAME_URL) is https://<DNS name>, every other fact a bare DNS name.
    host=$value
    if [[ $name == *_URL ]]; then host=${value#https://} && [ "$host" != "$value" ] || host=; fi
    [[ $host =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] ||
      die "$parameter holds no DNS name or https URL: refusing it"
    sed -i "s#@@K3S_INFRA_FACT_${name}@@#${value}#g" "${files[@]}" || die "cannot write $parameter's value"
  done
  # shellcheck source=/dev/null
  . "$root/etc/k3s-infra/boot.env"
  api_url=https://$API_HOST:$API_PORT
}

# fetch_secret ARN PATH: the secret into a root-only file; it never passes through stdout.
fetch_secret() {
  mkdir -p "$(dirname "$root$2")"
  awscli secretsmanager get-secret-value --secret-id "$1" --query SecretString >"$root$2"
}

# secure_token PATH: the file holds a secure token (read by grep, never an argument). K3s reads
# the file whole (k3s-io/k3s pkg/token/read.go): only a first line that starts K10<CA hash>:: pins
# the CA, whatever lines follow; the C locale keeps [0-9a-f] to lower-case hex.
secure_token() { head -n 1 "$root$1" | LC_ALL=C grep -Eq '^K10[0-9a-f]{64}::.'; }

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

# install_k3s: from the artifact bucket, never the internet (deploy/artifacts.py staged them),
# the release's binary and airgap images of this node's architecture (k3s-io/k3s install.sh,
# setup_verify_arch), each by the SHA-256 its node stack pins; nothing is installed before both
# match. K3s imports the images when it starts (https://docs.k3s.io/installation/airgap,
# "Manually Deploy Images Method"): its own images need no registry.
install_k3s() {
  local arch name binary images link staging
  log "installing K3s $K3S_VERSION"
  case $(uname -m) in
    x86_64 | amd64) arch=amd64 name=k3s ;;
    aarch64 | arm64) arch=arm64 name=k3s-arm64 ;;
    *) die "unsupported architecture $(uname -m)" ;;
  esac
  # Downloaded beside the images' folder, on disk: /tmp is a tmpfs on Amazon Linux 2023 and the
  # images are a few hundred MB (https://docs.aws.amazon.com/linux/al2023/ug/tmp.html).
  staging=$root$K3S_IMAGES_DIR.download
  mkdir -p "$staging" && chmod 0700 "$staging"
  binary=$staging/$name images=$staging/k3s-airgap-images-$arch.tar.zst
  fetch_artifact "$K3S_BINARY_SHA256" "$name" "$binary"
  fetch_artifact "$K3S_IMAGES_SHA256" "${images##*/}" "$images"
  mkdir -p "$(dirname "$k3s_bin")" "$root$K3S_IMAGES_DIR"
  install -m 0755 "$binary" "$k3s_bin"
  for link in kubectl crictl ctr; do ln -sf k3s "$(dirname "$k3s_bin")/$link"; done
  chmod 0600 "$images"
  mv "$images" "$root$K3S_IMAGES_DIR/${images##*/}"
  rm -rf "$staging"
  log "K3s $K3S_VERSION installed, its images in $K3S_IMAGES_DIR"
}

# fetch_artifact SHA256 NAME FILE: <bucket>/<prefix>/SHA256/NAME (naming.k3s_artifact_key) into
# FILE (S3 gateway endpoint), refused unless it hashes to SHA256. timeout (bounded) runs the aws
# program, not boot_lib.sh's aws function: the CLI's bounds are spelled here.
fetch_artifact() {
  local expected=$1 key=$ARTIFACT_PREFIX/$1/$2 actual
  retry "$FETCH_ATTEMPTS" bounded 600 aws --cli-connect-timeout 5 --cli-read-timeout 30 --region "$region" \
    s3api get-object --bucket "$ARTIFACT_BUCKET" --key "$key" "$3" >/dev/null ||
    die "cannot read $2 of K3s $K3S_VERSION from s3://$ARTIFACT_BUCKET/$key"
  actual=$(sha256sum "$3")
  actual=${actual%% *}
  log "K3s $K3S_VERSION $2 sha256: expected $expected, actual $actual"
  if [ "$actual" != "$expected" ]; then
    rm -f "$3"
    die "checksum mismatch: refusing $2 of K3s $K3S_VERSION"
  fi
}

# kube ARGS...: K3s's kubectl, bounded (it has no request timeout of its own).
kube() { bounded 30 "$k3s_bin" kubectl --request-timeout=20s "$@"; }

# Up and joined: a server's API is ready and its Node registered; an agent's kubelet is
# healthy and its Node exists, read with the kubelet's own credentials (the node authorizer
# lets a kubelet get its own Node: https://kubernetes.io/docs/reference/access-authn-authz/node/).
server_ready() {
  kube --kubeconfig "$kubeconfig_file" get --raw=/readyz >/dev/null &&
    kube --kubeconfig "$kubeconfig_file" get node "$instance_id" >/dev/null
}
kubelet_healthy() { curl -fsS --max-time 5 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" >/dev/null; }
agent_ready() {
  kubelet_healthy && kube --kubeconfig "$root$KUBELET_KUBECONFIG" get node "$instance_id" >/dev/null
}

# start_k3s MODE SNAPSHOT: restore first if MODE says so, start with a bounded wait, and
# wait (bounded) until K3s is up and joined.
start_k3s() {
  case $1 in restore | requested) restore_snapshot "$2" ;; esac
  systemctl daemon-reload
  systemctl enable "$service"
  if [ "$ROLE" != agent ] && [ "$1" = join ]; then joined=true; fi
  bounded "$start_timeout" systemctl start "$service" || die "$service did not start within ${start_timeout}s"
  if [ "$ROLE" = agent ]; then
    retry "$ready_attempts" agent_ready || die "the kubelet never became healthy, or its Node never appeared"
  else
    retry "$ready_attempts" server_ready || die "K3s never became ready on this server"
  fi
}

# etcd_members: "<member name> <true if a learner>" per line, from K3s's own member list
# (/db/info, served to servers that authenticate as "server" with the token's password,
# as a joining server does: k3s-io/k3s pkg/server/router.go, pkg/etcd/etcd.go infoHandler).
# The password travels in a curl config file, never on a command line.
etcd_members() {
  local token member name learner
  token=$(cat "$root$TOKEN_FILE")
  printf 'user = "server:%s"\n' "${token##*:}" >"$work/curlrc"
  curl -ksf --max-time 10 -K "$work/curlrc" "$local_api/db/info" >"$work/members" || return 1
  grep -o '{[^{}]*}' "$work/members" | while read -r member; do
    name=$(sed -n 's/.*"name":"\([^"]*\)".*/\1/p' <<<"$member")
    case $member in *'"isLearner":true'*) learner=true ;; *) learner=false ;; esac
    # A member added moments ago by another joiner has no name yet (etcd.go join).
    if [ -n "$name" ]; then printf '%s %s\n' "$name" "$learner"; fi
  done
}

# members_settled: this server is a voting member and every member's instance exists. A
# member whose instance is gone has its Node deleted, which makes K3s's leader remove the
# member (k3s-io/k3s pkg/etcd/member_controller.go: onRemove -> RemovePeer); K3s names a
# member <node name>-<8 hex> (pkg/etcd/etcd.go setName) and a node by its instance ID.
members_settled() {
  local members ids alive name learner id voter=false gone=0
  members=$(etcd_members) || return 1
  ids=$(while read -r name learner; do printf '%s,' "${name%-*}"; done <<<"$members")
  alive=$(awscli ec2 describe-instances --filters "Name=instance-id,Values=${ids%,}" \
    "Name=instance-state-name,Values=pending,running,stopping,stopped" \
    --query 'Reservations[].Instances[].InstanceId') || return 1
  while read -r name learner; do
    id=${name%-*}
    if [ "$id" = "$instance_id" ]; then
      if [ "$learner" = false ]; then voter=true; else log "etcd member $name is still a learner"; fi
    elif grep -qw -- "$id" <<<"$alive"; then
      continue
    elif kube --kubeconfig "$kubeconfig_file" get node "$id" >/dev/null 2>&1; then
      log "etcd member $name belongs to $id, which no longer runs: deleting its Node"
      kube --kubeconfig "$kubeconfig_file" delete node "$id" >/dev/null || true
      gone=$((gone + 1))
    else
      # A dead voter counts against quorum: joining beside it would leave etcd one failure
      # from losing it.
      log "etcd member $name belongs to $id, which no longer runs, and has no Node for K3s to remove it by: remove it with etcdctl member remove"
      gone=$((gone + 1))
    fi
  done <<<"$members"
  if [ "$voter" = false ]; then log "this server is not yet a voting etcd member"; fi
  [ "$voter" = true ] && [ "$gone" -eq 0 ] && servers_healthy
}

# servers_healthy: every other server registered with the API target group is healthy.
# Signalling SUCCESS lets a roll terminate the next member: never while another is down.
servers_healthy() {
  local targets healthy others
  targets=$(api_targets) || return 1
  read -r healthy others _ <<<"$targets"
  if [ "$healthy" -ne "$others" ]; then log "$healthy of $others other servers healthy: waiting for all"; return 1; fi
}

# leave_cluster: a server that joined etcd and then gives up removes its own member: its
# K3s stopped (by on_exit: its kubelet cannot register the Node again), its Node deleted
# through the API endpoint, so K3s's leader removes the member; a failed boot leaves no dead
# voter behind (a member without a Node stops the next joiner: members_settled).
leave_cluster() {
  log "leaving etcd: deleting Node $instance_id"
  timeout 30 "$k3s_bin" kubectl --request-timeout=20s --kubeconfig "$kubeconfig_file" --server "$api_url" \
    delete node "$instance_id" --ignore-not-found >/dev/null || log "cannot delete Node $instance_id"
}

# start_watch: the server's watch (watch.sh) runs from now on, as a service.
start_watch() {
  printf '%s\n' '[Unit]' 'Description=k3s-infra server watch: own health, own termination' \
    "After=$service.service" '[Service]' "ExecStart=$BOOT_SCRIPT watch" 'Restart=always' 'RestartSec=30' \
    '[Install]' 'WantedBy=multi-user.target' >"$root/etc/systemd/system/k3s-infra-watch.service"
  systemctl daemon-reload
  systemctl enable --now k3s-infra-watch || die "cannot start the server watch"
}

# mark_ready: the instance tags itself (its role may tag only itself, only with this tag);
# `deploy` waits for the tag on every new instance, resizes included.
mark_ready() {
  retry "$AWS_ATTEMPTS" awscli ec2 create-tags --resources "$instance_id" --tags "Key=$READY_TAG,Value=$READY_VALUE" ||
    die "cannot tag $instance_id ready"
}

# The phases in order; a failure anywhere exits through on_exit (FAILURE signalled).
main() {
  local decision mode snapshot
  deadline=$(($(now) + ${K3S_INFRA_BOOT_DEADLINE:-$BOOT_DEADLINE}))
  trap on_exit EXIT
  discover
  if [ "$ROLE" != agent ]; then install_bundle; install_addons; fi
  install_packages
  write_addon_values
  # Everything up to here overlaps the stacks still being made (the load balancers, the OIDC
  # issuer's distribution); the facts they write are read only where they are used.
  install_k3s
  if [ "$ROLE" = server-init ]; then decision=$(decide_mode); else decision="join "; fi
  mode=${decision%% *} snapshot=${decision#* }
  case $mode in
    init) log "no cluster yet: initialising embedded etcd" ;;
    join)
      bind_facts API_DNS_NAME PUBLIC_API_DNS_NAME
      prepare_join
      ;;
    restore | requested) log "restoring the cluster from snapshot $snapshot" ;;
    *) die "unknown boot mode '$mode'" ;;
  esac
  fetch_tokens "$mode"
  bind_facts
  start_k3s "$mode" "$snapshot"
  if [ "$ROLE" != agent ] && [ "$mode" = join ]; then
    retry "$ready_attempts" members_settled || die "etcd's members did not settle"
  fi
  # Before the marker: a first server that cannot serve pod identities leaves no cluster behind.
  if [ "$ROLE" = server-init ]; then publish_issuer; webhook_tls; fi
  if [ "$mode" != join ]; then publish "$mode"; fi
  if [ "$ROLE" != agent ]; then start_watch; fi
  mark_ready
  signal SUCCESS
  log "done"
}

case ${1:-boot} in
  watch) source_bundle && watch ;;
  *) main ;;
esac
