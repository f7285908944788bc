"""Visit records bit for bit as the official ingest writes them, against an independent computation.

pfswatchd's records are read back from a real registry after a real ingest; the expected ones are
computed by tests/official.py from the documented obs_pfs rules with astropy directly (SkyCoord with
the observation time and Subaru's location, AltAz, Time arithmetic), never through pfswatchd's code.
Every column is compared, floats by their bits.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import astropy.units as u
import pytest
from astropy.time import Time
from lsst.daf.butler import Timespan

from conftest import DESIGN, classified, make_ingester, write_raw
from official import official_header, official_visit
from pfswatchd import fakedata
from pfswatchd.files.visitrecord import TIMESPAN_NSEC, timespan_nsec
from pfswatchd.model import Status
from pfswatchd.service.examiner import examine_many


def _bits(value):
    """A value as it must match: floats by their IEEE bits, everything else with its type."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    return (type(value).__name__, value)


def _differences(stored, expected: dict) -> list[str]:
    found = []
    timespan = Timespan(expected["datetime_begin"], expected["datetime_end"])
    if stored.timespan != timespan:
        found.append(f"timespan {stored.timespan} != {timespan}")
    for name, value in expected.items():
        if name in ("datetime_begin", "datetime_end"):
            continue
        if _bits(getattr(stored, name)) != _bits(value):
            found.append(f"{name}: {getattr(stored, name)!r} != {value!r}")
    return found


def _examined_by_the_service(paths: list[Path]):
    """As the service's examiner workers hand them over: the first raw of each visit with its visit
    values computed there (times in TAI), the others without."""
    found = examine_many([str(p) for p in paths])
    assert all(f.classified is not None for f in found), [(f.path.name, f.error) for f in found]
    return [f.classified for f in found]


def _ingest_and_compare(butler, root, paths: list[Path], examined_by=classified) -> None:
    files = examined_by(paths) if examined_by is _examined_by_the_service else examined_by(*paths)
    outcomes = make_ingester(butler, root).ingest(files)
    assert all(o.status is Status.INGESTED for o in outcomes), [o.message for o in outcomes if not o.ok]
    columns = {m.name for m in butler.dimensions["visit"].metadata}
    assert "irp_ratio" in columns  # the 18-column shape (the 17-column one: tests/butler/test_official_repo.py)
    records = {r.id: r for r in butler.query_dimension_records("visit", instrument="PFS", explain=False)}
    problems = {}
    for path in paths:
        header = official_header(path)
        expected = official_visit(header, columns)
        found = _differences(records[expected["id"]], expected)
        if found:
            problems[path.name] = found
    assert problems == {}
    assert set(columns) - {"irp_ratio"} <= set(expected)  # every column was compared


CASES = {
    "iis_lamps": dict(data_type="COMPARISON", extra_cards={"W_IISHE": True, "W_IISNEO": True, "W_IISARG": 0}),
    "eng_lamps_merge": dict(data_type="ARC", extra_cards={"W_ENIISA": True, "W_IISARG": 1, "W_AITKRY": True}),
    "lower_case_object": dict(data_type="object", extra_cards={"W_AITNEO": True}),
    "flat": dict(data_type="FLAT", extra_cards={"W_IISQTH": True}),
    "altitude_without_azimuth": dict(drop_cards=["AZIMUTH"], extra_cards={"ALTITUDE": 47.5}),
    "azimuth_without_altitude": dict(drop_cards=["ALTITUDE"]),
    "altitude_above_90": dict(extra_cards={"ALTITUDE": 95.25}),
    "altitude_below_0": dict(extra_cards={"ALTITUDE": -3.0}),
    "altitude_integer": dict(extra_cards={"ALTITUDE": 60}),
    "long_target_name": dict(extra_cards={"OBJECT": "COSMOS deep field, PFS SSP cosmology pointing " * 3}),
    "no_position": dict(data_type="BIAS", exptime=0.0, drop_cards=["RA2000", "DEC2000"]),
    "numeric_ra_in_hours": dict(extra_cards={"RA2000": 10.5, "DEC2000": 2.25}),
    "tai_and_no_darktime": dict(extra_cards={"TIMESYS": "TAI"}, drop_cards=["DARKTIME"]),
    "group_and_program": dict(extra_cards={"W_PFDSNM": "cobraHome", "PROP-ID": "S25A-001QN"}),
    "missing_group_and_program": dict(drop_cards=["W_PFDSNM", "PROP-ID", "W_ENFCAY"]),
    "blank_data_type_uses_imagetyp": dict(extra_cards={"DATA-TYP": " ", "IMAGETYP": "Dark"}),
    "negative_dither": dict(dither_mm=-0.00071),
    "just_before_tai_midnight": dict(mjd=60800.0 - 20 / 86400),  # the TAI date is the next day
}


