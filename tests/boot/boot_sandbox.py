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
    # Add-ons (k3s_infra/addons.py): generated secrets and the drain queue.
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
PSEUDO_PARAMETERS = {"AWS::StackName": NODE_STACK_NAME}
JOIN_URL = f"https://{PARAMETERS['ApiDnsName']}:6443"
PUBLIC_URL = f"https://{PARAMETERS['PublicApiDnsName']}:6443"
SERVER_TOKEN = "S3rv3rT0k3nNeverInUserData0123456789abcdefghijklmnopqrstuvwxyzAB"
AGENT_TOKEN = "Ag3ntT0k3nNeverInUserData0123456789abcdefghijklmnopqrstuvwxyzABCD"
INSTANCE_ID = "i-0fedcba9876543210"
ZONE = "eu-west-1b"
REGION = "eu-west-1"
IMDS_TOKEN = "imds-session-token-42"

REAL_CURL = shutil.which("curl")

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
    (one hop); it is recorded on the run for tests to assert."""

    metadata = {"instance-id": INSTANCE_ID, "placement/availability-zone": ZONE, "placement/region": REGION}

    def do_PUT(self):  # noqa: N802
        self.server.requests.append(("PUT", self.path, dict(self.headers)))
        if self._disabled():
            return
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self._reply(200, IMDS_TOKEN)
        self._reply(400, "")

    def do_GET(self):  # noqa: N802
        self.server.requests.append(("GET", self.path, dict(self.headers)))
        if self._disabled():
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

    def _reply(self, status: int, body: str):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


# The AWS CLI v2 as the boot uses it: real response shapes, --query applied with JMESPath
# (as the CLI does, client side: https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-filter.html),
# --output text/json as the CLI prints them, errors as
# "An error occurred (<Code>) when calling the <Operation> operation: <Message>" on stderr
# with exit code 254 (service error) or 255 (no connection)
# (https://docs.aws.amazon.com/cli/latest/userguide/cli-chap-return-codes.html).
_AWS_STUB = r"""
import json, os, sys
import jmespath
args = sys.argv[1:]
state_path = os.environ["STUB_STATE"]
with open(os.path.join(os.environ["STUB_LOG"], "aws.jsonl"), "a") as log:
    log.write(json.dumps(args) + "\n")
state = json.load(open(state_path))
words, opts, i = [], {}, 0
while i < len(args):
    if args[i].startswith("--"):
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            opts[args[i]] = args[i + 1]; i += 2
        else:
            opts[args[i]] = True; i += 1
    else:
        words.append(args[i]); i += 1
service, command = words[0], words[1]
operation = "".join(part.title() for part in command.split("-"))
def save():
    json.dump(state, open(state_path, "w"))
def fail(code, message):
    print(f"\nAn error occurred ({code}) when calling the {operation} operation: {message}", file=sys.stderr)
    sys.exit(254)
def text(value):
    if value is None:
        return "None"
    if isinstance(value, list):
        return "\t".join(text(v) for v in value)
    return str(value)
def answer(response):
    if response is None:  # operations without a response body print nothing
        sys.exit(0)
    if "--query" in opts:
        response = jmespath.search(opts["--query"], response)
    print(text(response) if opts.get("--output") == "text" else json.dumps(response, indent=4))
    sys.exit(0)
if service in state["unreachable"]:
    print(f"\nCould not connect to the endpoint URL: \"https://{service}.{opts.get('--region')}.amazonaws.com/\"",
          file=sys.stderr)
    sys.exit(255)
# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
if (service, command) == ("secretsmanager", "get-secret-value"):
    secret = state["secrets"].get(opts["--secret-id"])
    if state["publish_after"] is not None and opts["--secret-id"] in state["secure"]:
        # The first server publishes the secure tokens while this node waits.
        state["token_reads"] += 1; save()
        if state["token_reads"] > state["publish_after"]:
            secret = state["secure"][opts["--secret-id"]]
    if secret is None:
        fail("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
    answer({"ARN": opts["--secret-id"], "Name": opts["--secret-id"].split(":")[-1], "SecretString": secret,
            "VersionId": "v1", "VersionStages": ["AWSCURRENT"], "CreatedDate": "2025-01-01T00:00:00+00:00"})
# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
elif (service, command) == ("secretsmanager", "put-secret-value"):
    source = opts["--secret-string"]
    if not source.startswith("file://"):
        print("stub aws: secrets must not travel on the command line", file=sys.stderr); sys.exit(252)
    state["secrets"][opts["--secret-id"]] = open(source[len("file://"):]).read()
    state["writes"].append(["secret", opts["--secret-id"]]); save()
    answer({"ARN": opts["--secret-id"], "Name": "kubeconfig", "VersionId": "v2", "VersionStages": ["AWSCURRENT"]})
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
elif (service, command) == ("ssm", "get-parameter"):
    if opts["--name"] not in state["parameters"]:
        fail("ParameterNotFound", "")
    answer({"Parameter": {"Name": opts["--name"], "Type": "String", "Value": state["parameters"][opts["--name"]],
                          "Version": 1, "DataType": "text"}})
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html:
# without Overwrite an existing name is ParameterAlreadyExists.
elif (service, command) == ("ssm", "put-parameter"):
    if opts["--name"] in state["parameters"] and "--overwrite" not in opts:
        fail("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, "
                                       "set the overwrite option in the request to true.")
    state["parameters"][opts["--name"]] = opts["--value"]
    state["writes"].append(["parameter", opts["--name"]]); save()
    answer({"Version": 1, "Tier": "Standard"})
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html
elif (service, command) == ("ssm", "delete-parameter"):
    if opts["--name"] not in state["parameters"]:
        fail("ParameterNotFound", "")
    del state["parameters"][opts["--name"]]
    state["writes"].append(["deleted", opts["--name"]]); save()
    answer(None)
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_SignalResource.html:
# a resource that no longer waits for signals answers ValidationError, worded as in
# awslabs/aws-cloudformation-templates#34 ("... is in CREATE_COMPLETE state and cannot be signaled").
elif (service, command) == ("cloudformation", "signal-resource"):
    state["signals"].append([opts["--stack-name"], opts["--logical-resource-id"], opts["--unique-id"],
                             opts["--status"]]); save()
    if not state["signal_waited_for"]:
        fail("ValidationError", f"Stack arn:aws:cloudformation:eu-west-1:123456789012:stack/"
                                f"{opts['--stack-name']}/0 is in CREATE_COMPLETE state and cannot be signaled")
    answer(None)
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceHealth.html
elif (service, command) == ("autoscaling", "set-instance-health"):
    state["health_reports"].append([opts["--instance-id"], opts["--health-status"],
                                    "--no-should-respect-grace-period" in opts]); save()
    answer(None)
# https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTargetHealth.html
elif (service, command) == ("elbv2", "describe-target-health"):
    answer({"TargetHealthDescriptions": [
        {"Target": {"Id": f"i-0{n:016x}", "Port": 6443}, "HealthCheckPort": "6443",
         "TargetHealth": {"State": target_state}} for n, target_state in enumerate(state["targets"])]})
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html: no Contents when nothing matches.
elif (service, command) == ("s3api", "list-objects-v2"):
    prefix = opts.get("--prefix", "")
    contents = [{"Key": key, "LastModified": modified, "ETag": '"0"', "Size": 1024, "StorageClass": "STANDARD"}
                for key, modified in state["objects"] if key.startswith(prefix)]
    answer({"KeyCount": len(contents), "Name": opts["--bucket"], "Prefix": prefix, "MaxKeys": 1000,
            **({"Contents": contents} if contents else {})})
else:
    print(f"stub aws: unexpected {args}", file=sys.stderr); sys.exit(252)
"""

_CURL_STUB = r"""
import json, os, sys
args = sys.argv[1:]
url = [a for a in args if a.startswith(("http://", "https://"))][-1]
with open(os.path.join(os.environ["STUB_LOG"], "curl.jsonl"), "a") as log:
    log.write(json.dumps(url) + "\n")
state_path = os.environ["STUB_STATE"]
state = json.load(open(state_path))
if url == "http://127.0.0.1:10248/healthz":  # the kubelet's local health endpoint
    if state["started"] and state["node_ready"]:
        print("ok"); sys.exit(0)
    sys.exit(7)
if url.startswith("http://127.0.0.1:"):
    os.execv(os.environ["REAL_CURL"], ["curl", *args])
if url in state["downloads"]:  # release assets: the binary and its published checksums
    if state["download_failures"] > 0:  # HTTP 5xx: curl -f exits 22
        state["download_failures"] -= 1
        json.dump(state, open(state_path, "w"))
        sys.exit(22)
    with open(args[args.index("-o") + 1], "w") as out:
        out.write(state["downloads"][url])
    sys.exit(0)
if url == state["api_url"] + "/ping":
    state["api_probes"] += 1
    json.dump(state, open(state_path, "w"))
    up_after = state["api_up_after"]
    if up_after is not None and state["api_probes"] > up_after:
        print("pong"); sys.exit(0)
    sys.exit(7)  # could not connect
print(f"stub curl: no network for {url}", file=sys.stderr)
sys.exit(6)
"""

# uname -m: the node's architecture as the scenario says.
_UNAME_STUB = r"""
import os, sys
print(os.environ["STUB_ARCH"] if sys.argv[1:] == ["-m"] else "Linux")
"""

# dnf: records what the boot asks of the package manager.
_RECORDER_STUB = r"""
import json, os, sys
with open(os.path.join(os.environ["STUB_LOG"], os.path.basename(sys.argv[0]) + ".jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
"""

# systemctl: `start k3s` starts a server, which writes its kubeconfig as K3s does (all names
# 'default') and both tokens in the secure form; only an installed, enabled unit starts.
_SYSTEMCTL_STUB = r"""
import json, os, sys
with open(os.path.join(os.environ["STUB_LOG"], "systemctl.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
state_path = os.environ["STUB_STATE"]
state = json.load(open(state_path))
root = os.environ["K3S_INFRA_ROOT"]
if sys.argv[1:2] == ["start"] and sys.argv[2] in ("k3s", "k3s-agent"):
    if not os.access(os.path.join(root, "usr/local/bin/k3s"), os.X_OK):
        print(f"Failed to start {sys.argv[2]}.service: no K3s binary", file=sys.stderr); sys.exit(1)
    state["started"] = True
    json.dump(state, open(state_path, "w"))
    if sys.argv[2] == "k3s":
        with open(os.path.join(root, "etc/rancher/k3s/k3s.yaml"), "w") as out:
            out.write(os.environ["STUB_KUBECONFIG"])
        tokens = os.path.join(root, "var/lib/rancher/k3s/server")
        os.makedirs(tokens, exist_ok=True)
        for name, user, source in (("token", "server", "token"), ("agent-token", "node", "agent-token")):
            password = open(os.path.join(root, "etc/rancher/k3s", source)).read().strip()
            password = password.split(":")[-1]  # K3s normalises a secure token to its password
            with open(os.path.join(tokens, name), "w") as out:
                out.write(f"K10{os.environ['STUB_CA_HASH']}::{user}:{password}\n")
"""

# The kubeconfig K3s writes on a server (k3s.yaml).
K3S_KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVAo=
    client-key-data: S0VZCg==
"""

# k3s: kubectl answers once the service started and the scenario lets the node get ready.
_K3S_STUB = r"""
import json, os, sys
with open(os.path.join(os.environ["STUB_LOG"], "k3s.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
state = json.load(open(os.environ["STUB_STATE"]))
if sys.argv[1] == "kubectl" and not (state["started"] and state["node_ready"]):
    print("The connection to the server 127.0.0.1:6443 was refused", file=sys.stderr); sys.exit(1)
print("ok")
"""


def genuine_k3s() -> str:
    """What the release serves as K3s: the recording k3s stub, as an executable script."""
    return f"#!{sys.executable}\n{_K3S_STUB}"


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
    def urls(self) -> list[str]:
        return self._lines("curl.jsonl")

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
            publish_after: int | None = None) -> BootRun:
        """marker None: no cluster-state parameter (ParameterNotFound); targets: the API
        target group's target states; objects: (key, LastModified) in the snapshot bucket;
        metadata: the launch template's MetadataOptions (default: IMDSv2 required);
        secure_tokens: the token secrets hold what the first server published (else the
        short values Secrets Manager generated); binary: what the release URL serves
        instead of the genuine (stub) K3s, e.g. a tampered one; publish_after: the token
        secrets hold short values for that many reads, then the secure ones."""
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
            "started": False, "node_ready": node_ready,
        }
        state_path = base / "aws-state.json"  # the AWS side, not the node
        state_path.write_text(json.dumps(state))
        for name, body in (("aws", _AWS_STUB), ("curl", _CURL_STUB), ("uname", _UNAME_STUB),
                           ("dnf", _RECORDER_STUB), ("systemctl", _SYSTEMCTL_STUB)):
            (bin_dir / name).write_text(f"#!{sys.executable}\n{body}")
            (bin_dir / name).chmod(0o755)

        imds = ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
        imds.requests = []
        imds.options = metadata or {"HttpEndpoint": "enabled", "HttpTokens": "required"}
        threading.Thread(target=imds.serve_forever, daemon=True).start()
        try:
            (command,) = document["runcmd"]
            environment = {
                "PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(base), "TMPDIR": str(tmp), "LANG": "C",
                "K3S_INFRA_ROOT": str(root), "K3S_INFRA_IMDS_URL": f"http://127.0.0.1:{imds.server_port}",
                "K3S_INFRA_RETRY_BASE": "0", "K3S_INFRA_RETRY_MAX": "0",
                "K3S_INFRA_JOIN_ATTEMPTS": str(join_attempts), "K3S_INFRA_PROBE_ATTEMPTS": "3",
                "K3S_INFRA_READY_ATTEMPTS": "4", "K3S_INFRA_START_TIMEOUT": "20",
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
