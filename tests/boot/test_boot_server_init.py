"""The first server of a new cluster: initialises etcd, publishes the kubeconfig, then the marker."""

from __future__ import annotations

import yaml
from tests.support.boot_sandbox import (
    NODE_STACK_ID,
    AGENT_TOKEN,
    IMDS_TOKEN,
    INSTANCE_ID,
    JOIN_URL,
    K3S_TOKEN_FILES,
    PARAMETERS,
    PUBLIC_URL,
    REGION,
    SECURE_AGENT_TOKEN,
    SECURE_SERVER_TOKEN,
    SERVER_STARTS,
    SERVER_TOKEN,
    ZONE,
    token_leaks,
)

from k3s_infra.bootstrap import k3s_config


def test_first_server_initialises_the_cluster(sandbox, user_data, rendered):
    env = rendered["prod"].env
    # A new cluster: the secrets hold the short values Secrets Manager generated.
    run = sandbox.run(user_data("prod", "ServerInit"), marker=None, api_up_after=None, targets=("unhealthy",),
                      secure_tokens=False)
    assert run.returncode == 0, run.stderr

    config = run.config()
    assert config["cluster-init"] is True
    assert "server" not in config
    assert not run.path("/etc/rancher/k3s/config.yaml.d/10-rejoin.yaml").exists()
    # Boot-time values in the instance drop-in.
    assert config["node-name"] == INSTANCE_ID
    assert config["kubelet-arg"] == ["cloud-provider=external", f"provider-id=aws:///{ZONE}/{INSTANCE_ID}"]
    assert config["node-label"] == [f"topology.kubernetes.io/region={REGION}", f"topology.kubernetes.io/zone={ZONE}"]
    # Server settings from config.
    # prod's API is internet-facing: the certificate names both doors (internal first).
    assert env.api.scheme == "internet-facing"
    assert config["tls-san"] == [PARAMETERS["ApiDnsName"], PARAMETERS["PublicApiDnsName"], *env.k3s.tls_san]
    assert config["secrets-encryption"] is True and config["disable-cloud-controller"] is True
    assert config["write-kubeconfig-mode"] == "0600"
    assert config["node-taint"] == ["node-role.kubernetes.io/control-plane:NoSchedule"]
    assert config["etcd-s3"] is True
    assert config["etcd-s3-bucket"] == PARAMETERS["SnapshotBucketName"]
    assert (config["etcd-s3-region"], config["etcd-s3-folder"]) == (env.region, f"etcd/{env.name}")
    assert config["etcd-snapshot-schedule-cron"] == env.k3s.etcd_snapshots.schedule
    assert config["etcd-snapshot-retention"] == env.k3s.etcd_snapshots.retention
    # S3 keeps as many as the config says, not K3s's own S3 default of 5 (docs.k3s.io/cli/etcd-snapshot).
    assert config["etcd-s3-retention"] == env.k3s.etcd_snapshots.retention
    assert config["token-file"] == k3s_config.TOKEN_FILE
    assert config["agent-token-file"] == k3s_config.AGENT_TOKEN_FILE

    # Tokens: read with the instance role into root-only files, and nowhere else. Without the
    # marker and with another server registered, the token is read first to decide whether to
    # probe (a published one means a cluster formed: first_server.sh probe_worthwhile).
    assert run.secrets_read() == [PARAMETERS["TokenSecretArn"], PARAMETERS["TokenSecretArn"],
                                  PARAMETERS["AgentTokenSecretArn"]]
    assert run.path(k3s_config.TOKEN_FILE).read_text().strip() == SERVER_TOKEN
    assert run.path(k3s_config.AGENT_TOKEN_FILE).read_text().strip() == AGENT_TOKEN
    for token_file in (k3s_config.TOKEN_FILE, k3s_config.AGENT_TOKEN_FILE):
        assert run.path(token_file).stat().st_mode & 0o077 == 0
    assert token_leaks(run, {k3s_config.TOKEN_FILE: SERVER_TOKEN, k3s_config.AGENT_TOKEN_FILE: AGENT_TOKEN}) == []

    # The pinned K3s release binary, verified, installed and started as the server unit.
    assert run.installed
    assert run.systemctl_calls == SERVER_STARTS

    # Then the secure tokens K3s wrote are published into their secrets: exactly two
    # put-secret-value calls naming K3s's files (the value never on a command line).
    assert run.secret_writes()[:2] == [
        ["--region", REGION, "--output", "text", "secretsmanager", "put-secret-value",
         "--secret-id", PARAMETERS["TokenSecretArn"], "--secret-string", f"file://{run.root}{K3S_TOKEN_FILES['token']}"],
        ["--region", REGION, "--output", "text", "secretsmanager", "put-secret-value",
         "--secret-id", PARAMETERS["AgentTokenSecretArn"],
         "--secret-string", f"file://{run.root}{K3S_TOKEN_FILES['agent-token']}"]]
    assert run.state["secrets"][PARAMETERS["TokenSecretArn"]].strip() == SECURE_SERVER_TOKEN
    assert run.state["secrets"][PARAMETERS["AgentTokenSecretArn"]].strip() == SECURE_AGENT_TOKEN

    # Waited for the local API, then kubeconfig (server URL = the public NLB), then the marker.
    assert ["kubectl", "--kubeconfig", f"{run.root}/etc/rancher/k3s/k3s.yaml", "get", "--raw=/readyz"] \
        in run.k3s_calls
    assert run.state["writes"] == [["secret", PARAMETERS["TokenSecretArn"]],
                                   ["secret", PARAMETERS["AgentTokenSecretArn"]],
                                   ["secret", PARAMETERS["KubeconfigSecretArn"]],
                                   ["parameter", PARAMETERS["ClusterStateParameterName"]]]
    kubeconfig = yaml.safe_load(run.state["secrets"][PARAMETERS["KubeconfigSecretArn"]])
    # People use the published kubeconfig: it points at the public door (the node joined the internal one).
    assert kubeconfig["clusters"][0]["cluster"]["server"] == PUBLIC_URL
    # Cluster, user and context are named after the cluster, not K3s's 'default'.
    name = env.stack_name
    assert [c["name"] for c in kubeconfig["clusters"]] == [name]
    assert [u["name"] for u in kubeconfig["users"]] == [name]
    assert kubeconfig["contexts"] == [{"name": name, "context": {"cluster": name, "user": name}}]
    assert kubeconfig["current-context"] == name
    # The marker is created, never overwritten (create-if-absent).
    (put,) = [c for c in run.aws_calls if "put-parameter" in c]
    assert "--overwrite" not in put
    # Its value names this cluster's first-server stack (${AWS::StackId}, new at every create).
    assert run.state["parameters"][PARAMETERS["ClusterStateParameterName"]] == NODE_STACK_ID
    assert not list(run.tmp.iterdir())  # the exported copy and the downloads are cleaned up


