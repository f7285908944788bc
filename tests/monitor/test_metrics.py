"""/metrics, read with prometheus-client's own parser, agrees with the ledger after a mixed burst;
/healthz and /readyz answer; the endpoint is off unless enabled."""

from __future__ import annotations

import json
import tarfile
import time
from collections import Counter

import pytest
from monitoring import FAST, drop, get, visit
from prometheus_client.parser import text_string_to_metric_families

from harness import Daemon
from pfswatchd.state.ledger import Ledger


def _samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _total(samples: dict[str, list], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_counters_equal_the_ledger_after_a_mixed_burst(tmp_path):
    daemon = Daemon(tmp_path / "svc", monitor={**FAST, "http": {"enabled": True, "port": 0}})
    daemon.start()
    src = tmp_path / "src"
    good = [visit(src, 600), visit(src, 601)]
    archived = visit(src, 602)
    archive = tmp_path / "visit602.tar"
    with tarfile.open(archive, "w") as tar:
        for path in archived.values():
            tar.add(path, arcname=f"raw/{path.name}")
    bad = tmp_path / "PFSA00060311.fits"
    bad.write_bytes(b"this is no FITS file" * 200)
    for files in good:
        for path in files.values():
            drop(path, daemon.incoming)
    drop(bad, daemon.incoming)
    daemon.wait_files("ingested", 6, timeout=120)
    # The same bytes again, once the first is recorded (in one batch with it, both rows would be recorded
    # ingested: pipeline._results finds no owner yet; see the issue-15 note).
    drop(good[0]["b1"], daemon.incoming / "copy")
    drop(archive, daemon.incoming)
    done = daemon.wait_until(lambda s: s["counts"].get("ingested", 0) == 9 and s["counts"].get("duplicate", 0) == 1
                             and s["counts"].get("quarantined", 0) == 1, timeout=120, what="the burst")
    daemon.wait_until(lambda s: s["counts"].get("pending", 0) == 0, timeout=30)
    counts = done["counts"]
    deadline = time.monotonic() + 10
    while True:  # the gauges are the main loop's snapshot, published every monitor.interval
        code, text = get(daemon, "/metrics")
        assert code == 200
        samples = _samples(text)
        fresh = all(_total(samples, "pfswatchd_ledger_files", state=state) == counts[state]
                    for state in ("ingested", "duplicate", "quarantined"))
        if fresh or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ledger = Ledger(daemon.ledger_url)
    try:
        rows = ledger.rows()
        archives = ledger.archive_rows()
    finally:
        ledger.close()
    by_state_kind = Counter((r["state"], r["kind"]) for r in rows if r["state"] not in ("pending", "waiting"))
    for (state, kind), n in by_state_kind.items():
        assert _total(samples, "pfswatchd_files_total", state=state, kind=kind) == n, (state, kind)
    for state in ("ingested", "duplicate", "quarantined"):
        assert _total(samples, "pfswatchd_files_total", state=state) == counts[state]
        assert _total(samples, "pfswatchd_ledger_files", state=state) == counts[state]
    failures = Counter(r["error_kind"] for r in rows if r["state"] in ("failed", "quarantined"))
    assert failures == {"not_fits": 1}
    for kind, n in failures.items():
        assert _total(samples, "pfswatchd_file_failures_total", error_kind=kind) == n
    assert [a["state"] for a in archives] == ["done"]
    assert _total(samples, "pfswatchd_archives_total", outcome="published") == 1
    # Every ingested or duplicate file has a latency; the butler's own time is there.
    assert _total(samples, "pfswatchd_ingest_latency_seconds_count") == counts["ingested"] + counts["duplicate"]
    assert _total(samples, "pfswatchd_examine_latency_seconds_count") >= counts["ingested"]
    assert _total(samples, "pfswatchd_butler_seconds_total", operation="ingest") > 0
    assert _total(samples, "pfswatchd_butler_datasets_total", operation="ingest") >= counts["ingested"]
    assert _total(samples, "pfswatchd_visits", state="complete") == 3
    assert _total(samples, "pfswatchd_queue_depth") == 0
    assert _total(samples, "pfswatchd_alert", alert="files_pending") == 0

    code, body = get(daemon, "/healthz")
    assert code == 200 and json.loads(body)["ok"]
    code, body = get(daemon, "/readyz")
    assert code == 200 and json.loads(body) | {"checked_seconds_ago": 0} == {
        "ok": True, "ledger": True, "registry": True, "checked_seconds_ago": 0}
    assert get(daemon, "/nothing")[0] == 404


def _wait_ready(daemon: Daemon, code: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found, body = get(daemon, "/readyz")
        if found == code or time.monotonic() > deadline:
            assert found == code, body
            return json.loads(body)
        time.sleep(0.2)


@pytest.mark.postgres
def test_readyz_follows_the_registry_and_healthz_the_main_loop(tmp_path, postgres):
    registry = postgres.create_database("butler_ready")
    daemon = Daemon(tmp_path / "svc", repository={"root": "repo", "registry_db": registry},
                    monitor={**FAST, "http": {"enabled": True, "port": 0}})
    daemon.start()
    assert _wait_ready(daemon, 200)["registry"]
    postgres.stop()  # the registry's database goes away; the ledger (SQLite) stays
    try:
        answer = _wait_ready(daemon, 503)
        assert answer["registry"] is False and answer["ledger"] is True
        code, body = get(daemon, "/healthz")
        assert code == 200 and json.loads(body)["ok"]  # the loop still turns: alive, not ready
    finally:
        postgres.start()
    assert _wait_ready(daemon, 200, timeout=60)["registry"]
    assert daemon.stop() == 0


def test_the_endpoint_is_off_by_default(tmp_path):
    daemon = Daemon(tmp_path / "off")
    daemon.start()
    assert not daemon.events("http_listening")
    assert daemon.stop() == 0
