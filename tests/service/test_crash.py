"""Crash consistency: SIGKILL the service at random moments, many times, and check what is left.

CI runs a short loop; the full one is

    PFSWATCHD_KILLS=100 PFSWATCHD_CRASH_FILES=2000 .venv/bin/python -m pytest tests/service/test_crash.py

Afterwards, through the butler and the ledger: every file ingested exactly once, no dataset whose file
is missing, no orphan file in the datastore, and with transfer=move every source file either in the
datastore or still at its source at every moment.
"""

from __future__ import annotations

import hashlib
import os
import random
import tarfile
import time
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from harness import Daemon, burst_files
from pfswatchd.butler.transfer import SCRATCH

KILLS = int(os.environ.get("PFSWATCHD_KILLS", "8"))
FILES = int(os.environ.get("PFSWATCHD_CRASH_FILES", "500"))
SEED = int(os.environ.get("PFSWATCHD_CRASH_SEED", str(int(time.time()))))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _registered(repo: Path) -> dict[str, Path]:
    """Registered raws: data-ID string -> file in the datastore.

    Opened writeable: a kill inside a registry transaction leaves SQLite's hot journal
    (gen3.sqlite3-journal), which a read-only connection cannot roll back ("attempt to write a readonly
    database", seed 1011); the restarted service, or any writer, rolls it back on opening, as here."""
    with Butler.from_config(str(repo), collections="PFS/raw/sps", writeable=True) as butler:
        refs = butler.query_datasets("raw", collections="PFS/raw/sps", find_first=False, limit=None,
                                     explain=False)
        return {f"{r.dataId['visit']}-{r.dataId['arm']}{r.dataId['spectrograph']}": Path(butler.getURI(r).ospath)
                for r in refs}


def _key(name: str) -> str:
    """Data ID string of a PF?A/PF?B file name."""
    visit, spectrograph, arm = int(name[4:10]), name[10], "brnm"[int(name[11]) - 1]
    return f"{visit}-{arm}{spectrograph}"


@pytest.mark.slow
@pytest.mark.parametrize("transfer", ["move", "copy"])
def test_random_kills_leave_everything_ingested_exactly_once(tmp_path, transfer):
    rng = random.Random(SEED)
    print(f"crash loop: seed {SEED}, {KILLS} kills, {FILES} files, transfer {transfer}")
    sources = burst_files(tmp_path / "src", tmp_path / "templates", FILES, first_visit=7000)
    expected = {_key(p.name): _digest(p) for p in sources}
    daemon = Daemon(tmp_path / "svc", ingest={"transfer": transfer, "batch_size": 100},
                    watch={"settle_seconds": 0.3})
    daemon.start()
    # Files keep arriving between kills, so that every kill finds work in flight: header reads,
    # placements, registry commits, ledger writes.
    chunks = [sources[i::KILLS] for i in range(KILLS)]
    kills = 0
    delivered: set[str] = set()
    while kills < KILLS:
        for path in chunks[kills]:
            os.rename(path, daemon.incoming / path.name)
            delivered.add(_key(path.name))
        time.sleep(rng.uniform(0.0, 0.8))
        daemon.kill()
        kills += 1
        registered = _registered(daemon.repo) if (daemon.repo / "gen3.sqlite3").exists() else {}
        waiting = {_key(p.name) for p in daemon.incoming.glob("PF*.fits")}
        if transfer == "move":
            # Never lost: each file is registered or still at its source (or both, mid-move).
            assert delivered <= set(registered) | waiting, delivered - set(registered) - waiting
        for key, stored in registered.items():
            assert stored.exists(), f"dataset {key} has no file after kill {kills}"
        daemon.start()
    daemon.wait_files("ingested", FILES, timeout=300)
    assert daemon.stop() == 0

    registered = _registered(daemon.repo)
    assert set(registered) == set(expected)  # every file, exactly once (one dataset per data ID)
    for key, stored in registered.items():
        assert _digest(stored) == expected[key], key  # no dataset without its file, right content
    datastore_files = {p for p in daemon.repo.rglob("*.fits")}
    assert datastore_files == set(registered.values())  # no orphan in the datastore
    scratch = daemon.repo / SCRATCH
    assert not scratch.exists() or not any(scratch.iterdir())  # no half-written copy left
    status = daemon.status()
    assert status["counts"]["ingested"] == FILES, status["counts"]
    assert status["counts"]["failed"] == 0 and status["counts"]["duplicate"] == 0
    paths = [f["path"] for f in status["files"]]
    assert len(paths) == len(set(paths)) == FILES
    if transfer == "move":
        assert list(daemon.incoming.glob("PF*.fits")) == []
    print(f"crash loop done after {kills} kills")


