"""The heap a burst freed goes back to the operating system when the burst is over (glibc malloc_trim)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from harness import Daemon, burst_files
from pfswatchd.service.heaptrim import HeapTrim, _malloc_trim


def test_it_trims_once_when_a_burst_is_over_and_not_again_until_another():
    now = [0.0]
    trims = []
    rss = [100.0]
    heap = HeapTrim(trim=lambda: trims.append(now[0]), min_interval=10.0, quiet=1.0, grown=4.0,
                    clock=lambda: now[0], rss=lambda: rss[0])
    assert heap.tick(busy=False) is None  # nothing done yet: nothing to give back
    for t in (1.0, 2.0, 3.0):
        now[0] = t
        assert heap.tick(busy=True) is None  # never in the middle of a burst
    now[0] = 3.5
    assert heap.tick(busy=False) is None  # not quiet for long enough: the monitor's look may follow
    now[0] = 4.0
    assert heap.tick(busy=False) is not None
    now[0] = 5.0
    assert heap.tick(busy=False) is None  # quiet again: already trimmed
    heap.tick(busy=True)
    now[0] = 6.0
    assert heap.tick(busy=False) is None  # a second burst within min_interval waits ...
    now[0] = 14.5
    assert heap.tick(busy=False) is not None  # ... until the interval is over
    assert trims == [4.0, 14.5] and heap.trims == 2
    now[0] = 30.0
    rss[0] = 103.0
    assert heap.tick(busy=False) is None  # quiet, grown by less than 4 MiB since: nothing to give back
    now[0] = 35.0
    rss[0] = 105.0
    assert heap.tick(busy=False) is None  # grown enough, but looked at 5 s ago (every min_interval)
    now[0] = 40.0
    trimmed = heap.tick(busy=False)  # quiet, and the RSS grew by 5 MiB: the look after a burst freed more
    assert trimmed is not None and trimmed.rss_before_mib == 105.0
    assert trims == [4.0, 14.5, 40.0]


def test_without_malloc_trim_it_does_nothing():
    heap = HeapTrim(trim=None)
    heap._trim = None  # a C library without malloc_trim (macOS, musl)
    heap.tick(busy=True)
    assert heap.tick(busy=False) is None and not heap.available


FRAGMENT = """
import ctypes, sys
sys.path.insert(0, {root!r})
from pfswatchd.service.heaptrim import _malloc_trim
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
blocks = [bytearray(600) for _ in range(200_000)]  # over pymalloc's 512 bytes: from malloc's heap
kept = blocks[::50]  # long-lived blocks among the freed ones hold the heap's top
del blocks
before = rss()
_malloc_trim()()
print(before, rss())
"""


@pytest.mark.skipif(_malloc_trim() is None or not os.path.exists("/proc/self/status"),
                    reason="glibc and /proc only")
def test_malloc_trim_gives_back_the_free_pages_inside_the_heap():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", FRAGMENT.format(root=root)], capture_output=True, text=True,
                         check=True).stdout.split()
    before, after = int(out[0]), int(out[1])
    assert before - after > 50_000, (before, after)  # KiB: most of the ~120 MiB freed goes back


def test_the_service_trims_its_heap_after_a_burst_not_during_it(tmp_path):
    daemon = Daemon(tmp_path / "svc", log={"format": "json", "level": "debug"})
    files = burst_files(tmp_path / "src", tmp_path / "templates", 60)
    daemon.start()
    for path in files:
        os.rename(path, daemon.incoming / path.name)
    daemon.wait_files("ingested", 60, timeout=180)
    end = time.monotonic() + 30
    while not daemon.events("heap_trimmed") and time.monotonic() < end:
        time.sleep(0.2)
    trims = daemon.events("heap_trimmed")
    assert trims, daemon.log()[-3000:]
    batches = daemon.events("batch_ingested")
    assert len(trims) <= len(batches), (len(trims), len(batches))  # once per burst at most, not per step
    assert trims[0]["rss_after_mib"] <= trims[0]["rss_before_mib"], trims
    assert daemon.stop() == 0
