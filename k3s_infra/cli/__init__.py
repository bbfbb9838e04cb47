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
import io
import os
import shlex
import signal
import sys
from collections.abc import Sequence

# Loading the parser's table and the configuration models allocates many objects and
# frees none: the cyclic collector only costs time while they load (as in main below).
_collecting = gc.isenabled()
gc.disable()
try:
    from k3s_infra.cli import arguments
    from k3s_infra.config import (ConfigError, Environment, environment_file, environment_folders, load_environment,
                                  validate)
    from k3s_infra.config.text import printable
    from k3s_infra.deploy import HandedOver
    from k3s_infra.deploy.stack_states import cancellable
finally:
    if _collecting:
        gc.enable()

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_CHANGES = 2  # plan/diff --detailed-exitcode: there is something to change (as Terraform)
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT (128 + 2)

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
    """The environment file ``--env`` or ``--config`` names, as problems cite it: the file
    read (./environments/NAME.yaml, else the example shipped with the package)."""
    if args.config:
        return args.config
    return str(environment_file(args.env) or environment_folders()[0] / f"{args.env}.yaml")


def main(argv: Sequence[str] | None = None) -> int:
    collecting = gc.isenabled()
    gc.disable()
    try:
        parser = arguments.parser()
        _complete(parser)
        args = _parse(parser, argv)
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
    # SIGTERM (timeout, docker stop, a cancelled CI job) as Ctrl-C: Python raises KeyboardInterrupt
    # only for SIGINT (signal module docs), and without it no cleanup runs (the change set, the lock).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    code = main(argv)
    # The work is done and the process ends: move every object out of the collector's
    # reach so shutdown skips a last full collection over all of them (about 30 ms,
    # 15% of a render; the OS frees the memory anyway).
    gc.freeze()
    sys.exit(code)


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion (bash, zsh, fish) through argcomplete, only while a shell asks for
    completions (it sets _ARGCOMPLETE). docs/commands.md "Global options and shell completion"
    shows the line each shell needs."""
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


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The parsed flags. A usage error argparse finds exits 2 with its message on stderr; when
    the command line asks for --output json, the error document follows on stdout, and with
    --detailed-exitcode the exit code is 1 (2 would read as "changes")."""
    words = list(sys.argv[1:] if argv is None else argv)
    wants_json = any(w in ("-ojson", "--output=json") for w in words) or any(
        a in ("-o", "--output") and b == "json" for a, b in zip(words, words[1:]))
    detailed = "--detailed-exitcode" in words
    if not (wants_json or detailed):
        return parser.parse_args(words)
    caught = io.StringIO()
    try:
        with contextlib.redirect_stderr(caught):
            return parser.parse_args(words)
    except SystemExit as exc:
        text = caught.getvalue()
        sys.stderr.write(text)
        if exc.code != EXIT_USAGE:
            raise
        code = EXIT_FAILED if detailed else EXIT_USAGE
        if wants_json:
            message = text.strip().splitlines()[-1] if text.strip() else "invalid arguments"
            command = next((w for w in words if w in arguments.COMMANDS), None)
            _print_error_document(command, code, [_problem(None, "", message.split(": error: ")[-1])])
        raise SystemExit(code) from None


