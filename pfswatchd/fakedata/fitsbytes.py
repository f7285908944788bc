"""FITS headers and checksums as bytes: restamping a written file is far cheaper than writing it again.

astropy builds a header card by card (tens of microseconds each) and writes a file twice to checksum
it; a night of synthetic data is thousands of files that differ from a template in a few dozen cards.
These helpers format those cards exactly as astropy does (``astropy/io/fits/card.py``:
``_format_value``, ``_format_float``, ``Card._format_image``) and recompute the FITS checksums (the
ones'-complement sum of the FITS checksum convention) over the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BLOCK = 2880
_CHECKSUM_EXCLUDE = frozenset(b":;<=>?@[\\]^_`")
_COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})


def _format_float(value: float) -> str:
    text = str(value).replace("e", "E")
    if len(text) > 20:
        index = text.find("E")
        text = text[:20] if index < 0 else text[: 20 - (len(text) - index)] + text[index:]
    return text


def card_image(key: str, value: Any, comment: str) -> bytes:
    """The 80 bytes astropy writes for ``(key, value, comment)`` (short keys; bool, int, float, str)."""
    if isinstance(value, bool | np.bool_):
        text = f"{'T' if value else 'F':>20}"
    elif isinstance(value, int | np.integer):
        text = f"{int(value):>20d}"
    elif isinstance(value, float | np.floating):
        text = f"{_format_float(float(value)):>20}"
    else:
        quoted = f"'{str(value).replace(chr(39), chr(39) * 2):8}'"
        text = f"{quoted:20}"
    image = f"{key:8}= {text}" + (f" / {comment}" if comment else "")
    return image[:80].ljust(80).encode("ascii")


def ones_complement_sum(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """The 32-bit ones'-complement sum of ``data`` (a multiple of 4 bytes) added to ``start``."""
    words = np.frombuffer(data, dtype=">u4").astype(np.uint64)
    total = int(words.sum()) + start
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def encode_checksum(value: int) -> str:
    """The 16-character ASCII encoding of the FITS checksum convention (complemented)."""
    value = ~value & 0xFFFFFFFF
    chars = [0] * 16
    for i, shift in enumerate((24, 16, 8, 0)):
        byte = (value >> shift) & 0xFF
        quotient, remainder = byte // 4 + 0x30, byte % 4
        group = [quotient + remainder, quotient, quotient, quotient]
        changed = True
        while changed:
            changed = False
            for j in (0, 2):
                if group[j] in _CHECKSUM_EXCLUDE or group[j + 1] in _CHECKSUM_EXCLUDE:
                    group[j] += 1
                    group[j + 1] -= 1
                    changed = True
        for j in range(4):
            chars[4 * j + i] = group[j]
    return "".join(chr(chars[(i + 15) % 16]) for i in range(16))


@dataclass(frozen=True)
class Hdu:
    """Where one HDU's header and data are in a file, and where each of its (first) cards is."""

    header: int  # offset of the header
    data: int  # offset of the data (the header's end, in whole blocks)
    size: int  # bytes of data, padded to whole blocks
    cards: dict[str, int]  # key -> offset of its card, first occurrence (not COMMENT/HISTORY)


def layout(data: bytes) -> list[Hdu]:
    """The HDUs of a FITS file: headers read for NAXISn, BITPIX, PCOUNT and GCOUNT, data skipped."""
    hdus, offset = [], 0
    while offset < len(data):
        cards: dict[str, int] = {}
        position = offset
        while True:
            card = data[position : position + 80]
            key = card[:8].decode("ascii").strip()
            if key == "END":
                break
            if key not in _COMMENTARY and card[8:10] == b"= ":
                cards.setdefault(key, position)
            position += 80
        start = offset + (position - offset) // BLOCK * BLOCK + BLOCK
        axes = [_number(data, cards, f"NAXIS{i}") for i in range(1, _number(data, cards, "NAXIS") + 1)]
        size = 0
        if axes:
            size = (abs(_number(data, cards, "BITPIX")) // 8 * _number(data, cards, "GCOUNT", 1)
                    * (_number(data, cards, "PCOUNT") + int(np.prod(axes))))
        padded = -(-size // BLOCK) * BLOCK
        hdus.append(Hdu(offset, start, padded, cards))
        offset = start + padded
    return hdus


def _number(data: bytes, cards: dict[str, int], key: str, default: int = 0) -> int:
    where = cards.get(key)
    return default if where is None else int(data[where + 10 : where + 80].split(b"/")[0])


def set_card(data: bytearray, hdu: Hdu, key: str, value: Any, comment: str) -> None:
    where = hdu.cards[key]
    data[where : where + 80] = card_image(key, value, comment)


def restamp(data: bytearray, hdu: Hdu, comment: str) -> None:
    """Recompute an HDU's DATASUM and CHECKSUM (both commented ``comment``) after its bytes changed."""
    datasum = ones_complement_sum(memoryview(data)[hdu.data : hdu.data + hdu.size]) if hdu.size else 0
    set_card(data, hdu, "DATASUM", str(datasum), comment)
    set_card(data, hdu, "CHECKSUM", "0" * 16, comment)
    total = ones_complement_sum(memoryview(data)[hdu.header : hdu.data], datasum)
    where = hdu.cards["CHECKSUM"]
    data[where + 10 : where + 28] = f"'{encode_checksum(total)}'".encode()
