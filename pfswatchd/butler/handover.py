"""``pfswatchd hand-over``: a repository written without obs_pfs becomes one the PFS pipeline reads with obs_pfs.

A repository pfswatchd made or filled on a host without the LSST stack reads raws and pfsConfigs with
pfswatchd's classes: its ``butler.yaml`` defines the storage classes with pfswatchd's Python types, and
each dataset's datastore record names the pfswatchd formatter that reads it (daf_butler reads a dataset
with the formatter recorded when it was stored).  Run where obs_pfs is importable, the hand-over makes it
what the official tools would have made:

1. checks, changing nothing: obs_pfs imports; the repository has the PFS universe and a file datastore;
   the new configuration (below) defines the storage class of every registered dataset type; every
   formatter it is going to record imports;
2. registers each instrument through obs_pfs's Instrument class, as ``butler register-instrument`` does
   (missing dataset types are added; records that differ from obs_pfs's stop it here, unless
   ``update_records``, which is ``register-instrument --update``);
3. in one registry transaction, names obs_pfs's formatter in every datastore record that names one of
   pfswatchd's: a raw's is the one its instrument's ``getRawFormatter`` gives (as obs_base's raw ingest
   records), any other dataset's the one the new configuration gives its dataset type (as ``put`` and
   ``ingest`` record);
4. replaces ``butler.yaml`` (by rename) with the repository's own configuration in which the storage
   classes, formatters and file templates are obs_pfs's (``$OBS_PFS_DIR/gen3/butler.yaml``), keeping the
   old one as ``butler.yaml.pfswatchd-standalone``.

daf_butler has no API for changing the formatter a dataset was stored with, nor for a repository's
storage-class configuration, which lives only in ``butler.yaml``.  Step 3 therefore writes the datastore's
records through the datastore's own table API (``replace`` on its opaque table, the call FileDatastore
makes itself), inside ``Butler.transaction``; dataset ids, paths, checksums, collections, calibration
validity ranges and provenance are untouched.  Each step finds nothing to do when already done: a second
run changes nothing, and a run interrupted anywhere is finished by the next one (an interruption inside
step 3 leaves every record as it was; between steps 3 and 4 the records are obs_pfs's and butler.yaml
is not yet, which the next run completes).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsst.daf.butler import Butler, ButlerConfig, CollectionType, Config, DatasetType, StorageClassFactory
from lsst.daf.butler.registry import ConflictingDefinitionError
from lsst.utils.introspection import get_full_type_name

from pfswatchd import faults
from pfswatchd.butler import obspfs, repo
from pfswatchd.butler.exports import importable
from pfswatchd.errors import RefusedError

__all__ = ["BACKUP", "HandOverReport", "hand_over"]

BACKUP = "butler.yaml.pfswatchd-standalone"
STAGED = "butler.hand-over.yaml"  # the new butler.yaml, written next to it and renamed over it
OURS = "pfswatchd."  # every formatter pfswatchd records starts so (pfswatchd.formatters.*, older paths too)
SECTIONS = (("storageClasses",), ("datastore", "formatters"), ("datastore", "templates"))
BATCH = 5000


@dataclass
class HandOverReport:
    """What the hand-over changed (all empty: nothing to change)."""

    dataset_types: list[str] = field(default_factory=list)  # registered by obs_pfs's Instrument
    formatters: Counter[tuple[str, str]] = field(default_factory=Counter)  # (old, new) -> datasets
    config: bool = False  # butler.yaml replaced

    @property
    def changed(self) -> bool:
        return bool(self.dataset_types or self.formatters or self.config)

    def lines(self) -> list[str]:
        if not self.changed:
            return ["nothing to change: it already reads with obs_pfs's classes"]
        out = [f"registered dataset type {name} (obs_pfs's Instrument)" for name in self.dataset_types]
        out += [f"{count} datasets now read with {new} (were {old})"
                for (old, new), count in sorted(self.formatters.items())]
        if self.config:
            out.append(f"butler.yaml: obs_pfs's storage classes, formatters and file templates (the old one is "
                       f"{BACKUP})")
        return out


def hand_over(root: str | Path, *, update_records: bool = False) -> HandOverReport:
    """Hand the repository at ``root`` over to obs_pfs (see the module docstring).

    Raises:
        RefusedError: obs_pfs is not importable, or the repository cannot be handed over as it is; the
            message says why, and nothing was changed.
    """
    root = Path(root)
    if not obspfs.importable():
        raise RefusedError(f"{root}: obs_pfs (lsst.obs.pfs) is not importable here; run the hand-over where the "
                           "PFS pipeline is set up, with pfswatchd installed by scripts/install-into-stack.py. "
                           "Nothing was changed")
    if not repo.is_repository(root):
        raise RefusedError(f"{root}: no butler repository here (no butler.yaml)")
    current = Config(str(root / "butler.yaml"))
    new = official_config(current)  # keeps current's file location: the repository root resolves as before
    report = HandOverReport(config=new.toDict() != current.toDict())
    # Opened with the new configuration only: daf_butler keeps one definition of a storage class per
    # process, so this process must never see pfswatchd's PfsRaw.
    with Butler.from_config(ButlerConfig(new), writeable=True) as butler:
        repo.check_universe(butler, root)
        _check_storage_classes(butler, root)
        before = {t.name for t in butler.registry.queryDatasetTypes()}
        plan = _plan(butler, root)  # also checks that every new formatter imports
        _register_instruments(butler, root, update_records)
        report.dataset_types = sorted({t.name for t in butler.registry.queryDatasetTypes()} - before)
        report.formatters = _rewrite(butler, plan)
    faults.pause("handover.committed")
    if report.config:
        if not (root / BACKUP).exists():
            shutil.copy2(root / "butler.yaml", root / BACKUP)
        staged = root / STAGED
        new.dumpToUri(str(staged), overwrite=True)
        os.replace(staged, root / "butler.yaml")
    return report


def official_config(current: Config) -> Config:
    """The repository's configuration with obs_pfs's storage classes, formatters and templates."""
    seed = obspfs.seed_config()
    new = Config(current)
    for section in SECTIONS:
        if section in new:
            del new[section]
        if section in seed:
            new[section] = seed[section]
    return new


def _check_storage_classes(butler: Butler, root: Path) -> None:
    factory = StorageClassFactory()
    missing = sorted(f"{t.name} ({t.storageClass_name})" for t in butler.registry.queryDatasetTypes()
                     if t.storageClass_name not in factory)
    if missing:
        raise RefusedError(f"{root}: obs_pfs's configuration defines no storage class for the dataset types "
                           f"{', '.join(missing)}; nothing was changed")


def _runs(butler: Butler) -> list[str]:
    return list(butler.collections.query("*", collection_types={CollectionType.RUN}))


def _batches(butler: Butler, dataset_type: DatasetType, runs: list[str]) -> Iterator[list[Any]]:
    """Every dataset of the type in any RUN (each dataset is in exactly one), BATCH at a time."""
    batch: list[Any] = []
    with butler.query() as query:
        for ref in query.datasets(dataset_type, collections=runs, find_first=False):
            batch.append(ref)
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _plan(butler: Butler, root: Path) -> dict[str, list[Any]]:
    """The dataset ids whose record names a pfswatchd formatter, by the obs_pfs formatter they get."""
    table = butler._datastore._table  # type: ignore[attr-defined]  # FileDatastore's records
    factory = butler._datastore.formatterFactory  # type: ignore[attr-defined]
    runs = _runs(butler)
    plan: dict[str, list[Any]] = {}
    if not runs:
        return plan
    for dataset_type in butler.registry.queryDatasetTypes():
        chosen: dict[str, str] = {}  # per instrument for raws, one for the others
        for batch in _batches(butler, dataset_type, runs):
            refs = {ref.id: ref for ref in batch}
            for row in table.fetch(dataset_id=list(refs)):
                if str(row["formatter"]).startswith(OURS):
                    ref = refs[row["dataset_id"]]
                    plan.setdefault(_new_formatter(butler, factory, ref, chosen, root), []).append(ref.id)
    return plan


def _new_formatter(butler: Butler, factory: Any, ref: Any, chosen: dict[str, str], root: Path) -> str:
    raw = ref.datasetType.storageClass_name == "PfsRaw"
    key = str(ref.dataId["instrument"]) if raw else ""
    if key not in chosen:
        try:
            name = (obspfs.raw_formatter(butler.registry, key, ref.dataId) if raw
                    else get_full_type_name(factory.getFormatterClass(ref.datasetType)))
        except Exception as exc:
            raise RefusedError(f"{root}: no obs_pfs formatter for the {ref.datasetType.name} datasets "
                               f"({type(exc).__name__}: {exc}); nothing was changed") from None
        if name.startswith(OURS) or not importable(name):
            raise RefusedError(f"{root}: the {ref.datasetType.name} datasets would be read with {name}, which is "
                               "not an importable obs_pfs formatter here; nothing was changed")
        chosen[key] = name
    return chosen[key]


def _register_instruments(butler: Butler, root: Path, update: bool) -> None:
    for record in butler.query_dimension_records("instrument", explain=False):
        if record.name not in repo.INSTRUMENT_CLASSES:
            continue
        try:
            obspfs.instrument(record.name, butler.registry).register(butler.registry, update=update)
        except ConflictingDefinitionError as exc:
            raise RefusedError(
                f"{root}: the records of instrument {record.name} differ from those obs_pfs's "
                f"{repo.INSTRUMENT_CLASSES[record.name]} writes ({exc}); run the hand-over with "
                "--update-instrument-records to rewrite them as `butler register-instrument --update` does. "
                "Nothing was changed"
            ) from None


def _rewrite(butler: Butler, plan: dict[str, list[Any]]) -> Counter[tuple[str, str]]:
    """Name the new formatters in the records, all in one transaction (read again inside it)."""
    table = butler._datastore._table  # type: ignore[attr-defined]
    changed: Counter[tuple[str, str]] = Counter()
    with butler.transaction():
        for new, ids in plan.items():
            for start in range(0, len(ids), BATCH):
                rows = [dict(row) for row in table.fetch(dataset_id=ids[start:start + BATCH])
                        if str(row["formatter"]).startswith(OURS)]
                for row in rows:
                    changed[(str(row["formatter"]), new)] += 1
                    row["formatter"] = new
                if rows:
                    table.replace(*rows)
        faults.pause("handover.records")
    return changed
