"""Hostile and malformed input: names and headers never crash the service, and cost stays bounded."""

from __future__ import annotations

import builtins
import contextlib
import io
import math
import string
import tempfile
import time
import tracemalloc
from pathlib import Path, PurePath

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pfswatchd import fakedata
from pfswatchd.errors import NotFitsError
from pfswatchd.files.examine import Examination, examine
from pfswatchd.files.fitsheader import BLOCK, CARD, MAX_HDUS, MAX_HEADER_BLOCKS, scan
from pfswatchd.files.names import NUMBER_BY_ARM, SITES, parse_name
from pfswatchd.model import FileKind

ASCII = string.printable[:95]  # space to tilde
_TMP = tempfile.TemporaryDirectory(prefix="pfswatchd-fuzz-")  # removed at exit
WORK = Path(_TMP.name)


def _card(key: str, value: str | None = None) -> bytes:
    text = key if value is None else f"{key:<8}= {value:>20}"
    return text.encode("utf-8")[:CARD].ljust(CARD)


def _header(*cards: bytes | tuple[str, str], end: bool = True) -> bytes:
    """A header: cards as bytes or (keyword, value), then END, padded to whole blocks."""
    raw = b"".join(c if isinstance(c, bytes) else _card(*c) for c in cards) + (_card("END") if end else b"")
    return raw + b" " * (-len(raw) % BLOCK)


PRIMARY = (("SIMPLE", "T"), ("BITPIX", "8"), ("NAXIS", "0"))
SAMPLES = {path.name: path.read_bytes() for path in (  # valid PFSA, PFSB and pfsConfig files
    fakedata.write_pfsa(WORK / "PFSA00012311.fits", visit=123, spectrograph=1, arm="b", pfs_design_id=5),
    fakedata.write_pfsb(WORK / "PFSB00012323.fits", visit=123, spectrograph=2, pfs_design_id=5, n_reads=1),
    fakedata.write_pfsconfig(WORK / fakedata.pfsconfig_filename(5, 123), visit=123, pfs_design_id=5))}
HEADER_BYTES = {name: [i for hdu in scan(WORK / name).hdus for i in range(hdu.header_offset, hdu.data_offset)]
                for name in SAMPLES}
NAMES = st.sampled_from(sorted(SAMPLES))


def _write(name: str, data: bytes) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


def _examine_ok(path: Path) -> Examination:
    """examine() did not raise; exactly one outcome; messages are one line naming the file."""
    exam = examine(path)
    assert sum(x is not None for x in (exam.classified, exam.skipped, exam.incomplete, exam.error)) == 1, exam
    for message in (exam.incomplete, None if exam.error is None else str(exam.error)):
        if message is not None:
            assert "\n" not in message and "\r" not in message, message
            assert message.startswith((str(path), path.name)), message
    return exam


@contextlib.contextmanager
def _counting_reads():
    """Count the bytes scan() reads (it opens with buffering=0: every read reaches the file)."""
    reads: list[int] = []
    real_open = builtins.open

    class Counting(io.FileIO):
        def read(self, size: int = -1) -> bytes:
            reads.append(len(data := super().read(size)))
            return data

    def counting_open(file, mode="r", buffering=-1, *args, **kwargs):
        if (mode, buffering) == ("rb", 0):
            return Counting(file, "rb")
        return real_open(file, mode, buffering, *args, **kwargs)

    builtins.open = counting_open
    try:
        yield reads
    finally:
        builtins.open = real_open
    assert reads, "scan() no longer opens files as counted here; update _counting_reads"


# -- 1. file names ------------------------------------------------------------------------------------

NEAR_NAMES = st.builds(
    lambda folder, prefix, middle, suffix: folder + prefix + middle + suffix,
    st.sampled_from(["", "/data/raw/", "a/b\\", "PFSA/", "../", "C:\\x\\"]),
    st.sampled_from(["PF", "PFS", "PFSA", "PFSB", "PFSF", "PFSC", "PFSD", "PFLZ", "pfsConfig-0x",
                     "pfsDesign-0x", "agcc_", "pfsconfig-0x", ""]),
    st.text(alphabet="0123456789abcdefAZ-_x\u0663\uff11\n\x00/. ", max_size=30) | st.text(max_size=20)
    | st.text(alphabet="0123456789", min_size=200, max_size=6000).map(lambda d: f"0-{d}"),
    st.sampled_from([".fits", ".fits\n", ".FITS", ".fits.gz", ".tar", ".md5", "", ".fits/", "~", ".fits\0"]),
)