def test_orphan_left_between_placement_and_commit_is_reused(tmp_path):
    """A file placed in the datastore by a process killed before its commit does not block a retry."""
    sources = burst_files(tmp_path / "src", tmp_path / "templates", 3, first_visit=7500)
    daemon = Daemon(tmp_path / "svc", ingest={"transfer": "copy"})
    daemon.start()
    os.rename(sources[0], daemon.incoming / sources[0].name)
    daemon.wait_files("ingested", 1)
    daemon.kill()
    # The killed process had placed the next file (complete) and a half-written copy, but not registered them.
    [stored] = _registered(daemon.repo).values()
    placed = stored.with_name(stored.name.replace("_b1_", "_r1_"))
    placed.write_bytes(sources[1].read_bytes())
    scratch = daemon.repo / SCRATCH
    scratch.mkdir(exist_ok=True)
    (scratch / f"{os.uname().nodename}.pid999999.1.tmp").write_bytes(b"partial")
    os.rename(sources[1], daemon.incoming / sources[1].name)
    os.rename(sources[2], daemon.incoming / sources[2].name)
    daemon.start()
    daemon.wait_files("ingested", 3)
    registered = _registered(daemon.repo)
    assert len(registered) == 3 and placed in registered.values()
    assert set(daemon.repo.rglob("*.fits")) == set(registered.values())
    assert list(scratch.iterdir()) == []
    assert daemon.quick_status()["counts"]["failed"] == 0


def test_move_interrupted_after_commit_is_completed(tmp_path):
    """Registered but the source not yet unlinked (killed between the two): the restart finishes the move."""
    [source] = burst_files(tmp_path / "src", tmp_path / "templates", 1, first_visit=7600)
    first = Daemon(tmp_path / "svc", ingest={"transfer": "hardlink"})
    first.start()
    os.rename(source, first.incoming / source.name)
    first.wait_files("ingested", 1)
    first.kill()
    # Same state as a move killed after its commit: a registered hard link and the source still there.
    (first.base / "state" / "ledger.sqlite3").unlink()
    for extra in (first.base / "state").glob("ledger.sqlite3-*"):
        extra.unlink()
    second = Daemon(tmp_path / "svc", ingest={"transfer": "move"})
    second.start()
    status = second.wait_files("ingested", 1)
    assert not (second.incoming / source.name).exists()
    [stored] = _registered(second.repo).values()
    assert stored.exists() and status["counts"]["duplicate"] == 0
    second.stop()


def test_claims_of_a_killed_service_are_released_at_restart(tmp_path):
    from pfswatchd.state.ledger import FileState, Ledger, Seen

    daemon = Daemon(tmp_path / "svc")
    sources = burst_files(tmp_path / "src", tmp_path / "templates", 2, first_visit=7700)
    for path in sources:
        os.rename(path, daemon.incoming / path.name)
    ledger = Ledger(f"sqlite:///{daemon.base / 'state' / 'ledger.sqlite3'}", instance=f"{os.uname().nodename}:999999")
    ledger.create()
    seen = [Seen(str(daemon.incoming / p.name), "raw_ccd", 1, 1, 1) for p in sources]
    ledger.upsert_seen(seen)
    assert ledger.claim([s.path for s in seen]) == {s.path for s in seen}
    assert ledger.counts() == {FileState.INGESTING.value: 2}
    ledger.close()
    daemon.start()
    daemon.wait_files("ingested", 2)
    assert daemon.events("service_started")[0]["released_claims"] == 2


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_a_killed_service_leaves_no_process_behind(tmp_path):
    """Header workers (and their forkserver) end with the service even when it is SIGKILLed."""
    daemon = Daemon(tmp_path / "svc", ingest={"examine_workers": 2})
    daemon.start()
    for path in burst_files(tmp_path / "src", tmp_path / "templates", 12, first_visit=7800):
        os.rename(path, daemon.incoming / path.name)
    daemon.wait_files("ingested", 12)
    helpers = _descendants(daemon.process.pid)
    assert len(helpers) >= 3  # resource tracker, forkserver, workers
    daemon.kill()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in helpers):
        time.sleep(0.2)
    assert [pid for pid in helpers if Path(f"/proc/{pid}").exists()] == []


QUARANTINE_FILES = int(os.environ.get("PFSWATCHD_CRASH_BAD_FILES", "120"))


