"""The stub programs of the boot sandbox (boot_sandbox.py): each is written as an executable
first on the boot's PATH, records what it was asked in $STUB_LOG and answers from the
scenario's state in $STUB_STATE. Each is as strict as the real program it stands for:
what the real one would refuse, the stub refuses the same way (its source is cited)."""

# The AWS CLI v2 as the boot uses it: aws_stub.py.
from tests.support.aws_stub import AWS_STUB  # noqa: E402,F401

# What every stub below shares: it records its arguments in $STUB_LOG/<program>.jsonl and, for
# assertions on order across programs, in sequence.jsonl; it reads and writes the scenario's
# state ($STUB_STATE). K3s answers locally once started, unless the scenario has it down.
COMMON = r"""
import hashlib, json, os, re, sys, time
PROGRAM = os.path.basename(sys.argv[0])
for name, line in ((PROGRAM, sys.argv[1:]), ("sequence", [PROGRAM, *sys.argv[1:]])):
    with open(os.path.join(os.environ["STUB_LOG"], name + ".jsonl"), "a") as log:
        log.write(json.dumps(line) + "\n")
state_path = os.environ["STUB_STATE"]
state = json.load(open(state_path))
root = os.environ["K3S_INFRA_ROOT"]
def save():
    json.dump(state, open(state_path, "w"))
def k3s_up():
    return state["started"] and state["local_k3s_up"]
def member_name(instance_id):
    # K3s names an etcd member <node name>-<8 hex> (k3s-io/k3s pkg/etcd/etcd.go, setName);
    # here a node is named by its instance ID (boot.sh discover: node-name).
    return f"{instance_id}-{hashlib.sha256(instance_id.encode()).hexdigest()[:8]}"
def refuse(message, code=1):
    print(message, file=sys.stderr); sys.exit(code)
"""

