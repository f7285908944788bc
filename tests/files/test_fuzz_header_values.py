"""Hostile header VALUES in realistic files: each file is ingested, or refused alone with one line.

tests/files/test_fuzz_headers.py fuzzes the structure of headers.  Here the files are realistic PFSA,
PFSB and pfsConfig files from :mod:`pfswatchd.fakedata` whose time, date, number and string cards get
hostile values (years 0, 1969, 2101, 9999; negative, NaN, infinite, huge; strings where numbers
belong and numbers where strings belong; empty values), rewritten card by card in the bytes (astropy
would not write a NaN card).  For every file, the whole path a file takes is run: examine (scan,
header corrections, classify), the visit record, ingest into a real butler repository, and reading an
ingested raw back.  Each must give either success or ONE one-line reason that names the file, never
an exception, and never the ``internal`` kind (a bug by definition).  A refused file must leave the
repository unchanged: every registry table and every datastore file, compared before and after.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from pfswatchd import fakedata
from pfswatchd.butler import repo
from pfswatchd.butler.ingest import Ingester, IngestSettings
from pfswatchd.butler.pfsraw import PfsRaw
from pfswatchd.errors import BadHeaderError, ErrorKind
from pfswatchd.fakedata import fitsbytes
from pfswatchd.files.examine import examine
from pfswatchd.files.visitrecord import visit_values
from pfswatchd.model import FileKind, PfsConfigFile, RawFile, Status
from pfswatchd.oneshot import run_ingest

DESIGN = 0x1945BE7E6DE4B2CF
CARD = 80
_TMP = tempfile.TemporaryDirectory(prefix="pfswatchd-fuzz-values-")  # removed at exit
WORK = Path(_TMP.name)
VISITS = itertools.count(2000)  # every example its own visit: an ingested one never makes the next a conflict

# -- hostile value fields, as written in the card (columns 11-80) ----------------------------------

NUMBERS = st.sampled_from([
    "0", "-1", "-100", "1.5", "-0.0", "1E300", "-1E300", "1E999", "-1E999", "NAN", "nan", "inf", "-inf", "Infinity",
    "9" * 70, "-" + "9" * 69, "2147483648", "9223372036854775808", "-9223372036854775809", "1.0D10", "1e-320",
    "T", "F", "''", "'abc'", "'   '", "'30.0'", "'NaN'", "(1.0, 2.0)", "",
]) | st.floats().map(repr) | st.integers().map(str)
# MJDs of years 0, 1969, 2101 and 9999, the Timespan bounds (1970-01-01, 2100-01-01) and around them.
MJDS = st.sampled_from([
    "-678941.0", "40222.0", "88434.0", "2973483.0", "40587.0", "40586.99999", "88069.0", "88068.99999",
    "40588.5", "88067.5", "-1.0", "0.0", "1E12",
]) | NUMBERS
DATES = st.sampled_from([
    "'0000-01-01'", "'1969-12-31'", "'2101-01-01'", "'9999-12-31'", "'-001-01-01'", "'2025-02-30'",
    "'2025-13-01'", "'2025-05-01T25:61:61'", "'not a date'", "''", "'2025-05-01'", "'99999-01-01'",
]) | NUMBERS
CLOCKS = st.sampled_from([
    "'25:61:61.000'", "'24:00:00.000'", "'-1:00:00'", "'00:00:60.5'", "'abc'", "''", "'12:00'", "'1e3:00:00'",
]) | NUMBERS
SCALES = st.sampled_from([
    "'LOCAL'", "'local'", "'GPS'", "'UTC(NIST)'", "'utc'", "'TAI'", "'tt'", "'UT1'", "'TDB'", "'tcb'", "'TCG'",
    "''", "'   '",
]) | NUMBERS
ANGLES = st.sampled_from([
    "'99:99:99'", "'+91:00:00.000'", "'-91:00:00'", "'25:00:00.000'", "'abc'", "''", "'12:34'", "'1e300'",
    "-1000.0", "1000.0", "-90.0", "90.0001", "-360.0", "-360.0001",
]) | NUMBERS
STRINGS = st.sampled_from(["''", "'   '", "'x' ", "'" + "y" * 66 + "'", "'O''Brien'", "'\u00e9'"]) | NUMBERS

RAW_CARDS = {
    "DATE-OBS": DATES, "UT": CLOCKS, "UT-STR": CLOCKS, "UT-END": CLOCKS, "HST": CLOCKS, "HST-STR": CLOCKS,
    "MJD": MJDS, "MJD-STR": MJDS, "MJD-END": MJDS, "TIMESYS": SCALES,
    "EXPTIME": NUMBERS, "DARKTIME": NUMBERS, "W_VISIT": NUMBERS, "W_PFDSGN": NUMBERS, "W_ENFCAZ": NUMBERS,
    "W_ENFCAX": NUMBERS, "W_ENFCAY": NUMBERS, "W_ARM": NUMBERS, "W_SPMOD": NUMBERS, "W_SITE": STRINGS,
    "ALTITUDE": ANGLES, "AZIMUTH": ANGLES, "RA": ANGLES, "DEC": ANGLES, "RA2000": ANGLES, "DEC2000": ANGLES,
    "INSROT": NUMBERS, "AIRMASS": NUMBERS, "FOC-VAL": NUMBERS, "OUT-TMP": NUMBERS, "OUT-PRS": NUMBERS,
    "OUT-HUM": NUMBERS, "DATA-TYP": STRINGS, "OBJECT": STRINGS, "PROP-ID": STRINGS, "W_PFDSNM": STRINGS,
    "W_AITQTH": NUMBERS, "W_TSHUTR": STRINGS, "DETECTOR": STRINGS,
}
NIR_CARDS = {"W_H4IRPN": NUMBERS, "W_H4NRED": NUMBERS, "W_H4NCHN": NUMBERS, "W_4FMTVR": NUMBERS}
CONFIG_CARDS = {
    "W_VISIT": NUMBERS, "W_PFDSGN": NUMBERS, "W_CAMMSK": NUMBERS, "ARMS": STRINGS, "DATE-OBS": DATES,
    "DAMD_VER": NUMBERS, "VARIANT": NUMBERS, "PFDSGN0": NUMBERS, "DATA-TYP": STRINGS,
}


# -- realistic files with some values replaced ---------------------------------------------------

def _templates() -> dict[str, Path]:
    folder = WORK / "templates"
    folder.mkdir()
    return {
        "b": fakedata.write_pfsa(folder / "PFSA00000111.fits", visit=1, spectrograph=1, arm="b",
                                 pfs_design_id=DESIGN),
        "n": fakedata.write_pfsb(folder / "PFSB00000113.fits", visit=1, spectrograph=1, pfs_design_id=DESIGN,
                                 n_reads=2),
        "config": fakedata.write_pfsconfig(folder / fakedata.pfsconfig_filename(DESIGN, 1), visit=1,
                                           pfs_design_id=DESIGN),
    }


TEMPLATES = _templates()


def _card_at(data: bytearray, key: str, end: int) -> int | None:
    start = 0
    while (start := data.find(f"{key:<8}= ".encode(), start, end)) >= 0:
        if start % CARD == 0:
            return start
        start += 1
    return None


def _rewrite(data: bytearray, values: dict[str, str]) -> None:
    """Set the value field of each card of the primary header (the comment goes), then restamp it."""
    hdu = fitsbytes.layout(bytes(data))[0]
    for key, text in values.items():
        at = _card_at(data, key, hdu.data)
        assert at is not None, f"the template has no {key} card"
        data[at : at + CARD] = f"{key:<8}= {text}".encode()[:CARD].ljust(CARD)
    if "CHECKSUM" in hdu.cards:  # a file as a writer would have stamped it: checksums that hold
        fitsbytes.restamp(data, hdu, "hostile values")


def hostile_raw(arm: str, values: dict[str, str], folder: Path) -> Path:
    """A clone of the ``arm`` template as the raw of a new visit, with ``values`` written into its header."""
    folder.mkdir(parents=True, exist_ok=True)
    path = fakedata.clone_raw(TEMPLATES[arm], folder, visit=next(VISITS))
    data = bytearray(path.read_bytes())
    _rewrite(data, values)
    path.write_bytes(data)
    return path


def hostile_config(visit: int, values: dict[str, str], folder: Path) -> Path:
    """The pfsConfig of ``visit`` (which has raws in the repository), with ``values`` in its header."""
    folder.mkdir(parents=True, exist_ok=True)
    data = bytearray(TEMPLATES["config"].read_bytes())
    _rewrite(data, {"W_VISIT": str(visit), **values})
    path = folder / fakedata.pfsconfig_filename(DESIGN, visit)
    path.write_bytes(data)
    return path


def _cards(cards: dict) -> st.SearchStrategy[dict[str, str]]:
    return st.sets(st.sampled_from(sorted(cards)), min_size=1, max_size=3).flatmap(
        lambda chosen: st.fixed_dictionaries({key: cards[key] for key in sorted(chosen)}))


RAWS = st.sampled_from(["b", "n"]).flatmap(
    lambda arm: st.tuples(st.just(arm), _cards(RAW_CARDS if arm == "b" else {**RAW_CARDS, **NIR_CARDS})))


# -- the repository, and what "unchanged" means ----------------------------------------------------

class Repository:
    """One real repository for the module (a fresh one per example would cost a second each)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.butler = repo.open_butler(root)
        self.ingester = Ingester(self.butler, root, IngestSettings(transfer="copy"))
        self.config_visits: list[int] = []  # visits with raws and no pfsConfig yet

    def snapshot(self) -> tuple[str, tuple[tuple[str, int], ...]]:
        """A digest of every registry row, and every file under the root (but the registry's own)."""
        digest = hashlib.sha256()
        with sqlite3.connect(f"file:{self.root / 'gen3.sqlite3'}?mode=ro", uri=True) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
            for table in tables:
                rows = sorted(repr(row) for row in db.execute(f'SELECT * FROM "{table}"'))
                digest.update(f"{table}:{len(rows)}:{rows}".encode())
        db.close()
        files = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                if not name.startswith("gen3.sqlite3"):
                    path = Path(folder) / name
                    files.append((str(path.relative_to(self.root)), path.stat().st_size))
        return digest.hexdigest(), tuple(sorted(files))

    def close(self) -> None:
        self.butler.close()


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-values") / "repo"
    repo.create(root)
    repository = Repository(root)
    # Visits with good raws, for the pfsConfigs (a pfsConfig whose visit has no raws only waits).
    (WORK / "good").mkdir(exist_ok=True)
    good = [fakedata.clone_raw(TEMPLATES["b"], WORK / "good", visit=visit) for visit in range(1000, 1200)]
    outcomes = repository.ingester.ingest([examine(path).classified for path in good])
    assert [o.status for o in outcomes] == [Status.INGESTED] * len(good), outcomes[0]
    repository.config_visits = list(range(1000, 1200))
    yield repository
    repository.close()


