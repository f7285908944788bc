"""The service on a repository the PFS pipeline made, and the per-file retry limit.

The repository is conftest.build_official_repository's (17 visit columns, the shape of production
repositories): the service must ingest new files beside the official ones, take duplicates of what
the official tools wrote as duplicates, refuse conflicts once (no retry loop), and leave the
curated PFS/defaults alone.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from conftest import OFFICIAL_VISIT, copy_official, inspect_repository, write_config, write_raw
from harness import Daemon, drop

FINAL = ("ingested", "duplicate", "failed", "quarantined", "ignored")


def _wait_all_final(daemon: Daemon, count: int, timeout: float = 120) -> dict:
    return daemon.wait_until(
        lambda s: sum(s["counts"].get(state, 0) for state in FINAL) >= count and not s["counts"].get("pending")
        and not s["counts"].get("ingesting"), timeout, what=f"{count} files final")


def _status_text(daemon: Daemon) -> str:
    import subprocess

    from harness import BIN

    result = subprocess.run([str(BIN / "pfswatchd"), "status", "--config", str(daemon.config_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("columns", [17, 18])
def test_service_into_an_official_repository(official_templates, tmp_path, columns):
    official = copy_official(official_templates(columns), tmp_path)
    before = inspect_repository(official["root"])
    daemon = Daemon(tmp_path / "svc", repository={"root": str(official["root"]), "create": False})
    daemon.start()
    [started] = daemon.events("service_started")
    assert f"{columns} visit columns" in started["universe"]
    source = tmp_path / "src"
    dropped = {
        "new_camera": write_raw(source / "a", visit=OFFICIAL_VISIT, arm="r", spectrograph=3),
        "new_visit": write_raw(source / "a", visit=502, arm="b", spectrograph=1, mjd=60800.8),
        "new_config": write_config(source / "a", visit=502),
        "same_raw": official["raws"][0],
        "same_config": official["pfsconfig"],  # written by the official tool with a random id
        "other_raw": write_raw(source / "b", visit=OFFICIAL_VISIT, arm="n", spectrograph=1, seed=3),
        "other_config": write_config(source / "b", visit=OFFICIAL_VISIT, n_fibers=20),
        "unknown_site": write_raw(source / "c", visit=503, site="J"),
        # obs_pfs never compares dithers between a visit's files (read-back noise): a warning.
        "other_dither": write_raw(source / "d", visit=OFFICIAL_VISIT, arm="m", spectrograph=1, dither_mm=0.0011),
    }
    # The official raw has the DATAID_TYPE_RUN id pfswatchd computes, so its first file here is taken as
    # the dataset's own (the service cannot tell it from its own placement before a crash); the
    # pfsConfig's random id is known to be another tool's.  Nothing is written for either.
    expected = {"new_camera": "ingested", "new_visit": "ingested", "new_config": "ingested", "same_raw": "ingested",
                "same_config": "duplicate", "other_raw": "quarantined", "other_config": "quarantined",
                "unknown_site": "quarantined", "other_dither": "ingested"}
    landed = {}
    for name, path in dropped.items():
        landed[name] = str(drop(path, daemon.incoming / name))
    status = _wait_all_final(daemon, len(dropped))
    time.sleep(1.0)  # long enough for a retry loop to show (retry_initial is 0.2 s)
    files = {f["path"]: f for f in daemon.quick_status()["files"]}
    got = {name: files[path]["state"] for name, path in landed.items()}
    assert got == expected, status["counts"]
    kinds = {name: files[path]["error_kind"] for name, path in landed.items() if expected[name] == "quarantined"}
    assert kinds == {"other_raw": "conflict", "other_config": "conflict", "unknown_site": "unknown_instrument"}
    assert all(files[landed[name]]["attempts"] == 1 for name in kinds)  # refused once, never retried
    assert files[landed["same_config"]]["dataset_id"] == official["ids"][official["pfsconfig"].name]
    assert files[landed["same_raw"]]["dataset_id"] == official["ids"][official["raws"][0].name]
    [warning] = daemon.quick_status()["recent_warnings"]
    assert (warning["path"], warning["error_kind"]) == (landed["other_dither"], "visit_mismatch")
    assert "dither 11 but the visit has 0" in warning["error"]
    [logged] = [e for e in daemon.events("file_ingested") if e["path"] == landed["other_dither"]]
    assert logged["level"] == "warning" and logged["error_kind"] == "visit_mismatch"
    assert "recent warnings (ingested):" in _status_text(daemon)
    assert daemon.stop() == 0
    after = inspect_repository(official["root"])
    assert after["chains"] == before["chains"] and after["instruments"] == before["instruments"]
    runs = {(d["type"], d["run"]) for d in after["datasets"]}
    assert runs == {("raw", "PFS/raw/sps"), ("pfsConfig", "PFS/raw/pfsConfig")}
    assert len(after["datasets"]) == len(before["datasets"]) + 4
    [visit] = [v for v in after["visits"] if v["id"] == 502]
    assert ("irp_ratio" in visit) == (columns == 18)  # only the columns this repository's universe has


def test_a_transient_error_that_repeats_is_given_up_after_max_attempts(tmp_path):
    """A destination held by a young foreign file is datastore_busy on every try: after
    ingest.max_attempts the file is failed with that reason, and nothing retries it any more."""
    daemon = Daemon(tmp_path / "svc", ingest={"max_attempts": 3, "retry_initial": 0.2, "retry_max": 0.4},
                    quarantine={"policy": "leave"})
    daemon.start()
    raw = write_raw(tmp_path / "src", visit=77)
    # What another writer is putting where this raw's file must go (the datastore's template path).
    busy = daemon.repo / "PFS/raw/sps/raw/20250505/77/raw_PFS_77_b1_PFS_raw_sps.fits"
    busy.parent.mkdir(parents=True)
    busy.write_bytes(b"someone else's half-written file")
    path = str(drop(raw, daemon.incoming))
    status = daemon.wait_files("failed", 1, timeout=60)
    [row] = [f for f in status["files"] if f["path"] == path]
    assert (row["error_kind"], row["attempts"]) == ("datastore_busy", 3)
    assert "given up after 3 attempts" in row["error"] and "another ingest may be writing it" in row["error"]
    time.sleep(1.5)  # several backoff periods: no fourth attempt
    [row] = [f for f in daemon.quick_status()["files"] if f["path"] == path]
    assert (row["state"], row["attempts"]) == ("failed", 3)
    assert busy.read_bytes() == b"someone else's half-written file"  # nothing was overwritten
    os.unlink(busy)
    assert daemon.stop() == 0
    shutil.rmtree(tmp_path / "src")