@pytest.mark.parametrize("examined_by", [classified, _examined_by_the_service], ids=["one-shot", "service"])
def test_documented_cases_equal_the_official_records(butler, pfs_repo, tmp_path, examined_by):
    paths = []
    for number, (case, cards) in enumerate(CASES.items()):
        cards = dict(cards)
        cards.setdefault("extra_cards", {})
        path = write_raw(tmp_path / case, visit=1000 + number, arm="r", spectrograph=2, **cards)
        paths.append(path)
    paths.append(write_raw(tmp_path / "nir", visit=1100, arm="n", spectrograph=1, extra_cards={"W_H4IRPN": 4}))
    _ingest_and_compare(butler, pfs_repo, paths, examined_by)
    [nir] = butler.query_dimension_records("visit", instrument="PFS", visit=1100)
    [iis] = butler.query_dimension_records("visit", instrument="PFS", visit=1000)
    [lower] = butler.query_dimension_records("visit", instrument="PFS", visit=1002)
    [high] = butler.query_dimension_records("visit", instrument="PFS", visit=1006)
    # A few values written out, so that an error in both computations would still show.
    assert (nir.irp_ratio, iis.lamps, lower.observation_type, lower.observation_reason, lower.lamps) == (
        4, "He_eng,HgAr,Ne,Ne_eng", "object", "calibration", "")  # COMPARISON frames also light AIT Ne, HgAr
    assert high.zenith_angle == 0.0


@pytest.mark.parametrize("examined_by", [classified, _examined_by_the_service], ids=["one-shot", "service"])
def test_500_random_positions_equal_the_official_records(butler, pfs_repo, tmp_path, examined_by):
    """FK5 -> ICRS through astropy per position: a cached rotation differs in the last bit for ~36%."""
    rng = random.Random(20261111)
    template = write_raw(tmp_path / "template", visit=1, arm="b", spectrograph=1)
    paths = []
    (tmp_path / "many").mkdir()
    for number in range(500):
        ra = f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.uniform(0, 60):06.3f}"
        dec = f"{rng.choice('+-')}{rng.randrange(90):02d}:{rng.randrange(60):02d}:{rng.uniform(0, 60):05.2f}"
        cards = {"RA2000": ra, "DEC2000": dec, "ALTITUDE": round(rng.uniform(-10.0, 100.0), 4),
                 "MJD-STR": 60800.0 + rng.random() * 300}
        paths.append(fakedata.clone_raw(template, tmp_path / "many", visit=2000 + number, pfs_design_id=DESIGN,
                                        cards=cards))
    _ingest_and_compare(butler, pfs_repo, paths, examined_by)


def test_a_value_too_long_for_its_column_is_a_reason_not_a_cut(butler, pfs_repo, tmp_path):
    """observation_type is VARCHAR(16): obs_pfs writes it uncut (PostgreSQL then refuses the visit)."""
    long_type = write_raw(tmp_path / "in", visit=3000, data_type="COMPARISON_SEQUENCE_7")
    [outcome] = make_ingester(butler, pfs_repo).ingest(classified(long_type))
    assert (outcome.status, outcome.error_kind) == (Status.FAILED, "bad_header")
    assert "'comparison_sequence_7' has 21 characters" in outcome.message and "at most 16" in outcome.message
    assert butler.query_dimension_records("visit", instrument="PFS", where="visit = 3000", explain=False) == []


