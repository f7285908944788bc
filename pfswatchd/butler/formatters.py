"""Butler formatters and storage classes for PFS raws and pfsConfigs (lsst-daf-butler 30.x).

`STORAGE_CLASSES` is the ``storageClasses:`` section and `FORMATTERS` the
``datastore.formatters:`` mapping of a repository seed config.  Both formatters are read-only:
raws and pfsConfigs enter a repository by ingest, never by ``butler.put``.

Components of ``raw``, with obs_pfs's names and meanings (obs_pfs gen3/butler.yaml and formatters.py);
pfswatchd declares them as derived components (computed from the one file), obs_pfs as components:

======================  ==================  ============================================================
component               storage class       value
======================  ==================  ============================================================
``raw.image``           PfsRawImage         ``getImage()``: CCD frame, or a ramp's corrected CDS image
``raw.ramp``            PfsRawImage         ``getCorrectedNirRead(readNum)``; needs ``readNum`` (1-based)
``raw.exposure``        PfsRawExposure      an `Exposure` of ``getImage()`` (uint16 for a CCD, as obs_pfs)
``raw.numReads``        int                 W_H4NRED, 1 for CCDs (butler default class)
``raw.metadata``        PfsRawMetadata      primary header (`astropy.io.fits.Header`)
``raw.visitInfo``       PfsRawVisitInfo     `pfswatchd.pfsraw.VisitInfo` (afw getters)
``raw.detector``        PfsRawDetector      `pfswatchd.pfsraw.Detector`
``raw.id``              int                 the exposure id (visit)
``raw.bbox``            PfsRawBox           `pfswatchd.pfsraw.Box2I`
``raw.dimensions``      PfsRawDimensions    `pfswatchd.pfsraw.Extent2I` ``(width, height)``, a tuple
``raw.xy0``             PfsRawPoint         `pfswatchd.pfsraw.Point2I` (0, 0)
======================  ==================  ============================================================

Parameters: ``readNum`` is used only by ``ramp``, as in obs_pfs (elsewhere it is accepted and
ignored).  obs_pfs also declares ``bbox`` but never applies it (its raw formatters refuse subimages
for ``ramp`` and ignore it otherwise); pfswatchd does not declare it, so the butler refuses it with
"Parameter 'bbox' not understood": cut with ``raw.getImage(bbox)`` / ``getCorrectedNirRead(n, bbox)``.
Keeping the parameter set unchanged is also what lets repositories made before these components
existed and new ones open in one process (daf_butler compares parameters, not derived components,
when a second definition of ``PfsRaw`` arrives); `with_current_storage_classes` gives the older
repositories the current component list when pfswatchd opens them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lsst.daf.butler import Config, FormatterNotImplementedError, FormatterV2, StorageClassDelegate
from lsst.resources import ResourcePath

from .calibs import CALIB_FORMATTERS, CALIB_STORAGE_CLASSES
from .pfsconfig import PfsConfig
from .pfsraw import PfsRaw

__all__ = ["FORMATTERS", "RAW_COMPONENTS", "STORAGE_CLASSES", "PfsConfigFormatter", "PfsRawDelegate",
           "PfsRawFormatter", "raw_component", "with_current_storage_classes"]

RAW_COMPONENTS: dict[str, str] = {
    "image": "PfsRawImage",
    "ramp": "PfsRawImage",
    "exposure": "PfsRawExposure",
    "numReads": "int",
    "metadata": "PfsRawMetadata",
    "visitInfo": "PfsRawVisitInfo",
    "detector": "PfsRawDetector",
    "id": "int",
    "bbox": "PfsRawBox",
    "dimensions": "PfsRawDimensions",
    "xy0": "PfsRawPoint",
}

# The names below are recorded in every repository pfswatchd creates (butler.yaml) and in the datastore
# record of every dataset it ingests, so they are a stable interface: the short paths
# (pfswatchd.formatters, pfswatchd.pfsraw, pfswatchd.pfsconfig) re-export these classes and stay.
# New repositories record the same strings as old ones on purpose: daf_butler keeps one storage class
# definition per name per process, and refuses a second definition whose pytype string differs, so a
# process that opened a repository made before the sub-package layout could not open a new one.  For
# the same reason a storage class, once recorded, keeps its pytype (PfsRawDimensions stays "tuple":
# Extent2I is a tuple) and PfsRaw keeps its parameters.
STORAGE_CLASSES: dict[str, dict[str, Any]] = {
    "PfsRawImage": {"pytype": "pfswatchd.pfsraw.Image"},
    "PfsRawMetadata": {"pytype": "astropy.io.fits.Header"},
    "PfsRawExposure": {"pytype": "pfswatchd.pfsraw.Exposure"},
    "PfsRawDetector": {"pytype": "pfswatchd.pfsraw.Detector"},
    "PfsRawVisitInfo": {"pytype": "pfswatchd.pfsraw.VisitInfo"},
    "PfsRawDimensions": {"pytype": "tuple"},
    "PfsRawBox": {"pytype": "pfswatchd.pfsraw.Box2I"},
    "PfsRawPoint": {"pytype": "pfswatchd.pfsraw.Point2I"},
    "PfsRaw": {
        "pytype": "pfswatchd.pfsraw.PfsRaw",
        "delegate": "pfswatchd.formatters.PfsRawDelegate",
        "parameters": ["readNum"],
        "derivedComponents": dict(RAW_COMPONENTS),
    },
    "PfsConfig": {"pytype": "pfswatchd.pfsconfig.PfsConfig"},
    # The official calibration storage classes, as FITS files (calibs.py says why).
    **CALIB_STORAGE_CLASSES,
}

FORMATTERS: dict[str, str] = {
    "PfsRaw": "pfswatchd.formatters.PfsRawFormatter",
    "PfsConfig": "pfswatchd.formatters.PfsConfigFormatter",
    **CALIB_FORMATTERS,
}

# obs_pfs's raw formatter per instrument category (PrimeFocusSpectrograph.getRawFormatter).
_CATEGORY = {"PFS": None, "PFS-F": "F", "PFS-L": "L"}


def with_current_storage_classes(config: Config) -> Config:
    """``config`` (a repository's butler configuration) with pfswatchd's current storage classes, in memory.

    Only for a repository whose ``PfsRaw`` is pfswatchd's: one made by an earlier pfswatchd lists fewer raw
    components in its butler.yaml, and daf_butler keeps the first definition a process sees.  Opening
    every pfswatchd repository with the current definitions gives the old ones ``raw.ramp`` and friends
    and keeps the new ones from inheriting an old list.  Nothing is written to the repository; a
    repository using obs_pfs's classes is returned unchanged.
    """
    try:
        pytype = config["storageClasses", "PfsRaw", "pytype"]
    except KeyError:
        return config
    if pytype != STORAGE_CLASSES["PfsRaw"]["pytype"]:
        return config
    for name, definition in STORAGE_CLASSES.items():
        config["storageClasses", name] = definition
    return config


def raw_component(raw: PfsRaw, component: str, readNum: int | None = None) -> Any:
    """Return one named component of a raw (obs_pfs's ``PfsRawFormatter`` rules).

    Raises:
        KeyError: For a component that `RAW_COMPONENTS` does not list (``obsInfo`` is also served, as
            obs_pfs's formatter does, though neither declares it).
        ValueError: For ``ramp`` without ``readNum``.
    """
    if component == "ramp":
        if readNum is None:
            raise ValueError(f"{raw.path.name}: raw.ramp needs the readNum parameter (a 1-based read number)")
        return raw.getCorrectedNirRead(readNum)
    if component == "image":
        return raw.getImage()
    if component == "exposure":
        return raw.makeExposure(raw.getImage())
    if component == "numReads":
        return raw.getNumReads()
    if component == "metadata":
        return raw.getMetadata()
    if component == "visitInfo":
        return raw.visitInfo
    if component == "detector":
        return raw.detector
    if component == "id":
        return raw.visitInfo.getId()
    if component in ("bbox", "dimensions", "xy0", "obsInfo"):
        return getattr(raw, component)
    raise KeyError(f"raw has no component {component!r}; known: {', '.join(RAW_COMPONENTS)}")


def _read_num(parameters: Mapping[str, Any] | None) -> int | None:
    value = (parameters or {}).get("readNum")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"readNum must be an integer read number (1-based), not {value!r}")
    return value


class _ReadOnlyFormatter(FormatterV2):
    """A formatter that refuses to write."""

    default_extension = ".fits"
    supported_extensions = frozenset({".fits", ".fits.fz"})
    can_read_from_local_file = True

    def _refuse(self) -> FormatterNotImplementedError:
        return FormatterNotImplementedError(
            f"{type(self).__name__} is read-only: PFS raws and pfsConfigs enter a repository by "
            "ingest, butler.put is not supported"
        )

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        """Refuse: these datasets are ingested, never written."""
        raise self._refuse()

    def to_bytes(self, in_memory_dataset: Any) -> bytes:
        """Refuse: these datasets are ingested, never written."""
        raise self._refuse()


class PfsRawFormatter(_ReadOnlyFormatter):
    """Read a PFSA/PFSB file as a `PfsRaw` or one of its components."""

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        """Return the `PfsRaw` (``component`` None) or the named component.

        ``readNum`` is used by the ``ramp`` component only, as in obs_pfs.
        """
        data_id = self.dataset_ref.dataId
        plain = dict(data_id.mapping) if data_id.hasFull() else dict(data_id.required)
        raw = PfsRaw(path, _CATEGORY.get(str(plain.get("instrument"))), dataId=plain)
        if component is None:
            return raw
        return raw_component(raw, component, _read_num(self.file_descriptor.parameters))


class PfsConfigFormatter(_ReadOnlyFormatter):
    """Read a pfsConfig or PFSF file as a `PfsConfig`."""

    unsupported_parameters = None

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        """Return the `PfsConfig` of the file."""
        if component is not None:
            raise ValueError(f"PfsConfig has no component {component!r}")
        return PfsConfig.readFits(path)


# The datastore records a formatter by its class's module and name when it chooses it itself (ingest and
# put without an explicit formatter): give these the stable path repositories record (see above).
PfsRawFormatter.__module__ = PfsConfigFormatter.__module__ = "pfswatchd.formatters"


class PfsRawDelegate(StorageClassDelegate):
    """Take components of an in-memory `PfsRaw`; parameters are the formatter's business."""

    def getComponent(self, composite: Any, componentName: str) -> Any:
        """Return component ``componentName`` of ``composite`` (a `PfsRaw`)."""
        if not isinstance(composite, PfsRaw):
            raise TypeError(f"expected a PfsRaw, got {type(composite).__name__}")
        try:
            return raw_component(composite, componentName)
        except KeyError as exc:
            raise AttributeError(str(exc)) from exc

    def handleParameters(self, inMemoryDataset: Any, parameters: Mapping[str, Any] | None = None) -> Any:
        """Return the dataset unchanged: ``readNum`` selects a read only for ``ramp``, which the formatter reads."""
        unknown = set(parameters or {}) - {"readNum"}
        if unknown:
            raise ValueError(f"unsupported raw parameters {sorted(unknown)}; only readNum is known")
        _read_num(parameters)
        return inMemoryDataset
