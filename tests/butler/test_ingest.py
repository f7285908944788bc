"""The ingest engine against a real butler repository."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from lsst.daf.butler import Butler
from lsst.daf.butler.registry import MissingCollectionError
from lsst.utils.introspection import get_full_type_name

from conftest import DESIGN, classified, make_ingester, write_config, write_raw
from pfswatchd.butler.transfer import TRANSFER_MODES
from pfswatchd.model import Status


def _datasets(root, collections="PFS/raw/sps", dataset_type="raw"):
    with Butler.from_config(str(root), collections=collections) as reader:
        return {
            (ref.dataId["visit"], ref.dataId.get("arm"), ref.dataId.get("spectrograph")): ref
            for ref in reader.query_datasets(dataset_type, collections=collections, find_first=False, limit=None,
                                             explain=False)
        }


def _snapshot(root: Path):
    """Every file in the repository with its bytes, to prove that nothing changed."""
    result = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if name.endswith(".sqlite3") or "-journal" in name or name.endswith("-wal") or name.endswith("-shm"):
                continue
            result[path] = path.read_bytes() if not path.is_symlink() else os.readlink(path)
    return result


@pytest.mark.parametrize(
    ("data_id", "run", "expected"),
    [
        (dict(visit=123456, arm="b", spectrograph=1), "PFS/raw/all", "f2ce997f-110d-5a7b-885e-2f7fb47ee345"),
        (dict(visit=123457, arm="b", spectrograph=1), "PFS/raw/all", "5d0d5f18-b1ab-53be-b387-a103bc3a1c50"),
        (dict(visit=123456, arm="m", spectrograph=4), "PFS/raw/all", "b7b40472-b7e0-5139-9e2e-199cac93c54e"),
        (dict(visit=123456, arm="b", spectrograph=1), "PFS/raw/sps", "60b3a6bf-e07f-508e-8a44-d72f99c2ae38"),
    ],
)
def test_raw_ids_equal_the_test_vectors(butler, pfs_repo, tmp_path, data_id, run, expected):
    raw = write_raw(tmp_path / "in", **data_id)
    settings = {} if run == "PFS/raw/sps" else {"raw_run": run}  # raw/sps is the default RUN
    [outcome] = make_ingester(butler, pfs_repo, **settings).ingest(classified(raw))
    assert (outcome.status, outcome.dataset_id, outcome.run) == (Status.INGESTED, expected, run)
    assert str(_datasets(pfs_repo, run)[(data_id["visit"], data_id["arm"], data_id["spectrograph"])].id) == expected


def test_pfsconfig_id_equals_the_test_vector(butler, pfs_repo, tmp_path):
    raw = write_raw(tmp_path / "in", visit=123456)
    config = write_config(tmp_path / "in", visit=123456)
    outcomes = make_ingester(butler, pfs_repo).ingest(classified(raw, config))
    assert [o.status for o in outcomes] == [Status.INGESTED, Status.INGESTED]
    assert outcomes[1].dataset_id == "0c4d42ab-4422-5d49-a7a8-751782d3fde0"
    assert outcomes[1].run == "PFS/raw/pfsConfig"


@pytest.mark.parametrize("mode", TRANSFER_MODES)
def test_each_transfer_mode(butler, pfs_repo, tmp_path, mode):
    """Every mode puts the file where the butler can read it, and the source is treated as the mode says."""
    source = write_raw(tmp_path / "in", visit=42, arm="r", spectrograph=2)
    nir = write_raw(tmp_path / "in", visit=42, arm="n", spectrograph=2)
    content = source.read_bytes()
    outcomes = make_ingester(butler, pfs_repo, transfer=mode).ingest(classified(source, nir))
    assert [o.status for o in outcomes] == [Status.INGESTED] * 2
    with Butler.from_config(str(pfs_repo), collections="PFS/raw/sps") as reader:
        stored = Path(reader.getURI("raw", instrument="PFS", visit=42, arm="r", spectrograph=2).ospath)
        image = reader.get("raw.image", instrument="PFS", visit=42, arm="r", spectrograph=2)
    assert image.array.shape == (86, 96)
    if mode == "direct":
        assert stored == source.absolute()
        return
    assert stored.is_relative_to(pfs_repo) and stored.name == "raw_PFS_42_r2_PFS_raw_sps.fits"
    if mode in ("auto", "link", "hardlink"):
        assert not stored.is_symlink() and stored.stat().st_ino == source.stat().st_ino
    elif mode == "symlink":
        assert stored.is_symlink() and os.path.isabs(os.readlink(stored))
        assert Path(os.readlink(stored)) == source.resolve()
    elif mode == "relsymlink":
        assert stored.is_symlink() and not os.path.isabs(os.readlink(stored))
        assert stored.resolve() == source.resolve()
    elif mode == "copy":
        assert source.exists() and stored.stat().st_ino != source.stat().st_ino
    elif mode == "move":
        assert not source.exists() and not nir.exists()
    assert stored.read_bytes() == content


def test_visit_in_three_separate_calls_in_any_order(butler, pfs_repo, tmp_path):
    """The official tool needs one call per visit; here each arm arrives on its own, NIR first."""
    folder = tmp_path / "in"
    files = [write_raw(folder, visit=7, arm=arm, spectrograph=1, mjd=60800.5 + i / 86400)
             for i, arm in enumerate("nrb")]
    ingester = make_ingester(butler, pfs_repo)
    for path in files:
        [outcome] = ingester.ingest(classified(path))
        assert outcome.status is Status.INGESTED, outcome.message
    # A fresh ingester (a new process) sees the visit in the registry, not in its cache.
    extra = write_raw(folder, visit=7, arm="b", spectrograph=2)
    [outcome] = make_ingester(butler, pfs_repo).ingest(classified(extra))
    assert outcome.status is Status.INGESTED
    assert set(_datasets(pfs_repo)) == {(7, "n", 1), (7, "r", 1), (7, "b", 1), (7, "b", 2)}
    [visit] = butler.query_dimension_records("visit", instrument="PFS", visit=7)
    assert visit.pfs_design_id == DESIGN and visit.day_obs == 20250505


def test_pfsconfig_before_its_raws_waits(butler, pfs_repo, tmp_path):
    config = write_config(tmp_path / "in", visit=9)
    ingester = make_ingester(butler, pfs_repo)
    [waiting] = ingester.ingest(classified(config))
    assert waiting.status is Status.WAITING and "visit 9" in waiting.message
    assert _datasets(pfs_repo, "PFS/raw/pfsConfig", "pfsConfig") == {}
    ingester.ingest(classified(write_raw(tmp_path / "in", visit=9)))
    [done] = ingester.ingest(classified(config))
    assert done.status is Status.INGESTED
    with Butler.from_config(str(pfs_repo), collections="PFS/defaults") as reader:
        pfs_config = reader.get("pfsConfig", instrument="PFS", visit=9)
        cat_ids = {r.cat_id for r in reader.query_dimension_records("pfsConfig", instrument="PFS", visit=9)}
    assert pfs_config.pfsDesignId == DESIGN and len(pfs_config) == 12
    assert cat_ids == set(int(c) for c in pfs_config.catId)


def test_pfsconfig_with_the_wrong_design_is_rejected(butler, pfs_repo, tmp_path):
    ingester = make_ingester(butler, pfs_repo)
    ingester.ingest(classified(write_raw(tmp_path / "in", visit=10)))
    [outcome] = ingester.ingest(classified(write_config(tmp_path / "in", visit=10, design=DESIGN + 1)))
    assert outcome.status is Status.FAILED and outcome.error_kind == "design_mismatch"
    assert f"0x{DESIGN:016x}" in outcome.message and f"0x{DESIGN + 1:016x}" in outcome.message


def test_raw_that_disagrees_with_its_visit(butler, pfs_repo, tmp_path):
    """Another design is refused; values obs_pfs never compares (dither, exposure time) only warn."""
    ingester = make_ingester(butler, pfs_repo)
    ingester.ingest(classified(write_raw(tmp_path / "a", visit=11, arm="b")))
    other_design = write_raw(tmp_path / "b", visit=11, arm="r", design=DESIGN + 5)
    other_dither = write_raw(tmp_path / "c", visit=11, arm="n", dither_mm=0.001)
    other_exposure = write_raw(tmp_path / "d", visit=11, arm="r", spectrograph=2, exptime=31.0)
    design_out, dither_out, exposure_out = make_ingester(butler, pfs_repo).ingest(
        classified(other_design, other_dither, other_exposure))
    assert design_out.error_kind == "design_mismatch" and "one design per visit" in design_out.message
    assert (dither_out.status, dither_out.error_kind) == (Status.INGESTED, "visit_mismatch")
    assert "dither 10 but the visit has 0" in dither_out.message
    assert (exposure_out.status, exposure_out.error_kind) == (Status.INGESTED, "visit_mismatch")
    assert "exposure_time 31.0 but the visit has 30.0" in exposure_out.message
    assert set(_datasets(pfs_repo)) == {(11, "b", 1), (11, "n", 1), (11, "r", 2)}
    [visit] = butler.query_dimension_records("visit", instrument="PFS", visit=11)
    assert (visit.dither, visit.exposure_time) == (0, 30.0)  # the first raw's values, as obs_pfs keeps them


def test_same_file_twice_is_a_duplicate_that_changes_nothing(butler, pfs_repo, tmp_path):
    raw = write_raw(tmp_path / "in", visit=12)
    ingester = make_ingester(butler, pfs_repo, transfer="copy")
    [first] = ingester.ingest(classified(raw))
    before = _snapshot(pfs_repo)
    [again] = make_ingester(butler, pfs_repo, transfer="copy").ingest(classified(raw))
    copy = tmp_path / "elsewhere" / raw.name
    copy.parent.mkdir()
    copy.write_bytes(raw.read_bytes())
    [same_bytes] = ingester.ingest(classified(copy))
    assert first.status is Status.INGESTED
    assert again.status is Status.DUPLICATE and again.dataset_id == first.dataset_id
    assert same_bytes.status is Status.DUPLICATE
    assert _snapshot(pfs_repo) == before


def test_conflicting_file_is_never_an_overwrite(butler, pfs_repo, tmp_path):
    original = write_raw(tmp_path / "a", visit=13, seed=1)
    make_ingester(butler, pfs_repo, transfer="copy").ingest(classified(original))
    before = _snapshot(pfs_repo)
    other = write_raw(tmp_path / "b", visit=13, seed=2)
    assert other.read_bytes() != original.read_bytes()
    [outcome] = make_ingester(butler, pfs_repo, transfer="copy").ingest(classified(other))
    assert outcome.status is Status.FAILED and outcome.error_kind == "conflict"
    assert "already in PFS/raw/sps" in outcome.message and "nothing was overwritten" in outcome.message
    assert _snapshot(pfs_repo) == before


def test_a_bad_file_in_a_batch_does_not_stop_the_good_ones(butler, pfs_repo, tmp_path):
    good = [write_raw(tmp_path / "in", visit=14, arm=arm) for arm in "br"]
    conflict_source = write_raw(tmp_path / "old", visit=15, seed=1)
    make_ingester(butler, pfs_repo).ingest(classified(conflict_source))
    conflicting = write_raw(tmp_path / "new", visit=15, seed=9)
    outcomes = make_ingester(butler, pfs_repo).ingest(classified(good[0], conflicting, good[1]))
    assert [o.status for o in outcomes] == [Status.INGESTED, Status.FAILED, Status.INGESTED]


def test_fail_fast_writes_nothing_after_an_error(butler, pfs_repo, tmp_path):
    make_ingester(butler, pfs_repo).ingest(classified(write_raw(tmp_path / "old", visit=16, seed=1)))
    before = _snapshot(pfs_repo)
    conflicting = write_raw(tmp_path / "new", visit=16, seed=3)
    fine = write_raw(tmp_path / "new", visit=17)
    outcomes = make_ingester(butler, pfs_repo, fail_fast=True).ingest(classified(conflicting, fine))
    assert [o.status for o in outcomes] == [Status.FAILED, Status.SKIPPED]
    assert _snapshot(pfs_repo) == before


def _pfsconfig_sizes(root, visit, runs):
    """The number of fibres of the pfsConfig of ``visit`` in each RUN (None where there is none)."""
    with Butler.from_config(str(root)) as reader:
        found = {}
        for run in runs:
            try:
                ref = reader.find_dataset("pfsConfig", instrument="PFS", visit=visit, collections=run)
            except MissingCollectionError:
                ref = None
            found[run] = None if ref is None else len(reader.get(ref))
    return found


def test_pfsf_customised_first_then_full(butler, pfs_repo, tmp_path):
    """pfsfrule: a lone customised PFSF is found in PFS/raw/pfsConfig (a stand-in) and in .../NN; the full
    one arriving later goes to PFS/raw/pfsConfig/00 with a warning; nothing is overwritten."""
    folder = tmp_path / "in"
    ingester = make_ingester(butler, pfs_repo)
    ingester.ingest(classified(write_raw(folder, visit=18)))
    custom2, custom1 = write_config(folder, visit=18, subset=2), write_config(folder, visit=18, subset=1)
    outcomes = ingester.ingest(classified(custom2, custom1))
    assert [(o.status, o.run) for o in outcomes] == [
        (Status.INGESTED, "PFS/raw/pfsConfig/02"), (Status.INGESTED, "PFS/raw/pfsConfig/01")]
    with Butler.from_config(str(pfs_repo)) as reader:  # the lowest suffix stands in
        standin = reader.get("pfsConfig", instrument="PFS", visit=18, collections="PFS/raw/pfsConfig")
        assert standin.fiberId.tolist() == reader.get("pfsConfig", instrument="PFS", visit=18,
                                                      collections="PFS/raw/pfsConfig/01").fiberId.tolist()
    full = write_config(folder, visit=18, pfsf=True)
    renamed_full = write_config(folder, visit=18)
    [moved] = make_ingester(butler, pfs_repo).ingest(classified(full))
    assert (moved.status, moved.run, moved.error_kind) == (Status.INGESTED, "PFS/raw/pfsConfig/00", None)
    assert "already holds a customised PFSF" in moved.message
    [again] = make_ingester(butler, pfs_repo).ingest(classified(renamed_full))
    assert (again.status, again.run) == (Status.DUPLICATE, "PFS/raw/pfsConfig/00")
    sizes = _pfsconfig_sizes(pfs_repo, 18, ["PFS/raw/pfsConfig", "PFS/raw/pfsConfig/00", "PFS/raw/pfsConfig/01",
                                            "PFS/raw/pfsConfig/02", "PFS/defaults"])
    assert sizes["PFS/raw/pfsConfig/00"] == 12 and all(0 < sizes[r] < 12 for r in ("PFS/raw/pfsConfig/01",
                                                                                    "PFS/raw/pfsConfig/02"))
    assert sizes["PFS/raw/pfsConfig"] == sizes["PFS/defaults"] == sizes["PFS/raw/pfsConfig/01"]
    assert butler.registry.getCollectionChain("PFS/defaults") == ("PFS/raw/pfsConfig", "PFS/raw/sps")


def test_pfsf_full_first_then_customised(butler, pfs_repo, tmp_path):
    """pfsfrule: the full one in PFS/raw/pfsConfig, the customised ones only in .../NN."""
    folder = tmp_path / "in"
    ingester = make_ingester(butler, pfs_repo)
    ingester.ingest(classified(write_raw(folder, visit=28)))
    [full] = ingester.ingest(classified(write_config(folder, visit=28)))
    outcomes = ingester.ingest(classified(write_config(folder, visit=28, subset=1),
                                          write_config(folder, visit=28, subset=2)))
    assert (full.status, full.run) == (Status.INGESTED, "PFS/raw/pfsConfig")
    assert [(o.status, o.run, o.message) for o in outcomes] == [
        (Status.INGESTED, "PFS/raw/pfsConfig/01", None), (Status.INGESTED, "PFS/raw/pfsConfig/02", None)]
    sizes = _pfsconfig_sizes(pfs_repo, 28, ["PFS/raw/pfsConfig", "PFS/raw/pfsConfig/00", "PFS/raw/pfsConfig/01",
                                            "PFS/raw/pfsConfig/02", "PFS/defaults"])
    assert sizes["PFS/raw/pfsConfig"] == sizes["PFS/defaults"] == 12 and sizes["PFS/raw/pfsConfig/00"] is None
    assert 0 < sizes["PFS/raw/pfsConfig/01"] < 12 and 0 < sizes["PFS/raw/pfsConfig/02"] < 12


def test_pfsf_full_and_customised_in_one_batch(butler, pfs_repo, tmp_path):
    """Arriving together, the full one takes PFS/raw/pfsConfig whatever the order in the batch."""
    folder = tmp_path / "in"
    raw = write_raw(folder, visit=38)
    outcomes = make_ingester(butler, pfs_repo).ingest(classified(
        raw, write_config(folder, visit=38, subset=2), write_config(folder, visit=38, pfsf=True)))
    assert [(o.status, o.run) for o in outcomes] == [
        (Status.INGESTED, "PFS/raw/sps"), (Status.INGESTED, "PFS/raw/pfsConfig/02"),
        (Status.INGESTED, "PFS/raw/pfsConfig")]
    sizes = _pfsconfig_sizes(pfs_repo, 38, ["PFS/raw/pfsConfig", "PFS/raw/pfsConfig/02"])
    assert sizes["PFS/raw/pfsConfig"] == 12 and 0 < sizes["PFS/raw/pfsConfig/02"] < 12


def test_ccd_and_nir_read_back(butler, pfs_repo, tmp_path):
    ccd = write_raw(tmp_path / "in", visit=19, arm="b", spectrograph=3)
    nir = write_raw(tmp_path / "in", visit=19, arm="n", spectrograph=3, n_reads=4)
    make_ingester(butler, pfs_repo).ingest(classified(ccd, nir))
    with Butler.from_config(str(pfs_repo), collections="PFS/raw/sps") as reader:
        raw = reader.get("raw", instrument="PFS", visit=19, arm="b", spectrograph=3)
        ramp = reader.get("raw", instrument="PFS", visit=19, arm="n", spectrograph=3)
        metadata = reader.get("raw.metadata", instrument="PFS", visit=19, arm="n", spectrograph=3)
        exposure = reader.get("raw.exposure", instrument="PFS", visit=19, arm="b", spectrograph=3)
    assert raw.getImage().array.dtype.name == "uint16" and raw.getNumReads() == 1
    assert raw.dataId["visit"] == 19 and raw.getMetadata()["W_SPMOD"] == 3
    cds = ramp.getImage().array
    assert ramp.getNumReads() == 4 and metadata["W_H4NRED"] == 4
    assert (cds == ramp.getCorrectedNirRead(4).array - ramp.getCorrectedNirRead(1).array).all()
    assert exposure.getDetector().name == "b3" and exposure.getImage().array.shape == raw.getImage().array.shape


def test_metrology_is_not_a_raw(butler, pfs_repo, tmp_path):
    from pfswatchd import fakedata
    from pfswatchd.files.examine import examine

    found = examine(fakedata.write_metrology(tmp_path / "PFSC00002000.fits", visit=20))
    assert found.classified is None and found.skipped is not None


def test_visits_evicted_from_the_bounded_cache_are_read_again(butler, pfs_repo, tmp_path, monkeypatch):
    """The visit cache holds two visits here: raws, a pfsConfig and a wrong design of visits that fell
    out of it are decided against the registry's records, in one batch and across batches."""
    from pfswatchd.butler import ingest

    monkeypatch.setattr(ingest, "VISIT_CACHE", 2)
    ingester = make_ingester(butler, pfs_repo)
    first = [write_raw(tmp_path / "a", visit=visit, arm="b") for visit in (700, 701, 702, 703, 704)]
    assert [o.status for o in ingester.ingest(classified(*first))] == [Status.INGESTED] * 5
    assert len(ingester._visits) == 2
    # One batch of five visits the registry has and the cache mostly does not (more than it holds).
    second = [write_raw(tmp_path / "b", visit=visit, arm="r") for visit in (700, 701, 702, 703, 704)]
    assert [o.status for o in ingester.ingest(classified(*second))] == [Status.INGESTED] * 5
    for visit in (700, 701, 702):  # evicted again by now
        config = write_config(tmp_path / "c", visit=visit)
        wrong = write_raw(tmp_path / "c", visit=visit, arm="n", design=DESIGN + 1)
        config_outcome, wrong_outcome = ingester.ingest(classified(config, wrong))
        assert config_outcome.status is Status.INGESTED, config_outcome.message
        assert (wrong_outcome.status, wrong_outcome.error_kind) == (Status.FAILED, "design_mismatch")
    assert len(_datasets(pfs_repo)) == 10 and len(_datasets(pfs_repo, "PFS/raw/pfsConfig", "pfsConfig")) == 3
    with Butler.from_config(str(pfs_repo)) as reader:
        assert len(list(reader.registry.queryDimensionRecords("visit", instrument="PFS"))) == 5


