"""Read FITS headers and check that a file is structurally whole.

This is the only module that opens FITS files during ingest.  It reads header
blocks and seeks over data blocks, so a 36 MB frame costs a few kilobytes of
reads, and a header that declares a 50 GB data block costs nothing: sizes are
computed, never read.

A file is *complete* when its size equals the sum of its HDUs' padded header
and data sizes (FITS standard 4.0 §3.3-§4.4), i.e. every header ends in an END
card and every declared data block is present.

Card values are parsed on demand (a PFSA primary has ~150 cards and ingest needs
two dozen of them); the grammar follows FITS 4.0 §4.2 for the value types that
PFS headers use: strings (with '' escapes and CONTINUE), logicals, integers,
reals (E or D exponents) and complex numbers.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pfswatchd.errors import BadHeaderError, NotFitsError, first_line

BLOCK = 2880
CARD = 80
MAX_HEADER_BLOCKS = 1000  # 36,000 cards: far beyond any PFS header
MAX_NIR_READS = 999  # the most reads a PFSB ramp holds (W_H4NRED)
# The largest PFS file: a 999-read ramp, format version 3 (primary, RESET pair, IMAGE/REF per read).
MAX_HDUS = 1 + 2 + 2 * MAX_NIR_READS  # 2,001
MAX_DATA_BYTES = 2**63 - 1  # the largest file offset (off_t); a larger data block is absurd
_END = b"END" + b" " * 77
_INT = re.compile(r"^[+-]?\d+$")


class Header(Mapping[str, Any]):
    """The cards of one HDU: keyword -> value, parsed on demand; read-only.

    Most headers are kept as their raw text until the first lookup splits it
    into keyword -> value field (one pass, no values parsed), so looking up the
    cards ingest needs does not cost parsing the other hundreds.  Headers with
    HIERARCH or CONTINUE cards are parsed into a dict at once.  Commentary
    cards (COMMENT, HISTORY, blank) are dropped.  A keyword that appears twice
    keeps its first value, as astropy's ``header[key]`` does.
    """

    __slots__ = ("_text", "_fields", "_parsed")

    def __init__(self, fields: dict[str, str] | None = None, *, text: str | None = None) -> None:
        self._text = text
        self._fields = fields
        self._parsed: dict[str, Any] = {}

    @classmethod
    def from_cards(cls, cards: Mapping[str, Any]) -> Header:
        """A header from already-parsed values (merging, tests)."""
        header = cls({key: "" for key in cards})
        header._parsed.update(cards)
        return header

    def _field(self, key: str) -> str | None:
        """The value field (columns 11-80) of ``key``, or None."""
        return self.fields.get(key)

    @property
    def fields(self) -> dict[str, str]:
        """Every value card: keyword -> raw value field."""
        if self._fields is None:
            text = self._text or ""
            cards = [text[i : i + CARD] for i in range(0, len(text), CARD)]
            fields = {card[:8].rstrip(): card[10:] for card in reversed(cards) if card[8:10] == "= "}
            for commentary in ("", "COMMENT", "HISTORY"):
                fields.pop(commentary, None)
            self._fields = fields
            self._text = None
        return self._fields

    def leading_fields(self, count: int) -> dict[str, str]:
        """The first ``count`` value cards (keyword -> raw field), first occurrence wins."""
        if self._text is None:
            return {}
        text = self._text
        cards = (text[i : i + CARD] for i in range(0, min(len(text), count * CARD), CARD))
        return {card[:8].rstrip(): card[10:] for card in reversed(list(cards)) if card[8:10] == "= "}

    def __getitem__(self, key: str) -> Any:
        try:
            return self._parsed[key]
        except KeyError:
            pass
        field = self._field(key)
        if field is None:
            raise KeyError(key)
        value = self._parsed[key] = _parse_value(field, key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in self._parsed or self._field(key) is not None)

    def value(self, key: str, default: Any = None) -> Any:
        """The parsed value of ``key``, or ``default`` when the card is missing or malformed."""
        try:
            return self.get(key, default)
        except ValueError:
            return default

    def merged(self, other: Header) -> Header:
        """A new header: these cards, overridden by ``other``'s."""
        merged = Header({**self.fields, **other.fields})
        merged._parsed = {k: v for k, v in self._parsed.items() if k not in other.fields}
        merged._parsed.update(other._parsed)
        return merged


