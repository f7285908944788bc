"""rescan: find what events missed, at a cost on the ingest path that does not grow with history.

Events are hints (peer-lessons §3): inotify overflows, nothing is seen while the service is down, and
NFS writes by other hosts make no events at all.  A full rescan at start-up and every
``watch.rescan_interval`` is what guarantees that nothing is missed.  With link transfer every file of
a year stays in the watched folders, some 2 million of them, and looking at each one on the main
loop (stat, then its ledger row, ~30 us a file) stalled ingest for a minute every five minutes.

So a pass runs elsewhere, and the main loop only sees its conclusions:

- *In a worker process* (:func:`scan_folder`, one folder per task): list the folder, stat each file
  and compare it with its ledger row in one read per 500 files.  A file whose row has the same size,
  mtime and inode and a final state is done and is dropped there; only new files, changed files and
  unfinished ones come back as hints.  A process, not a thread: a thread doing this would hold
  Python's lock for 5 ms slices and every database or file call of the main loop would wait for one.
  The worker runs ``NICE`` steps below the service's CPU priority: on two busy cores a pass would
  otherwise take the core the main loop needs for a file that just arrived.
- *A driver thread* (:class:`Rescanner`) walks the tree folder by folder (the most recently changed
  folders first: after a restart the new files are in tonight's folder), keeps two folders in
  flight, and queues the hints; it stops queueing while many are waiting (bounded memory).
- *The main loop* takes at most ``slice_size`` rescan hints per step, after every event that has
  arrived, so a file dropped during a pass waits for one slice at most (a few milliseconds of
  ledger work), and READY and the systemd watchdog pings never wait for a pass.

Test hook (only tests set it): with ``PFSWATCHD_TEST_RESCAN_HOLD=<file>`` in the environment, every
pass stops after its first folder for as long as ``<file>`` exists, so a test can drop files and watch
the service while a pass is under way, deterministically.

Why not skip folders whose mtime has not changed: a folder's mtime changes when names are added or
removed, not when a file in it grows or is rewritten in place, so a pass that skipped such folders
would no longer see a file changed after it was recorded; and the worker already makes an unchanged
file cost nothing on the ingest path.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfswatchd.service.examiner import quiet_pool
from pfswatchd.service.settle import Hint
from pfswatchd.service.watch import MAX_DEPTH, list_folder, too_deep
from pfswatchd.state.ledger import FileState, Ledger
from pfswatchd.state.ledgerdb import FINAL_STATES

HOLD_ENV = "PFSWATCHD_TEST_RESCAN_HOLD"  # the test hook (see above)
SLICE = 1000  # rescan hints the main loop takes per step
IN_FLIGHT = 2  # folders being scanned at once (one being listed while the other's result is queued)
BACKLOG = 20  # slices waiting in the queue before the driver pauses
NICE = 10  # the worker's CPU priority below the service's (os.nice)

_FINAL = frozenset(state.value for state in FINAL_STATES)
_DONE = frozenset({FileState.INGESTED.value, FileState.DUPLICATE.value})
_LEDGERS: dict[str, Ledger] = {}  # one per worker process and ledger URL


@dataclass(frozen=True, slots=True)
class FolderScan:
    """What one folder held: the files that need a look, and the sub-folders to scan next."""

    hints: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    files: int = 0  # files looked at
    unreadable: dict[str, tuple[str, str]] = field(default_factory=dict)  # folder -> (error kind, reason)


def scan_folder(folder: str, ledger_url: str, recursive: bool = True, roots: tuple[Path, ...] = (),
                moves: bool = False) -> FolderScan:
    """List ``folder`` and return the files the ledger does not have as they are now (in the worker).

    With ``moves`` (``transfer = "move"``), also the files recorded ingested or duplicate that are still
    there: a kill between the ledger write and the removal of the source left them (the main loop
    completes the move).

    With ``roots``, a folder that is really elsewhere (a link swapped in on the way) is not listed.
    """
    unreadable: dict[str, tuple[str, str]] = {}

    def note(path: Path, kind: str, reason: str) -> None:
        unreadable[str(path)] = (kind, reason)

    found, subfolders = list_folder(folder, note, roots)
    identities: dict[str, tuple[int, int, int]] = {}
    for path, link in found:
        try:
            st = os.stat(path) if link else os.lstat(path)  # a link is recorded as what it points to
        except OSError:
            continue  # vanished meanwhile
        identities[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
    ledger = _LEDGERS.get(ledger_url)
    if ledger is None:
        ledger = _LEDGERS[ledger_url] = Ledger(ledger_url)
    known = ledger.known(list(identities))
    hints = []
    for path, identity in identities.items():
        row = known.get(path)
        if row is None or row[3] not in _FINAL or row[:3] != identity or (moves and row[3] in _DONE):
            hints.append(path)
    folders: list[str] = []
    if recursive:
        folders = sorted(subfolders, key=_changed, reverse=True)
    return FolderScan(hints, folders, len(identities), unreadable)


def _changed(folder: str) -> int:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return 0


class Rescanner:
    """Rescan passes in a worker process; the main loop takes their hints ``slice_size`` at a time."""

    def __init__(self, roots: tuple[Path, ...], ledger_url: str, *, recursive: bool, log: Any,
                 on_found: Callable[[], None] | None = None, slice_size: int = SLICE,
                 in_process: bool = False, max_depth: int = MAX_DEPTH, moves: bool = False) -> None:
        self.roots = roots
        self.max_depth = max_depth  # folders deeper below their root are recorded, not entered
        self.moves = moves  # transfer = "move": see scan_folder
        self.ledger_url = ledger_url
        self.recursive = recursive
        self.log = log
        self.on_found = on_found
        self.slice_size = slice_size
        self.passes = 0  # passes finished (for tests and logs)
        self._in_process = in_process  # scan in the driver thread (tests of the driver alone)
        self._hold = os.environ.get(HOLD_ENV) or None
        self._found: collections.deque[str] = collections.deque()
        self._unreadable: dict[str, tuple[str, str]] = {}  # folders a pass could not list, until taken
        self._lock = threading.Condition()
        self._requested = False
        self._running = False
        self._closing = False
        self._pool: ProcessPoolExecutor | None = None
        self._thread = threading.Thread(target=self._drive, name="pfswatchd-rescan", daemon=True)
        self._thread.start()

    # -- the main loop's side --------------------------------------------------------------------

    def start_pass(self) -> None:
        """Ask for a full pass: now, or as soon as the one running has finished."""
        with self._lock:
            self._requested = True
            self._lock.notify_all()

    @property
    def pending(self) -> bool:
        """Hints are waiting to be taken."""
        return bool(self._found)

    @property
    def busy(self) -> bool:
        """A pass is running or requested, or its hints are not all taken yet."""
        return self._running or self._requested or bool(self._found)

    def take(self) -> list[tuple[str, str]]:
        """The next slice of hints (at most ``slice_size``)."""
        with self._lock:
            count = min(self.slice_size, len(self._found))
            taken = [(self._found.popleft(), Hint.RESCAN.value) for _ in range(count)]
            self._lock.notify_all()
        return taken

    def take_unreadable(self) -> dict[str, tuple[str, str]]:
        """The folders passes found they cannot list, with the reason, since the last call."""
        with self._lock:
            taken, self._unreadable = self._unreadable, {}
        return taken

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._thread.join(timeout=10)
        self._drop_pool()

    # -- the driver thread -----------------------------------------------------------------------

    def _drive(self) -> None:
        while True:
            with self._lock:
                while not self._requested and not self._closing:
                    self._lock.wait()
                if self._closing:
                    return
                self._requested = False
                self._running = True
            try:
                self._one_pass()
            except Exception as exc:  # a bug: the next pass tries again; events keep flowing meanwhile
                self.log.error("rescan_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            finally:
                with self._lock:
                    self._running = False

    def _one_pass(self) -> None:
        began = time.monotonic()
        roots, max_depth = self.roots, self.max_depth
        stack = [(str(root), 0) for root in roots if root.is_dir()]
        stack.reverse()
        in_flight: collections.deque[tuple[str, int, Future[FolderScan] | None]] = collections.deque()
        folders = files = hinted = 0
        while stack or in_flight:
            if self._closing:
                return  # the service is stopping: the pass ends here (the next start rescans anyway)
            while stack and len(in_flight) < IN_FLIGHT:
                folder, depth = stack.pop()
                in_flight.append((folder, depth, self._submit(folder)))
            folder, depth, future = in_flight.popleft()
            result = self._result(folder, future)
            folders += 1
            files += result.files
            hinted += len(result.hints)
            if depth < max_depth:
                stack.extend((sub, depth + 1) for sub in reversed(result.folders))  # most recent next
            else:  # one level too deep: recorded, not entered
                for sub in result.folders:
                    path, kind, reason = too_deep(sub, roots, max_depth)
                    result.unreadable[str(path)] = (kind, reason)
            if result.unreadable:
                with self._lock:
                    self._unreadable.update(result.unreadable)
                if self.on_found is not None:
                    self.on_found()
            if result.hints and not self._queue(result.hints):
                return  # closing
            while self._hold and os.path.exists(self._hold) and not self._closing:
                time.sleep(0.05)
        self.passes += 1
        self.log.info("rescan_done", folders=folders, files=files, hinted=hinted,
                      seconds=round(time.monotonic() - began, 3))

    def _submit(self, folder: str) -> Future[FolderScan] | None:
        if self._in_process:
            return None
        pool = self._pool
        if pool is None:
            # forkserver: the service has threads, which fork() must not copy (as for the examiner).
            # Ctrl-C in a terminal does not reach its worker; niced: on a busy host a pass takes longer,
            # the files that arrive meanwhile do not (ingest runs at the service's priority).  Started
            # outside the lock: starting can take seconds (the fork server's imports), and the main
            # loop takes hints under it.
            pool = quiet_pool(1, multiprocessing.get_context("forkserver"), nice=NICE)
            with self._lock:
                closing = self._closing
                if not closing:
                    self._pool = pool
            if closing:  # close() began meanwhile: a pool kept now would outlive the service's exit
                pool.shutdown(wait=False, cancel_futures=True)
                return None
        try:
            return pool.submit(scan_folder, folder, self.ledger_url, self.recursive, self.roots, self.moves)
        except RuntimeError:  # the pool broke (its worker was killed): scan here this time, a new pool next
            self._drop_pool()
            return None

    def _result(self, folder: str, future: Future[FolderScan] | None) -> FolderScan:
        if self._closing and future is None:
            return FolderScan()  # submitted as close() began: not scanned (the pass ends)
        if future is not None:
            try:
                return future.result()
            except Exception as exc:
                if self._closing:  # close() shut the pool down under this pass: nothing to report
                    return FolderScan()
                self.log.warning("rescan_worker_failed", folder=folder, error=f"{type(exc).__name__}: {exc}")
                self._drop_pool()
        return scan_folder(folder, self.ledger_url, self.recursive, self.roots, self.moves)

    def _drop_pool(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _queue(self, hints: list[str]) -> bool:
        """Queue ``hints``, waiting while the backlog is full; False when closing."""
        with self._lock:
            while len(self._found) >= BACKLOG * self.slice_size and not self._closing:
                self._lock.wait(timeout=1.0)
            if self._closing:
                return False
            self._found.extend(hints)
        if self.on_found is not None:
            self.on_found()
        return True
