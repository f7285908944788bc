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
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from pfswatchd.files.corrections import NONE, HeaderCorrections
from pfswatchd.files.examine import Examination, examine

CHUNK = 64


def examine_many(paths: list[str], corrections: HeaderCorrections = NONE) -> list[Examination]:
    return [examine(Path(path), corrections=corrections) for path in paths]


def exit_with_service(service_pid: int) -> None:
    """Worker initializer: leave when the service is gone.

    A worker is a child of the forkserver, not of the service, so it would outlive a service killed
    with SIGKILL (outside systemd, which kills the whole cgroup); this thread ends it within a second.
    """

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


class Examiner:
    def __init__(self, workers: int, on_done: Callable[[], None] | None = None,
                 corrections: HeaderCorrections = NONE) -> None:
        self.workers = workers
        self.on_done = on_done
        self.corrections = corrections
        self._lock = threading.Lock()
        self._done: list[Examination] = []
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            # forkserver: the service has threads (the watcher), which fork() must not copy.
            # The fork server imports the examining code once (astropy takes a third of a second), and
            # the workers are started here, before the service says READY, not on the first file.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["pfswatchd.files.examine"])
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=exit_with_service,
                                             initargs=(os.getpid(),))
            for warm in [self._pool.submit(os.getpid) for _ in range(workers)]:
                warm.result()

    def submit(self, paths: list[str]) -> None:
        if not paths:
            return
        if self._pool is None:
            results = examine_many(paths, self.corrections)
            with self._lock:
                self._done.extend(results)
            return
        # Spread a burst over the workers; a lone file goes as a task of its own.
        size = max(1, min(CHUNK, -(-len(paths) // (self.workers * 2))))
        for start in range(0, len(paths), size):
            chunk = paths[start : start + size]
            future = self._pool.submit(examine_many, chunk, self.corrections)
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
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
