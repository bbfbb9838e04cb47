"""The stub programs of the boot sandbox (boot_sandbox.py): each is written as an executable
first on the boot's PATH, records what it was asked in $STUB_LOG and answers from the
scenario's state in $STUB_STATE. Each is as strict as the real program it stands for:
what the real one would refuse, the stub refuses the same way (its source is cited)."""

# The AWS CLI v2 as the boot uses it: real response shapes, --query applied with JMESPath
# (as the CLI does, client side: https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-filter.html),
# --output text/json as the CLI prints them, errors as
# "An error occurred (<Code>) when calling the <Operation> operation: <Message>" on stderr
# with exit code 254 (service error) or 255 (no connection)
# (https://docs.aws.amazon.com/cli/latest/userguide/cli-chap-return-codes.html).
AWS_STUB = r"""
import json, os, sys
import jmespath
args = sys.argv[1:]
state_path = os.environ["STUB_STATE"]
with open(os.path.join(os.environ["STUB_LOG"], "aws.jsonl"), "a") as log:
    log.write(json.dumps(args) + "\n")
state = json.load(open(state_path))
# Global options and each operation's parameters as the AWS CLI v2 reference lists them
# (https://awscli.amazonaws.com/v2/documentation/api/latest/reference/index.html, one page per
# <service>/<command>): (required, optional value options, optional flags). The CLI refuses
# anything else before it calls AWS: "aws: error: Unknown options: ..." or "the following
# arguments are required: ...", exit 252 (cli-chap-return-codes.html above).
GLOBAL = {"--region", "--output", "--query", "--profile", "--endpoint-url", "--cli-read-timeout",
          "--cli-connect-timeout", "--color"}
GLOBAL_FLAGS = {"--no-cli-pager", "--debug", "--no-paginate", "--no-verify-ssl"}
PAGINATION = {"--starting-token", "--page-size", "--max-items"}
SYNOPSES = {
    ("secretsmanager", "get-secret-value"): ({"--secret-id"}, {"--version-id", "--version-stage"}, set()),
    ("secretsmanager", "put-secret-value"): ({"--secret-id"}, {"--client-request-token", "--secret-binary",
                                             "--secret-string", "--version-stages", "--rotation-token"}, set()),
    ("ssm", "get-parameter"): ({"--name"}, set(), {"--with-decryption", "--no-with-decryption"}),
    ("ssm", "put-parameter"): ({"--name", "--value"}, {"--description", "--type", "--key-id", "--allowed-pattern",
                               "--tags", "--tier", "--policies", "--data-type"}, {"--overwrite", "--no-overwrite"}),
    ("ssm", "delete-parameter"): ({"--name"}, set(), set()),
    ("cloudformation", "signal-resource"): ({"--stack-name", "--logical-resource-id", "--unique-id", "--status"},
                                            set(), set()),
    ("autoscaling", "set-instance-health"): ({"--instance-id", "--health-status"}, set(),
                                             {"--should-respect-grace-period", "--no-should-respect-grace-period"}),
    ("elbv2", "describe-target-health"): ({"--target-group-arn"}, {"--targets", "--include"}, set()),
    ("s3api", "list-objects-v2"): ({"--bucket"}, {"--delimiter", "--encoding-type", "--prefix", "--start-after",
                                   "--request-payer", "--expected-bucket-owner", "--optional-object-attributes",
                                   *PAGINATION}, {"--fetch-owner", "--no-fetch-owner"}),
}
def usage(message):
    print(f"usage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\naws: error: {message}",
          file=sys.stderr)
    sys.exit(252)
FLAGS = GLOBAL_FLAGS | {flag for *_, flags in SYNOPSES.values() for flag in flags}
words, opts, i = [], {}, 0
while i < len(args):
    if args[i] in FLAGS:
        opts[args[i]] = True; i += 1
    elif args[i].startswith("--"):
        if i + 1 >= len(args) or args[i + 1].startswith("--"):
            usage(f"argument {args[i]}: expected one argument")
        opts[args[i]] = args[i + 1]; i += 2
    else:
        words.append(args[i]); i += 1
service, command = words[0], words[1]
operation = "".join(part.title() for part in command.split("-"))
if (service, command) not in SYNOPSES:
    print(f"stub aws: unexpected {args}", file=sys.stderr); sys.exit(252)
required, values, switches = SYNOPSES[(service, command)]
unknown = words[2:] + [o for o in opts if o not in GLOBAL | GLOBAL_FLAGS | required | values | switches]
if unknown:
    usage(f"Unknown options: {', '.join(unknown)}")
if opts.get("--output", "json") not in ("json", "text", "table", "yaml", "yaml-stream"):
    usage(f"argument --output: Invalid choice: '{opts['--output']}'")
missing = [o for o in sorted(required) if o not in opts]
if missing:
    usage(f"the following arguments are required: {', '.join(missing)}")
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
# pages: a paginated operation's responses, one per API call. The CLI fetches them all; with
# --output text it prints each page and runs --query once per page, otherwise it merges the
# pages' result lists and runs --query once over the whole
# (https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-output-format.html, "Text
# output format": "the output is paginated before the --query filter is applied").
def answer(response, pages=None):
    if response is None:  # operations without a response body print nothing
        sys.exit(0)
    if pages is not None and opts.get("--output") == "text":
        for page in pages:
            print(text(jmespath.search(opts["--query"], page) if "--query" in opts else page))
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
    if opts["--secret-id"] in state["denied_secrets"]:  # the instance role may not write it
        fail("AccessDeniedException", f"User: arn:aws:sts::123456789012:assumed-role/node/{state['instance_id']} "
                                      f"is not authorized to perform: secretsmanager:PutSecretValue on resource: "
                                      f"{opts['--secret-id']}")
    source = opts["--secret-string"]
    if not source.startswith("file://"):
        print("stub aws: secrets must not travel on the command line", file=sys.stderr); sys.exit(252)
    if opts["--secret-id"] not in state["secrets"]:  # PutSecretValue adds a version, never a secret
        fail("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
    state["secrets"][opts["--secret-id"]] = open(source[len("file://"):]).read()
    state["writes"].append(["secret", opts["--secret-id"]]); save()
    answer({"ARN": opts["--secret-id"], "Name": "kubeconfig", "VersionId": "v2", "VersionStages": ["AWSCURRENT"]})
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
elif (service, command) == ("ssm", "get-parameter"):
    if opts["--name"] in state["denied_parameters"]:  # the instance role may not read it
        fail("AccessDeniedException", f"User: arn:aws:sts::123456789012:assumed-role/node/{state['instance_id']} "
                                      f"is not authorized to perform: ssm:GetParameter on resource: "
                                      f"arn:aws:ssm:eu-west-1:123456789012:parameter{opts['--name']}")
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
# Status is an enum (SUCCESS | FAILURE) the service checks, not the CLI.
elif (service, command) == ("cloudformation", "signal-resource"):
    if opts["--status"] not in ("SUCCESS", "FAILURE"):
        fail("ValidationError", f"1 validation error detected: Value '{opts['--status']}' at 'status' failed to "
                                "satisfy constraint: Member must satisfy enum value set: [SUCCESS, FAILURE]")
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
# https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTargetHealth.html:
# only the API target group exists (any other ARN: TargetGroupNotFound); the instance itself
# is listed once its group registered it.
elif (service, command) == ("elbv2", "describe-target-health"):
    if opts["--target-group-arn"] != state["target_group_arn"]:
        fail("TargetGroupNotFound", "One or more target groups not found")
    targets = [(f"i-0{n:016x}", target_state) for n, target_state in enumerate(state["targets"])]
    if state["own_target"] is not None:
        targets.insert(0, (state["instance_id"], state["own_target"]))
    answer({"TargetHealthDescriptions": [
        {"Target": {"Id": target_id, "Port": 6443}, "HealthCheckPort": "6443",
         "TargetHealth": {"State": target_state}} for target_id, target_state in targets]})
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html: no Contents when nothing matches.
elif (service, command) == ("s3api", "list-objects-v2"):
    if opts["--bucket"] != state["bucket"]:
        fail("NoSuchBucket", "The specified bucket does not exist")
    prefix = opts.get("--prefix", "")
    # S3 lists keys in UTF-8 binary order, at most 1,000 a call (MaxKeys; the CLI's page size).
    contents = sorted(({"Key": key, "LastModified": modified, "ETag": '"0"', "Size": 1024,
                        "StorageClass": "STANDARD"} for key, modified in state["objects"] if key.startswith(prefix)),
                      key=lambda item: item["Key"].encode())
    def listing(items):
        return {"KeyCount": len(items), "Name": opts["--bucket"], "Prefix": prefix, "MaxKeys": 1000,
                **({"Contents": items} if items else {})}
    pages = [listing(contents[start:start + 1000]) for start in range(0, max(len(contents), 1), 1000)]
    answer(listing(contents), pages)
else:
    print(f"stub aws: unexpected {args}", file=sys.stderr); sys.exit(252)
"""

