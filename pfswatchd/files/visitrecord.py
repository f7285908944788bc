"""The ``visit`` dimension record of a raw, computed exactly as the official PFS ingest computes it.

The official ingest (obs_pfs ``PfsRawIngestTask``) builds the record from the
first raw of a visit through astro_metadata_translator's ObservationInfo with
obs_pfs's ``PfsTranslator`` (translator.py) and ``makeExposureRecord``
(gen3.py).  pfswatchd cannot import obs_pfs (it needs the LSST C++ stack), so
this module follows the same rules, operation for operation where floating
point is involved, so that every column comes out bit-identical (the rules and
their sources are in the project notes, obs_pfs_ingest.md §1-§3):

- time span from MJD-STR in the scale TIMESYS (default UTC, lower-cased, not
  stripped), ending EXPTIME seconds later (an astropy Time plus a Quantity);
  day_obs from the TAI date of the start (Subaru's zero observing-day offset);
- exposure_time from EXPTIME (NaN counts as 0), dark_time from DARKTIME when
  the card is there, else the exposure time;
- observation_type from the first non-blank DATA-TYP or IMAGETYP: exactly
  ``OBJECT`` is ``science``, anything else lower-cased as written, none is
  ``UNKNOWN``; the reason is science / UNKNOWN / calibration accordingly;
- target_name from OBJECT (else IMAGETYP) as written, ``UNKNOWN`` when blank;
- tracking RA/Dec: RA2000 (hours) and DEC2000 (degrees, 0 when absent) as an
  FK5 SkyCoord transformed to ICRS by astropy, per position (a cached rotation
  differs in the last bit for a third of all positions);
- zenith angle 90 - ALTITUDE, with ALTITUDE clipped to [0, 90], and 90 when
  ALTITUDE or AZIMUTH is absent (obs_pfs needs both);
- lamps: the sorted lit lamps of obs_pfs ``utils.getLamps``, IIS cards
  included; none for DATA-TYP object, Quartz for flat;
- irp_ratio W_H4IRPN (NIR ramps only), written only where the repository's
  universe has that column (the ingest step drops it otherwise).

Where obs_pfs itself fails on a card (an unparsable RA2000, an ALTITUDE below
-90, a non-string DATA-TYP, an unknown TIMESYS ...) it makes no record to
match; pfswatchd refuses the raw with a one-line reason (BadHeaderError).

The values are plain Python and astropy objects; :mod:`pfswatchd.butler.ingest`
turns them into a butler record.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time, TimeDelta
from erfa import ErfaWarning

from pfswatchd.errors import BadHeaderError, first_line
from pfswatchd.model import RawFile

# Lamp cards and the lamp each one means (obs_pfs utils.getLamps, IIS cards since obs_pfs 5743fe4).
LAMP_CARDS = {
    "W_ENIISA": "Ar_eng",
    "W_ENIISC": "Quartz_eng",
    "W_ENIISH": "HgAr_eng",
    "W_ENIISK": "Kr_eng",
    "W_ENIISN": "Ne_eng",
    "W_ENIARG": "Ar_eng",
    "W_ENIQTH": "Quartz_eng",
    "W_ENIHGA": "HgAr_eng",
    "W_ENIKRY": "Kr_eng",
    "W_ENINEO": "Ne_eng",
    "W_IISARG": "Ar_eng",
    "W_IISQTH": "Quartz_eng",
    "W_IISHGA": "HgAr_eng",
    "W_IISKRY": "Kr_eng",
    "W_IISNEO": "Ne_eng",
    "W_IISHYD": "H_eng",
    "W_IISHE": "He_eng",
    "W_AITNEO": "Ne",
    "W_AITXEN": "Xe",
    "W_AITHGA": "HgAr",
    "W_AITKRY": "Kr",
    "W_AITARG": "Ar",
    "W_AITHGC": "HgCd",
    "W_AITQTH": "Quartz",
    "W_AITDEU": "D",
    "W_AIT_SRC_Ne": "Ne",
    "W_AIT_SRC_HgAr": "HgAr",
    "W_AIT_SRC_Xe": "Xe",
    "W_AIT_SRC_Qth": "Quartz",
}

# Every card visit_values() and compared_values() read: a classified raw keeps only these.
VISIT_CARDS = (
    "MJD-STR", "TIMESYS", "EXPTIME", "DARKTIME", "DATA-TYP", "IMAGETYP", "OBJECT", "RA2000", "DEC2000",
    "ALTITUDE", "AZIMUTH", "W_H4IRPN", "W_PFDSNM", "PROP-ID", "W_ENFCAY", "W_ENFCAX", *LAMP_CARDS,
)

# The cards of the time span, named in the reason when astropy or ERFA fails on them.
_TIME_CARDS = ("MJD-STR", "TIMESYS", "EXPTIME", "DARKTIME")

# Subaru's observing day starts at 00:00 TAI: astro_metadata_translator subtracts this zero offset.
_DAY_OFFSET = TimeDelta(0, format="sec", scale="tai")

# What daf_butler's Timespan holds: TAI from its epoch, 1970-01-01, to 2100-01-01 (as MJDs).
FIRST_MJD, LAST_MJD = 40587.0, 88069.0

# daf_butler's time_utils.TimeConverter: a Timespan is TAI nanoseconds from its epoch, 1970-01-01 TAI.
_EPOCH = Time("1970-01-01 00:00:00", format="iso", scale="tai")
_NSEC_PER_DAY = 86_400 * 1_000_000_000
_LAST_NSEC = round((LAST_MJD - FIRST_MJD) * _NSEC_PER_DAY)


def _defined(header: Mapping[str, Any], key: str) -> bool:
    """astro_metadata_translator's ``is_key_ok``: the card is there and has a value."""
    return key in header and header[key] is not None


