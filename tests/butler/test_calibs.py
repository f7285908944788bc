"""A repository `pfswatchd create` makes without obs_pfs takes the pipeline's per-camera products and an
observatory calibration export, at the official template paths.

The facts below are written out here from obs_pfs fe944332 (not taken from pfswatchd): the dataset types
``PrimeFocusSpectrograph.register`` registers (``python/lsst/obs/pfs/PrimeFocusSpectrograph.py``), the
file templates and formatters of ``gen3/butler.yaml`` (lines 3-56), and the defects formatter of
daf_butler's ``configs/datastores/formatters.yaml``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.time import Time
from lsst.daf.butler import Butler, CollectionType, DatasetRef, FileDataset, Timespan

from pfswatchd.butler import repo
from pfswatchd.butler.exports import import_export
from pfswatchd.errors import RefusedError

BIN = Path(sys.executable).parent
CAMERA = {"instrument", "arm", "spectrograph"}
# PrimeFocusSpectrograph.register: name -> (dimensions, storage class); all isCalibration=True.
OFFICIAL_CALIBRATIONS = {
    "detectorMap_calib": (CAMERA, "DetectorMap"),
    "nirDark": (CAMERA, "ImageCube"),
    "nirDark_irp4": (CAMERA, "ImageCube"),
    "badRefPixels": (CAMERA, "NirBadRefPixels"),
    "h4Linearity": (CAMERA, "H4Linearity"),
    "defects": ({"instrument", "detector", "arm", "spectrograph"}, "Defects"),
}
# What an export made where the pipeline runs names (gen3/butler.yaml datastore.formatters; daf_butler for Defects).
OFFICIAL_FORMATTERS = {
    "DetectorMap": "lsst.obs.pfs.formatters.DetectorMapFormatter",
    "ImageCube": "lsst.obs.base.formatters.fitsGeneric.FitsGenericFormatter",
    "Defects": "lsst.obs.base.formatters.fitsGeneric.FitsGenericFormatter",
}
# gen3/butler.yaml datastore.templates, the keys and the three that these tests render.
TEMPLATE_KEYS = {
    "default", "instrument+detector", "instrument+arm+spectrograph+dither",
    "instrument+arm+spectrograph+pfs_design_id", "instrument+visit+arm+spectrograph", "instrument+arm+spectrograph",
    "instrument+visit+arm", "instrument+arm", "instrument+combination+cat_id",
    "instrument+combination+cat_id+obj_group", "instrument+profiles_run+profiles_group",
    "instrument+profiles_run+arm+spectrograph", "instrument+profiles_run+profiles_group+arm+spectrograph",
    "instrument+profiles_run+profiles_group+visit+arm+spectrograph", "instrument+visit_group+arm+spectrograph",
    "instrument+combination",
}
PER_CAMERA = ("{run:/}/{datasetType}.{component:?}/{datasetType}_{component:?}_{instrument:?}_{arm:?}"
              "{spectrograph:?}_{run}")
PER_DETECTOR = "{run:/}/{datasetType}.{component:?}/{datasetType}_{component:?}_{instrument:?}_{detector:?}_{run}"
PER_VISIT_CAMERA = ("{run:/}/{datasetType}.{component:?}/{visit.day_obs:?}/{visit:?}/{datasetType}_{component:?}_"
                    "{instrument:?}_{visit:?}_{arm:?}{spectrograph:?}_{run}")
RUN = "PFS/calib/20260301T000000Z"


def per_camera_path(run: str, dataset_type: str, arm: str, spectrograph: int) -> str:
    """instrument+arm+spectrograph rendered by hand: no component, '/' in the RUN kept only in the folder."""
    return f"{run}/{dataset_type}/{dataset_type}_PFS_{arm}{spectrograph}_{run.replace('/', '_')}.fits"


def hdus(value: float) -> fits.HDUList:
    return fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.full((3, 4), value, dtype=np.float32), name="DATA")])


def test_create_registers_the_official_templates_and_calibration_types(pfs_repo):
    config = yaml.safe_load((pfs_repo / "butler.yaml").read_text())
    templates = config["datastore"]["templates"]
    assert set(templates) == TEMPLATE_KEYS
    assert templates["instrument+arm+spectrograph"] == PER_CAMERA
    assert templates["instrument+detector"] == PER_DETECTOR
    assert templates["instrument+visit+arm+spectrograph"] == PER_VISIT_CAMERA
    with Butler.from_config(str(pfs_repo)) as butler:
        for name, (dimensions, storage_class) in OFFICIAL_CALIBRATIONS.items():
            dataset_type = butler.get_dataset_type(name)
            assert set(dataset_type.dimensions.names) == dimensions, name
            assert (dataset_type.storageClass_name, dataset_type.isCalibration()) == (storage_class, True)


def test_a_per_camera_product_is_put_at_the_official_path(butler, pfs_repo):
    butler.collections.register(RUN)
    ref = butler.put(hdus(2.5), "detectorMap_calib", instrument="PFS", arm="b", spectrograph=1, run=RUN)
    assert butler.getURI(ref).ospath == str(pfs_repo / per_camera_path(RUN, "detectorMap_calib", "b", 1))
    back = butler.get(ref)
    assert isinstance(back, fits.HDUList) and np.all(back["DATA"].data == 2.5)
    with sqlite3.connect(pfs_repo / "gen3.sqlite3") as db:  # the stable name, as for ingested raws
        assert {row[0] for row in db.execute("SELECT formatter FROM file_datastore_records")} == {
            "pfswatchd.formatters.FitsCalibFormatter"}


def _observatory_export(tmp_path: Path) -> Path:
    """An export as `butler export` writes it where the pipeline runs: made by daf_butler's own export from
    a repository holding two per-camera calibrations and a defects file certified in PFS/calib, then with
    each file's formatter set to the one the official repository records."""
    source_root = tmp_path / "observatory"
    with repo.create(source_root, instruments=["PFS"]) as source:
        source.collections.register(RUN)
        refs = [source.put(hdus(1.0), "detectorMap_calib", instrument="PFS", arm="b", spectrograph=1, run=RUN),
                source.put(hdus(2.0), "nirDark", instrument="PFS", arm="n", spectrograph=1, run=RUN)]
        defects_file = tmp_path / "defects-r1.fits"
        hdus(3.0).writeto(defects_file)
        defects = DatasetRef(source.get_dataset_type("defects"), {"instrument": "PFS", "detector": 1}, run=RUN,
                             conform=True).expanded(source.registry.expandDataId(instrument="PFS", detector=1))
        source.ingest(FileDataset(str(defects_file), [defects]), transfer="copy")
        refs.append(defects)
        source.collections.register("PFS/calib", CollectionType.CALIBRATION)
        begin = Time("2020-01-01T00:00:00", scale="tai")
        source.registry.certify("PFS/calib", refs, Timespan(begin, None))
        export_dir = tmp_path / "export"
        export_dir.mkdir()
        with source.export(filename=str(export_dir / "export.yaml"), directory=str(export_dir),
                           transfer="copy") as export:
            export.saveDatasets(refs)
            export.saveCollection("PFS/calib")
    data = yaml.safe_load((export_dir / "export.yaml").read_text())
    classes = {item["name"]: item["storage_class"] for item in data["data"] if item["type"] == "dataset_type"}
    for item in data["data"]:
        if item["type"] == "dataset":
            for record in item["records"]:
                record["formatter"] = OFFICIAL_FORMATTERS[classes[item["dataset_type"]]]
    (export_dir / "export.yaml").write_text(yaml.dump(data, sort_keys=False))  # as daf_butler writes it
    return export_dir


