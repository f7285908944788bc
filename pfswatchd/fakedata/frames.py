"""The writers of single synthetic PFS files (PFSA, PFSB, pfsConfig/PFSF, PFSC), with astropy.

The layouts follow the DAQ writers described in ``pfs-datamodel.md`` (sections 1, 4 and 5):
CCD frames are an empty primary carrying every card plus a RICE_1 tile-compressed ``image``
HDU; NIR ramps add ``RESET_*`` and ``IMAGE_n``/``REF_n`` pairs; pfsConfigs have PRIMARY,
CONFIG, PHOTOMETRY and GUIDESTARS HDUs.  Output is deterministic for a given seed, down to
the bytes: the CHECKSUM/DATASUM comments carry the time of the exposure instead of "now".
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.time import Time, TimeDelta

from pfswatchd.butler.pfsraw import camera_id

ARM_NUMBERS = {"b": 1, "r": 2, "n": 3, "m": 4}
_STRUCTURAL = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND"}
_SPECTRO = {"b": (711, 519, 380.0, 650.0), "r": (557, 806, 630.0, 970.0),  # fringe, mid, bandpass (nm)
            "m": (1007, 1007, 710.0, 885.0), "n": (1007, 1107, 940.0, 1260.0)}
_LAMPS = {"NEO": "Ne", "XEN": "Xe", "HGA": "HgAr", "KRY": "Kr", "ARG": "Ar", "QTH": "Quartz"}
_SCIENCE, _SKY, _FLUXSTD, _UNASSIGNED = 1, 2, 3, 4
_TYPE_CYCLE = (_SCIENCE, _SCIENCE, _SKY, _SCIENCE, _FLUXSTD, _UNASSIGNED)
_DARK_TYPES = ("BIAS", "DARK")
CCD_EXPTIME = 30.0  # [s] write_pfsa's default exposure
NIR_READS, NIR_FRAME_TIME = 3, 10.857  # write_pfsb's default ramp: reads, [s] per read

# Header dumps: "KEY=value/comment" separated by "|" or newlines; values that parse as int or float
# become numbers, True/False booleans.  _RAW_CARDS is formatted with the values of one exposure.
_RAW_CARDS = """SIMPLE=True/conforms to FITS standard|BITPIX=8/array data type|NAXIS=0/number of axes
EXTEND=True/|TELESCOP=Subaru 8.2m/Telescope name|INSTRUME=PFS/Instrument name|OBSERVAT=NAOJ/Observatory
OBSERVER=PFS observers/Name(s) of observer(s)|PROP-ID=o25105/Proposal ID|OBS-ALOC=Observation/Allocation
OBS-MOD=SPEC/Observation mode|DATA-TYP={data_type}/Subaru-style exposure type|OBJECT={object}/Target name
FRAMEID={frame_id}/Sequence number in archive|EXP-ID=PFSE{visit:08d}/PFS visit|DATASET=DS000/ID of a dataset
DETECTOR={arm}{spectrograph}/Name of the detector|GAIN={gain}/[e-/ADU] AD conversion factor
DET-TMP={det_tmp}/[K] Detector temperature|DET-ID={det_id}/Subaru/DRP FPA ID for this module and arm
DISPAXIS={dispaxis}/Dispersion axis|DISPERSR=VPH_{arm}_{fringe}_{mid}nm/Disperser|WAVELEN={mid}.0/[nm] Middle
WAV-MIN={wmin}/[nm] Blue edge of the bandpass|WAV-MAX={wmax}/[nm] Red edge of the bandpass|SLIT=PFS/Slit
SLT-LEN=1.05/[arcsec] Fiber diameter|SLT-WID=1.05/[arcsec] Fiber diameter
COMMENT=################################ PFS main IDs/
W_VISIT={visit}/PFS exposure visit number|W_ARM={arm_num}/Spectrograph arm 1=b, 2=r, 3=n, 4=medRed
W_SPMOD={spectrograph}/Spectrograph module. 1-4 at Subaru|W_SITE={site}/PFS DAQ location
W_PFDSGN={design}/pfsDesign, from pfi|W_PFDSNM=fake-0x{design:016x}/pfsDesign name|W_LGTSRC=pfi/Light source
COMMENT=################################ Time cards/
DATE-OBS={date}/[YMD] pre-exposure UTC date|UT={ut}/[HMS] pre-exposure UTC|UT-STR={ut}/[HMS] UTC at start
UT-END={ut_end}/[HMS] UTC at end|HST={hst}/[HMS] HST time|HST-STR={hst}/[HMS] HST at start
HST-END={hst_end}/[HMS] HST at end|LST=10:02:33.120/[HMS] LST|LST-STR=10:02:33.120/[HMS] LST at start
MJD={mjd:.8f}/[d] MJD at start|MJD-STR={mjd:.8f}/[d] MJD at start|MJD-END={mjd_end:.8f}/[d] MJD at end
TIMESYS=UTC/Time system|EXPTIME={exptime!r}/[s] Exposure time|DARKTIME={darktime!r}/[s] Since last reset
COMMENT=################################ Telescope/
RA={ra}/[HMS] RA of telescope pointing|DEC={dec}/[DMS] Dec of telescope pointing
RA2000={ra}/[HMS] RA (J2000) of pointing|DEC2000={dec}/[DMS] Dec (J2000) of pointing
EQUINOX=2000.0/Standard FK5 (years)|RADESYS=FK5/Coordinate system|ALTITUDE={alt:.4f}/[deg] Altitude
ZD={zd:.4f}/[deg] Zenith distance|AZIMUTH={az:.4f}/[deg] Azimuth|AIRMASS={airmass:.3f}/Typical airmass
INSROT={posang:.3f}/[deg] Instrument rotator angle|INR-STR={posang:.3f}/[deg] Rotator at start
INR-END={inr_end:.3f}/[deg] Rotator at end|INST-PA=0.0/[deg] Instrument PA|FOC-POS=Prime/Focus
FOC-VAL=-4.72/[mm] Encoder value of focus|TELFOCUS=P_OPT2/Focus|AUTOGUID=ON/Auto guider on-off
ADC-TYPE=NONE/ADC name|ADC-STR=0.0/ADC position at start|ADC-END=0.0/ADC position at end
M2-POS1=-0.5/[mm] X-position of M2|M2-POS2=-3.1/[mm] Y-position of M2|M2-POS3=-4.72/[mm] Z-position of M2
M2-ANG1=0.0/[arcmin] M2 angle 1|M2-ANG2=0.0/[arcmin] M2 angle 2|M2-ANG3=0.0/[deg] M2 angle 3
DOM-HUM=12.3/[%] Humidity in the dome|DOM-PRS=623.1/[hPa] Dome pressure|DOM-TMP=275.6/[K] Dome temperature
DOM-WND=0.4/[m/s] Wind speed in the dome|OUT-HUM=9.8/[%] Outside humidity|OUT-PRS=623.0/[hPa] Outside
OUT-TMP=274.9/[K] Outside temperature|OUT-WND=4.6/[m/s] Outside wind|SEEING=0.62/[arcsec] FWHM of stars
WEATHER=Fine/Weather condition
COMMENT=################################ Spectrograph and cryostat/
W_ENFCAX=0.0/[mm] FCA focus (optical axis)|W_ENFCAY=0.0/[mm] FCA shift (wavelength)
W_ENFCAZ={dither!r}/[mm] FCA dither (fibre axis)|W_ENFCAU=0.0/[deg] FCA rot U|W_ENFCAV=0.0/[deg] FCA rot V
W_ENFCAW=0.0/[deg] FCA rot W|W_TSHUTR={shutter}/Telescope shutter|W_ENSHTR={shutter}/ENU shutter
W_ENRDA={rda}/Red exchange mechanism|W_ENHXU=0.0/[mm] Hexapod U|W_ENHXV=0.0/[mm] Hexapod V
W_ENHXW=0.0/[mm] Hexapod W|W_ETBENC=281.2/[K] Bench|W_ETCOLL=281.0/[K] Collimator|W_ETSLIT=281.3/[K] Slit
W_ETRAIL=281.1/[K] Rail temperature|W_XPRESS=1.2e-07/[Torr] Cryostat pressure|W_XTDET1={xt1}/[K] Detector 1
W_XTDET2={xt2}/[K] Detector 2|W_XTFRNT=185.5/[K] Front ring|W_XTSHLD=190.2/[K] Radiation shield
W_XTSPDR=160.4/[K] Spider|W_XTCOLD=155.0/[K] Cold strap|W_XCOOLP=112.0/[W] Cooler power|W_XCOOLT=148.5/[K] Tip
W_XHTR1=12.5/[%] Heater 1|W_XHTR2=0.0/[%] Heater 2|W_XIONP=5.1e-08/[Torr] Ion pump|W_XGATEV=open/Gate valve
W_CDROW0=0/First read row|W_CDROWN={last_row}/Last read row|W_SBEMDT=60780.91/[day] Beam configuration time
W_SFPADT=60780.9/[day] Last FPA move time|W_SHEXDT=60770.3/[day] Last hexapod move time
COMMENT=################################ Lamps/"""
_H4_CARDS = """W_H4NRST=1/Number of resets|W_H4NCHN=32/Number of readout channels|W_H4IRP=True/IRP enabled
W_H4IRPN=1/Data:reference pixel ratio|W_H4IRPO=0/Reference pixel offset|W_H4GAIN=1.0/ASIC preamp gain
W_H4GNST=8/ASIC preamp gain setting|W_4FMTVR=3/PFSB format version|W_H4FFMT=3/PFSB format version
W_4SPI13=0/Readout direction bits"""
_PFSCONFIG_CARDS = """ARMS=brn/Exposed arms|DAMD_VER=5/Datamodel version|VARIANT=0/Design variant
PFDSGN0=0/Base design of this variant|W_CAMMSK=30583/Cameras exposed (bit0=b1 ... bit15=m4)
W_INSMSK=0/Instrument status flags|DATA-TYP=META-OBJECT/Subaru data type|TELESCOP=Subaru 8.2m/Telescope name
INSTRUME=PFS/Instrument name|OBSERVER=PFS observers/Name(s) of observer(s)|EQUINOX=2000.0/Equinox"""
_FORMATS = {"fiberId": "J", "cobraId": "J", "tract": "J", "ra": "D", "dec": "D", "catId": "J", "objId": "K",
            "targetType": "J", "pfiNominal": "2E", "pfiCenter": "2E", "fiberStatus": "J", "agId": "J",
            "flag": "J"}


