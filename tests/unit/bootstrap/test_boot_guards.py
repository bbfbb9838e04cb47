"""Guards of the node script at their boundaries, run for real (bash, outside the boot sandbox):
the secure-token check a joiner makes before it trusts a token (boot.sh secure_token) and the
newest-snapshot choice a healing server makes (boot_lib.sh newest_snapshot). Each table is run
by one bash process (tests/support/boot_functions.py), a row each.

Sources: K3s reads a token file whole, trimmed (k3s-io/k3s pkg/token/read.go ReadFile:
strings.TrimSpace), and parses it in pkg/clientaccess/token.go: tokenPrefix = "K10",
caHashLength = sha256.Size * 2 (64), hashCA hex.EncodeToString (lower case), parseToken ("K10",
then the hash before the first "::", which must be 64 characters or empty, "invalid token CA hash
length"; then user:password or a bootstrap token). An empty hash is accepted by K3s and pins no
CA: only a 64-digit lowercase hash at the very start pins the cluster's CA
(https://docs.k3s.io/cli/token, "Token Format")."""

from __future__ import annotations

import json
import sys

import pytest

from tests.support.boot_functions import bash, function

HASH = "0123456789abcdef" * 4  # 64 lowercase hex digits
PASSWORD = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"


# (row, the token file's bytes, a joiner may start with it)
TOKENS = [
    ("server token as K3s writes it", f"K10{HASH}::server:{PASSWORD}\n", True),
    ("no trailing newline", f"K10{HASH}::server:{PASSWORD}", True),
    ("CRLF line end", f"K10{HASH}::server:{PASSWORD}\r\n", True),
    ("a bootstrap token as credentials", f"K10{HASH}::abcdef.0123456789abcdef\n", True),
    ("more lines after the secure one (K3s still pins the CA: the hash is parsed first)",
     f"K10{HASH}::server:{PASSWORD}\nsecond line\n", True),
    ("hash one digit short (63)", f"K10{HASH[:-1]}::server:{PASSWORD}\n", False),
    ("hash one digit long (65)", f"K10{HASH}0::server:{PASSWORD}\n", False),
    ("upper-case hash (K3s compares lower-case hex)", f"K10{HASH.upper()}::server:{PASSWORD}\n", False),
    ("a non-hex digit in the hash", f"K10{HASH[:-1]}g::server:{PASSWORD}\n", False),
    ("empty hash: K3s accepts it and pins nothing", f"K10::server:{PASSWORD}\n", False),
    ("no credentials", f"K10{HASH}::\n", False),
    ("one colon after the hash", f"K10{HASH}:server:{PASSWORD}\n", False),
    ("lower-case prefix", f"k10{HASH}::server:{PASSWORD}\n", False),
    ("short token (password only)", f"{PASSWORD}\n", False),
    ("empty file", "", False),
    # K3s reads the whole file: a short token first makes the whole a short token, whatever follows.
    ("a short token, then a secure line", f"{PASSWORD}\nK10{HASH}::server:{PASSWORD}\n", False),
    # Stricter than K3s (which trims): never what the first server publishes.
    ("a leading blank line", f"\nK10{HASH}::server:{PASSWORD}\n", False),
    ("a leading space", f" K10{HASH}::server:{PASSWORD}\n", False),
]


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_a_joiner_takes_exactly_the_tokens_that_pin_the_cluster_ca(tmp_path, locale):
    for n, (_, content, _) in enumerate(TOKENS):
        (tmp_path / f"token-{n}").write_bytes(content.encode())
    program = function("secure_token") + """
for n in $(seq 0 $(($1 - 1))); do
  if secure_token "/token-$n"; then echo "$n yes"; else echo "$n no"; fi
done
"""
    verdicts = bash(program, str(len(TOKENS)), env={"root": str(tmp_path), "LC_ALL": locale})
    wrong = [row for (row, _, accepted), verdict in zip(TOKENS, verdicts) if verdict.endswith("yes") != accepted]
    assert len(verdicts) == len(TOKENS) and wrong == []


# --- the newest snapshot -------------------------------------------------------------------------

