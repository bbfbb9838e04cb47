"""Every command's flags, and the parser made of them.

This module imports nothing but argparse and the version: ``k3s-infra --help`` and shell
completion build the whole parser from it without loading any command. Each command's
work is in its own module, k3s_infra/cli/<command>.py, loaded only when it runs
(k3s_infra/cli/__init__.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from k3s_infra import __version__


def environment_names(**_) -> list[str]:
    """``--env <TAB>``: the environments of ./environments and those shipped with k3s-infra
    (argcomplete keeps the ones starting with what was typed)."""
    from k3s_infra.config import environment_names  # why: cli/__init__.py loaded it already; --help never asks

    return environment_names()


def add_environment_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--env", metavar="NAME", help="environment name: reads environments/NAME.yaml"
                       ).completer = environment_names  # type: ignore[attr-defined]  # argcomplete's hook
    group.add_argument("--config", metavar="PATH", help="path of an environment file")


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    """``--output text|json``: docs/commands.md "JSON output" lists the documents (cli/output.py prints them)."""
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text",
                        help="text for people (default) or one JSON document on stdout for pipelines")


def _skip_preflight(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-preflight", action="store_true",
                        help="skip the read-only checks of network, instance types and image (e.g. on an emulator)")


def _artifacts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifacts", metavar="DIR",
                        help="take the K3s release files (k3s[-arm64], k3s-airgap-images-<arch>.tar.zst, "
                             "sha256sum-<arch>.txt) from DIR instead of downloading them; checked all the same")


def _render(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--out", metavar="DIR", help="output folder (default: build/<env>)")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml", help="template format")
    add_output_argument(parser)


def _lint(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--no-checkov", action="store_true", help="skip checkov even where it is installed")
    add_output_argument(parser)


def _schema(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def _graph(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid",
                        help="svg needs Graphviz's `dot` on PATH")
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def _plan(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--update-image", action="store_true",
                        help="show the change with the newest image of nodes.ami_parameter (as deploy --update-image)")
    add_output_argument(parser)
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 0 when there is nothing to change, 2 when there is, 1 on error (as Terraform)")
    parser.add_argument("--out", metavar="PLANFILE",
                        help="keep the change set and write it to PLANFILE (JSON, mode 0600) for "
                             "'k3s-infra deploy PLANFILE', which executes exactly it")
    _skip_preflight(parser)
    _artifacts(parser)


def _force_unlock(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force-unlock", action="store_true",
                        help="remove the stack's deploy lock first (left by a run that no longer runs)")


def _deploy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan_file", nargs="?", metavar="PLANFILE",
                        help="execute exactly the change set 'k3s-infra plan --out PLANFILE' kept (its environment "
                             "is the plan's; refused if the stack or the environment file changed since)")
    add_environment_arguments(parser, required=False)  # required without PLANFILE (cli/deploy.py)
    _force_unlock(parser)
    _skip_preflight(parser)
    add_output_argument(parser)
    _artifacts(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="execute the change set without asking")
    parser.add_argument("--update-image", action="store_true",
                        help="re-resolve nodes.ami_parameter and take the newest image (replaces the nodes); "
                             "otherwise the deployed image stays pinned")
    parser.add_argument("--allow-quorum-loss", action="store_true",
                        help="override the quorum guards: remove more servers at once than etcd can lose "
                             "(then 'k3s-infra restore' from a snapshot), or change the servers while one is down")


def _estimate(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--roll", action="store_true",
                        help="also estimate a rolling update of every node group (a new K3s version or image)")
    parser.add_argument("--sources", action="store_true",
                        help="list every duration the model uses and where it comes from")
    parser.add_argument("--cost", action="store_true",
                        help="also print what the environment costs a month (730 hours), line by line")
    parser.add_argument("--prices", choices=("offline", "online"),
                        help="where --cost takes its prices (implies --cost): offline, the table shipped with "
                             "k3s-infra (default, no AWS call), or online, the AWS Price List API and EC2 spot "
                             "prices (needs pricing:GetProducts; falls back to the table)")
    add_output_argument(parser)


def _status(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    add_output_argument(parser)
    parser.add_argument("--watch", "-w", action="store_true",
                        help="re-attach to a running deploy/destroy and stream its events until it settles")


def _kubeconfig(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--out", metavar="PATH",
                        help="file to write (default: ./<env>.kubeconfig; with --merge: first $KUBECONFIG path "
                             "or ~/.kube/config)")
    parser.add_argument("--merge", action="store_true",
                        help="add the cluster to an existing kubeconfig (backup kept, other entries kept)")
    parser.add_argument("--set-context", action="store_true", help="with --merge: make it the current context")
    parser.add_argument("--force", action="store_true", help="without --merge: replace an existing file")


def _snapshots(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "create"), default="list",
                        help="list (default): the snapshots in S3, newest first; create: take one now on a server "
                             "(Run Command) and wait until it is in S3")
    add_environment_arguments(parser)
    add_output_argument(parser)
    parser.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                        help="create: how long to wait for the snapshot in all (default 900)")


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse turns the error into exit 2 before any AWS call)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def _shell(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node", nargs="?", metavar="NODE",
                        help="the node: its instance ID (K3s's node name here) or private DNS name (ip-10-0-1-5...)")
    parser.add_argument("--role", metavar="server|agent[:POOL]",
                        help="instead of NODE: the first in-service node of that role (or pool) whose SSM Agent is online")
    add_environment_arguments(parser)


def _restore(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--snapshot", metavar="NAME", help="snapshot name as 'k3s-infra snapshots' lists it "
                                                          "(default: the newest)")
    parser.add_argument("--yes", "-y", action="store_true", help="restore without asking")
    parser.add_argument("--timeout", type=_seconds, default=1800.0, metavar="SECONDS",
                        help="how long to wait for each step (default 1800)")
    _force_unlock(parser)


def _drill(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--snapshot", metavar="NAME", help="snapshot name as 'k3s-infra snapshots' lists it "
                                                         "(default: the newest)")
    which.add_argument("--fresh", action="store_true",
                       help="first write the drill marker through the cluster's API and take a snapshot now "
                            "(the only writes on the cluster's side)")
    which.add_argument("--cleanup", action="store_true",
                       help="only delete the drill stack an interrupted drill left (tagged as this cluster's drill)")
    parser.add_argument("--yes", "-y", action="store_true", help="run without asking (CI)")
    parser.add_argument("--timeout", type=_seconds, default=1800.0, metavar="SECONDS",
                        help="how long to wait for each step (default 1800)")
    parser.add_argument("--max-rto", type=_minutes, metavar="MINUTES",
                        help="objective: the restore must answer within this many minutes")
    parser.add_argument("--max-rpo", type=_minutes, metavar="MINUTES",
                        help="objective: the snapshot restored must be at most this many minutes old")
    add_output_argument(parser)
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 0 when the drill passed, 2 when it restored but missed an objective, 1 on error")
    _artifacts(parser)


def _destroy(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    parser.add_argument("--allow-protected", action="store_true",
                        help="override: destroy an environment marked protected (and lift termination protection "
                             "and the API load balancers' deletion protection)")
    parser.add_argument("--dry-run", action="store_true",
                        help="read-only: list what destroy would delete, empty, lift and keep; delete nothing")
    _force_unlock(parser)
    add_output_argument(parser)


def _init(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="environment name (lowercase letters, digits, -)")
    parser.add_argument("--from-account", action="store_true",
                        help="read the account ID (STS) and a VPC with its subnets (EC2) from your credentials; "
                             "read-only")
    parser.add_argument("--managed-network", action="store_true",
                        help="give the cluster a VPC of its own (network.create: public and private subnets in "
                             "three zones, a NAT gateway) instead of naming an existing one")
    parser.add_argument("--out", metavar="PATH", help="where to write it (default: environments/NAME.yaml)")
    parser.add_argument("--force", action="store_true", help="replace an existing file")


def port_number(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    if not text.strip().isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: give a port number from 0 (any free port) to 65535")
    return int(text)


def _emulator(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("start", "start it in the background, seeded with a VPC, and print the exports to use"),
                       ("serve", "run it in the foreground until Ctrl-C (what start runs in the background)")):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("--port", type=port_number, metavar="PORT",
                            help="port on 127.0.0.1 (default 5000, or $K3S_INFRA_EMULATOR_PORT; 0: any free one)")
        action.add_argument("--region", metavar="REGION", default=argparse.SUPPRESS,
                            help="region of the seeded VPC (default: $AWS_REGION, $AWS_DEFAULT_REGION or eu-west-1)")
    actions.add_parser("env", help="print the running emulator's exports, for eval", description="print the running "
                       "emulator's exports as shell lines: eval \"$(k3s-infra emulator env)\"")
    actions.add_parser("stop", help="stop the running emulator (its resources are gone)")


def _diff(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    add_output_argument(parser)
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 0 when nothing differs, 2 when something does, 1 on error")


def _minutes(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of minutes, 1 or more")
    return int(text)


def _upgrade(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--to", required=True, metavar="VERSION", help="the K3s release to roll to, e.g. v1.34.12+k3s1")
    _force_unlock(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="execute the change set without asking")
    add_output_argument(parser)
    parser.add_argument("--min-snapshot-age", type=_minutes, default=60, metavar="MINUTES",
                        help="refuse unless the newest etcd snapshot is at most this old (default 60)")
    # cli/upgrade.py SKIPPABLE (version-skew never is): test_upgrade checks the two agree
    parser.add_argument("--skip-check", action="append", metavar="RULE", choices=(
        "release-channel", "addon-charts", "etcd-health", "snapshot-age", "removed-apis"),
        help="let this refused check pass (repeatable; printed on stderr): release-channel, addon-charts, "
             "etcd-health, snapshot-age, removed-apis")
    parser.add_argument("--write", action="store_true",
                        help="after the deploy, set k3s.version in the environment file (comments kept)")
    _skip_preflight(parser)
    _artifacts(parser)


@dataclass(frozen=True)
class Command:
    module: str  # runs it: ``run(args) -> exit code``, imported only when the command runs
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]


COMMANDS: dict[str, Command] = {
    "render": Command("k3s_infra.cli.render", "render the CloudFormation templates of an environment", _render),
    "lint": Command("k3s_infra.cli.lint", "cfn-lint and checkov on the rendered templates; exit 1 on findings",
                    _lint),
    "schema": Command("k3s_infra.cli.schema", "print the JSON Schema of environment files", _schema),
    "graph": Command("k3s_infra.cli.graph",
                     "draw the architecture (nested stacks, NLB, ASGs, security-group edges)", _graph),
    "plan": Command("k3s_infra.cli.plan",
                    "package and show the change set of the root stack (adds, modifies, replacements)", _plan),
    "deploy": Command("k3s_infra.cli.deploy",
                      "package, create the change set, confirm, execute and stream stack events", _deploy),
    "upgrade": Command("k3s_infra.cli.upgrade", "check an upgrade of K3s (skew, release, add-ons, etcd, snapshot, "
                       "removed APIs), then roll to it as a deploy does", _upgrade),
    "estimate": Command("k3s_infra.cli.estimate",
                        "how long a create (or --roll) should take: the critical path of the nested stacks; "
                        "--cost: what it costs a month; no AWS call unless --prices online", _estimate),
    "status": Command("k3s_infra.cli.status",
                      "stack states of root and nested stacks, outputs, node group counts", _status),
    "kubeconfig": Command("k3s_infra.cli.kubeconfig", "write the admin kubeconfig (mode 0600) from its secret",
                          _kubeconfig),
    "snapshots": Command("k3s_infra.cli.snapshots",
                         "list the etcd snapshots in S3, newest first (name, size, time); 'create': take one now",
                         _snapshots),
    "shell": Command("k3s_infra.cli.shell", "a shell on a node through AWS Systems Manager Session Manager "
                     "(no inbound port, no key pair); needs the session-manager-plugin", _shell),
    "restore": Command("k3s_infra.cli.restore",
                       "restore the cluster's etcd from a snapshot (default: the newest)", _restore),
    "drill": Command("k3s_infra.cli.drill", "rehearse a restore: a snapshot into a throwaway stack, its recovery "
                     "time and data age, the stack deleted at the end", _drill),
    "destroy": Command("k3s_infra.cli.destroy", "delete the root stack and every nested stack, streaming events",
                       _destroy),
    "init": Command("k3s_infra.cli.init", "write a commented environment file that renders as is", _init),
    "diff": Command("k3s_infra.cli.diff",
                    "read-only: rendered templates against the deployed ones, per resource", _diff),
    "emulator": Command("k3s_infra.cli.emulator",
                        "an AWS emulator on this machine (moto, seeded with a VPC) to try every command; "
                        "needs the [emulator] extra", _emulator),
}


def _add_global_arguments(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Flags every command takes, before or after its name. Below a command they default
    to SUPPRESS, so ``k3s-infra -v status`` is not undone by the command's own default."""
    def default(value):
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    if top:
        group.add_argument("--version", action="version", version=f"k3s-infra {__version__}")
    group.add_argument("-v", "--verbose", action="count", default=default(0),
                       help="more detail on stderr (repeat for debug messages)")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False),
                       help="print only errors and machine-readable documents (use with --yes)")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="log every AWS request and response to stderr, secrets masked")
    group.add_argument("--profile", metavar="NAME", default=default(None),
                       help="AWS profile for AWS commands (instead of AWS_PROFILE / the default chain)")
    group.add_argument("--region", metavar="REGION", default=default(None),
                       help="override the environment file's region")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="k3s-infra", description="Highly available K3s on AWS CloudFormation")
    _add_global_arguments(top, top=True)
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        below = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(below)
        _add_global_arguments(below, top=False)
    return top
