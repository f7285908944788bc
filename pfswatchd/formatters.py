"""The name repositories record for :mod:`pfswatchd.butler.formatters`: a stable path, kept forever.

Repositories made before the sub-package layout name ``pfswatchd.formatters.PfsRawFormatter``,
``pfswatchd.formatters.PfsConfigFormatter`` (in each dataset's datastore record) and
``pfswatchd.formatters.PfsRawDelegate`` (in their storage classes); the datastore imports those names
to read a dataset, so they must keep resolving to the same classes.  Repositories pfswatchd creates now
record the same names (see ``pfswatchd.butler.formatters``), and ``FitsCalibFormatter`` for the
calibration products (``pfswatchd.butler.calibs``); code inside the package imports
``pfswatchd.butler.formatters``.
"""

from pfswatchd.butler.calibs import FitsCalibFormatter
from pfswatchd.butler.formatters import PfsConfigFormatter, PfsRawDelegate, PfsRawFormatter

__all__ = ["FitsCalibFormatter", "PfsConfigFormatter", "PfsRawDelegate", "PfsRawFormatter"]
