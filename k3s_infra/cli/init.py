"""k3s-infra init NAME: write a commented environment file that renders as is.

Without ``--from-account`` the account, VPC and subnets are placeholders (marked) that
validate, so ``render`` works at once; with it they are read, read-only, from the
caller's account: STS GetCallerIdentity, EC2 DescribeVpcs, DescribeSubnets and
DescribeRouteTables. ``--managed-network`` reads no network: the Network stack makes one."""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import tempfile
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from botocore.exceptions import ConnectionError as BotoConnectionError

from k3s_infra.cli import AwsFailure, UsageError, region_override
from k3s_infra.cli.aws import unreachable
from k3s_infra.config import ConfigError, read_document, validate
from k3s_infra.config.text import shown
from k3s_infra.deploy.aws import PROBE_RETRIES, client_config
from k3s_infra.deploy.preflight import default_route_targets
from k3s_infra.render.safe_output import error_about, write_file

# Placeholders in the shapes the config accepts (the same as environments/dev.yaml).
PLACEHOLDER_ACCOUNT = "123456789012"
PLACEHOLDER_VPC = {"vpc_id": "vpc-0a1b2c3d4e5f60718", "vpc_cidr": "10.0.0.0/16",
                   "subnets": [("subnet-0a1b2c3d4e5f60701", "a"), ("subnet-0a1b2c3d4e5f60702", "b")]}

MANAGED_NOTE = "  # --managed-network: a VPC of the cluster's own, made and deleted with it"

TEMPLATE = """\
# k3s-infra environment {name!r}, written by `k3s-infra init`.
# Every key is described in docs/configuration.md ("Config reference") and in the JSON schema
# (`k3s-infra schema`); `k3s-infra render --config {file}` checks this file.
{marker}
# Shared settings (K3s version, etcd snapshots, tags) come from defaults.yaml: the one
# beside this file, in ./environments/, or the one shipped with k3s-infra.
extends: defaults.yaml
name: {name}
region: {region}
account_id: "{account}"{account_note}
network:{network_note}
{network}
api:
  # internal: the K3s API (6443) is reached from inside the VPC only; internet-facing
  # needs allowed_cidrs (nothing is ever open to the world).
  scheme: internal
  allowed_cidrs: [{vpc_cidr}]
servers:
  # An odd number for etcd quorum: 1 for a trial, 3 for high availability.
  count: 1
  instance_type: t3.small
  root_volume_gb: 30
agent_pools:
  - name: general
    instance_types: [t3.small]
    min_size: 1
    desired: 1
    max_size: 3
    root_volume_gb: 30
# protected: true   # keep data stores on destroy, refuse destroy without --allow-protected
deploy:
  tags:
    environment: {name}
"""