@settings(max_examples=400, deadline=None)
@given(st.text() | NEAR_NAMES)
@example("pfsConfig-0x1-" + "1" * 5000 + ".fits")  # int() of > 4300 digits raised ValueError
@example("PFSA\u0661\u0662\u0663\u0664\u0665\u066611.fits")  # Arabic-Indic digits parsed as visit 123456
@example("PFSA12345611.fits\n")  # '$' matched before the trailing newline
def test_parse_name_never_raises(text):
    info = parse_name(text)
    assert isinstance(info.kind, FileKind)
    name = PurePath(text).name
    if info.kind not in (FileKind.OTHER, FileKind.ARCHIVE, FileKind.CHECKSUM):
        assert name.isascii() and name.isprintable(), (name, info)
    if info.category is not None and info.kind is not FileKind.OTHER:  # PF?????????: fields round-trip
        if info.kind in (FileKind.RAW_CCD, FileKind.RAW_NIR):
            tail = f"{info.spectrograph}{NUMBER_BY_ARM.get(info.arm, info.arm)}"
        else:
            tail = f"{info.subset if info.kind is FileKind.PFSCONFIG else info.sequence:02d}"
        assert name == f"PF{info.site}{info.category}{info.visit:06d}{tail}.fits", info


@settings(max_examples=200, deadline=None)
@given(site=st.sampled_from(sorted(SITES)) | st.sampled_from(string.ascii_uppercase),
       arm=st.sampled_from("brmn"), visit=st.integers(0, 999_999), spectrograph=st.integers(0, 9),
       design=st.integers(0, 2**64 - 1), folder=st.sampled_from(["", "/data/raw/2025-05-01/sps/", "rel/"]))
def test_well_formed_names_round_trip(site, arm, visit, spectrograph, design, folder):
    category, kind = ("B", FileKind.RAW_NIR) if arm == "n" else ("A", FileKind.RAW_CCD)
    info = parse_name(folder + fakedata.raw_filename(site, category, visit, spectrograph, arm))
    assert (info.kind, info.site, info.category, info.visit, info.spectrograph, info.arm) == (
        kind, site, category, visit, spectrograph, arm)
    config = parse_name(folder + fakedata.pfsconfig_filename(design, visit))
    assert (config.kind, config.pfs_design_id, config.visit, config.subset) == (
        FileKind.PFSCONFIG, design, visit, 0)
    pfsf = parse_name(fakedata.pfsf_filename(visit, spectrograph * 11))
    assert (pfsf.kind, pfsf.visit, pfsf.subset) == (FileKind.PFSCONFIG, visit, spectrograph * 11)


# -- 2. examine() on hostile files ----------------------------------------------------------------

ABSURD = st.one_of(
    st.sampled_from([10**15, 10**18, 999, 1000, -1, -(10**15), 0, 2**63, 10**69, 8, 16, -32, -64]).map(str),
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(["T", "F", "", "1.5", "1.5D3", "(1, 2)", "1e999", "nan", "'8'", "garbage", "9" * 70,
                     "1_000", "+-1", "0x10", "'IMAGE'", "'abc&'", "\u00e9", "1 / comment"]),
    st.text(max_size=12),  # non-ASCII cards
)


@st.composite
def absurd_files(draw) -> bytes:
    """Structural cards (in order or shuffled, END or not) with absurd values, maybe an extension, junk."""
    naxis = draw(st.integers(0, 5))
    values = {"BITPIX": draw(st.sampled_from(["8", "16", "-32"]) | ABSURD),
              "NAXIS": draw(st.just(str(naxis)) | ABSURD)}
    values.update({f"NAXIS{i}": draw(ABSURD) for i in range(1, naxis + 1)})
    values.update({k: draw(ABSURD) for k in ("PCOUNT", "GCOUNT", "GROUPS", "EXTNAME") if draw(st.booleans())})
    keys = draw(st.permutations(list(values))) if draw(st.booleans()) else list(values)
    data = _header(("SIMPLE", "T"), *((key, values[key]) for key in keys), end=draw(st.booleans()))
    if draw(st.booleans()):
        data += _header(("XTENSION", "'IMAGE   '"), ("NAXIS", "1"),
                        *((key, draw(ABSURD)) for key in ("BITPIX", "NAXIS1", "PCOUNT", "GCOUNT", "EXTNAME")))
    return data + draw(st.binary(max_size=3000))


@settings(max_examples=300, deadline=None)
@given(name=NAMES, data=absurd_files() | st.binary(max_size=40_000)
       | st.binary(max_size=40_000).map(lambda junk: _card("SIMPLE", "T") + junk))
