"""The afw/lsst.geom stand-ins behave as the afw calls scripts make on them (images.py, geom.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pfswatchd.butler.geom import Angle, Box2I, Extent2I, Point2I, SpherePoint, degrees
from pfswatchd.butler.images import Exposure, ExposureInfo, FilterLabel, Image, MaskedImage


def test_points_extents_and_boxes():
    extent = Extent2I(5, 3)
    assert extent == (5, 3) and tuple(extent) == (5, 3) and (extent.getX(), extent.getY(), extent.x) == (5, 3, 5)
    width, height = extent
    assert (width, height) == (5, 3) and repr(extent) == "Extent2I(5, 3)"
    box = Box2I(Point2I(2, 1), extent)
    assert (box.getMinX(), box.getMinY(), box.getMaxX(), box.getMaxY()) == (2, 1, 6, 3)
    assert (box.getBeginX(), box.getEndX(), box.getBeginY(), box.getEndY()) == (2, 7, 1, 4)
    assert (box.getWidth(), box.getHeight(), box.getArea(), box.getDimensions()) == (5, 3, 15, (5, 3))
    assert box.getMin() == (2, 1) and box.getMax() == (6, 3) and box.getEnd() == (7, 4)
    assert Box2I(Point2I(6, 3), Point2I(2, 1)) == box  # two inclusive corners, any order
    assert box.slices == (slice(1, 4), slice(2, 7))
    assert box.contains(Box2I(Point2I(3, 2), Extent2I(2, 2))) and not box.contains(Box2I(Point2I(0, 0), Extent2I(3, 3)))
    assert Box2I().isEmpty() and box.contains(Box2I())
    with pytest.raises(ValueError, match="negative"):
        Box2I(Point2I(0, 0), Extent2I(-1, 2))


def test_angles_and_sphere_points():
    angle = degrees(90.0)
    assert isinstance(angle, Angle) and float(angle) == pytest.approx(math.pi / 2)
    assert angle.asDegrees() == pytest.approx(90.0) and angle.asHours() == pytest.approx(6.0)
    assert angle.asArcseconds() == pytest.approx(324000.0) and angle.asArcminutes() == pytest.approx(5400.0)
    point = SpherePoint.fromDegrees(150.0, -2.5)
    assert point.getRa().asDegrees() == pytest.approx(150.0) == point[0].asDegrees()
    assert point.getDec().asDegrees() == pytest.approx(-2.5) == point.getLatitude().asDegrees()
    assert point.isFinite() and not SpherePoint(Angle(math.nan), Angle(0.0)).isFinite()


def test_image_accessors_and_subimages():
    array = np.arange(30, dtype=np.uint16).reshape(5, 6)
    image = Image(array, (10, 20))
    assert image.getArray() is image.array is array and image.dtype == np.uint16
    assert image.getDimensions() == (6, 5) and (image.getWidth(), image.getHeight()) == (6, 5)
    assert (image.getX0(), image.getY0(), image.getXY0()) == (10, 20, (10, 20))
    assert image.getBBox() == Box2I(Point2I(10, 20), Extent2I(6, 5))
    sub = image[Box2I(Point2I(11, 22), Extent2I(3, 2))]  # parent coordinates, as afw
    np.testing.assert_array_equal(sub.array, array[2:4, 1:4])
    assert sub.getXY0() == (11, 22) and np.shares_memory(sub.array, array)
    with pytest.raises(ValueError, match="not inside"):
        image[Box2I(Point2I(0, 0), Extent2I(2, 2))]
    with pytest.raises(TypeError, match="Box2I"):
        image[0]
    as_float = image.convertF()
    assert as_float.array.dtype == np.float32 and as_float.getXY0() == (10, 20)
    difference = as_float - image.clone().convertF()
    assert not difference.array.any()
    with pytest.raises(ValueError, match="different boxes"):
        as_float - Image(np.zeros((5, 6), dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        Image(np.zeros(4))


def test_exposure_and_its_info():
    image = Image(np.ones((4, 3), dtype=np.float32), (1, 2))
    info = ExposureInfo(visitInfo="visit", detector="detector", id=7, metadata={"A": 1},
                        filter=FilterLabel("r", "r"))
    exposure = Exposure(MaskedImage(image), info)
    assert exposure.getImage() is image is exposure.image is exposure.getMaskedImage().getImage()
    assert exposure.getInfo() is info and exposure.info is info
    assert (exposure.getVisitInfo(), exposure.visitInfo, info.getVisitInfo()) == ("visit",) * 3
    assert (exposure.getDetector(), info.getDetector(), info.getId(), info.getMetadata()) == (
        "detector", "detector", 7, {"A": 1})
    assert exposure.getMetadata() == {"A": 1} == exposure.metadata
    assert exposure.getFilter() == FilterLabel("r", "r") and exposure.filter.bandLabel == "r"
    assert exposure.filter.physicalLabel == "r" and exposure.filter.hasBandLabel()
    assert info.hasVisitInfo() and info.hasDetector() and info.hasId() and info.hasFilter()
    assert exposure.getBBox() == image.getBBox() and exposure.getXY0() == (1, 2)
    assert (exposure.getX0(), exposure.getY0(), exposure.getWidth(), exposure.getHeight()) == (1, 2, 3, 4)
    assert exposure.mask.array.shape == (4, 3) and exposure.mask.getXY0() == (1, 2)
    assert exposure.variance.array.dtype == np.float32 and exposure.getDimensions() == (3, 4)