def raw_filename(site: str, category: str, visit: int, spectrograph: int, arm: str) -> str:
    """Return the Subaru archive name of a raw frame, e.g. ``PFSA12345611.fits``."""
    return f"PF{site}{category}{visit:06d}{spectrograph}{ARM_NUMBERS[arm]}.fits"


def pfsconfig_filename(pfs_design_id: int, visit: int) -> str:
    """Return ``pfsConfig-0x%016x-%06d.fits`` for a design id and visit."""
    return f"pfsConfig-0x{pfs_design_id:016x}-{visit:06d}.fits"


def pfsf_filename(visit: int, subset: int = 0) -> str:
    """Return the STARS name of a pfsConfig, ``PFSF%06d%02d.fits``."""
    return f"PFSF{visit:06d}{subset:02d}.fits"


def design_id_for(fiber_ids: Iterable[int], ras: Iterable[float], decs: Iterable[float],
                  variant: int = 0) -> int:
    """Compute a pfsDesignId: SHA-1 of the arcsec-rounded fibre positions, truncated to 63 bits.

    Args:
        fiber_ids: Fibre ids.
        ras: Right ascensions (deg).
        decs: Declinations (deg).
        variant: Design variant; appended to the hash input when non-zero.

    Returns:
        The design id; 0 when every ra and dec is 0 ("no fibres illuminated").
    """
    fids, ra, dec = list(fiber_ids), np.asarray(list(ras), float), np.asarray(list(decs), float)
    if np.all(ra == 0.0) and np.all(dec == 0.0):
        return 0

    def arcsec(value: float) -> float:
        return value if np.isnan(value) else int(value * 3600.0 + 0.5) / 3600.0

    parts = [f"{int(f)} {arcsec(r):0.6f} {arcsec(d):0.6f}" for f, r, d in zip(fids, ra, dec, strict=True)]
    if variant != 0:
        parts.append(str(variant))
    return int(hashlib.sha1(str(parts).encode()).hexdigest(), 16) & 0x7FFFFFFFFFFFFFFF


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *(int(k) & 0xFFFFFFFF for k in keys)])


