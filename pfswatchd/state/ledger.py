"""The ledger: pfswatchd's durable record of every file it has seen.

SQLAlchemy Core over SQLite (default) or PostgreSQL.  One row per path:

    pending -> ingesting -> ingested | duplicate | waiting | failed | quarantined
    pending -> ignored   (recognised kinds that are not ingested, unknown names)

``ingesting`` rows are *claimed* by one instance (``claimed_by``, ``claim_expires``)
with a conditional UPDATE, so several instances sharing a ledger ingest each
file exactly once; a claim whose instance died is taken over once it expires
(or at once when the instance is on this host and its process is gone).
Transient failures leave a row ``pending`` with ``next_attempt_at`` in the
future.  A path whose content changes (size, mtime or inode) after a final
state is reset to ``pending``.

All times are Unix epoch seconds (floats), so the same schema serves both
databases.
"""


from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex

from pfswatchd.errors import ErrorKind
from pfswatchd.model import FileKind
from pfswatchd.nametext import escaped
from pfswatchd.processes import alive
from pfswatchd.state.archiveledger import ArchiveRecords
from pfswatchd.state.ledgerdb import (
    ARCHIVE_FINAL,
    CHUNK,
    CLAIMABLE_STATES,
    DROPPED_INDEXES,
    FINAL_STATES,
    SCHEMA_VERSION,
    ArchiveState,
    FileState,
    archives,
    files,
    free_for,
    make_engine,
    meta,
    metadata,
    partial_indexes,
    upsert_insert,
    visits,
)
from pfswatchd.state.ledgerview import LedgerView
from pfswatchd.state.visitledger import HISTORY_KEY, VisitRecords

__all__ = ["ARCHIVE_FINAL", "ArchiveState", "FileState", "Ledger", "Result", "Seen"]


