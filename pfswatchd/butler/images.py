"""Stand-ins for the ``lsst.afw.image`` types obs_pfs's PfsRaw returns: Image, MaskedImage, Exposure and its info.

afw is C++ and not on PyPI.  These classes carry the calls a script written against obs_pfs makes on
what ``raw.getImage()``, ``raw.getExposure()`` and ``butler.get("raw.exposure", ...)`` return
(``image.array``, ``image.getBBox()``, ``image[bbox]``, ``exposure.getInfo().getVisitInfo()``,
``exposure.getMaskedImage().getImage()``, ``exposure.getFilter().bandLabel``, ...), with afw's names and
meanings, over numpy arrays.  They are not afw types: no WCS, PSF, photometric calibration, mask
planes or FITS writing, and ``isinstance(x, lsst.afw.image.Exposure)`` is False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .geom import Box2I, Extent2I, Point2I

__all__ = ["Exposure", "ExposureInfo", "FilterLabel", "Image", "MaskedImage"]


class Image:
    """A 2-D pixel array with the accessors of ``lsst.afw.image.Image``.

    Args:
        array: The pixels, indexed ``[row, column]`` (``[y, x]``), used as given (not copied).
        xy0: The position of ``array[0, 0]`` in the parent frame, as afw's ``getXY0()``.
    """

    def __init__(self, array: np.ndarray, xy0: tuple[int, int] = (0, 0)) -> None:
        if array.ndim != 2:
            raise ValueError(f"an Image needs a 2-D array, not {array.ndim}-D")
        self.array = array
        self._xy0 = Point2I(*xy0)

    def getArray(self) -> np.ndarray:
        """Return the pixel array (a view: changing it changes the image)."""
        return self.array

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.array.dtype

    def getDimensions(self) -> Extent2I:
        """Return ``(width, height)``."""
        return Extent2I(self.getWidth(), self.getHeight())

    def getHeight(self) -> int:
        """Return the number of rows."""
        return int(self.array.shape[0])

    def getWidth(self) -> int:
        """Return the number of columns."""
        return int(self.array.shape[1])

    def getXY0(self) -> Point2I:
        return self._xy0

    def getX0(self) -> int:
        return self._xy0.x

    def getY0(self) -> int:
        return self._xy0.y

    def setXY0(self, xy0: tuple[int, int]) -> None:
        self._xy0 = Point2I(*xy0)

    def getBBox(self) -> Box2I:
        """The image's box in the parent frame (afw's default ``PARENT`` origin)."""
        return Box2I(self._xy0, self.getDimensions())

    def __getitem__(self, bbox: Box2I) -> Image:
        """The sub-image inside ``bbox`` (parent coordinates), sharing pixels, as afw's ``image[bbox]``."""
        if not isinstance(bbox, Box2I):
            raise TypeError(f"an Image is indexed by a Box2I, not {type(bbox).__name__}")
        if not self.getBBox().contains(bbox):
            raise ValueError(f"{bbox} is not inside the image's {self.getBBox()}")
        rows = slice(bbox.getMinY() - self.getY0(), bbox.getEndY() - self.getY0())
        cols = slice(bbox.getMinX() - self.getX0(), bbox.getEndX() - self.getX0())
        return Image(self.array[rows, cols], bbox.getMin())

    def clone(self) -> Image:
        """A deep copy."""
        return Image(self.array.copy(), self._xy0)

    def convertF(self) -> Image:
        """A float32 copy, as afw's ``ImageU.convertF()``."""
        return Image(self.array.astype(np.float32), self._xy0)

    def __sub__(self, other: Image) -> Image:
        if self.getBBox() != other.getBBox():
            raise ValueError(f"cannot subtract images of different boxes: {self.getBBox()} and {other.getBBox()}")
        return Image(self.array - other.array, self._xy0)

    def __repr__(self) -> str:
        return f"Image({self.getWidth()}x{self.getHeight()}, xy0={tuple(self._xy0)}, dtype={self.array.dtype})"


