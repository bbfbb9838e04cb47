"""The restore request's text (deploy/restore_request.py): what ``k3s-infra restore`` writes
and boot.sh parses in bash. It round-trips, refuses anything malformed, reads the bare
snapshot name of earlier releases as a legacy request, and its SSM helpers (read, withdraw)
against botocore's Stubber with strict expected parameters."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from k3s_infra.deploy.restore_request import RestoreRequest, RestoreRequestError, new, parse, read, withdraw

SNAP = "etcd-snapshot-ip-10-0-0-5.eu-west-1.compute.internal-1700021600.zip"
LONG, SHORT = "i-0123456789abcdef0", "i-0a1b2c3d"
NAME = "/k3s-infra/k3s-dev/restore-request"


@pytest.mark.parametrize("request_", [
    RestoreRequest(SNAP, (LONG,), 1_800_000_600),
    RestoreRequest("on-demand-i-0123-1700030000", (LONG, SHORT), 1),
    RestoreRequest(SNAP, (), 0),  # legacy
])
def test_parse_round_trips(request_):
    assert parse(request_.format()) == request_


def test_the_line_is_the_documented_format():
    text = RestoreRequest(SNAP, (LONG, SHORT), 1_800_000_600).format()
    assert text == f"snapshot={SNAP} replaces={LONG},{SHORT} expires=1800000600"


def test_a_bare_snapshot_name_is_a_legacy_request():
    legacy = parse("etcd-snapshot-ip-10-0-0-5-1700000000")
    assert legacy.legacy and legacy.replaces == () and legacy.expires == 0
    assert not parse(f"snapshot={SNAP} replaces={LONG} expires=5").legacy


@pytest.mark.parametrize("text, says", [
    ("", "empty"),
    (f"snapshot={SNAP}  replaces={LONG} expires=5", "single spaces"),  # two spaces
    (f"snapshot={SNAP} replaces={LONG} expires=5 ", "single spaces"),  # trailing space
    (f"snapshot={SNAP} replaces={LONG} expires=5\n", "epoch seconds"),
    (f"replaces={LONG} snapshot={SNAP} expires=5", "that order"),
    (f"snapshot={SNAP} replaces={LONG}", "that order"),
    (f"snapshot={SNAP} replaces={LONG} expires=5 extra=1", "that order"),
    (f"snapshot={SNAP} replaces={LONG} expires", "that order"),
    (f"snapshot={SNAP} replaces= expires=5", "instance IDs"),
    (f"snapshot={SNAP} replaces={LONG}, expires=5", "instance IDs"),
    (f"snapshot={SNAP} replaces=i-XYZ expires=5", "instance IDs"),
    (f"snapshot={SNAP} replaces={LONG},{LONG} expires=5", "twice"),
    (f"snapshot={SNAP} replaces={LONG} expires=-5", "epoch seconds"),
    (f"snapshot={SNAP} replaces={LONG} expires=05", "epoch seconds"),
    (f"snapshot={SNAP} replaces={LONG} expires=1.5", "epoch seconds"),
    (f"snapshot={SNAP} replaces={LONG} expires=", "epoch seconds"),
    (f"snapshot= replaces={LONG} expires=5", "snapshot name"),
    (f"snapshot=a=b replaces={LONG} expires=5", "snapshot name"),
    (f"snapshot=$(reboot) replaces={LONG} expires=5", "snapshot name"),
    ("etcd-snapshot;reboot", "snapshot name"),  # legacy shape, not a snapshot name
    ("snap shot", "single spaces"),
])
def test_malformed_text_is_refused_with_a_reason(text, says):
    with pytest.raises(RestoreRequestError, match=says):
        parse(text)


@pytest.mark.parametrize("fields, says", [
    (("bad name", (LONG,), 5), "snapshot name"),
    ((SNAP, ("i-1",), 5), "instance IDs"),
    ((SNAP, (LONG,), 0), "both or neither"),
    ((SNAP, (), 5), "both or neither"),
    ((SNAP, (LONG,), -1), "epoch seconds"),
    ((SNAP, (LONG,), 5.0), "epoch seconds"),
])
def test_a_request_that_cannot_be_written_is_refused(fields, says):
    with pytest.raises(RestoreRequestError, match=says):
        RestoreRequest(*fields)


def test_a_new_request_expires_after_the_timeout_and_needs_an_instance():
    assert new(SNAP, (LONG,), 1_800_000_000.0, 600).expires == 1_800_000_600
    assert new(SNAP, (LONG,), 1_800_000_000.4, 600).expires == 1_800_000_601  # never earlier than asked
    with pytest.raises(RestoreRequestError, match="at least one instance"):
        new(SNAP, (), 1_800_000_000.0, 600)


@pytest.fixture
def ssm():
    client = boto3.client("ssm", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                          endpoint_url="https://ssm.invalid")
    with Stubber(client) as stub:
        client.stub = stub
        yield client
        stub.assert_no_pending_responses()


def _holds(ssm, value):
    ssm.stub.add_response("get_parameter", {"Parameter": {"Name": NAME, "Type": "String", "Value": value}},
                          {"Name": NAME})


def test_read_reports_pending_expired_legacy_and_malformed(ssm):
    ssm.stub.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": NAME})
    assert read(ssm, NAME, 1000) is None
    for value, now, state, expires_in in [(f"snapshot={SNAP} replaces={LONG} expires=1720", 1000, "pending", 720),
                                          (f"snapshot={SNAP} replaces={LONG} expires=1000", 1000, "expired", 0),
                                          (SNAP, 1000, "legacy", None), ("snapshot=x", 1000, "malformed", None)]:
        _holds(ssm, value)
        found = read(ssm, NAME, now)
        assert (found.state, found.expires_in, found.value, found.region) == (state, expires_in, value, "eu-west-1")
        shown = found.as_dict()
        assert shown["state"] == state and shown["parameter"] == NAME
        assert (shown["problem"] is not None) == (state == "malformed")
    assert shown["snapshot"] is None and shown["replaces"] == []


def test_withdraw_deletes_only_the_request_it_wrote(ssm):
    mine = RestoreRequest(SNAP, (LONG,), 1_800_000_600)
    _holds(ssm, mine.format())
    ssm.stub.add_response("delete_parameter", {}, {"Name": NAME})
    assert withdraw(ssm, NAME, mine) == ("deleted", None)
    _holds(ssm, RestoreRequest(SNAP, (LONG,), 1_800_000_900).format())  # a newer run's
    assert withdraw(ssm, NAME, mine) == ("replaced", None)
    ssm.stub.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": NAME})
    assert withdraw(ssm, NAME, mine) == ("absent", None)
    ssm.stub.add_client_error("get_parameter", "AccessDeniedException", "no", expected_params={"Name": NAME})
    outcome, error = withdraw(ssm, NAME, mine)
    assert outcome == "failed" and "AccessDeniedException" in error


def test_withdraw_that_cannot_reach_ssm_says_why(ssm):
    """A network failure (botocore's EndpointConnectionError, not an AWS answer) is reported too."""
    def unreachable(**_):
        raise EndpointConnectionError(endpoint_url="https://ssm.eu-west-1.amazonaws.com/")

    offline = SimpleNamespace(exceptions=ssm.exceptions, get_parameter=unreachable)
    assert withdraw(offline, NAME, RestoreRequest(SNAP, (LONG,), 1_800_000_600)) == (
        "failed", 'Could not connect to the endpoint URL: "https://ssm.eu-west-1.amazonaws.com/"')
