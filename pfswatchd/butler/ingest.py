"""The ingest engine: classified files in, butler datasets out.

One call of :meth:`Ingester.ingest` takes a batch of classified raws and
pfsConfigs (any mix, any visits, any order) and writes them in ONE registry
transaction:

1. *plan* (reads only): check each raw against its visit (the record already in
   the registry, or the first raw of the visit in this batch): one design and
   one dither per visit.  Compute each dataset's ref with a DATAID_TYPE_RUN id
   (the id daf_butler computes, so re-ingest is idempotent) and find the refs
   that already exist: the same bytes again is a DUPLICATE (success, nothing
   changes), other bytes with that data ID a CONFLICT (never an overwrite).  A
   pfsConfig whose visit has no raws yet is WAITING.
2. *write*: place the files (:mod:`pfswatchd.butler.transfer`), then in one
   transaction insert the dimension records (pfs_design_id, dither, visit with
   its metadata, cat_id and pfsConfig join records) and ``Butler.ingest`` the
   datasets.  If the transaction fails, the placed files are removed, and a
   multi-file batch is split in halves and retried so that one bad file cannot
   take the others down; transient failures (database locked or down, disk
   full) fail the whole batch with a retryable error kind instead.

Unlike the official tool, the files of a visit may come in separate calls: the
visit record is written by the first raw of the visit to arrive and later raws
are checked against it (obs_pfs uses the first file of a call the same way),
with only the visit columns the repository's own universe has.

Where pfsConfigs go is the PFSF rule of :mod:`pfswatchd.butler.pfsfrule`.  Duplicates are found
by data ID, whatever the existing dataset's id (the official pfsConfig ingest gives random ids),
then by bytes.

This is the only module that writes to the butler.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from cachetools import LRUCache
from lsst.daf.butler import (
    Butler,
    ButlerConfig,
    CollectionType,
    DataCoordinate,
    DatasetIdGenEnum,
    DatasetRef,
    DatasetType,
    DimensionRecord,
    FileDataset,
)
from lsst.daf.butler.datastore.file_templates import FileTemplates

from pfswatchd import faults
from pfswatchd.butler import obspfs, pfsfrule, repo
from pfswatchd.butler.existing import Existing, Key, check_duplicate, key
from pfswatchd.butler.failures import as_error, file_error, query, raise_if_database_unavailable
from pfswatchd.butler.transfer import TRANSFER_MODES, Placement, check_source, clean_scratch, place, same_content
from pfswatchd.butler.visits import VisitRecords, VisitState
from pfswatchd.errors import (
    BadHeaderError,
    DesignMismatchError,
    ErrorKind,
    Interrupted,
    PfsWatchError,
    SourceChangedError,
    TransientError,
    UnknownInstrumentError,
    transient,
)
from pfswatchd.files.fitsheader import read_column
from pfswatchd.model import Classified, FileKind, Outcome, PfsConfigFile, RawFile, Status
from pfswatchd.permissions import DEFAULT, Permissions

_log = logging.getLogger(__name__)

VISIT_CACHE = 1024  # visits kept in memory (two busy nights; ~8 KiB each, with their times and region)
RECORD_CACHE = 4096  # other dimension records kept (designs, arms, spectrographs)
COPIERS = 4  # files copied into the datastore at once


@dataclass(frozen=True, slots=True)
class IngestSettings:
    transfer: str = "auto"
    raw_run: str | None = None  # None: <instrument>/raw/sps
    pfsconfig_run: str | None = None  # None: <instrument>/raw/pfsConfig
    fail_fast: bool = False
    perms: Permissions = DEFAULT
    # Instruments that a file may register in a repository that lacks them (repository.instruments).
    instruments: tuple[str, ...] = repo.DEFAULT_INSTRUMENTS

    def __post_init__(self) -> None:
        if self.transfer not in TRANSFER_MODES:
            raise ValueError(f"transfer mode {self.transfer!r}; expected one of {', '.join(TRANSFER_MODES)}")


@dataclass(slots=True)
class _Item:
    """One file on its way through a batch."""

    index: int
    file: Classified
    ref: DatasetRef | None = None
    run: str = ""
    cat_ids: tuple[int, ...] | None = None  # a pfsConfig's catIds, read once and kept across re-plans
    warning: str | None = None  # ingested, with this warning (e.g. a visit-level value differs)
    warning_kind: ErrorKind | None = ErrorKind.VISIT_MISMATCH
    standin: DatasetRef | None = None  # a customised PFSF's second dataset in the base RUN (pfsfrule)

    def fresh(self) -> _Item:
        """This item for a new plan: only what was read from the file carries over."""
        return _Item(self.index, self.file, cat_ids=self.cat_ids)


@dataclass(slots=True)
class _Plan:
    new: list[_Item] = field(default_factory=list)
    new_visits: dict[tuple[str, int], VisitState] = field(default_factory=dict)
    # The registry's visits this plan uses, held here so that the bounded cache may evict them mid-plan.
    known_visits: dict[tuple[str, int], VisitState] = field(default_factory=dict)
    new_runs: dict[str, str] = field(default_factory=dict)  # run -> instrument
    # Files with the data ID (and RUN) of an earlier file of the batch: planned again once it is written,
    # so that the same bytes are a duplicate of it and other bytes a conflict (see _without_twins).
    later: list[_Item] = field(default_factory=list)


class Ingester:
    """Ingests classified files into one butler repository."""

    def __init__(self, butler: Butler, root: str | Path, settings: IngestSettings | None = None) -> None:
        self.butler = butler
        self.settings = settings or IngestSettings()
        # The repository's own universe (17 or 18 visit columns): records carry only its columns.
        self.shape = repo.check_universe(butler, root)
        self.universe = butler.dimensions
        self._visit_records = VisitRecords(self.universe)
        self.raw_type, self.pfsconfig_type = repo.dataset_types(self.universe)
        self.datastore_root = Path(next(iter(butler.get_datastore_roots().values())).ospath)  # type: ignore[union-attr]
        config = ButlerConfig(str(root))
        self.templates = FileTemplates(config["datastore", "templates"], universe=self.universe)
        self._formatters = repo.formatter_overrides(config)
        # Where obs_pfs runs and configures the repository: each raw records its instrument's formatter.
        self._raw_formatters = obspfs.raw_formatters(config, butler.registry)
        # (dataset type, instrument, formatter asked for: None or a name) -> the class the datastore used.
        self._chosen_formatters: dict[tuple[str, Any, str | None], type] = {}
        self._register_instrument = obspfs.recipe().register_instrument
        clean_scratch(self.datastore_root)
        self._instruments: dict[str, DimensionRecord] = {}
        # Bounded: a year brings ~180,000 visits; a visit that fell out is read from the registry again.
        self._visits: LRUCache[tuple[str, int], VisitState] = LRUCache(maxsize=VISIT_CACHE)
        self._runs: set[str] = set()
        self._existing = Existing(butler, self._runs)
        # arm, spectrograph, pfs_design_id, ... records built for expanded refs (cheap to rebuild)
        self._records: LRUCache[tuple[str, tuple[Any, ...]], DimensionRecord] = LRUCache(maxsize=RECORD_CACHE)
        self._templates: dict[str, Any] = {}
        self._copiers: ThreadPoolExecutor | None = None  # placements that copy, several at once
        self._keys: dict[str, tuple[str, ...]] = {}
        # The one-shot commands set this to their interrupt flag: a batch stops between placements and
        # before its transaction commits (raising Interrupted, which undoes what it placed).
        self.interrupted: Callable[[], int | None] = _never
        # The service records each file in its ledger before a move removes the file's source (a kill
        # in between must leave a source that a restart finds again): it sets this and calls
        # finish_moves() after recording.  The one-shot commands remove sources at once.
        self.defer_moves = False
        self._moves_owed: list[Placement] = []

    # -- public ----------------------------------------------------------------------------------

    def ingest(self, files: Sequence[Classified]) -> list[Outcome]:
        """Ingest a batch; one Outcome per file, in the order given."""
        outcomes: dict[int, Outcome] = {}
        items = [_Item(index, file) for index, file in enumerate(files)]
        checked = False
        while items:
            later: list[_Item] = []
            self._ingest_items(items, outcomes, later, checked=checked)
            # A file whose data ID an earlier one of the batch has: after that one, against the registry.
            items, checked = [item.fresh() for item in later if item.index not in outcomes], True
        return [outcomes[index] for index in range(len(files))]

    def run_for(self, file: Classified, instrument: str) -> str:
        if isinstance(file, RawFile):
            return self.settings.raw_run or repo.default_raw_run(instrument)
        return pfsfrule.home_run(self._pfsconfig_base(instrument), file.subset)

    def _pfsconfig_base(self, instrument: str) -> str:
        return self.settings.pfsconfig_run or repo.default_pfsconfig_run(instrument)

    # -- the two phases --------------------------------------------------------------------------

    def _ingest_items(self, items: list[_Item], outcomes: dict[int, Outcome], later: list[_Item], *,
                      checked: bool = False) -> None:
        """Plan and write ``items``; on failure re-plan with registry checks, then bisect.

        The first attempt is optimistic: it reads nothing from the registry for
        visits it has not seen (they are assumed new) and does not look for
        existing datasets; the database's constraints and Butler.ingest's own
        check catch what it assumed wrongly, and the batch is re-planned with
        ``checked`` (visits loaded, existing datasets compared).  Files that
        must wait for an earlier file of the batch go to ``later``.

        Nothing raises out of here for one file: an exception a file causes
        while it is planned, placed or registered becomes its outcome, and the
        rest of the batch goes on (a batch whose plan or write fails is split
        until the file that fails is alone).
        """
        planned: dict[int, Outcome] = {}
        try:
            plan = self._plan(items, planned, checked=checked)
        except TransientError as exc:
            self._fail_all(items, outcomes, exc)
            return
        except Exception as exc:  # not one file's step: the batch's own reads (visits, existing datasets)
            try:
                raise_if_database_unavailable(exc)
            except TransientError as error:
                self._fail_all(items, outcomes, error)
                return
            self._isolate(items, outcomes, later, exc, "planning")
            return
        if not checked and any(o.error_kind in _VISIT_CHECKS for o in planned.values()):
            # A mismatch against a visit this plan only assumed new: decide with the registry's view.
            self._ingest_items([i.fresh() for i in items], outcomes, later, checked=True)
            return
        outcomes.update(planned)
        if self.settings.fail_fast and any(not o.ok for o in outcomes.values()):
            for item in [*plan.new, *plan.later]:
                outcomes[item.index] = self._outcome(
                    item, Status.SKIPPED, message="not written: fail-fast stopped at an earlier error"
                )
            return
        later.extend(plan.later)
        if not plan.new:
            return
        try:
            self._write(plan, checked=checked)
        except _SourcesChanged as exc:
            # Not the files examined: nothing of theirs is written; the others are written without them.
            rest = []
            for item in plan.new:
                error = exc.errors.get(item.file.path)
                if error is not None:
                    outcomes[item.index] = self._outcome(item, Status.FAILED, error.kind, str(error))
                else:
                    rest.append(item.fresh())
            if rest:
                self._ingest_items(rest, outcomes, later, checked=checked)
            return
        except TransientError as exc:
            self._fail_all(plan.new, outcomes, exc)
            return
        except Exception as exc:
            fresh = [i.fresh() for i in plan.new]
            if not checked:
                self._ingest_items(fresh, outcomes, later, checked=True)
                return
            self._isolate(fresh, outcomes, later, exc, "writing")
            return
        for item in plan.new:
            if item.warning:
                outcomes[item.index] = self._outcome(item, Status.INGESTED, item.warning_kind, item.warning)
            else:
                outcomes[item.index] = self._outcome(item, Status.INGESTED)

    def _isolate(self, items: list[_Item], outcomes: dict[int, Outcome], later: list[_Item], exc: Exception,
                 doing: str) -> None:
        """A batch failed as a whole: a lone file (or any with --fail-fast) gets the failure as its reason;
        otherwise each half is tried on its own, until the bad file(s) are alone."""
        if len(items) == 1 or self.settings.fail_fast:
            path = items[0].file.path
            error = as_error(exc, path) if doing == "writing" else file_error(exc, path, doing)
            _log.debug("%s failed", path, exc_info=exc)
            self._fail_all(items, outcomes, error)
            return
        half = len(items) // 2
        self._ingest_items([i.fresh() for i in items[:half]], outcomes, later, checked=True)
        self._ingest_items([i.fresh() for i in items[half:]], outcomes, later, checked=True)

    def _fail(self, item: _Item, outcomes: dict[int, Outcome], exc: Exception, doing: str) -> None:
        """The per-file guard: any exception of one file's step becomes that file's one-line reason."""
        error = file_error(exc, item.file.path, doing)
        if error.kind is ErrorKind.INTERNAL:
            _log.debug("%s: %s failed", item.file.path, doing, exc_info=exc)
        outcomes[item.index] = self._outcome(item, Status.FAILED, error.kind, str(error))

    @staticmethod
    def _without_twins(candidates: list[_Item], plan: _Plan) -> list[_Item]:
        """The candidates, but the second and later file with one data ID and RUN (a copy of a file, or
        another file for the same camera and visit), which go to ``plan.later``: written together, the
        registry cannot tell them apart; planned after the first, each is a duplicate of it (the same
        bytes) or a conflict (other bytes), as if it had come in a later batch."""
        first: set[Key] = set()
        unique = []
        for item in candidates:
            assert item.ref is not None
            slot = key(item.ref)
            if slot in first:
                plan.later.append(item)
            else:
                first.add(slot)
                unique.append(item)
        return unique

    def _plan(self, items: list[_Item], outcomes: dict[int, Outcome], *, checked: bool) -> _Plan:
        plan = _Plan()
        raws = [item for item in items if isinstance(item.file, RawFile)]
        configs = [item for item in items if isinstance(item.file, PfsConfigFile)]
        raw_files = [cast(RawFile, item.file) for item in raws]
        refused: dict[str, PfsWatchError] = {}
        for instrument in sorted({raw.instrument for raw in raw_files}):
            try:
                self._ensure_instrument(instrument)
            except TransientError:
                raise
            except PfsWatchError as exc:
                refused[instrument] = exc
            except Exception as exc:
                raise_if_database_unavailable(exc)
                refused[instrument] = file_error(exc, Path(instrument), "registering the instrument")
        if checked:
            self._load_visits({(raw.instrument, raw.visit) for raw in raw_files if raw.instrument not in refused},
                              plan)
        candidates: list[_Item] = []
        for item in raws:
            try:
                error = refused.get(cast(RawFile, item.file).instrument)
                if error is not None:
                    raise type(error)(f"{item.file.path.name}: {error}", kind=error.kind)
                self._check_raw(item, plan)
            except Exception as exc:  # the per-file guard: this file's reason, the batch goes on
                self._fail(item, outcomes, exc, "planning")
                continue
            candidates.append(item)
        for item in configs:
            try:
                waiting = self._check_pfsconfig(item, plan)
            except Exception as exc:
                self._fail(item, outcomes, exc, "reading")
                continue
            if waiting:
                outcomes[item.index] = self._outcome(item, Status.WAITING, message=waiting)
                continue
            candidates.append(item)
        candidates = self._without_twins(candidates, plan)
        if not checked:
            self._pick_standins(candidates, {})
            plan.new.extend(candidates)
            return plan
        existing = self._existing_refs(candidates)
        self._pick_standins(candidates, existing)
        duplicates: list[tuple[_Item, DatasetRef]] = []
        for item in candidates:
            assert item.ref is not None
            stored = existing.get(key(item.ref))
            if stored is None:
                plan.new.append(item)
            else:
                duplicates.append((item, stored))
        stored_paths = self._existing.paths([stored for _, stored in duplicates])
        displaced = []
        for item, stored in list(duplicates):
            try:
                if self._displaced(item, stored, stored_paths[stored]):
                    displaced.append((item, stored))
            except Exception as exc:
                self._fail(item, outcomes, exc, "comparing with the stored dataset")
                duplicates.remove((item, stored))
        if displaced:
            duplicates = self._move_displaced(displaced, duplicates, plan, stored_paths)
        for item, stored in duplicates:
            try:
                move = check_duplicate(item.file.path, stored, stored_paths[stored], self.settings.transfer,
                                       item.file.examined)
            except Exception as exc:
                self._fail(item, outcomes, exc, "comparing with the stored dataset")
                continue
            if move is not None:
                self._completed([move])
            assert item.ref is not None
            if stored.id == item.ref.id:
                outcomes[item.index] = self._outcome(item, Status.DUPLICATE)
                continue
            # Another tool wrote it (ingestPfsConfig.py gives random ids): the same bytes, another id.
            item.ref = stored
            outcomes[item.index] = replace(
                self._outcome(item, Status.DUPLICATE,
                              message=f"the same bytes are already in {stored.run} as dataset {stored.id}, "
                              "written by another tool"),
                foreign=True)
        return plan

    def _write(self, plan: _Plan, *, checked: bool) -> None:
        placed: list[Placement] = []
        asked: list[tuple[tuple[str, Any, str | None], FileDataset]] = []  # formatters the datastore chooses
        try:
            datasets = []
            refs: list[tuple[_Item, DatasetRef]] = []
            for item in plan.new:
                assert item.ref is not None
                # An expanded ref (records attached) spares Butler.ingest a registry lookup per batch.
                item.ref = self._expanded(item.ref, plan)
                refs.append((item, item.ref))
                if item.standin is not None:  # a second dataset, with a file of its own (pfsfrule)
                    item.standin = self._expanded(item.standin, plan)
                    refs.append((item, item.standin))
            if self.settings.transfer != "direct":
                # Only a checked plan knows that an existing destination is not a registered dataset,
                # so only then may an old orphan be replaced.
                self._place_all([(item.file, self._destination(ref)) for item, ref in refs], placed,
                                replace_orphans=checked)
            else:
                _check_all([item.file for item in plan.new])
            places = iter(placed)
            for item, ref in refs:
                formatter = self._formatters.get(ref.datasetType.storageClass_name)
                if self._raw_formatters is not None and ref.datasetType.name == "raw":
                    formatter = self._raw_formatters(ref.dataId)
                path = str(item.file.path.absolute() if self.settings.transfer == "direct" else next(places).dest)
                dataset = FileDataset(path=path, refs=[ref], formatter=formatter)
                if formatter is None or isinstance(formatter, str):
                    # The class the datastore chose for the first such file (it looks it up, or imports the
                    # name, for every file it is not given a class for: ~35 us each, on a burst's path).
                    key = (ref.datasetType.name, ref.dataId["instrument"], formatter)
                    chosen = self._chosen_formatters.get(key)
                    if chosen is None:
                        asked.append((key, dataset))
                    else:
                        dataset.formatter = chosen
                datasets.append(dataset)
            with self.butler.transaction():
                self._register_runs(plan.new_runs)
                self._insert_records(plan)
                self.butler.ingest(
                    *datasets,
                    transfer="direct" if self.settings.transfer == "direct" else None,
                    record_validation_info=True,
                )
                faults.pause("ingest.registered", until=self.interrupted)
                self._stop_if_interrupted()  # inside the transaction: it rolls back
        except BaseException as exc:
            for placement in placed:
                placement.undo()
            if isinstance(exc, OSError):
                raise transient(exc, "placing files in the datastore") from exc
            raise_if_database_unavailable(exc)
            raise
        # Committed: the cache may now learn what the registry holds.
        self._visits.update(plan.new_visits)
        for key, dataset in asked:
            if isinstance(dataset.formatter, type):  # Butler.ingest sets it to the class it used
                self._chosen_formatters.setdefault(key, dataset.formatter)
        self._runs.update(plan.new_runs)
        self._completed(placed)

    def _completed(self, placements: Iterable[Placement]) -> None:
        """Registered (or found a duplicate): with ``move``, the sources go now, or, when the caller
        records the files first (``defer_moves``: the service's ledger), at :meth:`finish_moves`."""
        if self.defer_moves:
            self._moves_owed.extend(p for p in placements if p.unlink_source_after_commit)
            return
        for placement in placements:
            placement.finish()

    def complete_move(self, source: Path, dataset_id: str) -> bool:
        """A move recorded done whose source is still there (a kill came before its removal): remove the
        source if the repository's file for ``dataset_id`` is that file (a hard link of it, or a regular
        file of its own with the same bytes; never a symbolic link to it).  True if removed."""
        ref = self.butler.get_dataset(dataset_id)
        if ref is None:
            return False
        stored = Path(self.butler.getURI(ref).ospath)
        if stored == source or not stat.S_ISREG(os.lstat(stored).st_mode) or not same_content(source, stored):
            return False
        st = os.stat(source)
        return Placement(source, stored, created=False, unlink_source_after_commit=True,
                         placed=(st.st_ino, st.st_size)).finish()

    def forget_moves(self) -> None:
        """The caller could not record the files: their sources stay (a rescan completes the moves)."""
        self._moves_owed = []

    def finish_moves(self) -> list[Path]:
        """Remove the sources of the moves owed since the last call (the files are recorded); return
        the sources that now hold another file (renamed onto them since), which were left alone."""
        owed, self._moves_owed = self._moves_owed, []
        return [placement.source for placement in owed if not placement.finish()]

    def _stop_if_interrupted(self) -> None:
        signum = self.interrupted()
        if signum is not None:
            raise Interrupted(signum)

    def _place_all(self, destinations: list[tuple[Classified, Path]], placed: list[Placement], *,
                   replace_orphans: bool) -> None:
        """Place each (file, destination), appending the placements to ``placed`` in that order.

        Copies (``copy``, and ``move`` when it has to copy) wait for the disk, in the kernel and
        without the interpreter lock: several run at once, so that one file's fsync overlaps the
        next one's copy.  After a failure or an interruption every placement made is still in
        ``placed`` (none is left running, for the caller's undo) and the first error is raised.
        Sources that are not the files examined do not stop the others: they are raised together
        at the end (:class:`_SourcesChanged`).
        """
        changed: dict[Path, SourceChangedError] = {}

        def one(file: Classified, dest: Path) -> Placement:
            return place(file.path, dest, self.settings.transfer, datastore_root=self.datastore_root,
                         replace_orphans=replace_orphans, perms=self.settings.perms, expect=file.examined)

        def after_each() -> None:
            faults.pause("ingest.placed", until=self.interrupted)
            self._stop_if_interrupted()

        if self.settings.transfer not in ("copy", "move") or len(destinations) < 2:
            for file, dest in destinations:
                try:
                    placed.append(one(file, dest))
                except SourceChangedError as exc:
                    changed[file.path] = exc
                    continue
                after_each()
        else:
            if self._copiers is None:
                self._copiers = ThreadPoolExecutor(max_workers=COPIERS, thread_name_prefix="pfswatchd-copy")
            futures = [(file, self._copiers.submit(one, file, dest)) for file, dest in destinations]
            error: BaseException | None = None
            for file, future in futures:
                try:
                    placed.append(future.result())
                    if error is None:
                        after_each()
                except SourceChangedError as exc:
                    changed[file.path] = exc
                except BaseException as exc:
                    error = error or exc
                    for _, waiting in futures:
                        waiting.cancel()  # those not started yet; the running ones are collected
            if error is not None:
                raise error
        if changed:
            raise _SourcesChanged(changed)

    # -- raws ------------------------------------------------------------------------------------

    def _check_raw(self, item: _Item, plan: _Plan) -> None:
        raw = item.file
        assert isinstance(raw, RawFile)
        key = (raw.instrument, raw.visit)
        state = self._visit(key, plan)
        if state is None:
            state = VisitState(self._visit_records.record(raw), raw.path.name, raw.kind)
            plan.new_visits[key] = state
        if raw.pfs_design_id != state.design:
            raise DesignMismatchError(
                f"{raw.path.name}: W_PFDSGN 0x{raw.pfs_design_id:016x} but visit {raw.visit} has "
                f"pfs_design_id 0x{state.design:016x} (from {state.source}); expected one design per visit"
            )
        item.warning = self._visit_records.differences(raw, state)
        item.run = self.run_for(raw, raw.instrument)
        self._need_run(item.run, raw.instrument, plan)
        data_id = self._coordinate(
            self.raw_type,
            {**raw.data_id, "dither": state.dither, "pfs_design_id": state.design},
        )
        item.ref = DatasetRef(
            self.raw_type, data_id, run=item.run, id_generation_mode=DatasetIdGenEnum.DATAID_TYPE_RUN,
            conform=False,  # data_id is already a full DataCoordinate of exactly these dimensions
        )

    def _coordinate(self, dataset_type: DatasetType, values: dict[str, Any]) -> DataCoordinate:
        """A full data ID from a dict that has every required and implied key (the fast path)."""
        group = dataset_type.dimensions
        keys = self._keys.get(dataset_type.name)
        if keys is None:
            keys = self._keys[dataset_type.name] = tuple(group.required) + tuple(group.implied)
        return DataCoordinate.from_full_values(group, tuple(values[key] for key in keys))

    def _visit(self, key: tuple[str, int], plan: _Plan) -> VisitState | None:
        """The visit as ``plan`` sees it: new in this batch, or known to the registry (found in the
        cache, and then kept in the plan)."""
        state = plan.new_visits.get(key) or plan.known_visits.get(key)
        if state is None:
            state = self._visits.get(key)
            if state is not None:
                plan.known_visits[key] = state
        return state

    def _load_visits(self, keys: Iterable[tuple[str, int]], plan: _Plan) -> None:
        """Read from the registry the visits neither ``plan`` nor the cache has; the plan keeps them."""
        by_instrument: dict[str, list[int]] = defaultdict(list)
        for instrument, visit in keys:
            key = (instrument, visit)
            if key in plan.known_visits or key in plan.new_visits:
                continue
            state = self._visits.get(key)
            if state is not None:
                plan.known_visits[key] = state
            else:
                by_instrument[instrument].append(visit)
        for instrument, visits in by_instrument.items():
            for start in range(0, len(visits), 500):
                chunk = sorted(visits[start : start + 500])
                records = query(
                    functools.partial(
                        self.butler.query_dimension_records,
                        "visit",
                        where="instrument = inst AND visit IN (visits)",
                        bind={"inst": instrument, "visits": chunk},
                        limit=None,
                        explain=False,
                    )
                )
                for record in records:
                    state = VisitState.from_registry(record)
                    self._visits[(instrument, record.id)] = plan.known_visits[(instrument, record.id)] = state

    # -- pfsConfigs ------------------------------------------------------------------------------

    def _check_pfsconfig(self, item: _Item, plan: _Plan) -> str | None:
        """Check a pfsConfig against its visit; a reason string when it must wait."""
        config = item.file
        assert isinstance(config, PfsConfigFile)
        instrument = config.instrument or self._instrument_of_visit(config.visit, plan)
        if instrument is None:
            return f"waiting for the raws of visit {config.visit}: no instrument has that visit yet"
        self._ensure_instrument(instrument)
        key = (instrument, config.visit)
        self._load_visits([key], plan)
        state = self._visit(key, plan)
        if state is None:
            return f"waiting for the raws of visit {config.visit} ({instrument}): no visit record yet"
        if config.pfs_design_id != state.design:
            raise DesignMismatchError(
                f"{config.path.name}: W_PFDSGN 0x{config.pfs_design_id:016x} but visit {config.visit} has "
                f"pfs_design_id 0x{state.design:016x} from its raws ({state.source}); expected them to agree"
            )
        item.run = self.run_for(config, instrument)
        self._need_run(item.run, instrument, plan)
        if item.cat_ids is None:
            item.cat_ids = _cat_ids(config.path)
        data_id = self._coordinate(
            self.pfsconfig_type,
            {"instrument": instrument, "visit": config.visit, "dither": state.dither, "pfs_design_id": state.design},
        )
        item.ref = DatasetRef(
            self.pfsconfig_type, data_id, run=item.run, id_generation_mode=DatasetIdGenEnum.DATAID_TYPE_RUN,
            conform=False,  # data_id is already a full DataCoordinate of exactly these dimensions
        )
        if config.subset != pfsfrule.FULL:
            base = self._pfsconfig_base(instrument)
            self._need_run(base, instrument, plan)
            item.standin = DatasetRef(self.pfsconfig_type, data_id, run=base,
                                      id_generation_mode=DatasetIdGenEnum.DATAID_TYPE_RUN, conform=False)
        return None

    def _pick_standins(self, items: list[_Item], existing: Mapping[Key, Any]) -> None:
        """Keep a customised PFSF's stand-in only where the base RUN has no pfsConfig of its visit, nor
        one from this batch (full ones first, then the lowest suffix); see pfsfrule."""
        taken = set(existing)
        taken.update(key(i.ref) for i in items if i.ref is not None and i.standin is None
                     and isinstance(i.file, PfsConfigFile))
        customised = [i for i in items if i.standin is not None]
        for item in sorted(customised, key=lambda i: cast(PfsConfigFile, i.file).subset):
            assert item.standin is not None
            slot = key(item.standin)
            if slot in taken:
                item.standin = None
            else:
                taken.add(slot)

    def _displaced(self, item: _Item, stored: DatasetRef, stored_path: Path) -> bool:
        """A full pfsConfig meeting other bytes in the base RUN, where a customised stand-in sits."""
        if not isinstance(item.file, PfsConfigFile) or item.file.subset != pfsfrule.FULL:
            return False
        if same_content(item.file.path, stored_path):
            return False
        return query(lambda: pfsfrule.is_standin(self.butler, stored, stored_path))

    def _move_displaced(self, displaced: list[tuple[_Item, DatasetRef]], duplicates: list[tuple[_Item, DatasetRef]],
                        plan: _Plan, stored_paths: dict[DatasetRef, Path]) -> list[tuple[_Item, DatasetRef]]:
        """Send full pfsConfigs whose base slot a stand-in holds to ``<base>/00`` (pfsfrule, rule 3);
        return the duplicates left to check, with those that are already there too."""
        moved = {item.index for item, _ in displaced}
        remaining = [(item, stored) for item, stored in duplicates if item.index not in moved]
        items = []
        for item, stored in displaced:
            assert item.ref is not None and stored.run is not None
            instrument = cast(str, item.ref.dataId["instrument"])
            item.run = pfsfrule.displaced_run(stored.run)
            item.ref = DatasetRef(self.pfsconfig_type, item.ref.dataId, run=item.run,
                                  id_generation_mode=DatasetIdGenEnum.DATAID_TYPE_RUN, conform=False)
            self._need_run(item.run, instrument, plan)
            item.warning = (f"{item.file.path.name}: {stored.run} already holds a customised PFSF of visit "
                            f"{item.file.visit}, which arrived first; this full pfsConfig is in {item.run}")
            item.warning_kind = None
            items.append(item)
        existing = self._existing_refs(items)
        again = []
        for item in items:
            assert item.ref is not None
            found = existing.get(key(item.ref))
            if found is None:
                plan.new.append(item)
            else:
                again.append((item, found))
        stored_paths.update(self._existing.paths([stored for _, stored in again]))
        return remaining + again

    def _instrument_of_visit(self, visit: int, plan: _Plan) -> str | None:
        known = [inst for (inst, v) in [*self._visits, *plan.known_visits, *plan.new_visits] if v == visit]
        if not known:
            instruments = query(
                lambda: [r.name for r in self.butler.query_dimension_records("instrument", explain=False)]
            )
            self._load_visits(((instrument, visit) for instrument in instruments), plan)
            known = [inst for (inst, v) in plan.known_visits if v == visit]
        if not known:
            return None
        return "PFS" if "PFS" in known else sorted(known)[0]

    # -- shared steps ----------------------------------------------------------------------------

    def _ensure_instrument(self, instrument: str) -> None:
        if instrument in self._instruments:
            return
        records = query(
            lambda: self.butler.query_dimension_records(
                "instrument", where="instrument = inst", bind={"inst": instrument}, explain=False
            )
        )
        if not records:
            if instrument not in self.settings.instruments:
                raise UnknownInstrumentError(
                    f"instrument {instrument} is not registered in this repository and repository.instruments "
                    f"({', '.join(self.settings.instruments)}) does not name it; expected a file from a site "
                    "whose instrument is registered (obs_pfs has Instrument classes for S, F and L only)"
                )
            try:
                self._register_instrument(self.butler, instrument)
            except Exception as exc:
                raise as_error(exc, Path(instrument)) from exc
            records = self.butler.query_dimension_records(
                "instrument", where="instrument = inst", bind={"inst": instrument}, explain=False
            )
        self._instruments[instrument] = records[0]

    def _need_run(self, run: str, instrument: str, plan: _Plan) -> None:
        if run not in self._runs:
            plan.new_runs[run] = instrument

    def _register_runs(self, runs: dict[str, str]) -> None:
        """Register new RUNs; create ``<instrument>/defaults`` when the repository has none."""
        for run in sorted(runs):
            self.butler.collections.register(run, CollectionType.RUN)
        for instrument in sorted(set(runs.values())):
            raw = self.settings.raw_run or repo.default_raw_run(instrument)
            base = self.settings.pfsconfig_run or repo.default_pfsconfig_run(instrument)
            for parent in (raw, base):
                self.butler.collections.register(parent, CollectionType.RUN)
            repo.ensure_defaults(self.butler, instrument, raw_run=raw, pfsconfig_run=base)

    def _insert_records(self, plan: _Plan) -> None:
        registry = self.butler.registry
        states = list(plan.new_visits.values())
        if states:
            designs = {(s.record.instrument, s.design) for s in states}
            dithers = {(s.record.instrument, s.dither) for s in states}
            registry.insertDimensionData(
                "pfs_design_id", *({"instrument": i, "value": v} for i, v in designs), skip_existing=True
            )
            registry.insertDimensionData(
                "dither", *({"instrument": i, "value": v} for i, v in dithers), skip_existing=True
            )
            registry.insertDimensionData("visit", *(s.record for s in states))
        cat_rows = []
        join_rows = []
        for item in plan.new:
            if isinstance(item.file, PfsConfigFile) and item.ref is not None:
                instrument = item.ref.dataId["instrument"]
                for cat_id in item.cat_ids or ():
                    cat_rows.append({"instrument": instrument, "id": cat_id})
                    join_rows.append({"instrument": instrument, "visit": item.file.visit, "cat_id": cat_id})
        if cat_rows:
            registry.insertDimensionData("cat_id", *cat_rows, skip_existing=True)
            registry.insertDimensionData("pfsConfig", *join_rows, skip_existing=True)

    def _expanded(self, ref: DatasetRef, plan: _Plan) -> DatasetRef:
        """``ref`` with its dimension records attached, built from what the plan already knows."""
        data_id = ref.dataId
        instrument, visit = cast(str, data_id["instrument"]), cast(int, data_id["visit"])
        state = self._visit((instrument, visit), plan)
        assert state is not None  # checked by this plan
        records: dict[str, DimensionRecord | None] = {
            "instrument": self._instruments[instrument],
            "visit": state.record,
        }
        for element in ref.datasetType.dimensions.elements:
            if element not in records:
                values = tuple(data_id[name] for name in self.universe[element].required.names)
                record = self._records.get((element, values))
                if record is None:
                    record = self.universe[element].RecordClass(**data_id.subset(element).mapping)
                    self._records[(element, values)] = record
                records[element] = record
        return ref.expanded(data_id.expanded(records))

    def _destination(self, ref: DatasetRef) -> Path:
        """Where the datastore's file template puts ``ref`` (an expanded ref)."""
        template = self._templates.get(ref.datasetType.name)
        if template is None:
            template = self._templates[ref.datasetType.name] = self.templates.getTemplate(ref)
        return self.datastore_root / f"{template.format(ref)}.fits"

    def _existing_refs(self, items: list[_Item]) -> dict[Key, DatasetRef]:
        """Datasets already registered for these items' refs (and stand-ins), by data ID."""
        return self._existing.find(r for item in items for r in (item.ref, item.standin) if r is not None)

    # -- outcomes --------------------------------------------------------------------------------

    def _outcome(
        self, item: _Item, status: Status, kind: ErrorKind | None = None, message: str | None = None
    ) -> Outcome:
        file = item.file
        data_id = dict(item.ref.dataId.required) if item.ref is not None else _data_id(file)
        return Outcome(
            path=file.path,
            status=status,
            kind=_kind_of(file),
            data_id=data_id,
            dataset_id=str(item.ref.id) if item.ref is not None and status is not Status.FAILED else None,
            run=item.run or None,
            error_kind=str(kind) if kind is not None else None,
            message=message,
        )

    def _fail_all(self, items: Sequence[_Item], outcomes: dict[int, Outcome], error: PfsWatchError) -> None:
        for item in items:
            if item.index not in outcomes:
                outcomes[item.index] = self._outcome(item, Status.FAILED, error.kind, str(error))


class _SourcesChanged(Exception):
    """Some sources of a batch are not the files examined: {source: its SourceChangedError}."""

    def __init__(self, errors: dict[Path, SourceChangedError]) -> None:
        super().__init__(f"{len(errors)} sources changed since they were examined")
        self.errors = errors


def _check_all(files: Sequence[Classified]) -> None:
    """``direct``: nothing is placed, so the files are checked where they are before they are registered."""
    changed: dict[Path, SourceChangedError] = {}
    for file in files:
        try:
            check_source(file.path, file.examined)
        except SourceChangedError as exc:
            changed[file.path] = exc
    if changed:
        raise _SourcesChanged(changed)


def _never() -> int | None:
    return None


def _cat_ids(path: Path) -> tuple[int, ...]:
    """The distinct catIds of a pfsConfig's CONFIG table (cat_id records), each an integer of 64 bits.

    Raises:
        BadHeaderError: no such table or column, or a value that is no integer catalog id (NaN, 1.5, ...).
    """
    found = set()
    for row, value in enumerate(read_column(path, "CONFIG", "catId"), start=1):
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole or not -(2**63) <= value < 2**63:
            raise BadHeaderError(f"{path.name}: its CONFIG table has catId {value!r} in row {row}; expected "
                                 "integer catalog ids (cat_id records)")
        found.add(int(value))
    return tuple(sorted(found))


_VISIT_CHECKS = frozenset({ErrorKind.DESIGN_MISMATCH.value, ErrorKind.VISIT_MISMATCH.value})


def _kind_of(file: Classified) -> FileKind:
    return file.kind if isinstance(file, RawFile) else FileKind.PFSCONFIG


def _data_id(file: Classified) -> dict[str, Any]:
    return {k: v for k, v in file.data_id.items() if v is not None}
