"""Test double of obs_base's ``FitsGenericFormatter`` (lsst/obs_base 00893bd1, formatters/fitsGeneric.py):
a FormatterV2 that reads a local file with ``<storage class pytype>.readFits(path)`` and writes with
``writeFits``; FITS extensions, ``.fits`` by default."""

from lsst.daf.butler import FormatterV2


class FitsGenericFormatter(FormatterV2):
    supported_extensions = frozenset({".fits", ".fits.gz", ".fits.fz", ".fz", ".fit"})
    default_extension = ".fits"
    can_read_from_local_file = True

    def read_from_local_file(self, path, component=None, expected_size=-1):
        return self.file_descriptor.storageClass.pytype.readFits(path)

    def write_local_file(self, in_memory_dataset, uri):
        in_memory_dataset.writeFits(uri.ospath)
