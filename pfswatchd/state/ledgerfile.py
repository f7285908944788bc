"""The file under a SQLite ledger, watched while the service runs.

A SQLite ledger deleted (or replaced) while the service runs goes on taking writes: they land in the
unlinked file, and a restart finds an empty one.  So the service holds one connection on the file it
opened and compares, at every step, the file at the ledger's path with it (one ``stat``).  When they
differ it stops (issue 12, item 11), after writing what the held connection still reads into a new
file beside the ledger, so that the history can be put back.  A PostgreSQL ledger has no file: nothing
to watch.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from pfswatchd.state.ledgerdb import sqlite_path


class LedgerFile:
    """One connection held on a SQLite ledger's file, and that file's identity when it was opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held = sqlite3.connect(path, check_same_thread=False)
        # A first read opens the -wal file as well: after an unlink the connection still reads it all.
        self._held.execute("SELECT count(*) FROM sqlite_master").fetchone()
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)

    def lost(self) -> str | None:
        """Why the file at the ledger's path is not the one opened, or None when it is (or cannot be told)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return f"the ledger {self.path} was deleted or moved away while the service ran"
        except OSError:
            return None  # unreadable for a moment (a network filesystem): the next step looks again
        if (st.st_dev, st.st_ino) != self._identity:
            return f"the ledger {self.path} was replaced by another file while the service ran"
        return None

    def save_copy(self) -> Path:
        """Write what the held connection reads (the ledger as the service last wrote it) to a new file."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = self.path.with_name(f"{self.path.name}.saved-{stamp}-{os.getpid()}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(dest)
        try:
            self._held.backup(target)
        finally:
            target.close()
        return dest

    def close(self) -> None:
        self._held.close()


def hold(url: str) -> LedgerFile | None:
    """The held file of a SQLite ledger (after Ledger.create made it); None for PostgreSQL or in memory."""
    path = sqlite_path(url)
    return LedgerFile(path) if path is not None else None
