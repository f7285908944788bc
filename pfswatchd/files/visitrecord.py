"""The ``visit`` dimension record of a raw, derived as the PFS ingest derives it.

Rules from obs_pfs (translator.py, gen3.py ``makeExposureRecord``) and
astro_metadata_translator, as summarised in pfs-datamodel.md §2.3-§2.4:

- the time span starts at MJD-STR (time scale TIMESYS, default UTC) and lasts
  EXPTIME seconds; day_obs is the YYYYMMDD of the TAI date of the start;
- observation_type is DATA-TYP (else IMAGETYP) lower-cased, ``object`` becomes
  ``science``, absent is ``UNKNOWN``; the reason is science / UNKNOWN /
  calibration accordingly;
- tracking RA/Dec from RA2000/DEC2000 (sexagesimal, FK5) converted to ICRS,
  0/0 when absent; zenith angle 90 - ALTITUDE;
- lamps: the sorted, comma-joined lit lamps, none for DATA-TYP OBJECT and
  Quartz for FLAT (obs_pfs utils.getLamps).

The values here are plain Python and astropy objects; :mod:`pfswatchd.butler.ingest`
turns them into a butler record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import FK5, Angle, SkyCoord
from astropy.time import Time

from pfswatchd.model import RawFile

# Lamp cards and the lamp each one means (obs_pfs utils.getLamps).
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


# Every card visit_values() reads: a classified raw keeps only these (a PFSA primary has ~150).
VISIT_CARDS = (
    "MJD-STR", "TIMESYS", "EXPTIME", "DARKTIME", "DATA-TYP", "IMAGETYP", "OBJECT", "RA2000", "DEC2000",
    "ALTITUDE", "W_H4IRPN", "W_PFDSNM", "PROP-ID", "W_ENFCAY", "W_ENFCAX", *LAMP_CARDS,
)


def _card(header: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value of ``key``, or ``default`` when absent or empty.

    A raw's header holds parsed values only (classify._compact leaves malformed cards out).
    """
    value = header.get(key, default)
    return default if value is None else value


def lamps(header: Mapping[str, Any]) -> str:
    data_type = str(_card(header, "DATA-TYP", "")).lower().strip()
    if data_type == "object":
        return ""
    if data_type == "flat":
        return "Quartz"
    return ",".join(sorted({lamp for key, lamp in LAMP_CARDS.items() if _card(header, key, False)}))


def observation_type(header: Mapping[str, Any]) -> str:
    value = _card(header, "DATA-TYP") or _card(header, "IMAGETYP")
    if not isinstance(value, str) or not value.strip():
        return "UNKNOWN"
    value = value.strip().lower()
    return "science" if value == "object" else value


def observation_reason(obs_type: str) -> str:
    if obs_type in ("science", "UNKNOWN"):
        return obs_type
    return "calibration"


def target_name(header: Mapping[str, Any]) -> str:
    for key in ("OBJECT", "IMAGETYP"):
        value = _card(header, key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "UNKNOWN"


@lru_cache(maxsize=1)
def _fk5_to_icrs_matrix() -> np.ndarray:
    """The constant rotation from FK5 (equinox J2000) to ICRS, computed once with astropy."""
    axes = SkyCoord(x=[1, 0, 0], y=[0, 1, 0], z=[0, 0, 1], representation_type="cartesian",
                    frame=FK5(equinox="J2000"))
    icrs = axes.icrs.cartesian
    return np.array([icrs.x.value, icrs.y.value, icrs.z.value])  # column j = image of axis j


@lru_cache(maxsize=4096)
def icrs_from_fk5(ra: str, dec: str) -> tuple[float, float]:
    """ICRS degrees of a sexagesimal FK5 (J2000) position (astropy's transform, as a fixed rotation)."""
    ra_rad = Angle(ra, unit=u.hourangle).radian
    dec_rad = Angle(dec, unit=u.deg).radian
    vector = np.array([math.cos(dec_rad) * math.cos(ra_rad), math.cos(dec_rad) * math.sin(ra_rad),
                       math.sin(dec_rad)])
    x, y, z = _fk5_to_icrs_matrix() @ vector
    return math.degrees(math.atan2(y, x)) % 360.0, math.degrees(math.atan2(z, math.hypot(x, y)))


def _position(header: Mapping[str, Any]) -> tuple[float, float]:
    ra = _card(header, "RA2000", 0.0)
    dec = _card(header, "DEC2000", 0.0)
    try:
        return icrs_from_fk5(str(ra), str(dec))
    except ValueError:
        return icrs_from_fk5("0", "0")


def visit_values(raw: RawFile) -> dict[str, Any]:
    """Every field of the visit record of ``raw`` (begin/end as astropy Times)."""
    header = raw.header
    scale = str(_card(header, "TIMESYS", "utc")).strip().lower() or "utc"
    start = float(header["MJD-STR"])
    exposure_time = float(_card(header, "EXPTIME", 0.0))
    dark_time = float(_card(header, "DARKTIME", exposure_time))
    begin = Time(start, format="mjd", scale=scale)
    end = Time(start, exposure_time / 86400.0, format="mjd", scale=scale)
    obs_type = observation_type(header)
    ra, dec = _position(header)
    altitude = _card(header, "ALTITUDE", 0.0)
    irp = _card(header, "W_H4IRPN")
    return {
        "instrument": raw.instrument,
        "id": raw.visit,
        "obs_id": str(raw.visit),
        "pfs_design_id": raw.pfs_design_id,
        "dither": raw.dither,
        "datetime_begin": begin,
        "datetime_end": end,
        "exposure_time": exposure_time,
        "dark_time": dark_time,
        "observation_type": obs_type[:16],
        "observation_reason": observation_reason(obs_type),
        "day_obs": _day_obs(begin),
        "seq_num": raw.visit,
        "group_name": str(_card(header, "W_PFDSNM", ""))[:64],
        "group_id": raw.visit,
        "target_name": target_name(header)[:64],
        "science_program": str(_card(header, "PROP-ID", "unknown"))[:64],
        "tracking_ra": ra,
        "tracking_dec": dec,
        "sky_angle": None,
        "zenith_angle": 90.0 - float(altitude) if isinstance(altitude, int | float) else 90.0,
        "shift": _float_or_none(_card(header, "W_ENFCAY")),
        "focus": _float_or_none(_card(header, "W_ENFCAX")),
        "lamps": lamps(header)[:64],
        "irp_ratio": irp if isinstance(irp, int) and not isinstance(irp, bool) else None,
    }


def _day_obs(begin: Time) -> int:
    """YYYYMMDD of the TAI date of ``begin`` (no observing-day offset for PFS)."""
    when = begin.tai.ymdhms
    return int(when["year"]) * 10000 + int(when["month"]) * 100 + int(when["day"])


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
