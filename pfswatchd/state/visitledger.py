"""The ledger's visit records: the cameras a visit's pfsConfig declares, its summary, and its hook.

``hook_state`` of a visit, once it has been complete:

    due -> running -> ok | failed | timeout
    running -> interrupted   (the service stopped or died while it ran: not run again)
    off      (no hook configured when it completed)
    before   (complete before the ledger had a visits table: history, no hook)

Only the instance whose conditional UPDATE moves a visit from ``due`` to ``running`` runs its hook,
so a hook runs at most once per visit, across restarts and across instances sharing a ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pfswatchd.state.ledgerdb import CHUNK, ArchiveState, FileState, archives, files, meta, upsert_insert, visits

INGESTIBLE = ("raw_ccd", "raw_nir", "pfsconfig")
_FILE_COLUMNS = (files.c.path, files.c.kind, files.c.state, files.c.visit, files.c.instrument, files.c.data_id,
                 files.c.error_kind, files.c.error, files.c.seen_at, files.c.updated_at, files.c.ingested_at)
HISTORY_KEY = "visits_history_before"  # pfswatchd_meta: visits complete before this time get no hook
HOOK_DUE, HOOK_RUNNING, HOOK_OFF, HOOK_BEFORE, HOOK_INTERRUPTED = "due", "running", "off", "before", "interrupted"


class VisitRecords:
    """Ledger operations on the visits table (a base of Ledger)."""

    engine: Engine
    instance: str

    # -- files, as the monitor reads them ---------------------------------------------------------

    def changed_files(self, since: float) -> list[dict[str, Any]]:
        """Rows of raws and pfsConfigs written after ``since`` (indexed by updated_at)."""
        query = sa.select(*_FILE_COLUMNS).where(files.c.updated_at > since, files.c.kind.in_(INGESTIBLE))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def changed_visit_numbers(self, since: float) -> list[int]:
        """The visits of raws and pfsConfigs written after ``since``, newest first (by updated_at's index)."""
        # Neither DISTINCT nor "visit IS NOT NULL" in the query: with either, SQLite (no statistics) walks the
        # visit index, every row of the ledger (0.44 s at 2,000,000 rows, at each start), not the rows after
        # ``since`` by updated_at's index.
        query = sa.select(files.c.visit).where(files.c.updated_at > since, files.c.kind.in_(INGESTIBLE))
        with self.engine.connect() as conn:
            return sorted({int(row.visit) for row in conn.execute(query) if row.visit is not None}, reverse=True)

    def visit_files(self, visit_numbers: Iterable[int]) -> list[dict[str, Any]]:
        numbers = sorted(set(visit_numbers))
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            for start in range(0, len(numbers), CHUNK):
                query = sa.select(*_FILE_COLUMNS).where(files.c.visit.in_(numbers[start : start + CHUNK]),
                                                        files.c.kind.in_(INGESTIBLE))
                out.extend(dict(row) for row in conn.execute(query).mappings())
        return out

    def latest_visit_numbers(self, limit: int) -> list[int]:
        """The ``limit`` highest visit numbers that have files (visit numbers grow with time)."""
        query = (sa.select(files.c.visit).where(files.c.visit.is_not(None), files.c.kind.in_(INGESTIBLE))
                 .group_by(files.c.visit).order_by(files.c.visit.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [int(row.visit) for row in conn.execute(query)]

    def all_visit_numbers(self) -> list[int]:
        query = sa.select(files.c.visit).where(files.c.visit.is_not(None), files.c.kind.in_(INGESTIBLE)).distinct()
        with self.engine.connect() as conn:
            return sorted(int(row.visit) for row in conn.execute(query))

    def unnamed_visit_files(self) -> list[str]:
        """Paths of raws and pfsConfigs without a visit (recorded before names set it)."""
        query = sa.select(files.c.path).where(files.c.visit.is_(None), files.c.kind.in_(INGESTIBLE))
        with self.engine.connect() as conn:
            return [row.path for row in conn.execute(query)]

    def history_before(self) -> float | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(meta.c.value).where(meta.c.key == HISTORY_KEY)).scalar()
        return None if value is None else float(value)

    def name_visits(self, assign: Mapping[str, int]) -> None:
        """Give rows recorded before names set the visit column their name's visit (one-time upgrade)."""
        items = [{"p_path": path, "p_visit": visit} for path, visit in assign.items()]
        statement = files.update().where(files.c.path == sa.bindparam("p_path"), files.c.visit.is_(None)).values(
            visit=sa.bindparam("p_visit"))
        with self.engine.begin() as conn:
            for start in range(0, len(items), CHUNK):
                conn.execute(statement, items[start : start + CHUNK])

    # -- expected cameras -------------------------------------------------------------------------

    def expect(self, visit: int, cameras: Sequence[str], source: str, subset: int, now: float) -> None:
        """Record the cameras a pfsConfig of ``visit`` declares; a full pfsConfig wins over a customised copy."""
        values = {"expected": ",".join(cameras), "expected_from": source, "expected_subset": subset}
        with self.engine.begin() as conn:
            insert = upsert_insert(conn, visits).values(visit=visit, complete=False, first_seen_at=now,
                                                        updated_at=now, **values)
            excluded = insert.excluded
            conn.execute(insert.on_conflict_do_update(
                index_elements=["visit"], set_={**{k: excluded[k] for k in values}, "updated_at": now},
                where=sa.or_(visits.c.expected.is_(None),
                             sa.and_(excluded.expected_subset == 0, visits.c.expected_subset != 0))))

    # -- summaries --------------------------------------------------------------------------------

    def visit_records(self, visit_numbers: Iterable[int]) -> dict[int, dict[str, Any]]:
        numbers = sorted(set(visit_numbers))
        out: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(numbers), CHUNK):
                query = sa.select(visits).where(visits.c.visit.in_(numbers[start : start + CHUNK]))
                out.update((int(row["visit"]), dict(row)) for row in conn.execute(query).mappings())
        return out

    def save_visits(self, summaries: Sequence[Mapping[str, Any]], now: float) -> None:
        """Write summaries ({visit, instrument, cameras, pfsconfig, missing, complete, first_seen_at})."""
        if not summaries:
            return
        with self.engine.begin() as conn:
            for item in sorted(summaries, key=lambda s: s["visit"]):  # every instance locks in one order
                values = dict(instrument=item["instrument"], cameras=json.dumps(item["cameras"], sort_keys=True),
                              pfsconfig=item["pfsconfig"], missing=",".join(item["missing"]),
                              complete=bool(item["complete"]), updated_at=now)
                insert = upsert_insert(conn, visits).values(visit=item["visit"], first_seen_at=item["first_seen_at"],
                                                            **values)
                conn.execute(insert.on_conflict_do_update(index_elements=["visit"], set_=values))

    def mark_complete(self, visit_numbers: Iterable[int], hook_state: str, now: float) -> list[int]:
        """Set ``complete_at`` and ``hook_state`` of visits complete for the first time; return those this
        call changed (another instance may have got there first)."""
        numbers = sorted(set(visit_numbers))
        won: list[int] = []
        with self.engine.begin() as conn:
            for start in range(0, len(numbers), CHUNK):
                result = conn.execute(
                    visits.update()
                    .where(visits.c.visit.in_(numbers[start : start + CHUNK]), visits.c.complete_at.is_(None))
                    .values(complete_at=now, hook_state=hook_state, alerted_at=None, updated_at=now)
                    .returning(visits.c.visit))
                won.extend(int(row.visit) for row in result)
        return won

    def set_alerted(self, visit_numbers: Iterable[int], now: float | None) -> None:
        numbers = sorted(set(visit_numbers))
        with self.engine.begin() as conn:
            for start in range(0, len(numbers), CHUNK):
                conn.execute(visits.update().where(visits.c.visit.in_(numbers[start : start + CHUNK]))
                             .values(alerted_at=now))

    def incomplete_visits(self, before: float, *, limit: int | None = None,
                          unalerted: bool = False) -> list[dict[str, Any]]:
        """Visits first seen before ``before`` and never complete (for the incomplete alert), oldest first;
        ``limit``: that many at most; ``unalerted``: only those not alerted yet.  (Every look asks: a year
        can leave thousands of visits incomplete, which no look must read again each time.)"""
        condition = sa.and_(visits.c.complete_at.is_(None), visits.c.first_seen_at < before)
        if unalerted:
            condition = sa.and_(condition, visits.c.alerted_at.is_(None))
        query = sa.select(visits).where(condition).order_by(visits.c.first_seen_at).limit(limit)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def incomplete_visit_count(self, before: float) -> int:
        """How many visits first seen before ``before`` are not complete (counted by the database)."""
        query = sa.select(sa.func.count()).select_from(visits).where(visits.c.complete_at.is_(None),
                                                                     visits.c.first_seen_at < before)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def latest_visits(self, limit: int) -> list[dict[str, Any]]:
        query = sa.select(visits).order_by(visits.c.visit.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def visit_counts(self) -> dict[str, int]:
        """How many visits are complete and incomplete now."""
        query = sa.select(visits.c.complete, sa.func.count()).group_by(visits.c.complete)
        with self.engine.connect() as conn:
            found = {bool(done): int(n) for done, n in conn.execute(query).all()}
        return {"complete": found.get(True, 0), "incomplete": found.get(False, 0)}

    def visits_watermark(self) -> float | None:
        """The latest time a visit summary was written (where the monitor picks up after a restart)."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(visits.c.updated_at))).scalar()
        return None if value is None else float(value)

    # -- the completion hook ----------------------------------------------------------------------

    def due_hooks(self, limit: int) -> list[dict[str, Any]]:
        query = (sa.select(visits).where(visits.c.hook_state == HOOK_DUE).order_by(visits.c.complete_at)
                 .limit(limit))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def claim_hook(self, visit: int, now: float) -> bool:
        """Move a visit's hook from due to running for this instance; True if this call did."""
        with self.engine.begin() as conn:
            result = conn.execute(
                visits.update().where(visits.c.visit == visit, visits.c.hook_state == HOOK_DUE)
                .values(hook_state=HOOK_RUNNING, hook_by=self.instance, hook_started_at=now, updated_at=now))
            return bool(result.rowcount)

    def finish_hook(self, visit: int, state: str, exit_code: int | None, output: str, now: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(visits.update().where(visits.c.visit == visit, visits.c.hook_by == self.instance)
                         .values(hook_state=state, hook_exit=exit_code, hook_output=output, hook_finished_at=now,
                                 updated_at=now))

    def hook_owners(self) -> list[str]:
        """Instances holding a running hook."""
        query = sa.select(visits.c.hook_by).where(visits.c.hook_state == HOOK_RUNNING).distinct()
        with self.engine.connect() as conn:
            return [row.hook_by for row in conn.execute(query) if row.hook_by]

    def interrupt_hooks(self, instances: Iterable[str], now: float) -> list[int]:
        """Hooks left running by ``instances`` (this one at start-up, dead ones): recorded interrupted."""
        names = list(instances)
        with self.engine.begin() as conn:
            result = conn.execute(
                visits.update().where(visits.c.hook_state == HOOK_RUNNING, visits.c.hook_by.in_(names))
                .values(hook_state=HOOK_INTERRUPTED, hook_finished_at=now, updated_at=now,
                        hook_output="the service stopped while the hook ran; not run again")
                .returning(visits.c.visit))
            return [int(row.visit) for row in result]

    # -- what the monitor shows ------------------------------------------------------------------

    def alerted_visits(self) -> set[int]:
        with self.engine.connect() as conn:
            return {int(row.visit) for row in conn.execute(
                sa.select(visits.c.visit).where(visits.c.alerted_at.is_not(None)))}

    def oldest_unfinished(self) -> float | None:
        """When the oldest file not yet in a final state was seen."""
        states = [FileState.PENDING.value, FileState.INGESTING.value, FileState.WAITING.value]
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.min(files.c.seen_at)).where(files.c.state.in_(states))).scalar()
        return None if value is None else float(value)

    def recent_errors(self, limit: int) -> list[dict[str, Any]]:
        states = [FileState.FAILED.value, FileState.QUARANTINED.value, FileState.PENDING.value]
        query = (sa.select(files.c.path, files.c.state, files.c.error_kind, files.c.error, files.c.updated_at)
                 .where(files.c.error_kind.is_not(None), files.c.state.in_(states))
                 .order_by(files.c.updated_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def active_archives(self) -> list[dict[str, Any]]:
        """Archives not finished: waiting to be whole, being extracted, or waiting for a retry."""
        query = (sa.select(archives.c.path, archives.c.state, archives.c.seen_at, archives.c.error_kind,
                           archives.c.error)
                 .where(archives.c.state.in_([ArchiveState.PENDING.value, ArchiveState.EXTRACTING.value]))
                 .order_by(archives.c.seen_at))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def ingested_times(self, since: float) -> list[float]:
        # updated_at is written with every ingested_at (and later changes only raise it), so its index
        # finds the rows: ingested_at has none, and a scan of 2 million rows took a second at start-up.
        query = sa.select(files.c.ingested_at).where(files.c.updated_at > since, files.c.ingested_at > since)
        with self.engine.connect() as conn:
            return [float(row.ingested_at) for row in conn.execute(query)]

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- what is overdue (alerts) -----------------------------------------------------------------

    def overdue_files(self, states: Sequence[FileState], before: float, limit: int = 5) -> tuple[int, list[
            dict[str, Any]]]:
        """How many files in ``states`` were first seen before ``before``, and the oldest few."""
        condition = sa.and_(files.c.state.in_([s.value for s in states]), files.c.seen_at < before)
        with self.engine.connect() as conn:
            return _overdue(conn, files, condition, files.c.seen_at, limit)

    def overdue_archives(self, before: float, limit: int = 5) -> tuple[int, list[dict[str, Any]]]:
        """Archives seen before ``before`` and still not extracted (pending or extracting)."""
        condition = sa.and_(archives.c.state.in_([ArchiveState.PENDING.value, ArchiveState.EXTRACTING.value]),
                            archives.c.seen_at < before)
        with self.engine.connect() as conn:
            return _overdue(conn, archives, condition, archives.c.seen_at, limit)


def _overdue(conn: Connection, table: sa.Table, condition: sa.ColumnElement[bool], order: Any,
             limit: int) -> tuple[int, list[dict[str, Any]]]:
    count = int(conn.execute(sa.select(sa.func.count()).select_from(table).where(condition)).scalar() or 0)
    if not count:
        return 0, []
    rows = conn.execute(sa.select(table.c.path, table.c.state, table.c.seen_at, table.c.error_kind,
                                  table.c.error).where(condition).order_by(order).limit(limit)).mappings()
    return count, [dict(row) for row in rows]
