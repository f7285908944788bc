"""Benchmark: `pfswatchd ingest-raws` of N small raw files with link transfer, next to ONE plain
`Butler.ingest` call of the same files with precomputed refs, measured in the same run.

    .venv/bin/python benchmarks/bench_ingest.py [--files 2000] [--keep DIR]

Three figures:
- `pfswatchd ingest-raws` as a user runs it (a subprocess: interpreter and butler start-up included);
- the same engine in-process (examine every file's headers, check visits, refs, place, one transaction);
- the reference: one `Butler.ingest(*datasets, transfer="link")` with refs and dimension records made
  beforehand (not timed), into a second fresh repository.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pfswatchd.butler import repo
from pfswatchd.butler.ingest import Ingester, IngestSettings
from pfswatchd.files.examine import examine

sys.path.insert(0, str(Path(__file__).parent))
from common import plain_butler_ingest, raw_files  # noqa: E402


def engine_in_process(root: Path, paths: list[Path]) -> float:
    butler = repo.create(root, instruments=["PFS"])
    ingester = Ingester(butler, root, IngestSettings(transfer="link"))
    start = time.perf_counter()
    classified = [examine(path).classified for path in paths]
    outcomes = ingester.ingest(classified)
    elapsed = time.perf_counter() - start
    assert all(o.status == "ingested" for o in outcomes), {o.status for o in outcomes}
    butler.close()
    return elapsed


def command_line(root: Path, data: Path, count: int) -> float:
    subprocess.run([sys.executable, "-m", "pfswatchd", "create", str(root), "--instrument", "PFS"], check=True,
                   capture_output=True)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pfswatchd", "ingest-raws", str(root), str(data),
                             "--transfer", "link"], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0 and f"{count} ingested" in result.stdout, result.stdout + result.stderr
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="pfswatchd-bench-"))
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = raw_files(data, args.files, 1000, work / "templates")
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files ({size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s")
    for name in ("plain", "engine", "cli"):
        shutil.rmtree(work / name, ignore_errors=True)
    plain = plain_butler_ingest(work / "plain", paths)
    engine = engine_in_process(work / "engine", paths)
    cli = command_line(work / "cli", data, len(paths))
    n = len(paths)
    print(f"{'plain Butler.ingest (1 call, refs precomputed)':48s} {plain:7.2f} s  {n / plain:7.0f} files/s")
    print(f"{'pfswatchd engine in-process (headers+ingest)':48s} {engine:7.2f} s  {n / engine:7.0f} files/s"
          f"  ({engine / plain:.2f}x plain)")
    print(f"{'pfswatchd ingest-raws (subprocess, with start-up)':48s} {cli:7.2f} s  {n / cli:7.0f} files/s"
          f"  ({cli / plain:.2f}x plain)")
    if args.keep is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
