"""The name repositories record for :mod:`pfswatchd.butler.pfsraw`: a stable path, kept forever.

The storage classes of repositories made before the sub-package layout name
``pfswatchd.pfsraw.PfsRaw``, ``Image``, ``Exposure``, ``Detector`` and ``VisitInfo`` as their Python
types; the butler imports them to check what a formatter returns.  They are the same classes as in
``pfswatchd.butler.pfsraw``.
"""

from pfswatchd.butler.pfsraw import Detector, Exposure, Image, PfsRaw, VisitInfo

__all__ = ["Detector", "Exposure", "Image", "PfsRaw", "VisitInfo"]
