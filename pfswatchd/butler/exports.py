"""``butler import`` of an export written elsewhere, e.g. the observatory's calibrations.

``butler export`` writes, for every file, the formatter its repository recorded, and ``butler import``
imports that class by name before it ingests anything (daf_butler ``transfers/_yaml.py``, ``load``).
An export made where the PFS pipeline runs names obs_pfs's and obs_base's formatters
(``lsst.obs.pfs.formatters.DetectorMapFormatter``, ``lsst.obs.base.formatters.fitsGeneric.FitsGenericFormatter``),
which do not import on a host without the LSST stack, so there ``butler import`` stops at the first one.
`import_export` is ``butler import`` with one difference: a file whose formatter does not import here is
recorded with the formatter this repository configures for its dataset type (pfswatchd's, for the
calibration storage classes of :mod:`pfswatchd.butler.calibs`).  Everything else (dimension records,
RUN and CALIBRATION collections, validity ranges, dataset ids, transfer) is daf_butler's own import.
``pfswatchd hand-over`` later names obs_pfs's formatters for them again.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lsst.daf.butler import Butler, DatasetType
from lsst.utils import doImportType
from lsst.utils.introspection import get_full_type_name

from pfswatchd.errors import RefusedError

__all__ = ["ImportReport", "import_export"]


@dataclass
class ImportReport:
    """What an import did: datasets per dataset type, and formatters recorded in place of the export's."""

    datasets: Counter[str] = field(default_factory=Counter)
    replaced: dict[str, str] = field(default_factory=dict)  # the export's formatter -> the one recorded

    def lines(self) -> list[str]:
        out = [f"{name}: {count} datasets" for name, count in sorted(self.datasets.items())]
        out += [f"recorded {ours} for files the export reads with {theirs} (not importable here)"
                for theirs, ours in sorted(self.replaced.items())]
        return out


def importable(name: str) -> bool:
    try:
        doImportType(name)
    except (ImportError, AttributeError, TypeError, ValueError):
        return False
    return True


def import_export(butler: Butler, directory: str | Path, *, export_file: str | Path | None = None,
                  transfer: str | None = "auto", skip_dimensions: set[str] | None = None) -> ImportReport:
    """Import ``export_file`` (default ``directory/export.yaml``), its files relative to ``directory``.

    Raises:
        RefusedError: The export cannot be read, or names a formatter that does not import here for a
            dataset type for which this repository configures none that does; nothing is imported.
    """
    path = Path(export_file) if export_file is not None else Path(directory) / "export.yaml"
    try:
        data = yaml.safe_load(path.read_text())
        items = data["data"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise RefusedError(f"{path}: not a butler export ({type(exc).__name__}: {exc}); expected the YAML "
                           "file `butler export` writes") from None
    declared = {item["name"]: item for item in items if item.get("type") == "dataset_type"}
    report = ImportReport()
    for item in items:
        if item.get("type") != "dataset":
            continue
        name = item["dataset_type"]
        for record in item["records"]:
            report.datasets[name] += len(record.get("dataset_id") or ())
            theirs = record.get("formatter")
            if theirs is None or importable(theirs):
                continue
            record["formatter"] = ours = _configured_formatter(butler, name, declared.get(name), theirs, path)
            report.replaced[theirs] = ours
    # Written back as daf_butler's export writes it (yaml.dump: its representers for ids and times).
    stream = io.StringIO(yaml.dump(data, sort_keys=False))
    butler.import_(directory=str(directory), filename=stream, format="yaml", transfer=transfer,
                   skip_dimensions=skip_dimensions)
    return report


def _configured_formatter(butler: Butler, name: str, declared: dict[str, Any] | None, theirs: str,
                          path: Path) -> str:
    """The formatter this repository's datastore configuration gives dataset type ``name``."""
    if declared is not None:
        dataset_type = DatasetType(name, declared["dimensions"], declared["storage_class"],
                                   universe=butler.dimensions, isCalibration=bool(declared.get("is_calibration")))
    else:
        dataset_type = butler.get_dataset_type(name)
    factory = butler._datastore.formatterFactory  # type: ignore[attr-defined]
    try:
        return get_full_type_name(factory.getFormatterClass(dataset_type))
    except (KeyError, ImportError, AttributeError, TypeError) as exc:
        raise RefusedError(
            f"{path}: the {name} files are read with {theirs}, which does not import here, and this repository "
            f"configures no formatter that does for storage class {dataset_type.storageClass_name} ({exc}); "
            "import it where the PFS pipeline is installed, or into a repository made by `pfswatchd create`"
        ) from None
