"""Test double of obs_pfs's formatter names and what they return (``python/lsst/obs/pfs/formatters.py``).

- ``PfsRawFormatter`` (obs_base FitsRawFormatterBase, a FormatterV2) builds ``PfsRaw(location path,
  pfsCategory)`` and returns it whole when no component is asked for; ``PfsSimulatorRawFormatter`` has
  pfsCategory "F", ``PfsDevelopmentRawFormatter`` "L".  It does not write ("PfsRawFormatter does not
  support writing").  Components are not served by the double.
- ``DetectorMapFormatter``: the class of that name exists (the hand-over checks that the formatters it
  names import); reading one is not part of the double.
"""

from lsst.daf.butler import FormatterV2

from .raw import PfsRaw

_FITS = frozenset({".fits", ".fits.gz", ".fits.fz", ".fz", ".fit"})  # obs_base FitsImageFormatterBase


class PfsRawFormatter(FormatterV2):
    pfsCategory = None
    can_read_from_local_file = True
    default_extension = ".fits"
    supported_extensions = _FITS
    unsupported_parameters = frozenset()

    def read_from_local_file(self, path, component=None, expected_size=-1):
        raw = PfsRaw(self.file_descriptor.location.path, self.pfsCategory)
        if component is None:
            return raw
        raise NotImplementedError(f"the obs_pfs test double serves no raw components ({component})")

    def write_local_file(self, in_memory_dataset, uri):
        raise NotImplementedError("PfsRawFormatter does not support writing")


class PfsSimulatorRawFormatter(PfsRawFormatter):
    pfsCategory = "F"


class PfsDevelopmentRawFormatter(PfsRawFormatter):
    pfsCategory = "L"


class DetectorMapFormatter(FormatterV2):
    can_read_from_local_file = True
    default_extension = ".fits"
    supported_extensions = _FITS

    def read_from_local_file(self, path, component=None, expected_size=-1):
        raise NotImplementedError("the obs_pfs test double does not read detector maps")