def test_an_observatory_calibration_export_is_imported_at_the_official_paths(pfs_repo, tmp_path):
    export_dir = _observatory_export(tmp_path)
    result = subprocess.run([str(BIN / "pfswatchd"), "import", str(pfs_repo), str(export_dir), "--transfer", "copy"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "lsst.obs.pfs.formatters.DetectorMapFormatter" in result.stdout
    with Butler.from_config(str(pfs_repo), collections="PFS/calib") as butler:
        when = Timespan(Time("2026-03-01T00:00:00", scale="tai"), Time("2026-03-01T00:01:00", scale="tai"))
        expected = {("detectorMap_calib", "b", 1): 1.0, ("nirDark", "n", 1): 2.0}
        for (name, arm, spectrograph), value in expected.items():
            ref = butler.find_dataset(name, instrument="PFS", arm=arm, spectrograph=spectrograph, timespan=when)
            assert ref is not None and ref.run == RUN, name
            assert butler.getURI(ref).ospath == str(pfs_repo / per_camera_path(RUN, name, arm, spectrograph))
            assert np.all(butler.get(ref)["DATA"].data == value)
        defects = butler.find_dataset("defects", instrument="PFS", detector=1, timespan=when)
        assert defects is not None
        run_ = RUN.replace("/", "_")
        assert butler.getURI(defects).ospath == str(pfs_repo / RUN / "defects" / f"defects_PFS_1_{run_}.fits")
    with sqlite3.connect(pfs_repo / "gen3.sqlite3") as db:
        recorded = {row[0] for row in db.execute("SELECT formatter FROM file_datastore_records")}
    assert recorded == {"pfswatchd.formatters.FitsCalibFormatter"}


def test_an_export_whose_formatter_has_no_stand_in_here_is_refused_whole(butler, pfs_repo, tmp_path):
    export_dir = _observatory_export(tmp_path)
    data = yaml.safe_load((export_dir / "export.yaml").read_text())
    # A calexp (ExposureF) next to the calibrations: its formatter (obs_base) has no counterpart here.
    data["data"].append({"type": "dataset_type", "name": "calexp", "dimensions": ["instrument", "visit", "arm",
                         "spectrograph"], "storage_class": "ExposureF", "is_calibration": False})
    data["data"].append({"type": "dataset", "dataset_type": "calexp", "run": RUN, "records": [
        {"dataset_id": ["d5b4e1a2-0000-4000-8000-000000000001"], "data_id": [{"instrument": "PFS", "visit": 1,
         "arm": "b", "spectrograph": 1}], "path": "calexp.fits",
         "formatter": "lsst.obs.base.formatters.fitsExposure.FitsExposureFormatter"}]})
    (export_dir / "export.yaml").write_text(yaml.dump(data, sort_keys=False))  # as daf_butler writes it
    with pytest.raises(RefusedError, match=r"export.yaml: the calexp files are read with lsst\.obs\.base"):
        import_export(butler, export_dir, transfer="copy")
    assert not butler.collections.query("PFS/calib*")
    assert not list(pfs_repo.glob("PFS/calib*"))
