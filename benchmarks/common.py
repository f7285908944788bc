"""Shared pieces of the benchmark scripts: fast synthetic files and the plain-butler reference."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from lsst.daf.butler import DatasetIdGenEnum, DatasetRef, FileDataset

from pfswatchd import fakedata
from pfswatchd.butler import repo
from pfswatchd.files.examine import examine
from pfswatchd.files.visitrecord import visit_values


def raw_files(folder: Path, count: int, first_visit: int, template_folder: Path) -> list[Path]:
    """``count`` distinct raws, 12 per visit (spectrographs 1-4 x arms b, r, n), cloned from templates."""
    return fakedata.clone_burst(folder, count, first_visit, template_folder)


def plain_butler_ingest(root: Path, paths: list[Path], transfer: str = "link") -> float:
    """Seconds for ONE Butler.ingest call of ``paths``; records and refs are made before the clock starts."""
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
    start = time.perf_counter()
    butler.ingest(*datasets, transfer=transfer)
    elapsed = time.perf_counter() - start
    butler.close()
    return elapsed


def start_service(work: Path, config: str) -> subprocess.Popen[bytes]:
    """Start `pfswatchd run` with ``config`` (TOML text) in ``work``; return once it said READY=1."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "pfswatchd.toml"
    path.write_text(config)
    address = str(work / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(120)
    process = subprocess.Popen([sys.executable, "-m", "pfswatchd", "run", "--config", str(path)],
                               env={**os.environ, "NOTIFY_SOCKET": address}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    while b"READY=1" not in sock.recv(4096):
        pass
    sock.close()
    return process
