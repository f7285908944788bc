"""Where the PFS pipeline is installed, pfswatchd makes and fills repositories with obs_pfs's own machinery.

"Installed" is the test double of obs_pfs's interface (tests/stack_double, see its README), on the import
path of subprocesses only (tests/stackenv.py).  What the official tools do is not restated here: the
test runs them (`butler create --seed-config`, `butler register-instrument`, pipe_base's real command)
on the same double and compares.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest
import yaml

import stackenv
from conftest import write_config, write_raw
from pfswatchd.butler import obspfs

GEN3 = stackenv.DOUBLE / "obs_pfs" / "gen3"
CLASSES = tuple(f"lsst.obs.pfs.PrimeFocusSpectrograph.{name}"
                for name in ("PrimeFocusSpectrograph", "PfsSimulator", "PfsDevelopment"))


def formatters(root: Path) -> dict[str, str]:
    """The formatter each file of the repository is read with (daf_butler's file_datastore_records)."""
    with sqlite3.connect(root / "gen3.sqlite3") as db:
        return dict(db.execute("SELECT path, formatter FROM file_datastore_records"))


def stored_universe(root: Path) -> dict:
    with sqlite3.connect(root / "gen3.sqlite3") as db:
        [(text,)] = db.execute("SELECT value FROM butler_attributes WHERE name = 'config:dimensions.json'")
    return json.loads(text)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("obspfs") / "repo"
    return root, stackenv.run("pfswatchd", "create", root).stdout


def test_the_double_is_not_importable_in_the_test_process():
    assert importlib.util.find_spec("lsst.pipe") is not None  # pipe_base is really installed
    assert not obspfs.importable()
    with pytest.raises(ModuleNotFoundError):
        importlib.util.find_spec("lsst.obs.pfs")


def test_create_is_butler_create_plus_register_instrument(made, tmp_path):
    ours, output = made
    official = tmp_path / "official"
    stackenv.run("butler", "create", official, "--seed-config", GEN3 / "butler.yaml", "--dimension-config",
                 GEN3 / "dimensions.yaml")
    stackenv.run("butler", "register-instrument", official, *CLASSES)
    assert f"made from obs_pfs's configuration ({GEN3})" in output
    # The same repository configuration (obs_pfs's storage classes, formatters, templates), the same universe
    # (the double's obs_pfs ships 17 visit columns; pfswatchd's own has 18), the same records and types.
    assert yaml.safe_load((ours / "butler.yaml").read_text()) == yaml.safe_load((official / "butler.yaml").read_text())
    assert stored_universe(ours) == stored_universe(official)
    assert len(stored_universe(ours)["elements"]["visit"]["metadata"]) == 17 and "17 visit columns" in output
    assert stackenv.report("dump", ours) == stackenv.report("dump", official)


def test_ingest_records_the_official_formatters_and_the_pipeline_reads_obs_pfs_classes(made, tmp_path):
    root, _ = made
    data = tmp_path / "data"
    raws = [write_raw(data, visit=100, arm="b"), write_raw(data, visit=100, arm="n"),
            write_raw(data, visit=7, arm="r", site="F")]
    stackenv.run("pfswatchd", "ingest-raws", root, *raws, "--transfer", "copy")
    stackenv.run("pfswatchd", "ingest-pfsconfig", root, "PFS", "PFS/raw/pfsConfig", write_config(data, visit=100),
                 "--transfer", "copy")
    # obs_base's raw ingest records the Instrument's getRawFormatter; a pfsConfig the repository's configured one.
    assert formatters(root) == {
        "PFS/raw/sps/raw/20250505/100/raw_PFS_100_b1_PFS_raw_sps.fits": "lsst.obs.pfs.formatters.PfsRawFormatter",
        "PFS/raw/sps/raw/20250505/100/raw_PFS_100_n1_PFS_raw_sps.fits": "lsst.obs.pfs.formatters.PfsRawFormatter",
        "PFS-F/raw/sps/raw/20250505/7/raw_PFS-F_7_r1_PFS-F_raw_sps.fits":
            "lsst.obs.pfs.formatters.PfsSimulatorRawFormatter",
        "PFS/raw/pfsConfig/pfsConfig/20250505/100/pfsConfig_PFS_100_PFS_raw_pfsConfig.fits":
            "lsst.obs.base.formatters.fitsGeneric.FitsGenericFormatter",
    }
    seen = stackenv.report("read", root)
    assert {(r["dataId"]["instrument"], r["dataId"]["arm"], r["type"], r["pfsCategory"]) for r in seen["raw"]} == {
        ("PFS", "b", "lsst.obs.pfs.raw.PfsRaw", None), ("PFS", "n", "lsst.obs.pfs.raw.PfsRaw", None),
        ("PFS-F", "r", "lsst.obs.pfs.raw.PfsRaw", "F")}
    assert seen["pfsConfig"] == [{"dataId": {"instrument": "PFS", "visit": 100},
                                  "type": "pfs.drp.stella.datamodel.PfsConfig", "visit": 100}]
