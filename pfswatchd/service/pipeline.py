"""pipeline: hints in, ledger rows out.  watch -> complete -> classify -> ingest -> ledger.

:class:`Pipeline.step` is one pass of the service's loop over the hints that
arrived: it stats each path, records what it finds in the ledger, examines the
files that are ready (headers only), claims them, ingests everything ready in
one batch (group commit: a lone file goes at once, a burst goes together),
and writes each outcome to the ledger.  It is the single per-file error
boundary: one bad file never stops the service.
"""

from __future__ import annotations

import os
import stat
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from cachetools import LRUCache

from pfswatchd import faults
from pfswatchd.butler.ingest import Ingester
from pfswatchd.config import Config
from pfswatchd.errors import RETRYABLE_KINDS, ErrorKind
from pfswatchd.files.examine import Examination, examine
from pfswatchd.files.names import parse_name
from pfswatchd.model import INGESTIBLE_KINDS, Classified, FileKind, Outcome, PfsConfigFile, Status
from pfswatchd.nametext import bad_name, bad_name_reason
from pfswatchd.service.archivestage import ArchiveStage
from pfswatchd.service.examiner import Examiner
from pfswatchd.service.settle import DONE_HINTS, Hint, Identity, Settler
from pfswatchd.service.watch import BAD_NAME, WALK, WALK_MOVED, depth_below, path_limit, too_deep, walk, within
from pfswatchd.state import quarantine
from pfswatchd.state.ledger import FileState, Ledger, Result, Seen

TIMING_CACHE = 100_000  # files in flight whose times are kept
LINK_IGNORED = "link_ignored"  # the log event (and reason kind) for what is reached through a link out


@dataclass(slots=True)
class _Timing:
    seen: float  # wall clock, when first hinted in this process
    complete: float | None = None
    ready: float | None = None  # handed to the examiner


class Observer(Protocol):
    """Who is told what happened (the monitor's metrics); called on the main loop, must be quick."""

    def file_done(self, state: str, kind: str | None, error_kind: str | None, seen_seconds: float | None,
                  complete_seconds: float | None) -> None: ...

    def examined(self, seconds: float) -> None: ...


@dataclass(slots=True)
class StepReport:
    """What one step did (for logs, systemd STATUS and tests)."""

    hinted: int = 0
    examined: int = 0
    ingested: int = 0
    permanent_failure: str | None = None  # set when fail-fast must stop the service
    new_visits: set[int] = field(default_factory=set)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


