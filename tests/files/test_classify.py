"""Classification: data IDs and visit values from name and header; every rejection has a reason."""

from __future__ import annotations

import pytest

from conftest import DESIGN, write_config, write_raw
from pfswatchd import fakedata
from pfswatchd.errors import ErrorKind
from pfswatchd.files.examine import examine
from pfswatchd.files.visitrecord import visit_values
from pfswatchd.model import FileKind, PfsConfigFile, RawFile


@pytest.mark.parametrize(
    ("arm", "spectrograph", "site", "instrument", "kind"),
    [
        ("b", 1, "S", "PFS", FileKind.RAW_CCD),
        ("r", 2, "S", "PFS", FileKind.RAW_CCD),
        ("m", 4, "S", "PFS", FileKind.RAW_CCD),
        ("n", 3, "S", "PFS", FileKind.RAW_NIR),
        ("b", 1, "F", "PFS-F", FileKind.RAW_CCD),
        ("r", 1, "L", "PFS-L", FileKind.RAW_CCD),
        ("b", 2, "J", "PFS-J", FileKind.RAW_CCD),
        ("n", 1, "X", "PFS-X", FileKind.RAW_NIR),
    ],
)
def test_raw_data_id(tmp_path, arm, spectrograph, site, instrument, kind):
    path = write_raw(tmp_path, visit=123456, arm=arm, spectrograph=spectrograph, site=site, dither_mm=0.00071)
    raw = examine(path).classified
    assert isinstance(raw, RawFile)
    assert (raw.kind, raw.instrument, raw.visit, raw.arm, raw.spectrograph) == (
        kind, instrument, 123456, arm, spectrograph)
    assert raw.pfs_design_id == DESIGN
    assert raw.dither == 7  # int(0.00071 * 1e4 + 0.5)


@pytest.mark.parametrize(("dither_mm", "quantised"), [(0.0, 0), (0.00071, 7), (0.001, 10), (-0.0005, -4),
                                                        (-0.00071, -6), (0.5, 5000)])
def test_dither_quantisation_follows_obs_pfs(tmp_path, dither_mm, quantised):
    """int(x * 1e4 + 0.5): truncation toward zero, asymmetric for negative values, as obs_pfs does."""
    raw = examine(write_raw(tmp_path, visit=1, dither_mm=dither_mm)).classified
    assert raw.dither == quantised


def test_simulator_layout_reads_cards_from_the_image_hdu(tmp_path):
    path = write_raw(tmp_path, visit=77, arm="r", spectrograph=2, site="F", simulator_layout=True)
    raw = examine(path).classified
    assert (raw.instrument, raw.visit, raw.arm, raw.spectrograph) == ("PFS-F", 77, "r", 2)


def _reason(path):
    found = examine(path)
    assert found.classified is None
    assert found.error is not None, found
    return found.error


@pytest.mark.parametrize(
    ("extra", "kind", "words"),
    [
        ({"W_VISIT": 124}, ErrorKind.NAME_MISMATCH, ["visit 123", "W_VISIT 124"]),
        ({"W_SPMOD": 2}, ErrorKind.NAME_MISMATCH, ["spectrograph 1", "W_SPMOD 2"]),
        ({"W_ARM": 2}, ErrorKind.NAME_MISMATCH, ["arm b", "W_ARM 2 (r)"]),
        ({"W_SITE": "L"}, ErrorKind.NAME_MISMATCH, ["site S", "W_SITE L"]),
        ({"W_ARM": 7}, ErrorKind.BAD_HEADER, ["W_ARM is 7", "1 to 4"]),
        ({"W_ARM": "b"}, ErrorKind.BAD_HEADER, ["W_ARM is 'b'", "integer"]),
        ({"W_SPMOD": 0}, ErrorKind.BAD_HEADER, ["W_SPMOD is 0"]),
        ({"W_PFDSGN": -1}, ErrorKind.BAD_HEADER, ["W_PFDSGN is -1"]),
        ({"W_ENFCAZ": "abc"}, ErrorKind.BAD_HEADER, ["W_ENFCAZ is 'abc'", "finite number"]),
        ({"INSTRUME": "HSC"}, ErrorKind.BAD_HEADER, ["INSTRUME is 'HSC'", "expected 'PFS'"]),
        ({"EXPTIME": -100.0}, ErrorKind.BAD_HEADER, ["EXPTIME is -100.0", "expected", ">= 0"]),
    ],
)
def test_bad_raw_headers(tmp_path, extra, kind, words):
    error = _reason(write_raw(tmp_path, visit=123, extra_cards=extra))
    assert error.kind == kind
    message = str(error)
    assert "\n" not in message and message.startswith("PFSA00012311.fits: ")
    for word in words:
        assert word in message


