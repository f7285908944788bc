"""pfswatchd into repositories made the way the PFS pipeline makes them (both "pfs v3" shapes).

The repositories come from tests/official.py (conftest.build_official_repository): obs_pfs's universe
with 17 or 18 visit columns, register-instrument's records, raws already in PFS/raw/sps with
DATAID_TYPE_RUN ids, a pfsConfig with a random id, and the helpdesk's PFS/defaults.  The one-shot
commands run as the user runs them (their own process); what the repository holds is read in another
process, so that the two universe shapes never meet in one (daf_butler caches one per version).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from conftest import OFFICIAL_VISIT, copy_official, inspect_repository, write_config, write_raw
from harness import BIN
from official import CLASS_NAMES, instrument_records, official_header, official_visit
from pfswatchd.butler import repo
from pfswatchd.errors import NotPfsRepositoryError

TASK = "lsst.obs.pfs.gen3.PfsRawIngestTask"


def _raw_id(run: str, visit: int, arm: str, spectrograph: int) -> str:
    """The DATAID_TYPE_RUN id, from the butler-notes recipe (not from daf_butler)."""
    text = f"dataset_type=raw,run={run},arm={arm},instrument=PFS,spectrograph={spectrograph},visit={visit}"
    return str(uuid.uuid5(uuid.UUID("840b31d9-05cd-5161-b2c8-00d32b280d0f"), text))


def _run(*args, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(BIN / "pfswatchd"), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _datasets(state: dict) -> dict[tuple, str]:
    return {(d["type"], d["run"], *sorted(d["data_id"].items())): d["id"] for d in state["datasets"]}


@pytest.mark.parametrize("columns", [17, 18])
def test_one_shot_commands_into_an_official_repository(official_templates, tmp_path, columns):
    """New files go in beside the official ones, duplicates are no-ops, conflicts one line each; the
    curated chain, the instruments and the official visit record stay exactly as they were."""
    official = copy_official(official_templates(columns), tmp_path)
    root = official["root"]
    before = inspect_repository(root)
    assert len(before["visit_columns"]) == columns and ("irp_ratio" in before["visit_columns"]) == (columns == 18)
    new = [write_raw(tmp_path / "new", visit=OFFICIAL_VISIT, arm="b", spectrograph=2),  # another camera
           write_raw(tmp_path / "new", visit=501, arm="n", spectrograph=1, mjd=60800.7),  # a new visit
           write_raw(tmp_path / "new", visit=501, arm="b", spectrograph=1, mjd=60800.7)]  # its first file (sorted)
    again = tmp_path / "again"  # the official raws' bytes, from another folder (a re-download)
    again.mkdir()
    for path in official["raws"]:
        shutil.copy(path, again / path.name)
    conflicting = write_raw(tmp_path / "other", visit=OFFICIAL_VISIT, arm="r", spectrograph=1, seed=7)
    result = _run("ingest-raws", root, tmp_path / "new", again, tmp_path / "other", "--ingest-task", TASK,
                  "--transfer", "link", check=False)
    assert result.returncode == 1
    assert "7 files: 3 ingested, 3 duplicate, 0 waiting, 0 skipped, 1 failed" in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"FAILED {conflicting}: [conflict]") and "already in PFS/raw/sps" in line

    # pfsConfigs: the official one again (its id is random) is a duplicate; other bytes for that visit
    # are a conflict; the new visit's goes in.
    copy = tmp_path / "configs" / official["pfsconfig"].name
    copy.parent.mkdir()
    shutil.copy(official["pfsconfig"], copy)
    other = write_config(tmp_path / "other-configs", visit=OFFICIAL_VISIT, n_fibers=20)
    fresh = write_config(tmp_path / "configs", visit=501)
    result = _run("ingest-pfsconfig", root, "PFS", "PFS/raw/pfsConfig", copy, other, fresh, check=False)
    assert result.returncode == 1 and "3 files: 1 ingested, 1 duplicate" in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"FAILED {other}: [conflict]") and official["ids"][copy.name] in line

    after = inspect_repository(root)
    assert after["chains"] == before["chains"] == {"PFS/defaults": ["PFS/raw/pfsConfig", "PFS/raw/sps", "PFS/calib"]}
    assert after["instruments"] == before["instruments"]
    visits = {v["id"]: v for v in after["visits"]}
    assert visits[OFFICIAL_VISIT] == {v["id"]: v for v in before["visits"]}[OFFICIAL_VISIT]
    # The new visit's record has exactly this repository's columns, as obs_pfs writes it.
    expected = official_visit(official_header(new[2]), set(before["visit_columns"]))
    record = visits[501]
    assert set(record) == {"instrument", "id", "obs_id", "pfs_design_id", "dither", "timespan", "region",
                           *before["visit_columns"]}
    for name in before["visit_columns"]:
        assert record[name] == expected[name], name
    datasets = _datasets(after)
    assert set(_datasets(before).items()) <= set(datasets.items())  # nothing official changed
    for path, visit, arm, spectrograph in ((new[0], OFFICIAL_VISIT, "b", 2), (new[1], 501, "n", 1),
                                           (new[2], 501, "b", 1)):
        key = ("raw", "PFS/raw/sps", ("arm", arm), ("instrument", "PFS"), ("spectrograph", spectrograph),
               ("visit", visit))
        assert datasets[key] == _raw_id("PFS/raw/sps", visit, arm, spectrograph), path.name
    assert len(datasets) == len(before["datasets"]) + 4

    # The same command again changes nothing and retries nothing.
    result = _run("ingest-raws", root, tmp_path / "new", again, "--ingest-task", TASK)
    assert "6 files: 0 ingested, 6 duplicate" in result.stdout and result.stderr == ""
    assert inspect_repository(root)["datasets"] == after["datasets"]


def test_an_instrument_is_registered_only_when_the_configuration_names_it(official_templates, tmp_path):
    """The official repository has only PFS: a PFS-F raw registers PFS-F as register-instrument would;
    a raw from site J, which has no obs_pfs Instrument class, is refused with a reason."""
    official = copy_official(official_templates(17), tmp_path)
    simulated = write_raw(tmp_path / "in", visit=600, site="F")
    other_site = write_raw(tmp_path / "in", visit=601, site="J")
    result = _run("ingest-raws", official["root"], simulated, other_site, check=False)
    assert result.returncode == 1 and "1 ingested" in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert f"FAILED {other_site}: [unknown_instrument]" in line and "PFS-J is not registered" in line
    instruments = {r["name"]: r for r in inspect_repository(official["root"])["instruments"]}
    assert set(instruments) == {"PFS", "PFS-F"}
    assert instruments["PFS-F"] == instrument_records("PFS-F")["instrument"][0]


def test_create_reports_the_shape_and_keeps_the_chain(official_templates, tmp_path):
    official = copy_official(official_templates(17), tmp_path)
    result = _run("create", official["root"], "--instrument", "PFS")
    assert "pfs v3, 17 visit columns, without irp_ratio" in result.stdout
    assert "PFS/defaults -> PFS/raw/pfsConfig, PFS/raw/sps, PFS/calib" in result.stdout
    fresh = _run("create", tmp_path / "fresh").stdout
    assert "pfs v3, 18 visit columns, with irp_ratio" in fresh
    assert "PFS/defaults -> PFS/raw/pfsConfig, PFS/raw/sps" in fresh


def test_created_records_equal_register_instrument(butler):
    """What `pfswatchd create` registers equals what obs_pfs's register-instrument writes."""
    for instrument in ("PFS", "PFS-F", "PFS-L"):
        for element, rows in instrument_records(instrument).items():
            stored = [r.toDict() for r in butler.query_dimension_records(element, where="instrument = inst",
                                                                          bind={"inst": instrument}, explain=False)]
            key = "id" if element == "detector" else ("num" if element == "spectrograph" else "name")
            assert sorted(stored, key=lambda r: r[key]) == sorted(rows, key=lambda r: r[key]), (instrument, element)
    assert repo.INSTRUMENT_CLASSES == CLASS_NAMES


def test_a_second_shape_in_one_process_is_refused_not_misread(official_templates, pfs_repo, tmp_path):
    """This process holds the 18-column universe (pfs_repo); daf_butler would hand it to a 17-column
    repository too, whose tables lack irp_ratio: refused with the reason, nothing written."""
    official = copy_official(official_templates(17), tmp_path / "o")
    repo.open_butler(pfs_repo).close()
    with pytest.raises(NotPfsRepositoryError) as caught:
        repo.open_butler(official["root"])
    message = str(caught.value)
    assert "17 visit columns" in message and "open this repository in a new process" in message
