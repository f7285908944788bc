"""The ledger's archive records: one row per archive, its state, and the files it yielded."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pfswatchd.state.ledgerdb import ARCHIVE_FINAL, CHUNK, ArchiveState, FileState, archives, files, free_for


class ArchiveRecords:
    """Ledger operations on the archives table (a base of Ledger)."""

    engine: Engine
    instance: str
    claim_timeout: float

    def upsert_archive(self, path: str, size: int, mtime_ns: int, inode: int, now: float) -> bool:
        """Record an archive seen on disk; True if it needs work (new, changed, or not finished)."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(archives).where(archives.c.path == path)).mappings().first()
            if row is None:
                try:
                    conn.execute(archives.insert().values(path=path, state=ArchiveState.PENDING.value, size=size,
                                                          mtime_ns=mtime_ns, inode=inode, attempts=0, seen_at=now,
                                                          updated_at=now))
                except sa.exc.IntegrityError:
                    return False  # another instance recorded it at the same moment
                return True
            changed = (row["size"], row["mtime_ns"], row["inode"]) != (size, mtime_ns, inode)
            if changed:
                conn.execute(archives.update().where(archives.c.path == path).values(
                    size=size, mtime_ns=mtime_ns, inode=inode, updated_at=now, state=ArchiveState.PENDING.value,
                    error_kind=None, error=None, next_attempt_at=None))
                return True
            return row["state"] not in {s.value for s in ARCHIVE_FINAL}

    def claim_archive(self, path: str, now: float) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                archives.update()
                .where(archives.c.path == path, archives.c.state.in_([ArchiveState.PENDING.value,
                                                                      ArchiveState.EXTRACTING.value]),
                       free_for(archives, self.instance, now))
                .values(state=ArchiveState.EXTRACTING.value, claimed_by=self.instance,
                        claim_expires=now + self.claim_timeout, attempts=archives.c.attempts + 1, updated_at=now)
            )
        return bool(result.rowcount)

    def finish_archive(self, path: str, state: ArchiveState, **values: Any) -> None:
        now = time.time()
        if state in ARCHIVE_FINAL and state is not ArchiveState.PUBLISHED:
            values.setdefault("done_at", now)
        with self.engine.begin() as conn:
            conn.execute(archives.update().where(archives.c.path == path).values(
                state=state.value, claimed_by=None, claim_expires=None, updated_at=now, **values))

    def archive_attempts(self, path: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(archives.c.attempts).where(archives.c.path == path)).scalar() or 1)

    def due_archives(self, now: float) -> list[str]:
        """Archives waiting for a retry whose time has come and that nobody holds."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(archives.c.path).where(
                    archives.c.state == ArchiveState.PENDING.value, archives.c.next_attempt_at <= now,
                    sa.or_(archives.c.claimed_by.is_(None), archives.c.claim_expires < now))
            ).all()
        return [row.path for row in rows]

    def archive_id(self, path: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(archives.c.id).where(archives.c.path == path)).scalar()

    def link_archive(self, paths: Sequence[str], archive_id: int | None) -> None:
        if archive_id is None or not paths:
            return
        with self.engine.begin() as conn:
            for start in range(0, len(paths), CHUNK):
                conn.execute(files.update().where(files.c.path.in_(list(paths[start : start + CHUNK])))
                             .values(archive_id=archive_id))

    def record_member_failure(self, path: str, archive_id: int | None, kind: str, error: str, now: float) -> None:
        """A member that was not published (checksum mismatch): a failed row named ``archive#member``."""
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(files.c.id).where(files.c.path == path)).first()
            values = dict(kind="member", state=FileState.FAILED.value, error_kind=kind, error=error,
                          archive_id=archive_id, updated_at=now)
            if exists:
                conn.execute(files.update().where(files.c.path == path).values(**values))
            else:
                conn.execute(files.insert().values(path=path, attempts=1, seen_at=now, **values))

    def archive_rows(self) -> list[dict[str, Any]]:
        """Every archive with the states of the files extracted from it."""
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(sa.select(archives).order_by(archives.c.id)).mappings()]
            counts = conn.execute(
                sa.select(files.c.archive_id, files.c.state, sa.func.count())
                .where(files.c.archive_id.is_not(None)).group_by(files.c.archive_id, files.c.state)
            ).all()
        by_archive: dict[int, dict[str, int]] = {}
        for archive_id, state, count in counts:
            by_archive.setdefault(archive_id, {})[state] = int(count)
        for row in rows:
            row["files"] = by_archive.get(row["id"], {})
        return rows
