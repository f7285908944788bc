"""Classify a FITS file: its data ID and visit-level values, from name and header.

Pure: a function of the file name (:mod:`pfswatchd.files.names`) and the headers read
by :mod:`pfswatchd.files.fitsheader`.  It derives values exactly as the PFS ingest
does (pfs-datamodel.md §2.3-§2.4, obs_pfs translator.py and gen3.py):

- instrument from W_SITE (S -> PFS, any other letter L -> PFS-L);
- visit W_VISIT, arm from W_ARM (1 b, 2 r, 3 n, 4 m), spectrograph W_SPMOD;
- pfs_design_id W_PFDSGN, dither ``int(W_ENFCAZ * 1e4 + 0.5)``.

Like obs_base, the cards are taken from the primary HDU, with the first
extension's cards merged on top when the primary is not a PFS header (the
simulator writes everything into the compressed image HDU).

The name and the header must agree on site, visit, spectrograph and arm (and on
visit and design id for pfsConfigs); a file where they disagree is rejected
with both values in the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from astropy.time import Time

from pfswatchd.errors import BadHeaderError, NameMismatchError, PfsWatchError
from pfswatchd.files import cameras
from pfswatchd.files.corrections import NONE, HeaderCorrections
from pfswatchd.files.fitsheader import MAX_NIR_READS, FitsScan, Header, read_column
from pfswatchd.files.names import ARM_BY_NUMBER, case_corrected, instrument_for_site
from pfswatchd.files.visitrecord import VISIT_CARDS, observation_type
from pfswatchd.model import INGESTIBLE_KINDS, FileKind, NameInfo, PfsConfigFile, RawFile, Skipped

# The cards obs_pfs's ingest needs in every raw (its required ObservationInfo properties).
RAW_REQUIRED = ("W_SITE", "W_VISIT", "W_ARM", "W_SPMOD", "W_PFDSGN", "W_ENFCAZ", "MJD-STR", "EXPTIME")
PFSCONFIG_REQUIRED = ("W_VISIT", "W_PFDSGN")
MAX_VISIT = 21474800  # PrimeFocusSpectrograph's visit_max (exclusive)
MAX_DESIGN_ID = 2**63  # pfsDesignId is a 63-bit hash

# The time scales a visit's start can be given in: astropy's, but "local" (it never converts to TAI).
_SCALES = tuple(scale for scale in Time.SCALES if scale != "local")

_NOT_INGESTED = {
    FileKind.METROLOGY: "metrology camera (MCS) frames are recognised but not ingested",
    FileKind.GUIDER: "auto-guider frames are recognised but not ingested",
    FileKind.PFSDESIGN: "pfsDesign files describe a design, not a visit; they are not ingested",
}


_OTHER_NAME = ("not a PFS file name (PFSA/PFSB<visit><spectrograph><arm>.fits raw frames, "
               "pfsConfig-0x<design>-<visit>.fits, PFSF<visit><NN>.fits); not ingested")


def not_ingested(path: Path, name: NameInfo) -> Skipped | None:
    """A :class:`Skipped` for every kind outside INGESTIBLE_KINDS; None for a kind that is ingested."""
    if name.kind in INGESTIBLE_KINDS:
        return None
    reason = _NOT_INGESTED.get(name.kind, f"{name.kind} files are not ingested")
    if name.kind is FileKind.OTHER:
        reason = _OTHER_NAME
        if (cased := case_corrected(path.name)) is not None:
            reason = (f"names are case-sensitive: expected {cased} (PFSA/PFSB/PFSF upper case, the extension "
                      "lower case); not ingested under this name")
        elif name.category is not None:
            reason = (f"PFS{name.category} is not a PFS file category pfswatchd knows (A, B: raw frames; F: "
                      "pfsConfig; C, D: metrology and guider frames); not ingested")
    return Skipped(path, name.kind, reason)


def quantize_dither(dither_mm: float) -> int:
    """obs_pfs's quantisation: units of 1e-4 of the card (0.1 um if mm), truncating."""
    return int(dither_mm * 1e4 + 0.5)


