"""Logging for -v/--verbose, -q/--quiet and --debug: one stderr handler whose filter
masks secrets, so a pasted debug log never carries a token, a kubeconfig or a key.

--debug turns on botocore's request log (parameters, headers, response bodies): that
log contains SecretString values (the K3s token, the kubeconfig) and request
signatures, hence the redaction below."""

from __future__ import annotations

import logging
import re
import sys

MASK = "***"

# "SecretString": "...", 'SecretBinary': b'...', SecretAccessKey=..., in JSON bodies, in
# Python reprs of parsed responses and in form-encoded query bodies alike.
_QUOTED = re.compile(
    r"""(?P<key>\b(?:SecretString|SecretBinary|SecretAccessKey|SessionToken|aws_secret_access_key|"""
    r"""aws_session_token|Password|PrivateKey|KeyMaterial)\\?["']?\s*[:=]\s*b?)"""
    r"""(?P<q>\\?["'])(?P<value>(?:\\.|(?!(?P=q)).)*?)(?P=q)""", re.S)
_BARE = re.compile(r"\b(?P<key>SecretString|SecretBinary|SecretAccessKey|SessionToken|Password)=(?P<value>[^&\s'\"]+)")
# Request signatures and session tokens in headers.
_HEADER = re.compile(r"""(?P<key>['"]?(?:Authorization|X-Amz-Security-Token)['"]?\s*:\s*b?)(?P<q>["'])[^"']*(?P=q)""",
                     re.I)
_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


def redact(text: str) -> str:
    text = _QUOTED.sub(lambda m: f"{m['key']}{m['q']}{MASK}{m['q']}", text)
    text = _BARE.sub(lambda m: f"{m['key']}={MASK}", text)
    text = _HEADER.sub(lambda m: f"{m['key']}{m['q']}{MASK}{m['q']}", text)
    return _ACCESS_KEY.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """Formats the record's message once, masked; arguments are dropped afterwards."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def configure(verbose: int = 0, quiet: bool = False, debug: bool = False, stream=None):
    """-q: errors only; default: warnings; -v: k3s-infra's progress and where boto3 found
    credentials; -vv: k3s-infra's debug messages; --debug: every AWS request and response.
    Returns a function that puts logging back as it was (the CLI runs in-process in tests)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    levels = {"": logging.WARNING}
    if quiet:
        levels[""] = logging.ERROR
    else:
        if verbose:
            levels.update({"k3s_infra": logging.INFO if verbose == 1 else logging.DEBUG,
                           "botocore.credentials": logging.INFO})
        if debug:
            levels.update({"k3s_infra": logging.DEBUG, "botocore": logging.DEBUG, "boto3": logging.DEBUG})
    loggers = {name: logging.getLogger(name or None) for name in levels}
    previous = {name: logger.level for name, logger in loggers.items()}
    root = logging.getLogger()
    root.addHandler(handler)
    for name, level in levels.items():
        loggers[name].setLevel(level)

    def restore() -> None:
        root.removeHandler(handler)
        for name, level in previous.items():
            loggers[name].setLevel(level)

    return restore
