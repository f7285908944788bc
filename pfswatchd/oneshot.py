"""The one-shot commands ``ingest-raws`` and ``ingest-pfsconfig``.

They mirror ``butler ingest-raws`` and ``ingestPfsConfig.py`` (same arguments)
on the same engine as the service.  Every file is examined (headers only)
before anything is written; with ``--fail-fast`` the first bad file stops the
command before anything more is written.  Bad and skipped files get one line
each on stderr (skips found in folders one line per kind); a summary goes to
stdout.  Exit status: 0 every file ingested (or already there, or skipped); 1
some failed (a file, or a folder that cannot be read); 3 some pfsConfigs wait
for their raws (remembered in the repository: the next one-shot call into it
ingests them once the raws are there, see :mod:`pfswatchd.state.waitlist`);
128 + the signal number (130 for Ctrl-C) when interrupted.

An interrupt (SIGINT, SIGTERM) only sets a flag: the command stops at the next
safe point (between files, between placements, before the registry commits),
removes what the batch in flight placed, and writes nothing more.  A second one
stops at once.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
import re
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO

from pfswatchd import faults
from pfswatchd.butler import repo
from pfswatchd.butler.ingest import Ingester, IngestSettings
from pfswatchd.errors import Interrupted
from pfswatchd.files.classify import not_ingested
from pfswatchd.files.corrections import NONE, HeaderCorrections
from pfswatchd.files.examine import Examination, examine
from pfswatchd.files.names import is_temporary, parse_name
from pfswatchd.model import INGESTIBLE_KINDS, Classified, FileKind, Outcome, PfsConfigFile, Status
from pfswatchd.progress import IngestProgress
from pfswatchd.state.waitlist import Waiting, WaitList

BATCH = 1000
EX_OK, EX_FAILED, EX_WAITING = 0, 1, 3
_FITS = re.compile(r"\.fits?(\.fz)?$", re.IGNORECASE)
_GLOB_CHARS = re.compile(r"[*?\[]")
_KIND_NAMES = {FileKind.RAW_CCD: "a PFSA raw frame", FileKind.RAW_NIR: "a PFSB raw frame",
               FileKind.PFSCONFIG: "a pfsConfig file"}


class PathError(Exception):
    """A PATH argument matched nothing."""


@dataclasses.dataclass
class Found:
    """What the PATH arguments name: files (True if named explicitly) and folders that cannot be read."""

    files: dict[Path, bool] = dataclasses.field(default_factory=dict)
    unreadable: dict[Path, str] = dataclasses.field(default_factory=dict)


def expand_paths(arguments: Iterable[str], found: Found | None = None) -> Found:
    """Files named by PATH arguments: files, directories (recursive, FITS names) or globs."""
    found = found or Found()
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            for folder, dirs, names in os.walk(path, onerror=functools.partial(_unreadable, found, path)):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if _FITS.search(name) and not is_temporary(name):
                        found.files.setdefault(Path(folder) / name, False)
        elif path.exists():
            found.files[path] = True
        elif _GLOB_CHARS.search(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            if not matches:
                raise PathError(f"{argument}: the pattern matches no file")
            expand_paths(matches, found)
        else:
            raise PathError(f"{argument}: no such file or directory")
    return found


def _unreadable(found: Found, top: Path, error: OSError) -> None:
    """os.walk's onerror: a folder that cannot be listed is a failure with its reason, never a silent skip."""
    found.unreadable[Path(error.filename or top)] = f"cannot read the folder: {error.strerror or error}"


class _Stop:
    """SIGINT and SIGTERM set a flag that the command checks at safe points; a second one stops at once."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self) -> int | None:
        """The signal that interrupted the command, or None."""
        return self.signal

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum

    @contextmanager
    def installed(self) -> Iterator[_Stop]:
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def check(self) -> None:
        if self.signal is not None:
            raise Interrupted(self.signal)


def run_ingest(
    repository: str,
    paths: Sequence[str],
    *,
    accept: frozenset[FileKind],
    settings: IngestSettings,
    instrument: str | None = None,
    corrections: HeaderCorrections = NONE,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Examine, then ingest; print failures and a summary; return the exit status."""
    stop = _Stop()
    with stop.installed():
        try:
            return _Run(repository, accept, settings, instrument, corrections, out, err, stop).run(paths)
        except Interrupted as exc:
            print(f"pfswatchd: interrupted ({signal.Signals(exc.signum).name}); nothing more was written",
                  file=err)
            return 128 + exc.signum