# curl as the boot uses it. Without -f/--fail an HTTP error is a success (exit 0) whose
# body is the error page (https://curl.se/docs/manpage.html#-f). The API serves a
# certificate of the cluster's own CA (https://docs.k3s.io/cli/certificate), which no
# system trust store holds: without -k/--insecure or --cacert the handshake fails with
# exit 60 (https://curl.se/docs/manpage.html#-k, "EXIT CODES"); nothing listening is exit 7.
# -K/--config reads options from a file, one per line: the long name without dashes, then
# whitespace, '=' or ':', then the value, double-quoted with backslash escapes when needed
# (https://curl.se/docs/manpage.html#-K).
CURL_STUB = COMMON + r"""
args = sys.argv[1:]
url = [a for a in args if a.startswith(("http://", "https://"))][-1]
short = {c for a in args if a.startswith("-") and not a.startswith("--") for c in a[1:]}
fail = "f" in short or "--fail" in args
insecure = "k" in short or "--insecure" in args or "--cacert" in args
def config_file(path):
    found = {}
    for line in open(path).read().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, value = re.match(r"-{0,2}([A-Za-z0-9-]+)\s*[=:]?\s*(.*)$", line).groups()
        if value.startswith('"'):
            out, i = "", 1
            while i < len(value) and value[i] != '"':
                if value[i] == "\\" and i + 1 < len(value):
                    i += 1
                    out += {"t": "\t", "n": "\n", "r": "\r", "v": "\v"}.get(value[i], value[i])
                else:
                    out += value[i]
                i += 1
            value = out
        else:
            value = value.split()[0] if value.split() else ""
        found[{"u": "user"}.get(key, key)] = value
    return found
def credentials():
    user = None
    for n, arg in enumerate(args[:-1]):
        if arg in ("-K", "--config"):
            user = config_file(args[n + 1]).get("user", user)
        elif arg in ("-u", "--user"):
            user = args[n + 1]
    return user
def http_error(status, body):
    if fail:
        refuse(f"curl: (22) The requested URL returned error: {status}", 22)
    print(body); sys.exit(0)
if url == "http://127.0.0.1:10248/healthz":  # the kubelet's local health endpoint
    if state["started"] and state["node_ready"]:
        print("ok"); sys.exit(0)
    sys.exit(7)
if url.startswith("http://127.0.0.1:"):
    os.execv(os.environ["REAL_CURL"], ["curl", *args])
if url == state["api_url"] + "/ping":
    state["api_probes"] += 1
    save()
    up_after = state["api_up_after"]
    if up_after is not None and state["api_probes"] > up_after:
        if not insecure:
            refuse("curl: (60) SSL certificate problem: self-signed certificate in certificate chain", 60)
        print("pong"); sys.exit(0)
    sys.exit(7)  # could not connect
LOCAL = "https://127.0.0.1:6443"
if url.startswith(LOCAL + "/"):  # this server's own K3s (supervisor and API on one port)
    if not k3s_up():
        refuse("curl: (7) Failed to connect to 127.0.0.1 port 6443 after 0 ms: Couldn't connect to server", 7)
    if not insecure:
        refuse("curl: (60) SSL certificate problem: self-signed certificate in certificate chain", 60)
    path = url[len(LOCAL):]
    if path == "/ping":  # k3s-io/k3s pkg/server/router.go: ping() answers "pong"
        print("pong"); sys.exit(0)
    if path == "/db/info":
        # pkg/etcd/etcd.go handler: /db/info for the role k3s:server, which the user "server"
        # with the token's password has (K3s releases that also let a loopback client in,
        # auth.IsLocalOrHasRole, accept these credentials just the same). The answer is
        # infoHandler's json.Encoder output of Members{Members []*etcdserverpb.Member
        # `json:"members"`}: compact, one line; Member's JSON tags are ID, name, peerURLs,
        # clientURLs, isLearner, all omitempty (etcd api/etcdserverpb/rpc.pb.go).
        if credentials() != f"server:{state['server_password']}":
            http_error(401, '{"kind":"Status","apiVersion":"v1","status":"Failure","message":"not authorized",'
                            '"reason":"Unauthorized","code":401}')
        state["db_info_reads"] += 1
        # K3s adds a joining server as a learner and its leader promotes it once it caught up
        # (pkg/etcd/etcd.go join: MemberAddAsLearner; manageLearners: MemberPromote).
        own = member_name(state["instance_id"])
        for member in state["members"]:
            if (member["name"] == own and member.get("isLearner") and state["promote_after"] is not None
                    and state["db_info_reads"] > state["promote_after"]):
                member["isLearner"] = False
        save()
        def go(member):
            found = {"ID": member["ID"]}
            found.update({k: member[k] for k in ("name", "peerURLs", "clientURLs", "isLearner") if member.get(k)})
            return found
        print(json.dumps({"members": [go(m) for m in state["members"]]}, separators=(",", ":")))
        sys.exit(0)
    http_error(404, "404 page not found")
refuse(f"stub curl: no network for {url}", 6)
"""

# uname -m: the node's architecture as the scenario says.
UNAME_STUB = r"""
import os, sys
print(os.environ["STUB_ARCH"] if sys.argv[1:] == ["-m"] else "Linux")
"""

# dnf: records what the boot asks of the package manager.
RECORDER_STUB = r"""
import json, os, sys
with open(os.path.join(os.environ["STUB_LOG"], os.path.basename(sys.argv[0]) + ".jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
"""

# sleep: recorded, then it sleeps as sleep(1) does (the node script passes whole seconds).
SLEEP_STUB = RECORDER_STUB + r"""
import time
time.sleep(float(sys.argv[1]))
"""

