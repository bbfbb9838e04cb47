"""A sandbox that runs the real boot script from a rendered launch template.

Nothing leaves the machine: a loopback HTTP server plays the instance metadata
service (IMDSv2 token flow enforced, boot_imds.py), and stub executables first on PATH play
``aws`` (Secrets Manager, SSM, CloudFormation, ELB, S3, EC2 and Auto Scaling, state in a JSON
file: aws_stub.py; S3 holds the K3s files the deployer staged, k3s_release.py: the "binary" is a
stub ``k3s``, k3s_stub.py, that records its calls), ``curl``, ``uname`` and ``systemctl``
(boot_stubs.py). The ``curl`` stub hands loopback URLs to the real curl, answers the API
endpoint's ``/ping`` and the local K3s's ``/ping`` and ``/db/info`` as the scenario says
(boot_scenario.Scenario), and refuses every other URL (no internet). The boot verifies and
installs that stub as it would K3s, then runs it. Paths are redirected with
K3S_INFRA_ROOT and waits shortened with K3S_INFRA_RETRY_* and the other test hooks the script
documents. A run is a boot (cloud-init's runcmd) or the server's watch (``<script> watch``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import yaml

from tests.support.boot_imds import _Imds  # noqa: F401  (tests name it)
from tests.support.boot_run import BootRun, effective_config  # noqa: F401
from tests.support.boot_scenario import SHARED, Scenario, lone_group, member
from tests.support import k3s_release, service_accounts, stub_server
from tests.support.published import PUBLISHED, addons_location
from tests.support.boot_stubs import (AWS_STUB, CURL_STUB, K3S_KUBECONFIG, K3S_STUB, RECORDER_STUB, SLEEP_STUB,
                                      SYSTEMCTL_STUB, UNAME_STUB)

from k3s_infra import bootstrap
from k3s_infra.bootstrap import bundle as server_bundle
from k3s_infra.model import pod_identity

# Deploy-time values of the node-stack parameters.
PARAMETERS = {
    "ApiDnsName": "internal-k3s-api-0123456789abcdef.elb.eu-west-1.amazonaws.com",
    # api.scheme internet-facing only: the second, public door.
    "PublicApiDnsName": "k3s-public-api-fedcba9876543210.elb.eu-west-1.amazonaws.com",
    "TokenSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k3s-infra/k3s/token-AbCdEf",
    "AgentTokenSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k3s-infra/k3s/agent-token-GhIjKl",
    "KubeconfigSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k3s-infra/k3s/kubeconfig-MnOpQr",
    "ClusterStateParameterName": "/k3s-infra/k3s/cluster-state",
    "RestoreRequestParameterName": "/k3s-infra/k3s/restore-request",
    "ApiTargetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/k3s-Api-1AB2/0123456789abcdef",
    "SnapshotBucketName": "k3s-snapshots-bucket",
    # Add-ons (k3s_infra/model/addons.py): generated secrets and the drain queue.
    "RancherBootstrapPasswordSecretArn":
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k3s-infra/k3s/addons/rancher-bootstrap-password-StUvWx",
    "GrafanaAdminPasswordSecretArn":
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k3s-infra/k3s/addons/grafana-admin-password-YzAbCd",
    "DrainQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/k3s-Draining-DrainQueue-0AbC1dE2",
    # The Identity stack's OIDC issuer (components/oidc_issuer.py): its CloudFront URL and bucket.
    "IssuerUrl": "https://d111111abcdef8.cloudfront.net",
    "IssuerBucketName": "k3s-identity-issuerbucket-0a1b2c3d4e5f",
    **k3s_release.sandbox_parameters(),  # the digests of the K3s files staged for the nodes
}
# What Secrets Manager generated for the add-ons.
ADDON_SECRETS = {
    PARAMETERS["RancherBootstrapPasswordSecretArn"]: "RanCherB00tstrapPassw0rdGenerated",
    PARAMETERS["GrafanaAdminPasswordSecretArn"]: "GrafanaAdm1nPassw0rdGeneratedXyz",
}
# What CloudFormation substitutes for ${AWS::StackName} in a nested node stack.
NODE_STACK_NAME = "k3s-ServerInit-1A2B3C4D5E6F7"
# ... and for ${AWS::StackId}: new at every create of the stack.
NODE_STACK_ID = f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{NODE_STACK_NAME}/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
PSEUDO_PARAMETERS = {"AWS::StackName": NODE_STACK_NAME, "AWS::StackId": NODE_STACK_ID}
JOIN_URL = f"https://{PARAMETERS['ApiDnsName']}:6443"
PUBLIC_URL = f"https://{PARAMETERS['PublicApiDnsName']}:6443"
SERVER_TOKEN = "S3rv3rT0k3nNeverInUserData0123456789abcdefghijklmnopqrstuvwxyzAB"
AGENT_TOKEN = "Ag3ntT0k3nNeverInUserData0123456789abcdefghijklmnopqrstuvwxyzABCD"
INSTANCE_ID = "i-0fedcba9876543210"
ZONE = "eu-west-1b"
REGION = "eu-west-1"
IMDS_TOKEN = "imds-session-token-42"

REAL_CURL = shutil.which("curl")
# What a server's boot that succeeds asks of systemd: load, enable and start K3s (the unit
# cloud-init wrote), then its watch (boot.sh start_watch: a unit of its own).
SERVER_STARTS = [["daemon-reload"], ["enable", "k3s"], ["start", "k3s"], ["daemon-reload"],
                 ["enable", "--now", "k3s-infra-watch"]]
# K3S_INFRA_READY_ATTEMPTS in the sandbox: how many times the boot may check readiness.
READY_ATTEMPTS = 4

# K3s writes the secure form of both tokens (k3s-io/k3s:pkg/server/server.go, printTokens):
# K10<sha256 of the cluster CA (PEM as stored)>::<user>:<password> (https://docs.k3s.io/cli/token).
CA_HASH = hashlib.sha256(b"-----BEGIN CERTIFICATE-----\nsandbox cluster CA\n-----END CERTIFICATE-----\n").hexdigest()
SECURE_SERVER_TOKEN = f"K10{CA_HASH}::server:{SERVER_TOKEN}"
SECURE_AGENT_TOKEN = f"K10{CA_HASH}::node:{AGENT_TOKEN}"
# Where K3s writes them (same source); the boot publishes them from there.
K3S_TOKEN_FILES = {"token": "/var/lib/rancher/k3s/server/token",
                   "agent-token": "/var/lib/rancher/k3s/server/agent-token"}


def launch_template_user_data(template: dict) -> tuple[str, dict]:
    """(Fn::Sub text, variable map) of the one launch template in a node stack."""
    (launch,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    sub = launch["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    return (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])


class UserData(str):
    """The user data EC2 receives, and the value of the node stack's bundle parameters (servers:
    bootstrap/bundle.py, None for agents), which the instance reads at boot."""

    bundle: tuple[str, str] | None = None  # (first parameter's name, the whole value, parts joined)
    bundle_parts: tuple[tuple[str, str], ...] = ()  # (name, value) of every part, in order

    def derived(self, text: str) -> UserData:
        """Other user data text with this one's bundle (a test's variation of a node's config)."""
        other = UserData(text)
        other.bundle, other.bundle_parts = self.bundle, self.bundle_parts
        return other


