"""Independent readers for tests: environment files with plain PyYAML and node user data
decoded with the standard library, never through the code under test.

Tests compare what the product rendered with what these return, so a bug in the
product's own helpers (config models, ``bootstrap.unpacked``, ``k3s_config``) cannot
hide itself by being on both sides of an assertion.
"""

from __future__ import annotations

import base64
import gzip
import io
import re
import tarfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENT_FILES = sorted((REPO / "environments").glob("*.yaml")) + sorted(
    (REPO / "tests" / "environments").glob("*.yaml"))
# The test environment with every add-on enabled.
ALL_ADDONS = REPO / "tests" / "environments" / "all-addons.yaml"
# Files that are environments (not the shared defaults a file extends).
DEPLOYABLE = [p for p in ENVIRONMENT_FILES if "name" in (yaml.safe_load(p.read_text()) or {})]

# K3s's own defaults, from https://docs.k3s.io/cli/server ("Networking" flags):
# --cluster-cidr 10.42.0.0/16, --service-cidr 10.43.0.0/16, --cluster-dns 10.43.0.10,
# --cluster-domain cluster.local. They apply when an environment file says nothing.
K3S_DOCUMENTED_DEFAULTS = {"cluster_cidr": "10.42.0.0/16", "service_cidr": "10.43.0.0/16",
                           "cluster_dns": "10.43.0.10", "cluster_domain": "cluster.local"}


def _merge(parent: Any, child: Any) -> Any:
    """docs/configuration.md: mappings merge key by key, lists and scalars of the child replace."""
    if isinstance(parent, dict) and isinstance(child, dict):
        return {**parent, **{k: _merge(parent[k], v) if k in parent else v for k, v in child.items()}}
    return child


def plain_document(path: Path) -> dict:
    """An environment file with its ``extends`` chain merged, read with yaml.safe_load only."""
    document = yaml.safe_load(Path(path).read_text()) or {}
    parent = document.pop("extends", None)
    if parent is None:
        return document
    # A bare file name, beside the file or else in the project's environments/ (docs/configuration.md: extends).
    beside = Path(path).parent / parent
    return _merge(plain_document(beside if beside.is_file() else REPO / "environments" / parent), document)


def launch_template_data(template: dict) -> dict:
    (launch,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    return launch["Properties"]["LaunchTemplateData"]


def user_data_sub(template: dict) -> tuple[str, dict]:
    """A node stack's user data Fn::Sub: its text (variables left as ${Name}) and its variables."""
    (launch,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    text, variables = launch["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    return text, variables


def user_data_text(template: dict) -> str:
    """The Fn::Sub text of a node stack's user data (variables left as ${Name})."""
    sub = launch_template_data(template)["UserData"]["Fn::Base64"]["Fn::Sub"]
    return sub if isinstance(sub, str) else sub[0]


def written_files(template: dict) -> dict[str, str]:
    """path -> the text cloud-init writes (gz+b64 decoded with gzip/base64 here)."""
    document = yaml.safe_load(user_data_text(template))
    files = {}
    for entry in document["write_files"]:
        content = entry["content"]
        if entry.get("encoding") == "gz+b64":
            content = gzip.decompress(base64.b64decode(content)).decode()
        elif entry.get("encoding") is not None:
            raise AssertionError(f"unexpected write_files encoding {entry['encoding']!r}")
        files[entry["path"]] = content
    return files


def bundle_files(template: dict) -> dict[str, str]:
    """path -> text of a server node stack's bundle (its AWS::SSM::Parameters' values joined in
    the order its boot.env's BUNDLE_PARAMETERS names them: a base64-encoded gzip-compressed
    tar, read here with base64, gzip and tarfile); empty for a stack without one (agents; the
    stacks whose parameters are boot facts, named .../facts/...)."""
    by_name = {r["Properties"]["Name"]: r["Properties"]["Value"] for r in template["Resources"].values()
               if r["Type"] == "AWS::SSM::Parameter" and "/facts/" not in r["Properties"]["Name"]}
    if not by_name:
        return {}
    order = _boot_env_value(template, "BUNDLE_PARAMETERS").split()
    assert sorted(order) == sorted(by_name), (order, sorted(by_name))
    value = "".join(by_name[name] for name in order)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(base64.b64decode(value)))) as tar:
        return {"/" + m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}


def _boot_env_value(template: dict, key: str) -> str:
    """One KEY='value' line of the node's /etc/k3s-infra/boot.env, read as a shell would."""
    (env_text,) = [text for path, text in written_files(template).items() if path.endswith("/boot.env")]
    (line,) = [line for line in env_text.splitlines() if line.startswith(f"{key}=")]
    return line.split("=", 1)[1].strip("'")


def node_files(template: dict) -> dict[str, str]:
    """Everything a node of the stack gets written: its user data's files, its bundle's."""
    return {**written_files(template), **bundle_files(template)}


def node_role(template: dict) -> str:
    """The ROLE a node stack's boot.env names (server-init, server or agent)."""
    return re.search(r"^ROLE='([a-z-]+)'$", written_files(template)["/etc/k3s-infra/boot.env"], re.M).group(1)


def node_stack_ids(templates: dict[str, dict]) -> list[str]:
    return [s for s, t in templates.items()
            if any(r["Type"] == "AWS::EC2::LaunchTemplate" for r in t.get("Resources", {}).values())]


def resolve(value: Any, values: dict[str, str]) -> Any:
    """``value`` as CloudFormation resolves it: Ref / Fn::Sub / Fn::Join / Fn::GetAtt replaced
    from ``values`` (keys: parameter and pseudo-parameter names, and "<Stack>.Outputs.<Name>"
    for nested-stack outputs); any other intrinsic function raises."""
    if isinstance(value, list):
        return [resolve(v, values) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return values[value["Ref"]]
    if set(value) == {"Fn::GetAtt"}:
        return values[".".join(value["Fn::GetAtt"])]
    if set(value) == {"Fn::Sub"}:
        text, local = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        scope = values | {k: resolve(v, values) for k, v in local.items()}
        # ${Name} is a variable, ${!Literal} the text ${Literal} (CloudFormation User Guide, Fn::Sub).
        return re.sub(r"\$\{(!?)([^}]*)\}", lambda m: "${" + m[2] + "}" if m[1] else scope[m[2]], text)
    if set(value) == {"Fn::Join"}:
        separator, items = value["Fn::Join"]
        return separator.join(resolve(items, values))
    if len(value) == 1 and next(iter(value)).startswith("Fn::"):
        raise NotImplementedError(f"intrinsic function {next(iter(value))}")
    return {k: resolve(v, values) for k, v in value.items()}
