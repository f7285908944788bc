"""The ledger's database: states, tables and engine settings (SQLite or PostgreSQL).

All times are Unix epoch seconds (floats), so the same schema serves both databases.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pfswatchd.errors import PfsWatchError
from pfswatchd.logconfig import redact
from pfswatchd.nametext import escaped

SCHEMA_VERSION = 1
CHUNK = 500  # rows per statement (IN lists, executemany)


class FileState(StrEnum):
    PENDING = "pending"
    INGESTING = "ingesting"
    WAITING = "waiting"
    INGESTED = "ingested"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    FAILED = "failed"
    QUARANTINED = "quarantined"


class ArchiveState(StrEnum):
    PENDING = "pending"  # seen; waiting to be whole, or for a retry
    EXTRACTING = "extracting"  # claimed by an instance
    PUBLISHED = "published"  # extracted and published; its files flow into ingest
    OPERATOR = "operator"  # a STARS2 bundle: the operator must run zadmin/unpack.py
    DONE = "done"  # published, and archives.after applied
    FAILED = "failed"
    QUARANTINED = "quarantined"


ARCHIVE_FINAL = frozenset({ArchiveState.PUBLISHED, ArchiveState.OPERATOR, ArchiveState.DONE, ArchiveState.FAILED,
                           ArchiveState.QUARANTINED})

FINAL_STATES = frozenset(
    {FileState.INGESTED, FileState.DUPLICATE, FileState.IGNORED, FileState.FAILED, FileState.QUARANTINED}
)
CLAIMABLE_STATES = (FileState.PENDING.value, FileState.WAITING.value)

class SafeText(sa.types.TypeDecorator[str]):
    """TEXT that never refuses a string: a byte that is not UTF-8 (a lone surrogate, from a file name) is
    written as ``\\xNN``.  The pipeline records such names escaped already; this is the net under every
    other text that quotes a name (a reason, an archive member, a folder)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return escaped(value) if isinstance(value, str) else value


metadata = sa.MetaData()

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", SafeText, nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("size", sa.BigInteger),
    sa.Column("mtime_ns", sa.BigInteger),
    sa.Column("inode", sa.BigInteger),
    sa.Column("instrument", sa.String(16)),
    sa.Column("visit", sa.Integer, index=True),
    sa.Column("data_id", sa.Text),
    sa.Column("dataset_id", sa.String(36), index=True),
    sa.Column("run", sa.String(255)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error_kind", sa.String(32)),
    sa.Column("error", SafeText),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("complete_at", sa.Float),
    sa.Column("ingested_at", sa.Float),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("next_attempt_at", sa.Float, index=True),
    sa.Column("claimed_by", sa.String(255)),
    sa.Column("claim_expires", sa.Float),
    sa.Column("archive_id", sa.Integer),
    sa.Column("quarantine_path", SafeText),
    # Per-archive file counts (status) read this index alone, without a table lookup per file.
    sa.Index("ix_files_archive_state", "archive_id", "state"),
    # Changed since (status --since) without a scan of every row.
    sa.Index("ix_files_updated_at", "updated_at"),
)

archives = sa.Table(
    "archives",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", SafeText, nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("size", sa.BigInteger),
    sa.Column("mtime_ns", sa.BigInteger),
    sa.Column("inode", sa.BigInteger),
    sa.Column("dest", SafeText),
    sa.Column("members", sa.Integer),
    sa.Column("published", sa.Integer),
    sa.Column("failed", sa.Integer),
    sa.Column("stars_bundle", sa.Boolean),
    sa.Column("instructions", SafeText),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error_kind", sa.String(32)),
    sa.Column("error", SafeText),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("done_at", sa.Float),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("next_attempt_at", sa.Float),
    sa.Column("claimed_by", sa.String(255)),
    sa.Column("claim_expires", sa.Float),
    sa.Column("after", sa.String(16)),
)

# The state of a file that carries a warning, as a literal in the SQL, as in ix_files_warnings (partial_indexes).
WARNED_STATE = files.c.state == sa.literal_column(f"'{FileState.INGESTED.value}'")

# Ledgers made before an index was added get it at their next start (Ledger.create), once: on 2 million
# rows that takes a few seconds.  ix_files_archive_id was replaced by ix_files_archive_state.
DROPPED_INDEXES = ("ix_files_archive_id",)

