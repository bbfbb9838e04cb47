"""The boot when the instance metadata service is briefly, or lastingly, unavailable.

The real IMDS throttles queries per instance and may answer 503; AWS's advice is to retry
with back-off (EC2 User Guide, instancedata-data-retrieval.html, "Query throttling"). The
sandbox's metadata service answers the first N token PUTs / metadata GETs with 503
(boot_sandbox._Imds). Back-off is 0 s in the sandbox (K3S_INFRA_RETRY_BASE/_MAX), so these
boots take no longer than the others.
"""

from __future__ import annotations

from tests.support.boot_sandbox import IMDS_TOKEN, INSTANCE_ID, ZONE

# The boot's attempt budgets, as its comments and log document them: an IMDSv2 token at most
# 10 times (`retry 10 imds_new_token`), each metadata key at most 5 times (`retry 5 imds_get`).
# Counted here from the requests the metadata service saw, never read from the script.
TOKEN_ATTEMPTS = 10
GET_ATTEMPTS = 5
# Longer than any sane retry budget: the metadata service never comes back during the boot.
FOREVER = 1000
METADATA_KEYS = {"/latest/meta-data/instance-id", "/latest/meta-data/placement/availability-zone",
                 "/latest/meta-data/placement/region"}


def _puts(run) -> list:
    return [r for r in run.imds_requests if r[:2] == ("PUT", "/latest/api/token")]


def _gets(run) -> list:
    return [r for r in run.imds_requests if r[0] == "GET"]


def _nothing_done(run):
    """A boot that gave up before it knew who and where it is: no AWS call at all (it has
    no region to make one in), nothing downloaded, installed or started."""
    assert run.aws_calls == []
    assert run.signals == [] and run.state["health_reports"] == []
    assert not run.installed and not run.state["started"]
    assert run.k3s_calls == [] and run.dnf_calls == []
    # Only the stop every failed server boot makes (boot.sh on_exit): nothing was enabled or started.
    assert run.systemctl_calls == [["stop", "k3s"]]
    # Every curl the boot made went to the metadata service (no release download).
    assert run.urls and all(url.startswith("http://127.0.0.1:") for url in run.urls)


def test_a_briefly_unavailable_metadata_service_is_retried_and_the_boot_completes(sandbox, user_data):
    # Fewer failures than either budget: the token PUT fails 3 times, then the first GETs twice.
    run = sandbox.run(user_data("dev", "ServerInit"), imds_token_failures=3, imds_get_failures=2)
    assert run.returncode == 0, run.stderr
    assert len(_puts(run)) == 4  # 3 refused, then one token for the whole boot
    gets = _gets(run)
    assert {path for _, path, _ in gets} == METADATA_KEYS
    # The first key was asked 3 times (2 refused), the others once each.
    assert [path for _, path, _ in gets].count("/latest/meta-data/instance-id") == 3
    assert len(gets) == 5
    # Every metadata read carried the session token, the retried ones too.
    assert all(headers.get("X-aws-ec2-metadata-token") == IMDS_TOKEN for _, _, headers in gets)
    # What the boot learnt is the metadata, not an error page.
    config = run.config()
    assert config["node-name"] == INSTANCE_ID
    assert config["kubelet-arg"][1] == f"provider-id=aws:///{ZONE}/{INSTANCE_ID}"
    assert run.installed and run.state["started"]
    assert [s[3] for s in run.signals] == ["SUCCESS"]


def test_no_token_ever_fails_the_boot_after_a_bounded_number_of_attempts(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"), imds_token_failures=FOREVER)
    assert run.returncode == 1
    assert "error: no IMDSv2 token from" in run.stderr
    # Bounded: exactly the documented budget of token attempts, then no metadata read at all.
    assert len(_puts(run)) == TOKEN_ATTEMPTS
    assert _gets(run) == []
    # No region, so no FAILURE signal can be sent: the boot says so rather than guessing
    # one (boot.sh, signal). CloudFormation then waits out the group's signal timeout.
    assert "cannot signal FAILURE: no region from IMDS" in run.stderr
    _nothing_done(run)


def test_no_metadata_ever_fails_the_boot_after_a_bounded_number_of_reads(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"), imds_get_failures=FOREVER)
    assert run.returncode == 1
    assert "error: no instance-id from IMDS" in run.stderr
    assert len(_puts(run)) == 1
    # Bounded: the first key the documented number of times, each with the token; no other key.
    gets = _gets(run)
    assert [path for _, path, _ in gets] == ["/latest/meta-data/instance-id"] * GET_ATTEMPTS
    assert all(headers.get("X-aws-ec2-metadata-token") == IMDS_TOKEN for _, _, headers in gets)
    assert "cannot signal FAILURE: no region from IMDS" in run.stderr
    _nothing_done(run)
