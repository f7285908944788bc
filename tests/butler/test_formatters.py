"""Formatters and storage classes against a real butler repository with the PFS universe."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import lsst.daf.butler
import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from lsst.daf.butler import (
    Butler,
    CollectionType,
    Config,
    DatasetIdGenEnum,
    DatasetRef,
    DatasetType,
    FileDataset,
    Timespan,
)
from lsst.utils import doImportType

from pfswatchd import fakedata
from pfswatchd.butler import repo
from pfswatchd.butler.formatters import FORMATTERS, RAW_COMPONENTS, STORAGE_CLASSES, PfsRawDelegate
from pfswatchd.butler.pfsconfig import PfsConfig
from pfswatchd.butler.pfsraw import Box2I, Detector, Exposure, Extent2I, Image, PfsRaw, Point2I, VisitInfo

DESIGN = 0x1945BE7E6DE4B2CF
VISIT = 123
RUN = "PFS/raw/all"
DIMENSIONS = repo.dimension_config_path()
TEMPLATES = {
    "instrument+visit+arm+spectrograph": (
        "{run:/}/{datasetType}/{visit.day_obs}/{visit}/"
        "{datasetType}_{instrument}_{visit}_{arm}{spectrograph}_{run}"
    ),
}
RAW = {"instrument": "PFS", "visit": VISIT, "spectrograph": 1}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> dict[str, object]:
    """A repository holding a PFSA (b1), a PFSB (n1, 4 reads) and the visit's pfsConfig."""
    tmp = tmp_path_factory.mktemp("formatters")
    root = tmp / "repo"
    seed = Config({"storageClasses": STORAGE_CLASSES,
                   "datastore": {"formatters": FORMATTERS, "templates": TEMPLATES}})
    Butler.makeRepo(str(root), config=seed, dimensionConfig=str(DIMENSIONS))
    butler = Butler.from_config(str(root), writeable=True)
    registry = butler.registry
    registry.insertDimensionData("instrument", {"name": "PFS", "visit_max": 21474800, "detector_max": 20,
                                                "class_name": "lsst.obs.pfs.PrimeFocusSpectrograph"})
    registry.insertDimensionData("arm", *({"instrument": "PFS", "name": arm} for arm in "brnm"))
    registry.insertDimensionData("spectrograph", {"instrument": "PFS", "num": 1})
    registry.insertDimensionData("pfs_design_id", {"instrument": "PFS", "value": DESIGN})
    registry.insertDimensionData("dither", {"instrument": "PFS", "value": 0})
    start = Time(60800.3, format="mjd", scale="utc")
    registry.insertDimensionData("visit", {
        "instrument": "PFS", "id": VISIT, "obs_id": str(VISIT), "pfs_design_id": DESIGN, "dither": 0,
        "day_obs": 20250505, "timespan": Timespan(start, start + 30 * u.s), "exposure_time": 30.0})
    raw_type = DatasetType("raw", ("instrument", "visit", "spectrograph", "arm"), "PfsRaw",
                           universe=butler.dimensions)
    config_type = DatasetType("pfsConfig", ("instrument", "visit"), "PfsConfig", universe=butler.dimensions)
    registry.registerDatasetType(raw_type)
    registry.registerDatasetType(config_type)
    registry.registerCollection(RUN, CollectionType.RUN)
    ccd = fakedata.write_pfsa(tmp / "PFSA00012311.fits", visit=VISIT, spectrograph=1, arm="b",
                              pfs_design_id=DESIGN, mjd=60800.3)
    ramp = fakedata.write_pfsb(tmp / "PFSB00012313.fits", visit=VISIT, spectrograph=1, pfs_design_id=DESIGN,
                               mjd=60800.3, n_reads=4)
    config = fakedata.write_pfsconfig(tmp / fakedata.pfsconfig_filename(DESIGN, VISIT), visit=VISIT,
                                      pfs_design_id=DESIGN, n_fibers=12)

    def ref(dataset_type: DatasetType, **data_id: object) -> DatasetRef:
        return DatasetRef(dataset_type, {"instrument": "PFS", "visit": VISIT, **data_id}, run=RUN,
                          id_generation_mode=DatasetIdGenEnum.DATAID_TYPE_RUN)

    butler.ingest(FileDataset(ccd, refs=[ref(raw_type, arm="b", spectrograph=1)]),
                  FileDataset(ramp, refs=[ref(raw_type, arm="n", spectrograph=1)]),
                  FileDataset(config, refs=[ref(config_type)]), transfer="copy")
    butler.close()
    reader = Butler.from_config(str(root), collections=RUN)
    yield {"butler": reader, "root": root, "ccd": ccd, "ramp": ramp, "config": config}
    reader.close()


def _read(path: Path, name: str) -> np.ndarray:
    with fits.open(path) as hdul:
        return np.array(hdul[name].data)