def _first_string(header: Mapping[str, Any], keys: tuple[str, ...], what: str) -> str | None:
    """obs_pfs ``from_header_string``: the first card that is not blank, as written; None if none.

    A card that is not a string makes obs_pfs fail (``.strip()``); here that is a BadHeaderError.
    """
    for key in keys:
        if key not in header:
            continue
        value = header[key]
        if not isinstance(value, str):
            raise BadHeaderError(f"{key} is {value!r}; expected a string for the {what}")
        if value.strip():
            return value
    return None


def observation_type(header: Mapping[str, Any]) -> str:
    value = _first_string(header, ("DATA-TYP", "IMAGETYP"), "observation type")
    if value is None:
        return "UNKNOWN"
    return "science" if value == "OBJECT" else value.lower()


def observation_reason(obs_type: str) -> str:
    return {"science": "science", "UNKNOWN": "UNKNOWN"}.get(obs_type, "calibration")


def target_name(header: Mapping[str, Any]) -> str | None:
    """OBJECT (else IMAGETYP) as written; None where obs_pfs's optional property fails (not a string)."""
    try:
        value = _first_string(header, ("OBJECT", "IMAGETYP"), "target name")
    except BadHeaderError:
        return None
    return value or "UNKNOWN"


def lamps(header: Mapping[str, Any]) -> str | None:
    """obs_pfs ``getLamps``, sorted and comma-joined; None where it fails (a DATA-TYP that is no string)."""
    data_type = header.get("DATA-TYP") or ""
    if not isinstance(data_type, str):
        return None
    data_type = data_type.lower().strip()
    if data_type == "object":
        return ""
    if data_type == "flat":
        return "Quartz"
    return ",".join(sorted({lamp for key, lamp in LAMP_CARDS.items() if header.get(key, False)}))


@lru_cache(maxsize=4096)
def icrs_from_fk5(ra: Any, dec: Any) -> tuple[float, float]:
    """ICRS degrees of an FK5 (J2000) position given as obs_pfs reads RA2000 (hours) and DEC2000 (degrees).

    The same astropy transform as obs_pfs (a SkyCoord per position): the result is a pure function of
    the two card values, so caching it keeps every bit.
    """
    icrs = SkyCoord(ra, dec, frame="fk5", unit=(u.hourangle, u.deg)).transform_to("icrs")
    return float(icrs.ra.degree), float(icrs.dec.degree)


