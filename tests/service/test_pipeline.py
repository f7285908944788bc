"""One pipeline step in-process, on a real repository and ledger: what it keeps in memory."""

from __future__ import annotations

import time

from conftest import make_ingester, write_raw
from pfswatchd import config as config_module
from pfswatchd import logconfig
from pfswatchd.service.examiner import Examiner
from pfswatchd.service.pipeline import Pipeline
from pfswatchd.state.ledger import Ledger


def test_files_that_vanish_before_examination_leave_nothing_behind(butler, pfs_repo, tmp_path):
    cfg = config_module.parse({"repository": {"root": str(pfs_repo)}, "watch": {"paths": ["in"],
                               "settle_seconds": 0.2}, "state": {"path": "state"}}, base=tmp_path, source=None)
    ledger = Ledger(cfg.state.url)
    ledger.create()
    pipeline = Pipeline(cfg, ledger, make_ingester(butler, pfs_repo), logconfig.get(), examiner=Examiner(0))
    kept = write_raw(tmp_path / "in", visit=800)
    gone = [write_raw(tmp_path / "in", visit=801 + i) for i in range(3)]
    pipeline.step([(str(p), "created") for p in (kept, *gone)])  # still being written, as far as it knows
    assert len(pipeline._timing) == 4
    for path in gone:
        path.unlink()  # deleted (or renamed away) before it settled
    deadline = time.monotonic() + 30
    while ledger.get(str(kept))["state"] != "ingested" and time.monotonic() < deadline:
        time.sleep(0.1)
        pipeline.step([])
    assert ledger.get(str(kept))["state"] == "ingested"
    assert len(pipeline._timing) == 0 and str(gone[0]) not in pipeline.settler
    ledger.close()


def test_only_a_database_that_is_away_is_never_given_up(butler, pfs_repo, tmp_path):
    """ingest.max_attempts ends a transient error that repeats for one file; database_unavailable is
    nobody's file's fault, so it waits however often it comes back."""
    from pfswatchd.errors import ErrorKind
    from pfswatchd.state.ledger import FileState

    cfg = config_module.parse({"repository": {"root": str(pfs_repo)}, "watch": {"paths": ["in"]},
                               "state": {"path": "state"}, "ingest": {"max_attempts": 3}}, base=tmp_path, source=None)
    ledger = Ledger(cfg.state.url)
    pipeline = Pipeline(cfg, ledger, make_ingester(butler, pfs_repo), logconfig.get(), examiner=Examiner(0))
    states = {(kind, attempts): pipeline._failure("/x.fits", kind, "why", None, attempts).state
              for kind in (ErrorKind.CONCURRENT_WRITE, ErrorKind.DATASTORE_BUSY, ErrorKind.DATABASE_UNAVAILABLE)
              for attempts in (2, 3, 50)}
    assert states == {
        (ErrorKind.CONCURRENT_WRITE, 2): FileState.PENDING, (ErrorKind.CONCURRENT_WRITE, 3): FileState.FAILED,
        (ErrorKind.CONCURRENT_WRITE, 50): FileState.FAILED, (ErrorKind.DATASTORE_BUSY, 2): FileState.PENDING,
        (ErrorKind.DATASTORE_BUSY, 3): FileState.FAILED, (ErrorKind.DATASTORE_BUSY, 50): FileState.FAILED,
        (ErrorKind.DATABASE_UNAVAILABLE, 2): FileState.PENDING, (ErrorKind.DATABASE_UNAVAILABLE, 3): FileState.PENDING,
        (ErrorKind.DATABASE_UNAVAILABLE, 50): FileState.PENDING}
    ledger.close()
