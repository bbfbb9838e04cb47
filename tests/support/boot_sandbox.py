"""A sandbox that runs the real boot script from a rendered launch template.

Nothing leaves the machine: a loopback HTTP server plays the instance metadata
service (IMDSv2 token flow enforced), and stub executables first on PATH play
``aws`` (Secrets Manager and SSM, state in a JSON file), ``curl``, ``uname``
and ``systemctl``. The ``curl`` stub hands loopback URLs to the real curl,
serves the K3s release: the "binary" is a stub ``k3s`` that records its calls,
its published ``sha256sum-<arch>.txt`` only from the official release URL;
answers the API endpoint's ``/ping`` as the scenario says, and refuses every
other URL. The boot verifies and installs that stub as it would K3s, then runs it. Paths are redirected with K3S_INFRA_ROOT and retries
shortened with K3S_INFRA_RETRY_*: variables the script documents.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from tests.support.boot_stubs import (AWS_STUB, CURL_STUB, K3S_KUBECONFIG, K3S_STUB, RECORDER_STUB, SYSTEMCTL_STUB,
                        UNAME_STUB)

from k3s_infra import bootstrap

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
OFFICIAL_RELEASES = "https://github.com/k3s-io/k3s/releases/download"
# Release asset name per `uname -m` (k3s-io/k3s:install.sh, setup_verify_arch).
ASSETS = {"x86_64": ("amd64", "k3s"), "aarch64": ("arm64", "k3s-arm64")}


def launch_template_user_data(template: dict) -> tuple[str, dict]:
    """(Fn::Sub text, variable map) of the one launch template in a node stack."""
    (launch,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    sub = launch["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    return (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])


def expand(template: dict, parameters: dict[str, str] = PARAMETERS) -> str:
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

    return re.sub(r"\$\{([^}]*)\}", one, text)


def metadata_options(template: dict) -> dict:
    """MetadataOptions of the one launch template in a node stack."""
    (launch,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    return launch["Properties"]["LaunchTemplateData"]["MetadataOptions"]


def boot_env(user_data: str) -> dict[str, str]:
    """boot.env of a user data document, unquoted."""
    (entry,) = [e for e in yaml.safe_load(user_data)["write_files"] if e["path"] == bootstrap.BOOT_ENV]
    return {k: v.strip("'") for k, v in (line.split("=", 1) for line in entry["content"].splitlines())}


def effective_config(root: Path) -> dict:
    """K3s's reading of config.yaml plus config.yaml.d/*.yaml: later keys win, 'key+' appends."""
    base = root / "etc/rancher/k3s"
    merged: dict = {}
    for path in [base / "config.yaml", *sorted((base / "config.yaml.d").glob("*.yaml"))]:
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if key.endswith("+"):
                key = key[:-1]
                merged[key] = list(merged.get(key, [])) + list(value)
            else:
                merged[key] = value
    return merged


class _Imds(BaseHTTPRequestHandler):
    """The instance metadata service as the launch template's MetadataOptions configure it
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html):
    HttpTokens=required refuses a GET without a session token with 401
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html);
    HttpEndpoint=disabled gives no answer at all. The hop limit cannot matter on loopback
    (one hop); it is recorded on the run for tests to assert.

    A scenario may make it briefly unavailable: the first ``failures["token"]`` token PUTs
    and the first ``failures["get"]`` metadata GETs answer 503 Service Unavailable. The real
    IMDS throttles queries per instance and may answer 503 to a request it cannot complete;
    AWS's advice is to retry, with exponential back-off (EC2 User Guide, "Access instance
    metadata for an EC2 instance": its HTTP error codes and "Query throttling",
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html#instancedata-throttling).
    A 503 to the token PUT during boot is seen in practice (canonical/cloud-init#5577).
    A throttled request is refused before its token is looked at."""

    metadata = {"instance-id": INSTANCE_ID, "placement/availability-zone": ZONE, "placement/region": REGION}

    def do_PUT(self):  # noqa: N802
        self.server.requests.append(("PUT", self.path, dict(self.headers)))
        if self._disabled():
            return
        if self.path == "/latest/api/token" and self._unavailable("token"):
            return
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self._reply(200, IMDS_TOKEN)
        self._reply(400, "")

    def do_GET(self):  # noqa: N802
        self.server.requests.append(("GET", self.path, dict(self.headers)))
        if self._disabled() or self._unavailable("get"):
            return
        token = self.headers.get("X-aws-ec2-metadata-token")
        if token != IMDS_TOKEN and (token is not None or self.server.options.get("HttpTokens") == "required"):
            return self._reply(401, "")
        key = self.path.removeprefix("/latest/meta-data/")
        if key in self.metadata:
            return self._reply(200, self.metadata[key])
        self._reply(404, "")

    def _disabled(self) -> bool:
        if self.server.options.get("HttpEndpoint", "enabled") == "disabled":
            self.close_connection = True  # no answer
            return True
        return False

    def _unavailable(self, kind: str) -> bool:
        """Answer 503 while this kind of request still has scenario failures left."""
        with self.server.lock:  # one counter, however the server threads interleave
            if self.server.failures[kind] <= 0:
                return False
            self.server.failures[kind] -= 1
        self._reply(503, "<html><body><h1>503 Service Unavailable</h1></body></html>\n")
        return True

    def _reply(self, status: int, body: str):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def genuine_k3s() -> str:
    """What the release serves as K3s: the recording k3s stub, as an executable script."""
    return f"#!{sys.executable}\n{K3S_STUB}"


