"""A consistent, read-only view of the ledger for ``pfswatchd status``: the database does the work.

A year on one data host is some 2 million rows, nearly all of them ingested.  Nothing here reads
them all, into Python or in the database: the counts are the table's row count (SQLite counts an
index's pages) less a ``GROUP BY`` over the state index of every state but ingested; the oldest
pending file and the recent errors are ``ORDER BY ... LIMIT`` over the few rows that are not final;
the recent warnings are read from a partial index of the warned rows alone (ledgerdb.WARNED_STATE); and
the file listing is a cursor read in batches (:meth:`LedgerView.files`), filtered by state, change
time and path prefix in SQL.  tests/state/test_status.py checks the query plans.

Everything one :func:`view` returns comes from one snapshot (one read transaction), so the counts
and the files listed always agree, while the service goes on writing (SQLite in WAL mode and
PostgreSQL readers never block a writer).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pfswatchd.state.ledgerdb import WARNED_STATE, FileState, archives, files

NOT_FINAL = (FileState.PENDING.value, FileState.INGESTING.value, FileState.WAITING.value)
ERROR_STATES = (FileState.FAILED.value, FileState.QUARANTINED.value, FileState.PENDING.value)
# Every state but the one most rows are in: counted from the state index, and ingested is what is left.
COUNTED = tuple(state.value for state in FileState if state is not FileState.INGESTED)
BATCH = 1000  # rows fetched from the database at a time

# The columns of a listed file (``status --json``), in output order.
FILE_COLUMNS = ("path", "state", "kind", "data_id", "dataset_id", "run", "archive_id", "error_kind", "error",
                "attempts", "seen_at", "complete_at", "ingested_at", "updated_at", "quarantine_path")


@dataclass(frozen=True, slots=True)
class FileFilter:
    """Which files to list: all of them unless narrowed (every condition given must hold)."""

    states: frozenset[str] = field(default_factory=frozenset)
    since: float | None = None  # changed (updated_at) at or after this Unix time
    prefix: str | None = None  # path starts with this text
    limit: int | None = None  # at most this many, in the order they were first seen

    @property
    def narrowed(self) -> bool:
        return bool(self.states) or self.since is not None or self.prefix is not None or self.limit is not None


def prefix_condition(column: sa.ColumnElement[str], prefix: str, dialect: str) -> sa.ColumnElement[bool]:
    """``column`` starts with ``prefix``, in a form the database answers from its index on paths.

    SQLite compares text byte by byte (UTF-8 order is code point order), so a range on the unique
    path index is exact: every string that starts with ``prefix`` sorts at or after it and before
    ``prefix`` with its last character incremented.  PostgreSQL compares by the database's
    collation, where that is not true; there a LIKE with the prefix escaped is exact (and uses a
    ``text_pattern_ops`` index where one exists).
    """
    if not prefix:
        return sa.true()
    if dialect == "sqlite":
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return sa.and_(column >= prefix, column < upper)
    return column.startswith(prefix, autoescape=True)


class LedgerView:
    """Queries on one read snapshot (see :func:`view`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def counts(self) -> dict[str, int]:
        """Files per state, every state listed (zero when none).

        A ``GROUP BY state`` would step through every entry of the state index (0.55 s at 2 million rows);
        the row count alone is a count of index pages' cells (0.03 s), and the states other than ingested
        are few rows, each state a range of the state index.
        """
        total = int(self.conn.execute(sa.select(sa.func.count()).select_from(files)).scalar_one())
        rows = self.conn.execute(sa.select(files.c.state, sa.func.count()).where(files.c.state.in_(COUNTED))
                                 .group_by(files.c.state)).all()
        counts = {state.value: 0 for state in FileState}
        counts.update((state, int(count)) for state, count in rows)
        counts[FileState.INGESTED.value] = total - sum(counts.values())
        return counts

    def oldest_pending(self, now: float) -> dict[str, Any] | None:
        """The file waiting longest to be finished (pending, ingesting or waiting), with its age."""
        row = self.conn.execute(
            sa.select(files.c.path, files.c.state, files.c.seen_at)
            .where(files.c.state.in_(NOT_FINAL)).order_by(files.c.seen_at, files.c.id).limit(1)
        ).first()
        if row is None:
            return None
        return {"path": row.path, "state": row.state, "age_seconds": round(now - row.seen_at, 3)}

    def recent_errors(self, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            sa.select(files.c.path, files.c.state, files.c.error_kind, files.c.error)
            .where(files.c.state.in_(ERROR_STATES), files.c.error_kind.is_not(None))
            .order_by(files.c.updated_at.desc(), files.c.id.desc()).limit(limit)
        ).all()
        return [{"path": r.path, "state": r.state, "error_kind": r.error_kind, "error": r.error} for r in rows]

    def recent_warnings(self, limit: int) -> list[dict[str, Any]]:
        """Ingested files that carry a warning (errors.WARNING_KINDS, or a message such as a displaced
        full pfsConfig), newest first."""
        state: sa.ColumnElement[bool] = WARNED_STATE
        if self.dialect == "sqlite":
            # Without table statistics SQLite takes an equality on the state index for a few rows, and
            # would read every ingested row from it and sort them all; likely() says the term holds for
            # most rows, so it reads the partial index ix_files_warnings instead (few rows, in order).
            state = sa.func.likely(state)
        rows = self.conn.execute(
            sa.select(files.c.path, files.c.state, files.c.error_kind, files.c.error)
            .where(state, files.c.error.is_not(None))
            .order_by(files.c.updated_at.desc(), files.c.id.desc()).limit(limit)
        ).all()
        return [{"path": r.path, "state": r.state, "error_kind": r.error_kind, "error": r.error} for r in rows]

    def files(self, wanted: FileFilter | None = None) -> Iterator[dict[str, Any]]:
        """The files ``wanted`` selects (all by default), in the order they were first seen, read
        ``BATCH`` at a time."""
        wanted = wanted or FileFilter()
        query = sa.select(*(files.c[name] for name in FILE_COLUMNS)).order_by(files.c.id)
        if wanted.states:
            query = query.where(files.c.state.in_(sorted(wanted.states)))
        if wanted.since is not None:
            changed: sa.ColumnElement[bool] = files.c.updated_at >= wanted.since
            if self.dialect == "sqlite":
                # Without table statistics SQLite would read the whole table in id order (1.3 s at 2M rows)
                # rather than the range of ix_files_updated_at and a sort of what it holds; likelihood()
                # says the range is narrow, as a --since asks for the files changed lately.
                changed = sa.func.likelihood(changed, sa.literal_column("0.001"))
            query = query.where(changed)
        if wanted.prefix:
            query = query.where(prefix_condition(files.c.path, wanted.prefix, self.dialect))
        if wanted.limit is not None:
            query = query.limit(wanted.limit)
        # yield_per: a server-side cursor on PostgreSQL (psycopg2 would otherwise fetch every row at
        # once); SQLite's cursor steps through the rows as they are asked for anyway.
        result = self.conn.execute(query.execution_options(yield_per=BATCH))
        for row in result.mappings():
            item = dict(row)
            item["data_id"] = json.loads(item["data_id"]) if item["data_id"] else None
            yield item

    def archives(self) -> list[dict[str, Any]]:
        """Every archive, with the states of the files extracted from it."""
        rows = self.conn.execute(sa.select(archives).order_by(archives.c.id)).mappings().all()
        counts = self.conn.execute(
            sa.select(files.c.archive_id, files.c.state, sa.func.count())
            .where(files.c.archive_id.is_not(None)).group_by(files.c.archive_id, files.c.state)
        ).all()
        by_archive: dict[int, dict[str, int]] = {}
        for archive_id, state, count in counts:
            by_archive.setdefault(archive_id, {})[state] = int(count)
        return [{
            "path": row["path"],
            "state": row["state"],
            "dest": row["dest"],
            "members": row["members"],
            "published": row["published"],
            "failed": row["failed"],
            "stars_bundle": bool(row["stars_bundle"]),
            "instructions": row["instructions"],
            "error_kind": row["error_kind"],
            "error": row["error"],
            "files": by_archive.get(row["id"], {}),
        } for row in rows]


@contextlib.contextmanager
def view(engine: sa.Engine) -> Iterator[LedgerView]:
    """A :class:`LedgerView` whose queries all read one snapshot of the ledger."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite opens transactions only before writes; an explicit BEGIN makes the reads that
            # follow share one snapshot (WAL).  Closing the connection rolls it back.
            conn.exec_driver_sql("BEGIN")
        else:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield LedgerView(conn)
        finally:
            conn.rollback()

