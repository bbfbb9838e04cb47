"""Size limits of an environment file (config/yaml_load.py: MAX_BYTES, MAX_DEPTH, MAX_NODES) and
name shapes (config/types.py) at their boundaries: the largest input that passes and the
smallest that is refused, as tables. DNS names and labels (253/63), stack names (80) and SSM
names (1,011 with the ARN, 15 levels) are pinned in test_rules.py, test_stack_name_limit.py and
test_ssm_and_url_limits.py.

Sources: S3 bucket names are 3-63 characters (Amazon S3 User Guide, "General purpose bucket
naming rules": https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html);
a tag key 1-128 characters and a value 0-256 (Tagging AWS resources, "Tag naming limits":
https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html). The YAML budgets are
k3s-infra's own (an environment file is a few KiB, a few hundred values, a few levels)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from k3s_infra.config import types, validate, yaml_load
from k3s_infra.config.yaml_load import YamlRefusal

MIB = yaml_load.MAX_BYTES


# (row, the file's bytes, refused?): the budget counts bytes, a UTF-8 BOM included.
FILE_SIZES = [
    ("exactly 1 MiB", b"#" + b"x" * (MIB - 1), False),
    ("1 MiB and one byte", b"#" + b"x" * MIB, True),
    ("1 MiB of two-byte characters", b"#" + "é".encode() * ((MIB - 1) // 2) + b"x", False),
    ("a BOM, then 1 MiB less the BOM", b"\xef\xbb\xbf#" + b"x" * (MIB - 4), False),
    ("a BOM, then 1 MiB", b"\xef\xbb\xbf#" + b"x" * (MIB - 1), True),
]


@pytest.mark.parametrize("row, data, refused", FILE_SIZES, ids=[f[0] for f in FILE_SIZES])
def test_a_file_of_at_most_one_mebibyte_is_read(tmp_path, row, data, refused):
    path = tmp_path / "env.yaml"
    path.write_bytes(data)
    if refused:
        with pytest.raises(YamlRefusal, match="larger than 1024 KiB"):
            yaml_load.read_text(path)
    else:
        assert len(data) <= MIB and yaml_load.read_text(path).endswith("x")


def _nested(levels: int, flow: str = "[]") -> str:
    return flow[0] * levels + ("x" if flow == "[]" else "") + flow[1] * levels


def _mapping(levels: int) -> str:
    return "{a: " * levels + "x" + "}" * levels


def _alias(anchor_depth: int, used_at: int) -> str:
    """An anchored value ``anchor_depth`` levels deep, used again ``used_at`` levels further in."""
    return f"[&a {_nested(anchor_depth)}, {'[' * used_at}*a{']' * used_at}]"


# (row, YAML text, refused?): the root is level 0, so a value 32 containers in is at level 32.
DEPTHS = [
    ("32 nested sequences", _nested(32), False),
    ("33 nested sequences", _nested(33), True),
    ("32 nested mappings", _mapping(32), False),
    ("33 nested mappings", _mapping(33), True),
    # An alias counts as the value it copies: 1 + 20 where it is defined, 1 + 11 + 20 where used.
    ("an alias that reaches level 32", _alias(20, 11), False),
    ("an alias that reaches level 33", _alias(20, 12), True),
]


@pytest.mark.parametrize("row, text, refused", DEPTHS, ids=[d[0] for d in DEPTHS])
def test_nesting_of_at_most_32_levels_is_read(row, text, refused):
    if refused:
        with pytest.raises(YamlRefusal, match="nesting is deeper than 32 levels"):
            yaml_load.load(text)
    else:
        assert yaml_load.load(text) is not None


def _values(total: int) -> str:
    """A sequence that expands to ``total`` values (the root counted) through three alias levels:
    a = 1 + 9 values, b = 1 + 10 a's = 101, c = 1 + 10 b's = 1,011; 98 c's, then plain values."""
    a = "&a [" + ", ".join("1" * 9) + "]"
    b = "&b [" + ", ".join([a] + ["*a"] * 9) + "]"
    c = "&c [" + ", ".join([b] + ["*b"] * 9) + "]"
    rest = total - 1 - 98 * 1011
    assert rest >= 0
    return "[" + ", ".join([c] + ["*c"] * 97 + ["0"] * rest) + "]"


VALUES = [("100,000 values after alias expansion", _values(yaml_load.MAX_NODES), False),
          ("100,001 values", _values(yaml_load.MAX_NODES + 1), True)]


@pytest.mark.parametrize("row, text, refused", VALUES, ids=[v[0] for v in VALUES])
def test_at_most_100000_values_after_alias_expansion_are_read(row, text, refused):
    if refused:
        with pytest.raises(YamlRefusal, match="expands to more than 100,000 values"):
            yaml_load.load(text)
    else:
        assert len(yaml_load.load(text)) == 1 + 97 + 921


# --- name shapes: (row, field shape, value, accepted?) -------------------------------------------

NAMES = [
    ("pool/environment name of 2", types.Name, "ab", True),
    ("name of 1", types.Name, "a", False),
    ("name of 24", types.Name, "a" * 23 + "b", True),
    ("name of 25", types.Name, "a" * 24 + "b", False),
    ("name ending in '-'", types.Name, "ab-", False),
    ("bucket name of 3", types.BucketName, "abc", True),
    ("bucket name of 2", types.BucketName, "ab", False),
    ("bucket name of 63", types.BucketName, "a" * 63, True),
    ("bucket name of 64", types.BucketName, "a" * 64, False),
    ("bucket name like an IP address", types.BucketName, "192.168.5.4", False),
    ("tag key of 128", types.TagKey, "k" * 128, True),
    ("tag key of 129", types.TagKey, "k" * 129, False),
    ("empty tag key", types.TagKey, "", False),
    ("tag value of 256", types.TagValue, "v" * 256, True),
    ("tag value of 257", types.TagValue, "v" * 257, False),
    ("empty tag value", types.TagValue, "", True),
]


@pytest.mark.parametrize("row, shape, value, accepted", NAMES, ids=[n[0] for n in NAMES])
def test_names_at_their_length_limits(row, shape, value, accepted):
    adapter = TypeAdapter(shape)
    if accepted:
        assert adapter.validate_python(value) == value
    else:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


@pytest.mark.parametrize("count, accepted", [(40, True), (41, False)])
def test_at_most_forty_user_tags(env_document, count, accepted):
    # The config's cap (config/model.py Deploy.tags); each render also counts a group's tags against
    # the 50 AWS allows (model/limits.py, test_limits.py).
    document = env_document("dev")
    document.setdefault("deploy", {})["tags"] = {f"team-{n}": "x" for n in range(count)}
    if accepted:
        assert len(validate(document, "dev.yaml").deploy.tags) == count
    else:
        with pytest.raises(Exception, match="deploy.tags"):
            validate(document, "dev.yaml")