def test_copies_in_one_batch_are_duplicates_of_the_first_and_other_bytes_a_conflict(butler, pfs_repo, tmp_path):
    """Identical files in one batch: the first ingested, the copies duplicates with its dataset id
    (all were `ingested` with one id); another file for the same data ID in that batch is a conflict."""
    first = write_raw(tmp_path / "a", visit=910)
    copies = []
    for folder in ("b", "c"):
        (tmp_path / folder).mkdir()
        copies.append(tmp_path / folder / first.name)
        copies[-1].write_bytes(first.read_bytes())
    other = write_raw(tmp_path / "d", visit=910, seed=3)
    outcomes = make_ingester(butler, pfs_repo).ingest(classified(first, *copies, other))
    assert [o.status for o in outcomes] == [Status.INGESTED, Status.DUPLICATE, Status.DUPLICATE, Status.FAILED]
    assert outcomes[1].dataset_id == outcomes[2].dataset_id == outcomes[0].dataset_id
    assert outcomes[3].error_kind == "conflict", outcomes[3].message


def test_the_registry_caches_only_statements_used_again_and_a_bounded_number(pfs_repo, tmp_path, monkeypatch):
    """Each ingest call inserts through a temporary table of a new name, whose statements SQLAlchemy
    would keep compiled (500 of them, then pruned): none of those enter the registry's cache, the
    statements every batch uses do, and the cache holds at most 1.5 x its size."""
    from pfswatchd.butler import repo, statementcache

    monkeypatch.setattr(statementcache, "SIZE", 8)
    butler = repo.open_butler(pfs_repo)
    try:
        engine = butler._registry._db._engine
        cache = engine._execution_options.get("compiled_cache", engine._compiled_cache)  # what statements use
        ingester = make_ingester(butler, pfs_repo)
        for visit in range(800, 815):
            outcome, = ingester.ingest(classified(write_raw(tmp_path / "a", visit=visit, arm="b")))
            assert outcome.status is Status.INGESTED, outcome.message
            statements = [str(cache[key].statement) for key in list(cache)]
            assert not [s for s in statements if "tmp_" in s], "a temporary table's statement was cached"
            assert len(cache) <= 12, len(cache)
        assert len(cache) >= 8  # the statements used again are cached
        assert engine._compiled_cache is cache or len(engine._compiled_cache) == 0  # start-up's, emptied
    finally:
        butler.close()
    assert len(_datasets(pfs_repo)) == 15


