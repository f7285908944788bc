"""Values that the pipeline stages hand to each other.

The data flows one way: watch -> complete -> unpack -> classify -> ingest ->
ledger.  Each stage receives frozen values and returns new ones; none mutates
its input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class FileKind(StrEnum):
    """What a path is, from its name (and, for FITS, its header)."""

    RAW_CCD = "raw_ccd"  # PF?A: CCD arms b, r, m
    RAW_NIR = "raw_nir"  # PF?B: NIR arm n, up-the-ramp
    PFSCONFIG = "pfsconfig"  # pfsConfig-0x...-NNNNNN.fits or PF?F.........fits
    PFSDESIGN = "pfsdesign"  # pfsDesign-0x....fits: not a per-visit dataset
    METROLOGY = "metrology"  # PF?C: MCS frames, recognised, not ingested
    GUIDER = "guider"  # PF?D / agcc_*: AG frames, recognised, not ingested
    ARCHIVE = "archive"  # .tar, .tar.gz, ...
    CHECKSUM = "checksum"  # .md5/.sha256 sidecars and lists
    OTHER = "other"  # anything else: ignored


INGESTIBLE_KINDS = frozenset({FileKind.RAW_CCD, FileKind.RAW_NIR, FileKind.PFSCONFIG})


class Status(StrEnum):
    """Outcome of one file's ingest attempt."""

    INGESTED = "ingested"
    DUPLICATE = "duplicate"  # same content already in the repository: success, nothing changed
    WAITING = "waiting"  # pfsConfig whose visit has no raws yet
    SKIPPED = "skipped"  # recognised but not ingested (metrology, guider, design)
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NameInfo:
    """What the PFS file-name grammar says about a path."""

    kind: FileKind
    site: str | None = None
    category: str | None = None
    visit: int | None = None
    spectrograph: int | None = None
    arm: str | None = None
    pfs_design_id: int | None = None
    subset: int | None = None  # PFSF suffix: 0 = full pfsConfig, 1-99 customised
    sequence: int | None = None  # PF?C/PF?D frame number


@dataclass(frozen=True, slots=True)
class RawFile:
    """A PFSA or PFSB frame, classified: its data ID and visit-level values."""

    path: Path
    kind: FileKind
    instrument: str
    visit: int
    arm: str
    spectrograph: int
    pfs_design_id: int
    dither: int
    header: Mapping[str, Any] = field(repr=False, compare=False, hash=False)
    # (size, mtime_ns, ctime_ns, inode) when its headers were read: what is placed must be this file.
    examined: tuple[int, int, int, int] | None = field(default=None, repr=False, compare=False, hash=False)
    # Its visit record's values (files.visitrecord.visit_values), when they were computed where it was
    # examined: a burst's worker processes do that for the first raw of each visit, off the service's thread.
    visit_values: Mapping[str, Any] | None = field(default=None, repr=False, compare=False, hash=False)

    @property
    def data_id(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "visit": self.visit,
            "arm": self.arm,
            "spectrograph": self.spectrograph,
        }


@dataclass(frozen=True, slots=True)
class PfsConfigFile:
    """A pfsConfig (pfsConfig-0x... or PFSF...) classified.

    ``instrument`` is None when neither the name nor the header says which
    instrument took the visit (``pfsConfig-0x...`` names); the ingest step then
    takes it from the visit's raws.
    """

    path: Path
    instrument: str | None
    visit: int
    pfs_design_id: int
    subset: int
    # The cameras the visit exposed, as the file declares them (files/cameras.py), and how they were
    # found ("W_CAMMSK", "ARMS x fibres"; "" when the file says nothing).
    cameras: tuple[str, ...] = ()
    cameras_from: str = ""
    examined: tuple[int, int, int, int] | None = field(default=None, repr=False, compare=False, hash=False)

    @property
    def data_id(self) -> dict[str, Any]:
        return {"instrument": self.instrument, "visit": self.visit}


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that pfswatchd recognises and deliberately does not ingest."""

    path: Path
    kind: FileKind
    reason: str


Classified = RawFile | PfsConfigFile


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result for one file of an ingest call."""

    path: Path
    status: Status
    kind: FileKind
    data_id: Mapping[str, Any] | None = None
    dataset_id: str | None = None
    run: str | None = None
    error_kind: str | None = None
    message: str | None = None
    # A duplicate of a dataset whose id pfswatchd does not compute: another tool (the official
    # pfsConfig ingest, with random ids) wrote it, so no ledger row can own it.
    foreign: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not Status.FAILED