def _field(visit: int, seed: int) -> tuple[float, float, float]:
    """Boresight (ra, dec, posang) of a visit: near COSMOS, moving a little per visit."""
    rng = _rng(seed, visit, 77)
    return 150.1 + rng.uniform(-0.5, 0.5), 2.2 + rng.uniform(-0.5, 0.5), round(rng.uniform(-90, 90), 2)


def _sexagesimal(ra: float, dec: float) -> tuple[str, str]:
    return (Angle(ra, "deg").to_string(unit="hourangle", sep=":", precision=3, pad=True),
            Angle(dec, "deg").to_string(unit="deg", sep=":", precision=2, pad=True, alwayssign=True))


def _clock(t: Time) -> str:
    text: str = t.strftime("%H:%M:%S.%f")  # a scalar Time gives one string
    return text[:12]


def _parse_cards(table: str) -> list[tuple[str, Any, str]]:
    cards = []
    for item in table.replace("\n", "|").split("|"):
        key, _, rest = item.partition("=")
        text, _, comment = rest.partition("/")
        value: Any = {"True": True, "False": False}.get(text, text)
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                pass
        cards.append((key, value, comment))
    return cards


def _header(cards: Iterable[tuple[str, Any, str]]) -> fits.Header:
    header = fits.Header()
    for key, value, comment in cards:
        header.append((key, value) if key == "COMMENT" else (key, value, comment), bottom=True)
    return header


