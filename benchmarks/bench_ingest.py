"""Benchmark: `pfswatchd ingest-raws` of N small raw files with link transfer, next to ONE plain
`Butler.ingest` call of the same files with precomputed refs, measured in the same run; and the
copying transfers on full-size files next to `cp` plus `sync` of the same files.

    .venv/bin/python benchmarks/bench_ingest.py [--files 2000] [--full-visits 1] [--keep DIR]

Three figures for the small files:
- `pfswatchd ingest-raws` as a user runs it (a subprocess: interpreter and butler start-up included);
- the same engine in-process (examine every file's headers, check visits, refs, place, one transaction);
- the reference: one `Butler.ingest(*datasets, transfer="link")` with refs and dimension records made
  beforehand (not timed), into a second fresh repository.
Next to their wall times, the CPU seconds of each (this process, or the command and its workers): on a
shared machine the wall times move with the load and CPU seconds barely do, so they are the figure to
compare two versions by.

Two for full-size files (12 per visit: 8 CCD frames of 4300 x 4416, 4 NIR ramps of 4096^2, ~570 MB):
- `--transfer copy` (the engine in-process: headers, kernel copy, fsync of every file, one
  transaction) next to `cp` of the same files into the same filesystem plus `sync`;
- `--transfer move` from another filesystem (a tmpfs, /dev/shm) into the repository on disk (kernel
  copy, fsync, byte-for-byte verification, commit, unlink) next to `cp` from the tmpfs plus `sync`.
Each pair is run three times, in alternating order, with the disk synced before each timed step; the
best run of each is compared (a small raw is ingested
first, untimed, so that the engine's one-time start-up costs are not counted).  Target (issue 14): >= 0.8x.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pfswatchd import fakedata
from pfswatchd.butler import repo
from pfswatchd.butler.ingest import Ingester, IngestSettings
from pfswatchd.files.examine import examine

sys.path.insert(0, str(Path(__file__).parent))
from common import plain_butler_ingest, raw_files  # noqa: E402


def engine_in_process(root: Path, paths: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds of the engine in this process: headers read, then one ingest call."""
    butler = repo.create(root, instruments=["PFS"])
    ingester = Ingester(butler, root, IngestSettings(transfer="link"))
    start, start_cpu = time.perf_counter(), time.process_time()
    classified = [examine(path).classified for path in paths]
    outcomes = ingester.ingest(classified)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    assert all(o.status == "ingested" for o in outcomes), {o.status for o in outcomes}
    butler.close()
    return elapsed, cpu


def engine_transfer(root: Path, paths: list[Path], transfer: str, warm_up: Path) -> float:
    """Seconds for the engine in-process to ingest ``paths`` with ``transfer`` (headers read first).

    ``warm_up``, a small raw of another visit, is ingested first and not timed: the service is long
    running, and the first call's one-time costs (the butler's query parser, astropy's frames) are not
    what this compares.
    """
    shutil.rmtree(root, ignore_errors=True)
    _fresh(root.parent / f"{root.name}-warm")
    butler = repo.create(root, instruments=["PFS"])
    ingester = Ingester(butler, root, IngestSettings(transfer=transfer))
    warm = fakedata.clone_raw(warm_up, root.parent / f"{root.name}-warm", visit=99)  # a move takes it away
    assert ingester.ingest([examine(warm).classified])[0].status == "ingested"
    start = time.perf_counter()
    outcomes = ingester.ingest([examine(path).classified for path in paths])
    elapsed = time.perf_counter() - start
    assert all(o.status == "ingested" for o in outcomes), [o.message for o in outcomes]
    butler.close()
    return elapsed


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def cp_and_sync(paths: list[Path], dest: Path) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    start = time.perf_counter()
    subprocess.run(["cp", *map(str, paths), str(dest)], check=True)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - start


DESIGN = 0x1945BE7E6DE4B2CF
RUNS = 3  # each pair is measured this many times, alternately; the best of each is compared


def full_size_files(folder: Path, visits: int) -> list[Path]:
    """12 full-size raws per visit: a CCD (b, r) and a NIR (n) template written once, cloned to 4
    spectrographs."""
    templates = folder / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    made = {arm: templates / fakedata.raw_filename("S", "B" if arm == "n" else "A", 1, 1, arm) for arm in "brn"}
    for arm, path in made.items():
        if not path.exists():
            if arm == "n":
                fakedata.write_pfsb(path, visit=1, spectrograph=1, pfs_design_id=DESIGN, full_size=True, n_reads=2)
            else:
                fakedata.write_pfsa(path, visit=1, spectrograph=1, arm=arm, pfs_design_id=DESIGN, full_size=True)
    paths = []
    (folder / "src").mkdir(exist_ok=True)
    for visit in range(100, 100 + visits):
        for spectrograph in (1, 2, 3, 4):
            for arm in "brn":
                paths.append(fakedata.clone_raw(made[arm], folder / "src", visit=visit, spectrograph=spectrograph))
    return paths


