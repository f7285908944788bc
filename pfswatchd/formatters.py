"""Old import path of :mod:`pfswatchd.butler.formatters`, kept because repositories record it.

Repositories made before the sub-package layout name ``pfswatchd.formatters.PfsRawFormatter``,
``pfswatchd.formatters.PfsConfigFormatter`` (in each dataset's datastore record) and
``pfswatchd.formatters.PfsRawDelegate`` (in their storage classes); the datastore imports those names
to read a dataset, so they must keep resolving to the same classes.  New code imports
``pfswatchd.butler.formatters``.
"""

from pfswatchd.butler.formatters import PfsConfigFormatter, PfsRawDelegate, PfsRawFormatter

__all__ = ["PfsConfigFormatter", "PfsRawDelegate", "PfsRawFormatter"]
