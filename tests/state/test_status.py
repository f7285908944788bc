"""``pfswatchd status``: counts and the oldest pending file from SQL, and a file listing that streams
and filters (state, change time, path prefix, limit), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tracemalloc

import pytest
import sqlalchemy as sa

from pfswatchd import cli, config
from pfswatchd.monitor import report
from pfswatchd.state import status
from pfswatchd.state.ledger import FileState, Ledger, Result, Seen
from pfswatchd.state.ledgerview import FileFilter, view


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'ledger.sqlite3'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_database"))
    made = Ledger(url, instance="test")
    made.create()
    yield made
    made.close()


def _fill(ledger: Ledger) -> dict[str, str]:
    """Files in several folders and states, changed at known times; returns path -> state."""
    names = {
        "/data/in/night1/a.fits": ("ingested", 100.0),
        "/data/in/night1/b.fits": ("failed", 200.0),
        "/data/in/night10/c.fits": ("ingested", 300.0),  # "night1" as text, not as a folder
        "/data/in/ni%ght_1/d.fits": ("failed", 400.0),  # LIKE wildcards in a real name
        "/data/in/night2/e.fits": ("pending", 500.0),
        "/data/in/night2/f.fits": ("waiting", 600.0),
    }
    for path, (state, when) in names.items():
        ledger.upsert_seen([Seen(path, "raw_ccd", 10, 1, 1)], now=when - 50)
        if state == "pending":
            continue
        assert ledger.claim([path], now=when - 1) == {path}
        error = ("bad_header", "no EXPTIME") if state == "failed" else (None, None)
        ledger.record([Result(path, FileState(state), error_kind=error[0], error=error[1])], now=when)
    return {path: state for path, (state, _) in names.items()}


def _paths(ledger: Ledger, **wanted) -> list[str]:
    return [f["path"] for f in status.collect(ledger, FileFilter(**wanted))["files"]]


def test_filters_select_in_sql(ledger):
    states = _fill(ledger)
    everything = list(states)
    assert _paths(ledger) == everything
    assert _paths(ledger, states=frozenset({"failed"})) == ["/data/in/night1/b.fits", "/data/in/ni%ght_1/d.fits"]
    assert _paths(ledger, states=frozenset({"pending", "waiting"})) == everything[4:]
    assert _paths(ledger, since=300.0) == everything[2:]
    assert _paths(ledger, prefix="/data/in/night1/") == everything[:2]
    assert _paths(ledger, prefix="/data/in/night1") == everything[:3]
    assert _paths(ledger, prefix="/data/in/ni%ght_") == ["/data/in/ni%ght_1/d.fits"]  # % and _ are letters
    assert _paths(ledger, prefix="/data/in/ni_ght") == []
    assert _paths(ledger, limit=2) == everything[:2]
    assert _paths(ledger, limit=0) == []
    assert _paths(ledger, states=frozenset({"ingested", "failed"}), since=150.0, prefix="/data/in/night1",
                  limit=5) == ["/data/in/night1/b.fits", "/data/in/night10/c.fits"]


def test_counts_oldest_pending_and_errors_come_from_one_snapshot(ledger):
    _fill(ledger)
    data = status.collect(ledger, FileFilter(limit=1), now=1000.0)
    assert data["counts"] == {"pending": 1, "ingesting": 0, "waiting": 1, "ingested": 2, "duplicate": 0,
                              "ignored": 0, "failed": 2, "quarantined": 0}
    assert data["oldest_pending"] == {"path": "/data/in/night2/e.fits", "state": "pending", "age_seconds": 550.0}
    assert [e["path"] for e in data["recent_errors"]] == ["/data/in/ni%ght_1/d.fits", "/data/in/night1/b.fits"]
    with view(ledger.engine) as snapshot:
        before = snapshot.counts()
        ledger.upsert_seen([Seen("/data/in/night3/g.fits", "raw_ccd", 1, 1, 1)], now=2000.0)  # written meanwhile
        assert snapshot.counts() == before
        assert len(list(snapshot.files())) == 6
    assert status.collect(ledger)["counts"]["pending"] == 2


def test_json_streams_the_files_last_one_per_line(ledger):
    _fill(ledger)
    out = io.StringIO()
    status.show(ledger, out, as_json=True, wanted=FileFilter(states=frozenset({"failed"})))
    text = out.getvalue()
    data = json.loads(text)
    assert [f["path"] for f in data["files"]] == ["/data/in/night1/b.fits", "/data/in/ni%ght_1/d.fits"]
    assert data["counts"]["ingested"] == 2  # the counts are the whole ledger's
    lines = text.splitlines()
    assert lines[-1] == "]}" and [json.loads(line.rstrip(","))["state"] for line in lines[1:-1]] == ["failed"] * 2
    assert list(data)[-1] == "files"


def test_text_lists_files_only_when_asked(ledger):
    _fill(ledger)
    plain, narrowed = io.StringIO(), io.StringIO()
    status.show(ledger, plain, as_json=False)
    status.show(ledger, narrowed, as_json=False, wanted=FileFilter(prefix="/data/in/night2/"))
    assert plain.getvalue().startswith("6 files: 1 pending, 1 waiting, 2 ingested, 2 failed\n")
    assert "night2/f.fits" not in plain.getvalue()
    assert narrowed.getvalue().endswith("files:\n  pending     /data/in/night2/e.fits\n"
                                        "  waiting     /data/in/night2/f.fits\n")


def test_memory_does_not_grow_with_the_ledger(tmp_path):
    """Counts, oldest pending and a limited listing hold a few rows at a time, whatever the ledger's size;
    streaming every file holds one batch (the listing the old status built held every row)."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", instance="test")
    ledger.create()
    rows = [{"path": f"/data/in/night{i // 5000}/PFSA{i:08d}.fits", "kind": "raw_ccd", "state": "ingested",
             "attempts": 1, "seen_at": float(i), "updated_at": float(i), "error": "x" * 200} for i in range(30_000)]
    with ledger.engine.begin() as conn:
        conn.execute(sa.insert(sa.table("files", *(sa.column(k) for k in rows[0]))), rows)
    del rows
    for wanted, limit_kib in ((FileFilter(limit=100), 1024), (FileFilter(), 4096)):
        out = _CountingSink()
        tracemalloc.start()
        status.show(ledger, out, as_json=True, wanted=wanted)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert out.lines == (wanted.limit or 30_000) + 2
        assert peak < limit_kib * 1024, f"{peak / 1024:.0f} KiB for {wanted}"
    ledger.close()


