"""The one-shot commands ``ingest-raws`` and ``ingest-pfsconfig``.

They mirror ``butler ingest-raws`` and ``ingestPfsConfig.py`` (same arguments)
on the same engine as the service.  Files are examined (headers only) and
ingested a batch of 1,000 at a time, and only counts are kept of what became
of them, so a year of files takes no more memory than a night's; with
``--fail-fast`` the first bad file stops the command before anything more is
written.  Bad and skipped files get one line
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
import glob
import os
import re
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
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
from pfswatchd.nametext import escaped
from pfswatchd.progress import IngestProgress, on_terminal
from pfswatchd.state.waitlist import Waiting, WaitList

BATCH = 1000
EX_OK, EX_FAILED, EX_WAITING = 0, 1, 3
_FITS = re.compile(r"\.fits?(\.fz)?$", re.IGNORECASE)
_GLOB_CHARS = re.compile(r"[*?\[]")
_KIND_NAMES = {FileKind.RAW_CCD: "a PFSA raw frame", FileKind.RAW_NIR: "a PFSB raw frame",
               FileKind.PFSCONFIG: "a pfsConfig file"}


class PathError(Exception):
    """A PATH argument matched nothing."""


def check_paths(arguments: Sequence[str]) -> None:
    """PathError for the first argument that names no file, folder or glob match (before anything is done)."""
    for argument in arguments:
        if os.path.exists(argument):
            continue
        if not _GLOB_CHARS.search(argument):
            raise PathError(f"{argument}: no such file or directory")
        if next(glob.iglob(argument, recursive=True), None) is None:
            raise PathError(f"{argument}: the pattern matches no file")


def iter_paths(arguments: Sequence[str], unreadable: Callable[[Path, str], None] | None = None,
               linked: Callable[[Path, str], None] | None = None) -> Iterator[tuple[Path, bool]]:
    """Files named by PATH arguments, one at a time, each with whether it was named explicitly: files,
    directories (recursive, FITS names) or globs.  A folder that cannot be listed goes to
    ``unreadable(folder, reason)``, never silently skipped.  In a folder, a link whose real location is
    outside that folder is not given: it goes to ``linked(path, reason)`` (links to folders are never
    entered).

    Nothing is held per file, so a year of files costs no more memory than one.  A file named by two
    arguments is given once; to know that, the paths already given are remembered, but only when two
    arguments can name the same file (one's folder holds the other's).
    """
    regions = [_region(argument) for argument in arguments]
    overlapping = any(_within(a, b) for i, a in enumerate(regions) for j, b in enumerate(regions) if i != j)
    given: set[Path] | None = set() if overlapping else None
    for argument in arguments:
        for path, explicit in _expand(argument, unreadable, linked):
            if given is not None:
                if path in given:
                    continue
                given.add(path)
            yield path, explicit


def _expand(argument: str, unreadable: Callable[[Path, str], None] | None,
            linked: Callable[[Path, str], None] | None = None) -> Iterator[tuple[Path, bool]]:
    path = Path(argument)
    if path.is_dir():
        def onerror(error: OSError) -> None:
            if unreadable is not None:
                unreadable(Path(error.filename or path), f"cannot read the folder: {error.strerror or error}")

        for folder, dirs, names in os.walk(path, onerror=onerror):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if _FITS.search(name) and not is_temporary(name):
                    found = Path(folder) / name
                    if os.path.islink(found) and not _really_within(found, path):
                        if linked is not None:
                            linked(found, f"a link out of {path}: not read, moved or deleted")
                        continue
                    yield found, False
    elif path.exists():
        yield path, True
    elif _GLOB_CHARS.search(argument):
        for match in glob.iglob(argument, recursive=True):  # not glob.glob: that is a list of every match
            yield from _expand(match, unreadable, linked)
    # else: removed since check_paths; nothing to give


def _region(argument: str) -> Path:
    """The folder (or file) an argument's files are all in: a glob's part before its first wildcard."""
    fixed = []
    for part in Path(argument).parts:
        if _GLOB_CHARS.search(part):
            break
        fixed.append(part)
    return Path(os.path.abspath(Path(*fixed) if fixed else "."))


def _really_within(path: Path, folder: Path) -> bool:
    """True if the real location of ``path`` (every link resolved) is inside the real ``folder``."""
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return real.startswith(base.rstrip(os.sep) + os.sep)


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


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
    """One one-shot call: its files, what became of them (counted, not kept), its report."""

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
        self.counts: Counter[Status] = Counter()  # this call's files
        self.failed = False
        self.waiting = False
        self.files = 0  # named by the arguments
        self.unreadable: dict[Path, str] = {}
        # Skipped files found in folders, one line per kind at the end: how many, and the first one.
        self.skipped_in_folders: dict[str, tuple[int, Outcome]] = {}
        self.pfsconfigs: list[Outcome] = []  # this batch's, for the wait list (see _remember)
        self.tried: set[Path] = set()  # pfsConfigs this call tried (not to be tried again from the list)
        self.earlier: Counter[str] = Counter()  # what became of pfsConfigs earlier calls left waiting

    def run(self, paths: Sequence[str]) -> int:
        check_paths(paths)
        # A terminal shows bars with totals, so the files are counted first (a walk and a stat each).
        totals = [0, 0]
        if on_terminal(self.err):
            for path, _ in iter_paths(paths):
                totals[0] += 1
                totals[1] += _size(path)
        butler = repo.open_butler(self.repository)
        self.stop.check()
        ingester = Ingester(butler, self.repository, self.settings)
        ingester.interrupted = self.stop
        with IngestProgress(totals[0], totals[1], self.err) as progress:
            self.progress = progress
            unexamined, unwritten = self._examine_and_ingest(ingester, paths)
            if unexamined or unwritten:
                progress.print(f"pfswatchd: --fail-fast stopped at the first failure: {unexamined} files not "
                               f"examined, {unwritten} examined but not written")
            else:
                self._earlier_waiting(butler)
        for count, first in self.skipped_in_folders.values():
            self._skipped_group(count, first)
        summary = ", ".join(f"{self.counts.get(status, 0)} {status}" for status in Status)
        folders = f", {len(self.unreadable)} unreadable folders" if self.unreadable else ""
        not_done = f", {unexamined + unwritten} not written (--fail-fast)" if unexamined or unwritten else ""
        earlier = ", ".join(f"{n} {status}" for status, n in sorted(self.earlier.items()))
        earlier = f"; earlier waiting pfsConfigs: {earlier}" if earlier else ""
        print(f"{self.files + unexamined} files{folders}: {summary}{not_done}{earlier}", file=self.out)
        if self.failed:
            return EX_FAILED
        return EX_WAITING if self.waiting else EX_OK

    def _unreadable_folder(self, folder: Path, reason: str) -> None:
        """A folder that cannot be listed: a failure with its reason, never a silent skip."""
        self.unreadable[folder] = reason
        self.failed = True
        self._report(Outcome(folder, Status.FAILED, FileKind.OTHER, error_kind="permission_denied",
                             message=reason), folder=True)

    def _linked(self, path: Path, reason: str) -> None:
        """A link in a folder argument that leads out of it: skipped with its reason, never followed."""
        self.files += 1
        outcome = Outcome(path, Status.SKIPPED, FileKind.OTHER, error_kind="link_ignored", message=reason)
        self._count(outcome)
        self._report(outcome)

    # -- examine, then ingest, a batch at a time -------------------------------------------------

    def _examine_and_ingest(self, ingester: Ingester, paths: Sequence[str]) -> tuple[int, int]:
        """Examine the files, ingesting each ``BATCH`` of those ready as it fills.

        Returns (files not examined, files examined but not written) when --fail-fast stopped.
        """
        ready: list[tuple[Classified, int]] = []
        named = iter_paths(paths, self._unreadable_folder, self._linked)
        for path, explicit in named:
            self.files += 1
            self.stop.check()
            size = _size(path)
            found = _examine(path, self.accept, self.corrections)
            faults.pause("oneshot.examined", until=self.stop)
            self.stop.check()
            self.progress.examined(size)
            outcome = _outcome_of_examination(found, self.accept)
            if outcome is None:
                assert found.classified is not None
                classified = found.classified
                if self.instrument is not None and isinstance(classified, PfsConfigFile):
                    classified = dataclasses.replace(classified, instrument=self.instrument)
                ready.append((classified, size))
                if len(ready) >= BATCH:
                    if not self._ingest(ingester, ready):
                        return sum(1 for _ in named), 0
                    ready = []
                continue
            self.progress.dropped(size)
            self._count(outcome)
            if outcome.status is Status.SKIPPED and not explicit:
                count, first = self.skipped_in_folders.get(str(found.kind), (0, outcome))
                self.skipped_in_folders[str(found.kind)] = (count + 1, first)
            else:
                self._report(outcome)
            if not outcome.ok and self.settings.fail_fast:
                self._remember()
                return sum(1 for _ in named), len(ready)
        if ready:
            self._ingest(ingester, ready)
        self._remember()
        return 0, 0

    def _ingest(self, ingester: Ingester, ready: list[tuple[Classified, int]]) -> bool:
        """Ingest one batch; False when --fail-fast must stop."""
        self.stop.check()
        self.tried.update(item.path.absolute() for item, _ in ready if isinstance(item, PfsConfigFile))
        self.progress.ingesting()
        results = ingester.ingest([item for item, _ in ready])
        self.progress.committed(len(ready), sum(size for _, size in ready))
        for outcome in results:
            self._count(outcome)
            self._report(outcome)
        self._remember()
        return not (self.settings.fail_fast and any(not o.ok for o in results))

    def _count(self, outcome: Outcome) -> None:
        self.counts[outcome.status] += 1
        self.failed = self.failed or outcome.status is Status.FAILED
        if outcome.kind is FileKind.PFSCONFIG:
            self.pfsconfigs.append(outcome)
            if outcome.status is not Status.SKIPPED:
                self.tried.add(outcome.path.absolute())

    # -- pfsConfigs waiting for their raws -------------------------------------------------------

    def _remember(self) -> None:
        """Put the pfsConfigs of the batch just done that wait for their raws on the repository's list;
        take off those it ingested (or that failed for another reason)."""
        if not self.pfsconfigs:
            return
        waiting = [o for o in self.pfsconfigs if o.status is Status.WAITING]
        settled = [o.path for o in self.pfsconfigs if o.status not in (Status.SKIPPED, Status.WAITING)]
        self.pfsconfigs = []
        self.waiting = self.waiting or bool(waiting)
        now = time.time()
        waitlist = WaitList(self.repository)
        waitlist.remove([path.absolute() for path in settled])
        waitlist.add([Waiting(outcome.path.absolute(), self.instrument, self.settings.pfsconfig_run,
                              self.settings.transfer, outcome.message or "", now) for outcome in waiting])

    def _earlier_waiting(self, butler: object) -> None:
        """Ingest the pfsConfigs earlier calls left waiting whose raws are now in the repository."""
        waitlist = WaitList(self.repository)
        # A pfsConfig this call was given itself has already been tried.
        entries = [entry for entry in waitlist.entries() if entry.path not in self.tried]
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
                self.failed = self.failed or outcome.status is Status.FAILED
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

    def _skipped_group(self, count: int, first: Outcome) -> None:
        if count == 1:
            self._report(first)
            return
        reason = _without_path(first.message or "", first.path)
        print(escaped(f"SKIPPED {count} files like {first.path}: {reason}"), file=self.err)


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
