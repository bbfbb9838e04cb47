"""The YAML emitter (k3s_infra/config/yaml_text.py): whatever it writes, PyYAML reads back as
the same data; block style, with scripts as literal blocks.
"""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from k3s_infra.config.yaml_text import dump

tricky = st.sampled_from([
    "", " ", "yes", "No", "on", "null", "~", "true", "1", "0x1F", "1e3", "1_000", "2026-11-26", "12:30:00",
    "- a", "a: b", "a #b", "#x", "a:", ":a", "@x", "`x", "!x", "&x", "*x", "|", ">", "%x", "{a}", "[a]", "'q'",
    '"q"', "a\nb", "a\nb\n", "a\nb\n\n", "\nb", " lead\nx", "trail \nx", "x\ntrail ", "tab\tin", "\ttab",
    "é ü", "line\r\nwin", "${AWS::StackName}/Security", "arn:aws:s3:::b/*", "Fn::GetAtt", "0600", ".5", "-1",
    "a\x00b", "\u2028", "x" * 300,
])

keys = st.one_of(st.text(max_size=10), tricky)

leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40), tricky)

data = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(keys, inner, max_size=4)), max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(data)
def test_round_trip_through_pyyaml(value):
    assert yaml.safe_load(dump(value)) == value


def test_block_style_and_literal_scripts():
    text = dump({"Resources": {"A": {"Type": "AWS::S3::Bucket", "Tags": [{"Key": "k", "Value": "v"}],
                                     "Script": "#!/bin/bash\necho hi\n", "Empty": [], "Port": 6443}}})
    assert text == (
        "Resources:\n"
        "  A:\n"
        "    Type: AWS::S3::Bucket\n"
        "    Tags:\n"
        "      - Key: k\n"
        "        Value: v\n"
        "    Script: |\n"
        "      #!/bin/bash\n"
        "      echo hi\n"
        "    Empty: []\n"
        "    Port: 6443\n")
