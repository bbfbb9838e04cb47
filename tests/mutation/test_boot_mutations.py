"""Mutation check of the node script, which mutmut cannot mutate (it only mutates Python).

Each mutation below is a plausible regression of a safety property of the boot or of the
servers' watch; the boot sandbox tests named with it must fail when the nodes carry the mutated
script, and pass with the genuine one (the control run). A mutation names text that occurs
exactly once in the script's parts as nodes get them (script.part: boot_lib.sh, boot.sh in
every user data; addons.sh, first_server.sh, watch.sh in the servers' bundle). Each run is a pytest
subprocess with the ``boot_mutant`` plugin (tests/mutation/boot_mutant.py) swapping that part.
Slow (a few minutes): part of ``make mutate``, skipped by ``make test`` unless K3S_INFRA_BOOT_MUTATIONS=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from k3s_infra.bootstrap import script

ROOT = Path(__file__).resolve().parents[2]
BOOT = "tests/boot/"

pytestmark = pytest.mark.skipif(os.environ.get("K3S_INFRA_BOOT_MUTATIONS") != "1",
                                reason="slow: make mutate runs it (K3S_INFRA_BOOT_MUTATIONS=1)")

FAILURE_SIGNAL = BOOT + "test_boot_signals.py::test_readiness_never_reached_signals_failure_once_and_reports_unhealthy"
FIRST_SERVER = BOOT + "test_boot_server_init.py::test_first_server_initialises_the_cluster"
TAMPERED = BOOT + "test_boot_install.py::test_a_tampered_binary_fails_the_boot_and_starts_nothing"
INSTALLED = (BOOT + "test_boot_install.py::test_the_node_installs_k3s_and_its_images_from_the_artifact_bucket_never_"
             "the_internet[x86_64-amd64-k3s]")
IMDSV2 = BOOT + "test_boot_server_init.py::test_metadata_comes_from_imdsv2_with_a_session_token"
NEVER_READY = BOOT + "test_boot_server_init.py::test_a_first_server_that_never_gets_ready_publishes_nothing"
IMDS_RETRIED = BOOT + "test_boot_imds.py::test_a_briefly_unavailable_metadata_service_is_retried_and_the_boot_completes"
HEAL = BOOT + "test_boot_restore.py::test_a_lone_replaced_server_heals_from_the_newest_snapshot"
STALE_MARKER = BOOT + "test_boot_server_init.py::test_a_marker_left_by_a_deleted_stack_does_not_stop_a_new_cluster"
NO_COPY = BOOT + "test_boot_server_init.py::test_a_kubeconfig_that_cannot_be_published_leaves_no_copy_on_disk"
PAST_A_PAGE = BOOT + "test_boot_restore.py::test_the_newest_snapshot_is_found_past_the_first_thousand_keys"
REQUEST = BOOT + "test_boot_restore.py::test_a_restore_request_is_honoured_then_deleted"
REJOIN = BOOT + "test_boot_replacement.py::test_replacement_with_marker_joins_through_the_load_balancer"
AGENT_SIGNAL = (BOOT + "test_boot_signals.py::test_success_is_signalled_for_this_instance_to_its_own_group"
                "[prod-AgentPoolGeneral-AgentGroup]")
SHORT_TOKEN = (BOOT + "test_boot_tokens.py::test_a_joiner_refuses_a_short_token_and_fails_its_signal"
               "[AgentPoolGeneral-AgentTokenSecretArn-secure1]")
RESTORE_REQUEST = BOOT + "test_boot_restore_request.py::"
QUORUM = BOOT + "test_boot_quorum.py::"
ROLL = BOOT + "test_boot_roll.py::"
DEADLINE = BOOT + "test_boot_deadline.py::"
MEMBERS = BOOT + "test_boot_members.py::"
READY = BOOT + "test_boot_ready.py::"
BOUNDS = BOOT + "test_boot_bounds.py::"
ISSUER = BOOT + "test_boot_issuer.py::"
# The boot's "before readiness" point: a step moved above it runs even when K3s never gets ready.
READINESS = 'if [ "$ROLE" = agent ]; then\n    retry "$ready_attempts" agent_ready'

# (name, text in the shipped script, replacement, tests that must catch it)
MUTATIONS = [
    # A failed boot must tell CloudFormation, or the stack waits out the whole signal timeout.
    ("no FAILURE signal on exit", "    signal FAILURE\n", "", [FAILURE_SIGNAL]),
    # Without --no-should-respect-grace-period the Unhealthy report is ignored during the grace
    # period (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceHealth.html).
    ("grace period respected", " --no-should-respect-grace-period", "", [FAILURE_SIGNAL]),
    ("no Unhealthy report", '  aws --region "$region" autoscaling set-instance-health',
     '  true || aws --region "$region" autoscaling set-instance-health', [FAILURE_SIGNAL]),
    ("SUCCESS before readiness", READINESS, "signal SUCCESS\n" + READINESS, [FAILURE_SIGNAL]),
    ("signal to the wrong resource", '--stack-name "$SIGNAL_STACK" \\\n    --logical-resource-id "$SIGNAL_RESOURCE"',
     '--stack-name "$SIGNAL_RESOURCE" \\\n    --logical-resource-id "$SIGNAL_STACK"', [AGENT_SIGNAL]),
    ("signal never retried", "retry -u '(ValidationError)' \"$FETCH_ATTEMPTS\" aws", "retry -u '(ValidationError)' 1 aws",
     [BOOT + "test_boot_signals.py::test_signalling_is_retried_when_cloudformation_is_unreachable_but_bounded"]),
    # A step without its own check must still stop the boot (and signal FAILURE).
    ("set -e dropped", "set -euo pipefail\n", "set -uo pipefail\n",
     [BOOT + "test_boot_signals.py::test_a_failing_step_without_its_own_check_still_stops_the_boot"]),
    # Without --query the CLI prints the whole GetSecretValue response: the token file would hold JSON.
    ("secret read without --query", "--secret-id \"$1\" --query SecretString", "--secret-id \"$1\"",
     [FIRST_SERVER]),
    ("parameter read without --query", '--name "$1" --query Parameter.Value', '--name "$1"', [REQUEST]),
    # The checksum comparison is what keeps an unverified binary from running as root.
    ("checksum never compared", 'if [ "$actual" != "$expected" ]; then', "if false; then", [TAMPERED]),
    ("arm64 node takes the amd64 images", "aarch64 | arm64) arch=arm64", "aarch64 | arm64) arch=amd64",
     [BOOT + "test_boot_graviton.py::test_the_graviton_pool_of_prod_installs_the_arm64_binary"]),
    # K3s comes from the artifact bucket by the digest the node stack pins, both files checked
    # before anything is installed, the images where K3s imports them (boot.sh install_k3s).
    ("a key without the pinned digest", "key=$ARTIFACT_PREFIX/$1/$2", "key=$ARTIFACT_PREFIX/$2", [INSTALLED]),
    ("images never placed", '  install -D -m 0600 "$images" "$root$K3S_IMAGES_DIR/${images##*/}"\n', "",
     [INSTALLED]),
    ("binary installed before the images are checked",
     '  fetch_artifact "$K3S_IMAGES_SHA256" "${images##*/}" "$images"\n  mkdir -p "$(dirname "$k3s_bin")"\n'
     '  install -m 0755 "$binary" "$k3s_bin"\n',
     '  mkdir -p "$(dirname "$k3s_bin")"\n  install -m 0755 "$binary" "$k3s_bin"\n'
     '  fetch_artifact "$K3S_IMAGES_SHA256" "${images##*/}" "$images"\n',
     [BOOT + "test_boot_install.py::test_tampered_images_are_refused_before_anything_is_installed"]),
    ("staged files read once", 'retry "$FETCH_ATTEMPTS" bounded 600 aws', "retry 1 bounded 600 aws",
     [BOOT + "test_boot_signals.py::test_downloads_are_retried_then_k3s_starts"]),
    # Token files must be root-only (0600): the umask is what makes the shell's redirections so.
    ("umask widened", "umask 077\n", "umask 022\n", [FIRST_SERVER]),
    ("token echoed to the log", '--query SecretString >"$root$2"', '--query SecretString | tee "$root$2" >&2',
     [FIRST_SERVER]),
    ("joiner takes a short token", "LC_ALL=C grep -Eq '^K10[0-9a-f]{64}::.'", "LC_ALL=C grep -Eq '.'",
     [SHORT_TOKEN]),
    # IMDSv2: every metadata read carries the session token (HttpTokens=required refuses others).
    ("IMDSv1 reads", '-H "X-aws-ec2-metadata-token: $1" ', "", [IMDSV2]),
    # IMDS may answer 503 (throttling) early in boot; AWS says retry with back-off
    # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html#instancedata-throttling).
    ("IMDS token retried once", 'retry "$AWS_ATTEMPTS" imds_new_token', "retry 1 imds_new_token", [IMDS_RETRIED]),
    ("provider ID malformed", "provider-id=aws:///$zone/$instance_id", "provider-id=aws://$zone/$instance_id",
     [FIRST_SERVER]),
    ("kubeconfig keeps 127.0.0.1", "s#^\\( *server: \\)https://.*#", "s#^\\( *server: \\)http://.*#", [FIRST_SERVER]),
    # The new-cluster decision: marker absent AND no API AND no healthy target; never on doubt.
    ("marker ignored", 'elif [ "$marker" = absent ]; then', "elif true; then", [HEAL]),
    # (A second check of healthy targets follows the first: with one healthy target it is the
    # restore request that would be looked at, and waited for.)
    ("API probed once", 'if retry "$probe_attempts" api_answers; then', "if retry 1 api_answers; then",
     [BOOT + "test_boot_restore.py::test_a_new_cluster_only_after_repeated_probes"]),
    ("unreadable marker taken as absent", '*) die "cannot read the cluster-state marker $STATE_PARAMETER" ;;',
     "*) marker=absent ;;",
     [BOOT + "test_boot_server_init.py::test_a_marker_the_role_may_not_read_stops_the_boot_rather_than_initialising"]),
    ("unreadable target group taken as empty", "elif ! targets=$(api_targets); then",
     'elif ! targets=$(api_targets || echo "0 0"); then',
     [BOOT + "test_boot_server_init.py::test_an_unreadable_target_group_stops_the_boot_rather_than_initialising"]),
    ("own target counted as another server", "length(TargetHealthDescriptions[?Target.Id!='$instance_id'])",
     "length(TargetHealthDescriptions)",
     [BOOT + "test_boot_restore.py::test_a_lone_server_registered_in_its_own_target_group_still_heals[initial]"]),
    ("rejoin drop-in not installed",
     '    cp "$root$REJOIN_CONFIG" "$k3s_dir/config.yaml.d/10-rejoin.yaml"\n', "", [REJOIN]),
    ("API probe without -k", 'curl -ksf --max-time 5 "$api_url/ping"', 'curl -sf --max-time 5 "$api_url/ping"', [REJOIN]),
    ("API probe without a time limit", 'curl -ksf --max-time 5 "$api_url/ping"', 'curl -ksf "$api_url/ping"',
     [BOOT + "test_boot_install.py::test_every_network_call_of_the_boot_has_a_time_limit"]),
    # What says "a cluster serves" is written once, never overwritten, and only once K3s is ready.
    ("marker written with --overwrite", '--type String --value "$CLUSTER_STACK_ID" >/dev/null || status=$?',
     '--type String --overwrite --value "$CLUSTER_STACK_ID" >/dev/null || status=$?', [FIRST_SERVER]),
    # A marker another stack wrote must not read as this cluster's (never a new cluster then).
    ("any marker is this cluster's", 'marker_is_ours() { [ "$1" = initialised ] || [ "$1" = "$CLUSTER_STACK_ID" ]; }',
     "marker_is_ours() { true; }", [STALE_MARKER]),
    ("marker before readiness", READINESS, 'if [ "$1" != join ]; then ensure_marker; fi\n' + READINESS, [NEVER_READY]),
    ("kubeconfig before readiness", READINESS, 'if [ "$1" != join ]; then publish_kubeconfig; fi\n' + READINESS,
     [NEVER_READY]),
    # Restores: the newest snapshot, bounded, the request deleted only after success.
    ("oldest snapshot restored", "&LastModified)[-1].Key", "&LastModified)[0].Key", [HEAL]),
    # The admin kubeconfig's copy must go with the private folder the EXIT trap removes.
    ("kubeconfig copy outside the private folder", '  kubeconfig=$(mktemp -p "$work")', "  kubeconfig=$(mktemp)",
     [NO_COPY]),
    # Text output runs --query per page of 1,000 keys: the newest of the last page, not of all.
    ("snapshot listing as text", 'aws --region "$region" --output json s3api list-objects-v2',
     'aws --region "$region" --output text s3api list-objects-v2', [PAST_A_PAGE]),
    ("restore without a time limit", 'bounded "$start_timeout" "$k3s_bin" server --cluster-reset',
     '"$k3s_bin" server --cluster-reset',
     [BOOT + "test_boot_restore.py::test_a_restore_that_hangs_is_bounded_and_signals_failure"]),
    ("restore request not deleted", "    retry -u '(ParameterNotFound)' \"$AWS_ATTEMPTS\" awscli ssm delete-parameter",
     "    true || retry -u '(ParameterNotFound)' \"$AWS_ATTEMPTS\" awscli ssm delete-parameter", [REQUEST]),
    ("restore request deleted before readiness", READINESS,
     'if [ "$1" = requested ]; then awscli ssm delete-parameter --name "$RESTORE_PARAMETER" >/dev/null; fi\n'
     + READINESS, [BOOT + "test_boot_restore.py::test_a_restore_that_never_gets_ready_keeps_the_request"]),
    # Generated secrets reach Helm values as YAML double-quoted scalars: escaped.
    ("values unescaped", '  value=${value//\\"/\\\\\\"}\n', "",
     ["tests/unit/bootstrap/test_boot_sh.py::test_values_secret_writes_any_value_back_unchanged"]),
    # Restore requests (first_server.sh request_snapshot, decide_mode): only unexpired, only once
    # the instances they replace are gone (waited for, never a fallback), only with no cluster up
    # and no other server registered, only in the current format.
    ("restore request never expires", 'if [ "$(now)" -ge "$expires" ]; then', "if false; then",
     [RESTORE_REQUEST + "test_an_expired_request_is_ignored"]),
    ("replaced instances not checked", 'if [ "$running" -ne 0 ]; then', "if false; then",
     [RESTORE_REQUEST + "test_a_request_whose_instance_never_goes_fails_the_boot_and_restores_nothing"]),
    ("replaced instances looked at once, not waited for", 'if ! retry "$join_attempts" replaced_gone "$replaces"; then',
     'if ! replaced_gone "$replaces"; then',
     [RESTORE_REQUEST + "test_a_request_waits_for_the_instance_it_replaces_then_restores_exactly_its_snapshot"]),
    ("a waiting request falls back to the newest snapshot", 'still run(s)"\n    return 2\n', 'still run(s)"\n    return 1\n',
     [RESTORE_REQUEST + "test_a_request_whose_instance_never_goes_fails_the_boot_and_restores_nothing"]),
    ("request restored with other servers registered", 'elif [ -n "$requested" ] && [ "$others" -eq 0 ]; then',
     'elif [ -n "$requested" ]; then', [RESTORE_REQUEST + "test_a_server_registered_while_the_request_waited_is_not_restored"]),
    ("a request waited for with another server registered",
     'if [ -n "$request" ] && [ "$others" -eq 0 ]; then requested', 'if [ -n "$request" ]; then requested',
     [RESTORE_REQUEST + "test_a_request_with_another_server_registered_is_not_even_waited_for"]),
    ("target group not read again after the wait",
     ('      targets=$(api_targets) || die "cannot read the health of the API target group"\n'
      '      read -r healthy others _ <<<"$targets"\n'), "      true\n",
     [RESTORE_REQUEST + "test_a_server_registered_while_the_request_waited_is_not_restored"]),
    # Not here: the first read's healthy>0 test made > 1 is equivalent since the decision
    # tests healthy again before any restore or init (the mutant below drops that one).
    ("a target healthy after the wait not seen", '    if [ "$healthy" -gt 0 ]; then\n', "    if false; then\n",
     [RESTORE_REQUEST
      + "test_a_cluster_that_came_up_while_the_request_waited_is_joined_never_initialised_beside"]),
    ("request acted on while a cluster is up",
     '  if retry "$probe_attempts" api_answers; then\n    log "an API answers at $api_url"\n',
     ('  if [ -n "$request" ] && requested=$(request_snapshot "$request"); then\n    mode=requested snapshot=$requested\n'
      '  elif retry "$probe_attempts" api_answers; then\n    log "an API answers at $api_url"\n'),
     [RESTORE_REQUEST + "test_a_request_while_an_api_answers_is_ignored"]),
    ("legacy request taken as a snapshot name",
     "(run k3s-infra restore again)\"\n    return 1\n", "(run k3s-infra restore again)\"\n    echo \"$1\"; return 0\n",
     [RESTORE_REQUEST + "test_a_legacy_bare_snapshot_name_is_ignored_and_said_so"]),
    ("a request already deleted fails the restore", '>/dev/null || [ $? -eq 3 ] || die "cannot delete the restore request',
     '>/dev/null || die "cannot delete the restore request',
     [RESTORE_REQUEST + "test_a_request_already_deleted_by_the_time_of_publishing_is_no_failure"]),
    # The watch (watch.sh replacement_is_safe): never quorum, one at a time, only settled groups.
    ("no quorum check", 'elif [ "$healthy" -lt "$quorum" ]; then', "elif false; then",
     [QUORUM + "test_every_server_failing_its_ping_replaces_none"]),
    ("no lowest-ID check", 'elif [ "$first" != "$instance_id" ]; then', "elif false; then",
     [QUORUM + "test_two_servers_down_of_five_are_replaced_one_at_a_time_lowest_id_first"]),
    ("changing groups not seen", 'if [ "$unsettled" -ne 0 ] || [ "$instances" -ne "$desired" ]; then', "if false; then",
     [QUORUM + "test_a_server_group_that_is_changing_replaces_none"]),
    ("K3s down for any time is reported", '-ge "${K3S_INFRA_UNHEALTHY_AFTER:-$UNHEALTHY_AFTER}"', "-ge 0",
     [QUORUM + "test_k3s_down_for_less_than_the_threshold_is_not_reported"]),
    # A lone server's disk is newer than any snapshot: it never asks to be replaced.
    ("a lone server asks to be replaced",
     '    log "K3s is down on the cluster\'s only server: not asking for a replacement that would lose its data"\n',
     "    return 0\n", [QUORUM + "test_a_lone_server_that_is_down_is_not_replaced"]),
    # Before a termination (watch.sh before_termination): a lone first server's snapshot, named;
    # lone by the server groups' desired total; K3s stopped whatever came of it; a pending
    # request kept; the watch handles it once.
    ("snapshot taken with other servers", 'if [ "$ROLE" = server-init ] && lone_server; then',
     'if [ "$ROLE" = server-init ]; then',
     [ROLL + "test_a_server_that_is_not_the_lone_first_server_leaves_no_request[first server with another server]"]),
    ("lone counted in the target group",
     '  groups=$(server_groups) || return 1\n  read -r desired _ <<<"$groups"\n  [ "$desired" -eq 1 ]',
     '  groups=$(api_targets) || return 1\n  read -r _ desired _ <<<"$groups"\n  [ "$desired" -eq 0 ]',
     [ROLL + "test_a_lone_server_counts_the_groups_not_the_target_group"]),
    ("K3s not stopped after a failed snapshot", '    fi\n    systemctl stop "$service" || log "cannot stop $service"\n',
     "    fi\n", [ROLL + "test_a_failed_snapshot_leaves_no_request_and_the_termination_still_goes_on"]),
    ("a pending request overwritten", "    if request_pending; then", "    if false; then",
     [ROLL + "test_a_pending_restore_request_is_never_overwritten"]),
    ("the watch ends after its termination", "      before_termination\n      terminating=true\n",
     "      before_termination\n      return 0\n",
     [ROLL + "test_the_watch_handles_its_termination_once_then_waits_for_the_end"]),
    ("K3s not stopped after the snapshot", '      systemctl stop "$service" || log "cannot stop $service"\n', "",
     [ROLL + "test_a_lone_first_server_snapshots_stops_and_names_the_snapshot_before_it_goes"]),
    ("the newest snapshot named, not this one", 'snapshot=$(newest_snapshot "$prefix-")', "snapshot=$(newest_snapshot)",
     [ROLL + "test_the_replacement_restores_exactly_the_snapshot_taken_before_the_roll"]),
    ("snapshot hook never completed", 'if [ -z "$group" ] || [ "$group" = None ] || ! retry', "if true || ! retry",
     [ROLL + "test_a_failed_snapshot_leaves_no_request_and_the_termination_still_goes_on"]),
    # The boot-wide deadline (boot_lib.sh backoff, bounded, signal).
    ("backoff past the deadline",
     '  if [ "$delay" -ge "$(remaining)" ]; then log "the boot deadline leaves no time for another attempt"; return 1; fi\n',
     "", [DEADLINE + "test_a_boot_whose_api_never_answers_gives_up_at_its_deadline_and_still_signals"]),
    ("timeouts not cut to the deadline", '  if [ "$left" -lt "$limit" ]; then limit=$left; fi\n', "",
     [DEADLINE + "test_a_hanging_step_is_cut_to_what_is_left_of_the_deadline"]),
    ("no allowance for the signal", "  deadline=$(($(now) + SIGNAL_ALLOWANCE))\n", "",
     [DEADLINE + "test_a_boot_whose_api_never_answers_gives_up_at_its_deadline_and_still_signals"]),
    # The bundle (boot.sh install_bundle): only the pinned bytes.
    ("bundle digest not compared", 'if [ "$actual" != "$BUNDLE_SHA256" ]; then', "if false; then",
     [BOOT + "test_boot_bundle.py::test_a_tampered_bundle_is_refused_and_nothing_of_it_is_extracted"]),
    # The add-ons' manifests (addons.sh install_addons): only the pinned object, private, or no boot.
    ("add-ons digest not compared", 'if [ "$actual" != "$ADDONS_SHA256" ]; then', "if false; then",
     [BOOT + "test_boot_bundle.py::test_a_tampered_addons_object_is_refused_and_nothing_of_it_is_written"]),
    ("add-ons never installed", "then install_bundle; install_addons; fi", "then install_bundle; fi",
     [BOOT + "test_boot_bundle.py::test_a_server_installs_exactly_the_addons_object_its_bundle_pins"]),
    ("an unreadable add-ons object ignored", '|| die "cannot read the add-on manifests',
     '|| return 0 "cannot read the add-on manifests',
     [BOOT + "test_boot_bundle.py::test_a_server_that_may_not_read_the_addons_object_fails_its_boot"]),
    ("add-on values world-readable", 'install -D -m 0600 "$work/addons.yaml"', 'install -D -m 0644 "$work/addons.yaml"',
     [BOOT + "test_boot_bundle.py::test_a_server_installs_exactly_the_addons_object_its_bundle_pins"]),
    # Readiness and etcd's members (boot.sh agent_ready, members_settled, servers_healthy,
    # leave_cluster, on_exit, mark_ready).
    ("agent ready without its Node", 'kubelet_healthy && kube --kubeconfig "$root$KUBELET_KUBECONFIG"',
     'kubelet_healthy || kube --kubeconfig "$root$KUBELET_KUBECONFIG"',
     [READY + "test_an_agent_whose_node_never_appears_fails"]),
    ("members never counted", 'retry "$ready_attempts" members_settled || die', "true || die",
     [MEMBERS + "test_a_member_of_a_terminated_instance_is_removed_before_success"]),
    ("a dead member's Node kept", 'kube --kubeconfig "$kubeconfig_file" delete node "$id" >/dev/null || true',
     "true", [MEMBERS + "test_a_member_of_a_terminated_instance_is_removed_before_success"]),
    ("a learner counted as a voter", 'if [ "$learner" = false ]; then voter=true;', "if true; then voter=true;",
     [MEMBERS + "test_a_learner_never_promoted_leaves_etcd_and_fails"]),
    ("a dead member without a Node ignored", 'etcdctl member remove"\n      gone=$((gone + 1))\n',
     'etcdctl member remove"\n', [MEMBERS + "test_a_dead_member_without_a_node_is_waited_for_and_fails_the_boot"]),
    ("SUCCESS with another server down", '[ "$gone" -eq 0 ] && servers_healthy', '[ "$gone" -eq 0 ]',
     [MEMBERS + "test_a_joiner_whose_fellow_server_stays_down_fails_and_leaves"]),
    ("no leaving etcd on failure", '    if [ "$joined" = true ]; then leave_cluster; fi\n', "",
     [MEMBERS + "test_a_learner_never_promoted_leaves_etcd_and_fails"]),
    ("leaving etcd before the FAILURE signal", '    log "boot gave up (exit $status)"\n    signal FAILURE\n',
     '    log "boot gave up (exit $status)"\n    if [ "$joined" = true ]; then leave_cluster; fi\n    signal FAILURE\n',
     [MEMBERS + "test_a_learner_never_promoted_leaves_etcd_and_fails"]),
    ("K3s stopped only when a joiner fails", 'if [ "$ROLE" != agent ]; then timeout 60 systemctl stop',
     'if [ "$joined" = true ]; then timeout 60 systemctl stop', [NEVER_READY]),
    ("the member list read with the password on the command line", '-K "$work/curlrc"', '-u "server:${token##*:}"',
     [MEMBERS + "test_the_member_list_is_read_with_the_server_password_from_a_file"]),
    ("never tagged ready", "  mark_ready\n  signal SUCCESS\n", "  signal SUCCESS\n",
     [READY + "test_a_boot_that_succeeds_tags_itself_ready_once_right_before_success"]),
    ("tagged ready before readiness", READINESS, "mark_ready\n" + READINESS,
     [READY + "test_a_boot_that_fails_never_tags_itself_ready"]),
    # Every AWS CLI and kubectl call bounded (boot_lib.sh aws, boot.sh kube): the CLI's defaults
    # (60 s to connect, 60 s per read) and kubectl's (none) would outlast the deadline.
    ("AWS CLI timeouts removed", 'aws() { command aws --cli-connect-timeout 5 --cli-read-timeout 30 "$@"; }',
     'aws() { command aws "$@"; }',
     [BOUNDS + "test_every_aws_and_kubectl_call_of_a_joining_server_carries_its_time_bounds"]),
    ("kubectl without a process bound", 'kube() { bounded 30 "$k3s_bin" kubectl', 'kube() { "$k3s_bin" kubectl',
     [BOUNDS + "test_a_kubectl_call_that_never_answers_is_cut_to_the_deadline"]),
    # Pod IAM (first_server.sh publish_issuer, issuer_current, webhook_tls): the issuer STS reads
    # is the one the API signs for, copied on every boot of the first server (before the marker)
    # and again when its keys change; the webhook's certificate is made once, for its Service,
    # by the CA its configuration trusts.
    ("another issuer published", '[ "$issuer" != "$ISSUER_URL" ] || ', "", [ISSUER + "test_an_api_serving_another"
                                                                          "_issuer_fails_the_boot_before_the_cluster_is_published[issuer]"]),
    ("keys published elsewhere", ' || [ "$uri" != "$ISSUER_URL/$JWKS_KEY" ]', "", [ISSUER + "test_an_api_serving_another"
                                                                                 "_issuer_fails_the_boot_before_the_cluster_is_published[jwks_uri]"]),
    ("issuer documents without their content type", " \\\n    --content-type application/json", "",
     [ISSUER + "test_the_first_server_publishes_the_issuer_it_serves_on_every_boot[init]"]),
    ("issuer not published on a rejoin", 'if [ "$ROLE" = server-init ]; then publish_issuer; webhook_tls; fi',
     'if [ "$mode" != join ]; then publish_issuer; webhook_tls; fi',
     [ISSUER + "test_the_first_server_publishes_the_issuer_it_serves_on_every_boot[rejoin]"]),
    ("issuer published after the marker",
     '  if [ "$ROLE" = server-init ]; then publish_issuer; webhook_tls; fi\n  if [ "$mode" != join ]; then publish "$mode"; fi\n',
     '  if [ "$mode" != join ]; then publish "$mode"; fi\n  if [ "$ROLE" = server-init ]; then publish_issuer; webhook_tls; fi\n',
     [ISSUER + "test_the_first_server_publishes_the_issuer_it_serves_on_every_boot[init]"]),
    ("no webhook certificate", "publish_issuer; webhook_tls; fi", "publish_issuer; fi",
     [ISSUER + "test_the_webhook_gets_a_certificate_for_its_service_and_a_configuration_trusting_its_ca"]),
    ("rotated keys never published again", 'if [ "$(sha256sum <"$work/jwks")" != ', 'if false && [ "$(sha256sum <"$work/jwks")" != ',
     [ISSUER + "test_the_watch_publishes_the_keys_again_once_they_change"]),
    ("unchanged keys published every round", '  sha256sum <"$work/$JWKS_KEY" >"$issuer_jwks_sum"\n', "",
     [ISSUER + "test_the_watch_publishes_the_keys_again_once_they_change"]),
    ("a failed copy ends the watch", "(deadline=$(($(now) + 60)) && publish_issuer)", "publish_issuer",
     [ISSUER + "test_a_watch_that_cannot_publish_says_so_and_keeps_watching"]),
    ("a new webhook certificate every boot", 'if [ -z "$found" ]; then', "if true; then",
     [ISSUER + "test_a_later_boot_reuses_the_webhook_certificate"]),
    ("a self-signed webhook certificate", ' -CA "$dir/ca.crt" -CAkey "$dir/ca.key"', "",
     [ISSUER + "test_the_webhook_gets_a_certificate_for_its_service_and_a_configuration_trusting_its_ca"]),
    ("a webhook certificate without its Service name", ' \\\n      "subjectAltName=DNS:$WEBHOOK_HOST"', "",
     [ISSUER + "test_the_webhook_gets_a_certificate_for_its_service_and_a_configuration_trusting_its_ca"]),
    ("a webhook configuration without its CA", '"s|$WEBHOOK_CA_PLACEHOLDER|$ca|"', '"s|x|x|"',
     [ISSUER + "test_the_webhook_gets_a_certificate_for_its_service_and_a_configuration_trusting_its_ca"]),
    ("pods deleted while the webhook is away", '[ "${ready:-0}" -gt 0 ] || return 0', "true",
     [ISSUER + "test_the_watch_recreates_a_controller_pod_made_while_the_webhook_was_away"]),
    ("pods with their role deleted too", '[ -z "$env" ] || continue', "true",
     [ISSUER + "test_the_watch_recreates_a_controller_pod_made_while_the_webhook_was_away"]),
    ("controller pods never checked", "issuer_current; pod_roles_current", "issuer_current; true",
     [ISSUER + "test_the_watch_recreates_a_controller_pod_made_while_the_webhook_was_away"]),
]


def _parts() -> dict[str, str]:
    """Every part of the node script as nodes get it (comment lines left out: script.part)."""
    return {name: script.part(name) for name in (*script.CORE, *script.EXTRAS)}


def _mutant(original: str, mutated: str) -> tuple[str, str] | None:
    """(part, its mutated text) when `original` occurs exactly once in the whole script."""
    found = [(name, text) for name, text in _parts().items() if original in text]
    if len(found) != 1 or found[0][1].count(original) != 1:
        return None
    name, text = found[0]
    return name, text.replace(original, mutated)


def _run_boot_tests(part: str, text: str, tests: list[str], folder: Path) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True)
    mutant = folder / part
    mutant.write_text(text, encoding="utf-8")
    env = dict(os.environ, K3S_INFRA_BOOT_MUTANT=str(mutant), K3S_INFRA_BOOT_MUTANT_PART=part,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "tests" / "boot"), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "tests.mutation.boot_mutant", "-p", "no:cacheprovider",
                           "--basetemp", str(folder / "pytest"), *tests],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Future]:
    """Every run (the genuine script, then each mutant) started at once, as many at a time as
    there are cores: each is a separate pytest process, mostly waiting on its boot subprocesses."""
    base = tmp_path_factory.mktemp("mutants")
    # The control: every test the mutations use, through the plugin, with a genuine part.
    jobs = {"genuine": ("boot.sh", script.part("boot.sh"), sorted({t for *_, selected in MUTATIONS for t in selected}))}
    for name, original, mutated, tests in MUTATIONS:
        found = _mutant(original, mutated)
        if found is not None:
            jobs[name] = (*found, tests)
    pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1))
    futures = {name: pool.submit(_run_boot_tests, part, text, tests, base / f"run{n}")
               for n, (name, (part, text, tests)) in enumerate(jobs.items())}
    yield futures
    pool.shutdown(cancel_futures=True)


def test_the_genuine_script_passes_every_test_the_mutations_use(runs):
    done = runs["genuine"].result()
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.parametrize("name,original,mutated,tests", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_the_boot_sandbox_catches_the_mutation(runs, name, original, mutated, tests):
    assert _mutant(original, mutated) is not None, f"{name}: the mutation no longer applies to the node script"
    done = runs[name].result()
    assert done.returncode == 1, f"{name} survived (pytest exit {done.returncode}):\n{done.stdout[-3000:]}"
