"""A SQLite ledger deleted or replaced while the service runs: noticed, said in one line, the service
stops (exit 1) instead of recording into a file nobody reads, and the history it held is saved
(issue 12, item 11)."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest

from conftest import write_raw
from harness import BIN, Daemon, drop
from pfswatchd.state import status
from pfswatchd.state.ledger import Ledger


def _status_lines(daemon: Daemon) -> tuple[int, list[str], str]:
    result = subprocess.run([str(BIN / "pfswatchd"), "status", "--config", str(daemon.config_path)],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, result.stderr.strip().splitlines(), result.stdout


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_lost_ledger_stops_the_service_and_its_history_can_be_put_back(tmp_path, how):
    daemon = Daemon(tmp_path / "svc")
    daemon.start()
    first = drop(write_raw(tmp_path / "src", visit=830), daemon.incoming)
    daemon.wait_files("ingested", 1, timeout=60)
    ledger_path = daemon.base / "state" / "ledger.sqlite3"
    if how == "deleted":
        for suffix in ("", "-wal", "-shm"):
            path = ledger_path.with_name(ledger_path.name + suffix)
            if path.exists():
                path.unlink()
    else:
        other = ledger_path.with_name("other.sqlite3")
        sqlite3.connect(other).execute("CREATE TABLE unrelated (x)").connection.close()
        os.replace(other, ledger_path)
    drop(write_raw(tmp_path / "src", visit=831), daemon.incoming)
    assert daemon.process.wait(timeout=90) == 1, daemon.log()[-3000:]
    [lost] = daemon.events("ledger_lost")
    assert str(ledger_path) in lost["reason"] and "\n" not in lost["reason"], lost
    assert [e["exit_code"] for e in daemon.events("service_stopped")] == [1]
    saved = lost["saved_to"]
    assert os.path.isfile(saved), lost
    ledger = Ledger(f"sqlite:///{saved}")
    try:
        files = {f["path"]: f["state"] for f in status.collect(ledger)["files"]}
    finally:
        ledger.close()
    assert files[str(first)] == "ingested"

    if how == "deleted":  # status on what is at the ledger's path now (nothing, or an empty file): one line
        code, lines, _ = _status_lines(daemon)
        assert code == 1 and len(lines) == 1 and "ledger" in lines[0] and "Traceback" not in lines[0], lines

    # The saved copy put back: the service starts with its history and goes on.
    for suffix in ("", "-wal", "-shm"):
        path = ledger_path.with_name(ledger_path.name + suffix)
        if path.exists():
            path.unlink()
    os.replace(saved, ledger_path)
    daemon.start()
    done = daemon.wait_until(lambda s: sum(s["counts"].get(k, 0) for k in ("ingested", "duplicate")) >= 2,
                             timeout=90, what="both files final")
    states = {f["path"]: f["state"] for f in done["files"]}
    assert states[str(first)] == "ingested" and done["counts"].get("failed", 0) == 0, states
    assert len(daemon.datasets()) == 2
    assert daemon.stop() == 0


@pytest.mark.parametrize("content", [b"", b"not a database at all\n" * 100])
def test_status_on_a_broken_ledger_says_why_in_one_line(tmp_path, content):
    daemon = Daemon(tmp_path / "svc")
    ledger_path = daemon.base / "state" / "ledger.sqlite3"
    ledger_path.parent.mkdir(parents=True)
    ledger_path.write_bytes(content)
    code, lines, _ = _status_lines(daemon)
    assert code == 1 and len(lines) == 1, lines
    assert str(ledger_path) in lines[0] and "Traceback" not in lines[0] and "internal error" not in lines[0]