# -- the checks ------------------------------------------------------------------------------------

def _one_line_naming(message: str | None, path: Path) -> None:
    assert message, path
    assert "\n" not in message and "\r" not in message and "Traceback" not in message, message
    assert message.startswith((path.name, str(path))), (path.name, message)


def _not_internal(kind: object, message: str | None) -> None:
    assert str(kind) != ErrorKind.INTERNAL, f"internal error (a bug): {message}"


def check_file(repository: Repository, path: Path) -> Status | None:
    """The whole path of one file: examine, visit record, ingest, read back.  Returns the ingest status
    (None when refused before ingest)."""
    exam = examine(path)
    assert sum(x is not None for x in (exam.classified, exam.skipped, exam.incomplete, exam.error)) == 1, exam
    assert exam.skipped is None, exam  # ingestible names
    if exam.incomplete is not None:  # a read count (W_H4NRED, W_4FMTVR, DAMD_VER) that more HDUs would meet
        _one_line_naming(exam.incomplete, path)
        return None
    if exam.error is not None:
        _one_line_naming(str(exam.error), path)
        _not_internal(exam.error.kind, str(exam.error))
        return None
    classified = exam.classified
    assert isinstance(classified, RawFile | PfsConfigFile)
    if isinstance(classified, RawFile):
        try:
            visit_values(classified)
        except BadHeaderError as exc:
            _one_line_naming(str(exc), path)
    before = repository.snapshot()
    [outcome] = repository.ingester.ingest([classified])
    assert outcome.status in (Status.INGESTED, Status.FAILED), outcome
    if outcome.message is not None or outcome.status is Status.FAILED:
        _one_line_naming(outcome.message, path)
        _not_internal(outcome.error_kind, outcome.message)
    if outcome.status is Status.FAILED:
        assert repository.snapshot() == before, f"a refused file changed the repository: {outcome.message}"
        return outcome.status
    assert repository.snapshot() != before
    if isinstance(classified, RawFile):  # what was ingested reads back (the visit information too)
        raw = PfsRaw(path, dataId=outcome.data_id)
        info = raw.visitInfo
        assert info.getId() == classified.visit
        exposure = info.getExposureTime()
        assert isinstance(exposure, float) and (math.isnan(exposure) or exposure >= 0)
    return outcome.status