FOLDER = "etcd/dev"
# The AWS CLI as nodes run it: JSON output, the --query (JMESPath) applied once to the whole
# listing; S3 lists keys in UTF-8 binary order and filters by --prefix
# (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html). The CLI prints
# LastModified in ISO 8601 with its offset.
AWS_CLI = """
import json, sys, jmespath
args, listing = sys.argv[1:], json.load(open(sys.argv[-1]))
args = args[:-1]
prefix, query = args[args.index("--prefix") + 1], args[args.index("--query") + 1]
contents = sorted((o for o in listing if o["Key"].startswith(prefix)), key=lambda o: o["Key"].encode())
print(json.dumps(jmespath.search(query, {"Contents": contents} if contents else {}), indent=4))
"""

# (row, objects as (key, LastModified), the prefix asked for, the snapshot chosen or None)
SNAPSHOTS = [
    ("key order and time order disagree", [
        (f"{FOLDER}/etcd-snapshot-i-0aaa-1700000300", "2024-01-01T00:00:00+00:00"),
        (f"{FOLDER}/etcd-snapshot-i-0bbb-1700000100", "2025-06-01T00:00:00+00:00"),
        (f"{FOLDER}/etcd-snapshot-i-0ccc-1700000200", "2024-06-01T00:00:00+00:00")], "",
     "etcd-snapshot-i-0bbb-1700000100"),
    ("one second apart across a year's end", [
        (f"{FOLDER}/etcd-snapshot-i-0bbb-1", "2024-12-31T23:59:59+00:00"),
        (f"{FOLDER}/etcd-snapshot-i-0aaa-2", "2025-01-01T00:00:00+00:00")], "", "etcd-snapshot-i-0aaa-2"),
    ("its metadata object is newer than any snapshot", [
        (f"{FOLDER}/etcd-snapshot-i-0aaa-1", "2025-01-01T00:00:00+00:00"),
        (f"{FOLDER}/.metadata/etcd-snapshot-i-0aaa-1", "2025-01-01T00:00:01+00:00")], "", "etcd-snapshot-i-0aaa-1"),
    ("only metadata", [(f"{FOLDER}/.metadata/etcd-snapshot-i-0aaa-1", "2025-01-01T00:00:01+00:00")], "", None),
    ("nothing at all", [], "", None),
    ("the same second: the last in key order", [
        (f"{FOLDER}/etcd-snapshot-i-0bbb-1", "2025-01-01T00:00:00+00:00"),
        (f"{FOLDER}/etcd-snapshot-i-0aaa-1", "2025-01-01T00:00:00+00:00")], "", "etcd-snapshot-i-0bbb-1"),
    ("a newer snapshot of another prefix is not this one's", [
        (f"{FOLDER}/etcd-snapshot-i-0aaa-1", "2025-01-01T00:00:00+00:00"),
        (f"{FOLDER}/on-demand-i-0aaa-2", "2025-02-01T00:00:00+00:00")], "etcd-snapshot-", "etcd-snapshot-i-0aaa-1"),
    ("another environment's folder", [
        (f"{FOLDER}/etcd-snapshot-i-0aaa-1", "2025-01-01T00:00:00+00:00"),
        ("etcd/dev2/etcd-snapshot-i-0bbb-9", "2026-01-01T00:00:00+00:00")], "", "etcd-snapshot-i-0aaa-1"),
]


def test_the_newest_snapshot_is_the_newest_by_time_whatever_the_key_order(tmp_path):
    for n, (_, objects, _, _) in enumerate(SNAPSHOTS):
        (tmp_path / f"listing-{n}.json").write_text(json.dumps([{"Key": k, "LastModified": t} for k, t in objects]))
    (tmp_path / "aws.py").write_text(AWS_CLI)
    program = function("newest_snapshot") + f"""
retry() {{ shift; "$@"; }}  # one attempt: the listing is what is under test
aws() {{ {sys.executable} "$work/aws.py" "$@" "$work/listing-$row.json"; }}
row=0
for prefix in "$@"; do
  echo "$row:$(newest_snapshot "${{prefix#-}}")"
  row=$((row + 1))
done
"""
    chosen = bash(program, *("-" + prefix for _, _, prefix, _ in SNAPSHOTS),
                  env={"work": str(tmp_path), "SNAPSHOT_BUCKET": "snapshots", "SNAPSHOT_FOLDER": FOLDER,
                       "FETCH_ATTEMPTS": "1", "region": "eu-west-1"})
    expected = [f"{n}:{name or ''}" for n, (_, _, _, name) in enumerate(SNAPSHOTS)]
    assert chosen == expected, [row for row, got, want in zip(SNAPSHOTS, chosen, expected) if got != want]
