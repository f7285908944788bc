"""In-memory raw PFS frames, as returned by ``butler.get("raw", ...)``.

`PfsRaw` mirrors the interface of obs_pfs's ``lsst.obs.pfs.raw.PfsRaw`` with plain numpy and
astropy objects instead of ``lsst.afw``.  One file is one raw: a CCD frame (PFSA, arms b/r/m)
or a whole NIR up-the-ramp exposure (PFSB, arm n).

Differences from obs_pfs, by design:

- no reference-pixel (IRP) correction of NIR reads: ``getImage()`` of a ramp is the plain
  CDS ``IMAGE_N - IMAGE_1`` and ``getNirRead`` returns a read as stored;
- no rotation of NIR reads by the detector's nQuarter (270 degrees for the n arm) and no
  flips: arrays are returned in file orientation;
- no header fix-ups (``astro_metadata_translator.fix_header``), no FPGA one-pixel shift and no
  camera geometry; `Detector` only names the camera.

Files are opened with ``memmap=False``; only the HDUs needed are read and files are closed
before returning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.time import Time

from pfswatchd.files.names import ARM_BY_NUMBER

__all__ = ["Detector", "Exposure", "Image", "PfsRaw", "VisitInfo"]

_STRUCTURAL = ("XTENSION", "SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "PCOUNT", "GCOUNT",
               "EXTNAME", "BZERO", "BSCALE", "BLANK", "CHECKSUM", "DATASUM", "COMMENT", "HISTORY", "")


class Image:
    """A 2-D pixel array with the accessors of ``lsst.afw.image.Image``.

    Args:
        array: The pixels, indexed ``[row, column]``.
    """

    def __init__(self, array: np.ndarray) -> None:
        if array.ndim != 2:
            raise ValueError(f"an Image needs a 2-D array, not {array.ndim}-D")
        self.array = array

    def getArray(self) -> np.ndarray:
        """Return the pixel array."""
        return self.array

    def getDimensions(self) -> tuple[int, int]:
        """Return ``(width, height)``."""
        return self.getWidth(), self.getHeight()

    def getHeight(self) -> int:
        """Return the number of rows."""
        return int(self.array.shape[0])

    def getWidth(self) -> int:
        """Return the number of columns."""
        return int(self.array.shape[1])

    def __repr__(self) -> str:
        return f"Image({self.getWidth()}x{self.getHeight()}, dtype={self.array.dtype})"


@dataclass(frozen=True)
class Detector:
    """The camera that took a raw: ``name`` like ``b1``, ``id`` the obs_pfs camera id."""

    name: str
    id: int
    arm: str
    spectrograph: int
    serial: str = ""

    def getName(self) -> str:
        """Return the camera name, e.g. ``r2``."""
        return self.name

    def getId(self) -> int:
        """Return the camera id (b1=0 r1=1 n1=2 b2=3 ...; m_k = -(id of r_k))."""
        return self.id


@dataclass(frozen=True)
class VisitInfo:
    """Exposure-level facts of a raw; angles in degrees, NaN when the header lacks them."""

    visit: int
    exposure_time: float
    dark_time: float
    date: Time | None
    observation_type: str
    ra: float
    dec: float
    altitude: float
    azimuth: float
    rotator_angle: float
    object_name: str
    pfs_design_id: int | None


@dataclass(frozen=True)
class Exposure:
    """An image with its header, detector, visit information and data ID."""

    image: Image
    metadata: fits.Header = field(repr=False)
    detector: Detector
    visit_info: VisitInfo
    data_id: dict[str, Any] = field(default_factory=dict)

    def getImage(self) -> Image:
        """Return the image."""
        return self.image

    def getMetadata(self) -> fits.Header:
        """Return the FITS header."""
        return self.metadata

    def getDetector(self) -> Detector:
        """Return the detector."""
        return self.detector

    def getInfo(self) -> VisitInfo:
        """Return the visit information."""
        return self.visit_info

    def getDimensions(self) -> tuple[int, int]:
        """Return ``(width, height)`` of the image."""
        return self.image.getDimensions()


def camera_id(arm: str, spectrograph: int) -> int:
    """Return the obs_pfs camera id of ``arm`` and ``spectrograph``."""
    if arm == "m":
        return -(3 * (spectrograph - 1) + 1)
    return 3 * (spectrograph - 1) + "brn".index(arm)


def _float(header: fits.Header, key: str, default: float = math.nan) -> float:
    value = header.get(key)
    try:
        return float(value) if value is not None and value != "" else default
    except (TypeError, ValueError):
        return default


def _angle(value: Any, unit: str) -> float:
    """Degrees from a sexagesimal string in ``unit``, or from a number already in degrees."""
    if value is None or value == "":
        return math.nan
    try:
        return float(Angle(value, unit=unit).deg) if isinstance(value, str) else float(value)
    except (ValueError, TypeError):
        return math.nan


class PfsRaw:
    """A raw PFS file (CCD frame or NIR ramp), read lazily.

    Args:
        path: The FITS file.
        data_id: The butler data ID of the dataset, as a plain dict.
        readNum: Select one NIR read (1-indexed): `getImage` then returns that read instead of
            the CDS image.  This is how the butler's ``readNum`` parameter is applied.

    Raises:
        ValueError: If the file has no PFS raw header or ``readNum`` is not valid for it.
    """

    def __init__(self, path: str | Path, data_id: Mapping[str, Any] | None = None, *,
                 readNum: int | None = None) -> None:
        self.path = Path(path)
        self.dataId: dict[str, Any] | None = dict(data_id) if data_id is not None else None
        with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdul:
            header = hdul[0].header.copy()
            if "INSTRUME" not in header and len(hdul) > 1:
                for card in hdul[1].header.cards:
                    if card.keyword not in _STRUCTURAL:
                        header[card.keyword] = (card.value, card.comment)
        self.metadata = header
        for key in ("W_ARM", "W_SPMOD", "W_VISIT"):
            if key not in header:
                raise ValueError(f"{self.path.name}: not a PFS raw, header has no {key}")
        value = header["W_ARM"]
        arm = value.strip() if isinstance(value, str) else ARM_BY_NUMBER.get(int(value), "")
        if arm not in ("b", "r", "n", "m"):
            raise ValueError(f"{self.path.name}: W_ARM={value!r} is not an arm (1-4 or b, r, n, m)")
        self._arm = arm
        self.readNum: int | None = None
        if readNum is not None:
            self._checkRead(readNum)
            self.readNum = int(readNum)

    def __repr__(self) -> str:
        return f"PfsRaw({str(self.path)!r}, dataId={self.dataId!r})"

    def getMetadata(self) -> fits.Header:
        """Return the primary header (merged with the image header for the simulator layout)."""
        return self.metadata

    @property
    def arm(self) -> str:
        """The arm letter (``b``, ``r``, ``n`` or ``m``); W_ARM may be a number or a letter."""
        return self._arm

    def isNir(self) -> bool:
        """Return True for an H4RG ramp (W_ARM == 3)."""
        return self.arm == "n"

    def isCcd(self) -> bool:
        """Return True for a CCD frame."""
        return not self.isNir()

    def getNumReads(self) -> int:
        """Return W_H4NRED for a ramp, 1 for a CCD frame."""
        return int(self.metadata.get("W_H4NRED", 1)) if self.isNir() else 1

    def _checkRead(self, readNum: int) -> None:
        if not self.isNir():
            raise ValueError(f"{self.path.name}: readNum applies only to NIR ramps, this is a CCD frame")
        numReads = self.getNumReads()
        if not 1 <= int(readNum) <= numReads:
            raise ValueError(f"{self.path.name}: readNum={readNum} is outside the valid range 1..{numReads}")

    def _readHdu(self, index: int, extname: str | None = None) -> np.ndarray:
        """Return the data of HDU ``index``, checking its EXTNAME when given."""
        with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdul:
            try:
                hdu = hdul[index]
            except IndexError:
                raise ValueError(f"{self.path.name}: has no HDU {index} (expected {extname})") from None
            if extname is not None and hdu.name.upper() != extname.upper():
                raise ValueError(f"{self.path.name}: HDU {index} is {hdu.name!r}, expected {extname!r}")
            if hdu.data is None:
                raise ValueError(f"{self.path.name}: HDU {index} has no pixels")
            return np.array(hdu.data)

    def _imageIndex(self) -> int:
        return 0 if int(self.metadata.get("NAXIS", 0)) > 0 else 1

    def getNirRead(self, readNum: int, imageType: str = "IMAGE") -> Image:
        """Return one read of a ramp as float32 (BLANK NaNs set to 0).

        Args:
            readNum: Read number, 1-indexed.
            imageType: ``IMAGE`` for the pixels, ``REF`` for the reference pixels.

        Raises:
            ValueError: For a CCD frame, a read out of range, or an HDU with an unexpected EXTNAME.
        """
        if imageType not in ("IMAGE", "REF"):
            raise ValueError(f"imageType must be 'IMAGE' or 'REF', not {imageType!r}")
        self._checkRead(readNum)
        index = 2 * int(readNum) - (1 if imageType == "IMAGE" else 0)
        if int(self.metadata.get("W_4FMTVR", 0)) >= 3:
            index += 2
        return Image(self._toFloat(self._readHdu(index, f"{imageType}_{readNum}")))

    @staticmethod
    def _toFloat(array: np.ndarray) -> np.ndarray:
        result = array.astype(np.float32)
        result[np.isnan(result)] = 0.0
        return result

    def getResetImage(self) -> Image | None:
        """Return the RESET_IMAGE_1 frame of a ramp as float32, or None if the file has none."""
        if not self.isNir():
            raise ValueError(f"{self.path.name}: reset frames exist only in NIR ramps")
        if int(self.metadata.get("W_4FMTVR", 0)) < 3:
            return None
        return Image(self._toFloat(self._readHdu(1, "RESET_IMAGE_1")))

    def getImage(self) -> Image:
        """Return the CCD frame as stored (uint16), or for a ramp the float32 CDS image.

        The CDS image is ``IMAGE_N - IMAGE_1`` (``IMAGE_1`` when N == 1).  When a read was
        selected with ``readNum`` that read is returned instead.
        """
        if self.isCcd():
            return Image(self._readHdu(self._imageIndex()))
        if self.readNum is not None:
            return self.getNirRead(self.readNum)
        numReads = self.getNumReads()
        first = self.getNirRead(1).array
        if numReads == 1:
            return Image(first)
        return Image(self.getNirRead(numReads).array - first)

    def getDimensions(self) -> tuple[int, int]:
        """Return ``(width, height)`` of the image without reading pixels (ZNAXIS1/2 if compressed)."""
        if self.isCcd():
            index = self._imageIndex()
        elif int(self.metadata.get("W_4FMTVR", 0)) >= 3:
            index = 3
        else:
            index = 1
        with fits.open(self.path, memmap=False, lazy_load_hdus=True, disable_image_compression=True) as hdul:
            header = hdul[index].header
            prefix = "Z" if header.get("ZIMAGE", False) else ""
            return int(header[f"{prefix}NAXIS1"]), int(header[f"{prefix}NAXIS2"])

    @property
    def detector(self) -> Detector:
        """The camera that took this raw."""
        arm, spectrograph = self.arm, int(self.metadata["W_SPMOD"])
        return Detector(name=f"{arm}{spectrograph}", id=camera_id(arm, spectrograph), arm=arm,
                        spectrograph=spectrograph, serial=str(self.metadata.get("DETECTOR", "")))

    @property
    def visitInfo(self) -> VisitInfo:
        """Visit-level facts from the header (times from MJD-STR, or DATE-OBS when it is missing)."""
        header = self.metadata
        scale = str(header.get("TIMESYS", "UTC")).strip().lower()
        scale = scale if scale in Time.SCALES else "utc"
        date: Time | None = None
        if "MJD-STR" in header:
            date = Time(float(header["MJD-STR"]), format="mjd", scale=scale)
        elif header.get("DATE-OBS"):
            date = Time(header["DATE-OBS"], scale=scale)
        data_type = str(header.get("DATA-TYP", header.get("IMAGETYP", "UNKNOWN"))).strip()
        observation_type = "science" if data_type.lower() == "object" else data_type.lower()
        exposure_time = _float(header, "EXPTIME", 0.0)
        design = header.get("W_PFDSGN")
        if isinstance(design, str):
            design = int(design, 0)
        return VisitInfo(
            visit=int(header["W_VISIT"]), exposure_time=exposure_time,
            dark_time=_float(header, "DARKTIME", exposure_time), date=date, observation_type=observation_type,
            ra=_angle(header.get("RA2000"), "hourangle"), dec=_angle(header.get("DEC2000"), "deg"),
            altitude=_float(header, "ALTITUDE"), azimuth=_float(header, "AZIMUTH"),
            rotator_angle=_float(header, "INSROT"),
            object_name=str(header.get("OBJECT") or header.get("IMAGETYP") or "UNKNOWN").strip(),
            pfs_design_id=None if design is None else int(design),
        )

    def getExposure(self) -> Exposure:
        """Return the image with header, detector, visit information and data ID."""
        return Exposure(image=self.getImage(), metadata=self.metadata.copy(), detector=self.detector,
                        visit_info=self.visitInfo, data_id=dict(self.dataId or {}))

    def withReadNum(self, readNum: int | None) -> PfsRaw:
        """Return a copy of this raw with ``readNum`` selected (None: the CDS image)."""
        return PfsRaw(self.path, self.dataId, readNum=readNum)