def classify(path: Path, name: NameInfo, scan: FitsScan, corrections: HeaderCorrections = NONE,
             ) -> RawFile | PfsConfigFile:
    """Classify a complete raw or pfsConfig file (a raw's header corrected first, as obs_pfs does).

    Raises:
        BadHeaderError: a required card is missing or has an invalid value.
        NameMismatchError: the name and the header disagree.
    """
    if name.kind in (FileKind.RAW_CCD, FileKind.RAW_NIR):
        return _classify_raw(path, name, corrections.apply(raw_header(scan), path))
    if name.kind is FileKind.PFSCONFIG:
        return _classify_pfsconfig(path, name, scan)
    raise PfsWatchError(f"{path.name}: {name.kind} files are not classified for ingest")


def raw_header(scan: FitsScan) -> Header:
    """The cards of a raw: the primary, with HDU 1 merged on top if the primary is not PFS."""
    primary = scan.primary
    if primary.value("INSTRUME") != "PFS" and len(scan.hdus) > 1:
        return primary.merged(scan.hdus[1].header)
    return primary


def _classify_raw(path: Path, name: NameInfo, header: Header) -> RawFile:
    where = path.name
    instrume = header.value("INSTRUME")
    if instrume != "PFS":
        raise BadHeaderError(f"{where}: INSTRUME is {instrume!r}; expected 'PFS' in a PFS raw frame")
    _require(where, header, RAW_REQUIRED)
    site = _string(where, header, "W_SITE")
    if len(site) != 1 or not site.isalpha() or not site.isupper():
        raise BadHeaderError(f"{where}: W_SITE is {site!r}; expected one upper-case site letter such as 'S'")
    visit = _integer(where, header, "W_VISIT", 0, MAX_VISIT)
    arm_number = _integer(where, header, "W_ARM", 1, 5)
    arm = ARM_BY_NUMBER[arm_number]
    spectrograph = _integer(where, header, "W_SPMOD", 1, 5)
    design = _integer(where, header, "W_PFDSGN", 0, MAX_DESIGN_ID)
    dither_mm = _real(where, header, "W_ENFCAZ")
    if not abs(dither_mm) < 1e14:  # int(dither_mm * 1e4) must be finite and fit the registry's int64
        raise BadHeaderError(f"{where}: W_ENFCAZ is {dither_mm!r}; expected a dither in mm (|value| < 1e14)")
    _real(where, header, "MJD-STR")
    exptime = _real(where, header, "EXPTIME")
    if exptime < 0:
        raise BadHeaderError(f"{where}: EXPTIME is {exptime!r}; expected an exposure time in seconds >= 0")
    _check_type_and_scale(where, header)
    if name.kind is FileKind.RAW_NIR:
        _integer(where, header, "W_H4NRED", 1, MAX_NIR_READS + 1)  # complete.py waited for it to be set

    mismatches = []
    if name.site != site:
        mismatches.append(f"site {name.site} but W_SITE {site}")
    if name.visit != visit:
        mismatches.append(f"visit {name.visit} but W_VISIT {visit}")
    if name.spectrograph != spectrograph:
        mismatches.append(f"spectrograph {name.spectrograph} but W_SPMOD {spectrograph}")
    if name.arm != arm:
        mismatches.append(f"arm {name.arm} but W_ARM {arm_number} ({arm})")
    if not mismatches and (arm == "n") != (name.kind is FileKind.RAW_NIR):
        category = "B (NIR ramp)" if name.kind is FileKind.RAW_NIR else "A (CCD)"
        mismatches.append(f"category {category} but arm {arm}")
    if mismatches:
        raise NameMismatchError(
            f"{where}: the name says {'; '.join(mismatches)}; expected the name and header to agree"
        )
    return RawFile(
        path=path,
        kind=name.kind,
        instrument=instrument_for_site(site),
        visit=visit,
        arm=arm,
        spectrograph=spectrograph,
        pfs_design_id=design,
        dither=quantize_dither(dither_mm),
        header=_compact(header),
    )