def bundle_parameters(template: dict) -> tuple[tuple[str, str], ...]:
    """(Name, Value) of each of the node stack's bundle parameters, in the order boot.env names them."""
    found = {r["Properties"]["Name"]: r["Properties"]["Value"] for r in template["Resources"].values()
             if r["Type"] == "AWS::SSM::Parameter"}
    if not found:
        return ()
    names = re.search(r"BUNDLE_PARAMETERS='([^']*)'", launch_template_user_data(template)[0]).group(1)
    return tuple((name, found[name]) for name in names.split())


def expand(template: dict, parameters: dict[str, str] = PARAMETERS) -> UserData:
    """The user data EC2 receives once CloudFormation resolves Fn::Sub with these parameter values."""
    text, variables = launch_template_user_data(template)
    declared = template.get("Parameters", {})
    values = {}
    for name, ref in variables.items():
        if ref["Ref"] in PSEUDO_PARAMETERS:
            values[name] = PSEUDO_PARAMETERS[ref["Ref"]]
            continue
        assert ref["Ref"] in declared, f"{name} refers to undeclared parameter {ref['Ref']}"
        values[name] = parameters[ref["Ref"]]

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        return values[name] if name in values else parameters[name]

    user_data = UserData(re.sub(r"\$\{([^}]*)\}", one, text))
    user_data.bundle_parts = bundle_parameters(template)
    if user_data.bundle_parts:
        parts = user_data.bundle_parts
        user_data.bundle = (parts[0][0], "".join(value for _, value in parts))
    return user_data