class MaskedImage:
    """An image with a mask and a variance plane, as afw's ``makeMaskedImage(image)``: both start at zero.

    The mask (int32, afw's MaskPixel) and variance (float32) planes are made on first use, so an
    exposure that is only looked at costs one image of memory.
    """

    def __init__(self, image: Image) -> None:
        self.image = image
        self._mask: Image | None = None
        self._variance: Image | None = None

    def getImage(self) -> Image:
        return self.image

    def getMask(self) -> Image:
        if self._mask is None:
            self._mask = Image(np.zeros(self.image.array.shape, dtype=np.int32), self.image.getXY0())
        return self._mask

    def getVariance(self) -> Image:
        if self._variance is None:
            self._variance = Image(np.zeros(self.image.array.shape, dtype=np.float32), self.image.getXY0())
        return self._variance

    @property
    def mask(self) -> Image:
        return self.getMask()

    @property
    def variance(self) -> Image:
        return self.getVariance()

    def getBBox(self) -> Box2I:
        return self.image.getBBox()

    def getDimensions(self) -> Extent2I:
        return self.image.getDimensions()

    def getWidth(self) -> int:
        return self.image.getWidth()

    def getHeight(self) -> int:
        return self.image.getHeight()

    def getXY0(self) -> Point2I:
        return self.image.getXY0()


@dataclass(frozen=True)
class FilterLabel:
    """A filter label, as afw's ``FilterLabel``: for a PFS raw both band and physical label are the arm letter."""

    band: str | None
    physical: str | None

    @property
    def bandLabel(self) -> str | None:
        return self.band

    @property
    def physicalLabel(self) -> str | None:
        return self.physical

    def hasBandLabel(self) -> bool:
        return self.band is not None

    def hasPhysicalLabel(self) -> bool:
        return self.physical is not None


class ExposureInfo:
    """What an exposure knows besides its pixels, as afw's ``ExposureInfo``."""

    def __init__(self, *, visitInfo: Any, detector: Any, id: int | None, metadata: Any,
                 filter: FilterLabel | None) -> None:
        self.visitInfo = visitInfo
        self.detector = detector
        self.id = id
        self.metadata = metadata
        self.filter = filter

    def getVisitInfo(self) -> Any:
        return self.visitInfo

    def hasVisitInfo(self) -> bool:
        return self.visitInfo is not None

    def getDetector(self) -> Any:
        return self.detector

    def hasDetector(self) -> bool:
        return self.detector is not None

    def getId(self) -> int | None:
        return self.id

    def hasId(self) -> bool:
        return self.id is not None

    def getMetadata(self) -> Any:
        return self.metadata

    def getFilter(self) -> FilterLabel | None:
        return self.filter

    def hasFilter(self) -> bool:
        return self.filter is not None


class Exposure:
    """A masked image with its `ExposureInfo`, as afw's ``Exposure``."""

    def __init__(self, maskedImage: MaskedImage, info: ExposureInfo) -> None:
        self.maskedImage = maskedImage
        self.info = info

    def getMaskedImage(self) -> MaskedImage:
        return self.maskedImage

    def getImage(self) -> Image:
        return self.maskedImage.image

    @property
    def image(self) -> Image:
        return self.maskedImage.image

    @property
    def mask(self) -> Image:
        return self.maskedImage.getMask()

    @property
    def variance(self) -> Image:
        return self.maskedImage.getVariance()

    def getInfo(self) -> ExposureInfo:
        return self.info

    def getVisitInfo(self) -> Any:
        return self.info.visitInfo

    @property
    def visitInfo(self) -> Any:
        return self.info.visitInfo

    def getDetector(self) -> Any:
        return self.info.detector

    @property
    def detector(self) -> Any:
        return self.info.detector

    def getFilter(self) -> FilterLabel | None:
        return self.info.filter

    @property
    def filter(self) -> FilterLabel | None:
        return self.info.filter

    def getMetadata(self) -> Any:
        return self.info.metadata

    @property
    def metadata(self) -> Any:
        return self.info.metadata

    def getBBox(self) -> Box2I:
        return self.maskedImage.getBBox()

    def getDimensions(self) -> Extent2I:
        return self.maskedImage.getDimensions()

    def getWidth(self) -> int:
        return self.maskedImage.getWidth()

    def getHeight(self) -> int:
        return self.maskedImage.getHeight()

    def getXY0(self) -> Point2I:
        return self.maskedImage.getXY0()

    def getX0(self) -> int:
        return self.getXY0().x

    def getY0(self) -> int:
        return self.getXY0().y

    def __repr__(self) -> str:
        return f"Exposure({self.getImage()!r}, id={self.info.id})"