def test_storage_class_names_do_not_clash_with_defaults():
    packaged = Path(lsst.daf.butler.__file__).parent / "configs" / "storageClasses.yaml"
    default_names = set(Config(str(packaged))["storageClasses"].keys())
    ours = set(STORAGE_CLASSES)
    assert ours.isdisjoint(default_names), ours & default_names
    assert "int" in default_names  # raw.numReads and raw.id use the butler's own "int"
    # obs_pfs gen3/butler.yaml's PfsRaw components, by name
    assert set(STORAGE_CLASSES["PfsRaw"]["derivedComponents"]) == set(RAW_COMPONENTS) == {
        "exposure", "image", "ramp", "numReads", "metadata", "visitInfo", "detector", "id", "bbox", "dimensions",
        "xy0"}
    assert set(RAW_COMPONENTS.values()) <= ours | default_names
    for path in FORMATTERS.values():
        assert doImportType(path).__module__ in {"pfswatchd.butler.formatters", "pfswatchd.formatters"}


def test_storage_classes_in_the_repository(repo):
    storage_class = repo["butler"].get_dataset_type("raw").storageClass
    assert storage_class.name == "PfsRaw" and storage_class.pytype is PfsRaw
    assert storage_class.parameters == {"readNum"}
    pytypes = {name: component.pytype for name, component in storage_class.derivedComponents.items()}
    assert pytypes == {"image": Image, "ramp": Image, "metadata": fits.Header, "exposure": Exposure,
                       "detector": Detector, "visitInfo": VisitInfo, "numReads": int, "id": int, "bbox": Box2I,
                       "dimensions": tuple, "xy0": Point2I}
    assert repo["butler"].get_dataset_type("pfsConfig").storageClass.pytype is PfsConfig


def test_ccd_raw_and_components(repo):
    butler, ccd = repo["butler"], repo["ccd"]
    raw = butler.get("raw", arm="b", **RAW)
    assert isinstance(raw, PfsRaw) and raw.isCcd() and raw.pfsCategory is None
    assert raw.dataId == {"instrument": "PFS", "arm": "b", "spectrograph": 1, "visit": VISIT, "dither": 0,
                          "pfs_design_id": DESIGN}
    assert raw.path.parent.parts[-2:] == ("20250505", str(VISIT)) and raw.path != ccd
    image = butler.get("raw.image", arm="b", **RAW)
    assert isinstance(image, Image) and image.array.dtype == np.uint16 and image.array.shape == (86, 96)
    np.testing.assert_array_equal(image.array, _read(ccd, "image"))
    metadata = butler.get("raw.metadata", arm="b", **RAW)
    assert isinstance(metadata, fits.Header)
    assert (metadata["W_VISIT"], metadata["W_ARM"], metadata["FRAMEID"]) == (VISIT, 1, "PFSA00012311")
    exposure = butler.get("raw.exposure", arm="b", **RAW)
    assert isinstance(exposure, Exposure) and exposure.getDetector().getName() == "b1"
    assert exposure.getInfo().getVisitInfo().getId() == VISIT == exposure.getInfo().getId()
    # As obs_pfs's formatter: the component keeps the CCD's integer pixels, getExposure() converts to float.
    assert exposure.getImage().array.dtype == np.uint16 and raw.getExposure().getImage().array.dtype == np.float32
    np.testing.assert_array_equal(exposure.getImage().array, image.array)
    assert exposure.getFilter().bandLabel == "b"
    detector = butler.get("raw.detector", arm="b", **RAW)
    assert detector == Detector(name="b1", id=0, arm="b", spectrograph=1, serial="b1")
    info = butler.get("raw.visitInfo", arm="b", **RAW)
    assert isinstance(info, VisitInfo) and info.getExposureTime() == 30.0 and info.getId() == VISIT
    assert info.getDate().mjd == pytest.approx(60800.3 + (15 + 37) / 86400, abs=1e-8)  # mid-exposure, TAI
    assert butler.get("raw.numReads", arm="b", **RAW) == 1
    assert butler.get("raw.id", arm="b", **RAW) == VISIT
    dimensions = butler.get("raw.dimensions", arm="b", **RAW)
    assert dimensions == (96, 86) and isinstance(dimensions, Extent2I)
    assert butler.get("raw.bbox", arm="b", **RAW) == Box2I(Point2I(0, 0), Extent2I(96, 86))
    assert butler.get("raw.xy0", arm="b", **RAW) == (0, 0)


