"""pfsConfigs that a one-shot command left waiting for their raws, remembered inside the repository.

``ingest-pfsconfig`` before ``ingest-raws`` is the order the PFS tutorial warns against, but data do
arrive that way.  The service keeps such a file WAITING in its ledger; a one-shot command has no
ledger, so it records the file here, and the next one-shot call into the same repository (either
command) ingests it once the visit has raws.  Why in the repository and not in the user's home or
the current folder: the promise is about the repository ("the next call into that repository"),
whoever runs it and from wherever.

The list is a small SQLite file beside ``butler.yaml`` (``pfswatchd-waiting.sqlite3``), created
only when a file has to wait; each row keeps what the waiting call was asked (instrument, RUN,
transfer mode), so the later ingest is the one the user asked for.  SQLite gives one writer at a
time, so two commands at once do not lose entries.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NAME = "pfswatchd-waiting.sqlite3"

_SCHEMA = """CREATE TABLE IF NOT EXISTS waiting (
    path TEXT PRIMARY KEY,
    instrument TEXT,
    run TEXT,
    transfer TEXT NOT NULL,
    reason TEXT NOT NULL,
    since REAL NOT NULL
)"""


@dataclass(frozen=True, slots=True)
class Waiting:
    path: Path
    instrument: str | None  # as given to ingest-pfsconfig (None: from the file's name)
    run: str | None  # the pfsConfig RUN asked for (None: the default)
    transfer: str
    reason: str
    since: float


class WaitList:
    """The waiting pfsConfigs of the repository at ``root``."""

    def __init__(self, root: str | Path) -> None:
        base = Path(root)
        folder = base.parent if base.suffix in (".yaml", ".yml") else base
        self.path = folder / NAME

    @contextlib.contextmanager
    def _connect(self, *, create: bool) -> Iterator[sqlite3.Connection | None]:
        if not create and not self.path.exists():
            yield None
            return
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            with conn:
                conn.execute(_SCHEMA)
                yield conn
        finally:
            conn.close()

    def entries(self) -> list[Waiting]:
        with self._connect(create=False) as conn:
            if conn is None:
                return []
            rows = conn.execute("SELECT path, instrument, run, transfer, reason, since FROM waiting ORDER BY since")
            return [Waiting(Path(p), i, r, t, why, s) for p, i, r, t, why, s in rows]

    def add(self, entries: list[Waiting]) -> None:
        if not entries:
            return
        with self._connect(create=True) as conn:
            assert conn is not None
            conn.executemany(
                "INSERT INTO waiting (path, instrument, run, transfer, reason, since) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET instrument = excluded.instrument, run = excluded.run, "
                "transfer = excluded.transfer, reason = excluded.reason",
                [(str(e.path), e.instrument, e.run, e.transfer, e.reason, e.since or time.time()) for e in entries],
            )

    def remove(self, paths: list[Path]) -> None:
        if not paths:
            return
        with self._connect(create=False) as conn:
            if conn is not None:
                conn.executemany("DELETE FROM waiting WHERE path = ?", [(str(p),) for p in paths])
