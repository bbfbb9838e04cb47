"""What a secret looks like, as data: key names that name one and value shapes that are one.

The one place of these patterns: ``secret_scan`` walks add-on values and single fields
(tags, labels, stack names, URLs, names, SSM paths and ARNs that land in templates) with them,
and ``redact`` clears them from every error message (config/errors.py). Two questions,
answered separately:

- ``key_kind(key)``: does a key name a secret? ``STRONG`` names (``password``,
  ``apiToken``) make everything under them a secret, lists and maps included; ``WEAK``
  ones (``auth``, ``dbPass``, ``webhookUrl``) only a plain value directly under them, so a
  chart's ``webhook: {timeoutSeconds: 10}`` or ``auth: {anonymous: {enabled: true}}`` stays
  a setting; ``REFERENCE`` names (``existingSecret``, ``passwordKey``, ``tokenTTL``) say
  where a secret is or how it behaves, never the secret itself.
- ``value_kind(text)``: does a value look like a secret whatever its key? Key material
  (private keys, access key IDs, join tokens, well-known token prefixes), credentials in
  URLs (user info, query strings, webhook paths), ``password=...`` in connection strings
  and embedded config, ``--token ...`` flags, Authorization headers, long random strings.

Key names are compared after NFKC normalisation with zero-width, format and combining
characters removed and look-alike Cyrillic and Greek letters mapped to Latin ones, so
``pa\\u200bssword`` or a Cyrillic ``а`` in ``pаssword`` is still ``password``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import unicodedata
from collections import Counter

# --- key names ----------------------------------------------------------------------------

STRONG, WEAK, REFERENCE = "strong", "weak", "reference"

# Compact (lowercase, separators removed) fragments naming a secret wherever they appear.
STRONG_WORDS = ("password", "passwd", "passphrase", "passcode", "secret", "token", "apikey", "privatekey",
                "credential", "accesskey", "clientkey", "signingkey", "encryptionkey", "connectionstring")
# Compact endings that are the secret itself even though they end like a reference ("...key").
SECRET_ENDINGS = ("apikey", "privatekey", "secretkey", "accesskey", "secretaccesskey", "clientkey", "signingkey",
                  "encryptionkey", "sharedkey", "masterkey", "sessionkey", "hmackey", "accountkey", "licensekey",
                  "secretid")
# The last word of a key that names a secret when it holds a plain value ("dbPass: x",
# "basicAuth: user:pw", "sentryDsn: ..."); a map under it is configuration.
WEAK_LAST_WORDS = ("pass", "pwd", "pw", "pin", "auth", "bearer", "dsn", "webhook", "cookie", "otp",
                   "authorization", "jaas")
# Compact keys (or endings) naming a secret-bearing plain value.
WEAK_ENDINGS = ("webhookurl", "webhookuri", "hookurl", "jaasconfig", "dbpass", "dbpwd")
_NOT_PASS = ("bypass", "compass", "surpass", "overpass", "underpass", "trespass", "multipass", "onepass")
# Endings of keys that say where a secret is or how it behaves (Kubernetes references,
# files, switches, sizes and times, identities that are not secret), and prefixes of
# switches and counts ("createSecret", "maxTokens").
REFERENCE_ENDINGS = (
    "name", "names", "ref", "refs", "existingsecret", "file", "files", "path", "paths", "dir", "key", "keys",
    "field", "enabled", "enable", "disabled", "ttl", "length", "policy", "mode", "type", "annotations", "labels",
    "namespace", "audience", "expiry", "expiration", "expirationseconds", "seconds", "minutes", "hours", "days",
    "timeout", "interval", "duration", "lifetime", "maxage", "period", "rotation", "required", "mount", "volume",
    "volumes", "provider", "format", "header", "headers", "prefix", "url", "uri", "endpoint", "address", "host",
    "port", "user", "username", "userid", "login", "email", "id", "size", "count", "limit", "version", "template",
    "selector", "class", "kind", "algorithm", "issuer", "scope", "scopes",
    # "...Secret" that names a Kubernetes Secret (longhorn backupTargetCredentialSecret, tlsSecret).
    "credentialsecret", "credentialssecret", "tlssecret", "casecret", "certsecret", "certificatesecret",
    "pullsecret", "pullsecrets", "registrysecret", "backupsecret", "configsecret", "envsecret", "envfromsecret",
    "envfromsecrets", "secretsecret")
REFERENCE_PREFIXES = ("max", "min", "num", "enable", "disable", "use", "create", "allow", "require", "skip",
                      "automount", "auto")

# Look-alike letters a key may be spelled with (Unicode confusables of Latin letters).
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J",
    "α": "a", "ο": "o", "ρ": "p", "ι": "i", "κ": "k", "ν": "v", "υ": "u", "χ": "x", "ε": "e", "τ": "t",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ɡ": "g", "ı": "i",
})
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def plain_key(key: str) -> str:
    """``key`` as it reads: NFKC, without zero-width, format or combining characters, with
    look-alike letters mapped to Latin (case kept)."""
    text = unicodedata.normalize("NFKD", key)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Mn", "Me", "Cc"))
    return unicodedata.normalize("NFKC", text).translate(_CONFUSABLES)


def key_words(key: str) -> list[str]:
    """'dbPass' -> ['db', 'pass']; 'sasl.jaas.config' -> ['sasl', 'jaas', 'config']."""
    return [w.lower() for w in _WORD.findall(plain_key(key))]


def key_kind(key: str) -> str | None:
    """STRONG, WEAK or REFERENCE when ``key`` names a secret or where one is; else None."""
    words = key_words(str(key))
    if not words:
        return None
    compact = "".join(words)
    if compact.endswith(SECRET_ENDINGS):
        return STRONG
    if compact.endswith(WEAK_ENDINGS):
        return WEAK
    if compact.endswith(REFERENCE_ENDINGS) or (compact.startswith(REFERENCE_PREFIXES) and len(words) > 1
                                               and words[0] in REFERENCE_PREFIXES):
        return REFERENCE
    if any(word in compact for word in STRONG_WORDS):
        return STRONG
    last = words[-1]
    if last in WEAK_LAST_WORDS or "jaas" in compact or (last.endswith(("pass", "pwd")) and last not in _NOT_PASS):
        return WEAK
    return None


# --- values ---------------------------------------------------------------------------------

# Whole references to a secret kept elsewhere: ${VAR}, $(VAR), $__file{...} / $__env{...} (Grafana).
REFERENCE_VALUE = re.compile(r"^\s*(\$\{[^}]+\}|\$\([A-Za-z_][A-Za-z0-9_]*\)|\$__(file|env|vault)\{[^}]+\})\s*$")
# What follows "password=" when it is no secret: a reference ($VAR, ${VAR}, $(VAR), {{ .Values.x }})
# or a switch.
_NOT_A_VALUE = r"(?!\$\{|\$\(|\$__|\$[A-Z_][A-Z0-9_]*(?![A-Za-z0-9_])|\{\{|(?:true|false|null|none|yes|no)\b)"
_SECRET_WORD = (r"(?:password|passwd|pwd|passphrase|secret|client[_-]?secret|token|access[_-]?token|auth[_-]?token"
                r"|api[_-]?key|secret[_-]?key|access[_-]?key|private[_-]?key)")
_FLAG_WORD = r"(?:password|passwd|pass|pwd|token|secret|api-?key|access-?key|secret-?key|credentials?)"
FLAG = re.compile(rf"^--?(?:[a-z0-9]+[-_])*{_FLAG_WORD}$", re.IGNORECASE)
_URL_QUERY_WORDS = (r"(?:access_token|refresh_token|id_token|token|auth_token|authtoken|private_token|api[_-]?key"
                    r"|apikey|key|password|passwd|pwd|secret|client_secret|sig|signature|x-amz-signature"
                    r"|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|auth|sas)")

PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]*(PRIVATE KEY|PGP PRIVATE KEY BLOCK)"), "a private key (PEM)"),
    (re.compile(r"(?<![A-Z0-9])(AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Z0-9])"), "an AWS access key ID"),
    # K3s tokens: K10<sha256 of the cluster CA>::<user>:<password> (server and agent/node tokens).
    (re.compile(r"K10[0-9a-fA-F]{64}::[^:\s]+:\S+"), "a K3s join token"),
    (re.compile(r"\b(ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"), "a GitHub token"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), "a GitLab token"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), "a Google API key"),
    (re.compile(r"\b[sr]k_live_[0-9A-Za-z]{20,}"), "a Stripe key"),
    (re.compile(r"\bhv[sb]\.[A-Za-z0-9_-]{20,}"), "a Vault token"),
    (re.compile(r"\bnpm_[A-Za-z0-9]{30,}"), "an npm token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), "a JSON Web Token"),
    # (bounded, and the scheme starts at a boundary: a megabyte of letters is one attempt, not a million)
    (re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,30}://[^/\s:@]{0,256}:[^/\s@]{1,256}@"),
     "a URL with a password"),
    (re.compile(r"hooks\.slack\.com/(services|workflows|triggers)/[A-Za-z0-9/_-]{8,}"), "a Slack webhook URL"),
    (re.compile(r"discord(app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]{20,}"), "a Discord webhook URL"),
    (re.compile(r"\.webhook\.office\.com/webhook[a-z0-9]*/\S{20,}"), "a Microsoft Teams webhook URL"),
    (re.compile(rf"[?&#]{_URL_QUERY_WORDS}={_NOT_A_VALUE}[^&#\s]+", re.IGNORECASE),
     "a URL with a secret in its query string"),
    (re.compile(rf"(?<![A-Za-z0-9_.:/-]){_SECRET_WORD}\s*[=:]\s*[\"']?{_NOT_A_VALUE}[^\s\"';]+", re.IGNORECASE),
     "a secret written into text (password=..., Password=...; in a connection string)"),
    (re.compile(rf"(?<![\w-])--?(?:[a-z0-9]+[-_])*{_FLAG_WORD}(?:=|\s+)[\"']?(?![\"'-]){_NOT_A_VALUE}[^\s\"']+",
                re.IGNORECASE), "a secret passed as a command-line flag"),
)
_BEARER = re.compile(r"(?:\bbearer|\bauthorization\s*[:=]\s*(?:token|bearer)?)\s*([A-Za-z0-9._~+/-]{8,}=*)",
                     re.IGNORECASE)
_BASIC = re.compile(r"\bbasic\s+([A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])", re.IGNORECASE)
# Runs a random string is made of; text is cut into such tokens at anything else.
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")


def value_kind(text: str) -> str | None:
    """What kind of secret ``text`` looks like, or None."""
    if not text or REFERENCE_VALUE.match(text):
        return None
    for pattern, kind in PATTERNS:
        if pattern.search(text):
            return kind
    for match in _BEARER.finditer(text):
        if re.search(r"[0-9._~+/=-]", match[1]):
            return "an Authorization bearer token"
    for match in _BASIC.finditer(text):
        if ":" in _decoded(match[1]):
            return "an Authorization Basic header (user:password)"
    for run in _TOKEN.findall(text):
        kind = _random_kind(run)
        if kind:
            return kind
    return None


def _random_kind(run: str) -> str | None:
    """A long random string (a key or token), the whole run or a '/'-separated part of it
    (a URL path: https://hooks.example.com/<token>)."""
    decoded = _decoded(run)
    if decoded.startswith("-----BEGIN"):
        return "a base64-encoded private key" if "PRIVATE KEY" in decoded[:80] else None
    for part in [run, *run.split("/")]:
        if len(part) >= 32 and random_looking(part):
            return "a long random string (a key or token)"
    return None


_PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def random_looking(text: str) -> bool:
    """Mixed-case text that reads as random letters, not as a name. A CamelCase name
    ('MyCompanyProductionClusterEuWest1', '/some/Long/Path') keeps most of its characters in
    lowercase runs of three or more and splits into few, long pieces; random base64 keeps
    about one character in seven in such runs and splits into a piece every two or three
    characters. Hex digests and lowercase names have no capitals and never match. About one
    random 40-character token in a few thousand reads as a name (tests/unit/config/
    test_secret_scan_property.py measures it): a guard for mistakes, not a proof."""
    if not (re.search(r"[a-z]", text) and re.search(r"[A-Z]", text)):
        return False
    in_words = sum(len(run) for run in re.findall(r"[a-z]{3,}", text)) / len(text)
    core = sum(c.isascii() and c.isalnum() for c in text)
    pieces = len(_PIECE.findall(text)) / max(core, 1)
    return in_words < 0.6 and pieces >= 0.3 and _entropy(text) >= 3.0


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _decoded(text: str) -> str:
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return ""


# --- redaction ------------------------------------------------------------------------------

HIDDEN = "<credential-shaped value hidden>"
# Beginnings of key material as an error may quote them: cut to a few dozen characters
# ('ghp_0123456789…', a JSON Web Token's first two parts), no longer matching PATTERNS whole.
_PREFIXES = re.compile(
    r"(?<![A-Za-z0-9])(?:(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{8,}|K10[0-9a-fA-F]{16,}(?:::\S*)?"
    r"|(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{8,}|glpat-[A-Za-z0-9_-]{8,}|xox[abprs]-[A-Za-z0-9-]{8,}"
    r"|AIza[0-9A-Za-z_-]{8,}|[sr]k_live_[0-9A-Za-z]{8,}|hv[sb]\.[A-Za-z0-9_-]{8,}|npm_[A-Za-z0-9]{8,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_.-]*)")


def redact(text: str) -> str:
    """``text`` with every credential-shaped part (``value_kind``'s shapes, and the beginnings
    of well-known tokens an error cut short) replaced by ``HIDDEN``: for error messages, which
    may quote a value, so none can echo one. Placeholders ('password=...') are left alone."""
    if not text or not isinstance(text, str):
        return text

    def hide(match: re.Match[str]) -> str:
        tail = re.split(r"[=:\s]", match[0], maxsplit=1)[-1]
        return HIDDEN if re.search(r"[A-Za-z0-9]", tail) else match[0]

    for pattern, _ in PATTERNS:
        text = pattern.sub(hide, text)
    text = _PREFIXES.sub(HIDDEN, text)
    for header in (_BEARER, _BASIC):
        text = header.sub(lambda m: m[0] if HIDDEN in m[0] or value_kind(m[0]) is None else HIDDEN, text)
    return _TOKEN.sub(lambda m: HIDDEN if _random_kind(m[0]) else m[0], text)
