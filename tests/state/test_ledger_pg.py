"""pfswatchd's ledger on a real PostgreSQL server (tests/pgserver.py).

The lifecycle runs on SQLite and PostgreSQL alike; the rest is what only a
server shows: claims racing between processes, claims of dead instances,
a server restart under a live engine, and passwords kept out of errors.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import subprocess
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from pfswatchd.config import redact_url
from pfswatchd.state.ledger import FileState, Ledger, Result, Seen

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    return request.getfixturevalue("pg_database")


@pytest.fixture()
def open_ledgers():
    """Ledger factory whose engines are disposed after the test (the database is dropped then)."""
    made: list[Ledger] = []

    def make(url: str, instance: str, **kwargs) -> Ledger:
        ledger = Ledger(url, instance=instance, **kwargs)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.close()


def seen(*names: str, size: int = 100, kind: str = "raw_ccd") -> list[Seen]:
    return [Seen(f"/data/incoming/{name}", kind, size, 1_700_000_000_000_000_000, 1000 + i)
            for i, name in enumerate(names)]


def path(name: str) -> str:
    return f"/data/incoming/{name}"


# -- the same lifecycle on both databases ------------------------------------------------------------


def test_lifecycle(ledger_url, open_ledgers):
    ledger = open_ledgers(ledger_url, "alpha", claim_timeout=60.0)
    other = open_ledgers(ledger_url, "beta", claim_timeout=60.0)
    ledger.create()
    other.create()  # a second instance on the same ledger: idempotent
    a, b, c = path("a.fits"), path("b.fits"), path("c.fits")

    assert sorted(ledger.upsert_seen(seen("a.fits", "b.fits", "c.fits"), now=1000.0)) == [a, b, c]
    assert sorted(ledger.upsert_seen(seen("a.fits", "b.fits", "c.fits"), now=1001.0)) == [a, b, c]  # pending
    assert sorted(ledger.due(now=1000.0)) == [a, b, c]
    assert ledger.due(now=999.0) == []
    assert ledger.counts() == {"pending": 3}

    assert ledger.claim([a, b, c], now=1002.0) == {a, b, c}
    assert other.claim([a, b, c], now=1003.0) == set()
    assert ledger.due(now=1003.0) == []
    row = ledger.get(a)
    assert (row["state"], row["claimed_by"], row["claim_expires"], row["attempts"]) == ("ingesting", "alpha",
                                                                                        1062.0, 1)

    data_id = {"instrument": "PFS", "visit": 7, "arm": "b", "spectrograph": 1}
    ledger.record([
        Result(a, FileState.INGESTED, kind="raw_ccd", instrument="PFS", visit=7, data_id=data_id,
               dataset_id="5b6c9a1e-0000-4000-8000-000000000001", run="PFS/raw/all", complete_at=1001.5),
        Result(b, FileState.WAITING, visit=8, error_kind="design_mismatch", error="no pfsConfig yet"),
        Result(c, FileState.PENDING, error_kind="database_unavailable", error="locked", retry_at=2000.0),
    ], now=1004.0)
    assert ledger.counts() == {"ingested": 1, "waiting": 1, "pending": 1}
    row = ledger.get(a)
    assert json.loads(row["data_id"]) == data_id
    assert (row["state"], row["visit"], row["run"], row["ingested_at"], row["complete_at"], row["claimed_by"],
            row["claim_expires"]) == ("ingested", 7, "PFS/raw/all", 1004.0, 1001.5, None, None)
    assert ledger.owners(["5b6c9a1e-0000-4000-8000-000000000001", "other"]) == {
        "5b6c9a1e-0000-4000-8000-000000000001"}
    assert ledger.waiting() == [b] and ledger.waiting([8]) == [b] and ledger.waiting([7]) == []
    assert ledger.due(now=1999.0) == [] and ledger.due(now=2000.0) == [c]

    # The waiting file is claimable again (its pfsConfig arrived); the transient one after its retry time.
    assert other.claim([b, c], now=2000.0) == {b, c}
    other.record([Result(b, FileState.FAILED, error_kind="bad_header", error="no DATE-OBS"),
                  Result(c, FileState.QUARANTINED, error_kind="not_fits", error="zeros",
                         quarantine_path="/data/quarantine/c.fits")], now=2001.0)
    assert ledger.get(c)["attempts"] == 2

    # Same identity after a final state: left alone.  Changed size: pending again.
    assert ledger.upsert_seen(seen("a.fits"), now=3000.0) == []
    assert ledger.upsert_seen(seen("a.fits", size=200), now=3001.0) == [a]
    row = ledger.get(a)
    assert (row["state"], row["size"], row["ingested_at"], row["attempts"]) == ("pending", 200, None, 0)

    retried = ledger.retry(kinds=["bad_header"])
    assert [r["path"] for r in retried] == [b] and retried[0]["state"] == "failed"
    assert [r["path"] for r in ledger.retry()] == [c]
    assert ledger.get(c)["quarantine_path"] is None
    ledger.mark(a, FileState.IGNORED, error="not wanted")
    assert ledger.counts() == {"ignored": 1, "pending": 2}
    assert [r["path"] for r in ledger.rows(["pending"])] == [b, c]
    assert [r["path"] for r in ledger.rows()] == [a, b, c]


# -- several instances at once ----------------------------------------------------------------------


N_INSTANCES = 3
N_PATHS = 2000


def _instance_worker(action: str, url: str, instance: str, seed: int, start, out) -> None:
    """One pfswatchd instance in a spawned process: ``create`` the ledger, or ``claim`` all paths in a
    random order and random chunks (of at most 500: one statement each); report what was won."""
    ledger = Ledger(url, instance=instance, claim_timeout=3600.0)
    try:
        rng = random.Random(seed)
        order = [path(f"f{i:05d}.fits") for i in range(N_PATHS)]
        rng.shuffle(order)
        won: set[str] = set()
        start.wait(60)
        if action == "create":
            ledger.create()
        position = 0
        while action == "claim" and position < len(order):
            size = rng.randint(1, 120)
            won |= ledger.claim(order[position : position + size])
            position += size
        out.put((instance, sorted(won), None))
    except BaseException as exc:
        out.put((instance, [], f"{type(exc).__name__}: {str(exc)[:300]}"))
    finally:
        ledger.close()


def _run_instances(action: str, url: str) -> dict[str, list[str]]:
    """Run N_INSTANCES workers at the same moment; return what each won, failing on any error."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(N_INSTANCES), context.Queue()
    workers = [context.Process(target=_instance_worker,
                               args=(action, url, f"instance-{n}", random.randrange(2**32), start, out))
               for n in range(N_INSTANCES)]
    for worker in workers:
        worker.start()
    try:
        reports = [out.get(timeout=120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    errors = {instance: error for instance, _, error in reports if error}
    assert not errors, errors
    return {instance: won for instance, won, _ in reports}


def test_waiting_files_by_visit_and_page_by_page(ledger_url, open_ledgers):
    """waiting(visits) asks for any number of visits (in chunks); waiting_page walks every waiting file
    a page at a time, each exactly once, in id order, and skips files in other states."""
    ledger = open_ledgers(ledger_url, "alpha")
    ledger.create()
    names = [f"c{i:04d}.fits" for i in range(1203)]
    ledger.upsert_seen(seen(*names, kind="pfsconfig"), now=1000.0)
    paths = [path(name) for name in names]
    assert ledger.claim(paths, now=1001.0) == set(paths)
    ledger.record([Result(p, FileState.INGESTED if i % 3 == 2 else FileState.WAITING, visit=i)
                   for i, p in enumerate(paths)], now=1002.0)
    waiting = [p for i, p in enumerate(paths) if i % 3 != 2]
    assert ledger.waiting() == waiting
    assert ledger.waiting(range(0, 1203, 2)) == [p for i, p in enumerate(paths) if i % 3 != 2 and i % 2 == 0]
    assert ledger.waiting([2, 5, 99_999]) == []
    pages, after = [], 0
    while page := ledger.waiting_page(after, limit=100):
        assert len(page) <= 100 and [i for i, _ in page] == sorted(i for i, _ in page)
        pages.append(page)
        after = page[-1][0]
    assert [p for page in pages for _, p in page] == waiting and len(pages) == 9  # 802 waiting files


def test_claims_are_exclusive_between_processes(pg_database, open_ledgers):
    ledger = open_ledgers(pg_database, "setup")
    ledger.create()
    names = [f"f{i:05d}.fits" for i in range(N_PATHS)]
    assert len(ledger.upsert_seen(seen(*names))) == N_PATHS

    winners: dict[str, list[str]] = {}
    for instance, won in _run_instances("claim", pg_database).items():
        assert won, f"{instance} won nothing: the race did not happen"
        for p in won:
            winners.setdefault(p, []).append(instance)
    assert sorted(winners) == sorted(path(n) for n in names)
    assert {p: w for p, w in winners.items() if len(w) != 1} == {}
    rows = ledger.rows()
    assert {r["path"]: r["claimed_by"] for r in rows} == {p: w[0] for p, w in winners.items()}
    assert {r["attempts"] for r in rows} == {1} and {r["state"] for r in rows} == {"ingesting"}


def _wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


class Blocker:
    """A third connection that holds row locks, and sees who waits for locks."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        self.held: list[sa.Connection] = []

    def lock(self, p: str) -> None:
        conn = self.engine.connect()
        self.held.append(conn)
        conn.execute(sa.text("SELECT 1 FROM files WHERE path = :p FOR UPDATE"), {"p": p})

    def release(self) -> None:
        while self.held:
            self.held.pop().close()  # rolls back

    def waiters(self) -> int:
        with self.engine.connect() as conn:
            waiting = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity "
                                           "WHERE wait_event_type = 'Lock' AND datname = current_database()"))
            return int(waiting.scalar())


@pytest.fixture()
def blocker(pg_database):
    blocker = Blocker(pg_database)
    yield blocker
    blocker.release()
    blocker.engine.dispose()


def test_large_claims_do_not_deadlock(pg_database, open_ledgers, blocker):
    setup = open_ledgers(pg_database, "setup")
    setup.create()
    first, second, third = ([f"{c}{i:04d}.fits" for i in range(500)] for c in "abc")
    setup.upsert_seen(seen(*first, *second, *third))
    first, second, third = ([path(n) for n in names] for names in (first, second, third))
    x, y, z = first[0], second[0], third[0]
    a, b = open_ledgers(pg_database, "instance-a"), open_ledgers(pg_database, "instance-b")

    blocker.lock(z)
    with ThreadPoolExecutor(2) as pool:
        b_claims = pool.submit(b.claim, second + third + [x])  # chunks: second | third (stops at z) | x
        _wait_until(lambda: blocker.waiters() == 1 or b_claims.done(), "b waits for z")
        a_claims = pool.submit(a.claim, first + [y])  # chunks: first | y (held by b, if b still holds it)
        _wait_until(lambda: blocker.waiters() == 2 or a_claims.done(), "a waits for y")
        blocker.release()  # b goes on to x, which a may hold: a lock cycle
        won_a, won_b = a_claims.result(60), b_claims.result(60)
    assert won_a.isdisjoint(won_b) and won_a | won_b == set(first + second + third)


def test_two_instances_discover_the_same_new_file(pg_database, open_ledgers, blocker):
    setup = open_ledgers(pg_database, "setup")
    setup.create()
    setup.upsert_seen([Seen(path("q.fits"), "raw_ccd", 1, 1, 1)])
    batch = [Seen(path(f"n{i:03d}.fits"), "raw_ccd", 1, 1, 1) for i in range(500)]
    a, b = open_ledgers(pg_database, "instance-a"), open_ledgers(pg_database, "instance-b")

    blocker.lock(path("q.fits"))
    with ThreadPoolExecutor(2) as pool:
        # a inserts 500 new rows (first chunk), then waits to update q, which changed (second chunk)
        a_upserts = pool.submit(a.upsert_seen, [*batch, Seen(path("q.fits"), "raw_ccd", 2, 2, 2)])
        _wait_until(lambda: blocker.waiters() == 1 or a_upserts.done(), "a waits for q")
        b_upserts = pool.submit(b.upsert_seen, batch[:1])  # b finds n000.fits too
        _wait_until(lambda: blocker.waiters() == 2 or b_upserts.done(), "b waits for a")
        blocker.release()
        active_a, active_b = a_upserts.result(60), b_upserts.result(60)
    assert len(active_a) == 501 and active_b == [path("n000.fits")]
    assert setup.counts() == {"pending": 501} and setup.get(path("q.fits"))["size"] == 2


def test_instances_create_a_new_ledger_at_the_same_moment(postgres):
    for round_ in range(3):
        name = f"create_race_{round_}_{random.randrange(10**9)}"
        url = postgres.create_database(name)
        ledger = Ledger(url, instance="check")
        try:
            _run_instances("create", url)
            assert ledger.counts() == {}
            with ledger.engine.connect() as conn:
                meta = conn.execute(sa.text("SELECT key, value FROM pfswatchd_meta")).all()
            assert meta == [("schema_version", "1")]
        finally:
            ledger.close()
            postgres.drop_database(name)


# -- dead instances ---------------------------------------------------------------------------------


def test_expired_claim_is_taken_over_and_released(pg_database, open_ledgers):
    dead = open_ledgers(pg_database, "dead-instance", claim_timeout=0.5)
    dead.create()
    p0, p1, p2 = path("0.fits"), path("1.fits"), path("2.fits")
    dead.upsert_seen(seen("0.fits", "1.fits", "2.fits"), now=1000.0)
    assert dead.claim([p0, p1, p2], now=1000.0) == {p0, p1, p2}
    dead.close()  # it dies holding three claims

    alive = open_ledgers(pg_database, "alive-instance", claim_timeout=60.0)
    assert alive.claim([p0, p1, p2], now=1000.4) == set()  # not expired yet
    assert alive.release_abandoned(now=1000.4) == 0
    assert alive.due(now=1000.4) == []
    assert alive.claim([p0], now=1001.0) == {p0}  # expired: taken over
    row = alive.get(p0)
    assert (row["claimed_by"], row["claim_expires"], row["attempts"]) == ("alive-instance", 1061.0, 2)

    assert alive.release_abandoned(now=1001.0) == 2  # p1 and p2; p0 is alive's own, live claim
    assert {r["path"]: (r["state"], r["claimed_by"]) for r in alive.rows()} == {
        p0: ("ingesting", "alive-instance"), p1: ("pending", None), p2: ("pending", None)}
    assert sorted(alive.due(now=1001.0)) == [p1, p2]
    assert alive.release_abandoned(now=1002.0, starting=True) == 1  # a restarted "alive-instance" frees p0
    assert alive.counts() == {"pending": 3}


def test_expired_claim_in_real_time(pg_database, open_ledgers):
    dead = open_ledgers(pg_database, "dead-instance", claim_timeout=0.2)
    dead.create()
    dead.upsert_seen(seen("0.fits"))
    assert dead.claim([path("0.fits")]) == {path("0.fits")}
    alive = open_ledgers(pg_database, "alive-instance")
    assert alive.claim([path("0.fits")]) == set()
    time.sleep(0.4)
    assert alive.claim([path("0.fits")]) == {path("0.fits")}


def test_claims_of_a_dead_local_process_are_released_at_once(pg_database, open_ledgers):
    host = os.uname().nodename
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = open_ledgers(pg_database, f"{host}:{gone.pid}", claim_timeout=3600.0)
    dead.create()
    dead.upsert_seen(seen("0.fits"))
    assert dead.claim([path("0.fits")]) == {path("0.fits")}
    alive = open_ledgers(pg_database, f"{host}:{os.getpid()}", claim_timeout=3600.0)
    assert alive.release_abandoned() == 1
    assert alive.claim([path("0.fits")]) == {path("0.fits")}
    assert alive.release_abandoned() == 0  # its own live claim stays


# -- server restart ---------------------------------------------------------------------------------


def test_engine_survives_a_server_restart(postgres, pg_database, open_ledgers):
    ledger = open_ledgers(pg_database, "alpha")
    ledger.create()
    ledger.upsert_seen(seen("0.fits", "1.fits"))
    held = [ledger.engine.connect() for _ in range(4)]  # the pool keeps 4 connections to the old server
    for conn in held:
        conn.close()
    assert ledger.engine.pool.checkedin() == 4

    postgres.restart()
    # Documented behaviour: pool_pre_ping replaces the dead connections; at most the first call after a
    # restart may fail with an OperationalError (the daemon retries it), every later call works.
    failures = []
    for _ in range(2):
        try:
            counts = ledger.counts()
            break
        except sa.exc.OperationalError as exc:
            failures.append(exc)
    else:
        pytest.fail(f"the ledger did not recover after a restart: {failures}")
    assert counts == {"pending": 2} and failures == [], failures  # pool_pre_ping: no error at all
    for _ in range(6):  # the other pooled connections are stale too: none of them may surface
        assert sorted(ledger.due()) == [path("0.fits"), path("1.fits")]
    assert ledger.claim([path("0.fits")]) == {path("0.fits")}
    ledger.record([Result(path("0.fits"), FileState.INGESTED)])
    assert ledger.counts() == {"ingested": 1, "pending": 1}


def test_server_down_raises_operational_error_then_recovers(postgres, pg_database, open_ledgers):
    ledger = open_ledgers(pg_database, "alpha")
    ledger.create()
    postgres.stop()
    try:
        with pytest.raises(sa.exc.OperationalError) as raised:
            ledger.due()
        assert postgres.password not in _everything(raised.value)
    finally:
        postgres.start()
    assert ledger.due() == []


# -- passwords --------------------------------------------------------------------------------------


def _everything(exc: BaseException) -> str:
    """str, repr and the whole formatted traceback (with causes) of an exception."""
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


def test_redact_url_hides_the_password(postgres, pg_database):
    redacted = redact_url(pg_database)
    assert postgres.password not in redacted
    assert redacted == f"postgresql+psycopg2://{postgres.user}:***@127.0.0.1:{postgres.port}/" \
                       f"{pg_database.rsplit('/', 1)[1]}"
    for password in ["p@ss:w/rd#1", "with space", "x" * 200, "@@::"]:
        url = f"postgresql+psycopg2://pfs:{quote(password, safe='')}@db.example:5432/ledger"
        assert redact_url(url) == "postgresql+psycopg2://pfs:***@db.example:5432/ledger"


def test_ledger_errors_never_show_the_password(postgres, pg_database, open_ledgers):
    password = postgres.password
    base = pg_database.rsplit("/", 1)[0]  # .../127.0.0.1:PORT
    cases = {
        "wrong password": pg_database.replace(password, password[::-1]),
        "no such database": f"{base}/no_such_database",
        "nothing listening": pg_database.replace(f":{postgres.port}/", ":1/"),
        "bad port": pg_database.replace(f":{postgres.port}/", ":notaport/"),
        "bad option": pg_database + "?sslmode=bogus",
        "unknown host": pg_database.replace("127.0.0.1", "no-such-host.invalid"),
    }
    for case, url in cases.items():
        bad_password = url.split(":")[2].split("@")[0]
        with pytest.raises(Exception) as raised:  # noqa: B017 - whatever it is, it must not leak
            open_ledgers(url, "alpha").create()
        text = _everything(raised.value)
        assert password not in text and bad_password not in text, (case, text)
        assert bad_password not in redact_url(url), case
    ledger = open_ledgers(pg_database, "alpha")
    assert password not in repr(ledger.engine) and password not in str(ledger.engine.url)