# systemctl: `start k3s` starts a server, which writes its kubeconfig as K3s does (all names
# 'default'), both tokens in the secure form and its kubelet's kubeconfig, and becomes an etcd
# member (a learner when it joins); `start k3s-agent` writes the kubelet's kubeconfig (K3s:
# <data-dir>/agent/kubelet.kubeconfig). Only an installed binary starts; a unit of the boot's
# own (k3s*) must exist as a file to be enabled or started ("Unit ... not found"; units of the
# add-ons' packages come with the packages, which the dnf stub does not install).
SYSTEMCTL_STUB = COMMON + r"""
verb = sys.argv[1]
units = [a for a in sys.argv[2:] if not a.startswith("-")]
if verb in state["systemctl_failures"]:  # the scenario makes this step fail
    refuse(f"Failed to {verb}: Transport endpoint is not connected")
def effective_config():
    # K3s reads config.yaml, then config.yaml.d/*.yaml in order (https://docs.k3s.io/installation/configuration).
    import yaml
    base = os.path.join(root, "etc/rancher/k3s")
    found, drop_ins = {}, os.path.join(base, "config.yaml.d")
    names = sorted(n for n in (os.listdir(drop_ins) if os.path.isdir(drop_ins) else ()) if n.endswith(".yaml"))
    for path in [os.path.join(base, "config.yaml")] + [os.path.join(drop_ins, n) for n in names]:
        found.update(yaml.safe_load(open(path)) or {})
    return found
def start(unit):
    if unit == "k3s-infra-watch":
        state["watch_started"] = True
        return
    if unit not in ("k3s", "k3s-agent"):
        return
    if not os.access(os.path.join(root, "usr/local/bin/k3s"), os.X_OK):
        refuse(f"Failed to start {unit}.service: no K3s binary")
    state["started"] = True
    os.makedirs(os.path.join(root, "var/lib/rancher/k3s/agent"), exist_ok=True)
    with open(os.path.join(root, "var/lib/rancher/k3s/agent/kubelet.kubeconfig"), "w") as out:
        out.write(os.environ["STUB_KUBECONFIG"].replace("127.0.0.1:6443", "127.0.0.1:6444"))
    if unit == "k3s":
        with open(os.path.join(root, "etc/rancher/k3s/k3s.yaml"), "w") as out:
            out.write(os.environ["STUB_KUBECONFIG"])
        tokens = os.path.join(root, "var/lib/rancher/k3s/server")
        os.makedirs(tokens, exist_ok=True)
        for name, user, source in (("token", "server", "token"), ("agent-token", "node", "agent-token")):
            password = open(os.path.join(root, "etc/rancher/k3s", source)).read().strip()
            password = password.split(":")[-1]  # K3s normalises a secure token to its password
            with open(os.path.join(tokens, name), "w") as out:
                out.write(f"K10{os.environ['STUB_CA_HASH']}::{user}:{password}\n")
        own = member_name(state["instance_id"])
        if not any(m.get("name") == own for m in state["members"]):
            digest = hashlib.sha256(own.encode()).digest()
            address = f"10.0.{digest[0]}.{digest[1]}"
            state["members"].append({"ID": int.from_bytes(digest[:8], "big"), "name": own,
                                     "peerURLs": [f"https://{address}:2380"], "clientURLs": [f"https://{address}:2379"],
                                     "isLearner": bool(effective_config().get("server"))})
if verb in ("enable", "start"):
    for unit in units:
        if unit.startswith("k3s") and not os.path.exists(os.path.join(root, "etc/systemd/system", unit + ".service")):
            refuse(f"Failed to {verb} {unit}.service: Unit {unit}.service not found.")
if verb == "start" or (verb == "enable" and "--now" in sys.argv):
    for unit in units:
        start(unit)
if verb == "stop":
    for unit in units:
        if unit in ("k3s", "k3s-agent"):
            state["started"] = False
save()
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

# k3s: kubectl (tests/support/k3s_stub.py) answers once the service started and the scenario
# lets the node get ready; a restore (--cluster-reset) hangs when the scenario says so, else
# resets etcd's members; `etcd-snapshot save` uploads to the scenario's bucket.
from tests.support.k3s_stub import K3S_PROGRAM  # noqa: E402

K3S_STUB = COMMON + K3S_PROGRAM