def full_size(work: Path, visits: int) -> None:
    paths = full_size_files(work / "full", visits)
    size = sum(p.stat().st_size for p in paths) / 2**20
    print(f"full-size: {len(paths)} files, {size:.0f} MiB (source on {_fs(paths[0])}, repository on {_fs(work)})")
    warm = fakedata.clone_burst(work / "full" / "warm", 1, 98, work / "templates")[0]
    rows = [("copy, same filesystem", *_pairs(work, lambda run: paths, "copy", warm))]
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="pfswatchd-bench-") as shm:
        def on_tmpfs(run: int) -> list[Path]:
            folder = _fresh(Path(shm) / f"run{run}")  # the drop folder on the tmpfs (not timed)
            return [Path(shutil.copyfile(path, folder / path.name)) for path in paths]

        rows.append(("move across filesystems (tmpfs -> disk)", *_pairs(work, on_tmpfs, "move", warm)))
        print(f"  cross-filesystem: {_fs(Path(shm))} -> {_fs(work)}")
    for name, ours_runs, cp_runs in rows:
        ours, cp = min(ours_runs), min(cp_runs)
        print(f"  {name:40s} {size / ours:7.0f} MiB/s   cp+sync {size / cp:7.0f} MiB/s   "
              f"{cp / ours:.2f}x cp   (runs: {', '.join(f'{t:.2f}' for t in ours_runs)} s vs "
              f"{', '.join(f'{t:.2f}' for t in cp_runs)} s; target >= 0.8x)")


def _pairs(work: Path, sources: Callable[[int], list[Path]], transfer: str,
           warm: Path) -> tuple[list[float], list[float]]:
    """RUNS runs of the engine and of cp + sync on the same files, in alternating order (the one that
    goes second does not always meet the first one's writeback); everything settled (synced) before
    each timed step."""
    ours, reference = [], []
    for run in range(RUNS):
        steps = [("cp", reference), ("engine", ours)]
        for name, results in steps if run % 2 == 0 else steps[::-1]:
            files = sources(run)
            target = work / "full" / f"{name}-{transfer}"
            shutil.rmtree(target, ignore_errors=True)
            os.sync()
            if name == "cp":
                results.append(cp_and_sync(files, target))
            else:
                results.append(engine_transfer(target, files, transfer, warm))
                assert transfer != "move" or not any(p.exists() for p in files)
            shutil.rmtree(target)
    return ours, reference


def _fs(path: Path) -> str:
    """The filesystem type holding ``path`` (from /proc/mounts: the longest mount point above it)."""
    best, kind = "", "?"
    real = os.path.realpath(path)
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, point, fstype = line.split()[:3]
            if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best, kind = point, fstype
    return kind


def command_line(root: Path, data: Path, count: int) -> tuple[float, float]:
    """Wall and CPU seconds (the command and its workers) of one ``pfswatchd ingest-raws``."""
    subprocess.run([sys.executable, "-m", "pfswatchd", "create", str(root), "--instrument", "PFS"], check=True,
                   capture_output=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pfswatchd", "ingest-raws", str(root), str(data),
                             "--transfer", "link"], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 0 and f"{count} ingested" in result.stdout, result.stdout + result.stderr
    return elapsed, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--full-visits", type=int, default=1, help="visits of full-size files for the copy "
                        "and move figures (12 files, ~570 MB each; 0: skip them)")
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
    plain, plain_cpu = plain_butler_ingest(work / "plain", paths)
    engine, engine_cpu = engine_in_process(work / "engine", paths)
    cli, cli_cpu = command_line(work / "cli", data, len(paths))
    n = len(paths)
    print(f"{'plain Butler.ingest (1 call, refs precomputed)':48s} {plain:7.2f} s  {n / plain:7.0f} files/s")
    print(f"{'pfswatchd engine in-process (headers+ingest)':48s} {engine:7.2f} s  {n / engine:7.0f} files/s"
          f"  ({engine / plain:.2f}x plain)")
    print(f"{'pfswatchd ingest-raws (subprocess, with start-up)':48s} {cli:7.2f} s  {n / cli:7.0f} files/s"
          f"  ({cli / plain:.2f}x plain)")
    print(f"CPU seconds (load-independent, unlike wall time): plain {plain_cpu:.2f} s, engine {engine_cpu:.2f} s "
          f"({engine_cpu / plain_cpu:.2f}x), ingest-raws {cli_cpu:.2f} s ({cli_cpu / plain_cpu:.2f}x)")
    if args.full_visits:
        full_size(work, args.full_visits)
    if args.keep is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
