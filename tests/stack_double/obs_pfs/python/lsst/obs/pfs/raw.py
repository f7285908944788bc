"""Test double of obs_pfs's ``lsst.obs.pfs.raw.PfsRaw`` interface: its constructor and header access.

obs_pfs fe944332 ``python/lsst/obs/pfs/raw.py``: ``PfsRaw(path, pfsCategory=None)``, ``metadata`` /
``getMetadata()`` (the primary header).  No pixels are read: only the class, the file it was made for
and its category matter to the tests (which formatter the datastore used).
"""

from astropy.io import fits


class PfsRaw:
    def __init__(self, path, pfsCategory=None):
        self.path = str(path)
        self.pfsCategory = pfsCategory
        self._metadata = None

    @property
    def metadata(self):
        if self._metadata is None:
            self._metadata = fits.getheader(self.path, 0)
        return self._metadata

    def getMetadata(self):
        return self.metadata
