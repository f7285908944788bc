"""The service: startup -> main loop -> shutdown, with signals and systemd.

- ``startup``: open the ledger (release claims of dead instances), start the
  examiner's workers in the background, open or create the repository, start
  the watchers and wait until their watches are placed, start a rescan of
  every folder in the background (:mod:`pfswatchd.service.rescan`), READY=1:
  new files flow from then on (examined in the main thread until the
  examiner's workers are up).  Nothing on this path reads every ledger row;
  ``startup_phase`` events say how long each part took.
- ``main_loop``: wait for hints (or the next deadline), run one pipeline
  step on every event that arrived plus at most one slice of rescan hints,
  then housekeeping (``on_tick``): due retries, pfsConfigs waiting for raws,
  the periodic rescan, truncation timers, STATUS and WATCHDOG pings, and a
  watchdog thread that died is replaced (a rescan follows; one that keeps
  dying ends the service with status 1 for systemd to restart it).  No step
  waits for a rescan, so neither do the pings; the STATUS counts are read in
  a thread of their own (a count over millions of rows takes a tenth of a
  second).
- Signals only set flags.  SIGTERM/SIGINT: finish the batch in flight, exit 0
  (a second one exits at once with status 1).  SIGHUP: reload the
  configuration (what cannot change without a restart is logged and kept).
- A database that is locked or down pauses the loop with backoff; the hints
  are kept and nothing is lost.
"""

from __future__ import annotations

import gc
import os
import queue
import signal
import sqlite3
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from lsst.daf.butler import ButlerMetrics

from pfswatchd import config as config_module
from pfswatchd import faults, logconfig
from pfswatchd.butler import obspfs, repo
from pfswatchd.butler.ingest import Ingester, IngestSettings
from pfswatchd.config import Config
from pfswatchd.errors import ConfigError, PfsWatchError, first_line
from pfswatchd.files.corrections import HeaderCorrections
from pfswatchd.monitor.monitor import Monitor
from pfswatchd.service import memtrace
from pfswatchd.service.archivestage import ArchiveStage
from pfswatchd.service.examiner import Examiner
from pfswatchd.service.heaptrim import HeapTrim
from pfswatchd.service.instancelock import InstanceLock
from pfswatchd.service.pipeline import Pipeline
from pfswatchd.service.rescan import Rescanner
from pfswatchd.service.settle import Hint
from pfswatchd.service.systemd import Notifier
from pfswatchd.service.watch import Watcher
from pfswatchd.state import ledgerfile
from pfswatchd.state.ledger import Ledger

EX_OK = 0
EX_FAILED = 1
EX_CONFIG = 78  # as cli.EX_CONFIG: systemd's RestartPreventExitStatus, no restart loop on a bad configuration
WATCHES_TIMEOUT = 60.0  # READY waits at most this long for the watchers to place their watches
RECURSION_LIMIT = 10_000  # see startup
WATCHER_RESTARTS = 3  # a watcher that dies more often than this within WATCHER_WINDOW ends the service
WATCHER_WINDOW = 600.0
WATCHER_START_TIMEOUT = 10.0  # a restarted watcher's watches: the main loop waits this long at most
STOP_TIMEOUT = 30.0  # seconds from the end of the main loop to the end of the process
WAITING_PAGE = 500  # waiting files re-checked per tick
CATCH_UP_TURN = 0.02  # seconds between the turns that summarise a restart's backlog of visits
_WAKE = ("", "wake")


