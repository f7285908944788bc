"""The monitor in the real service (a subprocess): visits complete, the hook, and alerts that fire and clear."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time
from datetime import datetime

from monitoring import FAST, bad_header, cli_status, drop, visit, visits, wait_event

from harness import Daemon

# The hook: records its arguments; visit 201 fails with exit code 3, visit 202 sleeps past its time limit.
HOOK = """
import sys, time
instrument, number, record = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(record, "a") as out:
    out.write(f"{instrument} {number}\\n")
if number == 201:
    print("quick-look refused visit 201"); sys.exit(3)
if number == 202:
    time.sleep(60)
"""


def _hooked(tmp_path, timeout: float = 3.0) -> tuple[Daemon, object]:
    record = tmp_path / "hook-calls.txt"
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    daemon = Daemon(tmp_path / "svc", monitor={**FAST, "hook": {
        "command": [sys.executable, str(script), "{instrument}", "{visit}", str(record)], "timeout": timeout}})
    return daemon, record


def _calls(record) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


def test_a_complete_visit_runs_the_hook_once_also_across_restarts(tmp_path):
    daemon, record = _hooked(tmp_path)
    daemon.start()
    first = visit(tmp_path / "src", 100)
    for path in first.values():
        drop(path, daemon.incoming)
    wait_event(daemon, "visit_hook_done", visit=100)
    assert _calls(record) == ["PFS 100"]
    assert visits(daemon)[100]["hook_state"] == "ok" and visits(daemon)[100]["complete"]
    assert daemon.stop() == 0

    daemon.start()  # a clean restart
    second = visit(tmp_path / "src", 101)
    for path in second.values():
        drop(path, daemon.incoming)
    wait_event(daemon, "visit_hook_done", visit=101)
    daemon.kill()  # and a SIGKILL

    daemon.start()
    drop(second["b1"], daemon.incoming / "again")  # the same bytes again: a duplicate, nothing new for the visit
    daemon.wait_files("duplicate", 1)
    time.sleep(2)  # several looks of the monitor
    assert _calls(record) == ["PFS 100", "PFS 101"]
    events = daemon.events("visit_complete")
    assert sorted(e["visit"] for e in events) == [100, 101]  # the hook-free event, once per visit
    assert events[0]["data_id"] == {"instrument": "PFS", "visit": 100} and events[0]["cameras"] == ["b1", "r1"]


def test_hook_failures_and_time_limit_are_recorded_and_not_retried(tmp_path):
    daemon, record = _hooked(tmp_path)
    daemon.start()
    for number in (201, 202):
        for path in visit(tmp_path / "src", number).values():
            drop(path, daemon.incoming)
    failed = wait_event(daemon, "visit_hook_failed", visit=201)
    assert failed["exit_code"] == 3 and failed["outcome"] == "failed"
    timed_out = wait_event(daemon, "visit_hook_failed", visit=202)
    assert timed_out["outcome"] == "timeout"
    shown = visits(daemon)
    assert (shown[201]["hook_state"], shown[201]["hook_exit"]) == ("failed", 3)
    assert "quick-look refused visit 201" in shown[201]["hook_output"]
    assert shown[202]["hook_state"] == "timeout"
    assert sorted(_calls(record)) == ["PFS 201", "PFS 202"]


def test_a_hook_cut_short_by_a_crash_is_recorded_interrupted_not_run_twice(tmp_path):
    daemon, record = _hooked(tmp_path, timeout=600.0)
    daemon.start()
    for path in visit(tmp_path / "src", 202).values():  # its hook sleeps for a minute
        drop(path, daemon.incoming)
    started = wait_event(daemon, "visit_hook_started", visit=202)
    deadline = time.monotonic() + 60
    while not _calls(record) and time.monotonic() < deadline:  # the hook is running (it wrote its call)
        time.sleep(0.05)
    daemon.kill()
    os.killpg(started["pid"], signal.SIGKILL)  # the hook outlives a SIGKILLed service; end it here
    daemon.start()
    wait_event(daemon, "visit_hook_interrupted", visit=202)
    time.sleep(1.5)
    assert visits(daemon)[202]["hook_state"] == "interrupted"
    assert len(daemon.events("visit_hook_started")) == 1 and _calls(record) == ["PFS 202"]


def test_a_visit_missing_a_camera_raises_an_alert_naming_it_and_clears_when_it_arrives(tmp_path):
    daemon = Daemon(tmp_path / "svc", monitor={**FAST, "visit_incomplete_after": 2.0})
    daemon.start()
    files = visit(tmp_path / "src", 300)
    drop(files["pfsConfig"], daemon.incoming)
    drop(files["b1"], daemon.incoming)
    daemon.wait_files("ingested", 2)
    event = wait_event(daemon, "visit_incomplete", visit=300)
    assert event["missing"] == ["r1"] and "r1 (missing)" in event["reason"]
    raised_at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    assert raised_at - visits(daemon)[300]["first_seen_at"] >= 2.0  # not before the configured time
    raised = wait_event(daemon, "alert_raised", alert="visits_incomplete")
    assert raised["level"] == "warning" and "visit 300: missing r1 (missing)" in raised["items"]
    assert "ALERT visits_incomplete" in cli_status(daemon)
    assert "visit 300: missing r1 (missing)" in cli_status(daemon)
    daemon.wait_notify("ALERT visits_incomplete 1")  # the systemd STATUS line
    drop(files["r1"], daemon.incoming)
    wait_event(daemon, "visit_incomplete_cleared", visit=300)
    wait_event(daemon, "alert_cleared", alert="visits_incomplete")
    assert "ALERT" not in cli_status(daemon)
    assert visits(daemon)[300]["complete"]


def test_a_failed_camera_is_named_with_its_reason(tmp_path):
    daemon = Daemon(tmp_path / "svc", monitor={**FAST, "visit_incomplete_after": 1.0})
    daemon.start()
    files = visit(tmp_path / "src", 310)
    bad_header(files, "r1", 310)
    for path in files.values():
        drop(path, daemon.incoming)
    daemon.wait_files("quarantined", 1)  # r1 failed and was quarantined: under load the alert can come first
    event = wait_event(daemon, "visit_incomplete", visit=310)
    assert event["missing"] == ["r1"]
    deadline = time.monotonic() + 60
    while "visit 310: missing r1 (failed: [bad_header]" not in cli_status(daemon):
        assert time.monotonic() < deadline, cli_status(daemon)
        time.sleep(0.2)
    shown = visits(daemon)[310]
    assert shown["cameras"]["r1"]["state"] == "failed" and "W_ENFCAZ" in shown["cameras"]["r1"]["reason"]


def test_waiting_and_pending_alerts_fire_and_clear(tmp_path):
    daemon = Daemon(tmp_path / "svc", monitor={**FAST, "waiting_after": 1.0, "pending_after": 1.0,
                                               "visit_incomplete_after": 0})
    daemon.start()
    files = visit(tmp_path / "src", 400)
    drop(files["pfsConfig"], daemon.incoming)  # no raws yet: it waits
    daemon.wait_files("waiting", 1)
    waiting = wait_event(daemon, "alert_raised", alert="pfsconfig_waiting")
    assert waiting["count"] == 1 and files["pfsConfig"].name in waiting["items"][0]
    whole = files["b1"].read_bytes()
    partial = daemon.incoming / files["b1"].name
    partial.write_bytes(whole[: len(whole) // 2])  # a raw still being written: pending
    pending = wait_event(daemon, "alert_raised", alert="files_pending")
    assert partial.name in pending["items"][0]
    status = cli_status(daemon)
    assert "ALERT pfsconfig_waiting" in status and "ALERT files_pending" in status
    daemon.wait_notify("ALERT pfsconfig_waiting 1; files_pending 1")
    with open(partial, "ab") as out:  # the writer finishes
        out.write(whole[len(whole) // 2 :])
    drop(files["r1"], daemon.incoming)
    wait_event(daemon, "alert_cleared", alert="files_pending")
    wait_event(daemon, "alert_cleared", alert="pfsconfig_waiting")
    assert "ALERT" not in cli_status(daemon)


def test_an_upgraded_ledger_runs_no_hook_for_visits_complete_before(tmp_path):
    daemon, record = _hooked(tmp_path)
    daemon.settings["monitor"]["hook"]["command"] = []  # the release before: no monitor, no hook
    daemon.write_config()
    daemon.start()
    for path in visit(tmp_path / "src", 800).values():
        drop(path, daemon.incoming)
    daemon.wait_files("ingested", 3)
    assert daemon.stop() == 0
    with sqlite3.connect(daemon.ledger_url.removeprefix("sqlite:///")) as conn:  # as that release left it
        conn.execute("DROP TABLE visits")
    _, record = _hooked(tmp_path)  # the same folders, now with a hook
    daemon.start()
    for path in visit(tmp_path / "src", 801).values():
        drop(path, daemon.incoming)
    wait_event(daemon, "visit_hook_done", visit=801)
    shown = visits(daemon)
    # History: measured against the default cameras (the old release kept no pfsConfig cameras), but done.
    assert shown[800].get("hook_state") == "before", shown[800]
    assert shown[801]["complete"] and shown[801]["hook_state"] == "ok"
    assert _calls(record) == ["PFS 801"]
    assert not [e for e in daemon.events("visit_complete") if e["visit"] == 800][1:]  # once, in the first run