def _classify_pfsconfig(path: Path, name: NameInfo, scan: FitsScan) -> PfsConfigFile:
    where = path.name
    if scan.find("CONFIG") is None:
        found = [hdu.extname or "PRIMARY" for hdu in scan.hdus]
        raise BadHeaderError(
            f"{where}: has HDUs {found}; expected a CONFIG table (PRIMARY, CONFIG, PHOTOMETRY, GUIDESTARS)"
        )
    header = scan.primary
    missing = [key for key in PFSCONFIG_REQUIRED if key not in header]
    if missing:
        raise BadHeaderError(
            f"{where}: missing header cards {', '.join(missing)}; the butler reads a pfsConfig by them "
            "(fix with checkPfsConfigHeaders.py --fix)"
        )
    visit = _integer(where, header, "W_VISIT", 0, MAX_VISIT)
    design = _integer(where, header, "W_PFDSGN", 0, MAX_DESIGN_ID)
    mismatches = []
    if name.visit is not None and name.visit != visit:
        mismatches.append(f"visit {name.visit} but W_VISIT {visit}")
    if name.pfs_design_id is not None and name.pfs_design_id != design:
        mismatches.append(f"design 0x{name.pfs_design_id:016x} but W_PFDSGN 0x{design:016x}")
    if mismatches:
        raise NameMismatchError(
            f"{where}: the name says {'; '.join(mismatches)}; expected the name and header to agree"
        )
    instrument = instrument_for_site(name.site) if name.site else None
    if instrument is None and isinstance(header.value("W_SITE"), str):
        instrument = instrument_for_site(header["W_SITE"])
    expected, source = cameras.declared(header, path, _fiber_ids)
    return PfsConfigFile(
        path=path, instrument=instrument, visit=visit, pfs_design_id=design, subset=name.subset or 0,
        cameras=expected, cameras_from=source,
    )


def _fiber_ids(path: Path) -> list[Any]:
    return read_column(path, "CONFIG", "fiberId")


def _compact(header: Header) -> Header:
    """Only the cards the visit record needs: small to keep in memory and to pass between processes.

    A card whose value cannot be parsed is left out, as visit_values() treats it as absent.
    """
    cards = {}
    for key in VISIT_CARDS:
        try:
            if key in header:
                cards[key] = header[key]
        except ValueError:
            continue
    return Header.from_cards(cards)


def _check_type_and_scale(where: str, header: Mapping[str, Any]) -> None:
    """The cards obs_pfs reads from every raw that can make it fail: the time scale and the data type."""
    timesys = header.get("TIMESYS", "utc")
    if not isinstance(timesys, str) or timesys.lower() not in _SCALES:
        raise BadHeaderError(f"{where}: TIMESYS is {timesys!r}; expected a time scale ({', '.join(_SCALES)})")
    try:
        observation_type(header)
    except BadHeaderError as exc:
        raise BadHeaderError(f"{where}: {exc}") from None


def _require(where: str, header: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in header]
    if missing:
        raise BadHeaderError(
            f"{where}: missing required header cards {', '.join(missing)}; "
            "expected them in the primary header (or the image HDU)"
        )


def _value(where: str, header: Mapping[str, Any], key: str) -> Any:
    try:
        return header[key]
    except ValueError as exc:
        raise BadHeaderError(f"{where}: {exc}") from None


def _string(where: str, header: Mapping[str, Any], key: str) -> str:
    value = _value(where, header, key)
    if not isinstance(value, str):
        raise BadHeaderError(f"{where}: {key} is {value!r}; expected a string")
    return value.strip()


def _integer(where: str, header: Mapping[str, Any], key: str, low: int, high: int) -> int:
    """The integer value of ``key`` in ``[low, high)``."""
    value = _value(where, header, key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value < high:
        raise BadHeaderError(f"{where}: {key} is {value!r}; expected an integer from {low} to {high - 1}")
    return value


def _real(where: str, header: Mapping[str, Any], key: str) -> float:
    value = _value(where, header, key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadHeaderError(f"{where}: {key} is {value!r}; expected a finite number")
    return float(value)
