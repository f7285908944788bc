"""Benchmark of the service: receive-to-ingested latency of single files, and a burst of 2,000.

    .venv/bin/python benchmarks/bench_service.py [--singles 200] [--burst 2000]

A real `pfswatchd run` subprocess watches a folder (link transfer, SQLite registry and ledger).
- Latency: files are renamed into the folder one at a time; for each, the time from the rename to
  the ledger's ingested_at (the moment the service recorded it ingested). p50 and p99 are printed.
- Burst: 2,000 files are renamed in as fast as possible; the time from the first rename to the
  last ingested_at.
- Reference, in the same run: ONE plain `Butler.ingest` call of the same 2,000 files with refs and
  dimension records prepared beforehand (not timed), link transfer, into a fresh repository.
Targets (issue 3): p50 < 100 ms, p99 < 300 ms, burst within 1.5x of the plain call.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import plain_butler_ingest, raw_files, start_service  # noqa: E402


def start_watching(work: Path) -> tuple[subprocess.Popen[bytes], Path]:
    (work / "incoming").mkdir(parents=True)
    process = start_service(work, (
        '[repository]\nroot = "repo"\n[watch]\npaths = ["incoming"]\nrescan_interval = 3600.0\n'
        '[ingest]\ntransfer = "link"\n[state]\npath = "state"\n[quarantine]\npath = "quarantine"\n'
        '[log]\nformat = "json"\nlevel = "warning"\n'
    ))
    return process, work / "state" / "ledger.sqlite3"


def ingested_at(ledger: sqlite3.Connection, path: str) -> float | None:
    row = ledger.execute("SELECT ingested_at FROM files WHERE path = ? AND state = 'ingested'", (path,)).fetchone()
    return row[0] if row else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--singles", type=int, default=200)
    parser.add_argument("--burst", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pfswatchd-svc-bench-"))
    try:
        singles = raw_files(work / "singles", args.singles, 10_000, work / "templates")
        burst = raw_files(work / "burst", args.burst, 20_000, work / "templates")
        plain = plain_butler_ingest(work / "plain", raw_files(work / "plain-src", args.burst, 20_000,
                                                               work / "templates"))
        process, ledger_path = start_watching(work / "svc")
        incoming = work / "svc" / "incoming"
        ledger = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True, timeout=30)
        latencies = []
        for path in singles:
            target = incoming / path.name
            sent = time.time()
            os.rename(path, target)
            while (done := ingested_at(ledger, str(target))) is None:
                time.sleep(0.001)
            latencies.append(done - sent)
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(round(0.99 * len(latencies))) - 1)]

        start = time.time()
        for path in burst:
            os.rename(path, incoming / path.name)
        renamed = time.time()
        while True:
            (count, last), = ledger.execute(
                "SELECT count(*), max(ingested_at) FROM files WHERE state = 'ingested' AND path LIKE ?",
                (str(incoming / "PFS%"),)).fetchall()
            if count >= args.singles + args.burst:
                break
            time.sleep(0.01)
        burst_seconds = last - start
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)

        print(f"single files ({len(latencies)}, renamed in one at a time): "
              f"p50 {p50 * 1000:.1f} ms  p99 {p99 * 1000:.1f} ms  max {latencies[-1] * 1000:.1f} ms"
              f"   (targets: p50 < 100 ms, p99 < 300 ms)")
        print(f"burst of {args.burst} (renamed in {renamed - start:.2f} s): all ingested after "
              f"{burst_seconds:.2f} s  ({args.burst / burst_seconds:.0f} files/s)")
        print(f"plain Butler.ingest, 1 call, same {args.burst} files, link: {plain:.2f} s  "
              f"({args.burst / plain:.0f} files/s)")
        print(f"burst / plain = {burst_seconds / plain:.2f}x   (target: <= 1.5x)   service exit code {code}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