@pytest.mark.parametrize("card", ["W_VISIT", "W_ARM", "W_SPMOD", "W_PFDSGN", "W_ENFCAZ", "MJD-STR", "W_SITE"])
def test_missing_required_cards(tmp_path, card):
    error = _reason(write_raw(tmp_path, visit=123, drop_cards=[card]))
    assert error.kind == ErrorKind.BAD_HEADER
    assert f"missing required header cards {card}" in str(error)


def test_pfsb_with_a_ccd_arm_is_a_mismatch(tmp_path):
    path = tmp_path / "PFSB00012313.fits"
    fakedata.write_pfsb(path, visit=123, spectrograph=1, pfs_design_id=DESIGN, extra_cards={"W_ARM": 1})
    error = _reason(path)
    assert error.kind == ErrorKind.NAME_MISMATCH and "arm n but W_ARM 1 (b)" in str(error)


def test_not_fits_and_truncated(tmp_path):
    html = tmp_path / "PFSA00012311.fits"
    html.write_text("<html>404</html>" * 300)
    assert _reason(html).kind == ErrorKind.NOT_FITS
    good = write_raw(tmp_path / "g", visit=124)
    data = good.read_bytes()
    cut = tmp_path / "PFSA00012411.fits"
    cut.write_bytes(data[: len(data) - 1000])
    found = examine(cut)
    assert found.classified is None and found.error is None
    assert "ends at byte" in found.incomplete


def test_nir_ramp_incomplete_until_all_reads(tmp_path):
    """A ramp cut after IMAGE_2 of 3 is structurally whole but not finished (W_H4NRED=3)."""
    from pfswatchd.files.fitsheader import scan

    path = write_raw(tmp_path, visit=200, arm="n", n_reads=3)
    full = scan(path)
    cut_at = full.find("REF_2").end
    partial = tmp_path / "partial" / path.name
    partial.parent.mkdir()
    partial.write_bytes(path.read_bytes()[:cut_at])
    found = examine(partial)
    assert found.classified is None and "W_H4NRED=3 means 9" in found.incomplete


def test_the_largest_ramp_is_accepted_and_one_hdu_more_is_refused(tmp_path):
    """999 reads (format 3: 2,001 HDUs) is the largest PFSB: accepted; the limit's message names the same figure."""
    from pfswatchd.files.fitsheader import MAX_HDUS, scan

    path = fakedata.write_long_pfsb(tmp_path / "PFSB00012313.fits", visit=123, spectrograph=1, pfs_design_id=DESIGN,
                                    n_reads=999)
    assert len(scan(path).hdus) == 2001 == MAX_HDUS
    found = examine(path)
    assert isinstance(found.classified, RawFile), found
    extra = tmp_path / "more" / path.name
    extra.parent.mkdir()
    empty = b"".join(card.ljust(80).encode() for card in (
        "XTENSION= 'IMAGE   '", "BITPIX  =                    8", "NAXIS   =                    0",
        "PCOUNT  =                    0", "GCOUNT  =                    1", "END"))
    extra.write_bytes(path.read_bytes() + empty.ljust(2880))
    error = _reason(extra)
    assert error.kind == ErrorKind.NOT_FITS and "more than 2001 HDUs" in str(error) and "999 reads" in str(error)
    too_many = fakedata.write_pfsb(tmp_path / "big" / path.name, visit=123, spectrograph=1, pfs_design_id=DESIGN,
                                   n_reads=2, extra_cards={"W_H4NRED": 1000})
    error = _reason(too_many)
    assert error.kind == ErrorKind.BAD_HEADER and "W_H4NRED is 1000; expected an integer from 1 to 999" in str(error)


