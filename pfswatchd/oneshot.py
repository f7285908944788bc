"""The one-shot commands ``ingest-raws`` and ``ingest-pfsconfig``.

They mirror ``butler ingest-raws`` and ``ingestPfsConfig.py`` (same arguments)
on the same engine as the service.  Every file is examined (headers only)
before anything is written; with ``--fail-fast`` the first bad file stops the
command before anything more is written.  Bad files get one line each on
stderr; a summary goes to stdout; the exit status is 1 when any file failed.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO, cast

from pfswatchd.butler import repo
from pfswatchd.butler.ingest import Ingester, IngestSettings
from pfswatchd.files.classify import not_ingested
from pfswatchd.files.corrections import NONE, HeaderCorrections
from pfswatchd.files.examine import Examination, examine
from pfswatchd.files.names import is_temporary, parse_name
from pfswatchd.model import INGESTIBLE_KINDS, Classified, FileKind, Outcome, PfsConfigFile, Status

BATCH = 1000
_FITS = re.compile(r"\.fits?(\.fz)?$", re.IGNORECASE)
_GLOB_CHARS = re.compile(r"[*?\[]")


class PathError(Exception):
    """A PATH argument matched nothing."""


def expand_paths(arguments: Iterable[str]) -> list[Path]:
    """Files named by PATH arguments: files, directories (recursive, FITS names) or globs."""
    found: dict[Path, None] = {}
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if _FITS.search(name) and not is_temporary(name):
                        found[Path(folder) / name] = None
        elif path.exists():
            found[path] = None
        elif _GLOB_CHARS.search(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            if not matches:
                raise PathError(f"{argument}: the pattern matches no file")
            for match in matches:
                found.update((p, None) for p in expand_paths([match]))
        else:
            raise PathError(f"{argument}: no such file or directory")
    return list(found)


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
    files = expand_paths(paths)
    butler = repo.open_butler(repository)
    ingester = Ingester(butler, repository, settings)
    progress = _Progress(len(files), err)
    outcomes: list[Outcome] = []
    ready: list[Classified] = []
    stop = False
    for path in files:
        found = _examine(path, accept, corrections)
        outcome = _outcome_of_examination(found, accept)
        if outcome is not None:
            outcomes.append(outcome)
            _report(outcome, err)
            progress.advance()
            if not outcome.ok and settings.fail_fast:
                stop = True
                break
            continue
        assert found.classified is not None
        classified = found.classified
        if instrument is not None and isinstance(classified, PfsConfigFile):
            classified = dataclasses.replace(classified, instrument=instrument)
        ready.append(classified)
    if not stop:
        for start in range(0, len(ready), BATCH):
            batch = ready[start : start + BATCH]
            results = ingester.ingest(batch)
            for outcome in results:
                outcomes.append(outcome)
                _report(outcome, err)
            progress.advance(len(batch))
            if settings.fail_fast and any(not o.ok for o in results):
                break
    progress.close()
    counts = Counter(outcome.status for outcome in outcomes)
    summary = ", ".join(f"{counts.get(status, 0)} {status}" for status in Status)
    print(f"{len(files)} files: {summary}", file=out)
    return 1 if counts.get(Status.FAILED) else 0


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
        what = "raw frames" if FileKind.PFSCONFIG not in accept else "pfsConfig files"
        reason = f"{found.path.name}: a {found.kind} file; this command ingests {what}"
        if found.kind is FileKind.OTHER:
            reason = f"{found.path.name}: not a PFS file name; ignored"
        return Outcome(found.path, Status.SKIPPED, found.kind, message=reason)
    if found.error is not None:
        error = found.error
        return Outcome(found.path, Status.FAILED, found.kind, error_kind=str(error.kind), message=str(error))
    if found.incomplete is not None:
        return Outcome(
            found.path, Status.FAILED, found.kind, error_kind="truncated", message=f"{found.incomplete}"
        )
    return None


def _report(outcome: Outcome, err: TextIO) -> None:
    if outcome.status is Status.FAILED:
        print(f"FAILED {outcome.path}: [{outcome.error_kind}] {outcome.message}", file=err)
    elif outcome.status is Status.WAITING:
        print(f"WAITING {outcome.path}: {outcome.message}", file=err)
    elif outcome.status is Status.INGESTED and outcome.message:
        print(f"WARNING {outcome.path}: [{outcome.error_kind or 'warning'}] {outcome.message}", file=err)


class _Progress:
    """A one-line progress bar on a terminal, for runs of more than a few files."""

    def __init__(self, total: int, stream: TextIO, isatty: Callable[[], bool] | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        probe = isatty or cast("Callable[[], bool]", getattr(stream, "isatty", lambda: False))
        self.enabled = total >= 20 and probe()

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.enabled:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} files")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
