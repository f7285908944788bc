"""``pfswatchd hand-over``: a repository written without obs_pfs reads with obs_pfs's classes afterwards.

The repository is made and filled here, in the test process, where obs_pfs is not importable; the
hand-over and the pipeline user's reads run where the test double of obs_pfs's interface is installed
(tests/stackenv.py, tests/stack_double).
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

import stackenv
from conftest import classified, make_ingester, write_config, write_raw
from pfswatchd.butler import repo

SEED = yaml.safe_load((stackenv.DOUBLE / "obs_pfs" / "gen3" / "butler.yaml").read_text())
CALIB_RUN = "PFS/calib/20260301T000000Z"


def records(root: Path) -> dict[str, tuple]:
    """Every datastore record by path: (dataset id, formatter, checksum, size)."""
    with sqlite3.connect(root / "gen3.sqlite3") as db:
        return {row[0]: row[1:] for row in db.execute(
            "SELECT path, dataset_id, formatter, checksum, file_size FROM file_datastore_records")}


def formatters(root: Path) -> dict[str, str]:
    return {path: row[1] for path, row in records(root).items()}


def state(root: Path) -> tuple:
    """What must not change when the hand-over refuses or is interrupted in its transaction.

    A killed transaction leaves SQLite's rollback journal, which the next reader of the database (records(),
    here) plays back; the file itself is SQLite's, not a change.
    """
    return (records(root), (root / "butler.yaml").read_bytes(),
            sorted(p.name for p in root.iterdir() if not p.name.endswith("-journal")))


@pytest.fixture(scope="module")
def _filled(tmp_path_factory, _template_repo) -> Path:
    """A standalone repository: raws of PFS (CCD, NIR) and PFS-F, a pfsConfig, a per-camera calibration."""
    tmp = tmp_path_factory.mktemp("handover")
    root = tmp / "repo"
    shutil.copytree(_template_repo, root)
    data = tmp / "data"
    files = [write_raw(data, visit=100, arm="b"), write_raw(data, visit=100, arm="n"),
             write_raw(data, visit=7, arm="r", site="F"), write_config(data, visit=100)]
    with repo.open_butler(root) as butler:
        outcomes = make_ingester(butler, root, transfer="copy").ingest(classified(*files))
        assert all(o.ok for o in outcomes), outcomes
        butler.collections.register(CALIB_RUN)
        butler.put(fits.HDUList([fits.PrimaryHDU(np.zeros((2, 2)))]), "detectorMap_calib", instrument="PFS",
                   arm="b", spectrograph=1, run=CALIB_RUN)
    return root


@pytest.fixture()
def standalone(_filled, tmp_path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(_filled, root)
    return root


RAW_B = "PFS/raw/sps/raw/20250505/100/raw_PFS_100_b1_PFS_raw_sps.fits"
RAW_N = "PFS/raw/sps/raw/20250505/100/raw_PFS_100_n1_PFS_raw_sps.fits"
RAW_F = "PFS-F/raw/sps/raw/20250505/7/raw_PFS-F_7_r1_PFS-F_raw_sps.fits"
CONFIG = "PFS/raw/pfsConfig/pfsConfig/20250505/100/pfsConfig_PFS_100_PFS_raw_pfsConfig.fits"
CALIB = f"{CALIB_RUN}/detectorMap_calib/detectorMap_calib_PFS_b1_{CALIB_RUN.replace('/', '_')}.fits"
# What the official tools record (obs_base raw ingest: the Instrument's getRawFormatter; put/ingest: the
# configured formatter of obs_pfs's gen3/butler.yaml).
OFFICIAL = {
    RAW_B: "lsst.obs.pfs.formatters.PfsRawFormatter",
    RAW_N: "lsst.obs.pfs.formatters.PfsRawFormatter",
    RAW_F: "lsst.obs.pfs.formatters.PfsSimulatorRawFormatter",
    CONFIG: "lsst.obs.base.formatters.fitsGeneric.FitsGenericFormatter",
    CALIB: "lsst.obs.pfs.formatters.DetectorMapFormatter",
}
OBS_PFS_READS = {("PFS", "b", "lsst.obs.pfs.raw.PfsRaw", None), ("PFS", "n", "lsst.obs.pfs.raw.PfsRaw", None),
                 ("PFS-F", "r", "lsst.obs.pfs.raw.PfsRaw", "F")}


def raw_reads(seen: dict) -> set[tuple]:
    return {(r["dataId"]["instrument"], r["dataId"]["arm"], r.get("type"), r.get("pfsCategory")) for r in seen["raw"]}


def test_hand_over_makes_the_pipeline_read_with_obs_pfs_and_a_second_run_changes_nothing(standalone):
    before = records(standalone)
    old_config = (standalone / "butler.yaml").read_text()
    # Written without obs_pfs: pfswatchd's stable formatter names; the pipeline gets pfswatchd's classes.
    assert formatters(standalone) == {
        RAW_B: "pfswatchd.formatters.PfsRawFormatter", RAW_N: "pfswatchd.formatters.PfsRawFormatter",
        RAW_F: "pfswatchd.formatters.PfsRawFormatter", CONFIG: "pfswatchd.formatters.PfsConfigFormatter",
        CALIB: "pfswatchd.formatters.FitsCalibFormatter"}
    assert {read[2] for read in raw_reads(stackenv.report("read", standalone))} == {"pfswatchd.butler.pfsraw.PfsRaw"}

    result = stackenv.run("pfswatchd", "hand-over", standalone)
    assert "2 datasets now read with lsst.obs.pfs.formatters.PfsRawFormatter" in result.stdout
    assert "1 datasets now read with lsst.obs.pfs.formatters.PfsSimulatorRawFormatter" in result.stdout
    assert "butler.yaml: obs_pfs's storage classes" in result.stdout
    assert formatters(standalone) == OFFICIAL
    # Only the formatter changed: same datasets, same files, same checksums and sizes.
    assert {path: (row[0], row[2], row[3]) for path, row in records(standalone).items()} == {
        path: (row[0], row[2], row[3]) for path, row in before.items()}
    config = yaml.safe_load((standalone / "butler.yaml").read_text())
    for key in ("storageClasses",):
        assert config[key] == SEED[key]
    assert config["datastore"]["formatters"] == SEED["datastore"]["formatters"]
    assert config["datastore"]["templates"] == SEED["datastore"]["templates"]
    assert config["registry"] == yaml.safe_load(old_config)["registry"]
    assert (standalone / "butler.yaml.pfswatchd-standalone").read_text() == old_config
    seen = stackenv.report("read", standalone)
    assert raw_reads(seen) == OBS_PFS_READS
    assert seen["pfsConfig"] == [
        {"dataId": {"instrument": "PFS", "visit": 100}, "type": "pfs.drp.stella.datamodel.PfsConfig", "visit": 100}]

    after = state(standalone)
    again = stackenv.run("pfswatchd", "hand-over", standalone)
    assert "nothing to change" in again.stdout
    assert state(standalone) == after


def test_hand_over_is_refused_where_obs_pfs_is_not_importable(standalone):
    before = state(standalone)
    result = stackenv.run("pfswatchd", "hand-over", standalone, stack=False, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"pfswatchd: {standalone}: obs_pfs (lsst.obs.pfs) is not importable here; run the hand-over where the PFS "
        "pipeline is set up, with pfswatchd installed by scripts/install-into-stack.py. Nothing was changed"]
    assert state(standalone) == before


def _killed_at(point: str, root: Path, tmp_path: Path) -> None:
    marker = tmp_path / f"{point}.reached"
    process = stackenv.start("pfswatchd", "hand-over", root, PFSWATCHD_FAULT=point, PFSWATCHD_FAULT_MARKER=str(marker))
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the fault point was never reached"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()


def test_a_hand_over_killed_in_its_transaction_changed_nothing_and_the_next_run_finishes(standalone, tmp_path):
    before = state(standalone)
    _killed_at("handover.records", standalone, tmp_path)  # every record replaced, not yet committed
    assert state(standalone) == before
    stackenv.run("pfswatchd", "hand-over", standalone)
    assert formatters(standalone) == OFFICIAL  # which the first test shows obs_pfs reads


def test_a_hand_over_killed_before_butler_yaml_is_resumed(standalone, tmp_path):
    old_config = (standalone / "butler.yaml").read_bytes()
    _killed_at("handover.committed", standalone, tmp_path)  # records committed, butler.yaml not yet replaced
    assert formatters(standalone) == OFFICIAL and (standalone / "butler.yaml").read_bytes() == old_config
    result = stackenv.run("pfswatchd", "hand-over", standalone)
    assert "datasets now read" not in result.stdout and "butler.yaml: obs_pfs's" in result.stdout
    assert yaml.safe_load((standalone / "butler.yaml").read_text())["storageClasses"] == SEED["storageClasses"]


def test_instrument_records_unlike_obs_pfs_are_refused_unless_updated(standalone):
    with repo.open_butler(standalone) as butler:  # as pfswatchd before 2c92aa4 registered it
        butler.registry.syncDimensionData("instrument", {"name": "PFS", "visit_max": 21474800, "detector_max": 20,
                                                         "class_name": "lsst.obs.pfs.PrimeFocusSpectrograph"},
                                          update=True)
    before = state(standalone)
    refused = stackenv.run("pfswatchd", "hand-over", standalone, check=False)
    assert refused.returncode == 1 and "--update-instrument-records" in refused.stderr
    assert "the records of instrument PFS differ from those obs_pfs's" in refused.stderr
    assert state(standalone) == before
    stackenv.run("pfswatchd", "hand-over", standalone, "--update-instrument-records")
    dumped = stackenv.report("dump", standalone)
    [pfs] = [r for r in dumped["records"]["instrument"] if r["name"] == "PFS"]
    assert pfs["class_name"] == "lsst.obs.pfs.PrimeFocusSpectrograph.PrimeFocusSpectrograph"
    assert formatters(standalone) == OFFICIAL