def test_nir_raw_ramp_and_reads(repo):
    butler, ramp = repo["butler"], repo["ramp"]
    raw = butler.get("raw", arm="n", **RAW)
    assert raw.isNir() and raw.getNumReads() == 4
    cds = butler.get("raw.image", arm="n", **RAW)
    assert cds.array.dtype == np.float32
    np.testing.assert_array_equal(cds.array, PfsRaw(ramp).getImage().array)
    second = butler.get("raw.ramp", arm="n", parameters={"readNum": 2}, **RAW)
    np.testing.assert_array_equal(second.array, PfsRaw(ramp).getCorrectedNirRead(2).array)
    assert not np.array_equal(second.array, PfsRaw(ramp).getNirRead(2).array)  # corrected, not as stored
    # readNum is for ramp only (obs_pfs): the image, the exposure and the whole raw ignore it.
    np.testing.assert_array_equal(butler.get("raw.image", arm="n", parameters={"readNum": 2}, **RAW).array,
                                  cds.array)
    exposure = butler.get("raw.exposure", arm="n", parameters={"readNum": 4}, **RAW)
    np.testing.assert_array_equal(exposure.getImage().array, cds.array)
    selected = butler.get("raw", arm="n", parameters={"readNum": 3}, **RAW)
    np.testing.assert_array_equal(selected.getImage().array, cds.array)
    assert butler.get("raw.numReads", arm="n", **RAW) == 4
    assert butler.get("raw.dimensions", arm="n", **RAW) == (64, 64)
    assert butler.get("raw.detector", arm="n", **RAW).getOrientation().getNQuarter() == 3
    assert butler.get("raw.metadata", arm="n", **RAW)["W_H4NRED"] == 4


def test_bad_read_numbers_and_parameters(repo):
    butler = repo["butler"]
    with pytest.raises(ValueError, match="raw.ramp needs the readNum parameter"):
        butler.get("raw.ramp", arm="n", **RAW)
    with pytest.raises(ValueError, match=r"outside the valid range 1\.\.4"):
        butler.get("raw.ramp", arm="n", parameters={"readNum": 5}, **RAW)
    with pytest.raises(ValueError, match="reads exist only in NIR ramps"):
        butler.get("raw.ramp", arm="b", parameters={"readNum": 1}, **RAW)
    with pytest.raises(ValueError, match="integer read number"):
        butler.get("raw.ramp", arm="n", parameters={"readNum": "2"}, **RAW)
    with pytest.raises(KeyError, match="bbox"):  # not declared: see formatters.py
        butler.get("raw.image", arm="n", parameters={"bbox": Box2I(Point2I(0, 0), Extent2I(2, 2))}, **RAW)


def test_pfsconfig(repo):
    butler = repo["butler"]
    config = butler.get("pfsConfig", instrument="PFS", visit=VISIT)
    assert isinstance(config, PfsConfig)
    assert (config.pfsDesignId, config.visit, len(config)) == (DESIGN, VISIT, 12)
    assert config.header["FRAMEID"] == f"PFSF{VISIT:06d}00"
    uri = butler.getURI("pfsConfig", instrument="PFS", visit=VISIT)
    assert uri.ospath.startswith(str(repo["root"])) and uri.getExtension() == ".fits"


def test_formatters_are_read_only(repo):
    writer = Butler.from_config(str(repo["root"]), run="PFS/other", writeable=True)
    try:
        raw = repo["butler"].get("raw", arm="b", **RAW)
        with pytest.raises(Exception) as excinfo:
            writer.put(raw, "raw", arm="b", **RAW)
        chain, error = [], excinfo.value
        while error is not None:
            chain.append(str(error))
            error = error.__cause__ or error.__context__
        assert any("read-only" in message for message in chain), chain
        assert not writer.query_datasets("raw", collections="PFS/other", explain=False)
    finally:
        writer.close()


def test_delegate(repo):
    raw = PfsRaw(repo["ramp"])
    delegate = repo["butler"].get_dataset_type("raw").storageClass.delegate()
    assert isinstance(delegate, PfsRawDelegate)
    assert delegate.getComponent(raw, "numReads") == 4
    assert delegate.getComponent(raw, "dimensions") == (64, 64)
    assert delegate.getComponent(raw, "detector").name == "n1"
    assert delegate.getComponent(raw, "metadata")["W_ARM"] == 3
    assert delegate.getComponent(raw, "visitInfo").getId() == VISIT == delegate.getComponent(raw, "id")
    assert delegate.getComponent(raw, "obsInfo").instrument == "PFS"
    assert isinstance(delegate.getComponent(raw, "exposure"), Exposure)
    with pytest.raises(AttributeError, match="no component 'reset'"):
        delegate.getComponent(raw, "reset")
    with pytest.raises(ValueError, match="needs the readNum"):
        delegate.getComponent(raw, "ramp")
    assert delegate.handleParameters(raw, None) is raw
    assert delegate.handleParameters(raw, {"readNum": 2}) is raw
    with pytest.raises(ValueError, match="only readNum"):
        delegate.handleParameters(raw, {"bbox": None})
    with pytest.raises(ValueError, match="integer read number"):
        delegate.handleParameters(raw, {"readNum": 1.5})
    with pytest.raises(TypeError, match="PfsRaw"):
        delegate.getComponent(Image(np.zeros((2, 2))), "image")
