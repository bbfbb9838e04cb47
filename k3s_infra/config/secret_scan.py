"""Finding secrets in add-on values before they reach the user data.

Add-on values travel in the servers' user data (gzip+base64 is not encryption):
anyone who can describe the launch template reads them. So a value under a
secret-looking key (``adminPassword``, ``env.GF_SECURITY_ADMIN_PASSWORD``, an
``extraEnv`` entry ``{name: API_TOKEN, value: ...}``) or a value that looks like
key material (a PEM block, an AWS access key, a long random string) is refused
at any depth; ``addons.<name>.secret_values`` names a Secrets Manager secret instead.

The checks aim at literal secrets and leave normal values alone: references to
secrets (``existingSecret: grafana-admin``, ``passwordKey``, ``tokenSecretName``),
booleans and numbers (``createSecret: true``), image tags, digests, URLs, host names.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

# Normalised (lowercase, no '-', '_', '.') key fragments that name a secret.
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "credential",
                "accesskey", "clientkey", "signingkey", "encryptionkey", "connectionstring")
# ... unless the key names where a secret is, not the secret itself.
REFERENCE_ENDINGS = ("name", "names", "ref", "existingsecret", "file", "path", "key", "keys", "field",
                     "enabled", "ttl", "length", "policy", "mode", "type", "annotations", "labels")
# Except a few keys ending in "key" that are the secret itself.
SECRET_KEYS = ("apikey", "privatekey", "secretkey", "accesskey", "secretaccesskey", "clientkey",
               "signingkey", "encryptionkey", "sharedkey", "masterkey")

_VALUE_PATTERNS = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]*(PRIVATE KEY|CERTIFICATE|PGP)"), "a PEM block"),
    (re.compile(r"\b(AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"), "an AWS access key ID"),
    (re.compile(r"\b(ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"), "a GitHub token"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), "a JSON Web Token"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
)
_RANDOM = re.compile(r"^[A-Za-z0-9+/=_-]{32,}$")


def normalised(key: str) -> str:
    return re.sub(r"[-_.\s]", "", key.lower())


def secret_key(key: str) -> bool:
    word = normalised(key)
    if word.endswith(SECRET_KEYS):
        return True
    return any(w in word for w in SECRET_WORDS) and not word.endswith(REFERENCE_ENDINGS)


def secret_value(value: str) -> str | None:
    """What kind of secret ``value`` looks like, or None."""
    for pattern, kind in _VALUE_PATTERNS:
        if pattern.search(value):
            return kind
    # A long run of random letters and digits (an AWS secret key, an API key): mixed case
    # and digits, high entropy. Hex digests, URLs, paths and host names do not match.
    if _RANDOM.match(value) and re.search(r"[a-z]", value) and re.search(r"[A-Z]", value) \
            and re.search(r"[0-9]", value) and _entropy(value) >= 4.0:
        return "a long random string (a key or token)"
    return None


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def findings(values: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, reason) of every secret-looking entry in chart values."""
    if isinstance(values, dict):
        for key, item in values.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(item, str) and item and secret_key(str(key)):
                yield where, f"{key!s} looks like a secret"
            else:
                yield from findings(item, where)
    elif isinstance(values, list):
        for index, item in enumerate(values):
            where = f"{path}[{index}]"
            # Kubernetes env entries: {name: API_TOKEN, value: ...}
            if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str) \
                    and item["value"] and secret_key(item["name"]):
                yield f"{where}.value", f"environment variable {item['name']} looks like a secret"
            else:
                yield from findings(item, where)
    elif isinstance(values, str):
        kind = secret_value(values)
        if kind:
            yield path, f"the value looks like {kind}"