@dataclass
class BootRun:
    returncode: int
    stdout: str
    stderr: str
    root: Path
    logs: Path
    tmp: Path
    state: dict
    imds_requests: list
    files: dict[str, str]  # write_files path -> content
    imds_options: dict  # the MetadataOptions the metadata service followed

    @property
    def signals(self) -> list[list[str]]:
        """Every SignalResource call: [stack, logical resource, unique id, status]."""
        return self.state["signals"]

    def _lines(self, name: str) -> list:
        path = self.logs / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    @property
    def aws_calls(self) -> list[list[str]]:
        return self._lines("aws.jsonl")

    @property
    def curl_calls(self) -> list[list[str]]:
        return self._lines("curl.jsonl")

    @property
    def urls(self) -> list[str]:
        return [[a for a in call if a.startswith(("http://", "https://"))][-1] for call in self.curl_calls]

    @property
    def k3s_calls(self) -> list[list[str]]:
        return self._lines("k3s.jsonl")

    @property
    def dnf_calls(self) -> list[list[str]]:
        return self._lines("dnf.jsonl")

    @property
    def systemctl_calls(self) -> list[list[str]]:
        return self._lines("systemctl.jsonl")

    @property
    def installed(self) -> bool:
        """The K3s binary is in place, executable, with the links the official installer makes."""
        binary = self.path("/usr/local/bin/k3s")
        if not binary.exists():
            return False
        assert binary.stat().st_mode & 0o777 == 0o755
        for link in ("kubectl", "crictl", "ctr"):
            assert self.path(f"/usr/local/bin/{link}").resolve() == binary.resolve()
        return True

    def secret_writes(self) -> list[list[str]]:
        """Every put-secret-value call as made (argument lists)."""
        return [c for c in self.aws_calls if "put-secret-value" in c]

    def secrets_read(self) -> list[str]:
        return [c[c.index("--secret-id") + 1] for c in self.aws_calls if "get-secret-value" in c]

    def config(self) -> dict:
        return effective_config(self.root)

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")


