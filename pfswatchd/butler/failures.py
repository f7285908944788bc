"""What a failure inside the butler means for the file: retry later, or a one-line reason.

The ingest engine (:mod:`pfswatchd.butler.ingest`) sends every registry and datastore
exception through here, so that a database that is locked or down is always a retryable
``database_unavailable`` (never charged to a file as its fault), and anything else becomes
a :class:`~pfswatchd.errors.PfsWatchError` with one line naming the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy.exc
from lsst.daf.butler.registry import ConflictingDefinitionError

from pfswatchd.errors import ErrorKind, PfsWatchError, TransientError, first_line, transient

_T = TypeVar("_T")


def is_database_unavailable(exc: BaseException) -> bool:
    """Locked, busy, disconnected or unreachable database: worth retrying later."""
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, sqlalchemy.exc.OperationalError | sqlalchemy.exc.DisconnectionError):
            return True
        if isinstance(chain, sqlalchemy.exc.InterfaceError | sqlalchemy.exc.TimeoutError):
            return True
        if isinstance(chain, sqlite3.OperationalError):
            return True
        chain = chain.__cause__ or chain.__context__
    return False


def raise_if_database_unavailable(exc: BaseException) -> None:
    """Raise a retryable DATABASE_UNAVAILABLE TransientError (from ``exc``) when ``exc`` is one."""
    if is_database_unavailable(exc):
        raise TransientError(
            f"registry database unavailable: {first_line(exc)}", kind=ErrorKind.DATABASE_UNAVAILABLE
        ) from exc


def query(call: Callable[[], _T]) -> _T:
    """Run a registry read; a database that is away becomes DATABASE_UNAVAILABLE."""
    try:
        return call()
    except Exception as exc:
        raise_if_database_unavailable(exc)
        raise


def as_error(exc: BaseException, path: Path) -> PfsWatchError:
    """A one-line PfsWatchError for a failure while writing ``path`` after a checked plan.

    A checked plan has already compared the registry with the file (a different file with the same
    data ID is a ConflictError before anything is written), so a constraint violation now means that
    another instance wrote the same rows in between: transient, and the retry sees them.
    """
    if isinstance(exc, PfsWatchError):
        return exc
    if isinstance(exc, OSError):
        return transient(exc, f"ingesting {path.name}")
    text = first_line(exc)
    if isinstance(exc, ConflictingDefinitionError | sqlalchemy.exc.IntegrityError) or "already contains" in text:
        return TransientError(f"{path.name}: another instance wrote the same registry rows meanwhile ({text})",
                              kind=ErrorKind.CONCURRENT_WRITE)
    return PfsWatchError(f"{path.name}: {type(exc).__name__}: {text}", kind=ErrorKind.INTERNAL)


def file_error(exc: Exception, path: Path, doing: str) -> PfsWatchError:
    """The one-line reason of ``path`` for any exception raised while ``doing`` something with it alone.

    The per-file guard of the ingest engine: pfswatchd's own errors as they are (named after the file),
    OSErrors as their transient kinds, a database that is away as DATABASE_UNAVAILABLE (retried, never
    the file's fault), anything else as INTERNAL with the exception's first line.
    """
    if isinstance(exc, PfsWatchError):
        text = str(exc)
        if text.startswith((path.name, str(path))):
            return exc
        return type(exc)(f"{path.name}: {text}", kind=exc.kind)
    if isinstance(exc, OSError):
        return transient(exc, f"{doing} {path.name}")
    if is_database_unavailable(exc):
        return TransientError(f"{path.name}: registry database unavailable while {doing} it: {first_line(exc)}",
                              kind=ErrorKind.DATABASE_UNAVAILABLE)
    return PfsWatchError(f"{path.name}: {type(exc).__name__} while {doing} it: {first_line(exc)}; expected "
                         "a file pfswatchd can ingest or a reason naming what is wrong with it (please report "
                         "this)", kind=ErrorKind.INTERNAL)