def test_pfsconfig(tmp_path):
    config = examine(write_config(tmp_path, visit=123456)).classified
    assert isinstance(config, PfsConfigFile)
    assert (config.visit, config.pfs_design_id, config.subset, config.instrument) == (123456, DESIGN, 0, None)
    archived = examine(write_config(tmp_path, visit=123456, subset=2)).classified
    assert (archived.visit, archived.subset, archived.instrument) == (123456, 2, "PFS")


def test_pfsconfig_mismatch_and_missing_cards(tmp_path):
    wrong_visit = write_config(tmp_path / "a", visit=5, extra_cards={"W_VISIT": 6})
    error = _reason(wrong_visit)
    assert error.kind == ErrorKind.NAME_MISMATCH and "visit 5 but W_VISIT 6" in str(error)
    wrong_design = write_config(tmp_path / "b", visit=5, extra_cards={"W_PFDSGN": 42})
    error = _reason(wrong_design)
    assert error.kind == ErrorKind.NAME_MISMATCH and "W_PFDSGN 0x000000000000002a" in str(error)
    missing = write_config(tmp_path / "c", visit=5, drop_cards=["W_PFDSGN"])
    error = _reason(missing)
    assert error.kind == ErrorKind.BAD_HEADER and "missing header cards W_PFDSGN" in str(error)


def test_metrology_guider_and_design_are_recognised_not_ingested(tmp_path):
    mcs = fakedata.write_metrology(tmp_path / "PFSC12345600.fits", visit=123456)
    found = examine(mcs)
    assert found.skipped is not None and found.kind is FileKind.METROLOGY
    assert "not ingested" in found.skipped.reason
    guider = tmp_path / "PFSD12345601.fits"
    guider.write_bytes(b"not even read")
    assert examine(guider).skipped.kind is FileKind.GUIDER


@pytest.mark.parametrize(("name", "expected"), [
    ("pfsa00012311.fits", "PFSA00012311.fits"),
    ("PFSA00012311.FITS", "PFSA00012311.fits"),
    ("pfsb00012313.fits", "PFSB00012313.fits"),
    ("pfsf00012300.fits", "PFSF00012300.fits"),
    ("PFSCONFIG-0x0000000000abcdef-000123.fits", "pfsConfig-0x0000000000abcdef-000123.fits"),
])
def test_a_pfs_name_in_the_wrong_case_is_ignored_with_the_right_spelling(tmp_path, name, expected):
    """Names are case-sensitive (obs_pfs's templates are); a wrong case gets a reason naming the right one."""
    path = write_raw(tmp_path, visit=123).rename(tmp_path / name)
    found = examine(path)
    assert found.skipped is not None and found.kind is FileKind.OTHER
    reason = found.skipped.reason
    assert "case-sensitive" in reason and f"expected {expected}" in reason and "\n" not in reason


def test_visit_record_values(tmp_path):
    path = write_raw(tmp_path, visit=321, arm="r", data_type="COMPARISON", mjd=60800.5, exptime=15.0,
                     extra_cards={"RA2000": "10:00:00.000", "DEC2000": "+02:00:00.00", "ALTITUDE": 60.0,
                                  "PROP-ID": "S25A-001QN", "W_PFDSNM": "field1", "OBJECT": "M31"})
    values = visit_values(examine(path).classified)
    assert values["observation_type"] == "comparison"
    assert values["observation_reason"] == "calibration"
    assert values["exposure_time"] == 15.0
    assert values["day_obs"] == 20250505  # MJD 60800.5 is 2025-05-05T12:00 UTC
    assert abs((values["datetime_end"] - values["datetime_begin"]).sec - 15.0) < 1e-6
    assert values["lamps"] == "HgAr,Ne"
    assert values["science_program"] == "S25A-001QN"
    assert values["group_name"] == "field1"
    assert values["target_name"] == "M31"
    assert abs(values["tracking_ra"] - 150.0) < 0.001 and abs(values["tracking_dec"] - 2.0) < 0.001
    assert abs(values["zenith_angle"] - 30.0) < 1e-9
    assert values["obs_id"] == "321" and values["seq_num"] == 321 and values["group_id"] == 321
    science = visit_values(examine(write_raw(tmp_path / "s", visit=322, data_type="OBJECT")).classified)
    assert (science["observation_type"], science["observation_reason"], science["lamps"]) == (
        "science", "science", "")
    nir = visit_values(examine(write_raw(tmp_path / "n", visit=323, arm="n")).classified)
    assert nir["irp_ratio"] == 1
