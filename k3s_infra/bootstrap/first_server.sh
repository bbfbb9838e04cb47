# k3s-infra node script, part 2 of 4: what only the first server decides and does. Never
# two clusters: it initialises only when nothing says a cluster exists; it restores only a
# lone server's data or a guarded restore request; a new or restored cluster is published
# (secure tokens, kubeconfig, the cluster-state marker).

# marker_is_ours VALUE: the marker names this cluster's first-server stack ("initialised":
# written by releases before the marker named its stack, taken as this cluster's).
marker_is_ours() { [ "$1" = initialised ] || [ "$1" = "$CLUSTER_STACK_ID" ]; }

# replaced_running IDS: how many of these instances (comma-separated) still run. An instance
# its group terminates stays "running" while lifecycle hooks hold it in Terminating:Wait, and
# the group launches its replacement meanwhile
# (https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html).
replaced_running() {
  awscli ec2 describe-instances --filters "Name=instance-id,Values=$1" \
    "Name=instance-state-name,Values=pending,running,stopping,stopped" --query 'length(Reservations[].Instances[])'
}
replaced_gone() {
  local running
  running=$(replaced_running "$1") || return 1
  if [ "$running" -ne 0 ]; then log "waiting for $1 to terminate"; return 1; fi
}

# request_snapshot VALUE: the snapshot a restore request names, if it is for this boot.
# A request ("snapshot=NAME replaces=ID[,ID...] expires=EPOCH", written by `k3s-infra
# restore` or by a lone server before its termination) applies only before it expires and
# once none of the instances it replaces runs: this boot waits (bounded) for them to go.
# decide_mode also wants no API answering, no healthy target and no other server
# registered. 0 it applies (the name printed), 1 it does not (logged), 2 its instances never went.
request_snapshot() {
  local snapshot replaces expires
  if ! [[ $1 =~ ^snapshot=([^\ =]+)\ replaces=(i-[0-9a-f]+(,i-[0-9a-f]+)*)\ expires=([0-9]+)$ ]]; then
    log "ignoring the restore request '$1': not snapshot=... replaces=... expires=... (run k3s-infra restore again)"
    return 1
  fi
  snapshot=${BASH_REMATCH[1]} replaces=${BASH_REMATCH[2]} expires=${BASH_REMATCH[4]}
  if [ "$(now)" -ge "$expires" ]; then
    log "ignoring the restore request for $snapshot: it expired"
    return 1
  fi
  # A request for this boot is never passed over for a guess: no fallback while it waits.
  if ! retry "$join_attempts" replaced_gone "$replaces"; then
    log "the restore request for $snapshot replaces $replaces, which still run(s)"
    return 2
  fi
  printf '%s\n' "$snapshot"
}

# probe_worthwhile MARKER OTHERS: whether, with no healthy target, an API could still answer
# through the load balancer (health checks lag or fail while the servers run; an NLB with no
# healthy target forwards to all). Not without another server registered: the load balancer
# forwards to registered targets only (a lone server's replacement). Not when neither the
# marker nor a secure token exists: the first server publishes the secure tokens, which every
# joiner needs, only once its cluster is up, so no cluster of this stack ever formed (a first
# create, which then need not wait for the load balancer's name); a marker deleted by hand
# leaves the token, and the probe runs. Then the API's name is bound here (a subshell:
# bind_facts in main finds it bound in the files).
probe_worthwhile() {
  [ "$2" -gt 0 ] || return 1
  if [ "$1" = absent ]; then
    retry "$AWS_ATTEMPTS" fetch_secret "$TOKEN_SECRET" "$TOKEN_FILE" || die "cannot read the token secret"
    secure_token "$TOKEN_FILE" || return 1
  fi
  bind_facts API_DNS_NAME PUBLIC_API_DNS_NAME || die "cannot read the API's name"
}

# decide_mode: prints "MODE SNAPSHOT", MODE one of join, init, restore (a lone server healed
# from the newest snapshot) or requested (the snapshot a restore request names); every
# other server joins. Never two clusters: "init" only when the marker is absent AND the API
# target group has no healthy target (and no API answers where one could: probe_worthwhile);
# "requested" and "restore" only with no other server registered either.
decide_mode() {
  local mode=join snapshot='' status=0 request='' requested='' marker targets healthy others
  request=$(read_parameter "$RESTORE_PARAMETER") || status=$?
  case $status in
    0 | 3) ;;
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
  targets=$(api_targets) || die "cannot read the health of the API target group"
  read -r healthy others _ <<<"$targets"
  if [ "$healthy" -gt 0 ]; then
    log "$healthy healthy API target(s): a cluster is up"
  elif probe_worthwhile "$marker" "$others" && retry "$probe_attempts" api_answers; then
    log "an API answers at $api_url"
  else
    status=0
    # Only a lone server's replacement may act on a request: with another server registered
    # waiting for the replaced instances could not make it apply.
    if [ -n "$request" ] && [ "$others" -eq 0 ]; then requested=$(request_snapshot "$request") || status=$?; fi
    case $status in
      0 | 1) ;;
      *) die "not deciding while a restore request waits for the instances it replaces" ;;
    esac
    if [ -n "$requested" ]; then
      # The replaced instances are gone now: look again at who else is registered.
      targets=$(api_targets) || die "cannot read the health of the API target group"
      read -r healthy others _ <<<"$targets"
    fi
    if [ "$healthy" -gt 0 ]; then
      log "$healthy healthy API target(s): a cluster is up"
    elif [ -n "$requested" ] && [ "$others" -eq 0 ]; then
      mode=requested snapshot=$requested
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
  fi
  if [ -n "$request" ] && [ "$mode" != requested ]; then log "the restore request is not for this boot: ignored"; fi
  echo "$mode $snapshot"
}