@example(name="PFSA00012311.fits",  # the ValueError of a malformed GROUPS card escaped scan()
         data=_header(("SIMPLE", "T"), ("BITPIX", "8"), ("NAXIS", "1"), ("NAXIS1", "0"), ("GROUPS", "bad")))
def test_random_bytes_and_absurd_headers(name, data):
    _examine_ok(_write(name, data))


@settings(max_examples=150, deadline=None)
@given(name=NAMES, fraction=st.floats(0, 1))
def test_truncated_files_are_incomplete(name, fraction):
    cut = int(len(SAMPLES[name]) * fraction)
    exam = _examine_ok(_write(name, SAMPLES[name][:cut]))
    assert (exam.classified if cut == len(SAMPLES[name]) else exam.incomplete) is not None, exam


@settings(max_examples=150, deadline=None)
@given(name=NAMES, flips=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), min_size=1, max_size=9))
def test_byte_flips_in_headers(name, flips):
    data = bytearray(SAMPLES[name])
    for index, byte in flips:  # anywhere in any header, non-ASCII bytes included
        data[HEADER_BYTES[name][index % len(HEADER_BYTES[name])]] = byte
    _examine_ok(_write(name, bytes(data)))


PFS_CARDS = ["W_ENFCAZ", "W_VISIT", "W_ARM", "W_SPMOD", "W_PFDSGN", "W_SITE", "MJD-STR", "EXPTIME",
             "INSTRUME", "W_H4NRED", "W_4FMTVR", "DAMD_VER", "EXTNAME", "NAXIS", "BITPIX"]


@settings(max_examples=200, deadline=None)
@given(name=NAMES, key=st.sampled_from(PFS_CARDS), value=ABSURD)
@example(name="PFSA00012311.fits", key="W_ENFCAZ", value="1e305")  # int(inf) raised OverflowError
@example(name="pfsConfig-0x0000000000000005-000123.fits", key="EXTNAME", value="garbage")  # ValueError
def test_hostile_pfs_card_values(name, key, value):
    data = bytearray(SAMPLES[name])
    at = next((i for i in range(0, len(data), CARD) if data[i : i + 10] == f"{key:<8}= ".encode()), None)
    if at is not None:
        data[at : at + CARD] = _card(key, value)
    _examine_ok(_write(name, bytes(data)))


# -- 3. bounded cost ------------------------------------------------------------------------------

def _huge(naxis1: int = 200_000, naxis2: int = 125_000, bitpix: int = 16) -> bytes:  # 50 GB by default
    return _header(("SIMPLE", "T"), ("BITPIX", str(bitpix)), ("NAXIS", "2"), ("NAXIS1", str(naxis1)),
                   ("NAXIS2", str(naxis2)))


@settings(max_examples=40, deadline=None)
@given(bitpix=st.sampled_from([8, 16, 32, 64, -32, -64]), naxis1=st.integers(10**6, 10**9),
       naxis2=st.integers(10**4, 10**9), tail=st.binary(max_size=5000))