def _run(args: argparse.Namespace) -> int:
    """Run the command; an error is one message on stderr (and, with --output json, one error
    document on stdout); with --detailed-exitcode every error exits 1."""
    try:
        # The lazy door: the chosen command's module, with everything it imports.
        command = importlib.import_module(arguments.COMMANDS[args.command].module)
        return command.run(args)
    except (ConfigError, UsageError) as exc:
        if isinstance(exc, ConfigError) and exc.source.startswith("environment ") and \
                (getattr(args, "env", None) or getattr(args, "config", None)):
            exc = ConfigError(source_of(args), exc.problems, exc.hint)  # a limit met at render: name the file
        _error(str(exc))
        problems = [_problem(exc.source, path, message) for path, message in exc.problems] \
            if isinstance(exc, ConfigError) else [_problem(None, "", str(exc))]
        return _failed(args, EXIT_USAGE, problems, getattr(exc, "hint", "") or None)
    except AwsFailure as exc:
        _error(str(exc))
        return _failed(args, EXIT_FAILED, [_problem(None, "", str(exc))])
    except BrokenPipeError:
        # The reader went away (``k3s-infra render ... | head``): stop quietly, and point
        # stdout at /dev/null so the interpreter's last flush cannot fail again.
        _silence_stdout()
        _error("output closed before the command finished")
        return _exit_code(args, EXIT_FAILED)  # no document: nobody reads stdout any more
    except OSError as exc:  # disk full, permissions, a folder vanishing mid-write
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}")
        return _failed(args, EXIT_FAILED, [_problem(exc.filename and str(exc.filename), "", str(exc.strerror or exc))])
    except KeyboardInterrupt as exc:
        text = handed_over(exc, args) if isinstance(exc, HandedOver) else "interrupted"
        _say_error(text)
        return _failed(args, EXIT_INTERRUPTED, [_problem(None, "", text)])


def handed_over(exc: HandedOver, args: argparse.Namespace) -> str:
    """What Ctrl-C left running in CloudFormation, and how to follow or cancel it (said once)."""
    stack, status = exc.stack_name, exc.status or "status unknown"
    watch = f"k3s-infra status {_environment_flags(args)} --watch"
    if exc.operation is None:  # CloudFormation had finished: the deploy waited for its nodes
        return (f"interrupted: {stack} is {status}; the nodes may still be joining: "
                f"k3s-infra status {_environment_flags(args)}")
    lines = [f"interrupted: CloudFormation carries on with the {exc.operation} of {stack} ({status}) without "
             f"this process", f"  watch it:  {watch}"]
    if exc.operation == "UPDATE":
        cancel = f"aws cloudformation cancel-update-stack --stack-name {stack}" + \
            (f" --region {exc.region}" if exc.region else "")
        lines.append(f"  cancel it: {cancel}" if exc.status is None or cancellable(exc.status) else
                     f"  it can no longer be cancelled ({exc.status}: only UPDATE_IN_PROGRESS can)")
    elif exc.operation == "CREATE":
        lines.append(f"  undo it:   once it settles, k3s-infra destroy {_environment_flags(args)}")
    else:
        lines.append("  a delete cannot be cancelled")
    return "\n".join(lines)


def _environment_flags(args: argparse.Namespace) -> str:
    """--env/--config (and --region, --profile) as this run was given them, to repeat in a hint."""
    flags = [f"--env {args.env}" if getattr(args, "env", None) else f"--config {shlex.quote(str(args.config))}"]
    for name in ("region", "profile"):
        if getattr(args, name, None):
            flags.append(f"--{name} {shlex.quote(getattr(args, name))}")
    return " ".join(flags)


def _problem(source: str | None, path: str, message: str) -> dict[str, str | None]:
    return {"source": source, "path": path, "message": message}


def _exit_code(args: argparse.Namespace, code: int) -> int:
    """--detailed-exitcode (plan, diff) keeps 2 for "changes": every error is 1, as Terraform's plan
    (https://developer.hashicorp.com/terraform/cli/commands/plan, -detailed-exitcode)."""
    return EXIT_FAILED if getattr(args, "detailed_exitcode", False) else code


def _failed(args: argparse.Namespace, code: int, problems: list[dict], hint: str | None = None) -> int:
    code = _exit_code(args, code)
    if getattr(args, "output", "text") == "json":
        _print_error_document(args.command, code, problems, hint)
    return code


def _print_error_document(command: str | None, code: int, problems: list[dict], hint: str | None = None) -> None:
    """The one document of a command that failed (docs/commands.md "JSON output": kind "error")."""
    from k3s_infra.cli.output import document, print_json  # why: errors only; output imports the renderer

    try:
        print_json(document("error", command=command, exit_code=code, problems=problems, hint=hint))
    except (OSError, ValueError):
        pass  # stdout closed: the exit code still says it


def _say_error(text: str) -> None:
    try:
        print(printable(text, limit=4000), file=sys.stderr)
    except OSError:
        pass


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
