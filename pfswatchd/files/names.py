"""The PFS file-name grammar (pure: no I/O).

Sources (pfs-datamodel.md §1): datamodel.txt "Raw Data", pfsConfig.py file-name
formats, ics_gen2Actor's PFSF archive names.

- Raw frames ``PF{site}{category}{visit:06d}{d}{d}.fits``:
  A (CCD) and B (NIR ramp): the digits are spectrograph then arm number;
  C (metrology): a two-digit sequence; D (guider): a two-digit frame;
  F: the STARS archive name of a pfsConfig, ``PFSF{visit:06d}{NN}`` where
  00 is the full pfsConfig and 01-99 are customised per-proposal copies.
- ``pfsConfig-0x%016x-%06d.fits`` and ``pfsDesign-0x%016x.fits``.
- Guider frames also come as ``agcc_{visit:06d}_{exposure:08d}.fits``.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from pfswatchd.model import FileKind, NameInfo

ARM_BY_NUMBER = {1: "b", 2: "r", 3: "n", 4: "m"}
NUMBER_BY_ARM = {arm: number for number, arm in ARM_BY_NUMBER.items()}
SITES = frozenset("JLXIASPF")

# ASCII digits only, and \Z (not $, which also matches before a trailing newline).  A pfsConfig
# visit has at most 255 digits (NAME_MAX), which keeps int() below its 4300-digit limit.
_RAW = re.compile(r"^PF([A-Z])([A-Z])(\d{6})(\d)(\d)\.fits\Z", re.ASCII)
_PFSCONFIG = re.compile(r"^pfsConfig-0x([0-9a-f]{1,16})-(\d{6,255})\.fits\Z", re.ASCII)
_PFSDESIGN = re.compile(r"^pfsDesign-0x([0-9a-f]{1,16})\.fits\Z", re.ASCII)
_AGCC = re.compile(r"^agcc_(\d{6})_(\d{8})\.fits\Z", re.ASCII)
# Archive suffix (any case) -> its compression, as unpack reads it.
ARCHIVE_CODECS = {".tar": "tar", ".tar.gz": "gzip", ".tgz": "gzip", ".tar.bz2": "bzip2", ".tbz2": "bzip2",
                  ".tar.xz": "xz", ".txz": "xz"}
# Checksum sidecars (x.fits.md5) and lists (MD5SUMS, x.sha256sum, STARS2's 0_list_*), as checksums reads them.
_CHECKSUM_NAME = re.compile(r"\.(md5|sha1|sha256|sha512)(sum)?$|SUMS$|^0_list_", re.IGNORECASE)
# Names that writers use while a file is incomplete, and editor debris.
_TEMPORARY_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".swp", ".swx", ".download", "~")


def is_temporary(name: str) -> bool:
    """True for names a file has while it is being written (ignore until renamed)."""
    if name.startswith(".") or name.startswith("#"):
        return True
    return name.endswith(_TEMPORARY_SUFFIXES)


def instrument_for_site(site: str) -> str:
    """The butler instrument name for a W_SITE letter: S -> PFS, X -> PFS-X."""
    return "PFS" if site == "S" else f"PFS-{site}"


def parse_name(path: str | PurePath) -> NameInfo:
    """Classify a path by its name alone.

    Unknown names give ``FileKind.OTHER``; a name that looks like a PFS raw but
    has impossible values (spectrograph 7, arm 9) is still returned with the
    values it claims, and the header check rejects it with a reason.
    """
    name = PurePath(path).name
    if match := _RAW.match(name):
        site, category, visit, first, second = match.groups()
        visit_number = int(visit)
        if category in "AB":
            kind = FileKind.RAW_CCD if category == "A" else FileKind.RAW_NIR
            return NameInfo(
                kind=kind,
                site=site,
                category=category,
                visit=visit_number,
                spectrograph=int(first),
                arm=ARM_BY_NUMBER.get(int(second), second),
            )
        if category == "F":
            return NameInfo(
                kind=FileKind.PFSCONFIG,
                site=site,
                category=category,
                visit=visit_number,
                subset=int(first + second),
            )
        if category in "CD":
            kind = FileKind.METROLOGY if category == "C" else FileKind.GUIDER
            return NameInfo(
                kind=kind, site=site, category=category, visit=visit_number, sequence=int(first + second)
            )
        return NameInfo(kind=FileKind.OTHER, site=site, category=category, visit=visit_number)
    if match := _PFSCONFIG.match(name):
        return NameInfo(
            kind=FileKind.PFSCONFIG, pfs_design_id=int(match.group(1), 16), visit=int(match.group(2)), subset=0
        )
    if match := _PFSDESIGN.match(name):
        return NameInfo(kind=FileKind.PFSDESIGN, pfs_design_id=int(match.group(1), 16))
    if match := _AGCC.match(name):
        return NameInfo(kind=FileKind.GUIDER, visit=int(match.group(1)), sequence=int(match.group(2)))
    if split_archive_name(name) is not None:
        return NameInfo(kind=FileKind.ARCHIVE)
    if is_checksum_name(name):
        return NameInfo(kind=FileKind.CHECKSUM)
    return NameInfo(kind=FileKind.OTHER)


def split_archive_name(name: str) -> tuple[str, str] | None:
    """``(stem, codec)`` for an archive name (``S2Query.tar`` -> ``("S2Query", "tar")``), else None."""
    lower = name.lower()
    for suffix, codec in ARCHIVE_CODECS.items():
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], codec
    return None


def is_checksum_name(name: str) -> bool:
    """True for names of checksum sidecars and lists."""
    return _CHECKSUM_NAME.search(name) is not None


def case_corrected(name: str) -> str | None:
    """The PFS name that ``name`` spells in the wrong case (``pfsa00012311.FITS`` -> ``PFSA00012311.fits``),
    or None when it is no PFS name in any case.  Names are case-sensitive, as obs_pfs's templates are."""
    lower = name.lower()
    if not lower.endswith(".fits") or len(name) <= len(".fits"):
        return None
    stem = name[: -len(".fits")]
    for candidate in (stem.upper() + ".fits", "pfsConfig" + stem[len("pfsconfig"):].lower() + ".fits",
                      "pfsDesign" + stem[len("pfsdesign"):].lower() + ".fits", stem.lower() + ".fits"):
        if candidate != name and parse_name(candidate).kind is not FileKind.OTHER:
            return candidate
    return None
