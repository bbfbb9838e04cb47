"""Snapshot sizes read in binary units in the table (IEC 80000-13: 1 KiB = 1024 bytes,
1 MiB = 1024 KiB, 1 GiB = 1024 MiB), one decimal; the JSON keeps the exact byte count."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from k3s_infra.cli.progress import binary_size
from k3s_infra.cli.snapshots import as_json, format_table
from k3s_infra.deploy.snapshots import Snapshot

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize("size, text", [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (1024 ** 2 - 1, "1024.0 KiB"),  # one byte short of a MiB: rounds at one decimal, stays in KiB
    (int(34.5 * 1024 ** 2), "34.5 MiB"), (3 * 1024 ** 3, "3.0 GiB"), (2 * 1024 ** 4, "2.0 TiB"),
    (5000 * 1024 ** 4, "5000.0 TiB"),
])
def test_binary_size(size, text):
    assert binary_size(size) == text


def test_the_table_shows_binary_units_and_the_json_bytes():
    snapshot = Snapshot("etcd-snapshot-server-1-1767322800", "etcd/dev/etcd-snapshot-server-1-1767322800",
                        25_400_000, WHEN)
    header, row = format_table([snapshot]).splitlines()
    assert header.split()[:2] == ["NAME", "SIZE"]
    assert row.split()[:3] == [snapshot.name, "24.2", "MiB"]  # 25,400,000 / 1024**2 = 24.22...
    assert as_json(snapshot)["size"] == 25_400_000
