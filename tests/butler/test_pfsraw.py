"""PfsRaw and friends: reading CCD frames and NIR ramps back from fake PFS files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.io import fits

from pfswatchd import fakedata
from pfswatchd.butler.pfsraw import Detector, Exposure, Image, PfsRaw, VisitInfo, camera_id

DESIGN = 0x1945BE7E6DE4B2CF


@pytest.fixture()
def ccd(tmp_path):
    return fakedata.write_pfsa(tmp_path / "PFSA00012322.fits", visit=123, spectrograph=2, arm="r",
                               pfs_design_id=DESIGN, mjd=60800.3, exptime=450.0, data_type="COMPARISON")


@pytest.fixture()
def ramp(tmp_path):
    return fakedata.write_pfsb(tmp_path / "PFSB00012313.fits", visit=123, spectrograph=1,
                               pfs_design_id=DESIGN, n_reads=4, frame_time=10.857)


def _hdu(path, name):
    with fits.open(path) as hdul:
        return np.array(hdul[name].data)


def test_image_accessors():
    image = Image(np.zeros((3, 5), dtype=np.uint16))
    assert image.getDimensions() == (5, 3) and (image.getWidth(), image.getHeight()) == (5, 3)
    assert image.getArray() is image.array
    with pytest.raises(ValueError, match="2-D"):
        Image(np.zeros(4))


def test_ccd_raw(ccd):
    data_id = {"instrument": "PFS", "visit": 123, "arm": "r", "spectrograph": 2}
    raw = PfsRaw(ccd, data_id)
    assert raw.path == ccd and raw.dataId == data_id
    assert raw.isCcd() and not raw.isNir() and raw.getNumReads() == 1
    image = raw.getImage()
    assert isinstance(image, Image) and image.array.dtype == np.uint16
    np.testing.assert_array_equal(image.array, _hdu(ccd, 1))
    assert raw.getDimensions() == (96, 86) == image.getDimensions()
    assert raw.getMetadata() is raw.metadata and raw.metadata["W_VISIT"] == 123
    assert raw.metadata == fits.getheader(ccd)
    assert raw.detector == Detector(name="r2", id=4, arm="r", spectrograph=2, serial="r2")
    assert (raw.detector.getName(), raw.detector.getId()) == ("r2", 4)


def test_visit_info(ccd):
    header = fits.getheader(ccd)
    info = PfsRaw(ccd).visitInfo
    assert isinstance(info, VisitInfo)
    assert (info.visit, info.exposure_time, info.dark_time) == (123, 450.0, header["DARKTIME"])
    assert info.date is not None and info.date.mjd == pytest.approx(60800.3) and info.date.scale == "utc"
    assert info.observation_type == "comparison" and info.object_name == "COMPARISON"
    assert info.ra == pytest.approx(Angle(header["RA2000"], unit="hourangle").deg)
    assert info.dec == pytest.approx(Angle(header["DEC2000"], unit="deg").deg)
    assert 149 < info.ra < 151 and 1 < info.dec < 3.5
    assert (info.altitude, info.azimuth, info.rotator_angle) == (header["ALTITUDE"], header["AZIMUTH"],
                                                                 header["INSROT"])
    assert info.pfs_design_id == DESIGN


def test_visit_info_fallbacks(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "a.fits", visit=9, spectrograph=1, arm="b", pfs_design_id=DESIGN,
                               drop_cards=("MJD-STR", "RA2000", "DEC2000", "ALTITUDE", "DARKTIME", "OBJECT"),
                               extra_cards={"W_PFDSGN": "0x10"})
    info = PfsRaw(path).visitInfo
    assert info.date is not None and info.date.isot.startswith(fits.getheader(path)["DATE-OBS"])
    assert math.isnan(info.ra) and math.isnan(info.dec) and math.isnan(info.altitude)
    assert info.dark_time == info.exposure_time == 30.0
    assert info.observation_type == "science" and info.object_name == "UNKNOWN" and info.pfs_design_id == 16


def test_exposure(ccd):
    raw = PfsRaw(ccd, {"visit": 123})
    exposure = raw.getExposure()
    assert isinstance(exposure, Exposure)
    np.testing.assert_array_equal(exposure.getImage().array, raw.getImage().array)
    assert exposure.getMetadata()["FRAMEID"] == "PFSA00012322" and exposure.getMetadata() is not raw.metadata
    assert exposure.getDetector().name == "r2" and exposure.getInfo().visit == 123
    assert exposure.getDimensions() == (96, 86) and exposure.data_id == {"visit": 123}


def test_medium_red_and_simulator_layout(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "PFFA00000534.fits", visit=5, spectrograph=3, arm="m", site="F",
                               pfs_design_id=DESIGN, simulator_layout=True)
    raw = PfsRaw(path)
    assert fits.getheader(path).get("INSTRUME") is None
    assert raw.metadata["INSTRUME"] == "PFS" and raw.metadata["W_SITE"] == "F" and "W_VISIT" in raw.metadata
    assert "ZCMPTYPE" not in raw.metadata and raw.metadata["NAXIS"] == 0
    assert raw.detector.name == "m3" and raw.detector.id == -7 == camera_id("m", 3)
    assert raw.getImage().array.shape == (86, 96) and raw.getDimensions() == (96, 86)


def test_camera_ids_follow_obs_pfs():
    """obs_pfs camera.yaml: b1=0 r1=1 n1=2 b2=3 ... n4=11; the medium-resolution arm is -(id of r)."""
    ids = {f"{arm}{spectrograph}": camera_id(arm, spectrograph) for spectrograph in range(1, 5) for arm in "brnm"}
    assert ids == {"b1": 0, "r1": 1, "n1": 2, "m1": -1, "b2": 3, "r2": 4, "n2": 5, "m2": -4,
                   "b3": 6, "r3": 7, "n3": 8, "m3": -7, "b4": 9, "r4": 10, "n4": 11, "m4": -10}


def test_nir_cds_and_reads(ramp):
    raw = PfsRaw(ramp)
    assert raw.isNir() and not raw.isCcd() and raw.getNumReads() == 4
    reads = [_hdu(ramp, f"IMAGE_{n}").astype(np.float64) for n in range(1, 5)]
    cds = raw.getImage()
    assert cds.array.dtype == np.float32 and cds.getDimensions() == (64, 64) == raw.getDimensions()
    np.testing.assert_array_equal(cds.array, reads[3] - reads[0])
    np.testing.assert_array_equal(cds.array, 3 * (reads[1] - reads[0]))
    second = raw.getNirRead(2)
    assert second.array.dtype == np.float32
    np.testing.assert_array_equal(second.array, reads[1])
    np.testing.assert_array_equal(raw.getNirRead(4, "REF").array, _hdu(ramp, "REF_4"))
    np.testing.assert_array_equal(raw.getResetImage().array, _hdu(ramp, "RESET_IMAGE_1"))
    assert raw.detector == Detector(name="n1", id=2, arm="n", spectrograph=1, serial="n1")
    assert raw.visitInfo.exposure_time == pytest.approx(4 * 10.857)


def test_nir_read_errors(ramp):
    raw = PfsRaw(ramp)
    for bad in (0, 5, -1):
        with pytest.raises(ValueError, match=r"readNum=-?\d is outside the valid range 1\.\.4"):
            raw.getNirRead(bad)
    with pytest.raises(ValueError, match="imageType"):
        raw.getNirRead(1, "RESET")


def test_nir_hdu_arithmetic_is_checked(tmp_path):
    # Claiming format version 2 shifts the HDU arithmetic onto the RESET HDUs: the EXTNAME check must notice.
    path = fakedata.write_pfsb(tmp_path / "b.fits", visit=1, spectrograph=1, pfs_design_id=DESIGN,
                               extra_cards={"W_4FMTVR": 2})
    raw = PfsRaw(path)
    with pytest.raises(ValueError, match=r"HDU 1 is 'RESET_IMAGE_1', expected 'IMAGE_1'"):
        raw.getNirRead(1)
    with pytest.raises(ValueError, match="expected 'REF_1'"):
        raw.getNirRead(1, "REF")
    assert raw.getResetImage() is None


def test_nir_single_read(tmp_path):
    path = fakedata.write_pfsb(tmp_path / "b.fits", visit=1, spectrograph=2, pfs_design_id=DESIGN, n_reads=1)
    raw = PfsRaw(path)
    assert raw.getNumReads() == 1
    np.testing.assert_array_equal(raw.getImage().array, _hdu(path, "IMAGE_1"))
    assert raw.getImage().array.dtype == np.float32


def test_read_selection(ramp, ccd):
    raw = PfsRaw(ramp, readNum=3)
    assert raw.readNum == 3
    np.testing.assert_array_equal(raw.getImage().array, _hdu(ramp, "IMAGE_3"))
    np.testing.assert_array_equal(raw.withReadNum(None).getImage().array, PfsRaw(ramp).getImage().array)
    with pytest.raises(ValueError, match="range 1..4"):
        PfsRaw(ramp, readNum=9)
    with pytest.raises(ValueError, match="only to NIR"):
        PfsRaw(ccd, readNum=1)
    with pytest.raises(ValueError, match="only to NIR"):
        PfsRaw(ccd).getNirRead(1)
    with pytest.raises(ValueError, match="only in NIR"):
        PfsRaw(ccd).getResetImage()


def test_not_a_raw(tmp_path):
    config = fakedata.write_pfsconfig(tmp_path / "PFSF00000100.fits", visit=1)
    with pytest.raises(ValueError, match="PFSF00000100.fits: not a PFS raw, header has no W_ARM"):
        PfsRaw(config)


def test_arm_card_forms(tmp_path):
    letter = fakedata.write_pfsa(tmp_path / "a.fits", visit=1, spectrograph=2, arm="r", pfs_design_id=DESIGN,
                                 extra_cards={"W_ARM": "r"})
    assert PfsRaw(letter).detector.name == "r2" and PfsRaw(letter).isCcd()
    bad = fakedata.write_pfsa(tmp_path / "b.fits", visit=1, spectrograph=2, arm="r", pfs_design_id=DESIGN,
                              extra_cards={"W_ARM": 5})
    with pytest.raises(ValueError, match="b.fits: W_ARM=5 is not an arm"):
        PfsRaw(bad)
