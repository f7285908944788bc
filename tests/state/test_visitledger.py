"""The visits table: added to existing ledgers without touching their tables, on SQLite and PostgreSQL;
expected cameras (a full pfsConfig wins over a customised copy); the hook claimed by one caller only."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from pfswatchd.state.ledger import Ledger, Seen
from pfswatchd.state.visitledger import HISTORY_KEY, HOOK_DUE, HOOK_RUNNING


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    return request.getfixturevalue("pg_database")


def _old_ledger(url: str) -> None:
    """A ledger as the release before the monitor made it: no visits table, no updated_at index."""
    ledger = Ledger(url)
    ledger.create()
    ledger.upsert_seen([Seen("/in/PFSA00010011.fits", "raw_ccd", 10, 1, 1)], 100.0)
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE visits"))
        conn.execute(sa.text("DROP INDEX ix_files_updated_at"))
        conn.execute(sa.text(f"DELETE FROM pfswatchd_meta WHERE key = '{HISTORY_KEY}'"))
    ledger.close()


def test_an_existing_ledger_gets_the_visits_table_and_keeps_its_rows(ledger_url):
    _old_ledger(ledger_url)
    ledger = Ledger(ledger_url)
    try:
        ledger.create()
        inspector = sa.inspect(ledger.engine)
        assert "visits" in inspector.get_table_names()
        assert "ix_files_updated_at" in {index["name"] for index in inspector.get_indexes("files")}
        assert [row["path"] for row in ledger.rows()] == ["/in/PFSA00010011.fits"]  # nothing lost
        assert ledger.history_before() is not None  # visits complete by now are history: no hook for them
        ledger.create()  # a second start changes nothing
        assert len(ledger.rows()) == 1
    finally:
        ledger.close()


def test_a_new_ledger_has_no_history(ledger_url):
    ledger = Ledger(ledger_url)
    try:
        ledger.create()
        assert ledger.history_before() is None
    finally:
        ledger.close()


def test_a_full_pfsconfig_wins_over_a_customised_copy(ledger_url):
    ledger = Ledger(ledger_url)
    try:
        ledger.create()
        ledger.expect(7, ["b1", "r1"], "W_CAMMSK", 2, 1.0)  # PFSF00000702 came first
        assert ledger.visit_records([7])[7]["expected"] == "b1,r1"
        ledger.expect(7, ["b1", "r1", "n1"], "W_CAMMSK", 0, 2.0)  # the full one replaces it
        ledger.expect(7, ["b2"], "W_CAMMSK", 1, 3.0)  # a later copy does not
        record = ledger.visit_records([7])[7]
        assert (record["expected"], record["expected_subset"]) == ("b1,r1,n1", 0)
    finally:
        ledger.close()


def test_a_hook_is_claimed_once_however_many_ask(ledger_url):
    ledgers = [Ledger(ledger_url, instance=f"host:{n}") for n in range(3)]
    try:
        ledgers[0].create()
        ledgers[0].save_visits([{"visit": 9, "instrument": "PFS", "cameras": {"b1": ["ingested", None]},
                                 "pfsconfig": "ingested", "missing": [], "complete": True,
                                 "first_seen_at": 1.0}], 1.0)
        won = [ledger.mark_complete([9], HOOK_DUE, 2.0) for ledger in ledgers]
        assert sorted(map(len, won)) == [0, 0, 1]  # complete once
        assert [ledger.claim_hook(9, 3.0) for ledger in ledgers].count(True) == 1
        record = ledgers[0].visit_records([9])[9]
        assert record["hook_state"] == HOOK_RUNNING
        owner = next(ledger for ledger in ledgers if ledger.instance == record["hook_by"])
        assert owner.interrupt_hooks([owner.instance], 4.0) == [9]  # a restart of the owner: not run again
        assert ledgers[0].due_hooks(10) == []
        assert json.loads(record["cameras"]) == {"b1": ["ingested", None]}
    finally:
        for ledger in ledgers:
            ledger.close()