def run(args: argparse.Namespace) -> int:
    """Every refusal (bad NAME or --region, a path that exists or is not a file, a file on
    the way to it) comes before anything is written or any AWS call is made, and leaves the disk
    as it was: the text is checked in a temporary file that is always removed, and
    missing folders (environments/) are made only once the file is about to be written."""
    _check_name(args.name)
    region = region_override(args) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    path = Path(args.out) if args.out else Path("environments") / f"{args.name}.yaml"
    folders = _check_target(path, args.force)
    managed = args.managed_network
    if args.from_account:
        try:
            values = _from_account(args, region, managed=managed)
        except (NoCredentialsError, NoRegionError) as exc:
            raise UsageError(f"{exc} (configure credentials, e.g. AWS_PROFILE)") from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise AwsFailure(f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', exc)}") from None
        except BotoConnectionError as exc:  # no connection: the endpoint named, nothing written
            raise AwsFailure(unreachable(exc)) from None
        except BotoCoreError as exc:  # a bad endpoint: one line, nothing written
            raise AwsFailure(str(exc)) from None
    else:
        region = region or "eu-west-1"
        values = {"region": region, "account": PLACEHOLDER_ACCOUNT, "vpc_id": PLACEHOLDER_VPC["vpc_id"],
                  "vpc_cidr": PLACEHOLDER_VPC["vpc_cidr"],
                  "subnets": [(s, f"{region}{z}") for s, z in PLACEHOLDER_VPC["subnets"]],
                  "account_note": "   # PLACEHOLDER: your AWS account ID",
                  "network_note": "  # PLACEHOLDER: your VPC and its private subnets (or: k3s-infra init --from-account)",
                  "marker": "# Placeholders are marked PLACEHOLDER: replace them before deploying."}
        if managed:
            values |= {"vpc_id": None, "subnets": None, "network_note": MANAGED_NOTE}
    text = TEMPLATE.format(name=args.name, file=path, network=_network(values), **values)
    _check_text(path, text)
    _write(path, text, folders)
    print(f"wrote {path.resolve()}")
    print(f"  next: k3s-infra render --config {path}   (then lint, plan, deploy)")
    return 0


def _network(values: dict) -> str:
    subnets = values.pop("subnets")
    if subnets is None:  # no VPC fits: the Network stack creates one (docs/network.md: A managed network)
        return (f"  # A VPC of your own: public and private subnets per zone, NAT gateway, flow logs.\n"
                f"  create: {{cidr: {values['vpc_cidr']}, availability_zones: 3, nat_gateways: one}}")
    return "\n".join([f"  vpc_id: {values['vpc_id']}", f"  vpc_cidr: {values['vpc_cidr']}",
                      "  # Private subnets for the nodes and the internal NLB, in at least two availability zones.",
                      "  subnets:", *(f"    - {{id: {sid}, az: {az}}}" for sid, az in subnets)])


def _check_name(name: str) -> None:
    """NAME as the file's name field checks it, before it becomes a path (``../x``) or
    text in the YAML (a newline would add keys)."""
    try:
        validate({"name": name}, "NAME")  # the other fields' problems are the template's, checked later
    except ConfigError as exc:
        problems = [(path, message) for path, message in exc.problems if path == "name"]
        if problems:
            raise ConfigError("init NAME", [("", problems[0][1])]) from None


def _check_target(path: Path, force: bool) -> list[Path]:
    """Refuse, before anything is made: a path with control characters, an existing path
    that is not a regular file (a folder, FIFO, socket, device or symlink such as
    /dev/stdout: never opened), an existing file without --force, the shared
    defaults.yaml, a folder on the way that is a file or not writable. Returns the
    missing folders to make (outermost first), made only when the file is written."""
    if not str(path).isprintable():  # it is quoted in the file's header comment
        raise UsageError(f"--out {shown(str(path))}: the path contains a control character")
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # e.g. a file where a folder of the path should be
        raise UsageError(f"{path}: {exc.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"{path}: exists and is not a regular file; name a new file for the environment")
    if mode is not None and not force:
        raise UsageError(f"{path.resolve()} exists; pass --force to replace it")
    if path.name == "defaults.yaml":
        raise UsageError(f"{path}: defaults.yaml holds the settings environments extend; name the environment's file")
    missing, folder = [], path.parent
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: the folder {folder} is not writable")
    return missing[::-1]


def _check_text(path: Path, text: str) -> None:
    """Validate the text as an environment file at ``path`` would be: in a temporary file
    beside it (``extends`` finds the same parent), or in a private temporary folder when
    its folder is still to be made. Problems name ``path``, never the temporary file."""
    with contextlib.ExitStack() as stack:
        folder = path.parent if path.parent.is_dir() else \
            Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="k3s-infra-init.")))
        try:
            fd, trial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".yaml", dir=folder)
        except OSError as exc:
            raise error_about(exc, path) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            validate(read_document(trial), str(path))  # a ConfigError names the field; exit 2
        except ConfigError as exc:
            if exc.source != trial:
                raise
            raise ConfigError(str(path), exc.problems) from None
        except OSError as exc:
            raise error_about(exc, path) from None
        finally:
            Path(trial).unlink(missing_ok=True)


