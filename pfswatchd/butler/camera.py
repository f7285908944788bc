"""The few facts of obs_pfs's camera description (``pfs/camera/camera.yaml``) a raw reader needs, and `Detector`.

obs_pfs builds an afw ``Detector`` for each camera from camera.yaml; the afw camera geometry is C++.
pfswatchd keeps the facts its PfsRaw uses, with their source:

- camera ids (`camera_id`): b1=0 r1=1 n1=2 b2=3 ... n4=11; the medium-resolution red arm m_k is
  -(id of r_k) (checked against obs_pfs's table in tests/butler/test_pfsraw.py);
- orientation: the NIR (n) detectors have ``yaw: 270`` (camera.yaml, n1, inherited by n2-n4), the CCDs
  and guiders 0; afw's ``Orientation.getNQuarter()`` is ``floor((yaw mod 360 + 45) / 90)``, i.e. 3 for n;
- trimmed detector boxes: CCD ``[[0,0],[4095,4175]]`` (4096 x 4176), H4RG ``[[0,0],[4095,4095]]``;
- a CCD raw is 8 amplifiers side by side, each ``rawBBox [[0,0],[552,4300]]`` (552 columns, full height).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .geom import Angle, Box2I, Extent2I, Point2I, degrees

__all__ = ["CCD_AMPLIFIERS", "Detector", "Orientation", "camera_id", "yaw_of"]

CCD_AMPLIFIERS = 8
_YAW_DEGREES = {"b": 0.0, "r": 0.0, "m": 0.0, "n": 270.0}
_TRIMMED = {"ccd": Extent2I(4096, 4176), "nir": Extent2I(4096, 4096)}


def camera_id(arm: str, spectrograph: int) -> int:
    """Return the obs_pfs camera id of ``arm`` and ``spectrograph``."""
    if arm == "m":
        return -(3 * (spectrograph - 1) + 1)
    return 3 * (spectrograph - 1) + "brn".index(arm)


def yaw_of(arm: str) -> float:
    """The detector's yaw in degrees (camera.yaml): 270 for the NIR arm, 0 for the CCDs."""
    return _YAW_DEGREES[arm]


@dataclass(frozen=True)
class Orientation:
    """A detector's orientation in the focal plane, reduced to its yaw (afw ``cameraGeom.Orientation``)."""

    yaw_degrees: float

    def getYaw(self) -> Angle:
        return degrees(self.yaw_degrees)

    def getNQuarter(self) -> int:
        """The yaw in whole quarter turns, rounded to the nearest, as afw: 3 for the n arm, 0 for CCDs."""
        return int(math.floor((self.yaw_degrees % 360.0 + 45.0) / 90.0)) % 4


@dataclass(frozen=True)
class Detector:
    """The camera that took a raw: ``name`` like ``b1``, ``id`` the obs_pfs camera id.

    Has the identity and geometry getters of afw's ``Detector`` (name, id, serial, bbox, orientation);
    not its amplifiers, pixel transforms or gains (afw camera geometry; obs_pfs also divides the NIR gains
    by ``W_H4GAIN``, which has no counterpart here).
    """

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

    def getSerial(self) -> str:
        return self.serial

    def getOrientation(self) -> Orientation:
        return Orientation(yaw_of(self.arm))

    def getBBox(self) -> Box2I:
        """The trimmed detector box of camera.yaml (not the raw frame, which has overscans)."""
        return Box2I(Point2I(0, 0), _TRIMMED["nir" if self.arm == "n" else "ccd"])