# One row per visit, kept by the service's monitor (pfswatchd/monitor): the cameras its pfsConfig declares,
# a summary of its files, when it first was complete, and its completion hook.  Added after the first
# release: Ledger.create makes it in existing ledgers (CREATE TABLE only; no existing table is altered).
visits = sa.Table(
    "visits",
    metadata,
    sa.Column("visit", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("instrument", sa.String(16)),
    sa.Column("expected", sa.Text),  # cameras the pfsConfig declares, comma-separated (b1,r1,...)
    sa.Column("expected_from", sa.String(32)),  # W_CAMMSK | ARMS x fibres
    sa.Column("expected_subset", sa.Integer),  # the pfsConfig it came from: 0 full, 1-99 a customised copy
    sa.Column("cameras", sa.Text),  # JSON {camera: [state, reason]} of the files found
    sa.Column("pfsconfig", sa.String(16)),  # the state of its pfsConfig; null when none was seen
    sa.Column("missing", sa.Text),  # what keeps it from being complete, comma-separated
    sa.Column("complete", sa.Boolean, nullable=False, default=False),
    sa.Column("first_seen_at", sa.Float, nullable=False),
    sa.Column("complete_at", sa.Float),  # the first time it was complete (never cleared)
    sa.Column("alerted_at", sa.Float),  # the incomplete alert was raised (cleared when complete)
    sa.Column("hook_state", sa.String(16)),  # see VisitRecords
    sa.Column("hook_by", sa.String(255)),
    sa.Column("hook_started_at", sa.Float),
    sa.Column("hook_finished_at", sa.Float),
    sa.Column("hook_exit", sa.Integer),
    sa.Column("hook_output", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False),
    # The monitor's start and its every look ask for these without reading every visit of a year (~170,000
    # rows): where it picks up after a restart (max updated_at), those alerted, running hooks, and the
    # complete/incomplete counts (read from the index alone); the visits never complete: ix_visits_incomplete
    # (partial_indexes).
    sa.Index("ix_visits_updated_at", "updated_at"),
    sa.Index("ix_visits_alerted_at", "alerted_at"),
    sa.Index("ix_visits_hook_state", "hook_state"),
    sa.Index("ix_visits_complete", "complete"),
)


def partial_indexes(dialect: str) -> tuple[str, ...]:
    """The partial indexes of the ledger, as DDL for ``dialect``; Ledger.create makes those missing.

    Each holds the few rows one of status's questions asks for, among millions, in the order it wants
    them.  SQLite uses a partial index only where the query's WHERE contains the index's terms as
    written (a bound parameter does not match a literal), so the queries write the same literals.

    - ix_files_warnings: ingested files that carry a warning (LedgerView.recent_warnings), newest first.
      On SQLite it holds the columns the query reads (covering): without table statistics SQLite
      cannot tell it is small, and a plain one ties with a scan of ix_files_updated_at, which one of
      them wins depending on the order the indexes were made in.  PostgreSQL knows its size, and an
      index entry there must stay under 2,704 bytes (a path and a message can be longer).
    - ix_visits_incomplete: visits never complete (the visits_incomplete alert), oldest first.
    """
    warned = "updated_at, id, path, state, error_kind, error" if dialect == "sqlite" else "updated_at, id"
    return (f"CREATE INDEX IF NOT EXISTS ix_files_warnings ON files ({warned}) "
            f"WHERE state = '{FileState.INGESTED.value}' AND error IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS ix_visits_incomplete ON visits (first_seen_at) WHERE complete_at IS NULL")


meta = sa.Table(
    "pfswatchd_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text),
)



def free_for(table: sa.Table, instance: str, now: float) -> sa.ColumnElement[bool]:
    """A row ``instance`` may claim or reserve: nobody holds it, its holder's claim expired, or it holds it."""
    return sa.or_(table.c.claimed_by.is_(None), table.c.claim_expires < now, table.c.claimed_by == instance)


class NoLedgerError(PfsWatchError):
    """``status`` or ``retry`` found no ledger where the configuration says it is."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite ledger URL (absolute); None for PostgreSQL or an in-memory database."""
    if not url.startswith("sqlite"):
        return None
    database = url.split("///", 1)[-1]
    return None if database in ("", ":memory:") else Path(database).absolute()


def missing_ledger(url: str) -> str | None:
    """Where the ledger was looked for, if it is not there; None if it is.  Creates nothing.

    A SQLite ledger is a file (make_engine would create its folder, and connecting would create
    the file); a PostgreSQL one is the ``files`` table in an existing database.
    """
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is None:
            return url
        return None if path.is_file() else str(path)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            found = sa.inspect(conn).has_table(files.name)
    finally:
        engine.dispose()
    return None if found else f"{redact(url)} (the database has no '{files.name}' table)"


def make_engine(url: str) -> Engine:
    """An engine with the settings a long-running service needs.

    SQLite: WAL (readers never block the writer), a 30 s busy timeout, and
    NORMAL synchronous (durable at each checkpoint; a crash loses at most the
    last transactions, which the rescan re-finds).  PostgreSQL: pre-ping and a
    bounded pool, so a restarted server or an idle timeout costs a reconnect,
    not an error.
    """
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=4, max_overflow=4, pool_recycle=1800, pool_timeout=30
    )


def upsert_insert(conn: Connection, table: sa.Table) -> Any:
    """An INSERT that supports ON CONFLICT DO NOTHING on both databases."""
    from sqlalchemy.dialects import postgresql, sqlite  # here: status, which never writes, does not import them

    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