@pytest.mark.parametrize(("cards", "drop", "expected"), [
    ({"RA2000": "not a position"}, [], "RA2000 'not a position'"),
    ({"ALTITUDE": -95.0}, [], "ALTITUDE -95.0"),
    ({"TIMESYS": "HST"}, [], "TIMESYS is 'HST'"),
    ({"DATA-TYP": 5}, [], "DATA-TYP is 5"),
    ({}, ["EXPTIME"], "EXPTIME"),
    ({"MJD-STR": 0.0}, [], "before 1970"),  # daf_butler's Timespan would raise (and obs_pfs's call abort)
])
def test_where_obs_pfs_itself_fails_the_raw_gets_a_reason(butler, pfs_repo, tmp_path, cards, drop, expected):
    from pfswatchd.files.examine import examine

    path = write_raw(tmp_path / "in", visit=3001, extra_cards=cards, drop_cards=drop)
    found = examine(path)
    if found.error is not None:  # refused when classified
        assert found.error.kind == "bad_header" and expected in str(found.error), found.error
        return
    [outcome] = make_ingester(butler, pfs_repo).ingest([found.classified])
    assert (outcome.status, outcome.error_kind) == (Status.FAILED, "bad_header")
    assert expected in outcome.message and "\n" not in outcome.message


def test_the_examiner_computes_each_visit_once_and_leaves_a_bad_one_to_the_ingest(butler, pfs_repo, tmp_path):
    """The worker computes the visit values of the first raw of each visit only; a raw whose values cannot
    be computed comes without them, and the ingest gives it its reason as it would have anyway."""
    good = [write_raw(tmp_path / "good", visit=3000, arm=arm, spectrograph=1) for arm in "br"]
    other = write_raw(tmp_path / "other", visit=3001, arm="b", spectrograph=1)
    bad = write_raw(tmp_path / "bad", visit=3002, arm="b", spectrograph=1, extra_cards={"RA2000": "not a position"})
    files = _examined_by_the_service([*good, other, bad])
    assert [f.visit_values is not None for f in files] == [True, False, True, False]
    assert files[0].visit_values["datetime_begin"].scale == "tai"
    assert files[0].visit_values[TIMESPAN_NSEC] is not None  # the registry side builds no astropy Time
    outcomes = make_ingester(butler, pfs_repo).ingest(files)
    assert [o.status for o in outcomes] == [Status.INGESTED] * 3 + [Status.FAILED]
    assert "RA2000" in outcomes[3].message and "visit record cannot be computed" in outcomes[3].message


@pytest.mark.parametrize(("mjd", "seconds"), [
    (60800.123456789, 900.0), (60800.5, 0.0), (60800.5, 1e-10), (61234.999999, 3600.5),
    (40587.0, 1.0), (40587.0 + 1e-12, 1.0), (40586.9, 86400.0), (88068.99, 600.0), (88069.0, 0.0),
])
def test_the_examiners_time_span_is_the_one_daf_butler_makes(mjd, seconds):
    """Nanoseconds worked out in the worker make, through Timespan's serialised form, the Timespan its
    constructor makes from the same times (or None, where the constructor clips at 1970 or 2100)."""
    begin = Time(mjd, format="mjd", scale="tai")
    end = begin + seconds * u.s
    nsec = timespan_nsec(begin, end)
    try:
        expected = Timespan(begin, end)
    except ValueError:  # e.g. an instant at 2100: the constructor's own reason, which the record gives
        assert nsec is None
        return
    if nsec is None:  # only where the constructor clipped a bound (then read back as unbounded)
        assert expected.begin is None or expected.end is None, (mjd, seconds, expected.nsec)
        return
    rebuilt = Timespan.model_validate(nsec)
    assert rebuilt == expected and rebuilt.nsec == expected.nsec