class _CountingSink(io.TextIOBase):
    """An output stream that keeps nothing (so that only status's own memory is measured)."""

    lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


def _warn(ledger: Ledger, path: str, when: float) -> None:
    """An ingested file that carries a warning (as a full pfsConfig displaced by another)."""
    ledger.upsert_seen([Seen(path, "pfsconfig", 10, 1, 1)], now=when - 10)
    assert ledger.claim([path], now=when - 1) == {path}
    ledger.record([Result(path, FileState.INGESTED, error="displaced by a newer full pfsConfig")], now=when)


def _statements(ledger: Ledger, run) -> list[tuple[str, object]]:
    """The SELECT statements (with their parameters) ``run()`` sends to the ledger's database."""
    seen: list[tuple[str, object]] = []

    def grab(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(ledger.engine, "before_cursor_execute", grab)
    try:
        run()
    finally:
        sa.event.remove(ledger.engine, "before_cursor_execute", grab)
    return seen


def _plans(ledger: Ledger, statements: list[tuple[str, object]]) -> list[tuple[str, str]]:
    """(statement, its plan as one text) of each statement.  On PostgreSQL sequential scans are switched
    off first: a table of a few rows is always scanned, so the question asked is whether an index can
    answer the statement at all."""
    raw = ledger.engine.raw_connection()
    try:
        cursor = raw.cursor()
        explain = "EXPLAIN QUERY PLAN " if ledger.engine.dialect.name == "sqlite" else "EXPLAIN "
        if ledger.engine.dialect.name == "postgresql":
            cursor.execute("SET enable_seqscan = off")
        plans = []
        for statement, parameters in statements:
            cursor.execute(explain + statement, parameters)
            plans.append((" ".join(statement.split()), " | ".join(str(row[-1]) for row in cursor.fetchall())))
        return plans
    finally:
        raw.close()


def test_status_reads_indexes_not_every_row(ledger):
    """What status asks the database (counts, oldest pending, errors, warnings, archives, alerts, a listing
    with --limit, one with --since) is answered from indexes: at 2 million rows a statement that reads every row costs
    seconds (the warnings query read every ingested row and sorted them, 0.94 s; GROUP BY state over
    the state index 0.55 s).  The only whole-table statements allowed are the row count (SQLite counts an
    index's pages) and the listing in id order, which stops at its limit."""
    _fill(ledger)
    for i in range(3):
        _warn(ledger, f"/data/in/night3/pfsConfig-0x{i}.fits", 700.0 + i)
    limits = config.default().monitor

    def run() -> None:
        found = report.alert_report(ledger, limits)
        status.show(ledger, io.StringIO(), as_json=False, extra={"alerts": found})
        status.show(ledger, io.StringIO(), as_json=True, wanted=FileFilter(limit=100))
        status.show(ledger, io.StringIO(), as_json=True, wanted=FileFilter(since=650.0))

    plans = _plans(ledger, _statements(ledger, run))
    sqlite = ledger.engine.dialect.name == "sqlite"
    # A step that reads the table or a whole index of every row (a scan of the partial index is fine).
    whole = "SCAN files" if sqlite else "Seq Scan on files"
    bare_count = [plan for statement, plan in plans if statement == "SELECT count(*) AS count_1 FROM files"]
    listings = [(statement, plan) for statement, plan in plans
                if statement.startswith("SELECT files.path, files.state, files.kind")]
    assert len(bare_count) == 3 and len(listings) == 2, plans
    [listing, since] = [plan for _, plan in listings]
    if sqlite:  # --since reads the range of the updated_at index, not every row in id order
        assert "ix_files_updated_at" in since, listings[1]
    for statement, plan in plans:
        if plan in bare_count or plan == listing:
            continue
        assert all(whole not in step or "ix_files_warnings" in step for step in plan.split(" | ")), (
            f"{statement}\n  reads every row: {plan}")
        if sqlite and "FROM files" in statement:
            # Sorted: the few rows not final (oldest pending, recent errors) and a --since range.
            sorted_ok = "files.state IN" in statement or "files.updated_at >=" in statement
            assert "TEMP B-TREE" not in plan or sorted_ok, f"{statement}\n  sorts: {plan}"
    warnings = [plan for statement, plan in plans if "files.error IS NOT NULL" in statement]
    assert len(warnings) == 3 and all("ix_files_warnings" in plan and "TEMP B-TREE" not in plan for plan in warnings)
    [incomplete] = [plan for statement, plan in plans if "visits.complete_at IS NULL" in statement]
    assert "ix_visits_incomplete" in incomplete
    data = status.collect(ledger, FileFilter(limit=0))
    assert [w["path"] for w in data["recent_warnings"]] == [f"/data/in/night3/pfsConfig-0x{i}.fits"
                                                            for i in (2, 1, 0)]
    assert data["counts"]["ingested"] == 5 and sum(data["counts"].values()) == 9


VISIT_INDEXES = ("ix_visits_updated_at", "ix_visits_alerted_at", "ix_visits_hook_state", "ix_visits_complete")


def test_older_ledger_gets_the_new_indexes(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    ledger.create()
    with ledger.engine.begin() as conn:  # as a ledger made before the indexes were added
        for name in ("ix_files_dataset_id", "ix_files_archive_state", "ix_files_updated_at", "ix_files_warnings",
                     "ix_visits_incomplete"):
            conn.execute(sa.text(f"DROP INDEX {name}"))
        conn.execute(sa.text("CREATE INDEX ix_files_archive_id ON files (archive_id)"))
        for name in VISIT_INDEXES:
            conn.execute(sa.text(f"DROP INDEX {name}"))
    ledger.create()
    inspector = sa.inspect(ledger.engine)
    names = {index["name"] for index in inspector.get_indexes("files")}
    assert {"ix_files_dataset_id", "ix_files_archive_state", "ix_files_updated_at", "ix_files_warnings"} <= names
    assert "ix_visits_incomplete" in {index["name"] for index in inspector.get_indexes("visits")}
    assert "ix_files_archive_id" not in names
    assert set(VISIT_INDEXES) <= {index["name"] for index in sa.inspect(ledger.engine).get_indexes("visits")}
    ledger.close()


def test_since_accepts_durations_dates_and_seconds():
    now = 1_000_000.0
    assert status.parse_since("90s", now) == now - 90
    assert status.parse_since("30m", now) == now - 1800
    assert status.parse_since("6H", now) == now - 6 * 3600
    assert status.parse_since("2d", now) == now - 2 * 86400
    assert status.parse_since("1700000000", now) == 1_700_000_000.0
    assert status.parse_since("2025-03-01T18:00:00+00:00", now) == 1740852000.0
    with pytest.raises(ValueError, match="expected a duration"):
        status.parse_since("yesterday", now)


def test_bad_filters_are_one_line_usage_errors(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "l.sqlite3"}"\n')
    for args, expected in ((["--since", "soon"], "--since 'soon': expected a duration"),
                           (["--state", "done"], "invalid choice: 'done'"),
                           (["--limit", "-3"], "--limit '-3': expected a whole number")):
        result = subprocess.run([sys.executable, "-m", "pfswatchd", "status", "--config", str(config), *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and expected in result.stderr.splitlines()[-1], result.stderr


def test_command_line_states_are_the_ledger_states():
    assert list(cli.FILE_STATES) == [state.value for state in FileState]
