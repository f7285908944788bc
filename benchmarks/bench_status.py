"""``pfswatchd status`` at scale, alone: a ledger of ``--rows`` rows, then status timed against references.

    .venv/bin/python benchmarks/bench_status.py --work DIR [--rows 2000000] [--warnings 200] [--runs 3]

The ledger is built as bench_scale.py builds its big one, without the real tree: ``--files`` (240) real
raws ingested by a real ``pfswatchd run``, the daemon stopped, the ledger grown to ``--rows`` rows by
bench_scale.grow_ledger (ingested raws of earlier visits, their visits rows, the WAL checkpointed), and
``--warnings`` of the synthesised rows given a warning (an ingested file with a message, as a displaced
pfsConfig is).  An existing ledger in ``--work`` is reused, so the same one can be measured before and
after a change.  Then, ``--runs`` times each, as subprocesses (interpreter start-up included): ``python -c
pass``, ``python -c "import sqlalchemy"``, ``pfswatchd --version``, ``pfswatchd status`` and ``pfswatchd
status --json --limit 100``: median wall and CPU seconds and peak RSS (by /usr/bin/time, see
bench_scale.measured).  Target (issue 14): status < 1 s and < 200 MiB at 2M rows.

The pfswatchd package the commands import (PYTHONPATH decides which: a checkout of another commit can be
compared) is byte-compiled first, as ``pip install`` leaves it: with PYTHONDONTWRITEBYTECODE set and no
``__pycache__``, every run would compile its ~40 modules again (0.3 s of CPU here).
"""

from __future__ import annotations

import argparse
import compileall
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_scale import config_text, finished, grow_ledger, measured, start_daemon, stop_daemon  # noqa: E402
from pfswatchd import fakedata  # noqa: E402


def build(work: Path, files: int, rows: int, warnings: int) -> None:
    incoming = work / "incoming"
    incoming.mkdir(parents=True)
    staged = fakedata.clone_burst(work / "staging", files, 400_000, work / "templates")
    process, _, _ = start_daemon(work, config_text(3600.0, "warning"), work / "daemon.log")
    ledger_path = work / "state" / "ledger.sqlite3"
    ledger = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True, timeout=30)
    for path in staged:
        os.rename(path, incoming / path.name)
    end = time.time() + 600
    while finished(ledger) < files:
        if time.time() > end:
            raise SystemExit(f"fewer than {files} files ingested after 600 s")
        time.sleep(0.2)
    ledger.close()
    stop_daemon(process)
    n_visits, seconds = grow_ledger(ledger_path, rows - files, incoming, 400_000)
    db = sqlite3.connect(ledger_path)
    with db:  # a warning on every (rows / warnings)th synthesised row
        step = max(1, (rows - files) // max(warnings, 1))
        db.execute("UPDATE files SET error = 'displaced by a newer full pfsConfig (synthesised)' "
                   f"WHERE id > {files} AND id % {step} = 0" if warnings else "SELECT 1")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(f"  ledger grown to {rows:,} rows ({n_visits:,} visits) in {seconds:.0f} s", flush=True)


def timed(argv: list[str], runs: int) -> tuple[float, float, float, int]:
    """Median wall seconds, median CPU seconds, max peak RSS (MiB) and output bytes of ``argv``."""
    times, cpus, peaks, size = [], [], [], 0
    for _ in range(runs):
        seconds, mib, out, code, cpu = measured(argv)
        if code != 0:
            raise SystemExit(f"{' '.join(argv)} exited {code}")
        times.append(seconds)
        cpus.append(cpu)
        peaks.append(mib)
        size = len(out)
    return statistics.median(times), statistics.median(cpus), max(peaks), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder of the ledger (built when missing; kept)")
    parser.add_argument("--rows", type=int, default=2_000_000, help="ledger rows")
    parser.add_argument("--files", type=int, default=240, help="real files ingested by the daemon first")
    parser.add_argument("--warnings", type=int, default=200, help="synthesised rows that carry a warning")
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (the median is shown)")
    args = parser.parse_args()
    ledger = args.work / "state" / "ledger.sqlite3"
    if not ledger.exists():
        build(args.work, args.files, args.rows, args.warnings)
    (rows,), = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True).execute("SELECT count(*) FROM files").fetchall()
    config = str(args.work / "pfswatchd.toml")
    python = sys.executable
    package = subprocess.run([python, "-c", "import os, pfswatchd; print(os.path.dirname(pfswatchd.__file__))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    compileall.compile_dir(package, quiet=1)
    print(f"bench_status: pfswatchd from {package} (byte-compiled)")
    print(f"bench_status: {rows:,} ledger rows in {ledger}; {args.runs} runs each", flush=True)
    for name, argv in (
            ("python -c pass", [python, "-c", "pass"]),
            ('python -c "import sqlalchemy"', [python, "-c", "import sqlalchemy"]),
            ("pfswatchd --version", [python, "-m", "pfswatchd", "--version"]),
            ("pfswatchd status", [python, "-m", "pfswatchd", "status", "--config", config]),
            ("pfswatchd status --json --limit 100",
             [python, "-m", "pfswatchd", "status", "--config", config, "--json", "--limit", "100"])):
        seconds, cpu, mib, size = timed(argv, args.runs)
        print(f"  {name:40s} {seconds:6.2f} s wall  {cpu:5.2f} s CPU  {mib:6.1f} MiB peak  {size:>7,} bytes out",
              flush=True)


if __name__ == "__main__":
    main()
