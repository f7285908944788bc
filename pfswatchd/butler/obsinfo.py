"""A raw's ``ObservationInfo`` (astro-metadata-translator), computed from its header as obs_pfs's translator does.

obs_pfs builds ``PfsRaw.obsInfo`` with ``ObservationInfo(metadata, translator_class=PfsTranslator)`` and
derives ``visitInfo`` from it.  pfswatchd has no MetadataTranslator subclass yet: this module computes
the values of the standard properties a raw's visit information needs, with the rules of obs_pfs's
``PfsTranslator`` (translator.py; /work/notes/obs_pfs_ingest.md §2 and obs_pfs_pipeline.md §2.7), and
makes an ``ObservationInfo`` of them with ``ObservationInfo.makeObservationInfo``.  The rules the
visit record also needs (observation type and reason, target name, FK5 -> ICRS) are the ones of
`pfswatchd.files.visitrecord`, which computes the visit record exactly as obs_pfs does.  It is
deliberately minimal: no ``ext_*`` extension properties (pfsDesignId, dither, lamps, IRP ratio), no
observing day; header corrections are applied to the header before (`corrected`, as obs_pfs's
``PfsRaw.metadata`` does); a missing card gives the translator's default, or leaves the property unset, instead of
making the file bad (a raw that is already in a repository should still read).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import astropy.units as u
from astro_metadata_translator import ObservationInfo
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from astropy.time import Time

from pfswatchd.errors import BadHeaderError
from pfswatchd.files import visitrecord
from pfswatchd.files.corrections import HeaderCorrections
from pfswatchd.files.names import ARM_BY_NUMBER, instrument_for_site

from .camera import camera_id

__all__ = ["SUBARU", "corrected", "observation_info", "readable_cards"]

# The keyword root of astro-metadata-translator's provenance cards (headers.py HIERARCH).
PROVENANCE = "HIERARCH ASTRO METADATA FIX"

# astro-metadata-translator's SubaruTranslator.to_location (translators/subaru.py), which obs_pfs inherits.
SUBARU = EarthLocation.from_geodetic(-155.476667 * u.deg, 19.825556 * u.deg, 4139.0 * u.m)


def _string(header: Mapping[str, Any], key: str) -> str | None:
    value = header.get(key)
    return value if isinstance(value, str) and value.strip() else None


def _number(header: Mapping[str, Any], key: str) -> float | None:
    value = header.get(key)
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _begin(header: Mapping[str, Any]) -> Time | None:
    """``MJD-STR`` in the ``TIMESYS`` scale (UTC by default); pfswatchd falls back to ``DATE-OBS``."""
    scale = str(header.get("TIMESYS", "utc")).strip().lower()
    scale = scale if scale in Time.SCALES else "utc"
    mjd = _number(header, "MJD-STR")
    if mjd is not None:
        return Time(mjd, format="mjd", scale=scale)
    if header.get("DATE-OBS"):
        try:
            return Time(str(header["DATE-OBS"]), scale=scale)
        except ValueError:
            return None
    return None


def _values(header: Mapping[str, Any], arm: str) -> dict[str, Any]:
    site = str(header.get("W_SITE", "S")).strip() or "S"
    visit, spectrograph = int(header["W_VISIT"]), int(header["W_SPMOD"])
    exposure_time = _number(header, "EXPTIME")
    exposure_time = 0.0 if exposure_time is None or exposure_time != exposure_time else exposure_time
    dark_time = _number(header, "DARKTIME") if "DARKTIME" in header else exposure_time
    try:
        observation_type = visitrecord.observation_type(header)
    except BadHeaderError:
        observation_type = "UNKNOWN"
    detector_num = camera_id(arm, spectrograph)
    values: dict[str, Any] = {
        "instrument": instrument_for_site(site),
        "telescope": "Subaru",
        "location": SUBARU,
        "exposure_id": visit,
        "visit_id": visit,
        "observation_id": str(visit),
        "physical_filter": arm,
        "detector_name": f"{arm}{spectrograph}",
        "detector_num": detector_num,
        "detector_exposure_id": 100 * visit + detector_num,
        "exposure_time": exposure_time * u.s,
        "observation_type": observation_type,
        "observation_reason": visitrecord.observation_reason(observation_type),
        "object": visitrecord.target_name(header) or "UNKNOWN",
        "science_program": _string(header, "PROP-ID") or "unknown",
        "exposure_group": _string(header, "W_PFDSNM") or "",
        "boresight_rotation_coord": "mount",
        "boresight_rotation_angle": (_number(header, "INSROT") or 0.0) * u.deg,
        "has_simulated_content": site == "F",
        "can_see_sky": str(header.get("W_TSHUTR", "")).strip() == "open",
    }
    if dark_time is not None:
        values["dark_time"] = dark_time * u.s
    begin = _begin(header)
    if begin is not None:
        values["datetime_begin"] = begin
        values["datetime_end"] = begin + exposure_time * u.s
    try:
        ra, dec = visitrecord.icrs_from_fk5(header.get("RA2000", 0.0), header.get("DEC2000", 0.0))
        values["tracking_radec"] = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    except Exception:  # astropy's parsers raise ValueError, TypeError, UnitsError, ...: position unknown
        pass
    azimuth, altitude = _number(header, "AZIMUTH"), _number(header, "ALTITUDE")
    if begin is not None:
        az, alt = (azimuth, altitude) if azimuth is not None and altitude is not None else (0.0, 0.0)
        if not (math.isfinite(az) and math.isfinite(alt)):
            az, alt = 0.0, 0.0
        alt = min(max(alt, 0.0), 90.0)  # as obs_pfs's translator (and the visit record's zenith angle)
        values["altaz_begin"] = SkyCoord(AltAz(az=az * u.deg, alt=alt * u.deg, obstime=begin, location=SUBARU))
    for key, name, unit in (("AIRMASS", "boresight_airmass", None), ("FOC-VAL", "focus_z", u.um),
                            ("OUT-TMP", "temperature", u.K), ("OUT-PRS", "pressure", u.hPa),
                            ("OUT-HUM", "relative_humidity", None)):
        number = _number(header, key)
        if number is not None:
            values[name] = number if unit is None else number * unit
    return values


def readable_cards(header: fits.Header) -> dict[str, Any]:
    """The cards of ``header`` whose values astropy can parse (the first of repeated keywords).

    A card astropy cannot parse (``AIRMASS = NAN``, ``EXPTIME = 1.5.5``) raises VerifyError whenever its
    value is asked for; like the ingest (`pfswatchd.files.classify`), the translation treats it as absent.
    """
    cards: dict[str, Any] = {}
    for card in header.cards:
        try:
            value = card.value
        except (VerifyError, ValueError):
            continue
        cards.setdefault(card.keyword, value)
    return cards


def corrected(header: fits.Header, path: Path, corrections: HeaderCorrections) -> Path | None:
    """Apply the header correction of ``header`` to it in place, as obs_pfs's ``PfsRaw.metadata`` is
    corrected on read (``fix_header`` with PfsTranslator: $METADATA_CORRECTIONS_PATH, then obs_pfs's
    ``corrections/``); the file applied, or None.

    Only the corrected cards are written back: astro-metadata-translator's provenance cards (``HIERARCH
    ASTRO METADATA FIX MODIFIED/DATE/FILE``) are left out, as a long file name does not fit a HIERARCH card.
    """
    if not corrections.folders:
        return None
    cards = readable_cards(header)
    before = dict(cards)
    found = corrections.correct(cards, path)
    if found is None:
        return None
    for key, value in cards.items():
        if key.startswith(PROVENANCE) or (key in before and before[key] == value):
            continue
        header[key] = value
    return found


def observation_info(header: fits.Header, filename: str = "") -> ObservationInfo:
    """The ``ObservationInfo`` of a raw's (merged) primary header.

    Raises:
        ValueError: If the header has no usable ``W_ARM``, ``W_VISIT`` or ``W_SPMOD``.
    """
    cards = readable_cards(header)
    value = cards.get("W_ARM")
    arm = value.strip() if isinstance(value, str) else ARM_BY_NUMBER.get(int(value or 0), "")
    try:
        values = _values(cards, arm)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{filename or 'raw'}: cannot compute the observation information: {exc}") from exc
    return ObservationInfo.makeObservationInfo(**values)
