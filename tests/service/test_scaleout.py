"""Several pfswatchd instances on one PostgreSQL-backed repository and ledger (real server on loopback)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from harness import BIN, Daemon, burst_files, drop
from pfswatchd.butler import repo

pytestmark = pytest.mark.postgres

FILES = int(os.environ.get("PFSWATCHD_SCALEOUT_FILES", "2000"))


def _instances(tmp_path: Path, registry: str, ledger: str, count: int, **ingest) -> list[Daemon]:
    shared = tmp_path / "shared"
    (shared / "incoming").mkdir(parents=True, exist_ok=True)
    return [
        Daemon(tmp_path / f"host{i}",
               repository={"root": str(shared / "repo"), "registry_db": registry},
               watch={"paths": [str(shared / "incoming")], "settle_seconds": 0.5},
               state={"url": ledger, "instance": f"host{i}", "claim_timeout": 5.0},
               ingest={"transfer": "link", **ingest},
               archives={"extract_to": str(shared / "extracted")})
        for i in range(count)
    ]


def test_three_instances_one_killed_every_file_exactly_once(tmp_path, postgres):
    registry = postgres.create_database("butler")
    ledger = postgres.create_database("ledger")
    daemons = _instances(tmp_path, registry, ledger, 3)
    repo.create(daemons[0].repo, registry_db=registry).close()
    for daemon in daemons:
        daemon.start()
    files = burst_files(tmp_path / "src", tmp_path / "templates", FILES, first_visit=9000)
    for path in files:
        os.rename(path, daemons[0].incoming / path.name)
    daemons[0].wait_until(lambda s: s["counts"]["ingested"] >= FILES // 4, 180, what="a quarter ingested")
    daemons[1].kill()  # one instance dies mid-burst, claims and all
    status = daemons[0].wait_files("ingested", FILES, timeout=300)
    assert status["counts"]["failed"] == 0 and status["counts"]["duplicate"] == 0
    assert len(status["files"]) == FILES and len({f["dataset_id"] for f in status["files"]}) == FILES

    repo.use_credentials(registry)
    with Butler.from_config(str(daemons[0].repo), collections="PFS/raw/sps") as butler:
        refs = butler.query_datasets("raw", collections="PFS/raw/sps", find_first=False, limit=None,
                                     explain=False)
        visits = butler.query_dimension_records("visit", instrument="PFS", limit=None, explain=False)
    assert len(refs) == FILES and len({r.id for r in refs}) == FILES
    assert len(visits) == len({f["data_id"]["visit"] for f in status["files"]})
    # The work was shared, and the survivors finished what the killed one had claimed.  (Which instances
    # take part is a race: under load one instance may find every file already reserved by the others.)
    done = [sum(e["files"] for e in daemon.events("batch_ingested")) for daemon in daemons]
    assert sum(1 for count in done if count) >= 2 and done[1] < FILES, done
    assert done[0] + done[2] > 0, done
    # No password in any log or in status.
    for daemon in daemons:
        assert postgres.password not in daemon.log()
    result = subprocess.run([str(BIN / "pfswatchd"), "status", "--json", "--config", str(daemons[0].config_path)],
                            capture_output=True, text=True)
    assert postgres.password not in result.stdout + result.stderr
    assert postgres.password not in (daemons[0].repo / "butler.yaml").read_text()
    for daemon in (daemons[0], daemons[2]):
        assert daemon.stop() == 0


def test_database_restart_is_survived(tmp_path, postgres):
    registry = postgres.create_database("butler2")
    ledger = postgres.create_database("ledger2")
    [daemon] = _instances(tmp_path, registry, ledger, 1, retry_initial=0.5, retry_max=2.0)
    daemon.start()
    first = burst_files(tmp_path / "src", tmp_path / "templates", 24, first_visit=9500)
    for path in first[:12]:
        drop(path, daemon.incoming)
    daemon.wait_files("ingested", 12, timeout=60)
    postgres.stop()
    for path in first[12:]:
        drop(path, daemon.incoming)
    time.sleep(3)  # the service keeps running while the database is away
    assert daemon.alive()
    postgres.start()
    daemon.wait_files("ingested", 24, timeout=120)
    events = [e["event"] for e in daemon.events()]
    assert "ledger_unavailable" in events or "file_retry_scheduled" in events
    assert daemon.stop() == 0


def test_create_on_postgresql_keeps_the_password_out_of_the_repository(tmp_path, postgres):
    registry = postgres.create_database("butler3")
    root = tmp_path / "repo"
    result = subprocess.run([str(BIN / "pfswatchd"), "create", str(root), "--registry-db", registry],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = (root / "butler.yaml").read_text()
    assert postgres.password not in text and "postgresql+psycopg2://" in text
    # Other tools read the password from the butler's usual place.
    auth = tmp_path / "db-auth.yaml"
    from sqlalchemy.engine import make_url

    parsed = make_url(registry)
    auth.write_text(json.dumps([{"url": f"postgresql://{parsed.username}@{parsed.host}:{parsed.port}/"
                                        f"{parsed.database}", "password": parsed.password}]))
    auth.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSST_DB_AUTH")}
    listing = subprocess.run([str(BIN / "butler"), "query-collections", str(root)], capture_output=True, text=True,
                             env={**env, "LSST_DB_AUTH": str(auth)})
    assert listing.returncode == 0, listing.stderr
    assert "PFS/defaults" in listing.stdout
