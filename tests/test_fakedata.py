"""Synthetic PFS files: names, the design-id recipe, HDU layouts and header cards."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pfswatchd import fakedata

DESIGN = 0x1945BE7E6DE4B2CF


def _structure(path: Path) -> list[tuple[str, bool]]:
    """(EXTNAME, tile-compressed?) per HDU, read without decompressing."""
    with fits.open(path, disable_image_compression=True) as hdul:
        return [(hdu.name, bool(hdu.header.get("ZIMAGE", False))) for hdu in hdul]


def _assert_checksums(path: Path) -> None:
    assert path.stat().st_size % 2880 == 0
    with fits.open(path, disable_image_compression=True) as hdul:
        for hdu in hdul:
            assert "CHECKSUM" in hdu.header and "DATASUM" in hdu.header, hdu.name
            assert hdu.verify_checksum() == 1, f"bad CHECKSUM in {hdu.name}"
            assert hdu.verify_datasum() == 1, f"bad DATASUM in {hdu.name}"


# ------------------------------------------------------------------------------------------------ names


def test_file_names():
    assert fakedata.raw_filename("S", "A", 123456, 1, "b") == "PFSA12345611.fits"
    assert fakedata.raw_filename("S", "B", 123456, 2, "n") == "PFSB12345623.fits"
    assert fakedata.raw_filename("L", "A", 66, 4, "m") == "PFLA00006644.fits"
    assert fakedata.pfsconfig_filename(0x52327A27, 5) == "pfsConfig-0x0000000052327a27-000005.fits"
    assert fakedata.pfsconfig_filename(DESIGN, 123456) == "pfsConfig-0x1945be7e6de4b2cf-123456.fits"
    assert fakedata.pfsf_filename(123) == "PFSF00012300.fits"
    assert fakedata.pfsf_filename(123, 2) == "PFSF00012302.fits"
    assert fakedata.ARM_NUMBERS == {"b": 1, "r": 2, "n": 3, "m": 4}


def test_camera_ids():
    ids = {f"{arm}{spec}": fakedata.camera_id(arm, spec) for spec in range(1, 5) for arm in "brn"}
    assert list(ids.values()) == list(range(12))
    assert ids["b1"] == 0 and ids["n1"] == 2 and ids["r2"] == 4 and ids["n4"] == 11
    assert [fakedata.camera_id("m", spec) for spec in range(1, 5)] == [-1, -4, -7, -10]


# ------------------------------------------------------------------------------------------------ design id


def test_design_id_recipe_matches_datamodel():
    # The datamodel hashes str() of the list of "%d %0.6f %0.6f" strings after rounding to 1 arcsec
    # with int(x*3600 + 0.5)/3600 (truncation toward zero, so -5.0 deg becomes -4.999722).
    parts = ["1 10.000000 -4.999722", "7 10.500278 2.250000"]
    expected = int(hashlib.sha1(str(parts).encode()).hexdigest(), 16) & (2**63 - 1)
    assert fakedata.design_id_for([1, 7], [10.0, 10.5 + 1 / 3600], [-5.0, 2.25]) == expected
    with_variant = int(hashlib.sha1(str([*parts, "3"]).encode()).hexdigest(), 16) & (2**63 - 1)
    assert fakedata.design_id_for([1, 7], [10.0, 10.5 + 1 / 3600], [-5.0, 2.25], variant=3) == with_variant


def test_design_id_properties():
    fibres, ras, decs = [1, 2, 3], [150.1, 150.2, 150.3], [2.1, 2.2, 2.3]
    first = fakedata.design_id_for(fibres, ras, decs)
    assert first == fakedata.design_id_for(np.array(fibres), np.array(ras), np.array(decs))
    assert 0 < first < 2**63
    # Positions are rounded to 1 arcsec: a 0.1 arcsec move keeps the id, a 2 arcsec move changes it.
    assert fakedata.design_id_for(fibres, [150.1 + 0.1 / 3600, 150.2, 150.3], decs) == first
    assert fakedata.design_id_for(fibres, [150.1 + 2 / 3600, 150.2, 150.3], decs) != first
    assert fakedata.design_id_for([1, 2, 4], ras, decs) != first
    assert fakedata.design_id_for(fibres, ras, decs, variant=1) != first
    assert fakedata.design_id_for(fibres, [0.0] * 3, [0.0] * 3) == 0
    ids = {fakedata.design_id_for([i], [float(i)], [1.0]) for i in range(1, 400)}
    assert len(ids) == 399 and max(ids) < 2**63


# ------------------------------------------------------------------------------------------------ PFSA


def test_pfsa_layout_and_cards(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "PFSA12345621.fits", visit=123456, spectrograph=2, arm="b",
                               pfs_design_id=DESIGN, mjd=60800.25, exptime=900.0, dither_mm=0.00071)
    assert path == tmp_path / "PFSA12345621.fits"
    assert _structure(path) == [("PRIMARY", False), ("image", True)]
    _assert_checksums(path)
    with fits.open(path, disable_image_compression=True) as hdul:
        table = hdul[1].header
        assert table["ZCMPTYPE"] == "RICE_1" and table["ZBITPIX"] == 16 and table["BZERO"] == 32768
        assert (table["ZNAXIS1"], table["ZNAXIS2"]) == (96, 86)
    with fits.open(path) as hdul:
        primary, image = hdul[0].header, hdul[1]
        assert primary["NAXIS"] == 0 and primary["EXTEND"] is True and hdul[0].data is None
        assert 130 <= len(primary) <= 170
        assert image.header["INHERIT"] is True and image.header["BUNIT"] == "ADU"
        assert image.data.dtype == np.uint16 and image.data.shape == (86, 96)
        assert 900 < np.median(image.data) < 1500
    expected = {
        "TELESCOP": "Subaru 8.2m", "INSTRUME": "PFS", "OBSERVAT": "NAOJ", "DATA-TYP": "OBJECT",
        "FRAMEID": "PFSA12345621", "EXP-ID": "PFSE00123456", "DETECTOR": "b2", "DET-ID": 3,
        "W_VISIT": 123456, "W_ARM": 1, "W_SPMOD": 2, "W_SITE": "S", "W_PFDSGN": DESIGN,
        "W_PFDSNM": "fake-0x1945be7e6de4b2cf", "DATE-OBS": "2025-05-05", "MJD-STR": 60800.25,
        "TIMESYS": "UTC", "EXPTIME": 900.0, "W_ENFCAZ": 0.00071, "W_TSHUTR": "open", "UT": "06:00:00.000",
    }
    assert {key: primary[key] for key in expected} == expected
    assert type(primary["W_ARM"]) is int and type(primary["W_PFDSGN"]) is int
    assert primary["MJD-END"] == pytest.approx(60800.25 + 900 / 86400)
    assert primary["DARKTIME"] >= primary["EXPTIME"]
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", primary["RA2000"])
    assert re.fullmatch(r"[+-]\d\d:\d\d:\d\d\.\d\d", primary["DEC2000"])
    for key in ("GAIN", "DET-TMP", "ALTITUDE", "AZIMUTH", "INSROT", "PROP-ID", "W_ENFCAY", "W_ENFCAX",
                "W_LGTSRC", "HST", "W_SBEMDT", "W_SHEXDT", "W_XTDET1", "W_CDROWN"):
        assert key in primary, key
    assert [primary[f"W_AIT{lamp}"] for lamp in ("NEO", "XEN", "HGA", "KRY", "ARG", "QTH")] == [False] * 6
    assert "W_SGRTDT" not in primary  # only red arms have a grating


@pytest.mark.parametrize(
    ("data_type", "lamps", "shutter"),
    [("COMPARISON", {"NEO", "HGA"}, "open"), ("FLAT", {"QTH"}, "open"), ("BIAS", set(), "closed")],
)
def test_pfsa_lamps_follow_data_type(tmp_path, data_type, lamps, shutter):
    path = fakedata.write_pfsa(tmp_path / "a.fits", visit=5, spectrograph=1, arm="r", pfs_design_id=DESIGN,
                               data_type=data_type)
    header = fits.getheader(path)
    assert header["DATA-TYP"] == data_type and header["W_TSHUTR"] == shutter
    lit = {lamp for lamp in ("NEO", "XEN", "HGA", "KRY", "ARG", "QTH") if header[f"W_AIT{lamp}"]}
    assert lit == lamps
    assert "W_SGRTDT" in header  # red arms record the grating move


def test_pfsa_medium_red_and_bad_arm(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "PFSA00000734.fits", visit=7, spectrograph=3, arm="m",
                               pfs_design_id=DESIGN)
    header = fits.getheader(path)
    assert (header["W_ARM"], header["DET-ID"], header["FRAMEID"]) == (4, -7, "PFSA00000734")
    with pytest.raises(ValueError, match="arms b, r, m"):
        fakedata.write_pfsa(tmp_path / "x.fits", visit=7, spectrograph=3, arm="n", pfs_design_id=DESIGN)


def test_pfsa_extra_and_dropped_cards(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "PFSA00000811.fits", visit=8, spectrograph=1, arm="b",
                               pfs_design_id=DESIGN, extra_cards={"W_VISIT": 9, "NEWCARD": "x"},
                               drop_cards=("W_PFDSGN", "MJD-STR"))
    header = fits.getheader(path)
    assert header["W_VISIT"] == 9 and header["NEWCARD"] == "x"
    assert "W_PFDSGN" not in header and "MJD-STR" not in header
    _assert_checksums(path)


def test_pfsa_simulator_layout(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "PFFA00001011.fits", visit=10, spectrograph=1, arm="b", site="F",
                               pfs_design_id=DESIGN, simulator_layout=True, drop_cards=("DET-ID",))
    assert _structure(path) == [("PRIMARY", False), ("image", True)]
    _assert_checksums(path)
    with fits.open(path) as hdul:
        assert "INSTRUME" not in hdul[0].header and "W_VISIT" not in hdul[0].header
        image = hdul[1].header
        assert image["INSTRUME"] == "PFS" and image["W_SITE"] == "F" and image["FRAMEID"] == "PFFA00001011"
        assert "DET-ID" not in image and "SIMPLE" not in image


def test_pfsa_pixels_deterministic_and_distinct(tmp_path):
    kwargs = dict(spectrograph=1, arm="b", pfs_design_id=DESIGN)
    one = fakedata.write_pfsa(tmp_path / "1.fits", visit=1, **kwargs)
    again = fakedata.write_pfsa(tmp_path / "again.fits", visit=1, **kwargs)
    other = fakedata.write_pfsa(tmp_path / "2.fits", visit=2, **kwargs)
    reseeded = fakedata.write_pfsa(tmp_path / "3.fits", visit=1, seed=5, **kwargs)
    assert one.read_bytes() == again.read_bytes()
    assert len({p.read_bytes() for p in (one, other, reseeded)}) == 3
    first, second = fits.getdata(one, 1), fits.getdata(other, 1)
    assert first.shape == second.shape and not np.array_equal(first, second)


def test_pfsa_full_size(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "PFSA00000111.fits", visit=1, spectrograph=1, arm="b",
                               pfs_design_id=DESIGN, full_size=True)
    with fits.open(path) as hdul:
        assert hdul[1].data.shape == (4300, 4416) and hdul[1].data.dtype == np.uint16
        assert hdul[0].header["W_CDROWN"] == 4299
    assert path.stat().st_size < 4300 * 4416 * 2  # compressed
    _assert_checksums(path)


# ------------------------------------------------------------------------------------------------ PFSB


def test_pfsb_layout_cards_and_ramp(tmp_path):
    path = fakedata.write_pfsb(tmp_path / "PFSB12345613.fits", visit=123456, spectrograph=1,
                               pfs_design_id=DESIGN, n_reads=4, frame_time=10.0)
    names = ["PRIMARY", "RESET_IMAGE_1", "RESET_REF_1"]
    names += [f"{kind}_{n}" for n in range(1, 5) for kind in ("IMAGE", "REF")]
    assert _structure(path) == [(name, name != "PRIMARY") for name in names]
    _assert_checksums(path)
    with fits.open(path, disable_image_compression=True) as hdul:
        assert {hdu.header["ZCMPTYPE"] for hdu in hdul[1:]} == {"RICE_1"}
    with fits.open(path) as hdul:
        primary = hdul[0].header
        expected = {"W_ARM": 3, "DETECTOR": "n1", "DET-ID": 2, "FRAMEID": "PFSB12345613", "W_H4NRED": 4,
                    "W_H4NRST": 1, "W_H4NCHN": 32, "W_H4IRP": True, "W_H4IRPN": 1, "W_H4IRPO": 0,
                    "W_FRMTIM": 10.0, "W_H4FRMT": 10.0, "W_4FMTVR": 3, "W_H4FFMT": 3, "EXPTIME": 40.0,
                    "DARKTIME": 40.0}
        assert {key: primary[key] for key in expected} == expected
        for key in ("W_H4GAIN", "W_SRH4", "W_SRASIC", "W_4SPI13"):
            assert key in primary
        assert primary["NAXIS"] == 0 and hdul[0].data is None
        for n in range(1, 5):
            image = hdul[f"IMAGE_{n}"].header
            assert (image["INHERIT"], image["W_H4READ"], image["W_H4GRUP"]) == (True, n, 1)
            assert "W_H4READ" not in hdul[f"REF_{n}"].header and "INHERIT" not in hdul[f"REF_{n}"].header
        reads = [hdul[f"IMAGE_{n}"].data.astype(np.int64) for n in range(1, 5)]
        assert all(read.shape == (64, 64) for read in reads)
        assert hdul["IMAGE_1"].data.dtype == np.uint16
        refs = [hdul[f"REF_{n}"].data.astype(np.int64) for n in range(1, 5)]
    # Each read carries a drift shared with its REF frame: take it out, and the ramp is linear.
    signal = [read - ref for read, ref in zip(reads, refs, strict=True)]
    flux = signal[1] - signal[0]
    assert (flux > 0).all()
    for n, value in enumerate(signal, start=1):
        np.testing.assert_array_equal(value - signal[0], (n - 1) * flux)
    assert not np.array_equal(reads[2] - reads[0], 2 * (reads[1] - reads[0]))  # the drift is there


def test_pfsb_irp_ratio(tmp_path):
    path = fakedata.write_pfsb(tmp_path / "b.fits", visit=3, spectrograph=1, pfs_design_id=DESIGN, n_reads=2,
                               irp_ratio=4)
    with fits.open(path) as hdul:
        assert hdul[0].header["W_H4IRPN"] == 4 and hdul[0].header["W_H4IRPO"] == 1
        assert hdul["IMAGE_1"].data.shape == (64, 64) and hdul["REF_1"].data.shape == (64, 16)
        assert hdul["RESET_REF_1"].data.shape == (64, 16)
    with pytest.raises(ValueError, match="irp_ratio"):
        fakedata.write_pfsb(tmp_path / "c.fits", visit=3, spectrograph=1, pfs_design_id=DESIGN, irp_ratio=3)


def test_pfsb_single_read_and_bad_reads(tmp_path):
    path = fakedata.write_pfsb(tmp_path / "b.fits", visit=3, spectrograph=4, pfs_design_id=DESIGN, n_reads=1)
    assert [name for name, _ in _structure(path)][-2:] == ["IMAGE_1", "REF_1"]
    assert fits.getheader(path)["DET-ID"] == 11
    with pytest.raises(ValueError, match="n_reads"):
        fakedata.write_pfsb(tmp_path / "c.fits", visit=3, spectrograph=1, pfs_design_id=DESIGN, n_reads=0)


# ------------------------------------------------------------------------------------------------ pfsConfig

CONFIG_COLUMNS = [
    ("fiberId", "J"), ("cobraId", "J"), ("tract", "J"), ("patch", "A"), ("ra", "D"), ("dec", "D"),
    ("catId", "J"), ("objId", "K"), ("targetType", "J"), ("epoch", "A"), ("pmRa", "E"), ("pmDec", "E"),
    ("parallax", "E"), ("proposalId", "A"), ("obCode", "A"), ("pfiNominal", "2E"), ("pfiCenter", "2E"),
    ("cobraTheta", "E"), ("cobraPhi", "E"), ("fiberStatus", "J"),
]


def _tforms(hdu: fits.BinTableHDU) -> list[tuple[str, str]]:
    return [(c.name, re.sub(r"^\d+A$", "A", c.format)) for c in hdu.columns]


def test_pfsconfig_layout(tmp_path):
    path = fakedata.write_pfsconfig(tmp_path / "p.fits", visit=123456, n_fibers=12)
    assert [name for name, _ in _structure(path)] == ["PRIMARY", "CONFIG", "PHOTOMETRY", "GUIDESTARS"]
    _assert_checksums(path)
    with fits.open(path) as hdul:
        primary, config = hdul[0].header, hdul["CONFIG"]
        assert _tforms(config) == CONFIG_COLUMNS
        assert _tforms(hdul["PHOTOMETRY"]) == [("fiberId", "J")] + [
            (name, "E") for name in ("fiberFlux", "psfFlux", "totalFlux", "fiberFluxErr", "psfFluxErr",
                                     "totalFluxErr")] + [("filterName", "A")]
        assert _tforms(hdul["GUIDESTARS"]) == [
            ("objId", "K"), ("epoch", "A"), ("ra", "D"), ("dec", "D"), ("pmRa", "E"), ("pmDec", "E"),
            ("parallax", "E"), ("magnitude", "E"), ("passband", "A"), ("color", "E"), ("agId", "J"),
            ("agX", "E"), ("agY", "E"), ("flag", "J")]
        assert hdul["GUIDESTARS"].columns["epoch"].format == "7A"
        design = fakedata.design_id_for(config.data["fiberId"], config.data["ra"], config.data["dec"])
        expected = {"W_PFDSGN": design, "W_VISIT": 123456, "DAMD_VER": 5, "VARIANT": 0, "PFDSGN0": 0,
                    "ARMS": "brn", "FRAMEID": "PFSF12345600", "EXP-ID": "PFSE00123456",
                    "DATA-TYP": "META-OBJECT", "INSTRUME": "PFS", "TELESCOP": "Subaru 8.2m",
                    "EQUINOX": 2000.0,
                    "DSGN_NAM": f"fake-0x{design:016x}", "W_INSMSK": 0, "PROP-ID": "S25A-001QN"}
        assert {key: primary[key] for key in expected} == expected
        for key in ("RA", "DEC", "POSANG", "W_CAMMSK", "OBSERVER", "DATE-OBS"):
            assert key in primary
        for name in ("CONFIG", "PHOTOMETRY"):
            assert hdul[name].header["W_PFDSGN"] == design and hdul[name].header["RA"] == primary["RA"]
        assert hdul["CONFIG"].header["TargetType.SKY"] == 2
        guide = hdul["GUIDESTARS"].header
        assert guide["DAMD_VER"] == 1 and "TEL_ELEV" in guide and "GS_CATID" in guide
        data = config.data
        assert len(data) == 12 and len(set(data["fiberId"])) == 12 and (np.diff(data["fiberId"]) > 0).all()
        assert sorted(set(data["targetType"])) == [1, 2, 3, 4]
        untargeted = data["targetType"] == 4
        assert (data["catId"][untargeted] == -1).all() and (data["objId"][untargeted] == -1).all()
        assert (data["catId"][~untargeted] >= 0).all() and (data["fiberStatus"] == 1).all()
        science = data["targetType"] == 1
        assert set(data["proposalId"][science]) == {"S25A-001QN", "S25A-002QN"}
        assert set(data["proposalId"][~science]) == {"N/A"}
        with_photometry = science | (data["targetType"] == 3)
        assert set(hdul["PHOTOMETRY"].data["fiberId"]) == set(data["fiberId"][with_photometry])


def test_pfsconfig_given_design_and_cards(tmp_path):
    path = fakedata.write_pfsconfig(tmp_path / "p.fits", visit=5, pfs_design_id=DESIGN, n_fibers=3,
                                    extra_cards={"W_VISIT": 6}, drop_cards=("W_PFDSGN",))
    header = fits.getheader(path)
    assert header["W_VISIT"] == 6 and "W_PFDSGN" not in header
    assert header["DSGN_NAM"] == "fake-0x1945be7e6de4b2cf"
    assert len(fits.getdata(path, "CONFIG")) == 3


def test_pfsf_subsets(tmp_path):
    full = fakedata.write_pfsconfig(tmp_path / fakedata.pfsf_filename(77, 0), visit=77, n_fibers=24)
    parts = [fakedata.write_pfsconfig(tmp_path / fakedata.pfsf_filename(77, k), visit=77, n_fibers=24,
                                      subset=k) for k in (1, 2)]
    full_header, full_data = fits.getheader(full), fits.getdata(full, "CONFIG")
    calib = np.isin(full_data["targetType"], (2, 3))
    for k, part in enumerate(parts, start=1):
        header, data = fits.getheader(part), fits.getdata(part, "CONFIG")
        assert header["FRAMEID"] == f"PFSF{77:06d}{k:02d}"
        assert header["W_PFDSGN"] == full_header["W_PFDSGN"] and header["W_VISIT"] == 77
        proposal = ("S25A-001QN", "S25A-002QN")[k - 1]
        assert header["PROP-ID"] == proposal
        keep = (full_data["proposalId"] == proposal) | calib
        np.testing.assert_array_equal(data["fiberId"], full_data["fiberId"][keep])
        assert set(data["proposalId"][data["targetType"] == 1]) == {proposal}
        assert 4 not in set(data["targetType"])
        _assert_checksums(part)
    with pytest.raises(ValueError, match="subset 3"):
        fakedata.write_pfsconfig(tmp_path / "x.fits", visit=77, subset=3)


def test_metrology(tmp_path):
    path = fakedata.write_metrology(tmp_path / "PFSC00012301.fits", visit=123, sequence=1)
    with fits.open(path) as hdul:
        assert len(hdul) == 1 and hdul[0].data.shape == (48, 64)
        header = hdul[0].header
        assert (header["FRAMEID"], header["W_VISIT"]) == ("PFSC00012301", 123) and "W_ARM" not in header
    _assert_checksums(path)


# ------------------------------------------------------------------------------------------------ visits


def test_make_visits_layout(tmp_path):
    paths = fakedata.make_visits(tmp_path, visits=3, first_visit=200, spectrographs=(1, 3),
                                 arms=("b", "n", "m"), date="2025-05-03", pfsf=True)
    base = tmp_path / "raw" / "2025-05-03"
    assert len(paths) == 3 * (4 + 6) and all(p.exists() for p in paths)
    assert {p.parent for p in paths} == {base / "sps", base / "ramps", base / "pfsConfig"}
    assert sorted(p.name for p in (base / "ramps").iterdir()) == [
        f"PFSB000{v}{s}3.fits" for v in (200, 201, 202) for s in (1, 3)]
    assert {p.name for p in (base / "sps").iterdir()} == {
        f"PFSA000{v}{s}{a}.fits" for v in (200, 201, 202) for s in (1, 3) for a in (1, 4)}
    designs, dithers, starts = {}, [], []
    for visit in (200, 201, 202):
        (config,) = (base / "pfsConfig").glob(f"pfsConfig-0x*-000{visit}.fits")
        header = fits.getheader(config)
        designs[visit] = header["W_PFDSGN"]
        assert config.name == fakedata.pfsconfig_filename(header["W_PFDSGN"], visit)
        for k in range(3):
            pfsf = base / "pfsConfig" / fakedata.pfsf_filename(visit, k)
            assert fits.getheader(pfsf)["W_PFDSGN"] == designs[visit]
        raws = [fits.getheader(p) for p in paths if f"{visit}" in p.name and p.name.startswith("PFSA")]
        raws += [fits.getheader(p) for p in paths if f"{visit}" in p.name and p.name.startswith("PFSB")]
        assert len(raws) == 6 and {h["W_PFDSGN"] for h in raws} == {designs[visit]}
        assert {h["W_VISIT"] for h in raws} == {visit} and len({h["MJD-STR"] for h in raws}) == 1
        assert {h["DATE-OBS"] for h in raws} == {"2025-05-03"}
        dithers.append(raws[0]["W_ENFCAZ"])
        starts.append(raws[0]["MJD-STR"])
    assert len(set(designs.values())) == 3
    assert dithers == [0.0, 0.00071, -0.0005]
    assert starts == sorted(starts) and len(set(starts)) == 3


def test_make_visits_deterministic(tmp_path):
    first = fakedata.make_visits(tmp_path / "a", visits=1)
    second = fakedata.make_visits(tmp_path / "b", visits=1)
    other = fakedata.make_visits(tmp_path / "c", visits=1, seed=1)
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))
    assert first[0].name != other[0].name  # another seed, another design
    assert len(first) == 1 + 2 * 3 and not any(p.name.startswith("PFSF") for p in first)


def test_a_night_is_the_writers_files_restamped(tmp_path):
    """make_visits restamps templates (fast) and gives what the writers give: the same primary headers
    for every raw, the same bytes for every pfsConfig and PFSF file, valid checksums everywhere."""
    paths = fakedata.make_visits(tmp_path / "night", visits=4, spectrographs=(1, 2), pfsf=True, date="2024-10-25")
    assert len(paths) == 4 * (4 + 6)
    reference = tmp_path / "reference"
    for path in paths:
        _assert_checksums(path)
        with fits.open(path) as hdul:
            header = hdul[0].header
            visit, design = header["W_VISIT"], header["W_PFDSGN"]
            if path.name.startswith("PFS") and path.name[3] in "AB":
                common = dict(visit=visit, spectrograph=header["W_SPMOD"], pfs_design_id=design,
                              mjd=header["MJD-STR"], dither_mm=header["W_ENFCAZ"])
                target = reference / path.name
                if path.name[3] == "B":
                    fakedata.write_pfsb(target, **common)
                else:
                    fakedata.write_pfsa(target, arm={"1": "b", "2": "r", "4": "m"}[path.name[-6]], **common)
                with fits.open(target) as expected:
                    assert hdul[0].header.tostring() == expected[0].header.tostring(), path.name
            else:
                subset = int(header["FRAMEID"][-2:])
                target = fakedata.write_pfsconfig(reference / path.name, visit=visit, subset=subset,
                                                  extra_cards={"DATE-OBS": header["DATE-OBS"],
                                                               # the cameras make_visits wrote (issue 15)
                                                               "W_CAMMSK": header["W_CAMMSK"],
                                                               "ARMS": header["ARMS"]})
                assert target.read_bytes() == path.read_bytes(), path.name
    designs = {fits.getheader(p)["W_PFDSGN"] for p in paths if p.name.startswith("pfsConfig")}
    assert len(designs) == 4 and {p.parent.parent.name for p in paths} == {"2024-10-25"}
