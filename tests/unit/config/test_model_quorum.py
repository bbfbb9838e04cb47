"""The etcd quorum guard of the servers section (k3s_infra/config/model.py) over the schema's
whole range: etcd needs a majority, so an even member count tolerates no more failures than
one less (https://etcd.io/docs/v3.5/faq/#why-an-odd-number-of-cluster-members). The maximum
is read from environments/schema.json.
"""

from __future__ import annotations

import json

import pytest

from k3s_infra.config import ConfigError, validate
from tests.support.oracle_helpers import REPO


def _schema_max_servers() -> int:
    schema = json.loads((REPO / "environments" / "schema.json").read_text())
    return schema["$defs"]["Servers"]["properties"]["count"]["maximum"]


@pytest.mark.parametrize("count", range(2, _schema_max_servers() + 1, 2))
def test_even_server_counts_are_refused_up_to_the_schema_maximum(env_document, count):
    """etcd needs a majority: an even member count tolerates no more failures than one less
    (https://etcd.io/docs/v3.5/faq/#why-an-odd-number-of-cluster-members)."""
    document = env_document("prod")
    document["servers"]["count"] = count
    with pytest.raises(ConfigError) as caught:
        validate(document, "prod.yaml")
    assert "servers.count" in str(caught.value) and "odd" in str(caught.value)


@pytest.mark.parametrize("count", range(1, _schema_max_servers() + 1, 2))
def test_odd_server_counts_are_accepted(env_document, count):
    document = env_document("prod")
    document["servers"]["count"] = count
    assert validate(document, "prod.yaml").servers.count == count
