"""Test double of obs_pfs's interface (tests/stack_double/README.md); obs_pfs's __init__ exports the
Instrument classes (``from .PrimeFocusSpectrograph import *``)."""

from .PrimeFocusSpectrograph import *  # noqa: F403