def test_metadata_comes_from_imdsv2_with_a_session_token(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"))
    assert run.returncode == 0, run.stderr
    assert run.imds_options == {"HttpEndpoint": "enabled", "HttpTokens": "required"}
    first, *rest = run.imds_requests
    assert first[:2] == ("PUT", "/latest/api/token")
    assert {path for _, path, _ in rest} == {"/latest/meta-data/instance-id",
                                             "/latest/meta-data/placement/availability-zone",
                                             "/latest/meta-data/placement/region"}
    assert all(method == "GET" and headers["X-aws-ec2-metadata-token"] == IMDS_TOKEN
               for method, _, headers in rest)
    # Every AWS call names the instance's region.
    assert all(call[call.index("--region") + 1] == REGION for call in run.aws_calls)


def test_an_unreadable_marker_stops_the_boot_rather_than_risking_a_second_cluster(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"), unreachable=("ssm",), api_up_after=None)
    assert run.returncode != 0
    assert not run.state["started"]
    # SSM is read first for the server's bundle (boot.sh install_bundle): without it, no boot.
    assert "error: cannot read the server bundle" in run.stderr
    assert sum(call[:2] == ["--region", REGION] and "get-parameter" in call for call in run.aws_calls) == 10
    assert run.signals[-1][3] == "FAILURE"


def test_an_unreadable_restore_request_stops_the_boot_rather_than_being_taken_as_absent(sandbox, user_data):
    # Then for a restore request: an error there is a give-up too, never "absent" (only
    # ParameterNotFound means absent: API_GetParameter.html).
    run = sandbox.run(user_data("dev", "ServerInit"), api_up_after=None,
                      denied_parameters=(PARAMETERS["RestoreRequestParameterName"],))
    assert run.returncode == 1 and not run.state["started"]
    assert "error: cannot read the restore request" in run.stderr
    assert sum(PARAMETERS["RestoreRequestParameterName"] in call for call in run.aws_calls) == 10
    assert run.statuses == ["FAILURE"]


def test_a_marker_the_role_may_not_read_stops_the_boot_rather_than_initialising(sandbox, user_data):
    # No restore request (ParameterNotFound: absent), but the marker read is refused: only
    # ParameterNotFound means absent; any other answer may hide an existing cluster.
    run = sandbox.run(user_data("dev", "ServerInit"), marker="initialised", api_up_after=None,
                      denied_parameters=(PARAMETERS["ClusterStateParameterName"],))
    assert run.returncode == 1
    assert "error: cannot read the cluster-state marker" in run.stderr
    assert not run.state["started"] and run.state["writes"] == []
    assert [s[3] for s in run.signals] == ["FAILURE"]


def test_an_unreadable_target_group_stops_the_boot_rather_than_initialising(sandbox, user_data):
    # No marker and no API answer, but the target group's health is unknown: a healthy
    # server may be behind it, so this is no proof that there is no cluster.
    run = sandbox.run(user_data("dev", "ServerInit"), marker=None, api_up_after=None, unreachable=("elbv2",))
    assert run.returncode == 1
    assert any("describe-target-health" in call for call in run.aws_calls)
    assert not run.state["started"] and run.state["writes"] == []
    assert [s[3] for s in run.signals] == ["FAILURE"]


def test_a_first_server_that_never_gets_ready_publishes_nothing(sandbox, user_data):
    # The marker, the kubeconfig and the secure tokens say "a cluster serves": written only
    # once K3s is ready, or a replacement would join (and agents wait for) a cluster that never formed.
    run = sandbox.run(user_data("dev", "ServerInit"), marker=None, api_up_after=None, node_ready=False,
                      secure_tokens=False)
    assert run.returncode == 1
    assert ["start", "k3s"] in run.systemctl_calls
    assert run.state["writes"] == []
    assert PARAMETERS["ClusterStateParameterName"] not in run.state["parameters"]
    assert run.state["secrets"][PARAMETERS["TokenSecretArn"]] == SERVER_TOKEN
    assert [s[3] for s in run.signals] == ["FAILURE"]
    # A failed new cluster is stopped too (boot.sh on_exit), after the signal: no half-started
    # cluster for a replacement or an agent to find answering.
    assert not run.state["started"]
    assert run.position("aws", "signal-resource") < run.position("systemctl", "stop", "k3s")


def test_a_kubeconfig_that_cannot_be_published_leaves_no_copy_on_disk(sandbox, user_data):
    """The admin kubeconfig's edited copy lives in the boot's private folder, which the EXIT
    trap removes on every path: a refused PutSecretValue fails the boot (FAILURE) and leaves
    no cluster-admin credentials behind in the instance's temp folder."""
    run = sandbox.run(user_data("dev", "ServerInit"), marker=None, api_up_after=None,
                      denied_secrets=(PARAMETERS["KubeconfigSecretArn"],))
    assert run.returncode != 0 and "cannot publish the kubeconfig" in run.stderr
    assert [s[3] for s in run.signals] == ["FAILURE"]
    assert not list(run.tmp.iterdir())


def test_a_marker_left_by_a_deleted_stack_does_not_stop_a_new_cluster(sandbox, user_data):
    """A stack deleted outside `k3s-infra destroy` leaves its marker (an SSM parameter no stack
    owns). It names that stack's ID, not this one's: with no API and no healthy target the first
    server initialises, and the marker is replaced with its own stack's ID."""
    stale = NODE_STACK_ID.rsplit("/", 1)[0] + "/99999999-0000-0000-0000-000000000000"
    run = sandbox.run(user_data("dev", "ServerInit"), marker=stale, api_up_after=None, targets=())
    assert run.returncode == 0, run.stderr
    assert run.config()["cluster-init"] is True
    assert not any("--cluster-reset" in call for call in run.k3s_calls)
    assert run.state["parameters"][PARAMETERS["ClusterStateParameterName"]] == NODE_STACK_ID
    assert [s[3] for s in run.signals] == ["SUCCESS"]
