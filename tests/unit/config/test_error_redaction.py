"""No error about an environment file echoes a credential (k3s_infra/config/errors.py): every
problem's file name, field path and message is cleared of anything shaped like one
(secret_shapes: the shapes the secret scanner refuses), whichever check wrote it and however it
quoted the value: a pattern mismatch, a type error, a CIDR parser, a duplicate YAML key, a
parent file name, a cron time zone cut to 40 characters.

Values are the formats' documented examples: AWS's example access key ID and secret key (IAM
User Guide, "Manage access keys"), the JSON Web Token of RFC 7519's section 3.1 shape (the
jwt.io example), GitHub's ghp_ token prefix (GitHub Docs, "About authentication to GitHub":
"ghp_ for personal access tokens"), the K3s token format, Slack's xoxb- bot token prefix
(api.slack.com/authentication/token-types).
"""

from __future__ import annotations

import pytest
import yaml

from k3s_infra.config import ConfigError, load_environment, validate
from k3s_infra.config.secret_shapes import HIDDEN, redact

GITHUB = "ghp_R2d2C3po4Bb8Yoda5Luke6Leia7Han8Chewb"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5"
       "MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
SLACK = "xoxb-1234567890123-abcdefABCDEF"
# K10<sha256 of the cluster CA>::<user>:<password> (docs.k3s.io/cli/token, "Token Format")
K3S_TOKEN = "K10" + "5b2f7d3e9a41c08e6d1f3a7b9c2e4d6f8a0b1c3d5e7f9a2b4c6d8e0f1a3b5c7d" + "::server:s3cr3tPa55w0rd"


def _leaked(text: str, secret: str) -> bool:
    """Any 12 consecutive characters of ``secret`` in ``text``."""
    return any(secret[i:i + 12] in text for i in range(len(secret) - 11))


def _assert_hidden(error: ConfigError, secret: str, path: str) -> None:
    shown = "\n".join([str(error), error.source, *(f"{p} {m}" for p, m in error.problems)])
    assert not _leaked(shown, secret), shown
    assert path in [p for p, _ in error.problems] or path in str(error), str(error)


def _set(document: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        document = document.setdefault(key, {})
    document[last] = value


@pytest.mark.parametrize("field, value, secret", [
    # the adversarial pass's examples
    ("servers.instance_type", GITHUB, GITHUB),
    ("servers.count", GITHUB, GITHUB),
    ("region", ACCESS_KEY, ACCESS_KEY),
    ("k3s.cluster_cidr", JWT, JWT),
    ("name", GITHUB, GITHUB),
    # own variants: a literal's type error, a CIDR list, a time zone the cron check cuts short
    ("k3s.flannel_backend", SLACK, SLACK),
    ("api.allowed_cidrs", [SECRET_KEY], SECRET_KEY),
    ("k3s.etcd_snapshots.schedule", f"TZ={JWT} 0 */6 * * *", JWT),
    ("k3s.service_cidr", f"10.43.0.0/16 {ACCESS_KEY}", ACCESS_KEY),
    ("k3s.cluster_dns", K3S_TOKEN, K3S_TOKEN),
    ("nodes.ami_id.x86_64", f"ami-{SECRET_KEY}", SECRET_KEY),
])
def test_a_credential_in_a_field_is_not_quoted(dev, field, value, secret):
    _set(dev, field, value)
    with pytest.raises(ConfigError) as caught:
        validate(dev, "env.yaml")
    _assert_hidden(caught.value, secret, field.split(".")[0])


def test_a_rule_quoting_a_short_piece_of_a_credential_shows_none_of_it(dev):
    # The cron rule quotes a step cut to 20 characters: too short to look like a key by itself.
    dev.setdefault("k3s", {})["etcd_snapshots"] = {"schedule": f"0 0 * * {SECRET_KEY}"}
    with pytest.raises(ConfigError) as caught:
        validate(dev, "env.yaml")
    assert caught.value.problems == [("k3s.etcd_snapshots.schedule",
                                      f"the day of week field: step '{HIDDEN}' must be a number from 1 to 6")]


def test_a_credential_as_an_unknown_key_is_not_quoted(dev):
    dev["servers"] = {GITHUB: 3}
    with pytest.raises(ConfigError) as caught:
        validate(dev, "env.yaml")
    _assert_hidden(caught.value, GITHUB, "servers")
    assert caught.value.problems == [(f"servers.{HIDDEN}", "unknown key")]


def _write(tmp_path, text: str):
    path = tmp_path / "env.yaml"
    path.write_text(text)
    return path


def test_a_duplicate_yaml_key_is_not_quoted(tmp_path, dev):
    text = yaml.safe_dump(dev) + f"deploy:\n  tags:\n    {GITHUB}: a\n    {GITHUB}: b\n"
    with pytest.raises(ConfigError) as caught:
        load_environment(path=_write(tmp_path, text.replace("deploy: {}\n", "")))
    _assert_hidden(caught.value, GITHUB, "duplicate key")


def test_a_parent_file_name_is_not_quoted(tmp_path, dev):
    with pytest.raises(ConfigError) as caught:
        load_environment(path=_write(tmp_path, yaml.safe_dump({**dev, "extends": f"{GITHUB}.yaml"})))
    _assert_hidden(caught.value, GITHUB, "extends")
    assert "not found" in str(caught.value)


def test_an_unreadable_tagged_scalar_is_not_quoted(tmp_path, dev):
    text = yaml.safe_dump({k: v for k, v in dev.items() if k != "servers"}) + f"servers:\n  count: !!int {GITHUB}\n"
    with pytest.raises(ConfigError) as caught:
        load_environment(path=_write(tmp_path, text))
    _assert_hidden(caught.value, GITHUB, "servers.count")


def test_the_cli_exits_2_without_the_credential(tmp_path, dev, capsys):
    from k3s_infra.cli import main

    dev["servers"]["instance_type"] = GITHUB
    assert main(["render", "--config", str(_write(tmp_path, yaml.safe_dump(dev))),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "servers.instance_type" in err and HIDDEN in err and not _leaked(err, GITHUB)
    assert "Traceback" not in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, kept", [
    # what a message says about a kind of secret stays readable
    ("looks like a secret written into text (password=..., Password=...; in a connection string)", True),
    ("the value looks like a secret passed as a command-line flag", True),
    ("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64 names an arm64 image", True),
    ("k3s.cluster_cidr: 10.42.0.0/16 overlaps network.vpc_cidr 10.0.0.0/16", True),
    # cut short by a message, still hidden
    (f"'{GITHUB[:20]}…' is not valid", False),
    (f"time zone {JWT[:40]!r} is not an IANA zone", False),
    (f"{ACCESS_KEY[:14]}…", False),
])
def test_redact_hides_shapes_and_keeps_descriptions(text, kept):
    assert (redact(text) == text) is kept, redact(text)