class _Run:
    """One one-shot call: its files, its outcomes, its report."""

    def __init__(self, repository: str, accept: frozenset[FileKind], settings: IngestSettings,
                 instrument: str | None, corrections: HeaderCorrections, out: TextIO, err: TextIO,
                 stop: _Stop) -> None:
        self.repository = repository
        self.corrections = corrections
        self.accept = accept
        self.settings = settings
        self.instrument = instrument
        self.out = out
        self.err = err
        self.stop = stop
        self.outcomes: list[Outcome] = []
        self.skipped_in_folders: dict[str, list[Path]] = defaultdict(list)
        self.sizes: dict[Path, int] = {}
        self.attempted: list[Path] = []  # passed to the ingester
        self.earlier: Counter[str] = Counter()  # what became of pfsConfigs earlier calls left waiting

    def run(self, paths: Sequence[str]) -> int:
        found = expand_paths(paths)
        files = list(found.files)
        butler = repo.open_butler(self.repository)
        self.stop.check()
        ingester = Ingester(butler, self.repository, self.settings)
        ingester.interrupted = self.stop
        for path in files:
            try:
                self.sizes[path] = path.stat().st_size
            except OSError:
                self.sizes[path] = 0
        with IngestProgress(len(files), sum(self.sizes.values()), self.err) as progress:
            self.progress = progress
            for folder, reason in found.unreadable.items():
                outcome = Outcome(folder, Status.FAILED, FileKind.OTHER, error_kind="permission_denied",
                                  message=reason)
                self.outcomes.append(outcome)
                self._report(outcome, folder=True)
            ready, unexamined = self._examine_all(files, found.files)
            unwritten = len(ready) if unexamined else self._ingest(ingester, ready)
            if unexamined or unwritten:
                progress.print(f"pfswatchd: --fail-fast stopped at the first failure: {unexamined} files not "
                               f"examined, {unwritten} examined but not written")
            else:
                self._earlier_waiting(butler)
        for kind, skipped in self.skipped_in_folders.items():
            self._skipped_group(kind, skipped)
        mine = [o for o in self.outcomes if o.path in found.files and o.kind is FileKind.PFSCONFIG]
        waiting = [o for o in mine if o.status is Status.WAITING]
        self._remember(waiting, settled=[o.path for o in mine if o.status is not Status.SKIPPED and o not in waiting])
        counts = Counter(outcome.status for outcome in self.outcomes if outcome.path in found.files)
        summary = ", ".join(f"{counts.get(status, 0)} {status}" for status in Status)
        folders = f", {len(found.unreadable)} unreadable folders" if found.unreadable else ""
        not_done = f", {unexamined + unwritten} not written (--fail-fast)" if unexamined or unwritten else ""
        earlier = ", ".join(f"{n} {status}" for status, n in sorted(self.earlier.items()))
        earlier = f"; earlier waiting pfsConfigs: {earlier}" if earlier else ""
        print(f"{len(files)} files{folders}: {summary}{not_done}{earlier}", file=self.out)
        if any(o.status is Status.FAILED for o in self.outcomes):
            return EX_FAILED
        return EX_WAITING if waiting else EX_OK

    # -- examine ---------------------------------------------------------------------------------

    def _examine_all(self, files: list[Path], explicit: dict[Path, bool]) -> tuple[list[Classified], int]:
        """The files ready for ingest, and how many were not examined because --fail-fast stopped."""
        ready: list[Classified] = []
        for position, path in enumerate(files):
            self.stop.check()
            found = _examine(path, self.accept, self.corrections)
            faults.pause("oneshot.examined", until=self.stop)
            self.stop.check()
            self.progress.examined(self.sizes[path])
            outcome = _outcome_of_examination(found, self.accept)
            if outcome is None:
                assert found.classified is not None
                classified = found.classified
                if self.instrument is not None and isinstance(classified, PfsConfigFile):
                    classified = dataclasses.replace(classified, instrument=self.instrument)
                ready.append(classified)
                continue
            self.progress.dropped(self.sizes[path])
            self.outcomes.append(outcome)
            if outcome.status is Status.SKIPPED and not explicit[path]:
                self.skipped_in_folders[str(found.kind)].append(path)
            else:
                self._report(outcome)
            if not outcome.ok and self.settings.fail_fast:
                return ready, len(files) - position - 1
        return ready, 0

    # -- ingest ----------------------------------------------------------------------------------

    def _ingest(self, ingester: Ingester, ready: list[Classified]) -> int:
        """Ingest in batches; return how many files --fail-fast left unwritten."""
        for start in range(0, len(ready), BATCH):
            self.stop.check()
            batch = ready[start : start + BATCH]
            self.attempted.extend(item.path for item in batch)
            self.progress.ingesting()
            results = ingester.ingest(batch)
            self.progress.committed(len(batch), sum(self.sizes.get(item.path, 0) for item in batch))
            for outcome in results:
                self.outcomes.append(outcome)
                self._report(outcome)
            if self.settings.fail_fast and any(not o.ok for o in results):
                return len(ready) - start - len(batch)
        return 0

    # -- pfsConfigs waiting for their raws -------------------------------------------------------

    def _remember(self, waiting: list[Outcome], settled: list[Path]) -> None:
        """Put this call's waiting pfsConfigs on the repository's list; take off those it ingested."""
        now = time.time()
        waitlist = WaitList(self.repository)
        waitlist.remove([path.absolute() for path in settled])
        waitlist.add([Waiting(outcome.path.absolute(), self.instrument, self.settings.pfsconfig_run,
                              self.settings.transfer, outcome.message or "", now) for outcome in waiting])

    def _earlier_waiting(self, butler: object) -> None:
        """Ingest the pfsConfigs earlier calls left waiting whose raws are now in the repository."""
        waitlist = WaitList(self.repository)
        # A pfsConfig this call was given itself has already been tried.
        mine = {path.absolute() for path in self.attempted}
        mine |= {o.path.absolute() for o in self.outcomes
                 if o.kind is FileKind.PFSCONFIG and o.status is not Status.SKIPPED}
        entries = [entry for entry in waitlist.entries() if entry.path not in mine]
        if not entries:
            return
        gone, done = [], []
        groups: dict[tuple[str | None, str], list[tuple[Waiting, Classified]]] = defaultdict(list)
        for entry in entries:
            self.stop.check()
            found = examine(entry.path, corrections=self.corrections)
            if found.classified is None:
                gone.append(entry.path)
                reason = found.error or found.incomplete or (found.skipped.reason if found.skipped else "")
                self.progress.print(f"FORGOTTEN {entry.path}: was waiting for its raws, now {reason}")
                continue
            classified = found.classified
            if entry.instrument is not None and isinstance(classified, PfsConfigFile):
                classified = dataclasses.replace(classified, instrument=entry.instrument)
            groups[(entry.run, entry.transfer)].append((entry, classified))
        still = 0
        for (run, transfer), items in groups.items():
            settings = dataclasses.replace(self.settings, pfsconfig_run=run, transfer=transfer, fail_fast=False)
            ingester = Ingester(butler, self.repository, settings)  # type: ignore[arg-type]
            ingester.interrupted = self.stop
            for (entry, _), outcome in zip(items, ingester.ingest([c for _, c in items]), strict=True):
                self.earlier[outcome.status.value] += 1
                if outcome.status is Status.WAITING:
                    still += 1
                    continue
                done.append(entry.path)
                self.outcomes.append(outcome)
                if outcome.status in (Status.INGESTED, Status.DUPLICATE):
                    self.progress.print(f"{outcome.status.upper()} {entry.path}: was waiting for its raws since "
                                        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(entry.since))}")
                else:
                    self._report(outcome)
        waitlist.remove(gone + done)
        if still:
            self.progress.print(f"WAITING {still} pfsConfig files from earlier calls still wait for their raws "
                                f"(listed in {waitlist.path})")

    # -- reporting -------------------------------------------------------------------------------

    def _report(self, outcome: Outcome, *, folder: bool = False) -> None:
        reason = _without_path(outcome.message or "", outcome.path)
        where = f"{outcome.path}{os.sep}" if folder else str(outcome.path)
        if outcome.status is Status.INGESTED and outcome.message:  # ingested, with something to say
            self.progress.print(f"WARNING {where}: [{outcome.error_kind or 'warning'}] {reason}")
            return
        if outcome.status not in (Status.FAILED, Status.WAITING, Status.SKIPPED):
            return
        if outcome.status is Status.FAILED:
            self.progress.print(f"FAILED {where}: [{outcome.error_kind}] {reason}")
        else:
            self.progress.print(f"{outcome.status.upper()} {where}: {reason}")

    def _skipped_group(self, kind: str, paths: list[Path]) -> None:
        if len(paths) == 1:
            outcome = next(o for o in self.outcomes if o.path == paths[0])
            self._report(outcome)
            return
        reason = next(o.message for o in self.outcomes if o.path == paths[0]) or ""
        print(f"SKIPPED {len(paths)} files like {paths[0]}: {_without_path(reason, paths[0])}", file=self.err)


