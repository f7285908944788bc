"""PfsRaw follows obs_pfs's interface: every method, on CCD frames and NIR ramps from fakedata.

The expected NIR pixels are computed here from the documented rules (afw's rotation by its
definition, obs_pfs's reference correction step by step in plain Python), not by calling pfswatchd.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from astropy.io import fits

from pfswatchd import fakedata
from pfswatchd.butler.pfsraw import (
    Box2I,
    Detector,
    Exposure,
    Extent2I,
    Image,
    PfsRaw,
    PfsRawError,
    Point2I,
    VisitInfo,
    camera_id,
)

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


def afw_rotate(array, n_quarter):
    """afw rotateImageBy90 by its definition (offsetImage.cc), in afw's (x, y) = (column, row) terms.

    nQuarter 1: out(H-1-y, x) = in(x, y); 2: out(W-1-x, H-1-y) = in(x, y); 3: out(y, W-1-x) = in(x, y).
    """
    height, width = array.shape
    n_quarter %= 4
    out = np.empty((width, height) if n_quarter % 2 else (height, width), dtype=array.dtype)
    for y in range(height):
        for x in range(width):
            if n_quarter == 0:
                xp, yp = x, y
            elif n_quarter == 1:
                xp, yp = height - 1 - y, x
            elif n_quarter == 2:
                xp, yp = width - 1 - x, height - 1 - y
            else:
                xp, yp = y, width - 1 - x
            out[yp, xp] = array[y, x]
    return out


def obs_pfs_correction(image, ref, *, bad_serial=False):
    """obs_pfs getCorrectedNirRead's rule (raw.py:413-445) in plain Python, on rotated frames (lists of rows).

    32 column bands; per band: column medians of REF over rows, REF minus them, then per row the median
    over the band of that plus the mean of the column medians, subtracted from the IMAGE row.
    """
    rows, cols = len(image), len(image[0])
    width = cols // 32
    out = [list(map(float, row)) for row in image]
    for band in range(32):
        columns = range(band * width, (band + 1) * width)
        per_column = [statistics.median(float(ref[r][c]) for r in range(rows)) for c in columns]
        mean_from = per_column[width * 3 // 4:] if bad_serial and band == 26 else per_column
        mean = math.fsum(mean_from) / len(mean_from)
        for r in range(rows):
            level = statistics.median(float(ref[r][c]) - per_column[i] for i, c in enumerate(columns)) + mean
            for c in columns:
                out[r][c] -= level
    return np.array(out)


# ------------------------------------------------------------------------------------------------- CCD


def test_ccd_raw(ccd):
    data_id = {"instrument": "PFS", "visit": 123, "arm": "r", "spectrograph": 2}
    raw = PfsRaw(ccd, dataId=data_id)
    assert raw.path == ccd and raw.dataId == data_id and raw.pfsCategory is None
    assert raw.isCcd() and not raw.isNir() and raw.getNumReads() == 1
    image = raw.getImage()
    assert isinstance(image, Image) and image.array.dtype == np.uint16 and image.getXY0() == (0, 0)
    np.testing.assert_array_equal(image.array, _hdu(ccd, 1))
    np.testing.assert_array_equal(raw.getCcdImage().array, image.array)
    assert isinstance(raw.dimensions, Extent2I) and raw.dimensions == (96, 86) == image.getDimensions()
    assert (raw.dimensions.getX(), raw.dimensions.getY()) == (96, 86)
    assert raw.xy0 == Point2I(0, 0) and raw.bbox == Box2I(Point2I(0, 0), Extent2I(96, 86)) == image.getBBox()
    assert raw.getMetadata() is raw.metadata and raw.metadata["W_VISIT"] == 123
    assert raw.metadata == fits.getheader(ccd)
    assert raw.detector == Detector(name="r2", id=4, arm="r", spectrograph=2, serial="r2")
    assert (raw.detector.getName(), raw.detector.getId(), raw.detector.getSerial()) == ("r2", 4, "r2")
    assert raw.detector.getOrientation().getNQuarter() == 0
    assert raw.detector.getBBox().getDimensions() == (4096, 4176)


def test_ccd_bbox(ccd):
    raw = PfsRaw(ccd)
    box = Box2I(Point2I(10, 20), Extent2I(30, 5))
    cut = raw.getImage(box)
    np.testing.assert_array_equal(cut.array, _hdu(ccd, 1)[20:25, 10:40])
    assert cut.getXY0() == (10, 20) and cut.getBBox() == box
    np.testing.assert_array_equal(raw.getExposure(box).getImage().array, cut.array.astype(np.float32))
    with pytest.raises(PfsRawError, match=r"PFSA00012322.fits: Box2I.* is not inside"):
        raw.getImage(Box2I(Point2I(90, 0), Extent2I(10, 1)))


def test_ccd_refuses_the_nir_methods(ccd):
    raw = PfsRaw(ccd)
    calls = [lambda: raw.getNirRead(1), lambda: raw.getCorrectedNirRead(1), lambda: raw.getNirImage(),
             lambda: raw.getRawDataImage(0), lambda: raw.getRawIrpImage(0), lambda: raw.positiveIndex(0),
             lambda: raw.getResetImage(), lambda: raw.nchan, lambda: raw.irpN, lambda: raw.irpOffset,
             lambda: raw.getH4channelReadOrder()]
    for call in calls:
        with pytest.raises(PfsRawError, match="PFSA00012322.fits") as info:
            call()
        assert isinstance(info.value, RuntimeError) and isinstance(info.value, ValueError)  # obs_pfs: RuntimeError
    assert raw.h4Size == 4096


@pytest.mark.parametrize(("version", "shifted"), [("0x0070", True), ("0x0068", True), ("0x0071", False),
                                                  ("not hex", False)])
def test_old_fpga_one_pixel_shift(tmp_path, version, shifted):
    """W_VERSIONS_FPGA <= 0x0070: in each of the 8 amplifier stripes, every pixel moves one place earlier."""
    path = fakedata.write_pfsa(tmp_path / "a.fits", visit=1, spectrograph=1, arm="b", pfs_design_id=DESIGN,
                               extra_cards={"W_VERSIONS_FPGA": version})
    stored = _hdu(path, 1)
    expected = stored.copy()
    if shifted:
        stripe = stored.shape[1] // 8
        for amp in range(8):
            pixels = [int(v) for row in stored[:, amp * stripe:(amp + 1) * stripe] for v in row]
            pixels = pixels[1:] + pixels[-1:]
            expected[:, amp * stripe:(amp + 1) * stripe] = np.array(pixels).reshape(stored.shape[0], stripe)
    got = PfsRaw(path).getImage().array
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(got, stored) != shifted


def test_ccd_exposure(ccd):
    raw = PfsRaw(ccd)
    exposure = raw.getExposure()
    assert isinstance(exposure, Exposure)
    assert exposure.getImage().array.dtype == np.float32
    np.testing.assert_array_equal(exposure.getImage().array, raw.getImage().array.astype(np.float32))
    info = exposure.getInfo()
    assert info.getVisitInfo() is raw.visitInfo is exposure.getVisitInfo() and isinstance(raw.visitInfo, VisitInfo)
    assert info.getId() == 123 and info.getDetector().getName() == "r2" == exposure.getDetector().getName()
    assert exposure.getFilter().bandLabel == "r" == exposure.getFilter().physicalLabel
    assert exposure.getMetadata()["FRAMEID"] == "PFSA00012322" and info.getMetadata() is raw.metadata
    assert exposure.getBBox() == raw.bbox and exposure.getDimensions() == (96, 86)
    masked = exposure.getMaskedImage()
    assert masked.getImage() is exposure.getImage()
    assert masked.getMask().array.dtype == np.int32 and not masked.getMask().array.any()
    assert masked.getVariance().array.dtype == np.float32 and not masked.getVariance().array.any()


def test_medium_red_and_simulator_layout(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "PFFA00000534.fits", visit=5, spectrograph=3, arm="m", site="F",
                               pfs_design_id=DESIGN, simulator_layout=True)
    raw = PfsRaw(path, "F")
    assert fits.getheader(path).get("INSTRUME") is None
    assert raw.metadata["INSTRUME"] == "PFS" and raw.metadata["W_SITE"] == "F" and "W_VISIT" in raw.metadata
    assert "ZCMPTYPE" not in raw.metadata and raw.metadata["NAXIS"] == 0
    assert raw.detector.name == "m3" and raw.detector.id == -7 == camera_id("m", 3)
    assert raw.getImage().array.shape == (86, 96) and raw.dimensions == (96, 86)


def test_camera_ids_follow_obs_pfs():
    """obs_pfs camera.yaml: b1=0 r1=1 n1=2 b2=3 ... n4=11; the medium-resolution arm is -(id of r)."""
    ids = {f"{arm}{spectrograph}": camera_id(arm, spectrograph) for spectrograph in range(1, 5) for arm in "brnm"}
    assert ids == {"b1": 0, "r1": 1, "n1": 2, "m1": -1, "b2": 3, "r2": 4, "n2": 5, "m2": -4,
                   "b3": 6, "r3": 7, "n3": 8, "m3": -7, "b4": 9, "r4": 10, "n4": 11, "m4": -10}


def test_not_a_raw(tmp_path, ccd):
    config = fakedata.write_pfsconfig(tmp_path / "PFSF00000100.fits", visit=1)
    with pytest.raises(PfsRawError, match="PFSF00000100.fits: not a PFS raw, header has no W_ARM"):
        PfsRaw(config)
    with pytest.raises(TypeError, match="pfsCategory must be one of .* dataId="):
        PfsRaw(ccd, {"visit": 123})  # pfswatchd's old second argument


def test_arm_card_forms(tmp_path):
    letter = fakedata.write_pfsa(tmp_path / "a.fits", visit=1, spectrograph=2, arm="r", pfs_design_id=DESIGN,
                                 extra_cards={"W_ARM": "r"})
    assert PfsRaw(letter).detector.name == "r2" and PfsRaw(letter).isCcd()
    bad = fakedata.write_pfsa(tmp_path / "b.fits", visit=1, spectrograph=2, arm="r", pfs_design_id=DESIGN,
                              extra_cards={"W_ARM": 5})
    with pytest.raises(ValueError, match="b.fits: W_ARM=5 is not an arm"):
        PfsRaw(bad)


# ------------------------------------------------------------------------------------------------- NIR


def test_nir_header_facts(ramp, tmp_path):
    raw = PfsRaw(ramp)
    assert raw.isNir() and not raw.isCcd() and raw.getNumReads() == 4
    assert (raw.nchan, raw.irpN, raw.irpOffset, raw.h4Size) == (32, 1, 0, 4096)
    assert raw.dimensions == (64, 64) and raw.bbox == Box2I(Point2I(0, 0), Extent2I(64, 64))
    assert raw.detector == Detector(name="n1", id=2, arm="n", spectrograph=1, serial="n1")
    orientation = raw.detector.getOrientation()
    assert orientation.getNQuarter() == 3 and orientation.getYaw().asDegrees() == pytest.approx(270)
    assert raw.getH4channelReadOrder() == (0, 0)
    for bits, order in ((0x100, (1, 0)), (0x200, (0, 1)), (0x3FF, (1, 1))):
        path = fakedata.write_pfsb(tmp_path / f"{bits}.fits", visit=1, spectrograph=1, pfs_design_id=DESIGN,
                                   n_reads=1, extra_cards={"W_4SPI13": bits})
        assert PfsRaw(path).getH4channelReadOrder() == order


def test_nir_reads_are_rotated_as_afw(ramp):
    raw = PfsRaw(ramp)
    stored = _hdu(ramp, "IMAGE_2").astype(np.float32)
    unrotated = raw.getNirRead(2, doRotate=False)
    assert unrotated.array.dtype == np.float32
    np.testing.assert_array_equal(unrotated.array, stored)
    rotated = raw.getNirRead(2)
    np.testing.assert_array_equal(rotated.array, afw_rotate(stored, 3))
    assert not np.array_equal(rotated.array, stored)
    np.testing.assert_array_equal(raw.getNirRead(3, "REF").array, afw_rotate(_hdu(ramp, "REF_3").astype(np.float32), 3))
    box = Box2I(Point2I(4, 8), Extent2I(16, 10))  # file frame, before rotation
    np.testing.assert_array_equal(raw.getNirRead(2, bbox=box, doRotate=False).array, stored[8:18, 4:20])
    np.testing.assert_array_equal(raw.getNirRead(2, bbox=box).array, afw_rotate(stored[8:18, 4:20], 3))
    # 0-based and from the end, uncorrected, rotated
    np.testing.assert_array_equal(raw.getRawDataImage(1).array, rotated.array)
    np.testing.assert_array_equal(raw.getRawDataImage(-1).array, raw.getNirRead(4).array)
    np.testing.assert_array_equal(raw.getRawIrpImage(0).array, raw.getNirRead(1, "REF").array)
    assert raw.positiveIndex(-1) == 3 and raw.positiveIndex(0) == 0
    with pytest.raises(IndexError):
        raw.positiveIndex(4)
    np.testing.assert_array_equal(raw.getResetImage().array, _hdu(ramp, "RESET_IMAGE_1"))


def test_nir_reference_correction_against_the_rule(ramp):
    """getCorrectedNirRead equals obs_pfs's rule computed here, and visibly differs from the plain read."""
    raw = PfsRaw(ramp)
    for read in (1, 4):
        image = afw_rotate(_hdu(ramp, f"IMAGE_{read}").astype(np.float64), 3)
        ref = afw_rotate(_hdu(ramp, f"REF_{read}").astype(np.float64), 3)
        expected = obs_pfs_correction(image.tolist(), ref.tolist())
        got = raw.getCorrectedNirRead(read)
        assert got.array.dtype == np.float32 and got.getXY0() == (0, 0)
        np.testing.assert_allclose(got.array, expected, atol=1e-3)
        assert np.abs(got.array - image).min() > 8000  # the REF level (~8800) came off
    box = Box2I(Point2I(3, 40), Extent2I(20, 12))  # rotated frame
    cut = raw.getCorrectedNirRead(4, box)
    np.testing.assert_array_equal(cut.array, raw.getCorrectedNirRead(4).array[40:52, 3:23])
    assert cut.getXY0() == (3, 40)


