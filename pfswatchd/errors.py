"""Error kinds that pfswatchd records, and the exceptions that carry them.

Every failure that reaches the ledger has one ``ErrorKind`` from the fixed list
below.  The kinds are part of the operator interface (``status --json``, the
log, README "Error kinds"), so never rename one; add new ones at the end.

``retryable`` kinds are transient: the file stays queued and is retried with
backoff.  The others are permanent: the file is failed (and quarantined when
the policy says so) until an operator runs ``pfswatchd retry``.
"""

from __future__ import annotations

import errno
from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    # Permanent: something is wrong with the file itself.
    NOT_FITS = "not_fits"
    TRUNCATED = "truncated"
    BAD_HEADER = "bad_header"
    NAME_MISMATCH = "name_mismatch"
    DESIGN_MISMATCH = "design_mismatch"
    VISIT_MISMATCH = "visit_mismatch"
    CONFLICT = "conflict"
    UNSAFE_ARCHIVE = "unsafe_archive"
    CORRUPT_ARCHIVE = "corrupt_archive"
    ARCHIVE_LIMIT = "archive_limit"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    UNPACK_SCRIPT = "unpack_script"
    NOT_PFS_REPOSITORY = "not_pfs_repository"
    INTERNAL = "internal"
    # Transient: the environment, not the file.
    DATABASE_UNAVAILABLE = "database_unavailable"
    DISK_FULL = "disk_full"
    PERMISSION_DENIED = "permission_denied"
    IO_ERROR = "io_error"
    DATASTORE_BUSY = "datastore_busy"
    CONCURRENT_WRITE = "concurrent_write"
    # Permanent (added later; kinds are only ever appended).
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    # Transient (added later): the file at the path is not the one examined; it is examined again.
    SOURCE_CHANGED = "source_changed"
    # Permanent (added later).
    BAD_NAME = "bad_name"  # a file or folder name that is not UTF-8: recorded under its escaped form, never ingested


RETRYABLE_KINDS = frozenset(
    {
        ErrorKind.DATABASE_UNAVAILABLE,
        ErrorKind.DISK_FULL,
        ErrorKind.PERMISSION_DENIED,
        ErrorKind.IO_ERROR,
        ErrorKind.DATASTORE_BUSY,
        ErrorKind.CONCURRENT_WRITE,
        ErrorKind.SOURCE_CHANGED,
    }
)


# Kinds recorded on a file that WAS ingested, as a warning (state ingested, the reason in ``error``).
WARNING_KINDS = frozenset({ErrorKind.VISIT_MISMATCH})


