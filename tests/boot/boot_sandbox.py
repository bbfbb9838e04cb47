"""A sandbox that runs the real boot script from a rendered launch template.

Nothing leaves the machine: a loopback HTTP server plays the instance metadata
service (IMDSv2 token flow enforced), and stub executables first on PATH play
``aws`` (Secrets Manager and SSM, state in a JSON file), ``k3s`` and ``curl``.
The ``curl`` stub hands loopback URLs to the real curl, answers the K3s
installer URL with a stub installer that records its environment (K3s is never
installed), answers the API endpoint's ``/ping`` as the scenario says, and
refuses every other URL. Paths are redirected with K3S_INFRA_ROOT and retries
shortened with K3S_INFRA_RETRY_*: variables the script documents.
"""

from __future__ import annotations

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
JOIN_URL = f"https://{PARAMETERS['ApiDnsName']}:6443"
PUBLIC_URL = f"https://{PARAMETERS['PublicApiDnsName']}:6443"
SERVER_TOKEN = "S3rv3rT0k3nNeverInUserData0123456789abcdefghijklmnopqrstuvwxyzAB"
AGENT_TOKEN = "Ag3ntT0k3nNeverInUserData0123456789abcdefghijklmnopqrstuvwxyzABCD"
INSTANCE_ID = "i-0fedcba9876543210"
ZONE = "eu-west-1b"
REGION = "eu-west-1"
IMDS_TOKEN = "imds-session-token-42"

REAL_CURL = shutil.which("curl")


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
        assert ref["Ref"] in declared, f"{name} refers to undeclared parameter {ref['Ref']}"
        values[name] = parameters[ref["Ref"]]

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        return values[name] if name in values else parameters[name]

    return re.sub(r"\$\{([^}]*)\}", one, text)


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
    metadata = {"instance-id": INSTANCE_ID, "placement/availability-zone": ZONE, "placement/region": REGION}

    def do_PUT(self):  # noqa: N802
        self.server.requests.append(("PUT", self.path, dict(self.headers)))
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self._reply(200, IMDS_TOKEN)
        self._reply(400, "")

    def do_GET(self):  # noqa: N802
        self.server.requests.append(("GET", self.path, dict(self.headers)))
        if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            return self._reply(401, "")  # IMDSv1 refused, as with HttpTokens=required
        key = self.path.removeprefix("/latest/meta-data/")
        if key in self.metadata:
            return self._reply(200, self.metadata[key])
        self._reply(404, "")

    def _reply(self, status: int, body: str):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


_AWS_STUB = r'''
import json, os, sys
args = sys.argv[1:]
state_path = os.environ["STUB_STATE"]
with open(os.path.join(os.environ["STUB_LOG"], "aws.jsonl"), "a") as log:
    log.write(json.dumps(args) + "\n")
state = json.load(open(state_path))
def opt(name):
    return args[args.index(name) + 1] if name in args else None
def save():
    json.dump(state, open(state_path, "w"))
words, skip = [], False
for a in args:
    if skip:
        skip = False
    elif a.startswith("--"):
        skip = True
    else:
        words.append(a)
if words[0] in state["unreachable"]:
    print("Could not connect to the endpoint URL", file=sys.stderr); sys.exit(255)
if words[:2] == ["secretsmanager", "get-secret-value"]:
    secret = state["secrets"].get(opt("--secret-id"))
    if secret is None or opt("--query") != "SecretString" or opt("--output") != "text":
        print("ResourceNotFoundException", file=sys.stderr); sys.exit(254)
    print(secret)
elif words[:2] == ["secretsmanager", "put-secret-value"]:
    source = opt("--secret-string")
    if not source.startswith("file://"):
        print("stub aws: secrets must not travel on the command line", file=sys.stderr); sys.exit(252)
    state["secrets"][opt("--secret-id")] = open(source[len("file://"):]).read()
    state["writes"].append(["secret", opt("--secret-id")]); save(); print("{}")
elif words[:2] == ["ssm", "get-parameter"]:
    print(state["parameters"][opt("--name")])
elif words[:2] == ["ssm", "put-parameter"] and "--overwrite" in args:
    state["parameters"][opt("--name")] = opt("--value")
    state["writes"].append(["parameter", opt("--name")]); save(); print("1")
else:
    print(f"stub aws: unexpected {args}", file=sys.stderr); sys.exit(252)
'''

_CURL_STUB = r'''
import json, os, sys
args = sys.argv[1:]
url = [a for a in args if a.startswith(("http://", "https://"))][-1]
with open(os.path.join(os.environ["STUB_LOG"], "curl.jsonl"), "a") as log:
    log.write(json.dumps(url) + "\n")
if url.startswith("http://127.0.0.1:"):
    os.execv(os.environ["REAL_CURL"], ["curl", *args])
state_path = os.environ["STUB_STATE"]
state = json.load(open(state_path))
if url == state["installer_url"]:
    with open(args[args.index("-o") + 1], "w") as out:
        out.write(open(os.environ["STUB_INSTALLER"]).read())
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
'''