def test_nir_image_is_the_corrected_cds(ramp):
    """getImage of a ramp = corrected last - corrected first; fakedata makes that exactly (N-1) * flux."""
    raw = PfsRaw(ramp)
    reads = {n: afw_rotate(_hdu(ramp, f"IMAGE_{n}").astype(np.float64), 3) for n in (1, 2, 4)}
    refs = {n: afw_rotate(_hdu(ramp, f"REF_{n}").astype(np.float64), 3) for n in (1, 4)}
    cds = raw.getImage()
    assert cds.array.dtype == np.float32 and cds.getDimensions() == (64, 64)
    np.testing.assert_array_equal(cds.array, raw.getNirImage().array)
    np.testing.assert_array_equal(cds.array, raw.getCorrectedNirRead(4).array - raw.getCorrectedNirRead(1).array)
    # The drift shared by each read's IMAGE and REF comes out: what is left is the signal.
    np.testing.assert_array_equal(cds.array, (reads[4] - reads[1]) - (refs[4] - refs[1]))
    np.testing.assert_array_equal(cds.array, 3 * (reads[2] - reads[1]) - 3 * (
        afw_rotate(_hdu(ramp, "REF_2").astype(np.float64), 3) - refs[1]))
    assert not np.array_equal(cds.array, reads[4] - reads[1])  # the uncorrected CDS still has the drift
    box = Box2I(Point2I(8, 0), Extent2I(8, 64))
    np.testing.assert_array_equal(raw.getImage(box).array, cds.array[:, 8:16])
    exposure = raw.getExposure()
    np.testing.assert_array_equal(exposure.getImage().array, cds.array)
    assert exposure.getFilter().bandLabel == "n" and exposure.getDetector().getName() == "n1"