def _tracking(header: Mapping[str, Any]) -> tuple[float, float]:
    ra = header.get("RA2000", 0.0)  # the card as it is (None too) when present
    dec = header.get("DEC2000", 0.0)
    try:
        return icrs_from_fk5(ra, dec)
    except Exception as exc:  # astropy's parsers raise ValueError, TypeError, UnitsError, ...
        raise BadHeaderError(
            f"RA2000 {ra!r} / DEC2000 {dec!r} is not a position ({first_line(exc)}); expected sexagesimal "
            "J2000 coordinates (obs_pfs cannot ingest this raw either)"
        ) from None


def zenith_angle(header: Mapping[str, Any]) -> float:
    """90 - ALTITUDE (clipped to [0, 90]); 90 unless both ALTITUDE and AZIMUTH are present."""
    if "ALTITUDE" not in header or "AZIMUTH" not in header:
        return 90.0
    altitude, azimuth = header["ALTITUDE"], header["AZIMUTH"]
    numbers = all(isinstance(v, int | float) and not isinstance(v, complex) for v in (altitude, azimuth))
    if not numbers or azimuth < -360.0 or altitude < -90.0:
        raise BadHeaderError(
            f"ALTITUDE {altitude!r} / AZIMUTH {azimuth!r}; expected degrees (altitude >= -90, azimuth >= -360), "
            "or no ALTITUDE or AZIMUTH card (obs_pfs cannot ingest this raw either)"
        )
    altitude = min(max(float(altitude), 0.0), 90.0)
    return 90.0 - altitude  # astropy's AltAz.zen: 90 deg minus the (clipped) altitude, in degrees


def exposure_time(header: Mapping[str, Any]) -> float:
    """EXPTIME in seconds; a NaN counts as 0 (astro_metadata_translator's default for the card)."""
    if not _defined(header, "EXPTIME"):
        raise BadHeaderError("missing EXPTIME; expected the exposure time in seconds")
    value = header["EXPTIME"]
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise BadHeaderError(f"EXPTIME is {value!r}; expected the exposure time in seconds") from None
    return 0.0 if math.isnan(seconds) else seconds


def _dark_time(header: Mapping[str, Any], exposure: float) -> float | None:
    if "DARKTIME" not in header:
        return exposure
    try:
        return float(header["DARKTIME"])
    except (TypeError, ValueError):
        return None  # obs_pfs: the optional dark_time fails, and the column stays NULL


def irp_ratio(header: Mapping[str, Any]) -> int | None:
    if "W_H4IRPN" not in header:
        return None
    try:
        return int(header["W_H4IRPN"])
    except (TypeError, ValueError, OverflowError):
        return None


def _as_str(header: Mapping[str, Any], key: str, default: str) -> str:
    """A card without a unit, as astro_metadata_translator maps it: the default when undefined or NaN."""
    if not _defined(header, key):
        return default
    value = header[key]
    if isinstance(value, float) and math.isnan(value):
        return default
    return value if isinstance(value, str) else str(value)


def _as_float(header: Mapping[str, Any], key: str) -> float | None:
    if not _defined(header, key):
        return None
    try:
        return float(header[key])
    except (TypeError, ValueError):
        return None


