"""The ``aws`` stub of the boot sandbox (boot_sandbox.py): the AWS CLI v2 as the node script
uses it. Real response shapes, --query applied with JMESPath (as the CLI does, client side:
https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-filter.html), --output text/json
as the CLI prints them, errors as
"An error occurred (<Code>) when calling the <Operation> operation: <Message>" on stderr
with exit code 254 (service error) or 255 (no connection)
(https://docs.aws.amazon.com/cli/latest/userguide/cli-chap-return-codes.html).

The program is the concatenation of HEAD (options, parsing, output; the synopses of
aws_stub_fleet go before it), the handlers of
CORE_HANDLERS (Secrets Manager, SSM, CloudFormation, ELB, S3: listing snapshots, putting the issuer's documents) and of aws_stub_fleet (EC2 and
Auto Scaling), then TAIL: each handler block ends in answer() or fail(), which exit."""

from tests.support.aws_stub_fleet import FLEET_HANDLERS, FLEET_SYNOPSES

IMPORTS = r"""
import hashlib, json, os, re, sys, time
import jmespath
"""

HEAD = r"""
args = sys.argv[1:]
state_path = os.environ["STUB_STATE"]
for name, line in (("aws", args), ("sequence", ["aws", *args])):  # sequence: every stub's calls in order
    with open(os.path.join(os.environ["STUB_LOG"], name + ".jsonl"), "a") as log:
        log.write(json.dumps(line) + "\n")
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
# List-typed parameters take one or more values, each its own word, up to the next option
# (the reference's "Syntax": `--filters <value> [<value>...]`, "(list)").
LISTS = {"--filters", "--instance-ids", "--resources", "--tags", "--auto-scaling-group-names", "--targets",
         "--version-stages", "--optional-object-attributes"}
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
    ("elbv2", "describe-target-health"): ({"--target-group-arn"}, {"--targets", "--include"}, set()),
    ("s3api", "list-objects-v2"): ({"--bucket"}, {"--delimiter", "--encoding-type", "--prefix", "--start-after",
                                   "--request-payer", "--expected-bucket-owner", "--optional-object-attributes",
                                   *PAGINATION}, {"--fetch-owner", "--no-fetch-owner"}),
    # https://awscli.amazonaws.com/v2/documentation/api/latest/reference/s3api/put-object.html
    ("s3api", "put-object"): ({"--bucket", "--key"}, {"--acl", "--body", "--cache-control", "--content-disposition",
                              "--content-encoding", "--content-language", "--content-length", "--content-md5",
                              "--content-type", "--checksum-algorithm", "--expires", "--metadata",
                              "--server-side-encryption", "--storage-class", "--tagging", "--if-match",
                              "--if-none-match", "--expected-bucket-owner", "--request-payer"}, set()),
    # https://awscli.amazonaws.com/v2/documentation/api/latest/reference/s3api/get-object.html:
    # the output file is a positional argument (outfile), required.
    ("s3api", "get-object"): ({"--bucket", "--key"}, {"--if-match", "--if-modified-since", "--if-none-match",
                              "--if-unmodified-since", "--range", "--version-id", "--part-number",
                              "--expected-bucket-owner", "--request-payer", "--checksum-mode"}, set()),
    **FLEET_SYNOPSES,  # aws_stub_fleet
}
POSITIONALS = {("s3api", "get-object"): 1}
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
        if args[i] in LISTS:
            end = i + 1
            while end < len(args) and not args[end].startswith("--"):
                end += 1
            opts[args[i]] = args[i + 1:end]; i = end
        else:
            opts[args[i]] = args[i + 1]; i += 2
    else:
        words.append(args[i]); i += 1
service, command = words[0], words[1]
operation = "".join(part.title() for part in command.split("-"))
if (service, command) not in SYNOPSES:
    print(f"stub aws: unexpected {args}", file=sys.stderr); sys.exit(252)
required, values, switches = SYNOPSES[(service, command)]
positionals = words[2:2 + POSITIONALS.get((service, command), 0)]
if len(positionals) < POSITIONALS.get((service, command), 0):
    usage("the following arguments are required: outfile")
unknown = words[2 + len(positionals):] + [o for o in opts
                                          if o not in GLOBAL | GLOBAL_FLAGS | required | values | switches]
if unknown:
    usage(f"Unknown options: {', '.join(unknown)}")
if opts.get("--output", "json") not in ("json", "text", "table", "yaml", "yaml-stream"):
    usage(f"argument --output: Invalid choice: '{opts['--output']}'")
missing = [o for o in sorted(required) if o not in opts]
if missing:
    usage(f"the following arguments are required: {', '.join(missing)}")
def shorthand(text, lists=()):
    # The CLI's shorthand syntax (cli-usage-shorthand.html): Key=value pairs separated by
    # commas; a list member (Values) takes every following comma-separated item.
    found, key = {}, None
    for item in text.split(","):
        match = re.fullmatch(r"([A-Za-z]+)=(.*)", item)
        if match:
            key = match.group(1)
            found[key] = [match.group(2)] if key in lists else match.group(2)
        elif key in lists:
            found[key].append(item)
        else:
            usage(f"Error parsing parameter: Expected: '=', received: '{item}' in '{text}'")
    return found
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
"""

