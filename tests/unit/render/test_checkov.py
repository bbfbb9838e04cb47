"""checkov on rendered templates (k3s_infra/render/checkov.py): the scan is live, an unencrypted
bucket without a public access block fails. Zero failed checks on every environment is
tests/properties/test_checkov_clean.py.
"""

from __future__ import annotations

from k3s_infra.render import checkov


def test_checkov_finds_a_world_readable_bucket(tmp_path, executable):
    """The scan is live: an unencrypted bucket without a public access block fails."""
    (tmp_path / "bad.yaml").write_text("Resources:\n  Open:\n    Type: AWS::S3::Bucket\n")
    rules = {f.rule for f in checkov.scan(tmp_path, executable)}
    assert "CKV_AWS_53" in rules or "CKV_AWS_18" in rules