class Sandbox:
    def __init__(self, base: Path):
        self.base = base

    def run(self, user_data: str, *, marker: str | None = None, api_up_after: int | None = None,
            unreachable: tuple[str, ...] = (), join_attempts: int = 6, targets: tuple[str, ...] = (),
            restore_request: str | None = None, objects: tuple[tuple[str, str], ...] = (),
            node_ready: bool = True, signal_waited_for: bool = True, metadata: dict | None = None,
            secure_tokens: bool = True, token_attempts: int = 3, arch: str = "x86_64",
            binary: str | None = None, download_failures: int = 0,
            publish_after: int | None = None, own_target: str | None = None,
            denied_parameters: tuple[str, ...] = (), denied_secrets: tuple[str, ...] = (),
            restore_hangs: bool = False,
            systemctl_failures: tuple[str, ...] = (), start_timeout: int = 20,
            imds_token_failures: int = 0, imds_get_failures: int = 0) -> BootRun:
        """marker None: no cluster-state parameter (ParameterNotFound); targets: the API
        target group's target states; objects: (key, LastModified) in the snapshot bucket;
        metadata: the launch template's MetadataOptions (default: IMDSv2 required);
        secure_tokens: the token secrets hold what the first server published (else the
        short values Secrets Manager generated); binary: what the release URL serves
        instead of the genuine (stub) K3s, e.g. a tampered one; publish_after: the token
        secrets hold short values for that many reads, then the secure ones; own_target: this
        instance's state in the API target group (None: not registered yet); denied_parameters:
        SSM names the instance role may not read (AccessDeniedException); denied_secrets: secret
        ARNs it may not write (PutSecretValue, AccessDeniedException); restore_hangs: K3s's
        --cluster-reset never returns; systemctl_failures: systemctl verbs that fail;
        start_timeout: K3S_INFRA_START_TIMEOUT (seconds); imds_token_failures,
        imds_get_failures: the metadata service answers that many token PUTs, metadata GETs
        with 503 before it serves them (see _Imds)."""
        base = self.base
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
        secure_tokens = secure_tokens and publish_after is None
        boot_env = {k: v.strip("'") for k, v in (line.split("=", 1)
                                                  for line in written[bootstrap.BOOT_ENV].splitlines())}
        genuine = genuine_k3s()
        version = boot_env["K3S_VERSION"].replace("+", "%2B")  # URL-encoded, as GitHub names the tag
        downloads = {}
        for arch_name, asset in ASSETS.values():
            downloads[f"{boot_env['RELEASE_URL']}/{version}/{asset}"] = genuine if binary is None else binary
            # Published with the release, as sha256sum(1) prints it; only the official release has it.
            downloads[f"{OFFICIAL_RELEASES}/{version}/sha256sum-{arch_name}.txt"] = (
                f"{hashlib.sha256(genuine.encode()).hexdigest()}  {asset}\n"
                f"{'0' * 64}  k3s-airgap-images-{arch_name}.tar\n")
        state = {
            "secrets": {PARAMETERS["TokenSecretArn"]: SECURE_SERVER_TOKEN if secure_tokens else SERVER_TOKEN,
                        PARAMETERS["AgentTokenSecretArn"]: SECURE_AGENT_TOKEN if secure_tokens else AGENT_TOKEN,
                        PARAMETERS["KubeconfigSecretArn"]: "placeholder-generated-by-secrets-manager",
                        **ADDON_SECRETS},
            "parameters": {name: value for name, value in (
                (PARAMETERS["ClusterStateParameterName"], marker),
                (PARAMETERS["RestoreRequestParameterName"], restore_request)) if value is not None},
            "writes": [], "unreachable": list(unreachable),
            "downloads": downloads, "download_failures": download_failures,
            "publish_after": publish_after, "token_reads": 0,
            "secure": {PARAMETERS["TokenSecretArn"]: SECURE_SERVER_TOKEN,
                       PARAMETERS["AgentTokenSecretArn"]: SECURE_AGENT_TOKEN},
            "api_url": JOIN_URL, "api_probes": 0, "api_up_after": api_up_after,
            "signals": [], "signal_waited_for": signal_waited_for, "health_reports": [],
            "targets": list(targets), "objects": [list(o) for o in objects],
            "own_target": own_target, "instance_id": INSTANCE_ID, "denied_parameters": list(denied_parameters),
            "denied_secrets": list(denied_secrets),
            "target_group_arn": PARAMETERS["ApiTargetGroupArn"], "bucket": PARAMETERS["SnapshotBucketName"],
            "restore_hangs": restore_hangs, "systemctl_failures": list(systemctl_failures),
            "started": False, "node_ready": node_ready,
        }
        state_path = base / "aws-state.json"  # the AWS side, not the node
        state_path.write_text(json.dumps(state))
        for name, body in (("aws", AWS_STUB), ("curl", CURL_STUB), ("uname", UNAME_STUB),
                           ("dnf", RECORDER_STUB), ("systemctl", SYSTEMCTL_STUB)):
            (bin_dir / name).write_text(f"#!{sys.executable}\n{body}")
            (bin_dir / name).chmod(0o755)

        imds = ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
        imds.requests = []
        imds.options = metadata or {"HttpEndpoint": "enabled", "HttpTokens": "required"}
        imds.failures = {"token": imds_token_failures, "get": imds_get_failures}
        imds.lock = threading.Lock()
        threading.Thread(target=imds.serve_forever, daemon=True).start()
        try:
            (command,) = document["runcmd"]
            environment = {
                "PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(base), "TMPDIR": str(tmp), "LANG": "C",
                "K3S_INFRA_ROOT": str(root), "K3S_INFRA_IMDS_URL": f"http://127.0.0.1:{imds.server_port}",
                "K3S_INFRA_RETRY_BASE": "0", "K3S_INFRA_RETRY_MAX": "0",
                "K3S_INFRA_JOIN_ATTEMPTS": str(join_attempts), "K3S_INFRA_PROBE_ATTEMPTS": "3",
                "K3S_INFRA_READY_ATTEMPTS": str(READY_ATTEMPTS), "K3S_INFRA_START_TIMEOUT": str(start_timeout),
                "K3S_INFRA_TOKEN_ATTEMPTS": str(token_attempts),
                "STUB_LOG": str(logs), "STUB_STATE": str(state_path), "STUB_ARCH": arch,
                "STUB_CA_HASH": CA_HASH, "STUB_KUBECONFIG": K3S_KUBECONFIG,
                "REAL_CURL": REAL_CURL,
            }
            done = subprocess.run(["/bin/bash", str(root / command[0].lstrip("/"))], env=environment,
                                  capture_output=True, text=True, timeout=60, cwd=base)
        finally:
            imds.shutdown()
            imds.server_close()
        return BootRun(done.returncode, done.stdout, done.stderr, root, logs, tmp,
                       json.loads(state_path.read_text()), imds.requests, written, imds.options)


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