CORE_HANDLERS = r"""
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
if (service, command) == ("secretsmanager", "put-secret-value"):
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
if (service, command) == ("ssm", "get-parameter"):
    if opts["--name"] in state["denied_parameters"]:  # the instance role may not read it
        fail("AccessDeniedException", f"User: arn:aws:sts::123456789012:assumed-role/node/{state['instance_id']} "
                                      f"is not authorized to perform: ssm:GetParameter on resource: "
                                      f"arn:aws:ssm:eu-west-1:123456789012:parameter{opts['--name']}")
    if opts["--name"] not in state["parameters"]:
        fail("ParameterNotFound", "")
    value = state["parameters"][opts["--name"]]
    if opts["--name"] in state["vanishing_parameters"]:  # someone else deletes it right after this read
        del state["parameters"][opts["--name"]]; save()
    answer({"Parameter": {"Name": opts["--name"], "Type": "String", "Value": value, "Version": 1, "DataType": "text"}})
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html:
# without Overwrite an existing name is ParameterAlreadyExists.
if (service, command) == ("ssm", "put-parameter"):
    if opts["--name"] in state["parameters"] and "--overwrite" not in opts:
        fail("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, "
                                       "set the overwrite option in the request to true.")
    state["parameters"][opts["--name"]] = opts["--value"]
    state["writes"].append(["parameter", opts["--name"]]); save()
    answer({"Version": 1, "Tier": "Standard"})
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html
if (service, command) == ("ssm", "delete-parameter"):
    if opts["--name"] not in state["parameters"]:
        fail("ParameterNotFound", "")
    del state["parameters"][opts["--name"]]
    state["writes"].append(["deleted", opts["--name"]]); save()
    answer(None)
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_SignalResource.html:
# a resource that no longer waits for signals answers ValidationError, worded as in
# awslabs/aws-cloudformation-templates#34 ("... is in CREATE_COMPLETE state and cannot be signaled").
# Status is an enum (SUCCESS | FAILURE) the service checks, not the CLI.
if (service, command) == ("cloudformation", "signal-resource"):
    if state["signal_failures"] > 0:  # no connection this time (exit 255, as for unreachable above)
        state["signal_failures"] -= 1; save()
        print(f"\nCould not connect to the endpoint URL: \"https://cloudformation.{opts.get('--region')}.amazonaws.com/\"",
              file=sys.stderr)
        sys.exit(255)
    if opts["--status"] not in ("SUCCESS", "FAILURE"):
        fail("ValidationError", f"1 validation error detected: Value '{opts['--status']}' at 'status' failed to "
                                "satisfy constraint: Member must satisfy enum value set: [SUCCESS, FAILURE]")
    state["signals"].append([opts["--stack-name"], opts["--logical-resource-id"], opts["--unique-id"],
                             opts["--status"]]); save()
    if not state["signal_waited_for"]:
        fail("ValidationError", f"Stack arn:aws:cloudformation:eu-west-1:123456789012:stack/"
                                f"{opts['--stack-name']}/0 is in CREATE_COMPLETE state and cannot be signaled")
    answer(None)
# https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTargetHealth.html:
# only the API target group exists (any other ARN: TargetGroupNotFound); the instance itself
# is listed once its group registered it; the scenario may change the others (targets_after).
if (service, command) == ("elbv2", "describe-target-health"):
    if opts["--target-group-arn"] != state["target_group_arn"]:
        fail("TargetGroupNotFound", "One or more target groups not found")
    state["target_reads"] += 1; save()
    later = state["targets_after"]  # the scenario's target group changes after that many reads
    targets = [tuple(target) for target in (later[1] if later and state["target_reads"] > later[0] else state["targets"])]
    if state["own_target"] is not None:
        targets.insert(0, (state["instance_id"], state["own_target"]))
    answer({"TargetHealthDescriptions": [
        {"Target": {"Id": target_id, "Port": 6443}, "HealthCheckPort": "6443",
         "TargetHealth": {"State": target_state}} for target_id, target_state in targets]})
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html: no Contents when nothing matches.
if (service, command) == ("s3api", "list-objects-v2"):
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
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html: the body goes to outfile, the
# response's other members are printed. A node may read the staged K3s files, a server role its
# add-ons' object (components/iam.py ReadAddonManifests); S3 answers AccessDenied for a key the
# caller may not read (and for one that does not exist when it may not list the bucket).
if (service, command) == ("s3api", "get-object"):
    location = f"{opts['--bucket']}/{opts['--key']}"
    if os.environ.get("STUB_S3_ENDPOINT") and "/k3s/" in opts["--key"]:  # bench/boot_phases.py: from moto
        import boto3
        s3 = boto3.client("s3", endpoint_url=os.environ["STUB_S3_ENDPOINT"], region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.download_file(opts["--bucket"], opts["--key"], positionals[0])
        answer({"AcceptRanges": "bytes", "ContentType": "application/octet-stream", "Metadata": {}})
    if location in state["k3s_objects"]:  # the K3s files the deployer staged (components/iam.py ReadK3sArtifacts)
        state["k3s_reads"].append(location)
        if state["download_failures"] > 0:  # no connection this time (exit 255, as for unreachable above)
            state["download_failures"] -= 1; save()
            print(f"\nCould not connect to the endpoint URL: \"https://{opts['--bucket']}.s3."
                  f"{opts.get('--region')}.amazonaws.com/{opts['--key']}\"", file=sys.stderr)
            sys.exit(255)
        data = state["k3s_objects"][location].encode()
        open(positionals[0], "wb").write(data); save()
        answer({"AcceptRanges": "bytes", "ContentLength": len(data), "ETag": f'"{hashlib.md5(data).hexdigest()}"',
                "ContentType": "application/octet-stream", "ServerSideEncryption": "AES256", "Metadata": {}})
    if location not in state["addons_objects"]:
        fail("AccessDenied", "Access Denied")
    data = state["addons_objects"][location].encode()
    with open(positionals[0], "wb") as out:
        out.write(data)
    state["addons_reads"].append(location); save()
    answer({"AcceptRanges": "bytes", "ContentLength": len(data), "ETag": f'"{hashlib.md5(data).hexdigest()}"',
            "ContentType": "text/yaml", "ServerSideEncryption": "aws:kms", "Metadata": {}})
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html: --body is a file path (a
# streaming blob, not file://); without --content-type S3 stores binary/octet-stream. The
# first server's role may put exactly the issuer's two keys (components/iam.py).
if (service, command) == ("s3api", "put-object"):
    body = opts.get("--body")
    if body is not None and not os.path.isfile(body):
        usage("Error parsing parameter '--body': Blob values must be a path to a file.")
    if opts["--bucket"] != state["issuer_bucket"] or opts["--key"] not in state["issuer_keys"]:
        fail("AccessDenied", f"User: arn:aws:sts::123456789012:assumed-role/node/{state['instance_id']} is not "
                             f"authorized to perform: s3:PutObject on resource: "
                             f"\"arn:aws:s3:::{opts['--bucket']}/{opts['--key']}\"")
    data = open(body, "rb").read() if body is not None else b""
    state["issuer_objects"][opts["--key"]] = {"body": data.decode(), "content_type": opts.get("--content-type",
                                              "binary/octet-stream")}
    state["issuer_puts"].append(opts["--key"]); save()
    answer({"ETag": f'"{hashlib.md5(data).hexdigest()}"', "ServerSideEncryption": "AES256"})
"""

TAIL = r"""
print(f"stub aws: unexpected {args}", file=sys.stderr); sys.exit(252)
"""

AWS_STUB = IMPORTS + FLEET_SYNOPSES + HEAD + CORE_HANDLERS + FLEET_HANDLERS + TAIL
