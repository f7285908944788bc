"""Benchmark of the monitor's endpoint: ingest latency with /metrics off, and on and scraped every second.

    .venv/bin/python benchmarks/bench_monitor.py [--singles 100] [--burst 2000] [--rounds 2]

For each round, two real `pfswatchd run` services one after the other (link transfer, SQLite registry
and ledger, the monitor at its default interval in both): one with `[monitor.http]` off, one with it on
while a thread GETs /metrics and / every second.  Each service takes ``--singles`` files renamed in
one at a time (rename to the ledger's ingested_at: p50, p99) and then a burst of ``--burst`` files
(first rename to the last ingested_at).  The order alternates between rounds so that a machine
getting busier does not favour one side.  Reference in the same run: the endpoint off.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import raw_files, start_service  # noqa: E402

PORT = 19187


def _config(http: bool) -> str:
    return ('[repository]\nroot = "repo"\n[watch]\npaths = ["incoming"]\nrescan_interval = 3600.0\n'
            '[ingest]\ntransfer = "link"\n[state]\npath = "state"\n[quarantine]\npath = "quarantine"\n'
            '[log]\nformat = "json"\nlevel = "warning"\n'
            f'[monitor.http]\nenabled = {"true" if http else "false"}\nport = {PORT}\n')


class Scraper(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.scrapes = self.errors = 0
        self.seconds: list[float] = []

    def run(self) -> None:
        while not self.stop.wait(1.0):
            for path in ("/metrics", "/"):
                began = time.perf_counter()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=10) as answer:
                        answer.read()
                    self.scrapes += 1
                    self.seconds.append(time.perf_counter() - began)
                except OSError:
                    self.errors += 1


def _ingested(ledger: sqlite3.Connection, path: str) -> float | None:
    row = ledger.execute("SELECT ingested_at FROM files WHERE path = ? AND state = 'ingested'", (path,)).fetchone()
    return row[0] if row else None


def measure(work: Path, singles: list[Path], burst: list[Path], http: bool) -> dict[str, float]:
    (work / "incoming").mkdir(parents=True)
    process = start_service(work, _config(http))
    scraper = Scraper()
    if http:
        scraper.start()
    incoming = work / "incoming"
    ledger = sqlite3.connect(f"file:{work / 'state' / 'ledger.sqlite3'}?mode=ro", uri=True, timeout=30)
    latencies = []
    for path in singles:
        target = incoming / path.name
        sent = time.time()
        os.rename(path, target)
        while (done := _ingested(ledger, str(target))) is None:
            time.sleep(0.001)
        latencies.append(done - sent)
    start = time.time()
    for path in burst:
        os.rename(path, incoming / path.name)
    while True:
        (count, last), = ledger.execute("SELECT count(*), max(ingested_at) FROM files WHERE state = 'ingested'")
        if count >= len(singles) + len(burst):
            break
        time.sleep(0.01)
    scraper.stop.set()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    latencies.sort()
    return {"p50": statistics.median(latencies), "p99": latencies[min(len(latencies) - 1,
                                                                     int(round(0.99 * len(latencies))) - 1)],
            "burst": last - start, "scrapes": scraper.scrapes, "errors": scraper.errors,
            "scrape_ms": statistics.median(scraper.seconds) * 1000 if scraper.seconds else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--singles", type=int, default=100)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pfswatchd-monitor-bench-"))
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    try:
        for round_number in range(args.rounds):
            order = (False, True) if round_number % 2 == 0 else (True, False)
            for http in order:
                name = f"r{round_number}-{'on' if http else 'off'}"
                first = 100_000 * (round_number * 2 + int(http) + 1)
                singles = raw_files(work / f"{name}-singles", args.singles, first, work / "templates")
                burst = raw_files(work / f"{name}-burst", args.burst, first + 50_000, work / "templates")
                found = measure(work / name, singles, burst, http)
                results[http].append(found)
                label = "on, scraped every 1 s" if http else "off                  "
                print(f"round {round_number} endpoint {label}: singles p50 {found['p50'] * 1000:6.1f} ms  "
                      f"p99 {found['p99'] * 1000:6.1f} ms   burst of {args.burst} {found['burst']:5.2f} s"
                      + (f"   ({found['scrapes']} scrapes, median {found['scrape_ms']:.1f} ms, "
                         f"{found['errors']} errors)" if http else ""), flush=True)
                shutil.rmtree(work / name, ignore_errors=True)
        for key, what in (("p50", "singles p50"), ("p99", "singles p99"), ("burst", "burst")):
            off = statistics.median(r[key] for r in results[False])
            on = statistics.median(r[key] for r in results[True])
            unit, scale = ("s", 1.0) if key == "burst" else ("ms", 1000.0)
            print(f"median {what:12s}: off {off * scale:7.2f} {unit}   on+scraped {on * scale:7.2f} {unit}   "
                  f"on/off = {on / off:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
