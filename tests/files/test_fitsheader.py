"""Header reading and structural completeness."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pfswatchd.errors import NotFitsError
from pfswatchd.files.fitsheader import BLOCK, scan


def _card(text: str) -> bytes:
    return text.ljust(80).encode("ascii")


def _header(*cards: str) -> bytes:
    raw = b"".join(_card(c) for c in cards) + _card("END")
    return raw + b" " * (-len(raw) % BLOCK)


@pytest.fixture()
def three_hdus(tmp_path):
    """Primary without data, a RICE-compressed image, a binary table: like PFSA plus a table."""
    primary = fits.PrimaryHDU()
    primary.header["W_VISIT"] = 123456
    primary.header["W_PFDSGN"] = 1820977769840204111
    primary.header["RA2000"] = "10:00:00.000"
    primary.header["MJD-STR"] = 60800.5
    image = fits.CompImageHDU(np.arange(64 * 48, dtype=np.uint16).reshape(64, 48), compression_type="RICE_1",
                              name="image")
    table = fits.BinTableHDU.from_columns([fits.Column(name="catId", format="J", array=np.arange(5))],
                                          name="CONFIG")
    path = tmp_path / "three.fits"
    fits.HDUList([primary, image, table]).writeto(path, checksum=True)
    return path


def test_complete_file(three_hdus):
    result = scan(three_hdus)
    assert result.complete and result.problem is None
    assert len(result.hdus) == 3
    assert result.primary["W_VISIT"] == 123456
    assert result.primary["W_PFDSGN"] == 1820977769840204111
    assert result.primary["RA2000"] == "10:00:00.000"
    assert result.primary["MJD-STR"] == 60800.5
    assert result.hdus[1].extname.lower() == "image" and result.hdus[1].header["ZIMAGE"] is True
    assert result.find("CONFIG") is result.hdus[2]
    assert result.hdus[-1].end == three_hdus.stat().st_size


def test_every_truncation_is_incomplete_never_an_error(three_hdus, tmp_path):
    """A file cut at any byte is reported incomplete, with a reason, and never raises."""
    data = three_hdus.read_bytes()
    boundaries = {hdu.end for hdu in scan(three_hdus).hdus}
    cut = tmp_path / "cut.fits"
    points = sorted({1, 5, 9, 80, 2879, 2881, len(data) // 2, len(data) - 2880, len(data) - 1}
                    | set(range(1, len(data), 997)))
    for size in points:
        if size in boundaries:
            continue
        cut.write_bytes(data[:size])
        result = scan(cut)
        assert not result.complete, size
        assert result.problem, size


def test_empty_file_is_incomplete(tmp_path):
    path = tmp_path / "empty.fits"
    path.write_bytes(b"")
    result = scan(path)
    assert not result.complete and result.problem == "is empty"


def test_not_fits(tmp_path):
    path = tmp_path / "PFSA12345611.fits"
    path.write_bytes(b"<html>Not Found</html>" + b" " * 3000)
    with pytest.raises(NotFitsError, match="does not start with a SIMPLE card"):
        scan(path)


def test_garbage_after_last_hdu(three_hdus):
    with open(three_hdus, "ab") as stream:
        stream.write(b"\x00" * BLOCK)
    with pytest.raises(NotFitsError, match="not an XTENSION header"):
        scan(three_hdus)


def test_absurd_naxis_costs_nothing(tmp_path):
    """A header declaring a 50 GB data block is incomplete at once; nothing of it is read."""
    path = tmp_path / "huge.fits"
    path.write_bytes(_header("SIMPLE  =                    T", "BITPIX  =                   16",
                             "NAXIS   =                    2", "NAXIS1  =               200000",
                             "NAXIS2  =               125000"))
    result = scan(path)
    assert not result.complete
    assert "its headers declare at least 50000005440 bytes" in result.problem


def test_negative_naxis_is_not_fits(tmp_path):
    path = tmp_path / "neg.fits"
    path.write_bytes(_header("SIMPLE  =                    T", "BITPIX  =                   16",
                             "NAXIS   =                    1", "NAXIS1  =                   -5"))
    with pytest.raises(NotFitsError, match="negative NAXISn"):
        scan(path)


def test_non_ascii_header_is_not_fits(tmp_path):
    path = tmp_path / "utf8.fits"
    raw = bytearray(_header("SIMPLE  =                    T", "BITPIX  =                    8",
                            "NAXIS   =                    0", "OBJECT  = 'M31'"))
    raw[80 * 3 + 12] = 0xC3
    path.write_bytes(bytes(raw))
    with pytest.raises(NotFitsError, match="non-ASCII"):
        scan(path)


def test_no_end_card_within_limit(tmp_path):
    path = tmp_path / "noend.fits"
    path.write_bytes(_card("SIMPLE  =                    T") + b" " * (BLOCK * 1001 - 80))
    with pytest.raises(NotFitsError, match="no END card"):
        scan(path)


def test_value_grammar(tmp_path):
    path = tmp_path / "values.fits"
    path.write_bytes(_header(
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    0",
        "QUOTED  = 'O''Brien  '         / a comment",
        "LEADING = '  x'",
        "EMPTY   = ''",
        "UNDEF   =",
        "LOGIC   =                    F",
        "DEXP    =              1.5D+02",
        "NEG     =                 -42",
        "CPLX    = (1.0, -2.0)",
        "LONGSTR = 'abc&'",
        "CONTINUE  'def'",
        "HIERARCH TargetType.SCIENCE = 1",
        "COMMENT this is ignored",
        "DUP     =                    1",
        "DUP     =                    2",
        "BAD     = 1.2.3",
    ))
    header = scan(path).primary
    assert header["QUOTED"] == "O'Brien"
    assert header["LEADING"] == "  x"
    assert header["EMPTY"] == ""
    assert header["UNDEF"] is None
    assert header["LOGIC"] is False
    assert header["DEXP"] == 150.0
    assert header["NEG"] == -42
    assert header["CPLX"] == complex(1, -2)
    assert header["LONGSTR"] == "abcdef"
    assert header["TargetType.SCIENCE"] == 1
    assert "COMMENT" not in header
    assert header["DUP"] == 1
    with pytest.raises(ValueError, match="card BAD has value '1.2.3'"):
        header["BAD"]


def test_merged_header_prefers_the_other():
    from pfswatchd.files.fitsheader import Header

    merged = Header.from_cards({"A": 1, "B": 2}).merged(Header.from_cards({"B": 3, "C": 4}))
    assert dict(merged) == {"A": 1, "B": 3, "C": 4}


def test_reads_only_headers_of_a_large_file(tmp_path):
    """A 36 MB uncompressed frame is scanned by reading a few header blocks."""
    path = tmp_path / "big.fits"
    header = fits.PrimaryHDU().header
    header["NAXIS"] = 2
    header["BITPIX"] = 16
    header["NAXIS1"] = 4416
    header["NAXIS2"] = 4300
    with open(path, "wb") as stream:
        stream.write(header.tostring().encode())
        stream.truncate(len(header.tostring()) + ((4416 * 4300 * 2 + BLOCK - 1) // BLOCK) * BLOCK)
    import builtins
    import io

    reads = []
    real_open = builtins.open

    class Counting(io.FileIO):
        def read(self, size=-1):
            data = super().read(size)
            reads.append(len(data))
            return data

    def counting_open(file, mode="r", buffering=-1, *args, **kwargs):
        if str(file) == str(path):
            return Counting(file, "rb")
        return real_open(file, mode, buffering, *args, **kwargs)

    builtins.open = counting_open
    try:
        result = scan(path)
    finally:
        builtins.open = real_open
    assert result.complete
    assert sum(reads) <= 4 * BLOCK


def test_hdu_boundaries_are_structurally_whole_but_not_a_whole_frame(three_hdus, tmp_path):
    """Cut right after an HDU, a file is structurally whole; the kind rule still says incomplete."""
    from pfswatchd.files.complete import incomplete_reason
    from pfswatchd.model import FileKind

    full = scan(three_hdus)
    cut = tmp_path / "cut.fits"
    cut.write_bytes(three_hdus.read_bytes()[: full.hdus[0].end])
    primary_only = scan(cut)
    assert primary_only.complete
    assert "only its primary HDU" in incomplete_reason(FileKind.RAW_CCD, primary_only)
    assert "needs 4" in incomplete_reason(FileKind.PFSCONFIG, full)
