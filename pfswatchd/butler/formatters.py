"""Butler formatters and storage classes for PFS raws and pfsConfigs (lsst-daf-butler 30.x).

`STORAGE_CLASSES` is the ``storageClasses:`` section and `FORMATTERS` the
``datastore.formatters:`` mapping of a repository seed config.  Both formatters are read-only:
raws and pfsConfigs enter a repository by ingest, never by ``butler.put``.

Components of ``raw`` (all derived, i.e. computed from the one file):

======================  ==================  ============================================
component               storage class       value
======================  ==================  ============================================
``raw.image``           PfsRawImage         CCD frame, NIR CDS, or read ``readNum``
``raw.metadata``        PfsRawMetadata      primary header (`astropy.io.fits.Header`)
``raw.exposure``        PfsRawExposure      `pfswatchd.pfsraw.Exposure`
``raw.detector``        PfsRawDetector      `pfswatchd.pfsraw.Detector`
``raw.visitInfo``       PfsRawVisitInfo     `pfswatchd.pfsraw.VisitInfo`
``raw.numReads``        int                 W_H4NRED, 1 for CCDs (butler default class)
``raw.dimensions``      PfsRawDimensions    ``(width, height)``
======================  ==================  ============================================

The ``readNum`` parameter (1-indexed) selects one read of a NIR ramp: it is applied to the
whole raw before a component is taken, so ``butler.get("raw.image", ..., parameters={"readNum": 2})``
is the second read and ``butler.get("raw", ..., parameters={"readNum": 2}).getImage()`` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lsst.daf.butler import FormatterNotImplementedError, FormatterV2, StorageClassDelegate
from lsst.resources import ResourcePath

from .pfsconfig import PfsConfig
from .pfsraw import PfsRaw

__all__ = ["FORMATTERS", "RAW_COMPONENTS", "STORAGE_CLASSES", "PfsConfigFormatter", "PfsRawDelegate",
           "PfsRawFormatter"]

RAW_COMPONENTS: dict[str, str] = {
    "image": "PfsRawImage",
    "metadata": "PfsRawMetadata",
    "exposure": "PfsRawExposure",
    "detector": "PfsRawDetector",
    "visitInfo": "PfsRawVisitInfo",
    "numReads": "int",
    "dimensions": "PfsRawDimensions",
}

# The names below are recorded in every repository pfswatchd creates (butler.yaml) and in the datastore
# record of every dataset it ingests, so they are a stable interface: the short paths
# (pfswatchd.formatters, pfswatchd.pfsraw, pfswatchd.pfsconfig) re-export these classes and stay.
# New repositories record the same strings as old ones on purpose: daf_butler keeps one storage class
# definition per name per process, and refuses a second definition whose pytype string differs, so a
# process that opened a repository made before the sub-package layout could not open a new one.
STORAGE_CLASSES: dict[str, dict[str, Any]] = {
    "PfsRawImage": {"pytype": "pfswatchd.pfsraw.Image"},
    "PfsRawMetadata": {"pytype": "astropy.io.fits.Header"},
    "PfsRawExposure": {"pytype": "pfswatchd.pfsraw.Exposure"},
    "PfsRawDetector": {"pytype": "pfswatchd.pfsraw.Detector"},
    "PfsRawVisitInfo": {"pytype": "pfswatchd.pfsraw.VisitInfo"},
    "PfsRawDimensions": {"pytype": "tuple"},
    "PfsRaw": {
        "pytype": "pfswatchd.pfsraw.PfsRaw",
        "delegate": "pfswatchd.formatters.PfsRawDelegate",
        "parameters": ["readNum"],
        "derivedComponents": dict(RAW_COMPONENTS),
    },
    "PfsConfig": {"pytype": "pfswatchd.pfsconfig.PfsConfig"},
}

FORMATTERS: dict[str, str] = {
    "PfsRaw": "pfswatchd.formatters.PfsRawFormatter",
    "PfsConfig": "pfswatchd.formatters.PfsConfigFormatter",
}


def raw_component(raw: PfsRaw, component: str) -> Any:
    """Return one named component of a raw.

    Raises:
        KeyError: For a component that `RAW_COMPONENTS` does not list.
    """
    if component == "image":
        return raw.getImage()
    if component == "metadata":
        return raw.getMetadata()
    if component == "exposure":
        return raw.getExposure()
    if component == "detector":
        return raw.detector
    if component == "visitInfo":
        return raw.visitInfo
    if component == "numReads":
        return raw.getNumReads()
    if component == "dimensions":
        return raw.getDimensions()
    raise KeyError(f"raw has no component {component!r}; known: {', '.join(RAW_COMPONENTS)}")


def _read_num(parameters: Mapping[str, Any] | None) -> int | None:
    value = (parameters or {}).get("readNum")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"readNum must be an integer read number (1-indexed), not {value!r}")
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

        The ``readNum`` parameter selects a NIR read before the component is taken.
        """
        data_id = self.dataset_ref.dataId
        plain = dict(data_id.mapping) if data_id.hasFull() else dict(data_id.required)
        raw = PfsRaw(path, plain, readNum=_read_num(self.file_descriptor.parameters))
        return raw if component is None else raw_component(raw, component)


class PfsConfigFormatter(_ReadOnlyFormatter):
    """Read a pfsConfig or PFSF file as a `PfsConfig`."""

    unsupported_parameters = None

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        """Return the `PfsConfig` of the file."""
        if component is not None:
            raise ValueError(f"PfsConfig has no component {component!r}")
        return PfsConfig.readFits(path)


class PfsRawDelegate(StorageClassDelegate):
    """Take components of an in-memory `PfsRaw` and apply its ``readNum`` parameter."""

    def getComponent(self, composite: Any, componentName: str) -> Any:
        """Return component ``componentName`` of ``composite`` (a `PfsRaw`)."""
        if not isinstance(composite, PfsRaw):
            raise TypeError(f"expected a PfsRaw, got {type(composite).__name__}")
        try:
            return raw_component(composite, componentName)
        except KeyError as exc:
            raise AttributeError(str(exc)) from exc

    def handleParameters(self, inMemoryDataset: Any, parameters: Mapping[str, Any] | None = None) -> Any:
        """Apply ``readNum`` to a `PfsRaw` (a copy with that read selected); reject other parameters."""
        if not parameters:
            return inMemoryDataset
        unknown = set(parameters) - {"readNum"}
        if unknown:
            raise ValueError(f"unsupported raw parameters {sorted(unknown)}; only readNum is known")
        if not isinstance(inMemoryDataset, PfsRaw):
            raise TypeError(f"readNum applies to a PfsRaw, not {type(inMemoryDataset).__name__}")
        return inMemoryDataset.withReadNum(_read_num(parameters))
