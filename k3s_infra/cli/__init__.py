"""k3s-infra command line: the only layer that prints, reads flags and picks exit codes.

How a command runs: ``main`` builds the parser from cli/arguments.py (cheap: ``--help``
and shell completion load no command), settles logging and quiet output, then imports
the chosen command's module, k3s_infra/cli/<command>.py, and calls its ``run(args)``.
That import in ``_run`` is the CLI's one lazy door: each command module imports what it
needs at its top (boto3 and the deploy library, cfn-lint, ...), so ``render`` never pays
for boto3. The library below (k3s_infra.deploy, k3s_infra.render) returns data and
reports progress through callbacks; the command modules turn both into text or JSON."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Sequence

# Loading the parser's table and the configuration models allocates many objects and
# frees none: the cyclic collector only costs time while they load (as in main below).
_collecting = gc.isenabled()
gc.disable()
try:
    from k3s_infra.cli import arguments
    from k3s_infra.config import ConfigError, Environment, environments_folder, load_environment, validate
    from k3s_infra.config.text import printable
finally:
    if _collecting:
        gc.enable()

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_CHANGES = 2  # plan/diff --detailed-exitcode: there is something to change (as Terraform)

# Commands that finish in well under a second: building pydantic models and
# templates allocates many objects and frees none before exit, so the cyclic
# garbage collector only costs time there (about 5% of a render).
SHORT_LIVED = frozenset({"render", "schema", "graph"})


class UsageError(Exception):
    """A user mistake outside config files (bad flag combination, missing build): exit 2."""


class AwsFailure(Exception):
    """AWS could not be reached or refused a call outside ``cli/aws.run`` (init --from-account): exit 1."""


def region_override(args: argparse.Namespace) -> str | None:
    """``--region`` as given, checked as the file's region field is (same message, naming
    the flag): an empty or malformed value is an error, never taken as "no override"."""
    region = getattr(args, "region", None)
    if region is None:
        return None
    try:
        validate({"region": region}, "--region")  # the other fields' problems are the file's, later
    except ConfigError as exc:
        problems = [(path, message) for path, message in exc.problems if path == "region"]
        if problems:
            raise ConfigError("--region", [("", problems[0][1])]) from None
    return region


def load(args: argparse.Namespace) -> Environment:
    # --region replaces the file's region (validated again: subnets' AZs must match it)
    region = region_override(args)
    overrides = {"region": region} if region is not None else None
    return load_environment(args.env, path=args.config, overrides=overrides)


def source_of(args: argparse.Namespace) -> str:
    """The environment file ``--env`` or ``--config`` names, as problems cite it."""
    return args.config or str(environments_folder() / f"{args.env}.yaml")


def main(argv: Sequence[str] | None = None) -> int:
    collecting = gc.isenabled()
    gc.disable()
    try:
        parser = arguments.parser()
        _complete(parser)
        args = parser.parse_args(argv)
        if collecting and args.command not in SHORT_LIVED:
            gc.enable()
        with contextlib.ExitStack() as stack:
            _settle_output(args, stack)
            return _run(args)
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


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion (bash, zsh, fish) through argcomplete, only while a shell asks for
    completions (it sets _ARGCOMPLETE). README "Shell completion" shows the line each shell needs."""
    if "_ARGCOMPLETE" in os.environ:
        import argcomplete  # why: optional at run time and slow to import; only a completing shell needs it

        argcomplete.autocomplete(parser)


def _settle_output(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    """Logging per -v/-q/--debug; -q silences the text a person reads (stdout) while the
    command runs, never a JSON document asked for with --output json, nor errors (stderr)."""
    if args.verbose or args.quiet or args.debug:
        # why here: logging and the redaction patterns cost every run time; only these flags need them
        from k3s_infra.cli import logs

        stack.callback(logs.configure(args.verbose, args.quiet, args.debug))
    if args.quiet and getattr(args, "output", "text") != "json":
        stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))


def _run(args: argparse.Namespace) -> int:
    try:
        # The lazy door: the chosen command's module, with everything it imports.
        command = importlib.import_module(arguments.COMMANDS[args.command].module)
        return command.run(args)
    except (ConfigError, UsageError) as exc:
        if isinstance(exc, ConfigError) and exc.source.startswith("environment ") and \
                (getattr(args, "env", None) or getattr(args, "config", None)):
            exc = ConfigError(source_of(args), exc.problems)  # a limit met at render: name the file
        _error(str(exc))
        return EXIT_USAGE
    except AwsFailure as exc:
        _error(str(exc))
        return EXIT_FAILED
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
    """One message on stderr, terminal control characters escaped (see config.text)."""
    try:
        print(f"error: {printable(message, limit=4000)}", file=sys.stderr)
    except OSError:
        pass  # stderr closed too: the exit code still says it


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