class Pipeline:
    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        ingester: Ingester,
        log: Any,
        *,
        archives: ArchiveStage | None = None,
        examiner: Examiner | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.ingester = ingester
        self.log = log
        self.archives = archives
        self.examiner = examiner or Examiner(0)
        self.settler = Settler(config.watch.settle_seconds, config.watch.truncated_after)
        self.roots = config.watch_roots
        self.observer: Observer | None = None
        # When each file in flight was seen and found complete (for its log line and complete_at).
        # Bounded: a file forgotten on the way (deleted before it was examined) must not stay forever;
        # one evicted in a huge backlog only loses those two times.
        self._timing: LRUCache[str, _Timing] = LRUCache(maxsize=TIMING_CACHE)
        self.unreadable: dict[str, tuple[str, str]] = {}  # folder -> (error kind, reason), until recorded
        self._retried_folders: set[str] = set()
        self._noted = 0  # folders noted so far (a retried folder noted again is not forgotten)
        # A move removes a source only once the ledger has recorded the file (a kill in between leaves
        # a source that the next rescan finds and completes, never a row that nothing resolves).
        self.ingester.defer_moves = config.ingest.transfer == "move"
        self._again: list[str] = []  # paths to look at again next step: another file is there now
        self._gone: list[str] = []  # paths that vanished before they were examined, until recorded
        self._within: dict[str, bool] = {}  # folder -> inside the watched folders, for one step

    # -- the step --------------------------------------------------------------------------------

    def step(self, hints: Iterable[tuple[str, str]], now: float | None = None) -> StepReport:
        report = StepReport()
        now = now or time.time()
        self._within.clear()
        clock = time.perf_counter
        began = clock()
        if self._again:
            again, self._again = self._again, []
            hints = [*((path, Hint.MODIFIED.value) for path in again), *hints]
        observed = self._observe(hints, report, now)
        self._track(observed, now)
        for path in self.settler.restat_due(now):
            identity = self._identity(path)
            if identity is None:
                self._vanished(path)
            else:
                self.settler.observe(path, identity, Hint.MODIFIED, now)
        self._record_gone(now)
        if self.archives is not None:
            self.archives.tick(now, self._identity)
        tracked = clock()
        ready = [path for path in self.settler.ready(now) if not self._unfilled(path, now)]
        for path in ready:
            if (timing := self._timing.get(path)) is not None:
                timing.ready = now
        self.settler.examining(ready)
        self.examiner.submit(ready)
        candidates = self._examined(self.examiner.results(), report, now)
        self._expire_incomplete(now, report)
        examined = clock()
        if candidates:
            self._ingest(candidates, report, now)
        report.timings = {"track": tracked - began, "examine": examined - tracked, "ingest": clock() - examined}
        return report

    # -- watch -> ledger -------------------------------------------------------------------------

    def _observe(
        self, hints: Iterable[tuple[str, str]], report: StepReport, now: float
    ) -> dict[str, tuple[Identity, Hint]]:
        """Stat hinted paths: {path: (identity, strongest hint)} for regular files inside the roots."""
        observed: dict[str, tuple[Identity, Hint]] = {}
        expanded: list[tuple[str, str]] = []
        walked = dict(roots=self.roots, max_depth=self.config.watch.max_depth, unreadable=self.note_unreadable)
        for path, hint in hints:
            bad = bad_name(path)
            if bad is not None:  # never examined, ingested or written as it is: recorded escaped, at once
                folder = bad != path or hint in (WALK, WALK_MOVED)
                self.note_unreadable(Path(bad), BAD_NAME, bad_name_reason(bad, folder=folder))
                continue
            if not self._reachable(path, hint == Hint.RETRY.value):
                if hint == Hint.RETRY.value:
                    self._retried_folders.add(path)  # a folder recorded for its depth or length: backoff grows
                continue
            if hint == Hint.RETRY.value and os.path.isdir(path) and not os.path.islink(path):
                # A folder recorded unreadable is due again: walk it; if it can be listed now, forget it.
                before = self._noted
                expanded.extend((str(p), Hint.RESCAN.value) for p in walk(Path(path), **walked))
                if self._noted == before and self.ledger.folder_readable(path):
                    self.log.info("folder_readable", path=path)
                self._retried_folders.add(path)
            elif hint in (WALK, WALK_MOVED):
                # A folder renamed into place (a published archive, an rsync'ed tree) holds finished files;
                # one created just now holds files renamed in before its watch existed (see Hint.NEW_FOLDER).
                found = Hint.MOVED.value if hint == WALK_MOVED else Hint.NEW_FOLDER.value
                if hint == WALK:
                    faults.pause("pipeline.new_folder")  # a test writes into the new folder before its walk
                expanded.extend((str(p), found) for p in walk(Path(path), **walked))
            else:
                expanded.append((path, hint))
        self._record_unreadable(now)
        for path, hint_text in expanded:
            report.hinted += 1
            hint = Hint(hint_text)
            identity = self._identity(path)
            if identity is None:
                self._vanished(path)
                continue
            if hint is Hint.NEW_FOLDER and _has_holes(path, identity):
                hint = Hint.RESCAN  # a preallocated file not yet filled: its close, or the settle time, decides
            previous = observed.get(path)
            if previous is None or hint in DONE_HINTS or (hint is Hint.NEW_FOLDER and previous[1] not in DONE_HINTS):
                observed[path] = (identity, hint)
            self._timing.setdefault(path, _Timing(seen=now))
        return observed

    def _unfilled(self, path: str, now: float) -> bool:
        """A file that only its quiet time calls finished (no close or rename was seen) and that still has
        a hole: a preallocating writer (aria2c, axel) set its final size and paused before filling it.
        It waits as incomplete for its next change (reported truncated after ``truncated_after``)."""
        if self.settler.closed(path):
            return False
        identity = self._identity(path)
        if identity is None:
            return False  # the examination will find it gone
        hole = first_hole(path)
        if hole is None or hole >= identity[0]:
            return False
        self.settler.incomplete(path, identity, f"{Path(path).name}: bytes {hole} onwards of its {identity[0]} "
                                "were never written (a preallocated file not yet filled)", now)
        return True

    def _vanished(self, path: str) -> None:
        """``path`` is gone (deleted, or renamed away) before it was examined: forget it (its row, if
        still pending, is recorded ignored with that reason at the end of the step)."""
        self.settler.forget(path)
        self._timing.pop(path, None)
        self._gone.append(path)

    def _record_gone(self, now: float) -> None:
        gone, self._gone = self._gone, []
        if gone and self.ledger.vanished(gone, now):
            for path in gone:
                self.log.info("file_vanished", path=path, reason="deleted or renamed away before it was examined")

    def note_unreadable(self, folder: Path, kind: str, reason: str) -> None:
        """walk()'s callback: a folder that cannot be listed (recorded at the next step), or a link."""
        self._noted += 1
        if kind == LINK_IGNORED:
            self.log.warning(LINK_IGNORED, path=str(folder), reason=reason)
        else:
            self.unreadable[str(folder)] = (kind, reason)

    def _reachable(self, path: str, folder: bool) -> bool:
        """False (and the reason noted) for a path too long or too deep below its watched folder.

        ``folder``: ``path`` may be a folder recorded before (a due retry), noted itself; a file's is its folder.
        """
        too_long = path_limit(path)
        if too_long is not None:
            self.note_unreadable(Path(path if folder else os.path.dirname(path)), "path_limit", too_long)
            return False
        depth = depth_below(path, self.roots)
        if depth is not None and depth - 1 > self.config.watch.max_depth:  # a file's folder, or a folder's parent
            self.note_unreadable(*too_deep(path, self.roots, self.config.watch.max_depth))
            return False
        return True

    def _record_unreadable(self, now: float) -> None:
        unreadable, self.unreadable = self.unreadable, {}
        retried, self._retried_folders = self._retried_folders, set()
        for folder, (kind, reason) in unreadable.items():
            if kind == BAD_NAME:
                key = self.ledger.bad_name(folder, reason, folder=os.path.isdir(folder) and not os.path.islink(folder),
                                           now=now)
                if key is not None:  # once per name: a rescan or a restart that meets it again says nothing
                    self.log.warning(BAD_NAME, path=key, error_kind=BAD_NAME, reason=reason)
                continue
            retry_at = self.ledger.folder_unreadable(folder, reason, self.config.ingest.retry_delay,
                                                     retry=folder in retried, now=now, error_kind=kind)
            if retry_at is not None:
                self.log.warning("folder_unreadable", path=folder, error_kind=kind, reason=reason,
                                 retry_at=retry_at)

    def _identity(self, path: str) -> Identity | None:
        try:
            st = os.lstat(path)
            # Links are resolved in every folder of the path, not only its last name: a folder swapped
            # for a link to elsewhere must not lead out of the watched folders.  A file that is no link
            # is inside when its folder is, which is looked at once per step (a burst shares a folder).
            link = stat.S_ISLNK(st.st_mode)
            if not (within(Path(path), self.roots) if link else self._folder_within(os.path.dirname(path))):
                self.log.warning(LINK_IGNORED, path=path, reason="reached through a link out of the watched "
                                 "folders: not read, moved or deleted")
                return None
            if link:
                st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def _folder_within(self, folder: str) -> bool:
        """Whether ``folder`` is a watched folder or really inside one (watch.within), remembered for
        the rest of this step."""
        inside = self._within.get(folder)
        if inside is None:
            roots = {str(root).rstrip(os.sep) for root in self.roots}  # (a reload may change them)
            inside = self._within[folder] = folder in roots or within(Path(folder), self.roots)
        return inside

    def _track(self, observed: dict[str, tuple[Identity, Hint]], now: float) -> None:
        """Record sightings in the ledger; put files that still need work into the settler."""
        if not observed:
            return
        seen: list[Seen] = []
        archives: list[tuple[str, Hint]] = []
        for path, (identity, hint) in observed.items():
            name = parse_name(path)
            kind = name.kind
            if kind is FileKind.ARCHIVE:
                archives.append((path, hint))
                self._timing.pop(path, None)  # the archive stage keeps its own times
                continue
            size, mtime_ns, _, inode = identity
            seen.append(Seen(path, kind.value, size, mtime_ns, inode, visit=name.visit))
        active = set(self.ledger.upsert_seen(seen, now)) if seen else set()
        if self.ingester.defer_moves:
            self._complete_moves([s.path for s in seen if s.path not in active
                                  and FileKind(s.kind) in INGESTIBLE_KINDS])
        # Another instance watching the same folder may already hold some of them.
        ingestible = [s.path for s in seen if s.path in active and FileKind(s.kind) in INGESTIBLE_KINDS]
        if ingestible:
            active -= set(ingestible) - self.ledger.reserve(ingestible, now)
        ignored = []
        for item in seen:
            if item.path not in active:
                self._timing.pop(item.path, None)
                continue
            if FileKind(item.kind) not in INGESTIBLE_KINDS:
                ignored.append(item)
                continue
            identity, hint = observed[item.path]
            self.settler.observe(item.path, identity, hint, now)
        if ignored:
            self._ignore(ignored)
        if self.archives is not None:
            for path, hint in archives:
                self.archives.observe(Path(path), observed[path][0], hint, now)

    def _complete_moves(self, paths: list[str]) -> None:
        """Sources still there whose files are recorded ingested: a kill came between the ledger write
        and the removal.  Each is removed if the repository's file is that file (same inode, or the same
        bytes in a regular file of its own), otherwise left alone."""
        if not paths:
            return
        for path, dataset_id in self.ledger.recorded_done(paths).items():
            try:
                removed = self.ingester.complete_move(Path(path), dataset_id)
            except Exception as exc:  # a lookup that fails leaves the source: the next rescan tries again
                self.log.warning("move_not_completed", path=path, dataset_id=dataset_id, reason=str(exc))
                continue
            if removed:
                self.log.info("move_completed", path=path, dataset_id=dataset_id)

    def _ignore(self, items: list[Seen]) -> None:
        """Record files of kinds that are not ingested as ignored, with the reason (one statement)."""
        reasons = []
        for item in items:
            found = examine(Path(item.path))
            assert found.skipped is not None  # examine skips every kind that is not ingestible
            reasons.append((item.path, found.skipped.reason))
        self.ledger.ignore(reasons)
        for item, (path, reason) in zip(items, reasons, strict=True):
            self._timing.pop(path, None)
            self.log.info("file_ignored", path=path, kind=item.kind, reason=reason)

    # -- complete -> classify ------------------------------------------------------------------------

    def _examined(self, examined: list[Examination], report: StepReport, now: float) -> list[tuple[str, Classified]]:
        """Act on examination results: wait, fail, ignore, or pass on for ingest."""
        candidates: list[tuple[str, Classified]] = []
        failures: list[tuple[str, ErrorKind, str, FileKind]] = []
        for found in examined:
            path = str(found.path)
            report.examined += 1
            self.settler.examined(path)
            if path not in self.settler:
                continue  # forgotten meanwhile (deleted)
            identity = self._identity(path)
            if identity is None:
                self._vanished(path)
                continue
            if found.identity is not None and found.identity != identity:
                self.settler.observe(path, identity, Hint.MODIFIED, now)  # it changed while we read it
                continue
            if found.incomplete is not None:
                # Waits for its next change; once overdue, _expire_incomplete reports it truncated.
                self.settler.incomplete(path, identity, found.incomplete, now)
                continue
            self.settler.forget(path)
            if found.error is not None:
                failures.append((path, found.error.kind, str(found.error), found.kind))
                continue
            # The settler holds only ingestible kinds, which examine never skips.
            assert found.classified is not None
            timing = self._timing.setdefault(path, _Timing(seen=now))
            timing.complete = now
            if self.observer is not None and timing.ready is not None:
                self.observer.examined(time.time() - timing.ready)
            candidates.append((path, found.classified))
        if failures:
            self._claim_failures(failures, report, now)
        return candidates

    def _expire_incomplete(self, now: float, report: StepReport) -> None:
        """Report files that stayed incomplete and unchanged for ``truncated_after`` as truncated."""
        overdue = self.settler.overdue(now)
        if not overdue:
            return
        failures = []
        for path, reason in overdue:
            self.settler.forget(path)
            failures.append((path, ErrorKind.TRUNCATED, f"{reason} and stopped growing", parse_name(path).kind))
        self._claim_failures(failures, report, now)

    def _claim_failures(self, failures: list[tuple[str, ErrorKind, str, FileKind]], report: StepReport,
                        now: float) -> None:
        """Claim files that failed before ingest and record the failures of those won."""
        won = self.ledger.claim_attempts([path for path, *_ in failures], now)
        # The backoff counts the attempts before this claim (at least 1): one fewer than after a failed ingest.
        self._finish([self._failure(path, kind, message, file_kind, max(won[path] - 1, 1))
                      for path, kind, message, file_kind in failures if path in won], report, now)

    # -- ingest -> ledger ------------------------------------------------------------------------

    def _ingest(self, candidates: list[tuple[str, Classified]], report: StepReport, now: float) -> None:
        won = self.ledger.claim_attempts([path for path, _ in candidates], now)
        mine = [(path, item) for path, item in candidates if path in won]
        for path, _ in candidates:
            if path not in won:
                self._timing.pop(path, None)  # another instance has it
        self._expect(mine, now)
        size = self.config.ingest.batch_size
        for start in range(0, len(mine), size):
            batch = mine[start : start + size]
            began = time.perf_counter()
            outcomes = self.ingester.ingest([item for _, item in batch])
            ingested = time.perf_counter()
            results = self._results(outcomes, won, now)
            faults.pause("pipeline.recording")  # committed to the registry, not yet to the ledger
            try:
                self._finish(results, report, time.time())
            except BaseException:
                # Not recorded: the sources stay, and the rescan completes their moves once it is.
                self.ingester.forget_moves()
                raise
            faults.pause("pipeline.recorded")  # in the ledger; a move's sources not yet removed
            # Recorded: now the moved sources go (only those still the file placed).
            self._again.extend(str(path) for path in self.ingester.finish_moves())
            self.log.info("batch_ingested", files=len(batch), butler_seconds=round(ingested - began, 4),
                          ledger_seconds=round(time.perf_counter() - ingested, 4),
                          outcomes=dict(Counter(o.status.value for o in outcomes)))

    def _expect(self, items: list[tuple[str, Classified]], now: float) -> None:
        """Record the cameras each pfsConfig declares its visit exposed (the monitor's expected set)."""
        for _, item in items:
            if isinstance(item, PfsConfigFile) and item.cameras:
                self.ledger.expect(item.visit, item.cameras, item.cameras_from, item.subset, now)

    def _results(self, outcomes: list[Outcome], attempts: Mapping[str, int], now: float) -> list[Result]:
        duplicates = [o.dataset_id for o in outcomes if o.status is Status.DUPLICATE and o.dataset_id]
        owned = self.ledger.owners(duplicates) if duplicates else set()
        # A copy of a file this batch ingested is a duplicate of that file (the engine plans it after it).
        owned |= {o.dataset_id for o in outcomes if o.status is Status.INGESTED and o.dataset_id}
        results = []
        for outcome in outcomes:
            path = str(outcome.path)
            timing = self._timing.get(path)
            complete_at = timing.complete if timing else None
            data_id = dict(outcome.data_id) if outcome.data_id else None
            common: dict[str, Any] = dict(
                kind=outcome.kind.value,
                instrument=(data_id or {}).get("instrument"),
                visit=(data_id or {}).get("visit"),
                data_id=data_id,
                run=outcome.run,
                complete_at=complete_at,
            )
            if outcome.status is Status.INGESTED:
                # A warning (a visit-level value that differs) stays with the ingested row.
                results.append(Result(path, FileState.INGESTED, dataset_id=outcome.dataset_id,
                                      error_kind=outcome.error_kind, error=outcome.message, **common))
            elif outcome.status is Status.DUPLICATE:
                # A dataset belongs to one ledger row: if none holds it, this row may have put it
                # there before a crash cut its bookkeeping short (even the ledger's own last
                # transactions), so it is ingested, not a duplicate.  Only a dataset whose id
                # pfswatchd never computes (another tool's, e.g. ingestPfsConfig.py's random ids)
                # is known not to be this row's.  A raw the official ingest put in the same RUN has
                # pfswatchd's id: its first file here is recorded ingested (nothing is written).
                duplicate = outcome.foreign or outcome.dataset_id in owned
                state = FileState.DUPLICATE if duplicate else FileState.INGESTED
                results.append(Result(path, state, dataset_id=outcome.dataset_id, **common))
            elif outcome.status is Status.WAITING:
                results.append(Result(path, FileState.WAITING, error=outcome.message, **common))
            elif outcome.status is Status.SKIPPED:
                results.append(Result(path, FileState.IGNORED, error=outcome.message, **common))
            else:
                kind = ErrorKind(outcome.error_kind or ErrorKind.INTERNAL)
                failure = self._failure(path, kind, outcome.message or "", outcome.kind, attempts.get(path, 1))
                results.append(replace(failure, **{k: v for k, v in common.items() if v is not None}))
        return results

    def _failure(self, path: str, kind: ErrorKind, message: str, file_kind: FileKind | None,
                 attempts: int) -> Result:
        """The result of a failed try; a transient failure is retried after a backoff that grows with attempts.

        One that repeats is given up after ``ingest.max_attempts`` (failed with its last reason), except
        a registry database that is away: that is nobody's file's fault, and the file waits for it.
        """
        limit = self.config.ingest.max_attempts
        if kind is ErrorKind.SOURCE_CHANGED and attempts < limit:
            self._again.append(path)  # examined again as the new file it is, at once
            return Result(path, FileState.PENDING, kind=file_kind.value if file_kind else None,
                          error_kind=kind.value, error=message, retry_at=time.time())
        if kind in RETRYABLE_KINDS and kind is not ErrorKind.DATABASE_UNAVAILABLE and attempts >= limit:
            message = f"{message} (given up after {attempts} attempts; `pfswatchd retry` queues it again)"
        elif kind in RETRYABLE_KINDS:
            delay = self.config.ingest.retry_delay(attempts)
            return Result(path, FileState.PENDING, kind=file_kind.value if file_kind else None,
                          error_kind=kind.value, error=message, retry_at=time.time() + delay)
        return Result(path, FileState.FAILED, kind=file_kind.value if file_kind else None, error_kind=kind.value,
                      error=message)

    def _finish(self, results: list[Result], report: StepReport, now: float) -> None:
        """Quarantine per policy, write the ledger, log one event per file.

        A quarantine is announced before it is made: the rows of the files to move are recorded
        ``failed`` with the path each is going to, then the files move, then the rows say
        ``quarantined``.  A kill at any moment leaves a row that says where its file is or is going,
        which :meth:`recover` completes at the next start.
        """
        if self.config.quarantine.policy == "move" and any(r.state is FileState.FAILED for r in results):
            results = self._quarantine(results, now)
        self.ledger.record(results, now)
        for result in results:
            self._log(result, report, now)

    def _quarantine(self, results: list[Result], now: float) -> list[Result]:
        folder = self.config.quarantine.path
        going: dict[str, Path] = {}
        for result in results:
            if result.state is FileState.FAILED:
                dest = quarantine.destination(Path(result.path), roots=self.roots, folder=folder)
                while dest in going.values():  # two roots with the same relative path, in one batch
                    dest = dest.with_name(dest.name + ".1")
                going[result.path] = dest
        self.ledger.record([replace(r, quarantine_path=str(going[r.path])) for r in results if r.path in going], now)
        final = []
        for result in results:
            dest = going.get(result.path)
            if dest is not None:
                try:
                    moved = quarantine.quarantine(Path(result.path), roots=self.roots, folder=folder,
                                                  kind=result.error_kind or "", reason=result.error or "",
                                                  perms=self.config.service.permissions, dest=dest)
                except OSError as exc:
                    self.log.error("quarantine_failed", path=result.path, error=str(exc))
                    self.ledger.mark(result.path, FileState.FAILED, quarantine_path=None)
                else:
                    result = replace(result, state=FileState.QUARANTINED, quarantine_path=str(moved))
            final.append(result)
        return final

    def recover(self) -> None:
        """At start: complete the quarantines a kill cut short (announced, and maybe made)."""
        if self.config.quarantine.policy != "move":
            return
        for row in self.ledger.announced_quarantines():
            source, dest = Path(row["path"]), Path(row["quarantine_path"])
            try:
                if os.path.lexists(source):  # not moved yet, or a copy across filesystems cut short
                    quarantine.quarantine(source, roots=self.roots, folder=self.config.quarantine.path,
                                          kind=row["error_kind"] or "", reason=row["error"] or "",
                                          perms=self.config.service.permissions, dest=dest)
                elif os.path.lexists(dest):
                    quarantine.write_reason(dest, source, row["error_kind"] or "", row["error"] or "",
                                            self.config.service.permissions)
                else:
                    self.log.error("quarantine_lost", path=str(source), quarantine_path=str(dest),
                                   reason="neither the file nor its quarantined copy exists")
                    self.ledger.mark(str(source), FileState.FAILED, quarantine_path=None)
                    continue
            except OSError as exc:
                self.log.error("quarantine_failed", path=str(source), error=str(exc))
                continue
            self.ledger.mark(str(source), FileState.QUARANTINED)
            self.log.info("quarantine_completed", path=str(source), quarantine_path=str(dest))

    def _log(self, result: Result, report: StepReport, now: float) -> None:
        timing = self._timing.pop(result.path, None) if result.state is not FileState.PENDING else None
        fields: dict[str, Any] = {"path": result.path, "state": result.state.value, "kind": result.kind}
        if result.data_id:
            fields["data_id"] = result.data_id
        if result.dataset_id:
            fields["dataset_id"] = result.dataset_id
            fields["run"] = result.run
        seen_s = complete_s = None
        if timing is not None:
            seen_s = now - timing.seen
            fields["seen_to_done_ms"] = round(seen_s * 1000, 1)
            if timing.complete is not None:
                complete_s = now - timing.complete
                fields["complete_to_done_ms"] = round(complete_s * 1000, 1)
        if self.observer is not None:
            self.observer.file_done(result.state.value, result.kind, result.error_kind, seen_s, complete_s)
        if result.error_kind:
            fields["error_kind"] = result.error_kind
        if result.error:
            fields["reason"] = result.error
        if result.state in (FileState.INGESTED, FileState.DUPLICATE):
            report.ingested += 1
            if result.visit is not None and result.kind in (FileKind.RAW_CCD.value, FileKind.RAW_NIR.value):
                report.new_visits.add(result.visit)
            if result.error_kind:  # ingested with a warning (errors.WARNING_KINDS)
                self.log.warning(f"file_{result.state.value}", **fields)
            else:
                self.log.info(f"file_{result.state.value}", **fields)
        elif result.state is FileState.WAITING:
            self.log.info("file_waiting", **fields)
        elif result.state is FileState.PENDING:
            fields["retry_at"] = result.retry_at
            self.log.warning("file_retry_scheduled", **fields)
        elif result.state is FileState.IGNORED:
            self.log.info("file_ignored", **fields)
        else:
            if report.permanent_failure is None:
                report.permanent_failure = f"{result.path}: [{result.error_kind}] {result.error}"
            if result.quarantine_path:
                fields["quarantine_path"] = result.quarantine_path
            self.log.error(f"file_{result.state.value}", **fields)


def first_hole(path: str) -> int | None:
    """Where the first hole (a range never written) of ``path`` starts, by ``SEEK_HOLE``; the file's size
    when it has none, None when the system cannot say.  A filesystem that compresses reports its data
    as data (unlike ``st_blocks``), and one without hole support reports none: never a false hole."""
    seek_hole = getattr(os, "SEEK_HOLE", None)
    if seek_hole is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        return os.lseek(fd, 0, seek_hole)
    except OSError:
        return None
    finally:
        os.close(fd)


def _has_holes(path: str, identity: Identity) -> bool:
    """True when fewer bytes are allocated to ``path`` than its size: a writer that set the final size
    first (``ftruncate``) and has not written everything yet.  Written files have every block (delayed
    allocation counts); a filesystem that compresses, or reports no blocks, looks holed: such a file
    takes the slow way (its close, or the settle time), never a wrong one."""
    try:
        st = os.stat(path)
    except OSError:
        return True
    return st.st_ino != identity[3] or st.st_blocks * 512 < st.st_size
