"""Test double of obs_pfs's Instrument classes (``python/lsst/obs/pfs/PrimeFocusSpectrograph.py``).

Interface, with obs_pfs's names: ``PrimeFocusSpectrograph`` (PFS), ``PfsSimulator`` (PFS-F),
``PfsDevelopment`` (PFS-L); ``getName()`` = "PFS" + "-<pfsCategory>"; ``register(registry, update=False)``
writes the records and dataset types obs_pfs's ``register`` writes; ``getRawFormatter(dataId)`` names
the category's raw formatter; ``makeDefaultRawIngestRunName()`` = ``<name>/raw/sps``.  The base class is
pipe_base's ``Instrument`` (obs_pfs's is obs_base's, a subclass of it); like obs_pfs's ``__init__`` it
asks for obs_pfs's product folder (``getPackageDir("obs_pfs")``, i.e. ``$OBS_PFS_DIR``).

Facts, with their sources (obs_pfs fe944332):
- instrument record: detector_max 20, visit_max 21474800, class_name = the class's full type name
  (``register``); spectrographs 0-4, arms b r n m x (``register``);
- detectors from the camera (``pfs/camera/camera.yaml`` ids: b/r/n of module s = 3(s-1) + 0/1/2,
  m of module s = -(3(s-1) + 1), AG1-AG6 = 101-106), with spectrograph/arm from the name, raft = the
  module digit or "guider", name_in_raft = the arm letter or the guider's digit, purpose science/guider;
- physical filters b r m n with band = the same letter (``filterDefinitions.py``, registered by obs_base
  ``_registerFilters``);
- dataset types raw (instrument, visit, spectrograph, arm; PfsRaw), pfsConfig (instrument, visit;
  PfsConfig), and as calibrations detectorMap_calib (DetectorMap), nirDark and nirDark_irp4 (ImageCube),
  badRefPixels (NirBadRefPixels), h4Linearity (H4Linearity), all (instrument, arm, spectrograph), and
  defects (instrument, detector, arm, spectrograph; Defects);
- ``getRawFormatter``: category None or "S" -> PfsRawFormatter, "F" -> PfsSimulatorRawFormatter,
  "L" -> PfsDevelopmentRawFormatter.
"""

from lsst.daf.butler import DatasetType
from lsst.pipe.base import Instrument
from lsst.utils import getPackageDir
from lsst.utils.introspection import get_full_type_name

from .formatters import PfsDevelopmentRawFormatter, PfsRawFormatter, PfsSimulatorRawFormatter

__all__ = ("PrimeFocusSpectrograph", "PfsSimulator", "PfsDevelopment")

CAMERA = ("instrument", "arm", "spectrograph")
CALIBRATIONS = (("detectorMap_calib", CAMERA, "DetectorMap"), ("nirDark", CAMERA, "ImageCube"),
                ("nirDark_irp4", CAMERA, "ImageCube"), ("badRefPixels", CAMERA, "NirBadRefPixels"),
                ("h4Linearity", CAMERA, "H4Linearity"),
                ("defects", ("instrument", "detector", "arm", "spectrograph"), "Defects"))


def _camera():
    """(id, name) of every detector in camera.yaml."""
    for spectrograph in range(1, 5):
        base = 3 * (spectrograph - 1)
        yield from ((base, f"b{spectrograph}"), (base + 1, f"r{spectrograph}"), (base + 2, f"n{spectrograph}"),
                    (-(base + 1), f"m{spectrograph}"))
    yield from ((100 + k, f"AG{k}") for k in range(1, 7))


class PrimeFocusSpectrograph(Instrument):
    pfsCategory = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.packageDir = getPackageDir("obs_pfs")

    @classmethod
    def getName(cls):
        return "PFS" + (f"-{cls.pfsCategory}" if cls.pfsCategory is not None else "")

    def register(self, registry, update=False):
        instrument = self.getName()
        with registry.transaction():
            registry.syncDimensionData("instrument", {"name": instrument, "detector_max": 20, "visit_max": 21474800,
                                                      "class_name": get_full_type_name(self)}, update=update)
            for spectrograph in range(5):
                registry.syncDimensionData("spectrograph", {"instrument": instrument, "num": spectrograph},
                                           update=update)
            for arm in "brnmx":
                registry.syncDimensionData("arm", {"instrument": instrument, "name": arm}, update=update)
            for detector_id, name in _camera():
                guider = name.startswith("AG")
                arm, spectrograph = ("x", 0) if guider else (name[0], int(name[1]))
                registry.syncDimensionData("detector", {
                    "instrument": instrument, "spectrograph": spectrograph, "arm": arm, "id": detector_id,
                    "full_name": name, "raft": "guider" if guider else name[-1],
                    "name_in_raft": name[-1] if guider else name[0], "purpose": "guider" if guider else "science",
                }, update=update)
            for band in "brmn":
                registry.syncDimensionData("physical_filter", {"instrument": instrument, "name": band, "band": band},
                                           update=update)
        for name, dimensions, storage_class, calibration in (
                ("raw", ("instrument", "visit", "spectrograph", "arm"), "PfsRaw", False),
                ("pfsConfig", ("instrument", "visit"), "PfsConfig", False),
                *((name, dims, sc, True) for name, dims, sc in CALIBRATIONS)):
            registry.registerDatasetType(DatasetType(name, dimensions, storage_class, universe=registry.dimensions,
                                                     isCalibration=calibration))

    def getRawFormatter(self, dataId):
        return {None: PfsRawFormatter, "S": PfsRawFormatter, "F": PfsSimulatorRawFormatter,
                "L": PfsDevelopmentRawFormatter}[self.pfsCategory]

    def makeDefaultRawIngestRunName(self):
        return self.makeCollectionName("raw", "sps")


class PfsSimulator(PrimeFocusSpectrograph):
    pfsCategory = "F"


class PfsDevelopment(PrimeFocusSpectrograph):
    pfsCategory = "L"