@dataclass(frozen=True, slots=True)
class Hdu:
    header_offset: int
    data_offset: int
    data_size: int  # padded to whole blocks
    header: Header

    @property
    def end(self) -> int:
        return self.data_offset + self.data_size

    @property
    def extname(self) -> str | None:
        value = self.header.value("EXTNAME")  # a malformed EXTNAME card names no HDU
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class FitsScan:
    """What a scan found: the HDUs read so far and whether the file is whole."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    hdus: tuple[Hdu, ...]
    problem: str | None  # why it is not complete

    @property
    def complete(self) -> bool:
        """Every HDU whole and nothing after the last: the sizes add up to the file's."""
        return self.problem is None

    @property
    def primary(self) -> Header:
        return self.hdus[0].header

    def find(self, extname: str) -> Hdu | None:
        """The first HDU named ``extname`` (case-insensitive, as FITS readers treat EXTNAME)."""
        wanted = extname.upper()
        return next((hdu for hdu in self.hdus if (hdu.extname or "").upper() == wanted), None)

    def identity(self) -> tuple[int, int, int, int]:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode)


def scan(path: str | os.PathLike[str]) -> FitsScan:
    """Walk the HDUs of a FITS file and say whether it is complete.

    Raises:
        NotFitsError: the bytes are not FITS (no SIMPLE card, a header card that
            breaks the standard, negative or absurd axis values, or bytes after
            the last HDU that are not an extension).
        OSError: the file cannot be opened or read.
    """
    path = Path(path)
    with open(path, "rb", buffering=0) as stream:
        st = os.fstat(stream.fileno())
        size = st.st_size
        hdus: list[Hdu] = []
        offset = 0
        problem: str | None = None
        while offset < size:
            if len(hdus) >= MAX_HDUS:
                raise NotFitsError(f"{path}: more than {MAX_HDUS} HDUs; expected a PFS frame (a ramp of "
                                   f"{MAX_NIR_READS} reads, the largest, has {MAX_HDUS})")
            header_or_problem = _read_header(stream, path, offset, size, first=not hdus)
            if isinstance(header_or_problem, str):
                problem = header_or_problem
                break
            header, header_blocks = header_or_problem
            data_offset = offset + header_blocks * BLOCK
            data_size = _padded_data_size(header, path, len(hdus))
            hdus.append(Hdu(offset, data_offset, data_size, header))
            offset = data_offset + data_size
            if offset > size:
                problem = (
                    f"ends at byte {size} inside the data of HDU {len(hdus) - 1}; "
                    f"its headers declare at least {offset} bytes"
                )
                break
        if not hdus and problem is None:
            problem = "is empty"
    # Without a problem the loop ended exactly at the end of the file (offset == size): complete.
    return FitsScan(size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, tuple(hdus), problem)


