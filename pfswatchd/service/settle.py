"""When to look at a file: the settle rules, as pure bookkeeping (no I/O).

Events are hints, never proof (peer-lessons §1-3).  A path becomes *ready to
examine* when

- a close-after-write or rename-into-place event arrived after its last
  observed change (the writer says it is done), or it was found in a folder
  created just now (``Hint.NEW_FOLDER``: a file renamed there before the
  folder's watch existed has no event of its own), or
- its identity (size, mtime, ctime, inode) has not changed for
  ``settle_seconds`` (writers that never close, NFS, polling, rescans).
  The service asks the kernel for no per-write events, so it re-stats the
  few files still settling every ``restat_interval`` (:meth:`restat_due`).

The identity includes ctime, which no tool can set back, so ``tar`` and
``cp -p`` restoring old mtimes cannot make a growing file look settled; the
age of the mtime plays no part.

Examination then decides: a structurally incomplete file goes back to waiting
for its next change; one that stays incomplete and unchanged for
``truncated_after`` seconds is reported truncated.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

Identity = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


class Hint(StrEnum):
    CLOSED = "closed"  # close after write
    MOVED = "moved"  # renamed into place
    CREATED = "created"
    MODIFIED = "modified"
    RESCAN = "rescan"  # found by a directory walk
    RETRY = "retry"  # the ledger says it is due
    # Found in a folder just created, by a walk made after the folder's watch was placed: it was
    # renamed or written there before the watch existed (so its own event is lost), or it is still
    # being written and its close will be reported.  Either way, examine it now; completeness decides.
    NEW_FOLDER = "new-folder"


DONE_HINTS = frozenset({Hint.CLOSED, Hint.MOVED, Hint.RETRY, Hint.NEW_FOLDER})  # the writer is done


@dataclass(slots=True)
class _Entry:
    identity: Identity
    changed_at: float
    writer_done: bool
    stat_at: float  # when the identity was last looked at
    examined: Identity | None = None  # identity when last found incomplete
    reason: str | None = None


class Settler:
    """Tracks files that are not yet examined-and-complete."""

    def __init__(self, settle_seconds: float, truncated_after: float) -> None:
        self.settle_seconds = settle_seconds
        self.truncated_after = truncated_after
        self._entries: dict[str, _Entry] = {}
        self._examining: set[str] = set()

    def reconfigure(self, settle_seconds: float, truncated_after: float) -> None:
        """Change the two durations in place (a reload), keeping every tracked file."""
        self.settle_seconds = settle_seconds
        self.truncated_after = truncated_after

    def examining(self, paths: list[str]) -> None:
        """These paths are being examined: not ready again until :meth:`examined`."""
        self._examining.update(paths)

    def examined(self, path: str) -> None:
        self._examining.discard(path)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def observe(self, path: str, identity: Identity, hint: Hint, now: float) -> None:
        entry = self._entries.get(path)
        if entry is None:
            self._entries[path] = _Entry(identity, now, hint in DONE_HINTS, now)
            return
        entry.stat_at = now
        if identity != entry.identity:
            entry.identity = identity
            entry.changed_at = now
            entry.writer_done = hint in DONE_HINTS
        elif hint in DONE_HINTS:
            entry.writer_done = True

    def restat_due(self, now: float) -> list[str]:
        """Tracked paths to stat again: without write events, growth is seen by polling the few
        files that are still settling or incomplete."""
        interval = self.restat_interval
        return [p for p, e in self._entries.items() if p not in self._examining and now - e.stat_at >= interval]

    @property
    def restat_interval(self) -> float:
        return max(0.05, min(1.0, self.settle_seconds / 2))

    def ready(self, now: float) -> list[str]:
        """Paths to examine now."""
        result = []
        for path, entry in self._entries.items():
            if entry.examined == entry.identity or path in self._examining:
                continue  # found incomplete as it is now (wait for a change), or being examined
            if entry.writer_done or now - entry.changed_at >= self.settle_seconds:
                result.append(path)
        return result

    def incomplete(self, path: str, identity: Identity, reason: str, now: float) -> None:
        """Record that ``path`` was incomplete: it waits for a change, or :meth:`overdue` reports it."""
        entry = self._entries.get(path)
        if entry is None:
            return
        if identity != entry.identity:
            self.observe(path, identity, Hint.MODIFIED, now)
        entry.examined = identity
        entry.reason = reason
        entry.writer_done = False

    def overdue(self, now: float) -> list[tuple[str, str]]:
        """Incomplete files that have not changed for ``truncated_after``: (path, reason)."""
        return [
            (path, entry.reason or "is incomplete")
            for path, entry in self._entries.items()
            if entry.examined == entry.identity and now - entry.changed_at >= self.truncated_after
        ]

    def forget(self, path: str) -> None:
        self._entries.pop(path, None)
        self._examining.discard(path)

    def next_deadline(self, now: float) -> float | None:
        """Seconds until something becomes ready on its own (settle or truncation), or None."""
        deadlines = []
        for path, entry in self._entries.items():
            if path in self._examining:
                continue
            deadlines.append(entry.stat_at + self.restat_interval)
            if entry.examined == entry.identity:
                deadlines.append(entry.changed_at + self.truncated_after)
            else:
                deadlines.append(entry.changed_at + self.settle_seconds)
        return max(0.0, min(deadlines) - now) if deadlines else None
