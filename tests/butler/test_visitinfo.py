"""A raw's visitInfo (afw getters) and obsInfo (astro-metadata-translator), from fakedata headers.

Expected values come from the header cards and the rules of obs_pfs's translator and obs_base's
observationInfo2visitInfo (date at mid-exposure in TAI, FK5 -> ICRS, (0, 0) for a missing position).
"""

from __future__ import annotations

import math

import astropy.units as u
import pytest
from astro_metadata_translator import ObservationInfo
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time

from pfswatchd import fakedata
from pfswatchd.butler.geom import Angle, SpherePoint
from pfswatchd.butler.pfsraw import PfsRaw, VisitInfo

DESIGN = 0x1945BE7E6DE4B2CF


@pytest.fixture()
def ccd(tmp_path):
    return fakedata.write_pfsa(tmp_path / "PFSA00012322.fits", visit=123, spectrograph=2, arm="r",
                               pfs_design_id=DESIGN, mjd=60800.3, exptime=450.0, data_type="COMPARISON")


def test_visit_info_getters(ccd):
    header = fits.getheader(ccd)
    info = PfsRaw(ccd).visitInfo
    assert isinstance(info, VisitInfo)
    assert info.getId() == 123 == info.id
    assert info.getExposureTime() == 450.0 and info.getDarkTime() == header["DARKTIME"] == 452.1
    middle = Time(60800.3, format="mjd", scale="utc") + 225.0 * u.s
    assert info.getDate().scale == "tai" and abs((info.getDate() - middle).to_value(u.s)) < 1e-4
    icrs = SkyCoord(header["RA2000"], header["DEC2000"], frame="fk5", unit=(u.hourangle, u.deg)).icrs
    radec = info.getBoresightRaDec()
    assert isinstance(radec, SpherePoint) and isinstance(radec.getRa(), Angle)
    assert radec.getRa().asDegrees() == pytest.approx(icrs.ra.degree, abs=1e-9)
    assert radec.getDec().asDegrees() == pytest.approx(icrs.dec.degree, abs=1e-9)
    azalt = info.getBoresightAzAlt()
    assert azalt.getLongitude().asDegrees() == pytest.approx(header["AZIMUTH"])
    assert azalt.getLatitude().asDegrees() == pytest.approx(header["ALTITUDE"])
    assert info.getBoresightRotAngle().asDegrees() == pytest.approx(header["INSROT"])
    assert info.getBoresightAirmass() == pytest.approx(header["AIRMASS"]) and info.getRotType() == "UNKNOWN"
    assert info.getObject() == "COMPARISON" and info.getObservationType() == "comparison"
    assert info.getObservationReason() == "calibration" and info.getScienceProgram() == header["PROP-ID"]
    assert info.getInstrumentLabel() == "PFS" and info.getHasSimulatedContent() is False
    assert info.getFocusZ() == pytest.approx(header["FOC-VAL"] / 1000.0)  # obs_pfs reads FOC-VAL in um
    weather = info.getWeather()
    assert weather.getAirTemperature() == pytest.approx(header["OUT-TMP"] - 273.15)
    assert weather.getAirPressure() == pytest.approx(header["OUT-PRS"] * 100.0)
    assert weather.getHumidity() == pytest.approx(header["OUT-HUM"])
    observatory = info.getObservatory()
    assert observatory.getLongitude().asDegrees() == pytest.approx(-155.476667)
    assert observatory.getLatitude().asDegrees() == pytest.approx(19.825556)
    assert observatory.getElevation() == pytest.approx(4139.0)


def test_visit_info_fallbacks(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "a.fits", visit=9, spectrograph=1, arm="b", pfs_design_id=DESIGN,
                               drop_cards=("MJD-STR", "RA2000", "DEC2000", "ALTITUDE", "DARKTIME", "OBJECT",
                                           "AIRMASS", "PROP-ID"))
    info = PfsRaw(path).visitInfo
    begin = Time(fits.getheader(path)["DATE-OBS"], scale="utc")
    assert abs((info.getDate() - (begin + 15 * u.s)).to_value(u.s)) < 1e-4  # DATE-OBS, then mid-exposure
    origin = SkyCoord(0.0, 0.0, frame="fk5", unit=(u.hourangle, u.deg)).icrs  # obs_pfs: (0, 0) when missing
    assert info.getBoresightRaDec().getRa().asDegrees() == pytest.approx(origin.ra.degree)
    assert info.getBoresightAzAlt().getLatitude() == 0.0 and info.getBoresightAzAlt().getLongitude() == 0.0
    assert info.getDarkTime() == info.getExposureTime() == 30.0
    assert math.isnan(info.getBoresightAirmass()) and info.getScienceProgram() == "unknown"
    assert info.getObservationType() == "science" and info.getObservationReason() == "science"
    assert info.getObject() == "UNKNOWN"


def test_visit_info_without_any_time(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "a.fits", visit=9, spectrograph=1, arm="b", pfs_design_id=DESIGN,
                               drop_cards=("MJD-STR", "DATE-OBS", "AZIMUTH", "OUT-TMP", "FOC-VAL"))
    info = PfsRaw(path).visitInfo
    assert info.getDate() is None
    assert not info.getBoresightAzAlt().isFinite() and math.isnan(info.getWeather().getAirTemperature())
    assert math.isnan(info.getFocusZ()) and info.getBoresightRaDec().isFinite()


def test_obs_info(ccd, tmp_path):
    obs = PfsRaw(ccd).obsInfo
    assert isinstance(obs, ObservationInfo)
    assert (obs.instrument, obs.exposure_id, obs.visit_id, obs.observation_id) == ("PFS", 123, 123, "123")
    assert (obs.physical_filter, obs.detector_name, obs.detector_num, obs.detector_exposure_id) == (
        "r", "r2", 4, 12304)
    assert obs.exposure_time.to_value(u.s) == 450.0 and obs.telescope == "Subaru"
    assert obs.datetime_begin.mjd == pytest.approx(60800.3)
    assert (obs.datetime_end - obs.datetime_begin).to_value(u.s) == pytest.approx(450.0)
    assert obs.observation_type == "comparison" and obs.boresight_rotation_coord == "mount"
    assert obs.exposure_group == f"fake-0x{DESIGN:016x}"
    simulated = fakedata.write_pfsa(tmp_path / "PFFA00000534.fits", visit=5, spectrograph=3, arm="m", site="F",
                                    pfs_design_id=DESIGN, simulator_layout=True)
    sim = PfsRaw(simulated, "F")
    assert sim.obsInfo.instrument == "PFS-F" and sim.obsInfo.has_simulated_content is True
    assert sim.visitInfo.getInstrumentLabel() == "PFS-F" and sim.obsInfo.detector_num == -7


def test_obs_info_refuses_a_broken_header(tmp_path):
    path = fakedata.write_pfsa(tmp_path / "a.fits", visit=9, spectrograph=1, arm="b", pfs_design_id=DESIGN,
                               extra_cards={"W_SPMOD": "x"})
    with pytest.raises(ValueError, match="a.fits: cannot compute the observation information"):
        _ = PfsRaw(path).visitInfo