def _read_header(
    stream: Any, path: Path, offset: int, size: int, *, first: bool
) -> tuple[Header, int] | str:
    """Read one header starting at ``offset``: (header, blocks) or why it is cut short."""
    stream.seek(offset)
    chunks: list[bytes] = []
    blocks = 0
    end_at = -1
    # Read a few blocks at a time: a PFS primary is 2-5 blocks, an extension 1-2.
    while end_at < 0:
        if blocks >= MAX_HEADER_BLOCKS:
            raise NotFitsError(f"{path}: HDU header has no END card within {MAX_HEADER_BLOCKS} blocks")
        want = min(4, MAX_HEADER_BLOCKS - blocks) * BLOCK
        chunk = stream.read(want)
        usable = len(chunk) - len(chunk) % BLOCK
        if not chunks and not _starts_card(chunk, b"SIMPLE  =" if first else b"XTENSION="):
            if first:
                raise NotFitsError(f"{path}: does not start with a SIMPLE card; expected a FITS file")
            raise NotFitsError(
                f"{path}: the bytes after the HDU ending at byte {offset} are not an XTENSION header; "
                "expected FITS extensions only"
            )
        found = chunk.find(_END, 0, usable)
        while found >= 0 and found % CARD:
            found = chunk.find(_END, found + 1, usable)
        if found >= 0:
            end_at = sum(len(c) for c in chunks) + found
        chunks.append(chunk[:usable])
        blocks += usable // BLOCK
        if end_at < 0 and len(chunk) < want:
            return f"ends at byte {size} inside the header of the HDU at byte {offset}"
    raw = b"".join(chunks)[:end_at]
    header_blocks = end_at // BLOCK + 1
    return _parse_cards(raw, path), header_blocks


def _starts_card(chunk: bytes, keyword: bytes) -> bool:
    """True if ``chunk`` starts with ``keyword`` (or is a prefix of it: still being written)."""
    if len(chunk) < len(keyword):
        return keyword.startswith(chunk)
    return chunk.startswith(keyword)


def _parse_cards(raw: bytes, path: Path) -> Header:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise NotFitsError(
            f"{path}: header has a non-ASCII byte at offset {exc.start}; FITS allows ASCII only"
        ) from exc
    if "HIERARCH" not in text and "CONTINUE" not in text:
        return Header(text=text)
    cards: dict[str, str] = {}
    # A long string's pieces, joined once at the end: re-concatenating per CONTINUE card is
    # quadratic (17 s for a 1000-block header of CONTINUE cards).
    pieces: dict[str, list[str]] = {}
    last_key: str | None = None
    for start in range(0, len(text), CARD):
        card = text[start : start + CARD]
        key = card[:8].rstrip()
        if key == "CONTINUE" and last_key is not None:
            parts = pieces.setdefault(last_key, [cards[last_key]])
            tail = parts[-1].rstrip()
            if parts[0].lstrip().startswith("'") and tail.endswith("&'"):  # strings only (FITS 4.0 §4.2.1.2)
                parts[-1] = tail[:-2]
                parts.append(card[10:].lstrip()[1:])
            continue
        if key == "HIERARCH":
            name, sep, value = card[9:].partition("=")
            if sep:
                last_key = name.strip()
                cards.setdefault(last_key, value)
            continue
        if card[8:10] != "= " or not key or key in ("COMMENT", "HISTORY"):
            last_key = None
            continue
        last_key = key
        cards.setdefault(key, card[10:])
    for key, parts in pieces.items():
        cards[key] = "".join(parts)
    return Header(cards)


def _parse_value(field: str, key: str) -> Any:
    """Parse the value field (card columns 11-80) of ``key``."""
    text = field.lstrip()
    if text.startswith("'"):
        close = text.find("'", 1)
        if close > 0 and text[close + 1 : close + 2] != "'":  # no '' escape: the common case
            return text[1:close].rstrip()
        chars: list[str] = []
        i = 1
        while i < len(text):
            c = text[i]
            if c == "'":
                if text[i + 1 : i + 2] == "'":
                    chars.append("'")
                    i += 2
                    continue
                break
            chars.append(c)
            i += 1
        return "".join(chars).rstrip()
    value = text.split("/", 1)[0].strip()
    if value == "":
        return None
    if value == "T":
        return True
    if value == "F":
        return False
    if _INT.match(value):
        return int(value)
    if value.startswith("("):
        real, _, imag = value.strip("()").partition(",")
        return complex(_float(real, key), _float(imag, key))
    return _float(value, key)


def _float(text: str, key: str) -> float:
    try:
        return float(text.strip().replace("D", "E").replace("d", "e"))
    except ValueError:
        raise ValueError(f"card {key} has value {text.strip()!r}, which is not a FITS value") from None