@example(bitpix=16, naxis1=200_000, naxis2=125_000, tail=b"")  # 50 GB
@example(bitpix=8, naxis1=10**9, naxis2=10**9, tail=b"")  # 10**18 bytes
def test_huge_data_block_is_incomplete_without_reading_it(bitpix, naxis1, naxis2, tail):
    path = _write("PFSA00012311.fits", _huge(naxis1, naxis2, bitpix) + tail)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with _counting_reads() as reads:
            result = scan(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0 and peak < 5_000_000 and sum(reads) <= 4 * BLOCK
    assert not result.complete and "declare at least" in result.problem
    assert _examine_ok(path).incomplete is not None


@pytest.mark.parametrize("missing", [0, 1])
def test_sparse_50_gb_file_reads_one_header(tmp_path, missing):
    """A (sparse) file that holds the whole declared 50 GB block is complete after one header read."""
    path = tmp_path / "PFSA00012311.fits"
    with open(path, "wb") as stream:
        stream.write(_huge())
        stream.truncate(BLOCK + -(-50_000_000_000 // BLOCK) * BLOCK - missing)
    with _counting_reads() as reads:
        result = scan(path)
    assert result.complete == (missing == 0) and sum(reads) <= 4 * BLOCK


def test_naxis_999_of_absurd_size():
    """999 axes of 10**69 declare a size of ~69,000 digits: NotFitsError, not str()'s ValueError."""
    axes = [(f"NAXIS{i}", str(10**69)) for i in range(1, 1000)]
    path = _write("PFSA00012311.fits", _header(("SIMPLE", "T"), ("BITPIX", "8"), ("NAXIS", "999"), *axes))
    with pytest.raises(NotFitsError, match="declares more than"):
        scan(path)
    assert _examine_ok(path).error is not None


@settings(max_examples=4, deadline=None)
@given(filler=st.sampled_from([b" " * CARD, _card("COMMENT x"), _card("KEY", "1"), _card("ENDX")]),
       extra=st.integers(1, 50))
def test_no_end_card_reads_at_most_max_header_blocks(filler, extra):
    cards = (MAX_HEADER_BLOCKS + extra) * BLOCK // CARD - 1
    path = _write("PFSA00012311.fits", _card("SIMPLE", "T") + filler * cards)
    tracemalloc.start()
    try:
        with _counting_reads() as reads, pytest.raises(NotFitsError, match="no END card"):
            scan(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(reads) <= MAX_HEADER_BLOCKS * BLOCK and peak < 2 * MAX_HEADER_BLOCKS * BLOCK
    assert _examine_ok(path).error is not None


def test_header_of_continue_cards_is_linear():
    """1000 blocks of CONTINUE cards took 17 s (quadratic string building)."""
    more = _card("CONTINUE  '" + "y" * 66 + "&'")
    cards = [_card("LONGSTR", "'x&'")] + [more] * (36 * MAX_HEADER_BLOCKS - 9)
    path = _write("PFSA00012311.fits", _header(*PRIMARY, *cards))
    started = time.perf_counter()
    value = scan(path).primary["LONGSTR"]
    assert value.startswith("x" + "y" * 66) and len(value) > 66 * (len(cards) - 1)
    assert time.perf_counter() - started < 3.0


@pytest.mark.parametrize("hdus", [MAX_HDUS, MAX_HDUS + 1, 3 * MAX_HDUS])
def test_many_tiny_hdus_bounded_by_max_hdus(hdus):
    ext = _header(("XTENSION", "'IMAGE'"), ("BITPIX", "8"), ("NAXIS", "0"), ("PCOUNT", "0"), ("GCOUNT", "1"))
    path = _write("PFSA00012311.fits", _header(*PRIMARY) + ext * (hdus - 1))
    with _counting_reads() as reads:
        if hdus <= MAX_HDUS:
            assert scan(path).complete
        else:
            with pytest.raises(NotFitsError, match=f"more than {MAX_HDUS} HDUs"):
                scan(path)
    assert len(reads) <= MAX_HDUS and sum(reads) <= MAX_HDUS * 4 * BLOCK


# -- 4. header value grammar ----------------------------------------------------------------------

RESERVED = {"SIMPLE", "BITPIX", "NAXIS", "END", "COMMENT", "HISTORY", "CONTINUE", "HIERARCH"}
KEYS = st.text(alphabet=string.ascii_uppercase + string.digits + "_-", min_size=1, max_size=8).filter(
    lambda key: key not in RESERVED)
VALUES = st.one_of(  # (value field as written, value as FITS defines it)
    st.integers(-(10**60), 10**60).map(lambda v: (str(v), v)),
    st.booleans().map(lambda v: ("T" if v else "F", v)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: (repr(v), v)),
    st.floats(-1e300, 1e300).map(lambda v: (f"{v:.12E}".replace("E", "D"), v)),
    st.text(alphabet=ASCII, max_size=60).map(  # quotes doubled; trailing blanks are not significant
        lambda v: ("'" + f"{v.replace(chr(39), chr(39) * 2):<8}" + "'", v.rstrip())
    ).filter(lambda pair: len(pair[0]) < 69),
)


@settings(max_examples=200, deadline=None)
@given(cards=st.lists(st.tuples(KEYS, VALUES, st.text(alphabet=ASCII, max_size=30)), max_size=40,
                      unique_by=lambda card: card[0]))
@example(cards=[("S", ("'O''Brien  '", "O'Brien"), ""), ("X", ("'a CONTINUE'", "a CONTINUE"), "c")])
def test_value_grammar_round_trips(cards):
    written = [_card(key, f"{raw} / {comment}" if len(raw) + len(comment) < 65 else raw)
               for key, (raw, _), comment in cards]
    header = scan(_write("values.fits", _header(*PRIMARY, *written))).primary
    assert set(header) == {"SIMPLE", "BITPIX", "NAXIS"} | {key for key, _, _ in cards}
    for key, (raw, value), _ in cards:
        found = header[key]
        assert type(found) is type(value), (key, raw, found)
        if isinstance(value, float):
            assert math.isclose(found, value, rel_tol=1e-11, abs_tol=1e-300), (key, raw, found)
        else:
            assert found == value, (key, raw, found)
