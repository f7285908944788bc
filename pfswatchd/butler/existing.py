"""What the repository already holds for a batch: duplicates by data ID, then by bytes.

A dataset of the same type and data ID already in the target RUN makes a new file a
DUPLICATE when the bytes are the same and a CONFLICT when they differ, whatever that
dataset's id: raws ingested by the official tool have the DATAID_TYPE_RUN id pfswatchd
computes too, but ``ingestPfsConfig.py`` gives pfsConfigs random (UNIQUE) ids, which an
id lookup never finds (a re-ingest then fails in ``Butler.ingest`` forever).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from lsst.daf.butler import Butler, DatasetRef

from pfswatchd.butler.failures import query
from pfswatchd.butler.transfer import Placement, same_content
from pfswatchd.errors import ConflictError

Key = tuple[str, str, tuple[Any, ...]]


def key(ref: DatasetRef) -> Key:
    """Dataset type, RUN and required data ID values: what the registry keeps unique, whatever the id."""
    return (ref.datasetType.name, ref.run, tuple(ref.dataId.required_values))


class Existing:
    """Registry lookups for one repository; remembers which RUNs exist."""

    def __init__(self, butler: Butler, runs: set[str]) -> None:
        self.butler = butler
        self.runs = runs  # shared with the ingester: RUNs known to exist

    def find(self, refs: Iterable[DatasetRef]) -> dict[Key, DatasetRef]:
        """Datasets already registered with these refs' types, RUNs and data IDs (one query per
        type, RUN and instrument)."""
        groups: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        for ref in refs:
            instrument, visit = cast(str, ref.dataId["instrument"]), cast(int, ref.dataId["visit"])
            groups[(ref.datasetType.name, ref.run, instrument)].add(visit)
        found: dict[Key, DatasetRef] = {}
        for (type_name, run, instrument), visits in groups.items():
            if run not in self.runs and not self._run_exists(run):
                continue
            stored = query(
                functools.partial(
                    self.butler.query_datasets,
                    type_name,
                    collections=run,
                    where="instrument = inst AND visit IN (visits)",
                    bind={"inst": instrument, "visits": sorted(visits)},
                    find_first=False,
                    limit=None,
                    explain=False,
                )
            )
            found.update((key(ref), ref) for ref in stored)
        return found

    def _run_exists(self, run: str) -> bool:
        try:
            self.butler.registry.getCollectionType(run)
        except Exception:
            return False
        self.runs.add(run)
        return True

    def paths(self, refs: list[DatasetRef]) -> dict[DatasetRef, Path]:
        """Where the datastore keeps these registered datasets (one datastore lookup for all)."""
        if not refs:
            return {}
        uris = query(lambda: self.butler.get_many_uris(refs))
        paths = {}
        for ref, found in uris.items():
            if found.primaryURI is None or found.componentURIs:
                raise RuntimeError(
                    f"Dataset ({ref}) includes distinct URIs for components. Use Butler.getURIs() instead."
                )
            paths[ref] = Path(found.primaryURI.ospath)
        return paths


def check_duplicate(source: Path, stored: DatasetRef, stored_path: Path, transfer: str,
                    examined: tuple[int, int, int, int] | None = None) -> Placement | None:
    """Same bytes: a duplicate (with move, the removal of its source is returned, for the caller to
    finish when it has recorded the file); other bytes: a ConflictError."""
    if same_content(source, stored_path):
        if transfer == "move" and stored_path != source:
            placed = (examined[3], examined[0]) if examined is not None else None
            return Placement(source, stored_path, created=False, unlink_source_after_commit=True, placed=placed)
        return None
    data_id = ", ".join(f"{k}={v}" for k, v in stored.dataId.required.items())
    raise ConflictError(
        f"{source.name}: {stored.datasetType.name} {data_id} is already in {stored.run} (dataset "
        f"{stored.id}) from a different file ({stored_path}); expected identical content, "
        "nothing was overwritten"
    )