def _padded_data_size(header: Header, path: Path, index: int) -> int:
    """Bytes of data after this header, padded to whole blocks (FITS 4.0 §4.4.1)."""

    positional = header.leading_fields(12)

    def integer(key: str, default: int | None = None) -> int:
        # The standard puts BITPIX, NAXIS, NAXISn (and PCOUNT, GCOUNT in extensions) first, in
        # order; read them from there and look further only for headers that do not.
        field = positional.get(key)
        try:
            value = _parse_value(field, key) if field is not None else header[key]
        except KeyError:
            if default is None:
                raise NotFitsError(
                    f"{path}: HDU {index} has no {key} card; expected by the FITS standard"
                ) from None
            return default
        except ValueError as exc:
            raise NotFitsError(f"{path}: HDU {index}: {exc}") from None
        if not isinstance(value, int) or isinstance(value, bool):
            raise NotFitsError(f"{path}: HDU {index} card {key} = {value!r}; expected an integer")
        return value

    bitpix = integer("BITPIX")
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise NotFitsError(f"{path}: HDU {index} has BITPIX = {bitpix}; expected 8, 16, 32, 64, -32 or -64")
    naxis = integer("NAXIS")
    if not 0 <= naxis <= 999:
        raise NotFitsError(f"{path}: HDU {index} has NAXIS = {naxis}; expected 0-999")
    if naxis == 0:
        return 0
    axes = [integer(f"NAXIS{i}") for i in range(1, naxis + 1)]
    if any(n < 0 for n in axes):
        raise NotFitsError(f"{path}: HDU {index} has a negative NAXISn ({axes}); expected >= 0")
    pcount = integer("PCOUNT", 0)
    gcount = integer("GCOUNT", 1)
    if pcount < 0 or gcount < 0:
        raise NotFitsError(f"{path}: HDU {index} has PCOUNT {pcount}, GCOUNT {gcount}; expected >= 0")
    random_groups = index == 0 and axes[0] == 0 and _groups(header)
    count = math.prod(axes[1:] if random_groups else axes)
    bits = abs(bitpix) * gcount * (pcount + count)
    nbytes = bits // 8
    if nbytes > MAX_DATA_BYTES:  # also keeps the size printable (int -> str stops at 4300 digits)
        raise NotFitsError(
            f"{path}: HDU {index} declares more than {MAX_DATA_BYTES} bytes of data; "
            "expected sizes a file can have"
        )
    return -(-nbytes // BLOCK) * BLOCK


def _groups(header: Header) -> bool:
    return header.value("GROUPS") is True  # a malformed GROUPS card is not GROUPS = T


def read_column(path: str | os.PathLike[str], extname: str, column: str) -> list[Any]:
    """One column of a binary-table HDU, read with astropy (small tables only).

    Raises:
        BadHeaderError: there is no such HDU, it is not a table, it has no such column, or astropy
            cannot read it (the message names the file, the HDU and the column).
        OSError: the file cannot be read.
    """
    from astropy.io import fits

    name = Path(path).name
    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        try:
            hdu = hdul[extname]
        except KeyError:
            raise BadHeaderError(f"{name}: has no {extname} HDU; expected a binary table {extname} with a "
                                 f"{column} column") from None
        if not isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
            raise BadHeaderError(f"{name}: its {extname} HDU is an {type(hdu).__name__}; expected a binary "
                                 f"table with a {column} column")
        try:
            names = list(hdu.columns.names)
            if column not in names:
                raise BadHeaderError(f"{name}: its {extname} table has no {column} column (it has "
                                     f"{', '.join(names[:12]) or 'none'}); expected a {column} column")
            return [value.item() if hasattr(value, "item") else value for value in hdu.data[column]]
        except (BadHeaderError, OSError):
            raise
        except Exception as exc:  # astropy's table parsing: ValueError, TypeError, IndexError, ...
            raise BadHeaderError(f"{name}: its {extname} table cannot be read ({type(exc).__name__}: "
                                 f"{first_line(exc)}); expected a binary table with a {column} "
                                 "column") from None
