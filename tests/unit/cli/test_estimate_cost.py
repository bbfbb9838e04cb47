"""k3s-infra estimate --cost (k3s_infra/cli/estimate.py): the monthly cost as an aligned
table with its total, assumptions and what it leaves out; the same in the estimate document's
"cost" field; offline unless --prices online, which falls back to the table without
credentials."""

from __future__ import annotations

import json

import pytest

from k3s_infra.cli import main
from k3s_infra.model import prices
from tests.support.oracle_helpers import REPO, plain_document

HOURS = 730  # the AWS pricing pages' month


def run_json(capsys, *args: str) -> dict:
    assert main(["estimate", *args, "--output", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_text_is_an_aligned_table_with_a_total_and_what_is_left_out(capsys):
    assert main(["estimate", "--env", "prod", "--cost"]) == 0
    out = capsys.readouterr().out.splitlines()
    head = next(i for i, line in enumerate(out) if line.startswith("monthly cost of k3s-prod in eu-west-1: about $"))
    assert "730 hours a month" in out[head] and "prices: offline table 2026-12-04" in out[head]
    header = out[head + 1]
    assert header.split() == ["ITEM", "COUNT", "UNIT", "PRICE", "MONTHLY"]
    total = out.index(next(line for line in out if line.startswith("  total ")))
    rows = out[head + 2:total + 1]
    for column in ("COUNT", "UNIT PRICE", "MONTHLY"):  # every cell starts where its heading does
        start = header.index(column)
        assert all(row[start - 2:start] == "  " and row[start] != " " for row in rows[:-1]), column
    assert rows[-1].index("$") == header.index("MONTHLY")
    document = plain_document(REPO / "environments" / "prod.yaml")
    servers = next(row for row in rows if row.startswith("  servers: m6i.large on-demand"))
    assert f"{document['servers']['count']} instances" in servers
    assert "$0.107 per instance-hour" in servers
    monthly = document["servers"]["count"] * HOURS * prices.INSTANCES["eu-west-1"]["m6i.large"].usd
    assert servers.endswith(f"${monthly:,.2f}")
    assert "assumed:" in out and "not counted:" in out
    left_out = out[out.index("not counted:") + 1:]
    assert any("data transfer out to the internet" in line for line in left_out)
    assert any("EBS snapshots" in line for line in left_out)
    assert any(line.startswith("  1 NLCU per load balancer and hour") for line in out)


def test_without_cost_the_estimate_is_unchanged(capsys):
    assert main(["estimate", "--env", "dev"]) == 0
    assert "monthly cost" not in capsys.readouterr().out
    assert "cost" not in run_json(capsys, "--env", "dev")


def test_json_carries_the_bill(capsys):
    document = plain_document(REPO / "environments" / "staging.yaml")
    cost = run_json(capsys, "--env", "staging", "--cost")["cost"]
    assert (cost["price_source"], cost["hours_per_month"], cost["region"]) == \
        ("offline table 2026-12-04", HOURS, document["region"])
    for item in cost["items"]:
        assert {"what", "group", "count", "unit", "unit_price_usd", "price_unit", "monthly_usd", "source"} <= set(item)
        assert item["source"].startswith("aws.amazon.com/") or "stated spot discount" in item["source"]
    assert cost["total_monthly_usd"] == pytest.approx(sum(i["monthly_usd"] for i in cost["items"]), abs=0.01 * len(
        cost["items"]))
    nat = next(i for i in cost["items"] if i["what"] == "NAT gateways")
    assert nat["count"] == 1 and document["network"]["create"]["nat_gateways"] == "one"
    assert nat["monthly_usd"] == round(HOURS * prices.SERVICES["eu-west-1"]["nat"].usd, 2)
    pool = document["agent_pools"][0]
    nodes = next(i for i in cost["items"] if i["group"] == f"pool {pool['name']}" and i["unit"] == "instance")
    assert (nodes["count"], nodes["count_min"], nodes["count_max"]) == \
        (pool["desired"], pool["min_size"], pool["max_size"])
    assert cost["total_monthly_usd_at_min_size"] <= cost["total_monthly_usd"] <= cost["total_monthly_usd_at_max_size"]
    assert "data transfer out to the internet" in cost["not_counted"][0]
    assert {a["name"] for a in cost["assumptions"]} >= {"nat-data", "nlcu", "flow-logs"}
    assert cost["unpriced"] == []


def test_online_prices_without_credentials_use_the_table_and_say_so(capsys, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    cost = run_json(capsys, "--env", "dev", "--prices", "online")["cost"]
    assert cost["price_source"] == "offline table 2026-12-04"
    assert "Price List API call failed" in cost["price_note"] and "credentials" in cost["price_note"]
    assert main(["estimate", "--env", "dev", "--prices", "online"]) == 0
    assert "  note: the Price List API call failed" in capsys.readouterr().out