def _write(path: Path, text: str, folders: list[Path]) -> None:
    """Make the missing ``folders`` (environments/, or those of --out), then write the file
    atomically (safe_output.write_file); a failure removes the folders it made."""
    made: list[Path] = []
    try:
        for folder in folders:
            try:
                folder.mkdir()
            except FileExistsError:  # made meanwhile (a file there fails below)
                continue
            except OSError as exc:
                raise error_about(exc, folder) from None
            made.append(folder)
        write_file(path, text)
    except BaseException:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _from_account(args: argparse.Namespace, region: str | None, *, managed: bool = False) -> dict:
    session = boto3.Session(profile_name=getattr(args, "profile", None), region_name=region)
    region = session.region_name
    if not region:
        raise UsageError("no region: pass --region or configure one (AWS_REGION, ~/.aws/config)")
    account = session.client("sts", config=client_config(PROBE_RETRIES)).get_caller_identity()["Account"]
    vpc, subnets = (None, []) if managed else \
        _pick_network(session.client("ec2", region_name=region, config=client_config()))
    if vpc is None:
        note = MANAGED_NOTE if managed else \
            f"  # no VPC in {region} has private subnets in two zones: a managed network"
        return {"region": region, "account": account, "vpc_id": None, "vpc_cidr": "10.0.0.0/16", "subnets": None,
                "account_note": "   # from your credentials (STS)", "network_note": note,
                "marker": "# Account read from your account; the network is created by the Network stack."}
    return {"region": region, "account": account, "vpc_id": vpc["VpcId"], "vpc_cidr": vpc["CidrBlock"],
            "subnets": [(s["SubnetId"], s["AvailabilityZone"]) for s in subnets],
            "account_note": "   # from your credentials (STS)",
            "network_note": f"  # read from your account: {_describe(vpc, subnets)}",
            "marker": "# Account and network were read from your account; check them before deploying."}


def _pick_network(ec2) -> tuple[dict | None, list[dict]]:
    """The VPC offering the most availability zones (non-default VPCs first), with one
    subnet per zone (private ones first), up to three zones. A subnet is public when it
    gives instances public IPs or its 0.0.0.0/0 route goes to an internet gateway."""
    vpcs = [v for page in ec2.get_paginator("describe_vpcs").paginate() for v in page["Vpcs"]]
    best: tuple | None = None
    for vpc in vpcs:
        subnets = [s for page in ec2.get_paginator("describe_subnets").paginate(
            Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]) for s in page["Subnets"]]
        for subnet in subnets:
            subnet["k3s_public"] = bool(subnet.get("MapPublicIpOnLaunch")) or any(
                t.startswith("igw-") for t in default_route_targets(ec2, vpc["VpcId"], subnet["SubnetId"]))
        per_zone: dict[str, dict] = {}
        for subnet in sorted(subnets, key=lambda s: (s["k3s_public"], s["SubnetId"])):
            per_zone.setdefault(subnet["AvailabilityZone"], subnet)
        chosen = [per_zone[z] for z in sorted(per_zone) if not per_zone[z]["k3s_public"]][:3]
        if len(chosen) < 2:  # nodes belong in private subnets: else a managed network fits better
            continue
        rank = (not vpc.get("IsDefault", False), len(chosen), -sum(s["k3s_public"] for s in chosen))
        if best is None or rank > best[0]:
            best = (rank, vpc, chosen)
    return (best[1], best[2]) if best else (None, [])


def _describe(vpc: dict, subnets: list[dict]) -> str:
    public = sum(s["k3s_public"] for s in subnets)
    kind = "default VPC" if vpc.get("IsDefault") else "VPC"
    return f"{kind}, {len(subnets)} zones" + (f", {public} subnet(s) PUBLIC: prefer private ones" if public else "")
