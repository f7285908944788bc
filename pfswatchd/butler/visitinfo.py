"""A raw's visit information with the getters of afw's ``VisitInfo``, made from its ``ObservationInfo``.

obs_pfs's ``PfsRaw.visitInfo`` is obs_base's ``MakeRawVisitInfoViaObsInfo.observationInfo2visitInfo``
of the raw's ObservationInfo (obs_base makeRawVisitInfoViaObsInfo.py:112-236); `visit_info` follows the
same rules: the date is the middle of the exposure in TAI, angles are `Angle` (radians inside,
``asDegrees()`` out), positions `SpherePoint`, the focus in mm, the weather in degrees Celsius, Pa and
percent.  Where pfswatchd differs (afw types): ``getDate()`` is an ``astropy.time.Time`` (TAI), not an
``lsst.daf.base.DateTime`` (``date.mjd``, ``date.isot`` instead of ``get(DateTime.MJD)``); there is no
``getEra``, ``getBoresightHourAngle``, ``getBoresightParAngle`` or ``getLocalEra`` (they need UT1 and
the IERS tables); ``getRotType()`` is a string (``"UNKNOWN"``, ``"SKY"``), not an enum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import astropy.units as u
from astropy.time import Time

from .geom import Angle, SpherePoint, degrees

__all__ = ["Observatory", "VisitInfo", "Weather", "visit_info"]

_NAN_POINT = SpherePoint(Angle(math.nan), Angle(math.nan))


@dataclass(frozen=True)
class Weather:
    """Air temperature (deg C), pressure (Pa) and relative humidity (%), as afw's ``coord.Weather``."""

    airTemperature: float = math.nan
    airPressure: float = math.nan
    humidity: float = math.nan

    def getAirTemperature(self) -> float:
        return self.airTemperature

    def getAirPressure(self) -> float:
        return self.airPressure

    def getHumidity(self) -> float:
        return self.humidity


@dataclass(frozen=True)
class Observatory:
    """Longitude, latitude (east, north positive) and elevation (m), as afw's ``coord.Observatory``."""

    longitude: Angle
    latitude: Angle
    elevation: float

    def getLongitude(self) -> Angle:
        return self.longitude

    def getLatitude(self) -> Angle:
        return self.latitude

    def getElevation(self) -> float:
        return self.elevation


@dataclass(frozen=True)
class VisitInfo:
    """Exposure-level facts of a raw, by afw's property names; each also has its afw getter.

    A fact the header lacks is NaN (numbers, angles, positions), None (date), or the translator's
    default (``"UNKNOWN"``, ``"unknown"``).
    """

    id: int
    exposureTime: float = math.nan
    darkTime: float = math.nan
    date: Time | None = None
    boresightRaDec: SpherePoint = _NAN_POINT
    boresightAzAlt: SpherePoint = _NAN_POINT
    boresightAirmass: float = math.nan
    boresightRotAngle: Angle = field(default_factory=lambda: Angle(math.nan))
    rotType: str = "UNKNOWN"
    observatory: Observatory | None = None
    weather: Weather = field(default_factory=Weather)
    instrumentLabel: str = ""
    focusZ: float = math.nan
    observationType: str = ""
    scienceProgram: str = ""
    observationReason: str = ""
    object: str = ""
    hasSimulatedContent: bool = False

    def getId(self) -> int:
        """The exposure id: the visit (``W_VISIT``)."""
        return self.id

    def getExposureTime(self) -> float:
        """Seconds (``EXPTIME``)."""
        return self.exposureTime

    def getDarkTime(self) -> float:
        """Seconds (``DARKTIME``, or the exposure time when the card is missing)."""
        return self.darkTime

    def getDate(self) -> Time | None:
        """The middle of the exposure, TAI (an astropy Time; afw returns a DateTime)."""
        return self.date

    def getBoresightRaDec(self) -> SpherePoint:
        """ICRS (ra, dec) of the pointing (``RA2000``/``DEC2000``, FK5)."""
        return self.boresightRaDec

    def getBoresightAzAlt(self) -> SpherePoint:
        """(azimuth, altitude) at the start (``AZIMUTH``/``ALTITUDE``)."""
        return self.boresightAzAlt

    def getBoresightAirmass(self) -> float:
        return self.boresightAirmass

    def getBoresightRotAngle(self) -> Angle:
        """The instrument rotator angle (``INSROT``)."""
        return self.boresightRotAngle

    def getRotType(self) -> str:
        return self.rotType

    def getObservatory(self) -> Observatory | None:
        return self.observatory

    def getWeather(self) -> Weather:
        return self.weather

    def getInstrumentLabel(self) -> str:
        return self.instrumentLabel

    def getFocusZ(self) -> float:
        """Millimetres."""
        return self.focusZ

    def getObservationType(self) -> str:
        return self.observationType

    def getScienceProgram(self) -> str:
        return self.scienceProgram

    def getObservationReason(self) -> str:
        return self.observationReason

    def getObject(self) -> str:
        return self.object

    def getHasSimulatedContent(self) -> bool:
        return self.hasSimulatedContent


def _value(quantity: Any, unit: Any) -> float:
    return math.nan if quantity is None else float(quantity.to_value(unit, equivalencies=u.temperature()))


def visit_info(obs_info: Any) -> VisitInfo:
    """The `VisitInfo` of an astro-metadata-translator ``ObservationInfo``, by obs_base's rules."""
    begin, end = obs_info.datetime_begin, obs_info.datetime_end
    date = None
    if begin is not None:
        date = (begin.tai + (end.tai - begin.tai) / 2) if end is not None else begin.tai
    radec = _NAN_POINT
    if obs_info.tracking_radec is not None:
        icrs = obs_info.tracking_radec.icrs
        radec = SpherePoint.fromDegrees(float(icrs.ra.degree), float(icrs.dec.degree))
    azalt = _NAN_POINT
    if obs_info.altaz_begin is not None:
        azalt = SpherePoint.fromDegrees(float(obs_info.altaz_begin.az.degree),
                                        float(obs_info.altaz_begin.alt.degree))
    observatory = None
    if obs_info.location is not None:
        lon, lat, height = obs_info.location.to_geodetic()
        observatory = Observatory(degrees(float(lon.degree)), degrees(float(lat.degree)), float(height.to_value(u.m)))
    rotation = obs_info.boresight_rotation_angle
    humidity = obs_info.relative_humidity
    return VisitInfo(
        id=int(obs_info.exposure_id),
        exposureTime=_value(obs_info.exposure_time, u.s),
        darkTime=_value(obs_info.dark_time, u.s),
        date=date,
        boresightRaDec=radec,
        boresightAzAlt=azalt,
        boresightAirmass=math.nan if obs_info.boresight_airmass is None else float(obs_info.boresight_airmass),
        boresightRotAngle=Angle(math.nan) if rotation is None else degrees(float(rotation.to_value(u.deg))),
        rotType="SKY" if obs_info.boresight_rotation_coord == "sky" else "UNKNOWN",
        observatory=observatory,
        weather=Weather(_value(obs_info.temperature, u.deg_C), _value(obs_info.pressure, u.Pa),
                        math.nan if humidity is None else float(humidity)),
        instrumentLabel=str(obs_info.instrument or ""),
        focusZ=_value(obs_info.focus_z, u.mm),
        observationType=str(obs_info.observation_type or ""),
        scienceProgram=str(obs_info.science_program or ""),
        observationReason=str(obs_info.observation_reason or ""),
        object=str(obs_info.object or ""),
        hasSimulatedContent=bool(obs_info.has_simulated_content),
    )
