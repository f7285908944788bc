"""The name repositories record for :mod:`pfswatchd.butler.pfsconfig`: a stable path, kept forever.

The ``PfsConfig`` storage class of repositories made before the sub-package layout names
``pfswatchd.pfsconfig.PfsConfig`` as its Python type; it is the same class as in
``pfswatchd.butler.pfsconfig``.
"""

from pfswatchd.butler.pfsconfig import PfsConfig

__all__ = ["PfsConfig"]