def _apply(header: fits.Header, extra: Mapping[str, Any] | None, drop: Iterable[str]) -> None:
    for key, value in (extra or {}).items():
        header[key] = value
    for key in drop:
        header.remove(key, ignore_missing=True, remove_all=True)


def _finish(hdus: Sequence[Any], path: str | Path, when: Time) -> Path:
    """Write ``hdus`` with CHECKSUM/DATASUM on every HDU, stamped with ``when`` (reproducible bytes)."""
    path = Path(path)
    first, final = io.BytesIO(), io.BytesIO()
    fits.HDUList(list(hdus)).writeto(first, checksum=False)
    first.seek(0)
    with fits.open(first, memmap=False, disable_image_compression=True) as hdul:
        for hdu in hdul:
            hdu.add_checksum(when=f"HDU checksum updated {when.strftime('%Y-%m-%dT%H:%M:%S')}")
        hdul.writeto(final, checksum=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(final.getvalue())
    return path


@functools.lru_cache(maxsize=256)
def _times(mjd: float, exptime: float) -> dict[str, Any]:
    """The time cards' values of an exposure (astropy Time is slow: a night's frames share them)."""
    start, end = Time(mjd, format="mjd", scale="utc"), Time(mjd + exptime / 86400, format="mjd", scale="utc")
    hst = TimeDelta(10 / 24, format="jd")
    return dict(date=start.strftime("%Y-%m-%d"), ut=_clock(start), ut_end=_clock(end), hst=_clock(start - hst),
                hst_end=_clock(end - hst), mjd_end=end.mjd)


@functools.lru_cache(maxsize=256)
def _pointing(visit: int, seed: int) -> dict[str, Any]:
    """The telescope cards' values of a visit (the same for every camera)."""
    ra, dec, posang = _field(visit, seed)
    rng = _rng(seed, visit, 99)
    alt = float(rng.uniform(45.0, 85.0))
    ra_s, dec_s = _sexagesimal(ra, dec)
    return dict(ra=ra_s, dec=dec_s, alt=alt, zd=90.0 - alt, az=float(rng.uniform(0, 360)),
                airmass=1.0 / np.sin(np.radians(alt)), posang=posang, inr_end=posang + 0.012)


def raw_cards(*, category: str, visit: int, spectrograph: int, arm: str, pfs_design_id: int, site: str,
              mjd: float, exptime: float, darktime: float, data_type: str, dither_mm: float, seed: int,
              rows: int) -> list[tuple[str, Any, str]]:
    """The ~150 cards (key, value, comment) of a CCD or NIR raw's primary header as the DAQ writes it."""
    nir, dark = arm == "n", data_type in _DARK_TYPES
    lit = {"COMPARISON": {"NEO", "HGA"}, "FLAT": {"QTH"}}.get(data_type, set())
    fringe, mid, wmin, wmax = _SPECTRO[arm]
    values = dict(
        data_type=data_type, object=data_type if dark or lit else f"COSMOS field {visit % 7}", visit=visit,
        frame_id=raw_filename(site, category, visit, spectrograph, arm)[:-5], arm=arm,
        spectrograph=spectrograph,
        gain=1.0 if nir else 1.24, det_tmp=80.0 if nir else 163.2, det_id=camera_id(arm, spectrograph),
        dispaxis=1 if nir else 2, fringe=fringe, mid=mid, wmin=wmin, wmax=wmax, arm_num=ARM_NUMBERS[arm],
        site=site, design=int(pfs_design_id), mjd=mjd, exptime=float(exptime), darktime=float(darktime),
        dither=float(dither_mm), shutter="closed" if dark else "open", rda="med" if arm == "m" else "low",
        xt1=80.0 if nir else 163.1, xt2=80.1 if nir else 163.3, last_row=rows - 1,
        **_times(mjd, exptime), **_pointing(visit, seed))
    cards = _parse_cards(_RAW_CARDS.format(**values))
    for code, name in _LAMPS.items():
        cards.append((f"W_AIT{code}", code in lit, f"{name} lamp on"))
        cards.append((f"W_CL{code[:2]}T", exptime if code in lit else 0.0, f"[s] {name} lamp on-time"))
    if arm in "rm":
        cards.append(("W_SGRTDT", 60780.91, "[day] Last grating move time"))
    return cards


def _raw_primary(**values: Any) -> fits.Header:
    return _header(raw_cards(**values))


def default_raw_cards(arm: str, *, visit: int, spectrograph: int, pfs_design_id: int, site: str, mjd: float,
                      dither_mm: float, seed: int, full_size: bool) -> tuple[list[tuple[str, Any, str]], Time]:
    """The primary cards write_pfsa (arms b, r, m) or write_pfsb (n) gives a frame with their defaults
    (an OBJECT exposure), and the time its CHECKSUM comment carries."""
    if arm == "n":
        exptime = NIR_READS * NIR_FRAME_TIME
        cards = raw_cards(category="B", visit=visit, spectrograph=spectrograph, arm=arm, pfs_design_id=pfs_design_id,
                          site=site, mjd=mjd, exptime=exptime, darktime=exptime, data_type="OBJECT",
                          dither_mm=dither_mm, seed=seed, rows=4096 if full_size else 64)
        return cards, _stamp(mjd, exptime + 20.0)
    cards = raw_cards(category="A", visit=visit, spectrograph=spectrograph, arm=arm, pfs_design_id=pfs_design_id,
                      site=site, mjd=mjd, exptime=CCD_EXPTIME, darktime=CCD_EXPTIME + 2.1, data_type="OBJECT",
                      dither_mm=dither_mm, seed=seed, rows=4300 if full_size else 86)
    return cards, _stamp(mjd, CCD_EXPTIME + 45.0)


def _stamp(mjd: float, seconds: float) -> Time:
    """When the DAQ wrote a frame: ``seconds`` after the exposure started."""
    return Time(mjd + seconds / 86400.0, format="mjd", scale="utc")


def _compressed(data: np.ndarray, name: str, header: fits.Header | None = None) -> fits.CompImageHDU:
    hdu = fits.CompImageHDU(data=data, header=header, compression_type="RICE_1")
    hdu.header["EXTNAME"] = name  # set after construction to keep the DAQ's lower-case "image"
    return hdu


def _ccd_image_cards(header: fits.Header) -> fits.Header:
    for key, value, comment in (("INHERIT", True, "Recommend using PHDU cards"), ("BUNIT", "ADU", "Units"),
                                ("BLANK", -32768, "Unscaled value used for invalid pixels"),
                                ("BIN-FCT1", 1, "X-axis binning"), ("BIN-FCT2", 1, "Y-axis binning")):
        header[key] = (value, comment)
    return header


def write_pfsa(path: str | Path, *, visit: int, spectrograph: int, arm: str, pfs_design_id: int,
               site: str = "S", mjd: float = 60800.5, exptime: float = CCD_EXPTIME, data_type: str = "OBJECT",
               dither_mm: float = 0.0, full_size: bool = False, seed: int = 0,
               extra_cards: Mapping[str, Any] | None = None, drop_cards: Iterable[str] = (),
               simulator_layout: bool = False) -> Path:
    """Write a CCD raw (arm b, r or m) as the DAQ does and return its path.

    Args:
        path: Output file.
        visit: W_VISIT.
        spectrograph: W_SPMOD (1-4).
        arm: ``b``, ``r`` or ``m``.
        pfs_design_id: W_PFDSGN.
        full_size: Write the real 4300 x 4416 frame instead of 86 x 96.
        extra_cards: Cards set (overriding) on the header that carries the cards.
        drop_cards: Cards removed from that header.
        simulator_layout: Put every card in the image HDU and leave the primary empty.
    """
    if arm not in ("b", "r", "m"):
        raise ValueError(f"PFSA files are for arms b, r, m, not {arm!r}")
    rows, cols = (4300, 4416) if full_size else (86, 96)
    header = _raw_primary(category="A", visit=visit, spectrograph=spectrograph, arm=arm,
                          pfs_design_id=pfs_design_id, site=site, mjd=mjd, exptime=exptime,
                          darktime=0.0 if data_type == "BIAS" else exptime + 2.1, data_type=data_type,
                          dither_mm=dither_mm, seed=seed, rows=rows)
    rng = _rng(seed, visit, spectrograph, ARM_NUMBERS[arm], 1)
    offset = (visit * 37 + spectrograph * 101 + ARM_NUMBERS[arm] * 211 + seed * 7) % 400
    image = 1000.0 + offset + rng.normal(0.0, 4.0, size=(rows, cols))
    if data_type not in _DARK_TYPES:  # fibre traces run along columns (DISPAXIS=2)
        for col in range(cols // 12, cols, cols // 6):
            image[:, col:col + 2] += 800.0 + 200.0 * np.sin(np.linspace(0, 3, rows))[:, None]
    pixels = np.clip(np.rint(image), 0, 65535).astype(np.uint16)
    when = _stamp(mjd, exptime + 45.0)
    if simulator_layout:
        cards = fits.Header([card for card in header.cards if card.keyword not in _STRUCTURAL])
        _apply(cards, extra_cards, drop_cards)
        return _finish([fits.PrimaryHDU(), _compressed(pixels, "image", _ccd_image_cards(cards))], path, when)
    _apply(header, extra_cards, drop_cards)
    image_hdu = _compressed(pixels, "image", _ccd_image_cards(fits.Header()))
    return _finish([fits.PrimaryHDU(header=header), image_hdu], path, when)


def write_pfsb(path: str | Path, *, visit: int, spectrograph: int, pfs_design_id: int, site: str = "S",
               mjd: float = 60800.5, n_reads: int = NIR_READS, frame_time: float = NIR_FRAME_TIME,
               data_type: str = "OBJECT",
               dither_mm: float = 0.0, full_size: bool = False, seed: int = 0, irp_ratio: int = 1,
               extra_cards: Mapping[str, Any] | None = None, drop_cards: Iterable[str] = ()) -> Path:
    """Write an H4RG up-the-ramp file (arm n, format version 3) and return its path.

    Frames are 4096 x 4096 with ``full_size``, else 64 x 64; REF frames have 1/``irp_ratio`` of the
    columns (``W_H4IRPN``).  Pixels, described in the frame obs_pfs rotates NIR reads into
    (``np.rot90(file, 1)``), with ``k`` the band of 1/32 of the columns a pixel is in:

    - ``IMAGE_n = pedestal + n * flux + drift_n[row // irp_ratio, k]``;
    - ``REF_n = 8800 + offset + pattern[column] + drift_n[row, k]``;

    ``drift_n`` is a per-read level shared by a read's IMAGE and REF frames (as the readout's common
    noise is), different for every read; ``pattern`` a fixed level per REF column.  obs_pfs's reference
    correction (``PfsRaw.getCorrectedNirRead``) takes out exactly ``drift_n`` plus the band's mean
    pattern, so the corrected CDS image is exactly ``(N - 1) * flux``, while the plain
    ``IMAGE_N - IMAGE_1`` also holds ``drift_N - drift_1``.
    """
    if n_reads < 1:
        raise ValueError(f"n_reads must be >= 1, not {n_reads}")
    size, exptime = (4096 if full_size else 64), n_reads * frame_time
    if irp_ratio < 1 or size % irp_ratio:
        raise ValueError(f"irp_ratio must divide the frame size {size}, not {irp_ratio}")
    header = _raw_primary(category="B", visit=visit, spectrograph=spectrograph, arm="n",
                          pfs_design_id=pfs_design_id, site=site, mjd=mjd, exptime=exptime, darktime=exptime,
                          data_type=data_type, dither_mm=dither_mm, seed=seed, rows=size)
    for card in _header([("COMMENT", "################################ H4RG ASIC", ""),
                         ("W_H4NRED", n_reads, "Number of reads"), *_parse_cards(_H4_CARDS),
                         ("W_FRMTIM", frame_time, "[s] Frame time"), ("W_H4FRMT", frame_time, "[s] Frame"),
                         ("W_SRH4", 18660 + spectrograph, "H4RG serial"),
                         ("W_SRASIC", 2000 + spectrograph, "ASIC serial")]).cards:
        header.append(card, bottom=True)
    header["W_H4IRPN"], header["W_H4IRPO"] = irp_ratio, 0 if irp_ratio == 1 else 1
    _apply(header, extra_cards, drop_cards)
    rng = _rng(seed, visit, spectrograph, 3, 2)
    offset = (visit * 37 + spectrograph * 101 + seed * 7) % 400
    pedestal = 9000 + offset + rng.integers(0, 40, size=(size, size))
    flux = rng.integers(2, 30, size=(size, size))
    if data_type not in _DARK_TYPES:  # fibre traces run along rows (DISPAXIS=1)
        flux[size // 12::size // 6, :] += 300
    drift = rng.integers(0, 60, size=(n_reads + 1, size // irp_ratio, 32))  # [read, rotated REF row, band]
    if pedestal.max() + n_reads * flux.max() + drift.max() > 65535:
        raise ValueError(f"{n_reads} reads would saturate the synthetic ramp")
    pattern = rng.integers(0, 25, size=size)  # per rotated REF column

    def to_file(rotated: np.ndarray) -> np.ndarray:  # inverse of obs_pfs's rotation of n-arm reads
        result: np.ndarray = np.ascontiguousarray(np.rot90(rotated, -1)).astype(np.uint16)
        return result

    def ref_for(n: int) -> np.ndarray:
        return to_file(8800 + offset + pattern[np.newaxis, :] + np.repeat(drift[n], size // 32, axis=1))

    def image_for(n: int) -> np.ndarray:
        level = np.repeat(np.repeat(drift[n], irp_ratio, axis=0), size // 32, axis=1)
        result: np.ndarray = (pedestal + n * flux).astype(np.uint16) + to_file(level)
        return result

    hdus: list[Any] = [fits.PrimaryHDU(header=header),
                       _compressed((pedestal - 150).astype(np.uint16), "RESET_IMAGE_1"),
                       _compressed(ref_for(0), "RESET_REF_1")]
    for n in range(1, n_reads + 1):
        cards = _header([("INHERIT", True, "Recommend using PHDU cards"), ("W_H4READ", n, "Read number"),
                         ("W_H4GRUP", 1, "Group number")])
        hdus += [_compressed(image_for(n), f"IMAGE_{n}", cards), _compressed(ref_for(n), f"REF_{n}")]
    return _finish(hdus, path, _stamp(mjd, exptime + 20.0))


def write_metrology(path: str | Path, *, visit: int, sequence: int = 0) -> Path:
    """Write a small PFSC-style MCS frame (image in the primary); pfswatchd does not ingest these."""
    mjd = 60800.45 + sequence * 1e-4
    header = _header([("TELESCOP", "Subaru 8.2m", ""), ("INSTRUME", "PFS", ""), ("DETECTOR", "MCS", ""),
                      ("DATA-TYP", "ACQUISITION", ""), ("FRAMEID", f"PFSC{visit:06d}{sequence:02d}", ""),
                      ("EXP-ID", f"PFSE{visit:08d}", ""), ("W_VISIT", visit, "PFS visit"),
                      ("W_MCSSEQ", sequence, "MCS frame in visit"), ("MJD-STR", mjd, "[d] MJD at start"),
                      ("EXPTIME", 0.8, "[s] Exposure time"), ("W_SITE", "S", "PFS DAQ location")])
    data = (900 + _rng(0, visit, sequence, 3).normal(0, 3, (48, 64))).astype(np.uint16)
    return _finish([fits.PrimaryHDU(data=data, header=header)], path, Time(mjd, format="mjd"))
