"""Repositories made before the sub-package layout still read: the names they record still import.

``tests/data/repo-84c55fd.tar.gz`` is a real repository made and filled by pfswatchd at commit 84c55fd
(the last flat layout) with ``repo.create(root, instruments=["PFS"])`` and a copy-mode ingest of
``PFSA00010011.fits``, ``PFSB00010013.fits`` and their pfsConfig from ``fakedata``.  Its butler.yaml
names ``pfswatchd.pfsraw.PfsRaw`` and ``pfswatchd.formatters.PfsRawDelegate``; its datastore records
name ``pfswatchd.formatters.PfsRawFormatter`` and ``PfsConfigFormatter``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import classified, make_ingester, write_raw
from pfswatchd.butler import repo
from pfswatchd.butler.pfsconfig import PfsConfig
from pfswatchd.butler.pfsraw import PfsRaw

ARCHIVE = Path(__file__).resolve().parents[1] / "data" / "repo-84c55fd.tar.gz"


@pytest.fixture()
def old_repo(tmp_path) -> Path:
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "repo"


def test_the_fixture_records_the_old_names(old_repo):
    """The fixture really is an old repository: it names the flat-layout modules."""
    config = (old_repo / "butler.yaml").read_text()
    assert "pfswatchd.pfsraw.PfsRaw" in config and "pfswatchd.formatters.PfsRawDelegate" in config
    with sqlite3.connect(old_repo / "gen3.sqlite3") as db:
        formatters = {row[0] for row in db.execute("SELECT formatter FROM file_datastore_records")}
    assert formatters == {"pfswatchd.formatters.PfsRawFormatter", "pfswatchd.formatters.PfsConfigFormatter"}


def test_an_old_repository_reads_after_the_move(old_repo):
    """raw (CCD and NIR, with today's components) and pfsConfig come back as pfswatchd's classes."""
    butler = repo.open_butler(old_repo, writeable=False)
    try:
        ccd = butler.get("raw", instrument="PFS", visit=100, arm="b", spectrograph=1, collections="PFS/raw/all")
        assert isinstance(ccd, PfsRaw) and ccd.isCcd()
        assert ccd.getImage().array.dtype == np.uint16 and ccd.getImage().array.size > 0
        nir = butler.get("raw", instrument="PFS", visit=100, arm="n", spectrograph=1, collections="PFS/raw/all")
        assert isinstance(nir, PfsRaw) and nir.isNir() and nir.getNumReads() > 1
        # Its butler.yaml lists 7 raw components; opened by pfswatchd it has today's (ramp among them).
        read = butler.get("raw.ramp", instrument="PFS", visit=100, arm="n", spectrograph=1,
                          collections="PFS/raw/all", parameters={"readNum": 1})
        assert np.array_equal(read.array, nir.getCorrectedNirRead(1).array)
        assert butler.get("raw.bbox", instrument="PFS", visit=100, arm="n", spectrograph=1,
                          collections="PFS/raw/all").getDimensions() == nir.dimensions
        config = butler.get("pfsConfig", instrument="PFS", visit=100, collections="PFS/defaults")
        assert isinstance(config, PfsConfig) and config.visit == 100 and len(config) > 0
    finally:
        butler.close()


def test_an_old_repository_takes_new_files(old_repo, tmp_path):
    """Ingesting into an old repository with the new code works, and old and new datasets both read."""
    butler = repo.open_butler(old_repo)
    try:
        raw = write_raw(tmp_path / "new", visit=100, arm="r", spectrograph=1)
        # Its raws are in PFS/raw/all (pfswatchd's RUN before it took the official PFS/raw/sps).
        [outcome] = make_ingester(butler, old_repo, transfer="copy", raw_run="PFS/raw/all").ingest(classified(raw))
        assert outcome.ok, outcome
        for arm in "brn":
            got = butler.get("raw", instrument="PFS", visit=100, arm=arm, spectrograph=1,
                             collections="PFS/raw/all")
            assert isinstance(got, PfsRaw) and got.arm == arm
    finally:
        butler.close()


def test_old_and_new_repositories_open_in_one_process(old_repo, tmp_path):
    """daf_butler keeps one storage-class definition per process: new repositories record the same names,
    and pfswatchd opens an old one with today's components, so the order of opening does not matter.

    In a separate process, so that the old repository is the first this process sees.
    """
    new = repo.create(tmp_path / "new", instruments=["PFS"])
    new.close()
    script = (
        "import sys\n"
        "from pfswatchd.butler import repo\n"
        "from pfswatchd.butler.pfsraw import PfsRaw\n"
        "for root in sys.argv[1:]:\n"
        "    with repo.open_butler(root, writeable=False) as butler:\n"
        "        storage_class = butler.get_dataset_type('raw').storageClass\n"
        "        assert storage_class.pytype is PfsRaw, root\n"
        "        assert {'ramp', 'bbox', 'xy0', 'id'} <= set(storage_class.derivedComponents), root\n"
        "print('ok')\n"
    )
    roots = [str(old_repo), str(tmp_path / "new"), str(old_repo)]
    result = subprocess.run([sys.executable, "-c", script, *roots], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_plain_butler_reads_an_old_repository(old_repo):
    """A user's script (no pfswatchd import first) gets the components the repository lists, and every method.

    In a separate process: daf_butler keeps the first definition of PfsRaw a process sees, so this
    would leave the old component list behind for the other tests.
    """
    script = (
        "import sys\n"
        "from lsst.daf.butler import Butler\n"
        "butler = Butler.from_config(sys.argv[1], collections='PFS/raw/all')\n"
        "data_id = dict(instrument='PFS', visit=100, arm='n', spectrograph=1)\n"
        "raw = butler.get('raw', **data_id)\n"
        "assert (butler.get('raw.image', **data_id).array == raw.getImage().array).all()\n"
        "assert raw.getCorrectedNirRead(2).array.shape == (64, 64)\n"
        "assert butler.get('raw.visitInfo', **data_id).getId() == 100\n"
        "try:\n"
        "    butler.get('raw.ramp', parameters={'readNum': 1}, **data_id)\n"
        "except (KeyError, ValueError) as exc:\n"
        "    print('no ramp:', exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(old_repo)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "no ramp:" in result.stdout and "ramp" in result.stdout.split("no ramp:", 1)[1]