@dataclass(frozen=True, slots=True)
class Seen:
    """A file found on disk (by an event or a rescan)."""

    path: str
    kind: str
    size: int
    mtime_ns: int
    inode: int
    archive_id: int | None = None
    visit: int | None = None  # from the name, until the header confirms it (the monitor finds a visit's files)


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to a claimed file; written by :meth:`Ledger.record`."""

    path: str
    state: FileState
    kind: str | None = None
    instrument: str | None = None
    visit: int | None = None
    data_id: dict[str, Any] | None = None
    dataset_id: str | None = None
    run: str | None = None
    error_kind: str | None = None
    error: str | None = None
    retry_at: float | None = None  # pending again at this time (transient failure)
    quarantine_path: str | None = None
    complete_at: float | None = None



FOLDER = "folder"  # the kind of a row for a watched folder that cannot be read (not a file)


class Ledger(ArchiveRecords, VisitRecords):
    def __init__(self, url: str, *, instance: str = "", claim_timeout: float = 300.0) -> None:
        self.engine = make_engine(url)
        self.instance = instance or f"{os.uname().nodename}:{os.getpid()}"
        self.claim_timeout = claim_timeout

    def create(self) -> None:
        """Create the tables if they are missing; safe when several instances start at once."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Instances starting together on a new database: one creates, the others then see it.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7270315)"))
            existing = set(sa.inspect(conn).get_table_names())
            metadata.create_all(conn, checkfirst=True)
            for index in (*files.indexes, *visits.indexes):  # a ledger made by an older version gets the newer indexes
                conn.execute(CreateIndex(index, if_not_exists=True))
            for ddl in partial_indexes(conn.dialect.name):
                conn.execute(sa.text(ddl))
            for name in DROPPED_INDEXES:
                conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
            if files.name in existing and visits.name not in existing:
                # A ledger from before visits were tracked: visits complete by now are history, and
                # get no completion hook when the monitor first summarises them.
                conn.execute(upsert_insert(conn, meta).values(key=HISTORY_KEY, value=repr(time.time()))
                             .on_conflict_do_nothing())
            conn.execute(upsert_insert(conn, meta).values(key="schema_version", value=str(SCHEMA_VERSION))
                         .on_conflict_do_nothing())

    def close(self) -> None:
        self.engine.dispose()

    # -- discovery -------------------------------------------------------------------------------

    def upsert_seen(self, seen: Sequence[Seen], now: float | None = None) -> list[str]:
        """Record files found on disk; return the paths that are (again) pending.

        New paths are inserted as pending.  A known path whose identity changed
        after a final state is reset to pending.  Paths in final states with the
        same identity are left alone (and not returned).
        """
        now = now or time.time()
        active: list[str] = []
        seen = sorted(seen, key=lambda s: s.path)  # every instance locks rows in the same order
        for start in range(0, len(seen), CHUNK):
            with self.engine.begin() as conn:  # one chunk per transaction: no locks kept while waiting
                chunk = {s.path: s for s in seen[start : start + CHUNK]}
                rows = conn.execute(
                    sa.select(files.c.path, files.c.state, files.c.size, files.c.mtime_ns, files.c.inode).where(
                        files.c.path.in_(list(chunk))
                    )
                ).all()
                known = {row.path: row for row in rows}
                inserts = []
                updates = []
                for path, item in chunk.items():
                    row = known.get(path)
                    if row is None:
                        inserts.append(
                            dict(path=path, kind=item.kind, state=FileState.PENDING.value, size=item.size,
                                 mtime_ns=item.mtime_ns, inode=item.inode, attempts=0, seen_at=now,
                                 updated_at=now, next_attempt_at=now, archive_id=item.archive_id, visit=item.visit)
                        )
                        active.append(path)
                        continue
                    changed = (row.size, row.mtime_ns, row.inode) != (item.size, item.mtime_ns, item.inode)
                    if changed:  # p_reset: after a final state, it is pending again
                        updates.append(dict(p_path=path, p_size=item.size, p_mtime_ns=item.mtime_ns,
                                            p_inode=item.inode, p_reset=row.state in FINAL_STATES))
                    if row.state not in FINAL_STATES or changed:
                        active.append(path)
                if updates:  # one executemany, rows in path order
                    conn.execute(_SEEN_UPDATE.values(updated_at=now, **_reset_values(now)), updates)
                if inserts:  # another instance may insert the same new path meanwhile: it is pending too
                    conn.execute(upsert_insert(conn, files).on_conflict_do_nothing(index_elements=["path"]),
                                 inserts)
        return active

    def known(self, paths: Sequence[str]) -> dict[str, tuple[int | None, int | None, int | None, str]]:
        """{path: (size, mtime_ns, inode, state)} for the ``paths`` the ledger has (read only)."""
        found: dict[str, tuple[int | None, int | None, int | None, str]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(paths), CHUNK):
                rows = conn.execute(
                    sa.select(files.c.path, files.c.size, files.c.mtime_ns, files.c.inode, files.c.state)
                    .where(files.c.path.in_(list(paths[start : start + CHUNK])))
                ).all()
                found.update((row.path, (row.size, row.mtime_ns, row.inode, row.state)) for row in rows)
        return found

    # -- claims ----------------------------------------------------------------------------------

    def reserve(self, paths: Iterable[str], now: float | None = None) -> set[str]:
        """Mark pending/waiting rows as this instance's to examine (state unchanged); return those won.

        With several instances watching one folder, the first to see a file reserves it and the
        others leave it alone, so its headers are read once.  A reservation expires like a claim.
        """
        now = now or time.time()
        won: set[str] = set()
        paths = sorted(set(paths))
        for start in range(0, len(paths), CHUNK):
            with self.engine.begin() as conn:
                chunk = paths[start : start + CHUNK]
                result = conn.execute(
                    files.update()
                    .where(files.c.path.in_(chunk), files.c.state.in_(CLAIMABLE_STATES),
                           free_for(files, self.instance, now))
                    .values(claimed_by=self.instance, claim_expires=now + self.claim_timeout)
                    .returning(files.c.path)
                )
                won.update(row.path for row in result)
        return won

    def release_own(self) -> None:
        """At a clean stop: give up this instance's reservations and claims so others take them at once."""
        now = time.time()
        with self.engine.begin() as conn:
            _release(conn, files.c.claimed_by == self.instance, now)

    def claim(self, paths: Iterable[str], now: float | None = None) -> set[str]:
        """Claim pending/waiting (or abandoned) rows for this instance; return those won."""
        return set(self.claim_attempts(paths, now))

    def claim_attempts(self, paths: Iterable[str], now: float | None = None) -> dict[str, int]:
        """:meth:`claim`, returning {path won: its attempts, this claim included}."""
        now = now or time.time()
        won: dict[str, int] = {}
        paths = sorted(set(paths))  # every instance locks rows in the same order
        for start in range(0, len(paths), CHUNK):
            with self.engine.begin() as conn:  # one statement per transaction: no locks kept while waiting
                chunk = paths[start : start + CHUNK]
                result = conn.execute(
                    files.update()
                    .where(files.c.path.in_(chunk),
                           files.c.state.in_([*CLAIMABLE_STATES, FileState.INGESTING.value]),
                           free_for(files, self.instance, now))
                    .values(state=FileState.INGESTING.value, claimed_by=self.instance,
                            claim_expires=now + self.claim_timeout, updated_at=now,
                            attempts=files.c.attempts + 1)
                    .returning(files.c.path, files.c.attempts)
                )
                won.update((row.path, int(row.attempts)) for row in result)
        return won

    def release_abandoned(self, now: float | None = None, *, starting: bool = False) -> int:
        """Free claims of dead instances: expired ones, and this host's whose process is gone.

        With ``starting``, also this instance's own claims: they belong to an
        earlier run of the same instance name that was killed.
        """
        now = now or time.time()
        host = self.instance.rsplit(":", 1)[0]
        with self.engine.begin() as conn:
            # Only claimable and claimed rows hold claims that matter: the state index finds them among
            # millions of final rows (a scan of claimed_by would read every row).
            rows = conn.execute(
                sa.select(files.c.claimed_by)
                .where(files.c.state.in_([*CLAIMABLE_STATES, FileState.INGESTING.value]),
                       files.c.claimed_by.is_not(None))
                .distinct()
            ).all()
            # Archives being extracted too: a process killed mid-extraction may hold no file row at all.
            rows += conn.execute(
                sa.select(archives.c.claimed_by)
                .where(archives.c.state == ArchiveState.EXTRACTING.value, archives.c.claimed_by.is_not(None))
                .distinct()
            ).all()
            dead = sorted({r.claimed_by for r in rows if r.claimed_by and _dead_local_instance(r.claimed_by, host,
                                                                                                self.instance)})
            if starting:
                dead.append(self.instance)
            condition = files.c.claim_expires < now
            if dead:
                condition = sa.or_(condition, files.c.claimed_by.in_(dead))
            released = _release(conn, condition, now)
            archive_condition = archives.c.claim_expires < now
            if dead:
                archive_condition = sa.or_(archive_condition, archives.c.claimed_by.in_(dead))
            conn.execute(
                archives.update()
                .where(archives.c.state == ArchiveState.EXTRACTING.value, archive_condition)
                .values(state=ArchiveState.PENDING.value, claimed_by=None, claim_expires=None, updated_at=now)
            )
        return released

    # -- results ---------------------------------------------------------------------------------

    def record(self, results: Sequence[Result], now: float | None = None) -> None:
        """Write what happened to claimed files and release the claims (one executemany)."""
        now = now or time.time()
        if not results:
            return
        rows = []
        for result in results:
            final = result.state in (FileState.INGESTED, FileState.DUPLICATE)
            rows.append(
                {
                    "p_path": result.path,
                    "p_state": result.state.value,
                    "p_kind": result.kind,
                    "p_instrument": result.instrument,
                    "p_visit": result.visit,
                    "p_data_id": json.dumps(result.data_id, sort_keys=True) if result.data_id is not None else None,
                    "p_dataset_id": result.dataset_id,
                    "p_run": result.run,
                    "p_error_kind": result.error_kind,
                    "p_error": result.error,
                    "p_retry_at": result.retry_at,
                    "p_quarantine_path": result.quarantine_path,
                    "p_complete_at": result.complete_at,
                    "p_ingested_at": now if final else None,
                }
            )
        keep = sa.func.coalesce
        statement = (
            files.update()
            .where(files.c.path == sa.bindparam("p_path"))
            .values(
                state=sa.bindparam("p_state"),
                kind=keep(sa.bindparam("p_kind"), files.c.kind),
                instrument=keep(sa.bindparam("p_instrument"), files.c.instrument),
                visit=keep(sa.bindparam("p_visit"), files.c.visit),
                data_id=keep(sa.bindparam("p_data_id"), files.c.data_id),
                dataset_id=keep(sa.bindparam("p_dataset_id"), files.c.dataset_id),
                run=keep(sa.bindparam("p_run"), files.c.run),
                error_kind=sa.bindparam("p_error_kind"),
                error=sa.bindparam("p_error"),
                next_attempt_at=sa.bindparam("p_retry_at"),
                quarantine_path=keep(sa.bindparam("p_quarantine_path"), files.c.quarantine_path),
                complete_at=keep(sa.bindparam("p_complete_at"), files.c.complete_at),
                ingested_at=keep(sa.bindparam("p_ingested_at"), files.c.ingested_at),
                updated_at=now,
                claimed_by=None,
                claim_expires=None,
            )
        )
        with self.engine.begin() as conn:
            conn.execute(statement, rows)

    def owners(self, dataset_ids: Iterable[str]) -> set[str]:
        """Dataset ids that some row already holds as ingested (a later identical file is a duplicate)."""
        ids = list(dataset_ids)
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(ids), CHUNK):
                rows = conn.execute(
                    sa.select(files.c.dataset_id).where(files.c.dataset_id.in_(ids[start : start + CHUNK]),
                                                        files.c.state == FileState.INGESTED.value)
                ).all()
                found.update(row.dataset_id for row in rows)
        return found

    def folder_unreadable(self, path: str, reason: str, retry_delay: Callable[[int], float], *, retry: bool,
                          now: float | None = None, error_kind: str = "permission_denied") -> float | None:
        """Record a watched folder pfswatchd cannot list: pending, ``error_kind``, retried with backoff
        (``path_limit``: deeper than watch.max_depth, or a path longer than the system allows).

        The row has kind ``folder``; a rescan that meets the folder again changes nothing (only a due
        ``retry`` counts an attempt).  Returns the time of the next try when one was scheduled now.
        """
        now = now or time.time()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(files.c.attempts).where(files.c.path == path)).first()
            if row is not None and not retry:
                return None
            attempts = (row.attempts if row is not None else 0) + 1
            retry_at = now + retry_delay(attempts)
            values = dict(state=FileState.PENDING.value, attempts=attempts, error_kind=error_kind,
                          error=reason, next_attempt_at=retry_at, updated_at=now)
            if row is None:
                conn.execute(upsert_insert(conn, files).values(path=path, kind=FOLDER, seen_at=now, **values)
                             .on_conflict_do_nothing(index_elements=["path"]))
            else:
                conn.execute(files.update().where(files.c.path == path).values(**values))
        return retry_at

    def bad_name(self, path: str, reason: str, *, folder: bool, now: float | None = None) -> str | None:
        """Record a file or folder whose name is not UTF-8: failed, ``bad_name``, under its escaped path
        (final: only a rename, which is a new path, changes anything).  Returns the escaped path when the
        row is new (the caller logs it once), None when it was recorded before."""
        now = now or time.time()
        key = escaped(path)
        with self.engine.begin() as conn:
            result = conn.execute(upsert_insert(conn, files).values(
                path=key, kind=FOLDER if folder else FileKind.OTHER.value, state=FileState.FAILED.value,
                attempts=0, error_kind=ErrorKind.BAD_NAME.value, error=reason, seen_at=now, updated_at=now,
            ).on_conflict_do_nothing(index_elements=["path"]))
        return key if result.rowcount else None

    def folder_readable(self, path: str) -> bool:
        """Forget a folder recorded unreadable, now that it can be listed; True if there was one."""
        with self.engine.begin() as conn:
            result = conn.execute(files.delete().where(files.c.path == path, files.c.kind == FOLDER))
        return bool(result.rowcount)

    def mark(self, path: str, state: FileState, **values: Any) -> None:
        """Set a row's state outside a claim (ignored files, operator retry).

        A final state also drops the row's reservation and retry time, so that the queries for work
        to do (claims, due retries) never meet it again.
        """
        now = time.time()
        if state in FINAL_STATES:
            values = {"claimed_by": None, "claim_expires": None, "next_attempt_at": None, **values}
        with self.engine.begin() as conn:
            conn.execute(files.update().where(files.c.path == path).values(state=state.value, updated_at=now,
                                                                           **values))

    def ignore(self, reasons: Sequence[tuple[str, str]]) -> None:
        """Mark (path, reason) rows ignored outside a claim, in one executemany (a folder of guider
        frames is thousands of them)."""
        if not reasons:
            return
        now = time.time()
        statement = files.update().where(files.c.path == sa.bindparam("p_path")).values(
            state=FileState.IGNORED.value, error=sa.bindparam("p_error"), updated_at=now, claimed_by=None,
            claim_expires=None, next_attempt_at=None)
        with self.engine.begin() as conn:
            conn.execute(statement, [{"p_path": path, "p_error": reason} for path, reason in sorted(reasons)])

    def vanished(self, paths: Sequence[str], now: float | None = None) -> int:
        """Files that went (deleted, or renamed away) before they were examined: their rows, if still
        pending or waiting and not another instance's, become ``ignored`` with that reason, so that
        nothing retries them every second.  Their identity is cleared: a file that appears at the
        path again, even the same one renamed back, is pending again.  Returns the rows changed."""
        if not paths:
            return 0
        now = now or time.time()
        changed = 0
        paths = sorted(set(paths))
        for start in range(0, len(paths), CHUNK):
            with self.engine.begin() as conn:
                result = conn.execute(
                    files.update()
                    .where(files.c.path.in_(paths[start : start + CHUNK]),
                           files.c.state.in_([FileState.PENDING.value, FileState.WAITING.value]),
                           free_for(files, self.instance, now))
                    .values(state=FileState.IGNORED.value, error_kind=None, error=VANISHED, size=None,
                            mtime_ns=None, inode=None, claimed_by=None, claim_expires=None,
                            next_attempt_at=None, updated_at=now)
                )
                changed += result.rowcount or 0
        return changed

    def recorded_done(self, paths: Sequence[str]) -> dict[str, str]:
        """{path: dataset id} for the ``paths`` recorded ingested or duplicate (a move to complete)."""
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(paths), CHUNK):
                rows = conn.execute(
                    sa.select(files.c.path, files.c.dataset_id)
                    .where(files.c.path.in_(list(paths[start : start + CHUNK])),
                           files.c.state.in_([FileState.INGESTED.value, FileState.DUPLICATE.value]),
                           files.c.dataset_id.is_not(None))
                ).all()
                found.update((row.path, row.dataset_id) for row in rows)
        return found

    def announced_quarantines(self) -> list[dict[str, Any]]:
        """Rows recorded failed with the quarantine path they were about to be moved to: a kill came
        before the move was recorded done (see Pipeline.recover)."""
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(
                sa.select(files.c.path, files.c.quarantine_path, files.c.error_kind, files.c.error)
                .where(files.c.state == FileState.FAILED.value, files.c.quarantine_path.is_not(None))
            ).mappings()]

    # -- queries ---------------------------------------------------------------------------------

    def due(self, now: float | None = None, limit: int = 1000) -> list[str]:
        """Pending paths whose (re)try time has come and that nobody holds."""
        now = now or time.time()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(files.c.path)
                .where(files.c.state == FileState.PENDING.value, files.c.next_attempt_at <= now,
                       sa.or_(files.c.claimed_by.is_(None), files.c.claim_expires < now))
                .order_by(files.c.next_attempt_at)
                .limit(limit)
            ).all()
        return [row.path for row in rows]

    def waiting(self, visits: Iterable[int] | None = None) -> list[str]:
        """Paths of waiting files (pfsConfigs waiting for their raws): of ``visits``, or all of them.

        The visits are asked for ``CHUNK`` at a time (the visit index finds their rows); the service's
        periodic re-check of every waiting file goes through :meth:`waiting_page` instead.
        """
        query = sa.select(files.c.path).where(files.c.state == FileState.WAITING.value)
        with self.engine.connect() as conn:
            if visits is None:
                return [row.path for row in conn.execute(query.order_by(files.c.id))]
            numbers = sorted(set(visits))
            out: list[str] = []
            for start in range(0, len(numbers), CHUNK):
                chunk = query.where(files.c.visit.in_(numbers[start : start + CHUNK])).order_by(files.c.id)
                out.extend(row.path for row in conn.execute(chunk))
            return out

    def waiting_page(self, after: int = 0, limit: int = CHUNK) -> list[tuple[int, str]]:
        """(id, path) of at most ``limit`` waiting files with an id above ``after``, in id order.

        Pass the last id of one page as ``after`` of the next: a walk through every waiting file that
        holds at most ``limit`` of them at a time (the state index keeps the rows in id order).
        """
        query = (sa.select(files.c.id, files.c.path)
                 .where(files.c.state == FileState.WAITING.value, files.c.id > after)
                 .order_by(files.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [(int(row.id), row.path) for row in conn.execute(query)]

    def get(self, path: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(files).where(files.c.path == path)).mappings().first()
        return dict(row) if row else None

    def rows(self, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        query = sa.select(files).order_by(files.c.id)
        if states is not None:
            query = query.where(files.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def counts(self) -> dict[str, int]:
        """Files per state, the states that have files only (counted as ``status`` counts them, by index)."""
        with self.engine.connect() as conn:
            counted = LedgerView(conn).counts()
        return {state: count for state, count in counted.items() if count}

    def retry(self, *, kinds: Iterable[str] | None = None, paths: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Put failed/quarantined rows back in the queue; return them as they were."""
        now = time.time()
        condition: sa.ColumnElement[bool] = files.c.state.in_([FileState.FAILED.value, FileState.QUARANTINED.value])
        # A name that is not UTF-8 is recorded under a path that does not exist: only a rename helps.
        condition = sa.and_(condition, sa.or_(files.c.error_kind.is_(None),
                                              files.c.error_kind != ErrorKind.BAD_NAME.value))
        if kinds:
            condition = sa.and_(condition, files.c.error_kind.in_(list(kinds)))
        if paths:
            condition = sa.and_(condition, files.c.path.in_([str(p) for p in paths]))
        with self.engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(sa.select(files).where(condition)).mappings()]
            if rows:
                conn.execute(
                    files.update().where(files.c.id.in_([r["id"] for r in rows]))
                    .values(state=FileState.PENDING.value, attempts=0, error_kind=None, error=None,
                            next_attempt_at=now, updated_at=now, quarantine_path=None, claimed_by=None,
                            claim_expires=None)
                )
        return rows

    def interrupt_abandoned_hooks(self, now: float | None = None) -> list[int]:
        """Completion hooks left running by an earlier run of this instance, or by a process of this host that
        is gone: recorded interrupted (they are not run again; a hook may have done half its work)."""
        now = now or time.time()
        host = self.instance.rsplit(":", 1)[0]
        owners = self.hook_owners()
        dead = [o for o in owners if o == self.instance or _dead_local_instance(o, host, self.instance)]
        return self.interrupt_hooks(dead, now) if dead else []

    def move_path(self, old: str, new: str) -> None:
        """A file was moved back from quarantine: its row follows it."""
        with self.engine.begin() as conn:
            conn.execute(files.update().where(files.c.path == old).values(path=new, updated_at=time.time()))


# upsert_seen's update of a row whose identity changed (executemany); with p_reset, also back to pending.
_SEEN_UPDATE = files.update().where(files.c.path == sa.bindparam("p_path")).values(
    size=sa.bindparam("p_size"), mtime_ns=sa.bindparam("p_mtime_ns"), inode=sa.bindparam("p_inode"))


VANISHED = "deleted or renamed away before it was examined; not ingested (a file that appears here again is)"


def _reset_values(now: float) -> dict[str, Any]:
    """The columns a changed row in a final state starts over with, where p_reset is true (else unchanged)."""
    reset = sa.bindparam("p_reset", type_=sa.Boolean)
    values = dict(state=FileState.PENDING.value, attempts=0, error_kind=None, error=None, dataset_id=None,
                  next_attempt_at=now, seen_at=now, complete_at=None, ingested_at=None, quarantine_path=None)
    return {name: sa.case((reset, sa.null() if value is None else sa.literal(value, files.c[name].type)),
                          else_=files.c[name])
            for name, value in values.items()}


def _release(conn: sa.Connection, held: sa.ColumnElement[bool], now: float) -> int:
    """Give up the rows ``held`` selects: claimed ones go back to pending, reserved ones are freed.

    Returns how many claims were released.  Claims first, then reservations, in every caller.
    """
    released = conn.execute(
        files.update()
        .where(files.c.state == FileState.INGESTING.value, held)
        .values(state=FileState.PENDING.value, claimed_by=None, claim_expires=None, next_attempt_at=now,
                updated_at=now)
    ).rowcount
    # Reservations (pending or waiting rows an instance meant to examine) are simply freed.
    conn.execute(
        files.update()
        .where(files.c.state.in_(CLAIMABLE_STATES), files.c.claimed_by.is_not(None), held)
        .values(claimed_by=None, claim_expires=None, updated_at=now)
    )
    return int(released or 0)


def _dead_local_instance(claimant: str, host: str, me: str) -> bool:
    """True for a claim by a process on this host that no longer exists (not ours)."""
    if claimant == me:
        return False
    claim_host, _, pid = claimant.rpartition(":")
    if claim_host != host or not pid.isdigit():
        return False
    return not alive(int(pid))

