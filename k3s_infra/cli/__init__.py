"""k3s-infra command line: one small module per command (``add_arguments`` and
``run``), imported lazily so ``render`` never pays for boto3 or cfn-lint."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import sys
from collections.abc import Callable, Sequence

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("k3s_infra.cli.render", "render the CloudFormation templates of an environment"),
    "lint": ("k3s_infra.cli.lint", "cfn-lint and checkov on the rendered templates; exit 1 on findings"),
    "schema": ("k3s_infra.cli.schema", "print the JSON Schema of environment files"),
    "graph": ("k3s_infra.cli.graph", "draw the architecture (nested stacks, NLB, ASGs, security-group edges)"),
    "plan": ("k3s_infra.cli.plan", "package and show the change set of the root stack (adds, modifies, replacements)"),
    "deploy": ("k3s_infra.cli.deploy", "package, create the change set, confirm, execute and stream stack events"),
    "status": ("k3s_infra.cli.status", "stack states of root and nested stacks, outputs, node group counts"),
    "kubeconfig": ("k3s_infra.cli.kubeconfig", "write the admin kubeconfig (mode 0600) from its secret"),
    "snapshots": ("k3s_infra.cli.snapshots", "list the etcd snapshots in S3, newest first (name, size, time)"),
    "restore": ("k3s_infra.cli.restore", "restore the cluster's etcd from a snapshot (default: the newest)"),
    "destroy": ("k3s_infra.cli.destroy", "delete the root stack and every nested stack, streaming events"),
    "init": ("k3s_infra.cli.init", "write a commented environment file that renders as is"),
    "diff": ("k3s_infra.cli.diff", "read-only: rendered templates against the deployed ones, per resource"),
}

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A user mistake outside config files (bad flag combination, missing build)."""


def add_environment_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--env", metavar="NAME", help="environment name: reads environments/NAME.yaml")
    group.add_argument("--config", metavar="PATH", help="path of an environment file")


def emit(text: str, out: str | None, looks_like: Callable[[str], bool],
         config: str | None = None) -> None:
    """Write a command's document to ``out`` (new, or a previous output of the command
    as judged by ``looks_like``; never the environment file), or to stdout."""
    if out:
        from pathlib import Path

        from k3s_infra.render import safe_output

        path = Path(out)
        safe_output.check_output_file(path, looks_like, protected=(Path(config),) if config else ())
        safe_output.write_file(path, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def load(args: argparse.Namespace):
    from k3s_infra.config import load_environment

    # --region replaces the file's region (validated again: subnets' AZs must match it)
    overrides = {"region": args.region} if getattr(args, "region", None) else None
    return load_environment(args.env, path=args.config, overrides=overrides)


def _add_global_arguments(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Flags every command takes, before or after its name. Below a command they default
    to SUPPRESS, so ``k3s-infra -v status`` is not undone by the command's own default."""
    def default(value):
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    if top:
        from k3s_infra import __version__

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="k3s-infra", description="Highly available K3s on AWS CloudFormation")
    _add_global_arguments(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(command)
        _add_global_arguments(command, top=False)
    return parser


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion (bash, zsh, fish) through argcomplete: only imported while a
    shell asks for completions (it sets _ARGCOMPLETE), so rendering never pays for it.
    README "Shell completion" shows the one line each shell needs."""
    import os

    if "_ARGCOMPLETE" in os.environ:
        import argcomplete

        argcomplete.autocomplete(parser)


def _settle_output(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    """Logging per -v/-q/--debug; -q silences the text a person reads (stdout) while the
    command runs, never a JSON document asked for with --output json, nor errors (stderr)."""
    import os

    if args.verbose or args.quiet or args.debug:
        from k3s_infra.cli import logs

        stack.callback(logs.configure(args.verbose, args.quiet, args.debug))
    if args.quiet and getattr(args, "output", "text") != "json":
        stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))


# Commands that finish in well under a second: building pydantic models and
# templates allocates many objects and frees none before exit, so the cyclic
# garbage collector only costs time there (about 5% of a render).
SHORT_LIVED = frozenset({"render", "schema", "graph"})


def main(argv: Sequence[str] | None = None) -> int:
    collecting = gc.isenabled()
    gc.disable()
    try:
        from k3s_infra.config import ConfigError

        parser = _parser()
        _complete(parser)
        args = parser.parse_args(argv)
        if collecting and args.command not in SHORT_LIVED:
            gc.enable()
        with contextlib.ExitStack() as stack:
            _settle_output(args, stack)
            return _run(args, ConfigError)
    finally:
        if collecting:
            gc.enable()


def entry(argv: Sequence[str] | None = None) -> None:
    """Process entry point (console script, ``python -m k3s_infra``, build.py)."""
    code = main(argv)
    # The work is done and the process ends: move every object out of the collector's
    # reach so shutdown skips a last full collection over all of them (about 30 ms,
    # 15% of a render; the OS frees the memory anyway).
    gc.freeze()
    sys.exit(code)


def _run(args: argparse.Namespace, config_error: type[Exception]) -> int:
    from k3s_infra.render.safe_output import OutputError

    try:
        return importlib.import_module(COMMANDS[args.command][0]).run(args)
    except (config_error, UsageError, OutputError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (``k3s-infra render ... | head``): stop quietly, and point
        # stdout at /dev/null so the interpreter's last flush cannot fail again.
        _silence_stdout()
        _error("output closed before the command finished")
        return EXIT_FAILED
    except OSError as exc:  # disk full, permissions, a folder vanishing mid-write
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _error(message: str) -> None:
    """One message on stderr, terminal control characters escaped (see config_text)."""
    from k3s_infra.config.text import printable

    try:
        print(f"error: {printable(message, limit=4000)}", file=sys.stderr)
    except OSError:
        pass  # stderr closed too: the exit code still says it


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