class PfsWatchError(Exception):
    """Base of pfswatchd's errors; ``str(error)`` is a one-line reason.

    The message names the file, what was wrong and what was expected, so it can
    be shown to an operator as it is.
    """

    kind: ClassVar[ErrorKind] = ErrorKind.INTERNAL

    def __init__(self, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(" ".join(message.split()))
        if kind is not None:
            self.kind = kind  # type: ignore[misc]

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the kind when an error crosses a process boundary (the examiner pool).
        return (_rebuild, (type(self), str(self), self.kind))


def _rebuild(cls: type[PfsWatchError], message: str, kind: ErrorKind) -> PfsWatchError:
    return cls(message, kind=kind)


class NotFitsError(PfsWatchError):
    kind = ErrorKind.NOT_FITS


class BadHeaderError(PfsWatchError):
    kind = ErrorKind.BAD_HEADER


class NameMismatchError(PfsWatchError):
    kind = ErrorKind.NAME_MISMATCH


class DesignMismatchError(PfsWatchError):
    kind = ErrorKind.DESIGN_MISMATCH


class VisitMismatchError(PfsWatchError):
    kind = ErrorKind.VISIT_MISMATCH


class UnknownInstrumentError(PfsWatchError):
    kind = ErrorKind.UNKNOWN_INSTRUMENT


class ConflictError(PfsWatchError):
    kind = ErrorKind.CONFLICT


class UnsafeArchiveError(PfsWatchError):
    kind = ErrorKind.UNSAFE_ARCHIVE


class CorruptArchiveError(PfsWatchError):
    kind = ErrorKind.CORRUPT_ARCHIVE


class ArchiveLimitError(PfsWatchError):
    kind = ErrorKind.ARCHIVE_LIMIT


class ChecksumMismatchError(PfsWatchError):
    kind = ErrorKind.CHECKSUM_MISMATCH


class UnpackScriptError(PfsWatchError):
    kind = ErrorKind.UNPACK_SCRIPT


class NotPfsRepositoryError(PfsWatchError):
    kind = ErrorKind.NOT_PFS_REPOSITORY


class SourceChangedError(PfsWatchError):
    """The file at a source path is not the one that was examined (replaced by a rename, or rewritten)
    when it was about to be placed or removed: nothing of it is written, and it is examined again as the
    new file it is."""

    kind = ErrorKind.SOURCE_CHANGED


class TransientError(PfsWatchError):
    """The environment failed (database, disk, permissions); try again later."""

    kind = ErrorKind.IO_ERROR


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type's name): enough for a one-line reason."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def transient(exc: OSError, doing: str) -> TransientError:
    """Map an OSError to the transient error kind an operator can act on."""
    kind = {
        errno.ENOSPC: ErrorKind.DISK_FULL,
        errno.EDQUOT: ErrorKind.DISK_FULL,
        errno.EACCES: ErrorKind.PERMISSION_DENIED,
        errno.EPERM: ErrorKind.PERMISSION_DENIED,
        errno.EROFS: ErrorKind.PERMISSION_DENIED,
    }.get(exc.errno or 0, ErrorKind.IO_ERROR)
    reason = exc.strerror or str(exc)
    return TransientError(f"{doing}: {reason}", kind=kind)


class Interrupted(BaseException):
    """An interrupt (Ctrl-C, SIGTERM) noticed at a safe point: stop, undoing what is not committed.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way takes it for
    a failed file.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class ConfigError(Exception):
    """The configuration is invalid; the message names the key and why."""


class RefusedError(Exception):
    """A repository command (hand-over, import) refused to act: nothing was changed, and the one-line
    message says why and what to do.  Not a file's error kind: the ledger never records it."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


ERROR_HELP: dict[ErrorKind, str] = {
    ErrorKind.NOT_FITS: "The file is not FITS (no SIMPLE card, or a malformed header). "
    "Re-download it; if it is not a PFS frame, move it out of the watched folder.",
    ErrorKind.TRUNCATED: "The file is shorter than its headers declare and stopped growing. "
    "Re-download it, then `pfswatchd retry`.",
    ErrorKind.BAD_HEADER: "A required header card is missing or has an invalid value. "
    "Fix the header (e.g. checkPfsRawHeaders.py --fix) and retry.",
    ErrorKind.NAME_MISMATCH: "The file name and the header disagree (visit, arm, spectrograph, "
    "site or design). Find out which is right; rename or fix the header.",
    ErrorKind.DESIGN_MISMATCH: "The pfsDesignId differs from the one already recorded for the visit. "
    "The file belongs to another visit or the header needs a fix.",
    ErrorKind.VISIT_MISMATCH: "A warning, not a failure: a visit-level value that obs_pfs never "
    "compares (dither, exposure time, IRP ratio) differs from the visit's record, which keeps the first "
    "raw's values. The raw is ingested; check the header if the difference is more than read-back noise.",
    ErrorKind.CONFLICT: "A different file with the same data ID is already in the repository. "
    "Nothing was overwritten; remove the old dataset with `butler prune-datasets --unstore` "
    "first if the new file should replace it.",
    ErrorKind.UNSAFE_ARCHIVE: "The archive has a member that would escape the extraction folder "
    "(absolute path, '..', outside link, device or fifo). Nothing was published.",
    ErrorKind.CORRUPT_ARCHIVE: "The archive cannot be read (bad compression, truncated tar, data after "
    "its end marker that is no tar) or names one member twice. Re-download or re-create it.",
    ErrorKind.ARCHIVE_LIMIT: "The archive exceeds a configured limit (member count, size, "
    "compression ratio, nesting), or a member is more than 64 folders deep or has a path over 1,024 "
    "bytes. Raise [archives] limits if it is genuine.",
    ErrorKind.CHECKSUM_MISMATCH: "A file does not match its md5/sha256 sidecar. Re-download it.",
    ErrorKind.UNPACK_SCRIPT: "The STARS2 zadmin/unpack.py script failed or timed out. The bundle was "
    "published without what it half-fetched; run the script by hand there (status shows the command).",
    ErrorKind.NOT_PFS_REPOSITORY: "The butler repository does not have the PFS dimension universe.",
    ErrorKind.INTERNAL: "An unexpected error (a bug). The message names the exception; the log has "
    "the details. Please report it. `pfswatchd retry` re-queues the file.",
    ErrorKind.DATABASE_UNAVAILABLE: "The registry or ledger database is locked or down. "
    "Retried automatically with backoff.",
    ErrorKind.DISK_FULL: "No space left in the datastore or staging folder. Free space; "
    "retried automatically.",
    ErrorKind.PERMISSION_DENIED: "pfswatchd may not read the file or write its destination. "
    "Fix ownership or mode; retried automatically.",
    ErrorKind.IO_ERROR: "An I/O error that may pass (network filesystem, file vanished while "
    "read). Retried automatically.",
    ErrorKind.DATASTORE_BUSY: "The datastore path is being written by another ingest. "
    "Retried automatically.",
    ErrorKind.CONCURRENT_WRITE: "Another instance wrote the same registry rows (a visit record, a "
    "dataset) at the same moment. Retried automatically; the retry sees what the other one wrote.",
    ErrorKind.UNKNOWN_INSTRUMENT: "The file's W_SITE names an instrument that the repository has not "
    "registered and repository.instruments does not list (obs_pfs has Instrument classes for S, F and L "
    "only). Register it, or add it to repository.instruments, then `pfswatchd retry`.",
    ErrorKind.SOURCE_CHANGED: "Another file was renamed onto the path (or the file was rewritten) after its "
    "headers were read and before it was placed: nothing of it was written, and the file now at the path "
    "is examined again. Nothing to do, unless a writer keeps replacing the file.",
    ErrorKind.BAD_NAME: "The file or folder name is not UTF-8 (the row's path shows the bytes as \\xNN). "
    "Rename it to a UTF-8 name: the new name is picked up as a new file (`pfswatchd retry` cannot help).",
}

assert set(ERROR_HELP) == set(ErrorKind), "every error kind needs operator help"
