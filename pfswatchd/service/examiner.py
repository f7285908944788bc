"""Examine files in worker processes, so header reads overlap the butler's work.

Reading headers is the one per-file cost pfswatchd adds to the butler's own
ingest, and on a network filesystem it is mostly waiting.  With
``ingest.examine_workers > 0`` the service sends the paths that are ready to a
small process pool and ingests what has already been examined meanwhile; with
0 it examines in its own thread (simplest, for debugging).  Results carry
everything the ingest step needs (data ID, visit values, headers); nothing is
shared between processes.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

from pfswatchd import faults
from pfswatchd.files.corrections import NONE, HeaderCorrections
from pfswatchd.files.examine import Examination, examine
from pfswatchd.files.visitrecord import with_visit_values
from pfswatchd.model import RawFile

CHUNK = 64
EARLY = 64  # files examined at once in the service's thread per submission while the workers start
STARTING_TIMEOUT = 20.0  # close() waits this long for workers still starting


def examine_many(paths: list[str], corrections: HeaderCorrections = NONE) -> list[Examination]:
    """Examine ``paths``; the first raw of each visit among them also gets its visit values computed
    (:func:`~pfswatchd.files.visitrecord.with_visit_values`): in a worker, that is work the service's
    thread does not do (the visit's other raws need none, and a visit already registered ignores them)."""
    results = []
    visits: set[tuple[str, int]] = set()
    for path in paths:
        found = examine(Path(path), corrections=corrections)
        raw = found.classified
        if isinstance(raw, RawFile) and (raw.instrument, raw.visit) not in visits:
            visits.add((raw.instrument, raw.visit))
            found = replace(found, classified=with_visit_values(raw))
        results.append(found)
    return results


def exit_with_service(service_pid: int, nice: int = 0) -> None:
    """Worker initializer: ignore Ctrl-C, and leave when the service is gone; ``nice``: lower the worker's
    CPU priority by that much (the rescan's worker, so that it never competes with ingest for a core).

    Ctrl-C in a terminal sends SIGINT to the whole process group, workers included; the service
    stops them itself (a worker that took it would print a KeyboardInterrupt traceback and die).
    A worker is a child of the forkserver, not of the service, so it would outlive a service killed
    with SIGKILL (outside systemd, which kills the whole cgroup); this thread ends it within a second.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice:
        os.nice(nice)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(service_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                continue

    threading.Thread(target=watch, name="pfswatchd-parent-watch", daemon=True).start()


def quiet_pool(workers: int, context: multiprocessing.context.BaseContext, nice: int = 0) -> ProcessPoolExecutor:
    """A process pool whose workers (and fork server) a Ctrl-C in the terminal does not reach; ``nice``:
    see :func:`exit_with_service`.

    SIGINT is blocked (in the calling thread) while the fork server and the workers start: they inherit
    the mask (a Ctrl-C then cannot reach them before their initializer ignores it); a Ctrl-C meanwhile
    goes to a thread that does not block it (the service's main thread), or stays pending until the
    mask is restored.  The resource tracker is started
    first: starting it unblocks SIGINT (CPython's resource_tracker does that unconditionally after
    spawning), and later calls find it running.
    """
    resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=exit_with_service,
                                   initargs=(os.getpid(), nice))
        # Start the workers now, inside the mask (ProcessPoolExecutor starts them on the first submit).
        for started in [pool.submit(os.getpid) for _ in range(workers)]:
            started.result()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pool


class Examiner:
    """Examine files in ``workers`` processes (0: in the calling thread).

    The workers start in a thread of their own (the fork server imports the examining code, and on a
    loaded host that takes seconds): the service says READY without waiting for them.  Until they are
    up, the first ``EARLY`` files of each submission are examined in the calling thread at once (the
    service has the examining code imported already), and the rest wait for the workers.
    """

    def __init__(self, workers: int, on_done: Callable[[], None] | None = None,
                 corrections: HeaderCorrections = NONE, log: Any = None) -> None:
        self.workers = workers
        self.on_done = on_done
        self.corrections = corrections
        self.log = log
        self._lock = threading.Lock()
        self._done: list[Examination] = []
        self._pool: ProcessPoolExecutor | None = None
        self._held: list[str] = []  # submitted while the workers start, beyond what was examined at once
        self._starting: threading.Thread | None = None
        if workers > 0:
            # forkserver: the service has threads (the watcher), which fork() must not copy.
            # The fork server imports the examining code once (astropy takes a third of a second).
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["pfswatchd.files.examine", *faults.preload()])
            self._starting = threading.Thread(target=self._start, args=(context,), name="pfswatchd-examiner-start",
                                              daemon=True)
            self._starting.start()

    def _start(self, context: multiprocessing.context.BaseContext) -> None:
        began = time.monotonic()
        try:
            pool: ProcessPoolExecutor | None = quiet_pool(self.workers, context)
            failed = None
        except Exception as exc:  # no workers: every file is examined in the service's thread instead
            pool, failed = None, f"{type(exc).__name__}: {exc}"
        with self._lock:  # submit() sees either the workers starting (and holds) or their outcome
            self._pool = pool
            self._starting = None
            held, self._held = self._held, []
        if self.log is not None:
            if failed is None:
                self.log.info("examiner_started", workers=self.workers, seconds=round(time.monotonic() - began, 3))
            else:
                self.log.warning("examiner_unavailable", reason=failed,
                                 action="files are examined in the service's own thread")
        if held:
            self.submit(held)

    def submit(self, paths: list[str]) -> None:
        if not paths:
            return
        with self._lock:
            if self._starting is not None:
                paths, later = paths[:EARLY], paths[EARLY:]
                self._held.extend(later)
            pool = self._pool
        if pool is None:
            results = examine_many(paths, self.corrections)
            with self._lock:
                self._done.extend(results)
            if self.on_done is not None and threading.current_thread() is not threading.main_thread():
                self.on_done()  # held files examined here, off the main loop: wake it
            return
        # Spread a burst over the workers; a lone file goes as a task of its own.
        size = max(1, min(CHUNK, -(-len(paths) // (self.workers * 2))))
        for start in range(0, len(paths), size):
            chunk = paths[start : start + size]
            future = pool.submit(examine_many, chunk, self.corrections)
            future.add_done_callback(functools.partial(self._finished, chunk=chunk))

    def _finished(self, future: Future[list[Examination]], chunk: list[str]) -> None:
        try:
            results = future.result()
        except Exception:
            # A worker died (e.g. killed): examine here instead, nothing is lost.
            results = examine_many(chunk, self.corrections)
        with self._lock:
            self._done.extend(results)
        if self.on_done is not None:
            self.on_done()

    def results(self) -> list[Examination]:
        with self._lock:
            done, self._done = self._done, []
        return done

    def close(self) -> None:
        starting = self._starting
        if starting is not None:
            starting.join(timeout=STARTING_TIMEOUT)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
