"""The official calibration dataset types, and what stores them where obs_pfs is not installed.

``butler register-instrument lsst.obs.pfs.PrimeFocusSpectrograph`` registers, besides ``raw`` and
``pfsConfig``, the calibration dataset types below (obs_pfs fe944332,
``python/lsst/obs/pfs/PrimeFocusSpectrograph.py``, ``register``: names, dimensions, storage classes,
all with ``isCalibration=True``).  A repository pfswatchd makes registers the same ones, so that the
pipeline can ``put`` its per-camera products there and ``butler import`` an observatory calibration
export into it.

Their storage classes carry obs_pfs's names (a dataset type records only the name, and the pipeline
looks the name up in its own configuration), but where obs_pfs is not installed their Python types
cannot be obs_pfs's (``pfs.drp.stella.DetectorMap`` and the others need the LSST C++ stack).  Every one
of these products is a FITS file (obs_pfs reads them with ``DetectorMapFormatter`` or obs_base's
``FitsGenericFormatter``), so here they are an `astropy.io.fits.HDUList`, read and written by
`FitsCalibFormatter`: a file put or imported here is byte for byte the file the pipeline reads, and
``pfswatchd hand-over`` only has to name obs_pfs's formatter for it.  ``Defects`` is the exception:
it is daf_butler's own storage class (``lsst.ip.isr.Defects``, also in official repositories) and
daf_butler refuses a second definition of it, so defects can be imported and handed over here but
read or put only where lsst.ip.isr is installed.
"""

from __future__ import annotations

from typing import Any

from astropy.io import fits
from lsst.daf.butler import DatasetType, DimensionUniverse, FormatterV2
from lsst.resources import ResourcePath

__all__ = ["CALIBRATIONS", "CALIB_FORMATTERS", "CALIB_STORAGE_CLASSES", "OFFICIAL_FORMATTERS", "FitsCalibFormatter",
           "calibration_dataset_types"]

CAMERA = ("instrument", "arm", "spectrograph")
# name -> (dimensions, storage class), in the order obs_pfs registers them.
CALIBRATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "detectorMap_calib": (CAMERA, "DetectorMap"),
    "nirDark": (CAMERA, "ImageCube"),
    "nirDark_irp4": (CAMERA, "ImageCube"),
    "badRefPixels": (CAMERA, "NirBadRefPixels"),
    "h4Linearity": (CAMERA, "H4Linearity"),
    "defects": (("instrument", "detector", "arm", "spectrograph"), "Defects"),
}
_STORAGE_CLASS_NAMES = ("DetectorMap", "ImageCube", "NirBadRefPixels", "H4Linearity")
# What reads them in the PFS pipeline: obs_pfs gen3/butler.yaml datastore.formatters (lines 16, 35, 38,
# 39) and daf_butler's configs/datastores/formatters.yaml for Defects.  The hand-over records these.
OFFICIAL_FORMATTERS = {
    "DetectorMap": "lsst.obs.pfs.formatters.DetectorMapFormatter",
    "ImageCube": "lsst.obs.base.formatters.fitsGeneric.FitsGenericFormatter",
    "NirBadRefPixels": "lsst.obs.base.formatters.fitsGeneric.FitsGenericFormatter",
    "H4Linearity": "lsst.obs.base.formatters.fitsGeneric.FitsGenericFormatter",
    "Defects": "lsst.obs.base.formatters.fitsGeneric.FitsGenericFormatter",
}
# Recorded in the repositories pfswatchd makes: the stable short name (see pfswatchd/formatters.py).
CALIB_FORMATTER = "pfswatchd.formatters.FitsCalibFormatter"
CALIB_STORAGE_CLASSES: dict[str, dict[str, Any]] = {
    name: {"pytype": "astropy.io.fits.HDUList"} for name in _STORAGE_CLASS_NAMES
}
# Defects keeps daf_butler's definition (its StorageClassFactory holds the defaults from the start and
# refuses any other definition of a name it has), so only its formatter is pfswatchd's here: an imported
# defects file is recorded and handed over, but reading or putting one needs lsst.ip.isr.
CALIB_FORMATTERS: dict[str, str] = {name: CALIB_FORMATTER for name in (*_STORAGE_CLASS_NAMES, "Defects")}


def calibration_dataset_types(universe: DimensionUniverse) -> list[DatasetType]:
    return [DatasetType(name, dimensions, storage_class, universe=universe, isCalibration=True)
            for name, (dimensions, storage_class) in CALIBRATIONS.items()]


class FitsCalibFormatter(FormatterV2):
    """A calibration product as the FITS file it is: read into memory as an `astropy.io.fits.HDUList`.

    The extensions are those of obs_base's FitsGenericFormatter, so that an imported file keeps its
    name's ending.
    """

    default_extension = ".fits"
    supported_extensions = frozenset({".fits", ".fits.gz", ".fits.fz", ".fz", ".fit"})
    can_read_from_local_file = True

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        """Return every HDU of the file, loaded (the file is closed when this returns)."""
        if component is not None:
            raise ValueError(f"{self.dataset_ref.datasetType.name} has no component {component!r}")
        with fits.open(path, memmap=False, lazy_load_hdus=False) as hdus:
            return fits.HDUList([hdu.copy() for hdu in hdus])

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        """Write the HDUs as one FITS file (``uri`` is a fresh local path the datastore chose)."""
        if not isinstance(in_memory_dataset, fits.HDUList):
            raise TypeError(f"expected an astropy.io.fits.HDUList, got {type(in_memory_dataset).__name__}")
        in_memory_dataset.writeto(uri.ospath)


# The datastore records a written dataset's formatter by its class's module and name; give it the stable
# path repositories record (pfswatchd/formatters.py re-exports it), not this module's, which may move.
FitsCalibFormatter.__module__ = "pfswatchd.formatters"