class Service:
    def __init__(self, config: Config, *, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.log = logconfig.get()
        self.notifier = Notifier()
        self.hints: queue.Queue[tuple[str, str]] = queue.Queue()
        self.should_exit = False
        self.reload_requested = False
        self.exit_code = EX_OK
        self.ledger: Ledger | None = None
        self._ledger_file: ledgerfile.LedgerFile | None = None  # SQLite: noticed when deleted or replaced
        self.watcher: Watcher | None = None
        self.pipeline: Pipeline | None = None
        self._butler: Any = None
        self.rescanner: Rescanner | None = None
        self._butler_metrics = ButlerMetrics()
        self.monitor: Monitor | None = None
        self._last: dict[str, float] = {}
        self._db_backoff = 0.0
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pfswatchd-status")
        self._status_job: Future[bool] | None = None
        self._waiting_after: int | None = None  # where the periodic re-check of waiting files goes on
        self._instance_lock: InstanceLock | None = None
        self._watcher_deaths: list[float] = []  # monotonic times the watcher was found dead
        self._memtrace: memtrace.MemTrace | None = None
        self._heap = HeapTrim()  # the heap a burst freed goes back to the system when it is over
        self._examiner: Examiner | None = None
        self._began = time.monotonic()  # startup() began (startup_phase events)

    # -- lifecycle -------------------------------------------------------------------------------

    def run(self) -> int:
        self._capture_signals()
        try:
            self.startup()
            self.main_loop()
        except BaseException as exc:  # service_stopped logs the status the process really exits with
            self.exit_code = _exit_code(exc)
            raise
        finally:
            self.shutdown()
        return self.exit_code

    def startup(self) -> None:
        cfg = self.config
        self._began = time.monotonic()
        self._phase("begin")  # after the imports and the configuration
        # watchdog places inotify watches with os.walk, which recurses once per folder level (Python
        # 3.11): a tree 1,100 levels deep killed its thread with RecursionError.  A path can be at most
        # PATH_MAX (4096) bytes, so at most ~2,048 levels: this limit covers every tree that can exist.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
        make_folders(cfg)
        self._instance_lock = InstanceLock(cfg.state.path)
        others = self._instance_lock.acquire()
        if others is not None:
            self.log.warning("another_instance_running", lock=str(self._instance_lock.path),
                             ledger=logconfig.redact(cfg.state.url), pids=[pid for pid in others if pid],
                             advice="both share the work correctly; stop one if that was not intended")
        self.ledger = Ledger(cfg.state.url, instance=cfg.state.instance, claim_timeout=cfg.state.claim_timeout)
        self.ledger.create()
        self._ledger_file = ledgerfile.hold(cfg.state.url)
        released = self.ledger.release_abandoned(starting=True)
        self._phase("ledger")
        # The examiner's workers start in the background, while the repository opens (their fork server
        # imports in a process of its own); READY does not wait for them (see Examiner).
        examiner = self._examiner = Examiner(cfg.ingest.examine_workers, on_done=self._wake, log=self.log,
                                             corrections=HeaderCorrections.standard(cfg.ingest.header_corrections))
        self._butler = self._open_repository()
        ingester = self._make_ingester()
        self._phase("repository")
        self.pipeline = Pipeline(cfg, self.ledger, ingester, self.log, examiner=examiner,
                                 archives=ArchiveStage(cfg, self.ledger, self.log, self._hint, self._wake))
        self.monitor = Monitor(cfg, self.ledger, self.log, butler_metrics=self._butler_metrics,
                               ping_registry=lambda: repo.ping(self._butler), hints_queued=self.hints.qsize)
        self.pipeline.observer = self.monitor
        self.pipeline.recover()  # what a kill cut short: quarantine moves the ledger had announced
        self._phase("recover")
        if self.pipeline.archives is not None:
            self.pipeline.archives.observer = self.monitor
        self.watcher = Watcher(cfg.watch_roots, self._hint, recursive=cfg.watch.recursive, mode=cfg.watch.mode,
                               poll_interval=cfg.watch.poll_interval)
        missing = self.watcher.start()
        if not self.watcher.wait_started(timeout=WATCHES_TIMEOUT):
            self.log.warning("watches_not_ready", seconds=WATCHES_TIMEOUT,
                             reason="the rescan finds files that arrive before the watches are placed")
        self._phase("watches")
        self.rescanner = Rescanner(cfg.watch_roots, cfg.state.url, recursive=cfg.watch.recursive, log=self.log,
                                   on_found=self._wake, max_depth=cfg.watch.max_depth,
                                   moves=cfg.ingest.transfer == "move")
        if self.watcher.warning:
            self.log.warning("watch_native_unavailable", reason=self.watcher.warning)
        self.log.info("service_started", instance=self.ledger.instance, repository=str(cfg.repository.root),
                      ledger=logconfig.redact(cfg.state.url), watch=[str(p) for p in cfg.watch_roots],
                      universe=str(ingester.shape), transfer=cfg.ingest.transfer, mode=cfg.watch.mode,
                      released_claims=released,
                      missing_folders=[str(p) for p in missing])
        self._rescan()  # in the background: READY does not wait for it
        self._phase("rescan_started")
        for path in self.ledger.due(limit=100_000):
            self._hint(path, Hint.RETRY.value)
        self._phase("due")
        self.monitor.start()
        self._phase("monitor")
        # The butler, astropy and SQLAlchemy leave long-lived objects (~180,000): out of the collector's
        # sight, a full collection no longer stalls a burst for a tenth of a second.  No collection first:
        # it found ~9,000 objects of start-up garbage (kept for good, a megabyte or so) and took 0.2-0.9 s
        # of the start on a loaded host.
        gc.freeze()
        self._phase("gc")
        self._memtrace = memtrace.from_environment()  # tests and benchmarks only: what grows, on SIGUSR2
        if self._memtrace is not None:
            self._memtrace.start()
        now = time.monotonic()
        self._last = {"rescan": now, "waiting": now, "due": now, "status": 0.0, "watchdog": 0.0,
                      "abandoned": now}
        self.notifier.ready(self._status_line())

    def _phase(self, name: str) -> None:
        """Log how long start-up has taken so far (``startup_phase``: where a slow start spends its time)."""
        self.log.info("startup_phase", phase=name, seconds=round(time.monotonic() - self._began, 3))

    def main_loop(self) -> None:
        assert self.pipeline is not None and self.ledger is not None
        while not self.should_exit:
            hints = self._collect(self._timeout())
            if self._ledger_lost():
                break
            if self.reload_requested:
                self._reload()
            try:
                report = self.pipeline.step(hints)
                self._db_backoff = 0.0
                if report.examined or report.hinted:
                    self.log.debug("step_done", hints=len(hints), hinted=report.hinted, examined=report.examined,
                                   **{f"{k}_s": round(v, 4) for k, v in report.timings.items()})
            except Exception as exc:
                # The loop's one catch-all: a database that is away, or a bug.  Either way the service
                # keeps its hints, waits with backoff and carries on; the ledger and the rescan make
                # sure nothing is forgotten.
                self._db_backoff = min(30.0, max(0.5, self._db_backoff * 2))
                if _database_error(exc):
                    self.log.warning("ledger_unavailable", error=str(exc).splitlines()[0],
                                     retry_in=self._db_backoff)
                else:
                    self.log.error("step_failed", error=f"{type(exc).__name__}: {exc}", retry_in=self._db_backoff,
                                   exc_info=True)
                for hint in hints:
                    self.hints.put(hint)
                self._sleep(self._db_backoff)
                continue
            if report.new_visits:
                for path in self.ledger.waiting(report.new_visits):
                    self._hint(path, Hint.RETRY.value)
            if report.permanent_failure and self.config.ingest.fail_fast:
                self.log.error("service_stopped_fail_fast", reason=report.permanent_failure)
                self.exit_code = EX_FAILED
                self.should_exit = True
            self.on_tick(busy=bool(report.hinted or report.examined or report.ingested) or not self.hints.empty())

    def _ledger_lost(self) -> bool:
        """A SQLite ledger deleted or replaced under the service: say so, save what it held, and stop
        (exit 1) rather than record into a file nobody will read again."""
        lost = self._ledger_file.lost() if self._ledger_file is not None else None
        if lost is None:
            return False
        assert self._ledger_file is not None
        try:
            saved: str | None = str(self._ledger_file.save_copy())
        except (OSError, sqlite3.Error) as exc:
            saved = f"not saved: {first_line(exc)}"
        self.log.error("ledger_lost", reason=lost, saved_to=saved, exit_code=EX_FAILED,
                       advice=f"the saved copy holds the history; to keep it, stop the service and move it to "
                              f"{self._ledger_file.path} before it starts again (else it starts a new ledger and "
                              "finds ingested files again as duplicates)")
        self.exit_code = EX_FAILED
        self.should_exit = True
        return True

    def on_tick(self, busy: bool = False) -> None:
        """The periodic work between steps; ``busy``: the last step had files to look at, or hints
        are queued (the monitor's look then waits a little, see pfswatchd/monitor/monitor.py)."""
        assert self.ledger is not None and self.watcher is not None
        now = time.monotonic()
        cfg = self.config
        if self._due(now, "due", 1.0):
            for path in self.ledger.due():
                self._hint(path, Hint.RETRY.value)
        # Every waiting file is re-checked every waiting_recheck (raws may reach the repository another
        # way: another instance, a one-shot command), a page per tick, so that a year of pfsConfigs
        # whose raws never came is never one read or one step.
        if self._waiting_after is not None or self._due(now, "waiting", cfg.ingest.waiting_recheck):
            page = self.ledger.waiting_page(self._waiting_after or 0, WAITING_PAGE)
            for _, path in page:
                self._hint(path, Hint.RETRY.value)
            self._waiting_after = page[-1][0] if len(page) == WAITING_PAGE else None
        if self._due(now, "rescan", cfg.watch.rescan_interval):
            self._rescan()
        self._check_watcher(now)
        if self._due(now, "abandoned", max(5.0, cfg.state.claim_timeout / 2)):
            released = self.ledger.release_abandoned()
            if released:
                self.log.warning("claims_released", count=released)
        if (
            self.notifier.watchdog_interval
            and self._due(now, "watchdog", self.notifier.watchdog_interval)
            and self.watcher.alive()
        ):
            self.notifier.watchdog()
        if self.monitor is not None:
            self.monitor.tick(busy)
        if self._due(now, "status", 5.0) and (self._status_job is None or self._status_job.done()):
            self._status_job = self._background.submit(self._send_status)
        logconfig.flush_summary()
        trimmed = self._heap.tick(busy)
        if trimmed is not None:
            self.log.debug("heap_trimmed", seconds=round(trimmed.seconds, 4), rss_before_mib=trimmed.rss_before_mib,
                           rss_after_mib=trimmed.rss_after_mib)
        if self._memtrace is not None:
            self._memtrace.tick()

    def shutdown(self) -> None:
        # Stopping never hangs: a worker stuck on a dead network filesystem, a database that does not
        # answer or an interpreter exit that waits on a thread ends the process after STOP_TIMEOUT.
        threading.Thread(target=self._exit_after, args=(STOP_TIMEOUT,), name="pfswatchd-stop-timeout",
                         daemon=True).start()
        faults.pause("service.stopping")  # a test hangs the shutdown here
        self.notifier.stopping()
        logconfig.flush_summary(force=True)
        if self.monitor is not None:
            self.monitor.close()
        if self.watcher is not None:
            self.watcher.stop()
        if self.rescanner is not None:
            self.rescanner.close()
        self._background.shutdown(wait=True)
        examiner = self.pipeline.examiner if self.pipeline is not None else self._examiner
        if examiner is not None:
            examiner.close()
        if self.pipeline is not None and self.pipeline.archives is not None:
            self.pipeline.archives.close()
        if self._butler is not None:
            self._butler.close()
        if self.ledger is not None:
            try:
                self.ledger.release_own()
            except Exception as exc:  # the database may be away; claims then expire on their own
                self.log.warning("claims_not_released", error=str(exc).splitlines()[0])
            self.ledger.close()
        if self._ledger_file is not None:
            self._ledger_file.close()
        self.log.info("service_stopped", exit_code=self.exit_code)
        if self._instance_lock is not None:
            self._instance_lock.release()
        self._restore_signals()

    def _exit_after(self, seconds: float) -> None:
        time.sleep(seconds)
        self.log.error("service_stop_timed_out", seconds=seconds, exit_code=EX_FAILED)
        os._exit(EX_FAILED)

    # -- pieces ----------------------------------------------------------------------------------

    def _open_repository(self) -> Any:
        cfg = self.config.repository
        if cfg.registry_db:
            repo.use_credentials(cfg.registry_db)  # a password in the URL reaches the butler, not its files
        if repo.is_repository(cfg.root):
            butler = repo.open_butler(cfg.root, metrics=self._butler_metrics)
        elif cfg.create:
            butler = repo.create(cfg.root, instruments=cfg.instruments, raw_run=self.config.ingest.raw_run or None,
                                 pfsconfig_run=self.config.ingest.pfsconfig_run or None,
                                 registry_db=cfg.registry_db or None, metrics=self._butler_metrics,
                                 recipe=obspfs.recipe())
            self.log.info("repository_created", repository=str(cfg.root))
        else:
            raise ConfigError(f"repository.root = {cfg.root}: no butler repository there and "
                              "repository.create is false")
        return butler

    def _make_ingester(self) -> Ingester:
        cfg = self.config.ingest
        settings = IngestSettings(transfer=cfg.transfer, raw_run=cfg.raw_run or None,
                                  pfsconfig_run=cfg.pfsconfig_run or None,
                                  perms=self.config.service.permissions,
                                  instruments=self.config.repository.instruments)
        return Ingester(self._butler, self.config.repository.root, settings)

    def _hint(self, path: str, hint: str) -> None:
        self.hints.put((path, hint))

    def _wake(self) -> None:
        self.hints.put(_WAKE)

    def _collect(self, timeout: float) -> list[tuple[str, str]]:
        """Wait up to ``timeout`` for the first hint, then take every event queued (group commit) and
        at most one slice of rescan hints after them (a pass never holds an event back for long)."""
        hints: list[tuple[str, str]] = []
        rescanner = self.rescanner
        try:
            first = self.hints.get(timeout=0 if rescanner is not None and rescanner.pending else timeout)
        except queue.Empty:
            first = _WAKE
        if first != _WAKE:
            hints.append(first)
        while True:
            try:
                item = self.hints.get_nowait()
            except queue.Empty:
                break
            if item != _WAKE:
                hints.append(item)
        if rescanner is not None:
            hints.extend(rescanner.take())
            if self.pipeline is not None:  # recorded in the ledger by the next step (a link: logged now)
                for folder, (kind, reason) in rescanner.take_unreadable().items():
                    self.pipeline.note_unreadable(Path(folder), kind, reason)
        return hints

    def _timeout(self) -> float:
        assert self.pipeline is not None
        now = time.time()
        archives = self.pipeline.archives
        deadlines = [d for d in (self.pipeline.settler.next_deadline(now),
                                 archives.next_deadline(now) if archives else None) if d is not None]
        deadline = min(deadlines) if deadlines else None
        timeout = 1.0 if deadline is None else min(1.0, deadline + 0.01)
        if self.notifier.watchdog_interval:
            timeout = min(timeout, self.notifier.watchdog_interval)
        if self.monitor is not None and self.monitor.behind:
            timeout = CATCH_UP_TURN  # a slice of the backlog at each turn, a file that arrives between them
        return max(0.01, timeout)

    def _rescan(self) -> None:
        """Watch reappeared folders again and start a rescan pass (in the background)."""
        assert self.watcher is not None and self.rescanner is not None
        missing = self.watcher.refresh()
        self.rescanner.roots = self.config.watch_roots
        self.rescanner.recursive = self.config.watch.recursive
        self.rescanner.max_depth = self.config.watch.max_depth
        self.rescanner.start_pass()
        if missing:
            self.log.warning("watch_folder_missing", folders=[str(p) for p in missing])

    def _check_watcher(self, now: float) -> None:
        """A watchdog thread that died leaves the service deaf: start a new watcher and rescan (what
        arrived meanwhile made no event).  One that keeps dying ends the service with status 1, for
        systemd to restart it, rather than run deaf."""
        assert self.watcher is not None
        reason = self.watcher.dead()
        if reason is None:
            return
        self._watcher_deaths = [t for t in self._watcher_deaths if now - t < WATCHER_WINDOW] + [now]
        if len(self._watcher_deaths) > WATCHER_RESTARTS:
            self.log.error("watcher_failed", reason=reason, deaths=len(self._watcher_deaths),
                           seconds=WATCHER_WINDOW, exit_code=EX_FAILED)
            self.exit_code = EX_FAILED
            self.should_exit = True
            return
        self.log.error("watcher_died", reason=reason, action="restarting the watcher and rescanning")
        self.watcher.stop()
        cfg = self.config
        self.watcher = Watcher(cfg.watch_roots, self._hint, recursive=cfg.watch.recursive, mode=cfg.watch.mode,
                               poll_interval=cfg.watch.poll_interval)
        self.watcher.start()
        self.watcher.wait_started(timeout=WATCHER_START_TIMEOUT)
        self._rescan()
        self.log.info("watcher_restarted")

    def _due(self, now: float, name: str, interval: float) -> bool:
        if now - self._last.get(name, 0.0) >= interval:
            self._last[name] = now
            return True
        return False

    def _send_status(self) -> None:
        """The STATUS line, counted afresh (in the status thread: see Monitor.count)."""
        if self.monitor is not None:
            self.monitor.count()
        self.notifier.status(self._status_line())

    def _status_line(self) -> str:
        if self.monitor is not None:
            return self.monitor.status_line()
        try:
            counts = self.ledger.counts() if self.ledger else {}
        except Exception:
            return "ledger unavailable"
        return ", ".join(f"{state} {count}" for state, count in sorted(counts.items())) or "no files yet"

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.should_exit and time.monotonic() < end:
            time.sleep(min(0.1, end - time.monotonic()))

    # -- reload ----------------------------------------------------------------------------------

    def _reload(self) -> None:
        self.reload_requested = False
        if self.config_path is None:
            return
        self.notifier.reloading()
        old = self.config
        watcher = None
        try:
            # Everything that can fail comes before anything changes: a reload is applied whole or not at
            # all, and a refused one leaves the configuration that was running.
            new = config_module.load(self.config_path)
            make_folders(replace(new, state=old.state))
            if (new.watch_roots, new.watch.mode, new.watch.recursive, new.watch.poll_interval) != (
                    old.watch_roots, old.watch.mode, old.watch.recursive, old.watch.poll_interval):
                watcher = Watcher(new.watch_roots, self._hint, recursive=new.watch.recursive,
                                  mode=new.watch.mode, poll_interval=new.watch.poll_interval)
                watcher.start()  # before the old one stops: a file landing meanwhile is hinted (maybe twice)
        except (ConfigError, OSError) as exc:
            if watcher is not None:
                watcher.stop()
            reason = str(exc) if isinstance(exc, ConfigError) else f"cannot watch the new folders: {exc}"
            self.log.error("reload_failed", reason=reason, kept="the configuration running before")
            self.notifier.ready(self._status_line())
            return
        kept = [name for name, a, b in (("repository.root", old.repository.root, new.repository.root),
                                        ("state.url", old.state.url, new.state.url),
                                        ("monitor", old.monitor, new.monitor)) if a != b]
        if kept:
            self.log.warning("reload_needs_restart", keys=kept)
            new = replace(new, repository=old.repository, state=old.state, monitor=old.monitor)
        logconfig.configure(new.log.format, new.log.level)
        self.config = new
        assert self.pipeline is not None and self.ledger is not None
        if (new.ingest, new.repository) != (old.ingest, old.repository):
            self.pipeline.ingester = self._make_ingester()
        self.pipeline.config = new
        self.pipeline.roots = new.watch_roots
        self.pipeline.settler.reconfigure(new.watch.settle_seconds, new.watch.truncated_after)
        if self.pipeline.archives is not None:
            self.pipeline.archives.config = new
            self.pipeline.archives.settler.reconfigure(new.watch.settle_seconds, new.watch.truncated_after)
        if watcher is not None:
            assert self.watcher is not None
            self.watcher.stop()
            self.watcher = watcher
            self._rescan()
        self.log.info("config_reloaded", source=str(self.config_path))
        self.notifier.ready(self._status_line())

    # -- signals ---------------------------------------------------------------------------------

    def _capture_signals(self) -> None:
        self._previous = {sig: signal.signal(sig, self._on_signal)
                          for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}

    def _restore_signals(self) -> None:
        for sig, handler in getattr(self, "_previous", {}).items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload_requested = True
        elif self.should_exit:
            raise SystemExit(EX_FAILED)
        else:
            self.should_exit = True
        self.hints.put(_WAKE)


def _database_error(exc: BaseException) -> bool:
    import sqlalchemy.exc

    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
                      | sqlalchemy.exc.DisconnectionError | sqlalchemy.exc.TimeoutError):
            return True
        chain = chain.__cause__ or chain.__context__
    return False