def _begin(header: Mapping[str, Any]) -> Time:
    timesys = header.get("TIMESYS", "utc")
    if not isinstance(timesys, str):
        raise BadHeaderError(f"TIMESYS is {timesys!r}; expected a time scale such as 'UTC'")
    if timesys.lower() == "local":  # astropy's free-running scale: no conversion to TAI, so no day_obs
        raise BadHeaderError(f"TIMESYS is {timesys!r}; expected a time scale that converts to TAI "
                             "(UTC, TAI, TT, ...)")
    mjd = header["MJD-STR"]
    if isinstance(mjd, int | float) and not isinstance(mjd, bool) and not FIRST_MJD - 2 < mjd < LAST_MJD + 2:
        # Far outside what a Timespan holds: refused before ERFA is asked (it fails on such dates).
        when = "before 1970" if mjd < FIRST_MJD else "after 2100"
        raise BadHeaderError(f"MJD-STR {mjd!r} is {when}; expected the start of the exposure")
    try:
        return Time(mjd, format="mjd", scale=timesys.lower())
    except (ValueError, TypeError) as exc:
        raise BadHeaderError(
            f"MJD-STR {header.get('MJD-STR')!r} in TIMESYS {timesys!r} is not a time ({first_line(exc)}); "
            "expected an MJD in a scale astropy knows (UTC, TAI, TT, ...)"
        ) from None


def _end(header: Mapping[str, Any], begin: Time, exposure: float) -> Time:
    """``begin`` plus ``exposure`` seconds, both inside what daf_butler's Timespan holds (1970-2100 TAI).

    The exact (TAI) checks only where the cards are near a bound, as the conversion costs a fifth of a
    millisecond per visit.
    """
    mjd = float(header["MJD-STR"])
    days = exposure / 86400.0
    if not FIRST_MJD - 2 < mjd + days < LAST_MJD + 2:  # ERFA fails on such dates: refused before
        raise BadHeaderError(f"EXPTIME {header['EXPTIME']!r} puts the end of the exposure outside 1970-2100; "
                             "expected the exposure time in seconds")
    if min(mjd, mjd + days) > FIRST_MJD + 1 and max(mjd, mjd + days) < LAST_MJD - 1:
        return begin + exposure * u.s
    with warnings.catch_warnings():  # ERFA warns of a "dubious year" before 1960: the reason says it
        warnings.simplefilter("ignore", ErfaWarning)
        end = begin + exposure * u.s
        first, last = begin.tai.mjd, end.tai.mjd
    # daf_butler's Timespan cannot end at or before its epoch, 1970-01-01 TAI (an earlier begin it
    # clips, as for obs_pfs), and one ending after 2100-01-01 would end never.
    if last <= FIRST_MJD:
        raise BadHeaderError(f"MJD-STR {header['MJD-STR']!r} is before 1970; expected the start of the exposure")
    if max(first, last) > LAST_MJD:
        raise BadHeaderError(f"MJD-STR {header['MJD-STR']!r} with EXPTIME {header['EXPTIME']!r} ends after "
                             "2100; expected the start of the exposure and its length in seconds")
    return end


def day_obs(begin: Time) -> int:
    """YYYYMMDD of the TAI date of ``begin`` (Subaru: no observing-day offset)."""
    return int((begin.tai - _DAY_OFFSET).strftime("%Y%m%d"))


def visit_values(raw: RawFile) -> dict[str, Any]:
    """Every field of the visit record of ``raw`` (begin/end as astropy Times).

    Raises:
        BadHeaderError: a card makes the official computation fail (the message names the card).
    """
    header = raw.header
    try:
        return _values(raw, header)
    except BadHeaderError as exc:
        raise BadHeaderError(f"{raw.path.name}: {exc}; the visit record cannot be computed") from None
    except Exception as exc:  # any other card astropy or ERFA cannot take: the file's reason, never a crash
        cards = ", ".join(f"{key} {header[key]!r}" for key in _TIME_CARDS if key in header)
        raise BadHeaderError(
            f"{raw.path.name}: the visit record cannot be computed from {cards} ({type(exc).__name__}: "
            f"{first_line(exc)}); expected cards obs_pfs can compute a visit record from"
        ) from None


