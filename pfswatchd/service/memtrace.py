"""Memory tracing that only tests and benchmarks enable: what grows in a running service.

With ``PFSWATCHD_MEMTRACE=<file>`` in the service's environment, each SIGUSR2 makes the main loop
append to ``<file>``, between two steps: the process's RSS (anonymous and file-backed), what glibc's
malloc holds and has free, Python's allocated blocks, the objects the collector tracks (not those
frozen at start-up) counted by type with each type's change since the previous report, and how many
compiled statements each SQLAlchemy engine caches (a few of them shown).  Options, also from the
environment: ``PFSWATCHD_MEMTRACE_FRAMES=<n>`` runs tracemalloc from READY on with ``n`` frames and
adds the 30 tracebacks whose allocations grew most (it slows ingest ten times);
``PFSWATCHD_MEMTRACE_SAMPLE=1`` adds samples of the types that grew with what refers to them, and
freezes what it saw, so that each report counts only the objects made since the previous one.
Without the variable nothing is installed.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

TOP = 30


class MemTrace:
    def __init__(self, path: Path, frames: int) -> None:
        self.path = path
        self.frames = frames
        self._types: collections.Counter[str] = collections.Counter()
        self._snapshot: tracemalloc.Snapshot | None = None
        self._reports = 0
        self.wanted = False
        self.sample = bool(os.environ.get("PFSWATCHD_MEMTRACE_SAMPLE"))

    def start(self) -> None:
        if self.frames:
            tracemalloc.start(self.frames)
            self._snapshot = tracemalloc.take_snapshot()
        self._types = _type_counts()
        self._engines = _engines()
        signal.signal(signal.SIGUSR2, self._on_signal)

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.wanted = True  # reported by the main loop between steps, not in the middle of one

    def tick(self) -> None:
        if self.wanted:
            self.wanted = False
            self.report()

    def report(self) -> None:
        self._reports += 1
        types = _type_counts()
        status = _status()
        heap = _mallinfo()
        lines = [f"=== report {self._reports} at {time.strftime('%H:%M:%S')}: rss {status.get('VmRSS', 0) / 1024:.1f} "
                 f"MiB (anon {status.get('RssAnon', 0) / 1024:.1f}, file {status.get('RssFile', 0) / 1024:.1f}), "
                 f"malloc in use {heap[0] / 2**20:.1f} MiB, free in heap {heap[1] / 2**20:.1f} MiB (main arena), "
                 f"SQLite {_sqlite_used() / 2**20:.1f} MiB, "
                 f"{sys.getallocatedblocks():,} Python blocks, {sum(types.values()):,} tracked objects (unfrozen)"]
        grown = sorted(((n - self._types.get(t, 0), t, n) for t, n in types.items()), reverse=True)
        lines += [f"  {d:+9,} {t} ({n:,})" for d, t, n in grown[:TOP] if d]
        self._types = types
        if self.sample:
            lines += _samples(grown[:6])
            gc.freeze()  # the next report's objects are those made since this one
            self._types = collections.Counter()
        for engine in self._engines:
            cache = engine._execution_options.get("compiled_cache", engine._compiled_cache)
            if cache is None:
                continue
            temporary = sum("tmp_" in str(cache[key].statement) for key in list(cache))
            lines.append(f"  engine {engine.url}: {len(cache)} compiled statements cached, {temporary} of them "
                         f"of temporary tables; pool: {engine.pool.status()}")
            for key in list(cache)[-3:]:
                lines.append(f"      {' '.join(str(cache[key].statement).split())[:300]}")
        if self._snapshot is not None:
            snapshot = tracemalloc.take_snapshot().filter_traces(
                (tracemalloc.Filter(False, tracemalloc.__file__),))
            lines.append(f"  tracemalloc: {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB traced")
            for stat in snapshot.compare_to(self._snapshot, "traceback")[:TOP]:
                lines.append(f"  {stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8,} blocks "
                             f"(now {stat.size / 1024:.1f} KiB)")
                lines += [f"      {frame.filename}:{frame.lineno}" for frame in stat.traceback]
            self._snapshot = snapshot
        with self.path.open("a") as out:
            out.write("\n".join(lines) + "\n")


def _type_counts() -> collections.Counter[str]:
    gc.collect()
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def _samples(grown: list[tuple[int, str, int]]) -> list[str]:
    import random

    lines = []
    wanted = {t for _, t, _ in grown}
    by_type: dict[str, list[Any]] = collections.defaultdict(list)
    for o in gc.get_objects():
        if type(o).__qualname__ in wanted:
            by_type[type(o).__qualname__].append(o)
    for name, objects in by_type.items():
        for o in random.sample(objects, min(4, len(objects))):
            lines.append(f"    sample {name}: {repr(o)[:200]}")
            for r in gc.get_referrers(o)[:3]:
                if r is objects or isinstance(r, list) and len(r) > 1000:
                    continue
                lines.append(f"        <- {type(r).__qualname__}: {repr(r)[:160]}")
                for r2 in gc.get_referrers(r)[:2]:
                    if r2 is objects or isinstance(r2, list) and len(r2) > 1000:
                        continue
                    lines.append(f"            <- {type(r2).__qualname__}: {repr(r2)[:120]}")
    return lines


def _engines() -> list[Any]:
    """The SQLAlchemy engines (frozen at start-up, so out of gc.get_objects() until unfrozen)."""
    from sqlalchemy.engine import Engine

    gc.unfreeze()
    try:
        return [o for o in gc.get_objects() if isinstance(o, Engine)]
    finally:
        gc.freeze()


def _status() -> dict[str, int]:
    """The kB figures of /proc/self/status (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    return {key: int(value.split()[0]) for key, _, value in (line.partition(":") for line in text.splitlines())
            if value.strip().endswith("kB")}


def _sqlite_used() -> int:
    """Bytes SQLite has allocated in this process (page caches and all), from the library sqlite3 uses."""
    import _sqlite3

    try:
        library = ctypes.CDLL(_sqlite3.__file__)
        library.sqlite3_memory_used.restype = ctypes.c_int64
        return int(library.sqlite3_memory_used())
    except (OSError, AttributeError):
        return 0


def _mallinfo() -> tuple[int, int]:
    """Bytes malloc has handed out and bytes free inside its heap (glibc's mallinfo2; zeros elsewhere)."""
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return 0, 0

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost")]

    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return info.uordblks + info.hblkhd, info.fordblks


def from_environment() -> MemTrace | None:
    path = os.environ.get("PFSWATCHD_MEMTRACE")
    if not path:
        return None
    return MemTrace(Path(path), int(os.environ.get("PFSWATCHD_MEMTRACE_FRAMES", "0") or 0))