def make_folders(cfg: Config) -> None:
    """Create the state folder and the watched folders; one that cannot be made is a configuration error."""
    keys = {root: "watch.paths entry" for root in cfg.watch.paths}
    for key, folder in (("state.path", cfg.state.path), *((keys.get(r, "archives.extract_to"), r)
                                                         for r in cfg.watch_roots)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (NotADirectoryError, FileExistsError, PermissionError) as exc:
            problem = config_module.folder_problem(folder) or exc.strerror
            raise ConfigError(f"{key} {folder}: cannot create the folder: {problem}: expected a folder, or a "
                              "path where one can be created") from None


def _exit_code(exc: BaseException) -> int:
    """The status the process exits with when ``exc`` ends the service (cli.main maps the same way)."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else EX_FAILED
    if isinstance(exc, ConfigError):
        return EX_CONFIG
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return EX_FAILED


def run_service(config_path: str | None) -> int:
    """Entry point of ``pfswatchd run``."""
    path = Path(config_path) if config_path else None
    cfg = config_module.load(path) if path else config_module.default()
    logconfig.configure(cfg.log.format, cfg.log.level)
    service = Service(cfg, config_path=path)
    try:
        return service.run()
    except ConfigError as exc:
        service.log.error("service_failed", reason=str(exc), exit_code=EX_CONFIG)
        return EX_CONFIG
    except PfsWatchError as exc:
        service.log.error("service_failed", reason=str(exc), exit_code=EX_FAILED)
        return EX_FAILED

