"""In-memory raw PFS frames, as returned by ``butler.get("raw", ...)``: obs_pfs's PfsRaw interface without afw.

`PfsRaw` has the methods, properties and meanings of obs_pfs's ``lsst.obs.pfs.raw.PfsRaw`` (obs_pfs
fe944332, raw.py), so that a script written for the PFS pipeline environment runs here too.  One file
is one raw: a CCD frame (PFSA, arms b/r/m) or a whole NIR up-the-ramp exposure (PFSB, arm n).

Same as obs_pfs:

- NIR reads come rotated by the detector's nQuarter (3 for the n arm: afw ``rotateImageBy90(image, 3)``,
  i.e. ``np.rot90(array, 1)``), BLANK NaNs set to 0, as float32; ``doRotate=False`` gives the file frame.
- ``getCorrectedNirRead`` (and so ``getImage``, ``getNirImage``, ``getExposure`` and the ``ramp``
  component of a ramp) subtracts the reference level derived from the read's REF frame by obs_pfs's
  rule (`pfswatchd.butler.rawpixels`); ``getImage`` of a ramp is corrected last read minus corrected
  first read (CDS).
- Read numbers: ``getNirRead``/``getCorrectedNirRead`` are 1-based; ``getRawDataImage``/``getRawIrpImage``
  0-based, negative from the end.  bbox: ``getNirRead`` in the file frame (before rotation),
  ``getCorrectedNirRead``/``getNirImage`` in the rotated frame, ``getCcdImage`` in the file frame.
- CCD frames read with a DAQ FPGA version <= 0x0070 (``W_VERSIONS_FPGA``) get the one-pixel shift.

Different, because the afw types are C++ (not on PyPI): images, exposures, boxes, angles and visit
information are the pure-Python stand-ins of `images`, `geom` and `visitinfo`, with afw's method names
(no WCS, PSF, mask planes; ``getDate()`` is an astropy Time); ``metadata`` is an ``astropy.io.fits.Header``
(not a PropertyList; header corrections applied as obs_pfs applies them, without the ``HIERARCH ASTRO
METADATA FIX`` provenance cards: ``correctionFile`` names the file); the detector carries no amplifiers or
gains; ``obsInfo`` is a minimal ObservationInfo (`obsinfo`).  Also different on purpose: obs_pfs's
correction fails for IRP ratio > 1, where pfswatchd expands the REF frame as obs_pfs's ISR does; and
``getCcdImage(bbox)`` works (obs_pfs's raises TypeError).  Errors are `PfsRawError`, a RuntimeError (as
obs_pfs raises) that is also a ValueError, with the file name and what was expected.

Files are opened with ``memmap=False``; only the HDUs needed are read and files are closed before
returning.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from pfswatchd.files.corrections import HeaderCorrections
from pfswatchd.files.names import ARM_BY_NUMBER

from . import rawpixels
from .camera import Detector, camera_id
from .geom import Angle, Box2I, Extent2I, Point2I, SpherePoint
from .images import Exposure, ExposureInfo, FilterLabel, Image, MaskedImage
from .obsinfo import corrected, observation_info
from .visitinfo import Observatory, VisitInfo, Weather, visit_info

__all__ = ["Angle", "Box2I", "Detector", "Exposure", "ExposureInfo", "Extent2I", "FilterLabel", "Image",
           "MaskedImage", "Observatory", "PfsRaw", "PfsRawError", "Point2I", "SpherePoint", "VisitInfo", "Weather",
           "camera_id"]

_STRUCTURAL = ("XTENSION", "SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "PCOUNT", "GCOUNT",
               "EXTNAME", "BZERO", "BSCALE", "BLANK", "CHECKSUM", "DATASUM", "COMMENT", "HISTORY", "")
_IMAGE_TYPES = ("IMAGE", "REF")
_CATEGORIES = (None, "S", "F", "L", "J")  # obs_pfs: PFS, PFS-F (simulator), PFS-L (development), J


class PfsRawError(RuntimeError, ValueError):
    """A raw cannot give what was asked (a CCD asked for a read, a read out of range, an unexpected HDU)."""


class PfsRaw:
    """A raw PFS file (CCD frame or NIR ramp), read lazily.

    Args:
        path: The FITS file.
        pfsCategory: obs_pfs's instrument category: None (or "S") for PFS, "F" for the simulator
            (PFS-F), "L" for the development instrument (PFS-L), "J" (obs_pfs's fourth).  Kept for the
            interface; obs_pfs uses it to choose a camera description.
        dataId: The butler data ID of the dataset, as a plain dict (pfswatchd's addition; None outside a butler).
        corrections: Where header correction files are looked for (pfswatchd's addition).  None: as obs_pfs's
            ``fix_header(metadata, translator_class=PfsTranslator)``, ``$METADATA_CORRECTIONS_PATH`` and then
            obs_pfs's own ``corrections/`` when obs_pfs is importable.  The correction is applied to
            ``metadata`` itself, so ``obsInfo``, ``visitInfo`` and the exposure see the corrected cards;
            ``correctionFile`` says which file was applied (None if none).

    Raises:
        PfsRawError: If the file has no PFS raw header.
        TypeError: If ``pfsCategory`` is not one of obs_pfs's categories (e.g. a data ID passed in its place,
            which is what pfswatchd's PfsRaw took second before it followed obs_pfs).
    """

    def __init__(self, path: str | Path, pfsCategory: str | None = None, *,
                 dataId: Mapping[str, Any] | None = None, corrections: HeaderCorrections | None = None) -> None:
        if pfsCategory not in _CATEGORIES:
            raise TypeError(f"pfsCategory must be one of {_CATEGORIES}, not {pfsCategory!r} "
                            "(the data ID, if that is what this is, goes in dataId=)")
        self.path = Path(path)
        self.pfsCategory = pfsCategory
        self.dataId: dict[str, Any] | None = dict(dataId) if dataId is not None else None
        with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdul:
            header = hdul[0].header.copy()
            if "INSTRUME" not in header and len(hdul) > 1:
                for card in hdul[1].header.cards:
                    if card.keyword not in _STRUCTURAL:
                        header[card.keyword] = (card.value, card.comment)
        self.correctionFile = corrected(header, self.path,
                                        HeaderCorrections.standard() if corrections is None else corrections)
        self.metadata = header
        for key in ("W_ARM", "W_SPMOD", "W_VISIT"):
            if key not in header:
                raise PfsRawError(f"{self.path.name}: not a PFS raw, header has no {key}")
        value = header["W_ARM"]
        arm = value.strip() if isinstance(value, str) else ARM_BY_NUMBER.get(int(value), "")
        if arm not in ("b", "r", "n", "m"):
            raise PfsRawError(f"{self.path.name}: W_ARM={value!r} is not an arm (1-4 or b, r, n, m)")
        self._arm = arm

    def __repr__(self) -> str:
        return f"PfsRaw({str(self.path)!r}, dataId={self.dataId!r})"

    # -- header-level facts ------------------------------------------------------------------------------

    def getMetadata(self) -> fits.Header:
        """Return the primary header (merged with the image header for the simulator layout)."""
        return self.metadata

    @property
    def arm(self) -> str:
        """The arm letter (``b``, ``r``, ``n`` or ``m``); W_ARM may be a number or a letter (pfswatchd's addition)."""
        return self._arm

    def isNir(self) -> bool:
        """Return True for an H4RG ramp (W_ARM == 3)."""
        return self.arm == "n"

    def isCcd(self) -> bool:
        """Return True for a CCD frame."""
        return not self.isNir()

    @property
    def detector(self) -> Detector:
        """The camera that took this raw."""
        arm, spectrograph = self.arm, int(self.metadata["W_SPMOD"])
        return Detector(name=f"{arm}{spectrograph}", id=camera_id(arm, spectrograph), arm=arm,
                        spectrograph=spectrograph, serial=str(self.metadata.get("DETECTOR", "")))

    @functools.cached_property
    def obsInfo(self) -> Any:
        """The raw's astro-metadata-translator ``ObservationInfo`` (minimal; see `pfswatchd.butler.obsinfo`)."""
        return observation_info(self.metadata, self.path.name)

    @functools.cached_property
    def visitInfo(self) -> VisitInfo:
        """Visit-level facts with afw's getters (``getExposureTime()``, ``getBoresightRaDec()``, ...)."""
        return visit_info(self.obsInfo)

    @functools.cached_property
    def dimensions(self) -> Extent2I:
        """``(width, height)`` of the frame in the file (unrotated), from the image header, without reading pixels."""
        index = self._ccdIndex() if self.isCcd() else 1 + (2 if self._formatVersion() >= 3 else 0)
        with fits.open(self.path, memmap=False, lazy_load_hdus=True, disable_image_compression=True) as hdul:
            header = hdul[index].header
            prefix = "Z" if header.get("ZIMAGE", False) else ""
            return Extent2I(int(header[f"{prefix}NAXIS1"]), int(header[f"{prefix}NAXIS2"]))

    @property
    def xy0(self) -> Point2I:
        """Always (0, 0)."""
        return Point2I(0, 0)

    @property
    def bbox(self) -> Box2I:
        """``Box2I(xy0, dimensions)``."""
        return Box2I(self.xy0, self.dimensions)

    def _card(self, key: str) -> int:
        if self.isCcd() or key not in self.metadata:
            raise PfsRawError(f"{self.path.name}: has no {key} card (a {'CCD frame' if self.isCcd() else 'ramp'})")
        return int(self.metadata[key])

    @property
    def nchan(self) -> int:
        """The number of H4 readout channels (``W_H4NCHN``)."""
        return self._card("W_H4NCHN")

    @property
    def irpN(self) -> int:
        """The ratio of data to interleaved reference pixels (``W_H4IRPN``)."""
        return self._card("W_H4IRPN")

    @property
    def irpOffset(self) -> int:
        """The position of the reference pixel in each block of irpN data pixels (``W_H4IRPO``)."""
        return self._card("W_H4IRPO")

    @property
    def h4Size(self) -> int:
        """The H4RG's size in pixels on a side: 4096."""
        return 4096

    def getH4channelReadOrder(self) -> tuple[int, int]:
        """``(even channels, odd channels)``: 1 where that channel is read right to left (``W_4SPI13`` bits 8, 9)."""
        direction = (self._card("W_4SPI13") & 0x300) >> 8
        return direction & 1, (direction >> 1) & 1

    def getNumReads(self) -> int:
        """Return W_H4NRED for a ramp, 1 for a CCD frame."""
        return int(self.metadata.get("W_H4NRED", 1)) if self.isNir() else 1

    # -- pixels ---------------------------------------------------------------------------------------

    def getImage(self, bbox: Box2I | None = None) -> Image:
        """The CCD frame (`getCcdImage`) or the ramp's corrected CDS image (`getNirImage`)."""
        return self.getNirImage(bbox) if self.isNir() else self.getCcdImage(bbox)

    def getCcdImage(self, bbox: Box2I | None = None) -> Image:
        """The CCD frame as stored (uint16, file frame), with the old-FPGA one-pixel shift undone.

        Raises:
            PfsRawError: For a ramp, or a bbox outside the frame.
        """
        if self.isNir():
            raise PfsRawError(f"{self.path.name}: is a NIR ramp, not a CCD frame; use getNirImage or getNirRead")
        array = self._readHdu(self._ccdIndex())
        if self._oldFpga():
            try:
                rawpixels.fpga_shift(array)
            except ValueError as exc:
                raise PfsRawError(f"{self.path.name}: {exc}") from None
        return self._crop(Image(array), bbox)

    def _oldFpga(self) -> bool:
        value = self.metadata.get("W_VERSIONS_FPGA")
        try:
            return isinstance(value, str) and int(value, 16) <= rawpixels.FPGA_SHIFT_MAX
        except ValueError:
            return False  # obs_pfs: a version it cannot parse means no shift

    def getNirImage(self, bbox: Box2I | None = None) -> Image:
        """The CDS image of a ramp: corrected last read minus corrected first read (the first alone if N == 1)."""
        first = self.getCorrectedNirRead(1, bbox)
        numReads = self.getNumReads()
        if numReads == 1:
            return first
        return self.getCorrectedNirRead(numReads, bbox) - first

    def positiveIndex(self, n: int) -> int:
        """The 0-based read index ``n`` (negative counts from the end) as a non-negative index.

        Raises:
            IndexError: If there is no such read (as obs_pfs, via ``range``).
        """
        self._requireNir("read index")
        return range(self.getNumReads())[n]

    def getRawDataImage(self, readNum: int) -> Image:
        """Read ``readNum`` (0-based, negative from the end) as stored: rotated, NaN as 0, not corrected."""
        return self.getNirRead(self.positiveIndex(readNum) + 1, "IMAGE")

    def getRawIrpImage(self, readNum: int) -> Image:
        """The REF frame of read ``readNum`` (0-based, negative from the end): rotated, NaN as 0."""
        return self.getNirRead(self.positiveIndex(readNum) + 1, "REF")

    def getNirRead(self, readNum: int, imageType: str = "IMAGE", bbox: Box2I | None = None,
                   doRotate: bool = True) -> Image:
        """One read of a ramp as float32 (BLANK NaNs set to 0), rotated to the detector's orientation.

        Args:
            readNum: Read number, 1-based.
            imageType: ``IMAGE`` for the pixels, ``REF`` for the reference pixels.
            bbox: A box in the file (unrotated) frame to read; the whole frame if None.
            doRotate: Turn the read by the detector's nQuarter (3 for the n arm), as obs_pfs does.

        Raises:
            PfsRawError: For a CCD frame, a read out of range, an HDU with an unexpected EXTNAME or a
                bbox outside the frame.
        """
        if imageType not in _IMAGE_TYPES:
            raise PfsRawError(f"imageType must be 'IMAGE' or 'REF', not {imageType!r}")
        self._checkRead(readNum)
        index = 2 * int(readNum) - (1 if imageType == "IMAGE" else 0) + (2 if self._formatVersion() >= 3 else 0)
        array = self._readHdu(index, f"{imageType}_{readNum}").astype(np.float32)
        array[np.isnan(array)] = 0.0
        image = self._crop(Image(array), bbox)
        if not doRotate:
            return image
        return Image(rawpixels.rotate_quarters(image.array, self.detector.getOrientation().getNQuarter()))

    def getCorrectedNirRead(self, readNum: int, bbox: Box2I | None = None) -> Image:
        """Read ``readNum`` (1-based) minus its reference level, rotated; ``bbox`` in the rotated frame.

        The whole frame is corrected (the rule of `pfswatchd.butler.rawpixels`, as obs_pfs) before the
        bbox is cut out.  For IRP ratio > 1 the REF frame is first expanded as obs_pfs's ISR does.

        Raises:
            PfsRawError: As `getNirRead`, or for a REF frame of the wrong shape.
        """
        image = self.getNirRead(readNum, "IMAGE").array
        ref = self.getNirRead(readNum, "REF").array
        try:
            ref = rawpixels.expand_irp(ref, image.shape, int(self.metadata.get("W_H4IRPN", 1)),
                                       f"{self.path.name}: REF_{readNum}")
            corrected = rawpixels.reference_correct(
                image, ref, bad_serial=self.metadata.get("W_SRH4") in rawpixels.BAD_H4_SERIALS)
        except ValueError as exc:
            raise PfsRawError(str(exc) if self.path.name in str(exc) else f"{self.path.name}: {exc}") from None
        return self._crop(Image(corrected), bbox)

    def getResetImage(self) -> Image | None:
        """The RESET_IMAGE_1 frame of a ramp as float32 in the file frame, or None if the file has none.

        pfswatchd's addition (obs_pfs has no accessor for the reset frame).
        """
        self._requireNir("reset frames")
        if self._formatVersion() < 3:
            return None
        return Image(self._readHdu(1, "RESET_IMAGE_1").astype(np.float32))

    def getExposure(self, bbox: Box2I | None = None) -> Exposure:
        """The image as float32 in an `Exposure` with detector, visit information, id, metadata and filter."""
        return self.makeExposure(self.getImage(bbox).convertF())

    def makeExposure(self, image: Image) -> Exposure:
        """``image`` in an `Exposure` with this raw's information (the formatter's ``exposure``; pfswatchd's)."""
        info = ExposureInfo(visitInfo=self.visitInfo, detector=self.detector, id=self.visitInfo.getId(),
                            metadata=self.metadata, filter=FilterLabel(self.arm, self.arm))
        return Exposure(MaskedImage(image), info)

    # -- helpers --------------------------------------------------------------------------------------

    def _formatVersion(self) -> int:
        return int(self.metadata.get("W_4FMTVR", 0))

    def _ccdIndex(self) -> int:
        return 0 if int(self.metadata.get("NAXIS", 0)) > 0 else 1

    def _requireNir(self, what: str) -> None:
        if not self.isNir():
            raise PfsRawError(f"{self.path.name}: {what} exist only in NIR ramps, this is a CCD frame")

    def _checkRead(self, readNum: int) -> None:
        self._requireNir("reads")
        numReads = self.getNumReads()
        if isinstance(readNum, bool) or not isinstance(readNum, int | np.integer) or not 1 <= readNum <= numReads:
            raise PfsRawError(f"{self.path.name}: readNum={readNum!r} is outside the valid range 1..{numReads}")

    def _crop(self, image: Image, bbox: Box2I | None) -> Image:
        if bbox is None:
            return image
        try:
            return image[bbox]
        except (TypeError, ValueError) as exc:
            raise PfsRawError(f"{self.path.name}: {exc}") from None

    def _readHdu(self, index: int, extname: str | None = None) -> np.ndarray:
        """Return the data of HDU ``index``, checking its EXTNAME when given."""
        with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdul:
            try:
                hdu = hdul[index]
            except IndexError:
                raise PfsRawError(f"{self.path.name}: has no HDU {index} (expected {extname})") from None
            if extname is not None and hdu.name.upper() != extname.upper():
                raise PfsRawError(f"{self.path.name}: HDU {index} is {hdu.name!r}, expected {extname!r}")
            if hdu.data is None:
                raise PfsRawError(f"{self.path.name}: HDU {index} has no pixels")
            return np.array(hdu.data)
