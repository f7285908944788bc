"""The name repositories record for :mod:`pfswatchd.butler.pfsraw`: a stable path, kept forever.

The storage classes of repositories pfswatchd makes name ``pfswatchd.pfsraw.PfsRaw``, ``Image``,
``Exposure``, ``Detector``, ``VisitInfo``, ``Box2I`` and ``Point2I`` as their Python types; the butler
imports them to check what a formatter returns.  They are the same classes as in
``pfswatchd.butler.pfsraw``.
"""

from pfswatchd.butler.pfsraw import Box2I, Detector, Exposure, Image, PfsRaw, Point2I, VisitInfo

__all__ = ["Box2I", "Detector", "Exposure", "Image", "PfsRaw", "Point2I", "VisitInfo"]