def metadata_options(template: dict) -> dict:
    """MetadataOptions of the one launch template in a node stack."""
    (launch,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    return launch["Properties"]["LaunchTemplateData"]["MetadataOptions"]


def boot_env(user_data: str) -> dict[str, str]:
    """boot.env of a user data document, unquoted."""
    (entry,) = [e for e in yaml.safe_load(user_data)["write_files"] if e["path"] == bootstrap.BOOT_ENV]
    return {k: v.strip("'") for k, v in (line.split("=", 1) for line in entry["content"].splitlines())}


def genuine_k3s() -> str:
    """What the release serves as K3s: an executable that runs the recording k3s stub
    (k3s_stub.py) in the sandbox's stub server."""
    return stub_server.CLIENT


class Sandbox:
    """Runs the boot (or a server's watch) of one instance per run() in its own folders; a test
    may run several (a cluster's servers), each continuing an earlier one's AWS side (shared)."""

    def __init__(self, base: Path):
        self.base = base
        self.count = 0

    def run(self, user_data: str, **knobs) -> BootRun:
        """The boot of `user_data` in the scenario `knobs` describe (boot_scenario.Scenario)."""
        scenario = Scenario(**knobs)
        self.count += 1
        base = self.base if self.count == 1 else self.base / f"run{self.count}"
        root, logs, bin_dir, tmp = (base / n for n in ("root", "logs", "bin", "tmp"))
        for d in (root, logs, bin_dir, tmp):
            d.mkdir(parents=True)
        assert user_data.startswith("#cloud-config\n")
        document = yaml.safe_load(user_data)
        written = {}
        for entry in document["write_files"]:  # what cloud-init's write_files does
            target = root / entry["path"].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            content = bootstrap.unpacked(entry)  # decodes encoding: gz+b64 as cloud-init does
            target.write_text(content)
            target.chmod(int(entry["permissions"], 8))
            written[entry["path"]] = content
        boot_env = {k: v.strip("'") for k, v in (line.split("=", 1)
                                                  for line in written[bootstrap.BOOT_ENV].splitlines())}
        state = _state(scenario, user_data, boot_env)
        if scenario.mode == "watch":
            _booted(root, state, user_data)
        state_path = base / "aws-state.json"  # the AWS side, not the node
        state_path.write_text(json.dumps(state))
        stubs = base / "stubs"  # the programs' sources, run by the stub server
        stubs.mkdir()
        programs = [("aws", AWS_STUB), ("curl", CURL_STUB), ("uname", UNAME_STUB), ("dnf", RECORDER_STUB),
                    ("systemctl", SYSTEMCTL_STUB), ("k3s", K3S_STUB)]
        if scenario.mode == "watch":  # the watch's sleeps, recorded (the boot's back-off sleeps for real)
            programs.append(("sleep", SLEEP_STUB))
        for name, body in programs:
            (stubs / f"{name}.py").write_text(body)
            if name != "k3s":  # K3s is what the boot downloads, verifies and installs
                (bin_dir / name).write_text(stub_server.CLIENT)
                (bin_dir / name).chmod(0o755)

        imds = ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
        imds.requests, imds.token = [], IMDS_TOKEN
        imds.options = scenario.metadata or {"HttpEndpoint": "enabled", "HttpTokens": "required"}
        imds.failures = {"token": scenario.imds_token_failures, "get": scenario.imds_get_failures}
        imds.metadata = {"instance-id": state["instance_id"], "placement/availability-zone": ZONE,
                         "placement/region": REGION}
        if scenario.lifecycle_state is not None:
            imds.metadata["autoscaling/target-lifecycle-state"] = scenario.lifecycle_state
        imds.lock = threading.Lock()
        # shutdown() waits for the loop to look again: every 20 ms, not the default 500 ms.
        threading.Thread(target=imds.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        environment = {
            "PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(base), "TMPDIR": str(tmp), "LANG": "C",
            "K3S_INFRA_ROOT": str(root), "K3S_INFRA_IMDS_URL": f"http://127.0.0.1:{imds.server_port}",
            "K3S_INFRA_RETRY_BASE": str(scenario.retry_base), "K3S_INFRA_RETRY_MAX": str(scenario.retry_max),
            "K3S_INFRA_JOIN_ATTEMPTS": str(scenario.join_attempts), "K3S_INFRA_PROBE_ATTEMPTS": "3",
            "K3S_INFRA_READY_ATTEMPTS": str(READY_ATTEMPTS),
            "K3S_INFRA_START_TIMEOUT": str(scenario.start_timeout),
            "K3S_INFRA_TOKEN_ATTEMPTS": str(scenario.token_attempts), "K3S_INFRA_FACT_ATTEMPTS": "3",
            "STUB_LOG": str(logs), "STUB_STATE": str(state_path), "STUB_ARCH": scenario.arch,
            "STUB_CA_HASH": CA_HASH, "STUB_KUBECONFIG": K3S_KUBECONFIG,
            "REAL_CURL": REAL_CURL,
        }
        if scenario.boot_deadline is not None:
            environment["K3S_INFRA_BOOT_DEADLINE"] = str(scenario.boot_deadline)
        if scenario.s3_endpoint:
            environment["STUB_S3_ENDPOINT"] = scenario.s3_endpoint
        if scenario.xtrace:  # every command with the time and the functions it runs in
            trace_setup = base / "xtrace.sh"
            trace_setup.write_text(f"case $0 in */k3s-infra-boot) exec 9>>'{scenario.xtrace}'; BASH_XTRACEFD=9\n"
                                   "PS4='+${EPOCHREALTIME} ${FUNCNAME[*]:-} '; set -x ;; esac\n")
            environment["BASH_ENV"] = str(trace_setup)
        arguments = []
        if scenario.mode == "watch":
            arguments = ["watch"]
            environment |= {"K3S_INFRA_WATCH_ROUNDS": str(scenario.watch_rounds), "K3S_INFRA_WATCH_INTERVAL": "0",
                            "K3S_INFRA_UNHEALTHY_AFTER": str(scenario.unhealthy_after)}
        server_log = (base / "stub-server.log").open("w")
        server = subprocess.Popen([sys.executable, stub_server.__file__, str(stubs)], stdout=subprocess.PIPE,
                                  stderr=server_log, env=environment, cwd=base, start_new_session=True, text=True)
        try:
            environment["STUB_PORT"] = server.stdout.readline().strip()
            assert environment["STUB_PORT"], (base / "stub-server.log").read_text()
            (command,) = document["runcmd"]
            done = subprocess.run(["/bin/bash", str(root / command[0].lstrip("/")), *arguments], env=environment,
                                  capture_output=True, text=True, timeout=scenario.timeout, cwd=base)
        finally:
            os.killpg(server.pid, signal.SIGKILL)  # the server and any program still running (a hang)
            server.wait()
            server.stdout.close()
            server_log.close()
            imds.shutdown()
            imds.server_close()
        errors = logs / "stub-server-errors.log"  # the sandbox failed, not the boot
        assert not errors.exists(), errors.read_text()
        return BootRun(done.returncode, done.stdout, done.stderr, root, logs, tmp,
                       json.loads(state_path.read_text()), imds.requests, written, imds.options)


def _state(scenario: Scenario, user_data: str, boot_env: dict[str, str]) -> dict:
    """The scenario as the stubs read it (the AWS side, the cluster, this node's K3s)."""
    s = scenario
    own = s.instance_id or INSTANCE_ID
    secure_tokens = s.secure_tokens and s.publish_after is None
    bundle = list(getattr(user_data, "bundle_parts", ()))
    if bundle and s.bundle is not None:  # the given value, cut across the same parameters
        size = -(-len(s.bundle) // len(bundle))
        bundle = [(name, s.bundle[n * size:(n + 1) * size]) for n, (name, _) in enumerate(bundle)]
    def listed(given):  # (ID, state) pairs; bare states get made-up IDs
        return [tuple(t) if isinstance(t, (tuple, list)) else (f"i-0{n:016x}", t) for n, t in enumerate(given)]
    targets = listed(s.targets)
    targets_after = None if s.targets_after is None else [s.targets_after[0], listed(s.targets_after[1])]
    lifecycle = "Terminating:Wait" if s.lifecycle_state == "Terminated" else "InService"
    groups = list(s.groups) if s.groups is not None else [lone_group(own, lifecycle)]
    descriptions = json.loads(json.dumps([g.description for g in groups]))
    for description in descriptions:  # the group holds a terminating instance in its hooks' wait state
        for instance in description["Instances"]:
            if instance["InstanceId"] == own and s.lifecycle_state == "Terminated":
                instance["LifecycleState"] = "Terminating:Wait"
    named = [own, *s.members, *(t[0] for t in targets), *(t[0] for t in (targets_after or (0, []))[1]),
             *(s.gone_after or {}),
             *(i["InstanceId"] for d in descriptions for i in d["Instances"])]
    state = {
        "secrets": {PARAMETERS["TokenSecretArn"]: SECURE_SERVER_TOKEN if secure_tokens else SERVER_TOKEN,
                    PARAMETERS["AgentTokenSecretArn"]: SECURE_AGENT_TOKEN if secure_tokens else AGENT_TOKEN,
                    PARAMETERS["KubeconfigSecretArn"]: "placeholder-generated-by-secrets-manager",
                    **ADDON_SECRETS},
        "parameters": {name: value for name, value in (
            (PARAMETERS["ClusterStateParameterName"], s.marker),
            (PARAMETERS["RestoreRequestParameterName"], s.restore_request),
            *bundle, *_facts(s, boot_env)) if value is not None},
        "writes": [], "unreachable": list(s.unreachable),
        "k3s_objects": k3s_release.staged_objects(boot_env, s.binary, s.images),
        "download_failures": s.download_failures,
        "k3s_reads": [],
        "publish_after": s.publish_after, "token_reads": 0,
        "secure": {PARAMETERS["TokenSecretArn"]: SECURE_SERVER_TOKEN,
                   PARAMETERS["AgentTokenSecretArn"]: SECURE_AGENT_TOKEN},
        "api_url": JOIN_URL, "api_probes": 0, "api_up_after": s.api_up_after,
        "signals": [], "signal_waited_for": s.signal_waited_for, "health_reports": [],
        "targets": targets, "targets_after": targets_after, "target_reads": 0,
        "objects": [list(o) for o in s.objects],
        "own_target": s.own_target, "instance_id": own, "zone": ZONE,
        "denied_parameters": list(s.denied_parameters), "denied_secrets": list(s.denied_secrets),
        "target_group_arn": PARAMETERS["ApiTargetGroupArn"], "bucket": PARAMETERS["SnapshotBucketName"],
        "restore_hangs": s.restore_hangs, "systemctl_failures": list(s.systemctl_failures),
        "started": False, "node_ready": s.node_ready, "node_appears": s.node_appears,
        "local_k3s_up": s.local_k3s_up, "watch_started": False,
        "instances": {**{i: "running" for i in named}, **(s.instances or {})}, "gone_after": dict(s.gone_after or {}),
        "kubectl_hangs": s.kubectl_hangs,
        "groups": descriptions, "lifecycle_hooks": {g.name: list(g.hooks) for g in groups},
        "tags": [], "lifecycle_actions": [],
        "members": [member(i) for i in s.members], "promote_after": s.promote_after, "db_info_reads": 0,
        "server_password": SERVER_TOKEN,
        "nodes": list(s.members if s.nodes is None else s.nodes), "deleted_nodes": [],
        "snapshot_fails": s.snapshot_fails, "snapshots_saved": [],
        "vanishing_parameters": list(s.vanishing_parameters), "signal_failures": s.signal_failures,
        # The service account issuer: the JWKS this K3s's API serves (a later one after that many
        # reads: a key rotation), the issuer bucket's objects, and the cluster's Secrets and
        # applied objects (k3s_stub.py).
        "jwks": service_accounts.jwks([service_accounts.signing_key(n) for n in s.service_account_keys]),
        "jwks_after": None if s.keys_after is None else [
            s.keys_after[0], service_accounts.jwks([service_accounts.signing_key(n) for n in s.keys_after[1]])],
        "jwks_reads": 0, "issuer_bucket": PARAMETERS["IssuerBucketName"], "issuer_objects": {}, "issuer_puts": [],
        "issuer_keys": [pod_identity.DISCOVERY_KEY, pod_identity.JWKS_KEY],
        "cluster_secrets": {}, "applied": [],
        # The add-ons' manifests the deployer uploaded (deploy/package.py), by bucket/key.
        "addons_objects": _addons_objects(user_data, s), "addons_reads": [],
        "pods": [list(p) for p in s.pods], "deleted_pods": [], "webhook_ready": s.webhook_ready,
    }
    if s.shared is not None:
        state |= json.loads(json.dumps({key: s.shared[key] for key in SHARED}))
    return state


# The stack parameter each boot fact (boot.env FACTS) stands in for: its value, as the stack wrote it.
FACT_VALUES = {"ISSUER_URL": PARAMETERS["IssuerUrl"], "API_DNS_NAME": PARAMETERS["ApiDnsName"],
               "PUBLIC_API_DNS_NAME": PARAMETERS["PublicApiDnsName"], "ISSUER_BUCKET": PARAMETERS["IssuerBucketName"]}


def _facts(s: Scenario, boot_env: dict[str, str]) -> list[tuple[str, str | None]]:
    """(SSM name, value) of every fact the boot reads, as the scenario says."""
    pairs = [fact.split("=", 1) for fact in boot_env.get("FACTS", "").split()]
    return [(parameter, (s.facts or {}).get(name, FACT_VALUES[name])) for name, parameter in pairs]


def _addons_objects(user_data, s) -> dict[str, str]:
    """The object this server's bundle names, as uploaded (absent: never published); a scenario's
    ``addons_body`` replaces its bytes (a tampered object)."""
    if not getattr(user_data, "bundle", None):
        return {}
    location = addons_location(server_bundle.unpack(user_data.bundle[1]).get(server_bundle.BUNDLE_ENV, ""))
    if location is None or location not in PUBLISHED:
        return {}
    return {location: PUBLISHED[location] if s.addons_body is None else s.addons_body}


def _booted(root: Path, state: dict, user_data: str) -> None:
    """What a completed boot left on a server: its bundle extracted (boot.sh install_bundle),
    the verified K3s installed and running, this server a voting etcd member with its Node."""
    for path, text in server_bundle.unpack(user_data.bundle[1]).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o600)
    binary = root / "usr/local/bin/k3s"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text(genuine_k3s())
    binary.chmod(0o755)
    (root / "etc/rancher/k3s/k3s.yaml").write_text(K3S_KUBECONFIG)
    for path in (bootstrap.BOOT_ENV, bootstrap.K3S_CONFIG, bootstrap.REJOIN_CONFIG):  # its facts bound (bind_facts)
        written = root / path.lstrip("/")
        if written.exists():
            text = written.read_text()
            for name, value in FACT_VALUES.items():
                text = text.replace(f"@@K3S_INFRA_FACT_{name}@@", value)
            written.write_text(text)
    state["started"] = True
    state["members"].append(member(state["instance_id"]))

def token_leaks(run: BootRun, allowed: dict[str, str]) -> list[str]:
    """Every place a token shows up other than the files K3s reads it from (path -> token)."""
    leaks = []
    tokens = (SERVER_TOKEN, AGENT_TOKEN)
    # The files K3s itself writes the secure tokens to (0600, as K3s does) are K3s's, not leaks.
    allowed = {K3S_TOKEN_FILES["token"]: SERVER_TOKEN, K3S_TOKEN_FILES["agent-token"]: AGENT_TOKEN, **allowed}
    for where, text in (("stdout", run.stdout), ("stderr", run.stderr)):
        leaks += [f"{where}: {t[:6]}" for t in tokens if t in text]
    for folder in (run.root, run.logs, run.tmp):
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            text = path.read_text(errors="replace")
            absolute = "/" + str(path.relative_to(run.root)) if folder == run.root else str(path)
            for token in tokens:
                if token in text and allowed.get(absolute) != token:
                    leaks.append(f"{absolute}: {token[:6]}")
    return leaks
