"""The server bundle (k3s_infra/bootstrap/bundle.py): what a server's boot needs beyond its
user data, in an SSM parameter its user data pins by SHA-256.

Limits it must respect: EC2 user data at most 16 KB raw
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html, guarded
in test_user_data_size.py); an SSM parameter value at most 8 KB in the Advanced tier
(https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re

import pytest

from k3s_infra import bootstrap
from k3s_infra.bootstrap import bundle
from k3s_infra.config import available_environments, load_environment
from k3s_infra.model import limits, roles
from tests.support.oracle_helpers import ALL_ADDONS, bundle_files, node_role, plain_document, written_files

ENVIRONMENTS = [load_environment(name) for name in available_environments()] + [load_environment(path=ALL_ADDONS)]
SSM_ADVANCED_VALUE_BYTES = 8 * 1024


def _functions(text: str) -> set[str]:
    return set(re.findall(r"^([a-z_]+)\(\) \{", text, re.M))


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda e: e.name)
def test_each_server_bundle_fits_its_ssm_parameters_and_its_digest_is_pinned(env):
    """Each part within an Advanced parameter's 8 KB; joined in the order boot.env names the
    parameters they are the archive whose SHA-256 the user data pins."""
    for role in (roles.SERVER_INIT, roles.SERVER):
        parts = bundle.chunks(env, role)
        assert all(len(part) <= SSM_ADVANCED_VALUE_BYTES for part in parts), role
        settings = dict(line.split("=", 1) for line in bootstrap.files(env, role)[0]["content"].splitlines())
        names = settings["BUNDLE_PARAMETERS"].strip("'").split()
        assert len(names) == len(parts) and names[0].endswith(f"/node-bundle/{role.name}")
        joined = "".join(parts)
        assert settings["BUNDLE_SHA256"] == f"'{hashlib.sha256(base64.b64decode(joined)).hexdigest()}'"


def test_the_same_environment_gives_the_same_bundle_bytes():
    """Templates are content-addressed: a render that changed nothing must not roll a server."""
    env = ENVIRONMENTS[0]
    first = bundle.value(env, roles.SERVER_INIT)
    bundle._archive.cache_clear()
    assert bundle.value(env, roles.SERVER_INIT) == first


def test_the_first_server_alone_carries_the_first_server_logic_every_server_the_watch(rendered):
    """Functions the boot calls must be in what the node has: the core for everyone, the
    bundle's parts for servers (decide_mode and publish only on the first server)."""
    core = _functions(bootstrap.boot_script())
    assert {"main", "signal", "retry", "install_bundle", "mark_ready"} <= core
    assert not {"decide_mode", "publish", "watch", "replacement_is_safe"} & core
    templates = rendered["prod"].templates
    for stack_id, template in templates.items():
        if not any(r["Type"] == "AWS::EC2::LaunchTemplate" for r in template.get("Resources", {}).values()):
            continue
        extra = set().union(*(_functions(t) for p, t in bundle_files(template).items() if p.endswith(".sh")))
        role = node_role(template)
        if role == "agent":
            assert bundle_files(template) == {} and "BUNDLE_PARAMETERS" not in written_files(template)[bootstrap.BOOT_ENV]
        elif role == "server":
            assert {"watch", "replacement_is_safe", "before_termination"} <= extra and "decide_mode" not in extra
        else:
            assert {"watch", "decide_mode", "request_snapshot", "publish", "restore_snapshot"} <= extra


def test_manifests_left_the_user_data_for_the_bundle(rendered):
    templates = rendered["prod"].templates
    for stack_id in ("ServerInit", "Servers"):
        assert not [p for p in written_files(templates[stack_id]) if p.startswith(bootstrap.MANIFESTS_DIR)]
        assert bootstrap.CCM_MANIFEST in bundle_files(templates[stack_id])


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, path)
    else:
        yield path, value


def test_addon_values_are_in_no_template_only_in_the_object_the_servers_read(everything):
    """Issue 24: the user's add-on values are in neither user data nor any template (nor the
    bundle's SSM parameters, whose values are in the templates): only in the add-ons object the
    deployer uploads, which the bundle pins by key and SHA-256 and only server roles may read."""
    env, rendering, _, templates = everything
    document = plain_document(ALL_ADDONS)
    given = [(path, str(value)) for name, spec in document["addons"].items() if isinstance(spec, dict)
             for path, value in _leaves(spec.get("values", {})) if len(str(value)) >= 6]
    assert given, "the all-add-ons file sets values"
    charts = bundle.addons_object(env)
    everything_rendered = "\n".join(stack.body for stack in rendering.stacks) + "\n".join(
        "\n".join(bundle_files(t).values()) for t in templates.values())
    for path, value in given:
        assert value in charts.body, path
        assert value not in everything_rendered, path
    assert charts.key.endswith(f"{hashlib.sha256(charts.body.encode()).hexdigest()}.yaml")
    for stack_id in ("ServerInit", "Servers"):
        settings = bundle_files(templates[stack_id])[bundle.BUNDLE_ENV]
        assert f"ADDONS_SHA256='{hashlib.sha256(charts.body.encode()).hexdigest()}'" in settings.splitlines() or \
            f"ADDONS_SHA256={hashlib.sha256(charts.body.encode()).hexdigest()}" in settings.splitlines()
        assert f"ADDONS_KEY" in settings and charts.key in settings and charts.bucket in settings


def test_a_bundle_beyond_its_ssm_parameters_is_refused_at_render(monkeypatch):
    """Incompressible manifests past three parameters of 8 KB (the add-ons are no longer in the
    bundle: the project's own manifests grow here): a clear limit error naming the
    add-ons, not a failed deploy."""
    env = load_environment(path=ALL_ADDONS)
    noise = base64.b64encode(random.Random(21).randbytes(20000)).decode()
    monkeypatch.setattr(bundle.pod_identity, "manifest", lambda _env: f"# {noise}\n")
    bundle._archive.cache_clear()
    with pytest.raises(limits.LimitError, match=r"server-init bundle .* at most 24,576"):
        bundle.value(env, roles.SERVER_INIT)
    bundle._archive.cache_clear()
