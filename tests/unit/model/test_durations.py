"""The time-to-ready model's numbers (k3s_infra/model/durations.py): every resource type the
stacks render has its own row (none falls back to the default unnoticed), every number says
where it comes from, and the late-bound facts name stacks that exist."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from k3s_infra.config import load_environment
from k3s_infra.model import durations as d
from k3s_infra.model import naming
from k3s_infra.render import build_templates
from tests.support.oracle_helpers import ALL_ADDONS

ALL = [*d.RESOURCES.values(), *d.BOOT.values(), d.NESTED_STACK, d.UNLISTED, d.ARTIFACT_MEGABYTES,
       d.DOWNLOAD_MEGABYTES_PER_SECOND, d.NLB_TARGET_REGISTRATION]


@pytest.fixture(scope="module")
def rendered_types(rendered) -> set[str]:
    templates = [t for name in ("dev", "prod", "staging") for t in rendered[name].templates.values()]
    templates += [t.to_dict() for t in build_templates(load_environment(path=ALL_ADDONS)).values()]
    return {r["Type"] for t in templates for r in t["Resources"].values()}


def test_every_rendered_resource_type_has_a_duration(rendered_types):
    missing = rendered_types - set(d.RESOURCES) - {"AWS::CloudFormation::Stack"}
    assert not missing, f"add a row with its source to model/durations.py RESOURCES: {sorted(missing)}"


@pytest.mark.parametrize("duration", ALL, ids=lambda x: x.source[:40])
def test_every_number_says_where_it_comes_from(duration):
    assert duration.seconds > 0 and len(duration.source) > 20
    if not duration.estimate:  # stated: a primary source is named
        assert any(mark in duration.source for mark in (".java", ".sh", "aws-cloudformation", "docs.aws"))


def test_the_slow_ones_name_their_evidence():
    for kind in ("AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::CloudFront::Distribution",
                 "AWS::IAM::InstanceProfile", "AWS::KMS::Key", "AWS::EC2::NatGateway"):
        assert "/" in d.RESOURCES[kind].source or "#" in d.RESOURCES[kind].source, kind


def test_late_bound_facts_name_stacks_of_the_rendering(rendered):
    stacks = set(rendered["prod"].templates) - {naming.ROOT}
    for pattern, names in d.LATE_BOUND.items():
        assert any(fnmatchcase(s, pattern) for s in stacks), pattern
        assert set(names) <= stacks, names