def test_nir_irp4_is_expanded_as_obs_pfs_isr(tmp_path):
    """IRP ratio 4: one REF row per 4 IMAGE rows (rotated); each is repeated 4 times, then the same rule."""
    path = fakedata.write_pfsb(tmp_path / "PFSB00000713.fits", visit=7, spectrograph=1, pfs_design_id=DESIGN,
                               n_reads=3, irp_ratio=4)
    raw = PfsRaw(path)
    assert raw.irpN == 4 and _hdu(path, "REF_1").shape == (64, 16)
    assert raw.getRawIrpImage(0).getDimensions() == (64, 16)  # rotated: 16 rows of 64
    image = afw_rotate(_hdu(path, "IMAGE_3").astype(np.float64), 3)
    ref = afw_rotate(_hdu(path, "REF_3").astype(np.float64), 3)
    expanded = [list(row) for row in ref for _ in range(4)]
    np.testing.assert_allclose(raw.getCorrectedNirRead(3).array, obs_pfs_correction(image.tolist(), expanded),
                               atol=1e-3)
    first = afw_rotate(_hdu(path, "IMAGE_1").astype(np.float64), 3)
    ref1 = afw_rotate(_hdu(path, "REF_1").astype(np.float64), 3)
    np.testing.assert_array_equal(raw.getImage().array, (image - first) - np.repeat(ref - ref1, 4, axis=0))