@pytest.mark.slow
def test_kills_during_quarantine_leave_every_bad_file_findable(tmp_path):
    """Bad files (not FITS) among good ones, the service killed once exactly between a quarantine move
    and its record (fault point ``quarantine.moved``) and then at random moments: afterwards every bad
    file is in quarantine exactly once, at the path its row names, with its reason beside it, none is
    left in the drop folder or ``pending``, and every good file is ingested (issue 12 item 9)."""
    rng = random.Random(SEED)
    good = burst_files(tmp_path / "src", tmp_path / "templates", 60, first_visit=7900)
    bad_folder = tmp_path / "bad"
    bad_folder.mkdir()
    bad: dict[str, bytes] = {}
    for i in range(QUARANTINE_FILES):
        name = f"PFSA{8000 + i // 4:06d}{i % 4 + 1}1.fits"
        bad[name] = rng.randbytes(2880)
        (bad_folder / name).write_bytes(bad[name])
    daemon = Daemon(tmp_path / "svc", ingest={"batch_size": 50}, watch={"settle_seconds": 0.3})
    marker = tmp_path / "held"
    daemon.start(env={"PFSWATCHD_FAULT": "quarantine.moved", "PFSWATCHD_FAULT_MARKER": str(marker),
                      "PFSWATCHD_FAULT_SECONDS": "60"})
    arrivals = [*((bad_folder / n) for n in bad), *good]
    rng.shuffle(arrivals)
    chunks = [arrivals[i::KILLS + 1] for i in range(KILLS + 1)]
    for path in chunks[0]:
        os.rename(path, daemon.incoming / path.name)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, daemon.log()[-3000:]
        time.sleep(0.005)
    daemon.kill()  # one file moved, its row not yet final
    for chunk in chunks[1:]:
        daemon.start()
        for path in chunk:
            os.rename(path, daemon.incoming / path.name)
        time.sleep(rng.uniform(0.0, 0.8))
        daemon.kill()
    daemon.start()
    status = daemon.wait_until(lambda s: s["counts"].get("quarantined", 0) == len(bad)
                               and s["counts"].get("ingested", 0) == len(good), 300,
                               what="every bad file quarantined, every good one ingested")
    assert daemon.stop() == 0
    assert status["counts"].get("pending", 0) == status["counts"].get("failed", 0) == 0, status["counts"]
    rows = {Path(f["path"]).name: f for f in status["files"] if f["state"] == "quarantined"}
    assert set(rows) == set(bad)
    for name, data in bad.items():
        moved = Path(rows[name]["quarantine_path"])
        assert moved.read_bytes() == data, name
        assert "not_fits" in moved.with_name(moved.name + ".reason").read_text()
    in_quarantine = [p for p in daemon.quarantine.rglob("*.fits")]
    assert len(in_quarantine) == len(bad)  # exactly once each
    assert list(daemon.incoming.glob("PF*.fits")) == [] or all(
        p.name not in bad for p in daemon.incoming.glob("PF*.fits"))


ARCHIVE_KILLS = int(os.environ.get("PFSWATCHD_ARCHIVE_KILLS", "3"))
ARCHIVE_FILES = 12  # raws per archive (one visit)


def _archive_of(path: Path, raws: list[Path]) -> Path:
    """A summit-like tar of fakedata raws (every other one gzip'd, as both kinds arrive)."""
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w") as tar:
        for raw in raws:
            tar.add(raw, arcname=f"raw/2025-05-01/sps/{raw.name}")
    return path


@pytest.mark.slow
def test_kills_during_extraction_leave_every_member_ingested_once_and_no_staging(tmp_path):
    """SIGKILL while archives are extracted: the first kill lands mid-extraction on purpose (fault point
    unpack.member), the others at random moments while archives keep arriving.  After the restarts every
    member is ingested exactly once, staging is empty and every archive row is final (done)."""
    rng = random.Random(SEED)
    count = ARCHIVE_KILLS + 1
    print(f"archive crash loop: seed {SEED}, {ARCHIVE_KILLS} kills, {count} archives")
    raws = burst_files(tmp_path / "src", tmp_path / "templates", count * ARCHIVE_FILES, first_visit=8000)
    expected = {_key(p.name): _digest(p) for p in raws}
    archives = [_archive_of(tmp_path / f"night{i}.tar{'.gz' if i % 2 else ''}",
                            raws[i * ARCHIVE_FILES : (i + 1) * ARCHIVE_FILES]) for i in range(count)]
    daemon = Daemon(tmp_path / "svc", archives={"extract_to": "extracted"}, watch={"settle_seconds": 0.3})
    marker = tmp_path / "paused"
    daemon.start(env={"PFSWATCHD_FAULT": "unpack.member", "PFSWATCHD_FAULT_MARKER": str(marker)})
    os.rename(archives[0], daemon.incoming / archives[0].name)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, "the extraction never reached unpack.member"
        time.sleep(0.05)
    daemon.kill()  # deterministic: one member written into staging, the others not
    staging = daemon.base / "extracted" / ".pfswatchd-staging"
    assert len(list(staging.iterdir())) == 1
    for archive in archives[1:]:
        daemon.start()
        os.rename(archive, daemon.incoming / archive.name)
        time.sleep(rng.uniform(0.3, 1.5))  # settle 0.3 s, then extraction: the kill lands around it
        daemon.kill()
    daemon.start()
    status = daemon.wait_until(lambda s: s["counts"].get("ingested", 0) >= len(raws) and len(s["archives"]) == count
                               and all(a["state"] == "done" for a in s["archives"]), 300)
    assert daemon.stop() == 0
    registered = _registered(daemon.repo)
    assert set(registered) == set(expected)  # every member, exactly once
    for key, stored in registered.items():
        assert _digest(stored) == expected[key], key
    assert {k: v for k, v in status["counts"].items() if v} == {"ingested": len(raws)}
    paths = [f["path"] for f in status["files"]]
    assert len(paths) == len(set(paths)) == len(raws)
    assert list(staging.iterdir()) == []
    assert all(a["published"] == ARCHIVE_FILES for a in status["archives"])
    print(f"archive crash loop done: {len(daemon.events('staging_removed'))} staging folders removed")
