"""complete -> classify for one file: read its headers once and say what it is.

Shared by the one-shot commands and the service.  Reading is bounded: headers
only (see :mod:`pfswatchd.files.fitsheader`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pfswatchd.errors import PfsWatchError, first_line, transient
from pfswatchd.files.classify import classify, not_ingested
from pfswatchd.files.complete import incomplete_reason
from pfswatchd.files.corrections import NONE, HeaderCorrections
from pfswatchd.files.fitsheader import FitsScan, scan
from pfswatchd.files.names import parse_name
from pfswatchd.model import Classified, FileKind, NameInfo, Skipped


@dataclass(frozen=True, slots=True)
class Examination:
    """What one look at a file found.  Exactly one of the optional fields is set."""

    path: Path
    name: NameInfo
    classified: Classified | None = None
    skipped: Skipped | None = None
    incomplete: str | None = None  # "ends at byte ..."; maybe still being written
    error: PfsWatchError | None = None
    identity: tuple[int, int, int, int] | None = None  # (size, mtime_ns, ctime_ns, inode) when read

    @property
    def kind(self) -> FileKind:
        return self.name.kind


def examine(path: Path, name: NameInfo | None = None, corrections: HeaderCorrections = NONE) -> Examination:
    """Read the headers of ``path`` and classify it (never raises for bad input).

    ``corrections``: the header corrections applied to raws before they are classified.
    """
    name = name or parse_name(path)
    skipped = not_ingested(path, name)
    if skipped is not None:
        return Examination(path, name, skipped=skipped)
    identity = None
    try:
        result: FitsScan = scan(path)
        identity = result.identity()
        unfinished = incomplete_reason(name.kind, result)
        if unfinished is not None:
            return Examination(path, name, incomplete=f"{path.name}: {unfinished}", identity=identity)
        classified = replace(classify(path, name, result, corrections), examined=identity)
    except PfsWatchError as exc:
        return Examination(path, name, error=exc, identity=identity)
    except OSError as exc:
        return Examination(path, name, error=transient(exc, f"reading {path.name}"), identity=identity)
    except Exception as exc:  # the per-file guard: whatever a header makes fail is this file's reason
        error = PfsWatchError(f"{path.name}: {type(exc).__name__} while examining it: {first_line(exc)}; "
                              "expected a file pfswatchd can classify or a reason naming what is wrong with it "
                              "(please report this)")
        return Examination(path, name, error=error, identity=identity)
    return Examination(path, name, classified=classified, identity=identity)