def test_nir_ref_of_the_wrong_shape_is_refused(tmp_path):
    path = fakedata.write_pfsb(tmp_path / "PFSB00000713.fits", visit=7, spectrograph=1, pfs_design_id=DESIGN,
                               n_reads=2, irp_ratio=4, extra_cards={"W_H4IRPN": 2})
    with pytest.raises(PfsRawError, match=r"PFSB00000713.fits: REF_1 is 64x16 \(rotated\), expected 64x64 or "
                                          r"64x32 for W_H4IRPN=2"):
        PfsRaw(path).getImage()


def test_nir_read_errors(ramp):
    raw = PfsRaw(ramp)
    for bad in (0, 5, -1, 1.0, True):
        with pytest.raises(PfsRawError, match=r"readNum=.* is outside the valid range 1\.\.4"):
            raw.getNirRead(bad)
    with pytest.raises(PfsRawError, match="imageType"):
        raw.getNirRead(1, "RESET")
    with pytest.raises(PfsRawError, match="PFSA|not a CCD frame"):
        raw.getCcdImage()


def test_nir_hdu_arithmetic_is_checked(tmp_path):
    # Claiming format version 2 shifts the HDU arithmetic onto the RESET HDUs: the EXTNAME check must notice.
    path = fakedata.write_pfsb(tmp_path / "b.fits", visit=1, spectrograph=1, pfs_design_id=DESIGN,
                               extra_cards={"W_4FMTVR": 2})
    raw = PfsRaw(path)
    with pytest.raises(PfsRawError, match=r"HDU 1 is 'RESET_IMAGE_1', expected 'IMAGE_1'"):
        raw.getNirRead(1)
    with pytest.raises(PfsRawError, match="expected 'REF_1'"):
        raw.getNirRead(1, "REF")
    assert raw.getResetImage() is None


