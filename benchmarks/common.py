"""Shared pieces of the benchmark scripts: fast synthetic files and the plain-butler reference."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lsst.daf.butler import DatasetIdGenEnum, DatasetRef, FileDataset

from pfswatchd import fakedata
from pfswatchd.butler import repo
from pfswatchd.files.examine import examine
from pfswatchd.files.visitrecord import visit_values


def raw_files(folder: Path, count: int, first_visit: int, template_folder: Path) -> list[Path]:
    """``count`` distinct raws, 12 per visit (spectrographs 1-4 x arms b, r, n), cloned from templates."""
    return fakedata.clone_burst(folder, count, first_visit, template_folder)


def plain_butler_ingest(root: Path, paths: list[Path], transfer: str = "link") -> tuple[float, float]:
    """Wall and CPU seconds (this process) for ONE Butler.ingest call of ``paths``; records and refs are
    made before the clock starts."""
    butler = repo.create(root, instruments=["PFS"])
    raw_type, _ = repo.dataset_types(butler.dimensions)
    datasets = []
    visits = {}
    for path in paths:
        raw = examine(path).classified
        visits.setdefault(raw.visit, raw)
        ref = DatasetRef(raw_type, {**raw.data_id, "dither": raw.dither, "pfs_design_id": raw.pfs_design_id},
                         run="PFS/raw/sps", id_generation_mode=DatasetIdGenEnum.DATAID_TYPE_RUN)
        datasets.append(FileDataset(path=str(path), refs=[ref]))
    registry = butler.registry
    for raw in visits.values():
        registry.insertDimensionData("pfs_design_id", {"instrument": "PFS", "value": raw.pfs_design_id},
                                     skip_existing=True)
        registry.insertDimensionData("dither", {"instrument": "PFS", "value": raw.dither}, skip_existing=True)
    registry.insertDimensionData("visit", *(butler.dimensions["visit"].RecordClass(**visit_values(raw))
                                            for raw in visits.values()))
    start, start_cpu = time.perf_counter(), time.process_time()
    butler.ingest(*datasets, transfer=transfer)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    butler.close()
    return elapsed, cpu


def thread_cpu_seconds(pid: int) -> tuple[float, float] | None:
    """(main thread, its other threads): user plus system CPU seconds of process ``pid``'s threads (Linux
    /proc; else None).  In the service the main thread steps the pipeline and calls the butler, and the
    others (the watcher's, the examiner's result thread) take the interpreter's lock from it: a burst
    goes no faster than the two together."""
    main = others = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if task.name == str(pid):
            main = seconds
        else:
            others += seconds
    return main, others


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds used so far by process ``pid`` and every process below it (from
    /proc: None where there is none, e.g. macOS).  A figure the machine's load barely changes, unlike
    wall time: what a service and its workers spent on a burst, next to what the plain call spent."""
    proc = Path("/proc")
    if not (proc / str(pid)).exists():
        return None
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime, stime
    family, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in family:
                family.add(child)
                frontier.append(child)
    return sum(ticks.get(member, 0) for member in family) / os.sysconf("SC_CLK_TCK")


def start_service(work: Path, config: str) -> subprocess.Popen[bytes]:
    """Start `pfswatchd run` with ``config`` (TOML text) in ``work``; return once it said READY=1.

    To see where a benchmark's service spends its time: ``BENCH_PROFILE=FILE`` runs it under cProfile
    (the main thread; written when it stops), ``BENCH_PREFIX="strace -f -c -o FILE"`` (or any command
    prefix) wraps it, and ``BENCH_LOG=FILE`` keeps its output (the log level is the benchmark's)."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "pfswatchd.toml"
    path.write_text(config)
    address = str(work / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(120)
    command = [sys.executable, "-m", "pfswatchd", "run", "--config", str(path)]
    if os.environ.get("BENCH_PROFILE"):  # cProfile of the daemon's main thread, written at its exit
        command[1:1] = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]]
    if os.environ.get("BENCH_PREFIX"):  # e.g. "/usr/bin/time -v -o FILE" or "strace -f -c -o FILE"
        command[:0] = shlex.split(os.environ["BENCH_PREFIX"])
    log: Any = subprocess.DEVNULL
    if os.environ.get("BENCH_LOG"):
        log = open(os.environ["BENCH_LOG"], "ab")  # noqa: SIM115 (the service's, for as long as it runs)
    process = subprocess.Popen(command, env={**os.environ, "NOTIFY_SOCKET": address}, stdout=log, stderr=log)
    while b"READY=1" not in sock.recv(4096):
        pass
    sock.close()
    return process
