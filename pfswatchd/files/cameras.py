"""The cameras of a visit: which arm of which spectrograph module, as the data declare them.

A camera is named by its arm and spectrograph, ``b1`` ... ``m4``, as PFS writes them.  A pfsConfig
says which cameras a visit exposed in two ways (../shared/pfs-datamodel.md §4.2):

- ``W_CAMMSK``, a bitmask whose bit i is camera i in the order b1, r1, n1, m1, b2, ..., m4
  (datamodel pfsConfig.py ``_allCams``; bit 0 = b1 ... bit 15 = m4);
- older files without it: ``ARMS`` (e.g. ``brn``, default ``brn``) for every spectrograph that one
  of its fibres feeds, spectrograph = (fiberId - 1) // 651 + 1 (pfs_utils fibers.py
  ``spectrographFromFiberId``, ``FIBERS_PER_SPECTROGRAPH = 651`` in constants.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pfswatchd.files.fitsheader import Header

ARMS = ("b", "r", "n", "m")
SPECTROGRAPHS = (1, 2, 3, 4)
ALL_CAMERAS = tuple(f"{arm}{spectrograph}" for spectrograph in SPECTROGRAPHS for arm in ARMS)  # W_CAMMSK bit order
FIBERS_PER_SPECTROGRAPH = 651
_CAMERA = re.compile(r"^([brnm])([1-4])$")

FROM_MASK = "W_CAMMSK"
FROM_ARMS = "ARMS x fibres"
FROM_DEFAULT = "default"


def camera(arm: str, spectrograph: int) -> str:
    return f"{arm}{spectrograph}"


def is_camera(name: str) -> bool:
    return _CAMERA.match(name) is not None


def ordered(cameras: Iterable[str]) -> list[str]:
    """Cameras in the W_CAMMSK order (by spectrograph, then b, r, n, m); unknown names last."""
    rank = {name: i for i, name in enumerate(ALL_CAMERAS)}
    return sorted(set(cameras), key=lambda name: (rank.get(name, len(rank)), name))


def from_mask(mask: int) -> tuple[str, ...]:
    """The cameras whose bits are set in a W_CAMMSK value."""
    return tuple(name for bit, name in enumerate(ALL_CAMERAS) if mask >> bit & 1)


def from_arms(arms: str, fiber_ids: Iterable[int]) -> tuple[str, ...]:
    """ARMS for every spectrograph a fibre feeds."""
    modules = sorted({(int(fid) - 1) // FIBERS_PER_SPECTROGRAPH + 1 for fid in fiber_ids})
    modules = [m for m in modules if m in SPECTROGRAPHS]
    return tuple(ordered(camera(arm, m) for m in modules for arm in arms if arm in ARMS))


def declared(header: Header, path: Path,
             read_fibers: Callable[[Path], Iterable[Any]] | None = None) -> tuple[tuple[str, ...], str]:
    """(cameras, how they were found) from a pfsConfig's primary header; ``((), "")`` when it says nothing.

    ``read_fibers(path)`` returns the CONFIG table's fiberId column; it is read only when the header has
    no usable W_CAMMSK (a table read costs more than the header scan).
    """
    mask = header.value("W_CAMMSK")
    if isinstance(mask, int) and not isinstance(mask, bool) and 0 < mask < 1 << len(ALL_CAMERAS):
        return from_mask(mask), FROM_MASK
    arms = header.value("ARMS", "brn")
    if not isinstance(arms, str) or read_fibers is None:
        return (), ""
    try:
        fibers = read_fibers(path)
    except Exception:  # a table that cannot be read declares nothing; the visit falls back to the default set
        return (), ""
    found = from_arms(arms.strip().lower(), fibers)
    return (found, FROM_ARMS) if found else ((), "")


def mask_of(cameras: Iterable[str]) -> int:
    """The W_CAMMSK value of a set of cameras (fake data writes what it exposes)."""
    rank = {name: i for i, name in enumerate(ALL_CAMERAS)}
    return sum(1 << rank[name] for name in set(cameras))
