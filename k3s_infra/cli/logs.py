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


def configure(verbose: int = 0, quiet: bool = False, debug: bool = False, stream=None) -> None:
    """-q: errors only; default: warnings; -v: k3s-infra's progress and where boto3 found
    credentials; -vv: k3s-infra's debug messages; --debug: every AWS request and response."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_k3s_infra", False):
            root.removeHandler(old)
    handler._k3s_infra = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if quiet:
        root.setLevel(logging.ERROR)
        return
    root.setLevel(logging.WARNING)
    if verbose:
        logging.getLogger("k3s_infra").setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
        logging.getLogger("botocore.credentials").setLevel(logging.INFO)
    if debug:
        logging.getLogger("k3s_infra").setLevel(logging.DEBUG)
        logging.getLogger("botocore").setLevel(logging.DEBUG)
        logging.getLogger("boto3").setLevel(logging.DEBUG)