# curl as the boot uses it. Without -f/--fail an HTTP error is a success (exit 0) whose
# body is the error page (https://curl.se/docs/manpage.html#-f). The API serves a
# certificate of the cluster's own CA (https://docs.k3s.io/cli/certificate), which no
# system trust store holds: without -k/--insecure or --cacert the handshake fails with
# exit 60 (https://curl.se/docs/manpage.html#-k, "EXIT CODES").
CURL_STUB = r"""
import json, os, sys
args = sys.argv[1:]
url = [a for a in args if a.startswith(("http://", "https://"))][-1]
with open(os.path.join(os.environ["STUB_LOG"], "curl.jsonl"), "a") as log:
    log.write(json.dumps(args) + "\n")
short = {c for a in args if a.startswith("-") and not a.startswith("--") for c in a[1:]}
fail = "f" in short or "--fail" in args
insecure = "k" in short or "--insecure" in args or "--cacert" in args
state_path = os.environ["STUB_STATE"]
state = json.load(open(state_path))
if url == "http://127.0.0.1:10248/healthz":  # the kubelet's local health endpoint
    if state["started"] and state["node_ready"]:
        print("ok"); sys.exit(0)
    sys.exit(7)
if url.startswith("http://127.0.0.1:"):
    os.execv(os.environ["REAL_CURL"], ["curl", *args])
if url in state["downloads"]:  # release assets: the binary and its published checksums
    body = state["downloads"][url]
    if state["download_failures"] > 0:  # HTTP 503 from the release host
        state["download_failures"] -= 1
        json.dump(state, open(state_path, "w"))
        if fail:
            print("curl: (22) The requested URL returned error: 503", file=sys.stderr); sys.exit(22)
        body = "<html><body><h1>503 Service Unavailable</h1></body></html>\n"
    with open(args[args.index("-o") + 1], "w") as out:
        out.write(body)
    sys.exit(0)
if url == state["api_url"] + "/ping":
    state["api_probes"] += 1
    json.dump(state, open(state_path, "w"))
    up_after = state["api_up_after"]
    if up_after is not None and state["api_probes"] > up_after:
        if not insecure:
            print("curl: (60) SSL certificate problem: self-signed certificate in certificate chain",
                  file=sys.stderr)
            sys.exit(60)
        print("pong"); sys.exit(0)
    sys.exit(7)  # could not connect
print(f"stub curl: no network for {url}", file=sys.stderr)
sys.exit(6)
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

# systemctl: `start k3s` starts a server, which writes its kubeconfig as K3s does (all names
# 'default') and both tokens in the secure form; only an installed, enabled unit starts.
SYSTEMCTL_STUB = r"""
import json, os, sys
with open(os.path.join(os.environ["STUB_LOG"], "systemctl.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
state_path = os.environ["STUB_STATE"]
state = json.load(open(state_path))
root = os.environ["K3S_INFRA_ROOT"]
if sys.argv[1] in state["systemctl_failures"]:  # the scenario makes this step fail
    print(f"Failed to {sys.argv[1]}: Transport endpoint is not connected", file=sys.stderr); sys.exit(1)
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

# k3s: kubectl answers once the service started and the scenario lets the node get ready;
# a restore (--cluster-reset) hangs when the scenario says so.
K3S_STUB = r"""
import json, os, sys, time
with open(os.path.join(os.environ["STUB_LOG"], "k3s.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
state = json.load(open(os.environ["STUB_STATE"]))
if "--cluster-reset" in sys.argv and state["restore_hangs"]:
    time.sleep(600)
if sys.argv[1] == "kubectl" and not (state["started"] and state["node_ready"]):
    print("The connection to the server 127.0.0.1:6443 was refused", file=sys.stderr); sys.exit(1)
print("ok")
"""
