# Part of the server bundle (bootstrap/bundle.py), sourced by every server after the core.

# install_addons: the enabled add-ons' manifests (the user's chart values) are kept out of the
# user data and the templates: the deployer put them in the artifact bucket as one SSE-KMS
# object only the server roles may read (components/iam.py). The bundle pins its key and
# SHA-256 (the user data pins the bundle), so only those exact bytes reach K3s's manifests.
install_addons() {
  local actual
  [ -n "${ADDONS_KEY:-}" ] || return 0
  retry "$AWS_ATTEMPTS" aws --region "$region" s3api get-object --bucket "$ADDONS_BUCKET" --key "$ADDONS_KEY" \
    "$work/addons.yaml" >/dev/null || die "cannot read the add-on manifests s3://$ADDONS_BUCKET/$ADDONS_KEY"
  actual=$(sha256sum "$work/addons.yaml")
  actual=${actual%% *}
  if [ "$actual" != "$ADDONS_SHA256" ]; then
    die "the add-on manifests' sha256 is $actual, not $ADDONS_SHA256: refusing them"
  fi
  install -D -m 0600 "$work/addons.yaml" "$root$ADDONS_MANIFEST"
  log "add-on manifests $ADDONS_SHA256 installed"
}
