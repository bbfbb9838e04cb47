"""User tags (deploy.tags, put on every resource and propagated to instances) cannot take a key
something else acts on (k3s_infra/config/rules.py ``user_tag``):
- ``aws:`` in any case, for keys and values: "Do not use aws:, AWS:, or any upper or lowercase
  combination of such as a prefix for either keys or values as it is reserved for AWS use"
  (Amazon ECS API Reference, Tag; the same text in other services' Tag references).
- ``k8s.io/cluster-autoscaler/...``: the autoscaler's ASG auto-discovery scales every group
  tagged k8s.io/cluster-autoscaler/enabled and k8s.io/cluster-autoscaler/<cluster>
  (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md, "Auto-Discovery
  Setup"); on the server groups that hands etcd members to its scale-in.
- ``kubernetes.io/`` (kubernetes.io/cluster/<cluster> is the cloud controller's ownership tag,
  cloud-provider-aws pkg/providers/v1/tags.go), the node termination handler's managed tag, and
  k3s-infra's own prefix.
The last test pins the rule to what the model really sets: every tag key k3s-infra puts on a
resource itself is refused as a user tag.
"""

from __future__ import annotations

import pytest

from k3s_infra.config import ConfigError, rules, validate
from tests.support.config_errors import paths, refused

REFUSED_KEYS = [
    "k8s.io/cluster-autoscaler/k3s-dev",   # the brief's case: owned -> etcd servers scaled in
    "k8s.io/cluster-autoscaler/enabled",
    "K8S.IO/Cluster-Autoscaler/node-template/label/x",
    "kubernetes.io/cluster/k3s-dev",
    "Kubernetes.IO/role/elb",
    "aws:cloudformation:stack-name",
    "AWS:foo", "aWs:bar",
    "k3s-infra:cluster", "K3S-Infra:role", "k3s-infra", "k3s-infra/anything",
    "aws-node-termination-handler/managed",
    "Name",
]


@pytest.mark.parametrize("key", REFUSED_KEYS)
def test_reserved_tag_keys_are_refused_naming_the_tag(dev, key):
    dev["deploy"]["tags"][key] = "owned"
    error = refused(dev)
    (path,) = paths(error)
    assert path.startswith("deploy.tags"), error.problems
    assert "reserved" in str(error) or "k3s-infra" in str(error)


@pytest.mark.parametrize("value", ["aws:internal", "AWS:x", "Aws:"])
def test_an_aws_prefixed_tag_value_is_refused(dev, value):
    dev["deploy"]["tags"]["team"] = value
    assert paths(refused(dev)) == ["deploy.tags.team"]


@pytest.mark.parametrize("key", ["team", "k8s.io-owner", "cluster-autoscaler", "example.com/kubernetes.io",
                                 "k3s-infrastructure-owner", "awsaccount", "my:aws:thing", "name"])
def test_look_alikes_that_reserve_nothing_are_accepted(dev, key):
    dev["deploy"]["tags"][key] = "x"
    assert validate(dev, "dev.yaml").deploy.tags[key] == "x"


def test_config_tag_prefix_is_the_models():
    """config may not import the model; its copy of the project's tag prefix must agree."""
    from k3s_infra.config import catalog
    from k3s_infra.model import naming

    assert rules.TAG_PREFIX == naming.TAG_PREFIX
    assert naming.AUTOSCALER_TAG_PREFIX.lower() in rules.RESERVED_TAG_PREFIXES
    assert any(catalog.NTH_MANAGED_TAG.startswith(p) for p in rules.RESERVED_TAG_PREFIXES)


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_every_tag_key_k3s_infra_sets_itself_is_refused_as_a_user_tag(env_document, name):
    from k3s_infra.config import load_environment
    from k3s_infra.model import naming, roles

    env = load_environment(name)
    own: set[str] = set(naming.cluster_tags(env)) - set(env.deploy.tags)
    own |= set(naming.ccm_discovery_tags(env)) | set(naming.subnet_discovery_tags(env, public=True))
    own |= set(naming.subnet_discovery_tags(env, public=False)) | {naming.READY_TAG}
    for pool in env.agent_pools:
        own |= set(naming.autoscaler_tags(env, pool)) | set(roles.AGENT.tags(env, pool))
    own -= set(env.deploy.tags)
    assert own  # the model sets tags of its own
    for key in sorted(own):
        document = env_document(name)
        document["deploy"]["tags"][key] = "x"
        with pytest.raises(ConfigError):
            validate(document, f"{name}.yaml")
