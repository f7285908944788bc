"""unpack, in the service: archives in the drop folder are extracted, checked and published.

An archive (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) that has settled is
extracted in a worker thread into a private staging folder under
``archives.extract_to`` (same filesystem), its checksum sidecars verified, and
its tree published by rename into ``extract_to/<archive name>/``, a folder the
service watches: the FITS files then flow into ingest like any other, and the
ledger links each to its archive.  The archive is read once: if its tar stream
stops early, staging is removed, nothing is published, and the archive is
treated as still being written (looked at again when it changes, refused when
it stays short).

- A refused archive (unsafe member, corrupt stream, limit exceeded) is
  quarantined whole with its reason; nothing from it is published.
- A file that fails its checksum is not published and is recorded failed,
  with its name and both sums.
- A STARS2 bundle (``zadmin/unpack.py``) is extracted; by default the ledger and
  the log say what the operator must run; with ``archives.stars.run_unpack``
  the script runs first (no shell, limited environment, timeout) and what it
  fetched is published too.
- After success the archive is kept, deleted or moved to ``archives.done_path``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pfswatchd.archives.staging import remove_abandoned
from pfswatchd.archives.stars import operator_instructions
from pfswatchd.archives.tarstream import ArchiveEndsEarly
from pfswatchd.archives.unpack import STAGING_DIR_NAME, UnpackResult, unpack
from pfswatchd.config import Config
from pfswatchd.errors import ErrorKind, PfsWatchError, first_line, transient
from pfswatchd.files.names import parse_name
from pfswatchd.nametext import bad_name
from pfswatchd.service.settle import Hint, Identity, Settler
from pfswatchd.state import quarantine
from pfswatchd.state.ledger import ArchiveState, Ledger, Seen

STAGING_CHECK_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Job:
    """What the worker thread found for one archive."""

    path: Path
    identity: Identity
    incomplete: bool = False
    result: UnpackResult | None = None
    error: PfsWatchError | None = None


class ArchiveObserver(Protocol):
    """Who is told archive outcomes and checksum failures (the monitor's metrics)."""

    def file_done(self, state: str, kind: str | None, error_kind: str | None, seen_seconds: float | None,
                  complete_seconds: float | None) -> None: ...

    def archive_done(self, outcome: str) -> None: ...


class ArchiveStage:
    def __init__(self, config: Config, ledger: Ledger, log: Any, hint: Callable[[str, str], None],
                 wake: Callable[[], None]) -> None:
        self.config = config
        self.ledger = ledger
        self.log = log
        self.hint = hint
        self.wake = wake
        self.settler = Settler(config.watch.settle_seconds, config.watch.truncated_after)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pfswatchd-unpack")
        self._lock = threading.Lock()
        self._done: list[_Job] = []
        self._busy: set[str] = set()
        self._due_checked = 0.0
        self._staging_checked = time.monotonic()
        self.observer: ArchiveObserver | None = None
        self.remove_abandoned_staging()  # at start: a killed run's staging goes at once, not after a claim timeout

    def remove_abandoned_staging(self) -> None:
        """Remove staging folders of this host's processes that are gone (killed mid-extraction)."""
        try:
            removed = remove_abandoned(self.config.archives.extract_to / STAGING_DIR_NAME)
        except OSError as exc:
            self.log.warning("staging_not_removed", path=str(self.config.archives.extract_to), error=str(exc))
            return
        for folder in removed:
            self.log.info("staging_removed", path=str(folder), reason="left by a process that is gone")

    # -- main thread -----------------------------------------------------------------------------

    def observe(self, path: Path, identity: Identity, hint: Hint, now: float) -> None:
        size, mtime_ns, _, inode = identity
        if not self.ledger.upsert_archive(str(path), size, mtime_ns, inode, now):
            return  # already handled, unchanged
        self.settler.observe(str(path), identity, hint, now)

    def tick(self, now: float, identity_of: Callable[[str], Identity | None]) -> None:
        for path in self.settler.restat_due(now):
            identity = identity_of(path)
            if identity is None:
                self.settler.forget(path)
            else:
                self.settler.observe(path, identity, Hint.MODIFIED, now)
        for path in self.settler.ready(now):
            if path in self._busy or not self.ledger.claim_archive(path, now):
                continue
            identity = identity_of(path)
            if identity is None:
                self.settler.forget(path)
                continue
            self.settler.examining([path])
            self._busy.add(path)
            future = self._pool.submit(self._work, Path(path), identity)
            future.add_done_callback(self._finished)
        if time.monotonic() - self._staging_checked >= STAGING_CHECK_SECONDS:
            self._staging_checked = time.monotonic()
            self.remove_abandoned_staging()  # another instance of this host killed mid-extraction
        if now - self._due_checked >= 1.0:
            self._due_checked = now
            for path in self.ledger.due_archives(now):
                identity = identity_of(path)
                if identity is not None and path not in self._busy:
                    self.settler.observe(path, identity, Hint.RETRY, now)
        for path, reason in self.settler.overdue(now):
            self.settler.forget(path)
            self._refused(Path(path), ErrorKind.CORRUPT_ARCHIVE.value,
                          f"{Path(path).name}: {reason}; the archive stopped growing before its tar stream ended")
        with self._lock:
            done, self._done = self._done, []
        for job in done:
            self._busy.discard(str(job.path))
            self.settler.examined(str(job.path))
            self._record(job, now)

    def next_deadline(self, now: float) -> float | None:
        return self.settler.next_deadline(now)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- worker thread ---------------------------------------------------------------------------

    def _work(self, path: Path, identity: Identity) -> _Job:
        cfg = self.config
        try:
            stars = cfg.archives.stars
            result = unpack(
                path,
                cfg.archives.extract_to,
                limits=self.config.archives.limits,
                verify=cfg.archives.verify_checksums,
                stars_script=(stars.network, stars.timeout) if stars.run_unpack else None,
                file_mode=cfg.service.file_mode,
                dir_mode=cfg.service.dir_mode,
            )
        except ArchiveEndsEarly:  # cut short or still being written: staging is gone, nothing published
            return _Job(path, identity, incomplete=True)
        except PfsWatchError as exc:
            return _Job(path, identity, error=exc)
        except OSError as exc:
            return _Job(path, identity, error=transient(exc, f"unpacking {path.name}"))
        except Exception as exc:  # the one boundary of this work item: never left `extracting` forever
            self.log.error("archive_unpack_crashed", path=str(path), exc_info=True)
            return _Job(path, identity, error=PfsWatchError(
                f"{path.name}: unexpected error while unpacking ({type(exc).__name__}: {first_line(exc)}); "
                "expected none (a bug: the log has the details)"))
        return _Job(path, identity, result=result)

    def _finished(self, future: Future[_Job]) -> None:
        job = future.result()
        with self._lock:
            self._done.append(job)
        self.wake()

    # -- recording (main thread) -----------------------------------------------------------------

    def _record(self, job: _Job, now: float) -> None:
        path = str(job.path)
        if job.incomplete:
            self.ledger.finish_archive(path, ArchiveState.PENDING)
            self.settler.incomplete(path, job.identity, f"{job.path.name}: the tar stream is not complete yet", now)
            return
        self.settler.forget(path)
        if job.error is not None:
            error = job.error
            if error.retryable:
                attempts = self.ledger.archive_attempts(path)
                delay = self.config.ingest.retry_delay(attempts)
                self.ledger.finish_archive(path, ArchiveState.PENDING, error_kind=error.kind.value,
                                           error=str(error), next_attempt_at=time.time() + delay)
                self.log.warning("archive_retry_scheduled", path=path, error_kind=error.kind.value, reason=str(error),
                                 retry_in=delay)
                self._outcome("retry")
                return  # tick() picks it up again when it is due
            self._refused(job.path, error.kind.value, str(error))
            return
        result = job.result
        assert result is not None
        archive_id = self.ledger.archive_id(path)
        self._set_group(result)
        seen = []
        for published in result.published:
            if bad_name(str(published)) is not None:  # not UTF-8: the pipeline records it, escaped, from its hint
                self.hint(str(published), Hint.MOVED.value)
                continue
            try:
                st = os.stat(published)
            except OSError:
                continue
            name = parse_name(published)
            seen.append(Seen(str(published), name.kind.value, st.st_size, st.st_mtime_ns,
                             st.st_ino, archive_id=archive_id, visit=name.visit))
        self.ledger.upsert_seen(seen, now)
        self.ledger.link_archive([s.path for s in seen], archive_id)
        for member, reason in result.failed:
            self.ledger.record_member_failure(f"{path}#{member}", archive_id, ErrorKind.CHECKSUM_MISMATCH.value,
                                              reason, now)
            if self.observer is not None:
                self.observer.file_done("failed", None, ErrorKind.CHECKSUM_MISMATCH.value, None, None)
        for item in seen:
            self.hint(item.path, Hint.MOVED.value)
        instructions = operator_instructions(result.dest) if result.stars_bundle and result.script is None else None
        if result.script_error:
            instructions = f"zadmin/unpack.py failed: {result.script_error}. {instructions}"
        state = ArchiveState.OPERATOR if instructions else ArchiveState.PUBLISHED
        problem = {"error_kind": ErrorKind.UNPACK_SCRIPT.value, "error": result.script_error} if result.script_error \
            else {}
        self.ledger.finish_archive(path, state, dest=str(result.dest), members=result.members,
                                   published=len(result.published), failed=len(result.failed),
                                   stars_bundle=result.stars_bundle, instructions=instructions, **problem)
        self._outcome(state.value)
        self.log.info("archive_unpacked", path=path, dest=str(result.dest), members=result.members,
                      published=len(result.published), failed=len(result.failed), stars_bundle=result.stars_bundle)
        if instructions:
            self.log.warning("stars_bundle_needs_operator", path=path, instructions=instructions)
        if result.script is not None:
            self.log.info("stars_script_ran", path=path, fetched=len(result.script.new_files),
                          seconds=round(result.script.seconds, 1))
        if not result.failed:
            self._after(job.path, ArchiveState.OPERATOR if instructions else ArchiveState.DONE)

    def _set_group(self, result: UnpackResult) -> None:
        """Extracted files got their modes at extraction; give them and their folders the group too."""
        perms = self.config.service.permissions
        if perms.gid is None:
            return
        try:
            for published in result.published:
                os.chown(published, -1, perms.gid, follow_symlinks=False)
            for folder, _, _ in os.walk(result.dest):
                os.chown(folder, -1, perms.gid)
        except OSError as exc:
            self.log.warning("group_not_set", path=str(result.dest), error=str(exc))

    def _refused(self, archive: Path, kind: str, reason: str) -> None:
        path = str(archive)
        values: dict[str, Any] = {"error_kind": kind, "error": reason}
        state = ArchiveState.FAILED
        if self.config.quarantine.policy == "move" and archive.exists():
            try:
                moved = quarantine.quarantine(archive, roots=self.config.watch_roots,
                                              folder=self.config.quarantine.path, kind=kind, reason=reason,
                                              perms=self.config.service.permissions)
            except OSError as exc:
                self.log.error("quarantine_failed", path=path, error=str(exc))
            else:
                state = ArchiveState.QUARANTINED
                values["dest"] = str(moved)
        self.ledger.finish_archive(path, state, **values)
        self._outcome(state.value)
        self.log.error(f"archive_{state.value}", path=path, error_kind=kind, reason=reason)

    def _outcome(self, outcome: str) -> None:
        if self.observer is not None:
            self.observer.archive_done(outcome)

    def _after(self, archive: Path, state: ArchiveState) -> None:
        """Keep, delete or move a successfully unpacked archive (archives.after)."""
        policy = self.config.archives.after
        try:
            if policy == "delete":
                archive.unlink()
            elif policy == "move":
                target = quarantine.relocate(archive, roots=self.config.watch_roots,
                                             folder=self.config.archives.done_path,
                                             perms=self.config.service.permissions)
                self.log.info("archive_moved", path=str(archive), dest=str(target))
        except OSError as exc:
            self.log.error("archive_after_failed", path=str(archive), policy=policy, error=str(exc))
            return
        self.ledger.finish_archive(str(archive), state, after=policy)
