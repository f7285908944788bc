"""A reader for PfsConfig files (``pfsConfig-0x%016x-%06d.fits`` and the STARS ``PFSF*.fits`` copies).

It follows the PFS datamodel's reader: the design id and visit come from the W_PFDSGN and
W_VISIT header cards, with the file name as the only fallback; optional fibre columns missing
from older files get the datamodel's defaults.  Read-only; astropy and numpy only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

__all__ = ["FIBER_COLUMNS", "FiberStatus", "PfsConfig", "TargetType", "parse_pfsconfig_filename"]

_FILENAME = re.compile(r"^pfsConfig-(0x[0-9a-fA-F]+)-([0-9]+)\.fits")


class TargetType(IntEnum):
    """What a fibre was pointed at."""

    SCIENCE = 1
    SKY = 2
    FLUXSTD = 3
    UNASSIGNED = 4
    ENGINEERING = 5
    SUNSS_IMAGING = 6
    SUNSS_DIFFUSE = 7
    DCB = 8
    HOME = 9
    BLACKSPOT = 10
    AFL = 11
    SCIENCE_MASKED = 12


class FiberStatus(IntEnum):
    """The state of a fibre."""

    GOOD = 1
    BROKENFIBER = 2
    BLOCKED = 3
    BLACKSPOT = 4
    UNILLUMINATED = 5
    BROKENCOBRA = 6
    NOTCONVERGED = 7
    BAD_PSF = 8
    MASKED = 9
    UNKNOWN = 10


# Fibre columns exposed as attributes, with the default used when an (optional) column is absent;
# None marks a required column.
FIBER_COLUMNS: dict[str, Any] = {
    "fiberId": None, "tract": None, "patch": None, "ra": None, "dec": None, "catId": None, "objId": None,
    "targetType": None, "epoch": "J2000.0", "pmRa": 0.0, "pmDec": 0.0, "parallax": 1e-8,
    "proposalId": "N/A", "obCode": "N/A", "pfiNominal": None, "pfiCenter": np.nan,
    "fiberStatus": int(FiberStatus.GOOD), "cobraId": 65535,
}
_DTYPES = {"fiberId": np.int32, "tract": np.int32, "ra": np.float64, "dec": np.float64, "catId": np.int32,
           "objId": np.int64, "targetType": np.int32, "pmRa": np.float32, "pmDec": np.float32,
           "parallax": np.float32, "pfiNominal": np.float32, "pfiCenter": np.float32,
           "fiberStatus": np.int32, "cobraId": np.int32}


def parse_pfsconfig_filename(name: str) -> tuple[int, int] | None:
    """Return ``(pfsDesignId, visit)`` from a ``pfsConfig-0x...-NNNNNN.fits`` name, else None."""
    match = _FILENAME.match(Path(name).name)
    return (int(match.group(1), 16), int(match.group(2))) if match else None


def _int_card(header: fits.Header, key: str) -> int | None:
    value = header.get(key)
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        return None


def _read_table(hdul: fits.HDUList, name: str) -> Table:
    if name not in hdul:
        return Table()
    table = Table(hdul[name].data) if hdul[name].data is not None else Table()
    table.convert_bytestring_to_unicode()
    return table


class PfsConfig:
    """The fibre configuration of one visit.

    Args:
        header: The primary header.
        table: The CONFIG table (one row per fibre).
        photometry: The PHOTOMETRY table (one row per fibre and filter).
        guideStars: The GUIDESTARS table.
        pfsDesignId: The design id.
        visit: The visit.
        filename: Where it was read from, for messages.

    Raises:
        ValueError: If a required column or the RA/DEC cards are missing.
    """

    def __init__(self, *, header: fits.Header, table: Table, photometry: Table, guideStars: Table,
                 pfsDesignId: int, visit: int, filename: str = "<memory>") -> None:
        self.header, self.table, self.photometry, self.guideStars = header, table, photometry, guideStars
        self.pfsDesignId, self.visit, self.filename = int(pfsDesignId), int(visit), filename
        for key in ("RA", "DEC"):
            if key not in header:
                raise ValueError(f"{filename}: pfsConfig primary header has no {key} card")
        self.raBoresight, self.decBoresight = float(header["RA"]), float(header["DEC"])
        self.posAng = float(header.get("POSANG", 0.0))
        self.arms = str(header.get("ARMS", "brn"))
        self.designName = str(header.get("DSGN_NAM", ""))
        self.variant = _int_card(header, "VARIANT") or 0
        self.designId0 = _int_card(header, "PFDSGN0") or 0
        n_rows = len(table)
        for name, default in FIBER_COLUMNS.items():
            if name in table.colnames:
                values = np.asarray(table[name])
            elif default is None:
                raise ValueError(f"{filename}: CONFIG table has no {name} column")
            elif name == "pfiCenter":
                values = np.full((n_rows, 2), np.nan)
            else:
                values = np.full(n_rows, default)
            dtype = _DTYPES.get(name)
            setattr(self, name, values.astype(dtype) if dtype is not None else values.astype(str))

    fiberId: np.ndarray
    tract: np.ndarray
    patch: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    catId: np.ndarray
    objId: np.ndarray
    targetType: np.ndarray
    epoch: np.ndarray
    pmRa: np.ndarray
    pmDec: np.ndarray
    parallax: np.ndarray
    proposalId: np.ndarray
    obCode: np.ndarray
    pfiNominal: np.ndarray
    pfiCenter: np.ndarray
    fiberStatus: np.ndarray
    cobraId: np.ndarray

    @classmethod
    def readFits(cls, path: str | Path) -> PfsConfig:
        """Read a pfsConfig or PFSF file.

        The design id and visit come from W_PFDSGN/W_VISIT; only when a card is missing are they
        parsed from a ``pfsConfig-0x...-NNNNNN.fits`` file name.

        Raises:
            ValueError: With a one-line reason naming the file when the file is unusable.
        """
        path = Path(path)
        try:
            with fits.open(path, memmap=False) as hdul:
                return cls._fromHDUList(hdul, path.name)
        except OSError as exc:
            raise ValueError(f"{path.name}: cannot read as FITS: {exc}") from exc

    @classmethod
    def fromHDUList(cls, hdul: fits.HDUList) -> PfsConfig:
        """Build a PfsConfig from an open HDUList (the file name, if any, is the fallback for the ids)."""
        return cls._fromHDUList(hdul, Path(hdul.filename() or "<memory>").name)

    @classmethod
    def _fromHDUList(cls, hdul: fits.HDUList, filename: str) -> PfsConfig:
        header = hdul[0].header.copy()
        if "CONFIG" not in hdul:
            names = [hdu.name for hdu in hdul]
            raise ValueError(f"{filename}: not a pfsConfig, no CONFIG HDU (HDUs: {', '.join(names)})")
        design, visit = _int_card(header, "W_PFDSGN"), _int_card(header, "W_VISIT")
        if design is None or visit is None:
            parsed = parse_pfsconfig_filename(filename)
            if parsed is None:
                missing = " and ".join(k for k, v in (("W_PFDSGN", design), ("W_VISIT", visit)) if v is None)
                raise ValueError(f"{filename}: header has no {missing} and the name is not "
                                 "pfsConfig-0x<designId>-<visit>.fits")
            design = parsed[0] if design is None else design
            visit = parsed[1] if visit is None else visit
        return cls(header=header, table=_read_table(hdul, "CONFIG"),
                   photometry=_read_table(hdul, "PHOTOMETRY"), guideStars=_read_table(hdul, "GUIDESTARS"),
                   pfsDesignId=design, visit=visit, filename=filename)

    def __len__(self) -> int:
        return len(self.fiberId)

    def __repr__(self) -> str:
        return (f"PfsConfig(pfsDesignId=0x{self.pfsDesignId:016x}, visit={self.visit}, "
                f"nFibers={len(self)}, file={self.filename!r})")

    def select(self, **kwargs: Any) -> PfsConfig:
        """Return a PfsConfig with the fibres matching every criterion.

        Each keyword is a fibre attribute; a scalar value selects equal rows, an iterable selects
        rows whose value is in it, e.g. ``select(targetType=TargetType.SCIENCE)`` or
        ``select(fiberId=[2, 5])``.  Photometry rows follow the selected fibres.

        Raises:
            ValueError: For an unknown attribute.
        """
        mask = np.ones(len(self), dtype=bool)
        for name, wanted in kwargs.items():
            if name not in FIBER_COLUMNS or name == "pfiNominal" or name == "pfiCenter":
                raise ValueError(f"cannot select on {name!r}; use one of the scalar fibre columns")
            values = getattr(self, name)
            if isinstance(wanted, Iterable) and not isinstance(wanted, str | bytes):
                mask &= np.isin(values, np.asarray(list(wanted)))
            else:
                mask &= values == wanted
        keep = set(self.fiberId[mask].tolist())
        photometry = self.photometry
        if "fiberId" in photometry.colnames:
            photometry = photometry[np.isin(np.asarray(photometry["fiberId"]), list(keep))]
        table = self.table[mask] if len(self.table.colnames) else self.table
        return PfsConfig(header=self.header.copy(), table=table, photometry=photometry,
                         guideStars=self.guideStars, pfsDesignId=self.pfsDesignId, visit=self.visit,
                         filename=self.filename)