def _without_path(message: str, path: Path) -> str:
    """A reason without the path or name it starts with (the report line names the file already)."""
    for prefix in (str(path), str(path.absolute()), path.name):
        if message.startswith(prefix + ": "):
            return message[len(prefix) + 2 :]
    return message


def _examine(path: Path, accept: frozenset[FileKind], corrections: HeaderCorrections) -> Examination:
    """``examine(path)``, but without reading the headers of an ingestible kind this command skips.

    Such a file is skipped whatever its headers say (see _outcome_of_examination), so the name decides;
    kinds that examine() itself skips go through it unchanged (it reads no headers for them).
    """
    name = parse_name(path)
    if name.kind in accept or name.kind not in INGESTIBLE_KINDS or not_ingested(path, name) is not None:
        return examine(path, name, corrections)
    return Examination(path, name)


def _outcome_of_examination(found: Examination, accept: frozenset[FileKind]) -> Outcome | None:
    """An outcome for a file that goes no further than examination, else None."""
    if found.skipped is not None:
        return Outcome(found.path, Status.SKIPPED, found.kind, message=found.skipped.reason)
    if found.kind not in accept:
        other = "ingest-raws" if FileKind.PFSCONFIG in accept else "ingest-pfsconfig"
        reason = f"{_KIND_NAMES.get(found.kind, found.kind)}; this command does not ingest it (use {other})"
        return Outcome(found.path, Status.SKIPPED, found.kind, message=reason)
    if found.error is not None:
        error = found.error
        return Outcome(found.path, Status.FAILED, found.kind, error_kind=str(error.kind), message=str(error))
    if found.incomplete is not None:
        return Outcome(
            found.path, Status.FAILED, found.kind, error_kind="truncated", message=f"{found.incomplete}"
        )
    return None
