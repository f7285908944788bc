"""When to look at a file: the settle rules, as pure bookkeeping (no I/O).

Events are hints, never proof (peer-lessons §1-3).  A path becomes *ready to
examine* when

- a close-after-write or rename-into-place event arrived after its last
  observed change (the writer says it is done), or
- it was found in a folder created just now (``Hint.NEW_FOLDER``: a file
  renamed there before the folder's watch existed has no event of its own),
  its blocks are all allocated (the service's part, see ``Pipeline``), and
  either its ctime is later than its mtime (:func:`changed_after_written`:
  renamed, linked or given its times after its last write, so at once) or a
  second stat at least ``NEW_FOLDER_QUIET`` later finds it unchanged, or
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
    # being written and its close will be reported.  Nothing on disk tells the two apart at once, so
    # it counts as finished at once when its ctime is later than its mtime (changed_after_written),
    # otherwise when a second stat NEW_FOLDER_QUIET later finds it unchanged (a writer still at work
    # changes its mtime); examination then decides, as for every file.
    NEW_FOLDER = "new-folder"


DONE_HINTS = frozenset({Hint.CLOSED, Hint.MOVED, Hint.RETRY})  # the writer is done

# How long a file found in a just-created folder must stay unchanged (two stats this far apart) to
# count as finished: long against the gap between a working writer's writes (which change its mtime),
# short against the settle time it replaces.  A writer that preallocates its file in a new folder and
# then pauses longer than this would be taken for finished, were its holes not seen first (the
# service looks at st_blocks; a writer that fallocates real blocks and pauses is the case left, and
# its file is then complete only in size: issue 12).
NEW_FOLDER_QUIET = 0.1


def changed_after_written(identity: Identity) -> bool:
    """The inode changed after the file's data last did: ctime later than mtime.

    Every write (and ``ftruncate``, ``fallocate``) sets both to now, so a writer at work keeps them
    equal; a rename sets the ctime alone (Linux, on every filesystem it mounts for data: ext4, XFS,
    btrfs, tmpfs, NFS), as do ``tar``, ``cp -p`` and ``rsync`` when they set the times at the very end.
    So a file found in a new folder whose ctime is later than its mtime was finished and then moved
    or stamped: it needs no second stat.  Left open, as for the quiet time: a writer that changes a
    file's mode or owner between two of its writes.  Where a system does not set the ctime on a rename
    (POSIX leaves it open), the two stay equal and the quiet time decides, as before.
    """
    return identity[2] > identity[1]


@dataclass(slots=True)
class _Entry:
    identity: Identity
    changed_at: float
    writer_done: bool
    stat_at: float  # when the identity was last looked at
    examined: Identity | None = None  # identity when last found incomplete
    reason: str | None = None
    quiet_from: float | None = None  # found in a new folder with this identity at this time


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
        quiet_from = now if hint is Hint.NEW_FOLDER else None
        done = hint in DONE_HINTS or (hint is Hint.NEW_FOLDER and changed_after_written(identity))
        if entry is None:
            self._entries[path] = _Entry(identity, now, done, now, quiet_from=quiet_from)
            return
        entry.stat_at = now
        if identity != entry.identity:
            entry.identity = identity
            entry.changed_at = now
            entry.writer_done = done
            entry.quiet_from = quiet_from  # a writer at work: its close, or the settle time, decides
        elif done and (hint in DONE_HINTS or entry.examined != identity):
            entry.writer_done = True
        elif quiet_from is not None and entry.quiet_from is None and entry.examined != identity:
            entry.quiet_from = quiet_from

    def closed(self, path: str) -> bool:
        """The writer of ``path`` was seen to finish it (a close after writing, or a rename into place)."""
        entry = self._entries.get(path)
        return entry is not None and entry.writer_done

    @property
    def new_folder_quiet(self) -> float:
        return min(NEW_FOLDER_QUIET, self.settle_seconds)

    def _quiet(self, entry: _Entry) -> bool:
        """Found in a new folder and unchanged at a stat at least ``new_folder_quiet`` later."""
        return entry.quiet_from is not None and entry.stat_at - entry.quiet_from >= self.new_folder_quiet

    def restat_due(self, now: float) -> list[str]:
        """Tracked paths to stat again: without write events, growth is seen by polling the few
        files that are still settling or incomplete."""
        interval = self.restat_interval
        quiet = self.new_folder_quiet
        return [p for p, e in self._entries.items() if p not in self._examining and (
            now - e.stat_at >= interval
            or (e.quiet_from is not None and not self._quiet(e) and now - e.quiet_from >= quiet))]

    @property
    def restat_interval(self) -> float:
        return max(0.05, min(1.0, self.settle_seconds / 2))

    def ready(self, now: float) -> list[str]:
        """Paths to examine now."""
        result = []
        for path, entry in self._entries.items():
            if entry.examined == entry.identity or path in self._examining:
                continue  # found incomplete as it is now (wait for a change), or being examined
            if entry.writer_done or self._quiet(entry) or now - entry.changed_at >= self.settle_seconds:
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
        entry.quiet_from = None

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
            if entry.quiet_from is not None and not self._quiet(entry):
                deadlines.append(entry.quiet_from + self.new_folder_quiet)
            if entry.examined == entry.identity:
                deadlines.append(entry.changed_at + self.truncated_after)
            else:
                deadlines.append(entry.changed_at + self.settle_seconds)
        return max(0.0, min(deadlines) - now) if deadlines else None
