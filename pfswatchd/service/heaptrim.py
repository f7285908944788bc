"""Giving the heap that a burst freed back to the operating system once the service goes quiet.

A burst of ingest allocates and frees tens of megabytes through malloc: the registry's result rows and
statement parameters, SQLite's page cache growing, the examiner's results.  glibc keeps freed memory
in its heap for reuse, and it only shrinks the heap from the top, so the long-lived objects allocated
among the transient ones hold it: measured with bench_scale (40,000 files), 26-33 MiB of the heap was
free yet resident after 20,000 files, and the daemon's RSS rose ~80 MiB before it levelled off.
``malloc_trim(0)`` hands every whole free page back (``madvise``), inside the heap too: after a burst
RSS fell by 15-30 MiB each time.

So once the service has had nothing to do for ``QUIET`` seconds after a step with files (the burst is
over), it trims, and while it stays quiet it trims again if its RSS has grown by ``GROWN`` MiB since
(the monitor's look and the status counts that follow a burst allocate and free a few megabytes more:
measured, +7 MiB 3 s after the first trim), at most every ``MIN_INTERVAL`` seconds.  A trim takes a few
milliseconds (4 ms at 40,000 files ingested), between steps, when nothing waits.
Where malloc has no ``malloc_trim`` (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from collections.abc import Callable
from typing import NamedTuple

QUIET = 1.0  # seconds without files to look at before a trim
GROWN = 4.0  # MiB of RSS grown since the last trim that make a quiet service trim again
MIN_INTERVAL = 10.0  # seconds between two trims, at least
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class Trimmed(NamedTuple):
    seconds: float
    rss_before_mib: float | None
    rss_after_mib: float | None


class HeapTrim:
    """Decides when to trim: ``quiet`` seconds after the last busy step, then again while quiet if the
    RSS (``rss``) grew by ``grown`` MiB since; at most every ``min_interval`` seconds."""

    def __init__(self, trim: Callable[[], object] | None = None, min_interval: float = MIN_INTERVAL,
                 quiet: float = QUIET, grown: float = GROWN, clock: Callable[[], float] = time.monotonic,
                 rss: Callable[[], float | None] | None = None) -> None:
        self._trim = _malloc_trim() if trim is None else trim
        self.min_interval = min_interval
        self.quiet = quiet
        self.grown = grown
        self._rss = rss_mib if rss is None else rss
        self._after: float | None = None  # RSS after the last trim
        self._clock = clock
        self._worked = False  # a busy step since the last trim
        self._last = float("-inf")
        self._busy_at = float("-inf")
        self.trims = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def tick(self, busy: bool) -> Trimmed | None:
        """Called after every step; trims when the burst is over. Returns how long the trim took and the
        RSS before and after it, or None if it did not trim."""
        now = self._clock()
        if busy:
            self._worked = True
            self._busy_at = now
            return None
        if self._trim is None or now - self._last < self.min_interval:
            return None
        if self._worked:
            if now - self._busy_at < self.quiet:
                return None
            before = self._rss()
        else:
            if self._after is None:
                return None  # nothing done since start-up
            before = self._rss()
            if before is None or before - self._after < self.grown:
                self._last = now  # looked: look again in min_interval
                return None
        self._worked = False
        self._last = now
        start = time.perf_counter()
        self._trim()
        self.trims += 1
        self._after = self._rss()
        return Trimmed(time.perf_counter() - start, before, self._after)


def rss_mib() -> float | None:
    """This process's resident set in MiB (Linux's /proc/self/statm; None elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return round(int(statm.read().split()[1]) * PAGE / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None
