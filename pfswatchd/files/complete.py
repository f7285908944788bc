"""Is a file whole?  Structural completeness plus what each PFS kind must hold.

Structure alone is not enough: a FITS file is structurally whole at every HDU
boundary, and the DAQs write HDU by HDU (a NIR ramp gains two HDUs per read).
So each kind also states how many HDUs a finished file has:

- PFSA: the primary plus the compressed ``image`` HDU (or a primary that
  holds the image itself, as very old files do);
- PFSB: ``1 + 2 * W_H4NRED`` HDUs, plus the RESET pair when ``W_4FMTVR >= 3``
  (the DAQ patches W_H4NRED when a ramp stops early); a ramp without
  W_H4NRED (or with 0) is still being written;
- pfsConfig: PRIMARY, CONFIG, PHOTOMETRY, and GUIDESTARS when DAMD_VER >= 2.

This module is pure: it looks at a :class:`~pfswatchd.files.fitsheader.FitsScan`.
"""

from __future__ import annotations

from pfswatchd.files.fitsheader import MAX_NIR_READS, FitsScan, Header
from pfswatchd.model import FileKind


def incomplete_reason(kind: FileKind, scan: FitsScan) -> str | None:
    """None when ``scan`` is a whole file of ``kind``, else why it is not (one line)."""
    if not scan.complete:
        return scan.problem or "is not a whole FITS file"
    hdus = len(scan.hdus)
    primary = scan.primary
    if kind is FileKind.RAW_CCD:
        has_image = hdus >= 2 or _int(primary, "NAXIS") > 0
        if not has_image:
            return "has only its primary HDU; a PFSA frame also needs its image HDU"
        return None
    if kind is FileKind.RAW_NIR:
        if primary.value("W_H4NRED") in (None, 0):
            # The DAQ writes a ramp HDU by HDU and sets the read count when it ends: until then the
            # file is whole at every HDU boundary and says nothing of how many reads are to come.
            return (f"has {hdus} HDUs and no read count yet (W_H4NRED missing or 0); a ramp is finished "
                    "when W_H4NRED is set and all its reads are there")
        reads = _int(primary, "W_H4NRED")
        if not 0 < reads <= MAX_NIR_READS:
            return None  # malformed or out of range: the header check gives the reason
        expected = 1 + 2 * reads + (2 if _int(primary, "W_4FMTVR") >= 3 else 0)
        if hdus < expected:
            return f"has {hdus} HDUs; W_H4NRED={reads} means {expected} when the ramp is finished"
        return None
    if kind is FileKind.PFSCONFIG:
        expected = 4 if _int(primary, "DAMD_VER", 2) >= 2 else 3
        if hdus < expected:
            return f"has {hdus} HDUs; a pfsConfig needs {expected} (PRIMARY, CONFIG, PHOTOMETRY, GUIDESTARS)"
        return None
    return None


def _int(header: Header, key: str, default: int = 0) -> int:
    """The integer value of ``key``, or ``default`` when absent, malformed or not an integer."""
    value = header.value(key)
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    return default