# Records what the K3s installer is asked; a "server" leaves a kubeconfig as K3s would.
_INSTALLER_STUB = r'''#!/bin/sh
{
  printf 'version=%s\n' "$INSTALL_K3S_VERSION"
  printf 'exec=%s\n' "$INSTALL_K3S_EXEC"
  printf 'args=%s\n' "$*"
} >> "$STUB_LOG/installer.log"
if [ "$INSTALL_K3S_EXEC" = server ]; then
  cat > "$K3S_INFRA_ROOT/etc/rancher/k3s/k3s.yaml" <<'KUBECONFIG'
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://127.0.0.1:6443
  name: default
kind: Config
KUBECONFIG
fi
'''

# dnf and systemctl: record what the boot asks of the package manager and init system.
_RECORDER_STUB = r'''
import json, os, sys
with open(os.path.join(os.environ["STUB_LOG"], os.path.basename(sys.argv[0]) + ".jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
'''

_K3S_STUB = r'''
import json, os, sys
with open(os.path.join(os.environ["STUB_LOG"], "k3s.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
print("ok")
'''


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
    def installs(self) -> list[dict[str, str]]:
        path = self.logs / "installer.log"
        runs, current = [], {}
        for line in (path.read_text() if path.exists() else "").splitlines():
            key, _, value = line.partition("=")
            current[key] = value
            if key == "args":
                runs.append(current)
                current = {}
        return runs

    def secrets_read(self) -> list[str]:
        return [c[c.index("--secret-id") + 1] for c in self.aws_calls if "get-secret-value" in c]

    def config(self) -> dict:
        return effective_config(self.root)

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")


class Sandbox:
    def __init__(self, base: Path):
        self.base = base

    def run(self, user_data: str, *, marker: str = "new", api_up_after: int | None = None,
            unreachable: tuple[str, ...] = (), join_attempts: int = 6) -> BootRun:
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
        boot_env = dict(line.split("=", 1) for line in written[bootstrap.BOOT_ENV].splitlines())
        state = {
            "secrets": {PARAMETERS["TokenSecretArn"]: SERVER_TOKEN, PARAMETERS["AgentTokenSecretArn"]: AGENT_TOKEN,
                        PARAMETERS["KubeconfigSecretArn"]: "placeholder-generated-by-secrets-manager",
                        **ADDON_SECRETS},
            "parameters": {PARAMETERS["ClusterStateParameterName"]: marker},
            "writes": [], "unreachable": list(unreachable),
            "installer_url": boot_env["INSTALLER_URL"].strip("'"),
            "api_url": JOIN_URL, "api_probes": 0, "api_up_after": api_up_after,
        }
        state_path = base / "aws-state.json"  # the AWS side, not the node
        state_path.write_text(json.dumps(state))
        for name, body in (("aws", _AWS_STUB), ("curl", _CURL_STUB), ("k3s", _K3S_STUB),
                           ("dnf", _RECORDER_STUB), ("systemctl", _RECORDER_STUB)):
            (bin_dir / name).write_text(f"#!{sys.executable}\n{body}")
            (bin_dir / name).chmod(0o755)
        installer = base / "installer-stub.sh"
        installer.write_text(_INSTALLER_STUB)

        imds = ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
        imds.requests = []
        threading.Thread(target=imds.serve_forever, daemon=True).start()
        try:
            (command,) = document["runcmd"]
            environment = {
                "PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(base), "TMPDIR": str(tmp), "LANG": "C",
                "K3S_INFRA_ROOT": str(root), "K3S_INFRA_IMDS_URL": f"http://127.0.0.1:{imds.server_port}",
                "K3S_INFRA_RETRY_BASE": "0", "K3S_INFRA_RETRY_MAX": "0",
                "K3S_INFRA_JOIN_ATTEMPTS": str(join_attempts),
                "STUB_LOG": str(logs), "STUB_STATE": str(state_path), "STUB_INSTALLER": str(installer),
                "REAL_CURL": REAL_CURL,
            }
            done = subprocess.run(["/bin/bash", str(root / command[0].lstrip("/"))], env=environment,
                                  capture_output=True, text=True, timeout=60, cwd=base)
        finally:
            imds.shutdown()
            imds.server_close()
        return BootRun(done.returncode, done.stdout, done.stderr, root, logs, tmp,
                       json.loads(state_path.read_text()), imds.requests, written)


def token_leaks(run: BootRun, allowed: dict[str, str]) -> list[str]:
    """Every place a token shows up other than the files K3s reads it from (path -> token)."""
    leaks = []
    tokens = (SERVER_TOKEN, AGENT_TOKEN)
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