def test_a_statement_enters_the_cache_when_compiled_the_second_time():
    from pfswatchd.butler.statementcache import ReusedStatements

    cache = ReusedStatements(4, seen=3)
    cache[("a",)] = "compiled a"
    assert cache.get(("a",)) is None and len(cache) == 0
    cache[("a",)] = "compiled a"
    assert cache.get(("a",)) == "compiled a"
    for name in "bcdef":  # seen once each: ("a",)'s first sighting would be forgotten, the cache is unchanged
        cache[(name,)] = name
    assert list(cache) == [("a",)] and len(cache._once) <= 3 * 1.5


def test_the_formatter_the_datastore_chose_first_is_recorded_for_every_later_file(butler, pfs_repo, tmp_path):
    """The datastore looks up (or imports) a formatter for each file it is not given a class for; the
    ingester hands it the class it chose for the first file of a dataset type and instrument: every file
    records the same formatter either way, and reads back with it."""
    ingester = make_ingester(butler, pfs_repo)
    first = classified(*(write_raw(tmp_path / "a", visit=4100, arm=arm) for arm in "br"))
    later = classified(*(write_raw(tmp_path / "b", visit=4101, arm=arm) for arm in "bn"))
    assert {o.status for o in ingester.ingest(first)} == {Status.INGESTED}
    learned = dict(ingester._chosen_formatters)
    assert [key[0] for key in learned] == ["raw"], learned
    assert {o.status for o in ingester.ingest(later)} == {Status.INGESTED}
    with sqlite3.connect(pfs_repo / "gen3.sqlite3") as db:
        recorded = db.execute("SELECT formatter, count(*) FROM file_datastore_records GROUP BY formatter").fetchall()
    assert recorded == [(get_full_type_name(next(iter(learned.values()))), 4)]
    with Butler.from_config(str(pfs_repo), collections="PFS/raw/sps") as reader:
        back = reader.get("raw", instrument="PFS", visit=4101, arm="n", spectrograph=1)
    assert back.dataId["visit"] == 4101 and not back.isCcd()  # the NIR ramp, read by that formatter