# restore_snapshot NAME: reset this server's etcd to an S3 snapshot, before K3s first starts.
# K3s restores from S3 with --cluster-reset --cluster-reset-restore-path=<snapshot name>
# plus the etcd-s3 settings, and the same token, then exits; the service starts afterwards
# (https://docs.k3s.io/datastore/backup-restore, https://docs.k3s.io/cli/etcd-snapshot).
restore_snapshot() {
  log "restoring etcd snapshot $1 from s3://$SNAPSHOT_BUCKET/$SNAPSHOT_FOLDER"
  bounded "$start_timeout" "$k3s_bin" server --cluster-reset --cluster-reset-restore-path="$1" \
    "${etcd_s3[@]}" --etcd-s3-region="$region" || die "restoring snapshot $1 failed"
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
# the marker; a restore request honoured is deleted (already gone: the CLI cleaned it up).
publish() {
  publish_token "$TOKEN_SECRET" token
  publish_token "$AGENT_TOKEN_SECRET" agent-token
  publish_kubeconfig
  ensure_marker
  if [ "$1" = requested ]; then
    retry -u '(ParameterNotFound)' "$AWS_ATTEMPTS" awscli ssm delete-parameter --name "$RESTORE_PARAMETER" \
      >/dev/null || [ $? -eq 3 ] || die "cannot delete the restore request $RESTORE_PARAMETER"
  fi
  if [ "$1" = init ]; then log "cluster initialised; kubeconfig published"; else
    log "cluster restored; kubeconfig published"; fi
}

# The service account issuer's two documents, copied from this server's API to the issuer
# bucket STS reads (through CloudFront), every boot: a restored cluster keeps its keys, and
# a copy is idempotent. kube-apiserver builds both itself (kubernetes
# pkg/serviceaccount/openidmetadata.go: the JWKS of every key of service-account-key-file,
# kid = base64url(sha256(PKIX DER)), jwks_uri = service-account-jwks-uri), so the copy is
# right by construction. The API answers compact JSON (json.Marshal): read with sed, no jq.
issuer_jwks_sum=$root$BUNDLE_DIR/issuer-jwks.sha256
raw_get() { kube --kubeconfig "$kubeconfig_file" get --raw "/$1" >"$2"; }
put_issuer() {
  retry "$AWS_ATTEMPTS" awscli s3api put-object --bucket "$ISSUER_BUCKET" --key "$1" --body "$work/$1" \
    --content-type application/json >/dev/null
}
publish_issuer() {
  local issuer uri key
  if [ "$ISSUER_SIGNS" != true ]; then log "the API accepts the issuer's tokens but signs as K3s: nothing to publish yet"; return 0; fi
  for key in "$DISCOVERY_KEY" "$JWKS_KEY"; do
    mkdir -p "$(dirname "$work/$key")"
    retry "$FETCH_ATTEMPTS" raw_get "$key" "$work/$key" || die "cannot read /$key from the API"
  done
  issuer=$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' "$work/$DISCOVERY_KEY")
  uri=$(sed -n 's/.*"jwks_uri":"\([^"]*\)".*/\1/p' "$work/$DISCOVERY_KEY")
  # A mismatch would make STS reject every pod's token, silently: refused here.
  if [ "$issuer" != "$ISSUER_URL" ] || [ "$uri" != "$ISSUER_URL/$JWKS_KEY" ]; then
    die "the API's service account issuer is '$issuer' with keys at '$uri', not $ISSUER_URL"
  fi
  grep -q '"kid":"' "$work/$JWKS_KEY" || die "the API serves no service account key"
  for key in "$DISCOVERY_KEY" "$JWKS_KEY"; do put_issuer "$key" || die "cannot publish $key to s3://$ISSUER_BUCKET"; done
  sha256sum <"$work/$JWKS_KEY" >"$issuer_jwks_sum"
  log "published the service account issuer $ISSUER_URL to s3://$ISSUER_BUCKET"
}

# issuer_current (the watch): the API's keys changed since the last copy (k3s certificate
# rotate, https://docs.k3s.io/cli/certificate): copied again, so STS knows them within a round.
# In a subshell with a minute's deadline: never the watch's end, nor a long hold on its round.
issuer_current() {
  [ "$ISSUER_SIGNS" = true ] || return 0
  raw_get "$JWKS_KEY" "$work/jwks" || return 0
  if [ "$(sha256sum <"$work/jwks")" != "$(cat "$issuer_jwks_sum" 2>/dev/null)" ]; then
    log "the service account keys changed: publishing them"
    (deadline=$(($(now) + 60)) && publish_issuer) || log "cannot publish the service account issuer"
  fi
}

# pod_roles_current (the watch): a controller's pod made while the webhook was away has no
# AWS credentials (failure policy Ignore, model/pod_identity.py) and gets none by restarting
# its containers. Once the webhook has a ready replica, such a pod is deleted: its controller
# makes a new one, which the webhook mutates. Only the controllers k3s-infra installs.
pod_roles_current() {
  local entry ns sa ready name env k=(--kubeconfig "$kubeconfig_file")
  [ -n "${POD_ROLE_ACCOUNTS:-}" ] || return 0
  ready=$(kube "${k[@]}" -n "$WEBHOOK_NAMESPACE" get deployment "$WEBHOOK_DEPLOYMENT" --ignore-not-found \
    -o 'jsonpath={.status.readyReplicas}') || return 0
  [ "${ready:-0}" -gt 0 ] || return 0
  for entry in $POD_ROLE_ACCOUNTS; do
    ns=${entry%%/*} sa=${entry#*/}
    kube "${k[@]}" -n "$ns" get pods -o "jsonpath={range .items[?(@.spec.serviceAccountName==\"$sa\")]}{.metadata.name}{\" \"}{.spec.containers[0].env[?(@.name==\"AWS_ROLE_ARN\")].name}{\"\\n\"}{end}" |
      while read -r name env; do
        [ -z "$env" ] || continue
        log "pod $ns/$name runs without its AWS role (made while the webhook was away): deleting it"
        kube "${k[@]}" -n "$ns" delete pod "$name" --wait=false >/dev/null || log "cannot delete pod $ns/$name"
      done
  done
}

# webhook_tls: the pod identity webhook's serving certificate, made once (an EC P-256 CA and
# a certificate for its Service name, 10 years, kept in its Secret; a later boot reuses them),
# and the MutatingWebhookConfiguration with that CA (caBundle: base64 PEM, as the Secret holds
# it). Keys exist only in a private folder removed at once, and in the Secret; never logged.
# The extensions come from a config of our own, not the system's openssl.cnf.
webhook_tls() {
  local found ca dir=$work/tls ns=(--kubeconfig "$kubeconfig_file" -n "$WEBHOOK_NAMESPACE")
  found=$(retry "$FETCH_ATTEMPTS" kube "${ns[@]}" get secret "$WEBHOOK_TLS" --ignore-not-found -o name) ||
    die "cannot read Secret $WEBHOOK_TLS"
  if [ -z "$found" ]; then
    mkdir -m 700 "$dir"
    printf '%s\n' '[req]' 'distinguished_name=dn' '[dn]' '[ca]' 'basicConstraints=critical,CA:TRUE' \
      'keyUsage=critical,keyCertSign' '[tls]' 'basicConstraints=critical,CA:FALSE' \
      "subjectAltName=DNS:$WEBHOOK_HOST" 'extendedKeyUsage=serverAuth' >"$dir/cnf"
    new_cert "$dir" ca "/CN=k3s-infra pod identity webhook CA" || die "cannot make a CA: $(cat "$errors")"
    new_cert "$dir" tls "/CN=$WEBHOOK_HOST" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" ||
      die "cannot make the webhook's certificate: $(cat "$errors")"
    retry -u 'already exists' "$FETCH_ATTEMPTS" kube "${ns[@]}" create secret generic "$WEBHOOK_TLS" \
      --from-file="$dir/tls.crt" --from-file="$dir/tls.key" --from-file="$dir/ca.crt" >/dev/null ||
      [ $? -eq 3 ] || die "cannot create Secret $WEBHOOK_TLS"
    rm -rf "$dir"
    log "made the pod identity webhook's certificate for $WEBHOOK_HOST"
  fi
  ca=$(retry "$FETCH_ATTEMPTS" kube "${ns[@]}" get secret "$WEBHOOK_TLS" -o 'jsonpath={.data.ca\.crt}') &&
    [ -n "$ca" ] || die "Secret $WEBHOOK_TLS holds no ca.crt"
  sed "s|$WEBHOOK_CA_PLACEHOLDER|$ca|" "$root$WEBHOOK_CONFIGURATION" >"$work/webhook.yaml"
  retry "$FETCH_ATTEMPTS" kube --kubeconfig "$kubeconfig_file" apply -f "$work/webhook.yaml" >/dev/null ||
    die "cannot apply the pod identity webhook's configuration"
}
# new_cert DIR NAME SUBJECT [ARGS...]: DIR/NAME.key and DIR/NAME.crt, extensions of section NAME.
new_cert() {
  openssl req -x509 -config "$1/cnf" -extensions "$2" -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 3650 -subj "$3" -keyout "$1/$2.key" -out "$1/$2.crt" "${@:4}" 2>"$errors"
}