def with_visit_values(raw: RawFile) -> RawFile:
    """``raw`` with its visit values attached (``RawFile.visit_values``), the times already in TAI, the
    scale the registry stores them in (daf_butler's Timespan converts to TAI itself: the record is the
    same, bit for bit).  A raw whose values cannot be computed comes back as it is: the ingest step
    computes them again and gives the file its reason there.

    For the service's examiner workers: about 1 ms a visit (astropy's time scales and its FK5 to ICRS
    transform), which the service's own thread would otherwise spend while a burst waits behind it.
    """
    try:
        values = visit_values(raw)
    except BadHeaderError:
        return raw
    for key in ("datetime_begin", "datetime_end"):
        values[key] = values[key].tai
    values[TIMESPAN_NSEC] = timespan_nsec(values["datetime_begin"], values["datetime_end"])
    return replace(raw, visit_values=values)


# The key of with_visit_values()'s extra value: the visit's time span as daf_butler stores it.
TIMESPAN_NSEC = "timespan_nsec"


def _nsec(time: Time) -> int:
    """TAI nanoseconds since 1970-01-01 TAI, by daf_butler's arithmetic (TimeConverter.astropy_to_nsec:
    the day and its fraction apart, so that no nanosecond is lost)."""
    delta = time.tai - _EPOCH
    days, extra = divmod(delta.jd1, 1)
    return int(days) * _NSEC_PER_DAY + int(round((delta.jd2 + extra) * _NSEC_PER_DAY))


def timespan_nsec(begin: Time, end: Time) -> tuple[int, int] | None:
    """The nanoseconds a daf_butler ``Timespan(begin, end)`` holds, or None where its constructor would
    clip or adjust them (a bound at or outside 1970-2100 TAI): the registry side builds that one itself.

    A Timespan built from these (``Timespan.model_validate``, its serialised form) is the one the
    constructor makes, bit for bit; it costs microseconds where the constructor's astropy arithmetic
    costs about half a millisecond, in the service's thread.  As in daf_butler, a span of zero length
    (a bias) ends one nanosecond after it begins.
    """
    first, last = _nsec(begin), _nsec(end)
    if last == first:
        last += 1
    if not 0 < first < last < _LAST_NSEC:
        return None
    return first, last


def _values(raw: RawFile, header: Mapping[str, Any]) -> dict[str, Any]:
    begin = _begin(header)
    exposure = exposure_time(header)
    end = _end(header, begin, exposure)
    obs_type = observation_type(header)
    ra, dec = _tracking(header)
    return {
        "instrument": raw.instrument,
        "id": raw.visit,
        "obs_id": str(raw.visit),
        "pfs_design_id": raw.pfs_design_id,
        "dither": raw.dither,
        "datetime_begin": begin,
        "datetime_end": end,
        "exposure_time": exposure,
        "dark_time": _dark_time(header, exposure),
        "observation_type": obs_type,
        "observation_reason": observation_reason(obs_type),
        "day_obs": day_obs(begin),
        "seq_num": raw.visit,
        "group_name": _as_str(header, "W_PFDSNM", ""),
        "group_id": raw.visit,
        "target_name": target_name(header),
        "science_program": _as_str(header, "PROP-ID", "unknown"),
        "tracking_ra": ra,
        "tracking_dec": dec,
        "sky_angle": None,  # obs_pfs's rotation coordinate is "mount", never "sky"
        "zenith_angle": zenith_angle(header),
        "shift": _as_float(header, "W_ENFCAY"),
        "focus": _as_float(header, "W_ENFCAX"),
        "lamps": lamps(header),
        "irp_ratio": irp_ratio(header),
    }


def compared_values(raw: RawFile) -> dict[str, Any]:
    """The visit-level values of ``raw`` that obs_pfs never compares between the raws of a visit.

    pfswatchd compares them with the visit's record only to warn (modules read W_ENFCAZ back with
    noise, so their quantised dithers can differ by a step); cheap, and never raises.
    """
    header = raw.header
    try:
        exposure: float | None = exposure_time(header)
    except BadHeaderError:
        exposure = None
    return {"dither": raw.dither, "exposure_time": exposure, "irp_ratio": irp_ratio(header)}