# -- the tests -------------------------------------------------------------------------------------

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


@FUZZ
@given(raw=RAWS)
def test_hostile_values_in_raws(repository, raw):
    arm, values = raw
    event(f"raw: {check_file(repository, hostile_raw(arm, values, WORK / 'raws'))}")  # --hypothesis-show-statistics


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=_cards(CONFIG_CARDS))
def test_hostile_values_in_pfsconfigs(repository, values):
    # 200 visits for 80 examples: only extra examples while shrinking a failure can run out; they are
    # discarded (assume), never skipped.
    assume(repository.config_visits)
    visit = repository.config_visits.pop()
    event(f"pfsConfig: {check_file(repository, hostile_config(visit, values, WORK / 'configs'))}")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raws=st.lists(RAWS, min_size=2, max_size=6))
def test_one_shot_ingest_raws_gives_one_line_per_bad_file(repository, raws):
    """``pfswatchd ingest-raws`` (in process) over a folder of hostile raws: one FAILED line per refused
    file, each naming it, none internal, no traceback; every other file ingested."""
    folder = WORK / f"oneshot-{next(VISITS)}"
    paths = [hostile_raw(arm, values, folder) for arm, values in raws]
    out, err = io.StringIO(), io.StringIO()
    status = run_ingest(str(repository.root), [str(folder)], accept=frozenset({FileKind.RAW_CCD, FileKind.RAW_NIR}),
                        settings=IngestSettings(transfer="copy"), out=out, err=err)
    lines = err.getvalue().splitlines()
    assert "Traceback" not in err.getvalue() and "internal" not in err.getvalue(), err.getvalue()
    failed = [line for line in lines if line.startswith("FAILED ")]
    assert all(line.startswith(("FAILED ", "WARNING ")) for line in lines), lines
    named = [next(p for p in paths if line.startswith(f"FAILED {p}: [")) for line in failed]
    assert len(set(named)) == len(named), failed
    assert status == (1 if failed else 0), (status, out.getvalue())
    assert f"{len(paths) - len(failed)} ingested" in out.getvalue(), out.getvalue()
    shutil.rmtree(folder)


# -- what the fuzz found, kept as regular tests ----------------------------------------------------

FOUND = {
    # Ingested (obs_pfs ingests it: AIRMASS is no visit column), then PfsRaw.visitInfo raised astropy's
    # VerifyError "Unparsable card (AIRMASS)": a card astropy cannot parse is now absent for the translation.
    "airmass_nan": ("b", {"AIRMASS": "NAN"}),
    "out_tmp_inf": ("b", {"OUT-TMP": "inf"}),
    # Ingested (the visit record clips the altitude to [0, 90], as obs_pfs), then PfsRaw.visitInfo raised
    # "Latitude angle(s) must be within -90 deg <= angle <= 90 deg": the read clips it the same way.
    "altitude_1000": ("b", {"ALTITUDE": "1000.0"}),
    "altitude_nan_nir": ("n", {"ALTITUDE": "nan"}),
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_found_by_the_fuzz(repository, case):
    arm, values = FOUND[case]
    assert check_file(repository, hostile_raw(arm, values, WORK / "found")) is Status.INGESTED
