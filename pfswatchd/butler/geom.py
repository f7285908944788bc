"""Stand-ins for the ``lsst.geom`` types obs_pfs's PfsRaw hands out: Point2I, Extent2I, Box2I, Angle, SpherePoint.

``lsst.geom`` ships with the LSST C++ stack (it is not on PyPI), so a script written against obs_pfs's
PfsRaw (``raw.bbox.getWidth()``, ``raw.dimensions.getX()``, ``visitInfo.getBoresightRaDec().getRa().asDegrees()``)
gets these small pure-Python classes instead.  They carry the accessors such scripts use, with the
same names and meanings; they are not the afw classes (``isinstance(x, lsst.geom.Box2I)`` is False, there
is no arithmetic beyond what is listed).  `Point2I` and `Extent2I` are tuples, so ``width, height =
raw.dimensions`` works as with lsst.geom and as pfswatchd's earlier ``(width, height)`` tuple did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Self

__all__ = ["Angle", "Box2I", "Extent2I", "Point2I", "SpherePoint", "degrees"]


class _Pair(tuple[int, int]):
    """Two integers ``(x, y)`` with lsst.geom's accessors."""

    def __new__(cls, x: int = 0, y: int = 0) -> Self:
        return super().__new__(cls, (int(x), int(y)))

    @property
    def x(self) -> int:
        return self[0]

    @property
    def y(self) -> int:
        return self[1]

    def getX(self) -> int:
        """Return the first (column) coordinate."""
        return self[0]

    def getY(self) -> int:
        """Return the second (row) coordinate."""
        return self[1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self[0]}, {self[1]})"


class Point2I(_Pair):
    """An integer pixel position ``(x, y)``, like ``lsst.geom.Point2I``."""


class Extent2I(_Pair):
    """An integer size ``(width, height)``, like ``lsst.geom.Extent2I``."""


@dataclass(frozen=True)
class Box2I:
    """An integer pixel box, like ``lsst.geom.Box2I``: built from a minimum corner and dimensions.

    ``Box2I(Point2I(x0, y0), Extent2I(w, h))`` covers columns ``x0 .. x0+w-1`` and rows ``y0 .. y0+h-1``;
    ``Box2I(Point2I(...), Point2I(...))`` takes the two inclusive corners, as lsst.geom does.
    """

    minimum: Point2I
    dimensions: Extent2I

    def __init__(self, minimum: tuple[int, int] = (0, 0), other: tuple[int, int] = (0, 0)) -> None:
        start = Point2I(*minimum)
        if isinstance(other, Point2I):
            size = Extent2I(abs(other.x - start.x) + 1, abs(other.y - start.y) + 1)
            start = Point2I(min(start.x, other.x), min(start.y, other.y))
        else:
            size = Extent2I(*other)
        if size.x < 0 or size.y < 0:
            raise ValueError(f"a box cannot have negative dimensions {tuple(size)}")
        object.__setattr__(self, "minimum", start)
        object.__setattr__(self, "dimensions", size)

    def getMin(self) -> Point2I:
        return self.minimum

    def getMax(self) -> Point2I:
        return Point2I(self.getMaxX(), self.getMaxY())

    def getBegin(self) -> Point2I:
        return self.minimum

    def getEnd(self) -> Point2I:
        return Point2I(self.getEndX(), self.getEndY())

    def getMinX(self) -> int:
        return self.minimum.x

    def getMinY(self) -> int:
        return self.minimum.y

    def getMaxX(self) -> int:
        """The last column inside the box (inclusive)."""
        return self.minimum.x + self.dimensions.x - 1

    def getMaxY(self) -> int:
        """The last row inside the box (inclusive)."""
        return self.minimum.y + self.dimensions.y - 1

    def getBeginX(self) -> int:
        return self.minimum.x

    def getBeginY(self) -> int:
        return self.minimum.y

    def getEndX(self) -> int:
        """One past the last column."""
        return self.minimum.x + self.dimensions.x

    def getEndY(self) -> int:
        """One past the last row."""
        return self.minimum.y + self.dimensions.y

    def getWidth(self) -> int:
        return self.dimensions.x

    def getHeight(self) -> int:
        return self.dimensions.y

    def getDimensions(self) -> Extent2I:
        return self.dimensions

    def getArea(self) -> int:
        return self.dimensions.x * self.dimensions.y

    def isEmpty(self) -> bool:
        return self.getArea() == 0

    def contains(self, other: Box2I) -> bool:
        """True if ``other`` lies wholly inside this box (an empty box is inside any box)."""
        return other.isEmpty() or (self.getMinX() <= other.getMinX() and other.getEndX() <= self.getEndX()
                                   and self.getMinY() <= other.getMinY() and other.getEndY() <= self.getEndY())

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, columns)`` slices selecting this box from an array whose origin is (0, 0)."""
        return slice(self.getBeginY(), self.getEndY()), slice(self.getBeginX(), self.getEndX())

    def __repr__(self) -> str:
        return f"Box2I(minimum={tuple(self.minimum)}, dimensions={tuple(self.dimensions)})"


class Angle(float):
    """An angle, like ``lsst.geom.Angle``; the float value is in radians, as in lsst.geom."""

    def asRadians(self) -> float:
        return float(self)

    def asDegrees(self) -> float:
        return math.degrees(self)

    def asHours(self) -> float:
        return math.degrees(self) / 15.0

    def asArcminutes(self) -> float:
        return math.degrees(self) * 60.0

    def asArcseconds(self) -> float:
        return math.degrees(self) * 3600.0

    def __repr__(self) -> str:
        return f"Angle({self.asDegrees()!r} degrees)"


def degrees(value: float) -> Angle:
    """An `Angle` of ``value`` degrees (``lsst.geom``'s ``value * degrees``)."""
    return Angle(math.radians(value))


@dataclass(frozen=True)
class SpherePoint:
    """A position on the sphere, like ``lsst.geom.SpherePoint``: (longitude, latitude), e.g. (ra, dec) or (az, alt).

    NaN coordinates mean "not known", as an unset afw VisitInfo field.
    """

    longitude: Angle
    latitude: Angle

    @classmethod
    def fromDegrees(cls, longitude: float, latitude: float) -> SpherePoint:
        return cls(degrees(longitude), degrees(latitude))

    def getLongitude(self) -> Angle:
        return self.longitude

    def getLatitude(self) -> Angle:
        return self.latitude

    def getRa(self) -> Angle:
        return self.longitude

    def getDec(self) -> Angle:
        return self.latitude

    def isFinite(self) -> bool:
        return math.isfinite(self.longitude) and math.isfinite(self.latitude)

    def __getitem__(self, index: int) -> Angle:
        return (self.longitude, self.latitude)[index]

    def __repr__(self) -> str:
        return f"SpherePoint({self.longitude.asDegrees()!r}, {self.latitude.asDegrees()!r} degrees)"