def test_nir_single_read(tmp_path):
    path = fakedata.write_pfsb(tmp_path / "b.fits", visit=1, spectrograph=2, pfs_design_id=DESIGN, n_reads=1)
    raw = PfsRaw(path)
    assert raw.getNumReads() == 1
    np.testing.assert_array_equal(raw.getImage().array, raw.getCorrectedNirRead(1).array)
    assert raw.getImage().array.dtype == np.float32


def test_nir_bad_h4_serial_band(tmp_path):
    """W_SRH4 18660 (obs_pfs's 'bad version'): the mean of band 26 uses only its last quarter of columns."""
    path = fakedata.write_pfsb(tmp_path / "PFSB00000713.fits", visit=7, spectrograph=1, pfs_design_id=DESIGN,
                               n_reads=2, extra_cards={"W_SRH4": 18660})
    raw = PfsRaw(path)
    image = afw_rotate(_hdu(path, "IMAGE_2").astype(np.float64), 3)
    ref = afw_rotate(_hdu(path, "REF_2").astype(np.float64), 3)
    got = raw.getCorrectedNirRead(2).array
    np.testing.assert_allclose(got, obs_pfs_correction(image.tolist(), ref.tolist(), bad_serial=True), atol=1e-3)
    usual = obs_pfs_correction(image.tolist(), ref.tolist())
    band26 = slice(26 * 2, 27 * 2)
    assert not np.allclose(got[:, band26], usual[:, band26])
    np.testing.assert_allclose(np.delete(got, band26, axis=1), np.delete(usual, band26, axis=1), atol=1e-3)
