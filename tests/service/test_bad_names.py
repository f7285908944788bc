"""File and folder names that are not UTF-8 (issue 12, item 6): recorded under their escaped form with a
reason, reported, never ingested, and they never stop anything else, across restarts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import write_raw
from harness import BIN, Daemon, drop


def _bytes_path(folder: Path, name: bytes) -> str:
    return os.fsdecode(os.fsencode(folder) + b"/" + name)


def _escaped(folder: Path, name: str) -> str:
    return f"{folder}/{name}"


@pytest.mark.parametrize("found_by", ["events", "rescan"])
def test_names_that_are_not_utf8_are_recorded_and_the_rest_is_ingested(tmp_path, found_by):
    daemon = Daemon(tmp_path / "svc")
    src = tmp_path / "src"
    if found_by == "events":
        daemon.start()
    good = [drop(write_raw(src, visit=840, arm=arm), daemon.incoming) for arm in "br"]
    bad_file = _bytes_path(daemon.incoming, b"PFSA\xff00084111.fits")
    os.rename(write_raw(src, visit=841), bad_file)
    bad_folder = _bytes_path(daemon.incoming, b"night\xfe")
    os.mkdir(bad_folder)
    drop(write_raw(src, visit=842), Path(bad_folder))
    good.append(drop(write_raw(src, visit=843), daemon.incoming / "later"))
    if found_by == "rescan":
        daemon.start()
    done = daemon.wait_until(lambda s: s["counts"].get("ingested", 0) >= 3 and s["counts"].get("failed", 0) >= 2,
                             timeout=90, what="3 ingested, 2 recorded")
    states = {f["path"]: f for f in done["files"]}
    for path in good:
        assert states[str(path)]["state"] == "ingested"
    for escaped, what in ((_escaped(daemon.incoming, "PFSA\\xff00084111.fits"), "byte \\xff"),
                          (_escaped(daemon.incoming, "night\\xfe"), "byte \\xfe")):
        row = states[escaped]
        assert row["state"] == "failed" and row["error_kind"] == "bad_name" and what in row["error"], row
    assert done["counts"]["failed"] == 2 and done["counts"].get("pending", 0) == 0, done["counts"]
    assert len(daemon.datasets()) == 3
    events = daemon.events("bad_name")
    assert sorted(e["path"] for e in events) == sorted([_escaped(daemon.incoming, "PFSA\\xff00084111.fits"),
                                                        _escaped(daemon.incoming, "night\\xfe")])
    assert not daemon.events("step_failed") and not daemon.events("rescan_failed")
    result = subprocess.run([str(BIN / "pfswatchd"), "status", "--config", str(daemon.config_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "PFSA\\xff00084111.fits: [bad_name]" in result.stdout, result

    # A restart meets them again: nothing new is said, nothing loops, new files still flow.
    assert daemon.stop() == 0
    daemon.start()
    good.append(drop(write_raw(src, visit=844), daemon.incoming))
    daemon.wait_files("ingested", 4, timeout=90)
    daemon.wait_until(lambda s: s["counts"].get("pending", 0) == 0, timeout=60, what="nothing pending")
    assert len(daemon.events("bad_name")) == 2
    assert not daemon.events("step_failed") and not daemon.events("rescan_failed")

    # Renamed to a UTF-8 name, the file is picked up as the new file it is.
    renamed = daemon.incoming / "PFSA00084111.fits"
    os.rename(bad_file, renamed)
    daemon.wait_files("ingested", 5, timeout=90)
    assert daemon.stop() == 0
    assert [e["exit_code"] for e in daemon.events("service_stopped")] == [0, 0]


def test_an_archive_member_whose_name_is_not_utf8_is_recorded_and_the_others_are_ingested(tmp_path):
    import io
    import tarfile

    daemon = Daemon(tmp_path / "svc")
    daemon.start()
    src = tmp_path / "src"
    members = [(b"night/PFSA00086011.fits", write_raw(src, visit=860)),
               (b"night/PFSA\xff00086111.fits", write_raw(src, visit=861)),
               (b"night\xfe/PFSA00086211.fits", write_raw(src, visit=862))]
    archive = tmp_path / "drop.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
        for name, path in members:
            info = tarfile.TarInfo(os.fsdecode(name))
            data = path.read_bytes()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    drop(archive, daemon.incoming)
    done = daemon.wait_until(lambda s: s["counts"].get("ingested", 0) >= 1 and s["counts"].get("failed", 0) >= 2,
                             timeout=90, what="1 ingested, 2 recorded")
    failed = [f for f in done["files"] if f["state"] == "failed"]
    assert sorted(f["error_kind"] for f in failed) == ["bad_name", "bad_name"], failed
    assert any(f["path"].endswith("PFSA\\xff00086111.fits") for f in failed), failed
    assert any(f["path"].endswith("night\\xfe") for f in failed), failed
    assert len(daemon.datasets()) == 1 and done["counts"].get("pending", 0) == 0, done["counts"]
    assert len(daemon.events("bad_name")) == 2
    assert not daemon.events("step_failed") and not daemon.events("rescan_failed")
    assert daemon.alive() and daemon.stop() == 0
