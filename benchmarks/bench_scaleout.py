"""Benchmark: throughput of 1, 2 and 3 pfswatchd instances sharing one PostgreSQL registry and ledger,
next to one instance on SQLite, in the same run.

    .venv/bin/python benchmarks/bench_scaleout.py [--files 2000]

Each case starts fresh databases (a real PostgreSQL server on loopback, started by the script), starts
the instances on one shared watched folder, renames the files in, and measures the time from the first
rename to the last file recorded ingested in the ledger.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from common import raw_files, start_service  # noqa: E402
from pfswatchd.butler import repo  # noqa: E402
from pgserver import PostgresServer  # noqa: E402


def start(base: Path, shared: Path, registry: str, ledger: str, name: str) -> subprocess.Popen[bytes]:
    return start_service(base, (
        f'[repository]\nroot = "{shared / "repo"}"\nregistry_db = "{registry}"\n'
        f'[watch]\npaths = ["{shared / "incoming"}"]\nrescan_interval = 3600.0\n'
        f'[ingest]\ntransfer = "link"\n[state]\npath = "state"\nurl = "{ledger}"\ninstance = "{name}"\n'
        f'[quarantine]\npath = "quarantine"\n[archives]\nextract_to = "{shared / "extracted"}"\n'
        '[log]\nformat = "json"\nlevel = "warning"\n'
    ))


def run_case(work: Path, files: list[Path], instances: int, registry: str, ledger: str) -> float:
    shared = work / "shared"
    (shared / "incoming").mkdir(parents=True)
    if registry:
        repo.create(shared / "repo", registry_db=registry).close()
    processes = [start(work / f"host{i}", shared, registry, ledger or
                       f"sqlite:///{work / 'ledger.sqlite3'}", f"host{i}") for i in range(instances)]
    engine = sa.create_engine(ledger or f"sqlite:///{work / 'ledger.sqlite3'}")
    begin = time.time()
    for path in files:
        os.rename(path, shared / "incoming" / path.name)
    while True:
        with engine.connect() as conn:
            count, last = conn.execute(sa.text(
                "SELECT count(*), max(ingested_at) FROM files WHERE state = 'ingested'")).one()
        if count >= len(files):
            break
        time.sleep(0.05)
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=120)
    engine.dispose()
    return float(last) - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pfswatchd-scaleout-"))
    results = []
    try:
        with PostgresServer() as postgres:
            cases = [("SQLite, 1 instance", 1, False), ("PostgreSQL, 1 instance", 1, True),
                     ("PostgreSQL, 2 instances", 2, True), ("PostgreSQL, 3 instances", 3, True)]
            for index, (label, instances, on_postgres) in enumerate(cases):
                case = work / f"case{index}"
                files = raw_files(case / "src", args.files, 30_000, work / "templates")
                registry = postgres.create_database(f"butler{index}") if on_postgres else ""
                ledger = postgres.create_database(f"ledger{index}") if on_postgres else ""
                seconds = run_case(case, files, instances, registry, ledger)
                results.append((label, seconds))
                print(f"{label:26s} {args.files} files in {seconds:6.2f} s  {args.files / seconds:7.0f} files/s",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {os.cpu_count()} CPUs; every instance, the database server and this script share them")


if __name__ == "__main__":
    main()
