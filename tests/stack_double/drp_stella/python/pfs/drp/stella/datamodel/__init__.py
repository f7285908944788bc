"""Test double of ``pfs.drp.stella.datamodel.PfsConfig`` (drp_stella 3a705d9d datamodel/pfsConfig.py, a
subclass of pfs.datamodel's PfsConfig): ``readFits(path)`` gives the design id and visit from the primary
header's W_PFDSGN and W_VISIT (datamodel 355df2a pfsConfig.py ``_readImpl``).  No fibre tables."""

from astropy.io import fits


class PfsConfig:
    def __init__(self, pfsDesignId, visit, filename):
        self.pfsDesignId = pfsDesignId
        self.visit = visit
        self.filename = filename

    @classmethod
    def readFits(cls, path):
        header = fits.getheader(path, 0)
        return cls(int(header["W_PFDSGN"]), int(header["W_VISIT"]), str(path))
