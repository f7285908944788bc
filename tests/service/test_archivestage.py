"""Archives dropped into the watched folder, handled by the real service (subprocess)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import write_config, write_raw
from harness import BIN, Daemon


def _tar(path: Path, members: dict[str, bytes], mode: str = "w:gz", extra=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_000_000_000  # an old mtime, as tar restores
            tar.addfile(info, io.BytesIO(data))
        for info in extra or ():
            tar.addfile(info)
    return path


def _summit(tmp_path: Path, visit: int) -> dict[str, bytes]:
    folder = tmp_path / f"src{visit}"
    files = {
        f"raw/2025-05-01/sps/{write_raw(folder, visit=visit, arm='b').name}": b"",
        f"raw/2025-05-01/ramps/{write_raw(folder, visit=visit, arm='n').name}": b"",
        f"raw/2025-05-01/pfsConfig/{write_config(folder, visit=visit).name}": b"",
    }
    return {name: (folder / Path(name).name).read_bytes() for name in files}


def _drop(archive: Path, incoming: Path) -> Path:
    target = incoming / archive.name
    os.rename(archive, target)
    return target


@pytest.fixture()
def daemon(tmp_path):
    return Daemon(tmp_path / "svc", archives={"extract_to": "extracted"})


def test_summit_tarball_is_unpacked_and_ingested(daemon, tmp_path):
    daemon.settings["archives"]["after"] = "move"
    daemon.settings["archives"]["done_path"] = "done"
    daemon.write_config()
    daemon.start()
    archive = _drop(_tar(tmp_path / "night-2025-05-01.tar.gz", _summit(tmp_path, 900)), daemon.incoming)
    status = daemon.wait_files("ingested", 3, timeout=60)
    [entry] = status["archives"]
    assert entry["path"] == str(archive) and entry["members"] >= 3 and entry["published"] == 3
    assert entry["files"] == {"ingested": 3} and entry["state"] == "done"
    published = daemon.base / "extracted" / "night-2025-05-01" / "raw" / "2025-05-01"
    assert sorted(p.parent.name for p in published.rglob("*.fits")) == ["pfsConfig", "ramps", "sps"]
    linked = [f for f in status["files"] if f["archive_id"] is not None]
    assert len(linked) == 3 and all(f["state"] == "ingested" for f in linked)
    assert not archive.exists() and (daemon.base / "done" / archive.name).exists()
    assert len(daemon.datasets()) == 2 and len(daemon.datasets("pfsConfig")) == 1
    text = subprocess.run([str(BIN / "pfswatchd"), "status", "--config", str(daemon.config_path)],
                          capture_output=True, text=True).stdout
    assert f"archive {archive}: done, 3 files published, 3 ingested" in text


def test_unsafe_archive_is_quarantined_whole(daemon, tmp_path):
    daemon.start()
    members = _summit(tmp_path, 901)
    members["../../escape.fits"] = b"x" * 100
    archive = _drop(_tar(tmp_path / "evil.tar.gz", members), daemon.incoming)
    status = daemon.wait_until(lambda s: s["archives"] and s["archives"][0]["state"] == "quarantined", 60)
    entry = status["archives"][0]
    assert entry["error_kind"] == "unsafe_archive" and "escape.fits" in entry["error"]
    assert not (daemon.base / "extracted" / "evil").exists()
    assert not (tmp_path / "escape.fits").exists() and not (daemon.base / "escape.fits").exists()
    assert (daemon.quarantine / archive.name).exists()
    assert "unsafe_archive" in (daemon.quarantine / (archive.name + ".reason")).read_text()
    assert status["counts"]["ingested"] == 0


def test_corrupt_gzip_is_quarantined(daemon, tmp_path):
    daemon.start()
    data = bytearray(_tar(tmp_path / "bad.tar.gz", _summit(tmp_path, 902)).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    (tmp_path / "bad.tar.gz").write_bytes(bytes(data))
    _drop(tmp_path / "bad.tar.gz", daemon.incoming)
    status = daemon.wait_until(lambda s: s["archives"] and s["archives"][0]["state"] == "quarantined", 60)
    assert status["archives"][0]["error_kind"] in ("corrupt_archive",)


def test_archive_still_being_written_waits(daemon, tmp_path):
    daemon.settings["watch"]["settle_seconds"] = 0.3
    daemon.write_config()
    daemon.start()
    data = _tar(tmp_path / "slow.tar.gz", _summit(tmp_path, 903)).read_bytes()
    target = daemon.incoming / "slow.tar.gz"
    with open(target, "wb") as stream:
        stream.write(data[: len(data) // 2])
        stream.flush()
        time.sleep(2.0)  # quiet for longer than settle_seconds, but not a whole tar stream
        status = daemon.quick_status()
        assert status["archives"][0]["state"] == "pending" and status["counts"]["ingested"] == 0
        assert not (daemon.base / "extracted" / "slow").exists()
        stream.write(data[len(data) // 2 :])
    daemon.wait_files("ingested", 3, timeout=60)


def test_checksum_mismatch_fails_that_file_only(daemon, tmp_path):
    daemon.start()
    members = _summit(tmp_path, 904)
    names = list(members)
    good, bad = names[0], names[1]
    members[good + ".md5"] = f"{hashlib.md5(members[good]).hexdigest()}  {Path(good).name}\n".encode()
    members[bad + ".md5"] = f"{'0' * 32}  {Path(bad).name}\n".encode()
    _drop(_tar(tmp_path / "sums.tar.gz", members), daemon.incoming)
    status = daemon.wait_until(lambda s: s["counts"]["ingested"] == 2 and s["archives"]
                               and s["archives"][0]["failed"] == 1, 60)
    failure = next(f for f in status["files"] if f["error_kind"] == "checksum_mismatch")
    assert Path(bad).name in failure["error"] and "0" * 32 in failure["error"]
    assert hashlib.md5(members[bad]).hexdigest() in failure["error"]
    assert not list((daemon.base / "extracted").rglob(Path(bad).name))  # not published
    assert status["counts"]["ignored"] == 2  # the two .md5 sidecars


def test_nested_archive(daemon, tmp_path):
    daemon.start()
    inner = _tar(tmp_path / "inner" / "visit905.tar.gz", _summit(tmp_path, 905))
    outer = _tar(tmp_path / "outer.tar", {"bundles/visit905.tar.gz": inner.read_bytes()}, mode="w")
    _drop(outer, daemon.incoming)
    daemon.wait_files("ingested", 3, timeout=60)


FAKE_UNPACK = '''\
import os, shutil, sys
network = sys.stdin.readline().strip()
os.makedirs("fetched", exist_ok=True)
for name in os.listdir("zadmin/payload"):
    shutil.move(os.path.join("zadmin/payload", name), os.path.join("fetched", name.removesuffix(".dat")))
with open("fetched/network.txt", "w") as f:
    f.write(network)
'''


def _bundle(tmp_path: Path, visit: int) -> Path:
    # The frames the script "fetches" travel inside the bundle under names that are not FITS names, as a
    # real S2Query.tar holds no frames: nothing may be ingested before the script runs.
    payload = {f"zadmin/payload/{Path(name).name}.dat": data for name, data in _summit(tmp_path, visit).items()}
    return _tar(tmp_path / "S2Query.tar", {"zadmin/unpack.py": FAKE_UNPACK.encode(), **payload}, mode="w")


def test_stars_bundle_by_default_waits_for_the_operator(daemon, tmp_path):
    daemon.start()
    _drop(_bundle(tmp_path, 906), daemon.incoming)
    status = daemon.wait_until(lambda s: s["archives"] and s["archives"][0]["state"] == "operator", 60)
    entry = status["archives"][0]
    assert entry["stars_bundle"] and "python3 zadmin/unpack.py" in entry["instructions"]
    folder = daemon.base / "extracted" / "S2Query"
    assert (folder / "zadmin" / "unpack.py").exists()
    time.sleep(1.0)  # time enough to ingest anything that the service took for a frame
    assert daemon.quick_status()["counts"]["ingested"] == 0 and not (folder / "fetched").exists()
    assert daemon.events("stars_bundle_needs_operator")
    # The operator runs it: what it fetches lands in the watched folder and is ingested.
    subprocess.run(["python3", "zadmin/unpack.py"], cwd=folder, input="1\n", text=True, check=True)
    daemon.wait_files("ingested", 3, timeout=60)


def test_stars_bundle_script_run_when_enabled(daemon, tmp_path):
    daemon.settings["archives"]["stars"] = {"run_unpack": True, "network": "2", "timeout": 60.0}
    daemon.write_config()
    daemon.start()
    _drop(_bundle(tmp_path, 907), daemon.incoming)
    status = daemon.wait_files("ingested", 3, timeout=60)
    assert status["archives"][0]["state"] == "done" and status["archives"][0]["instructions"] is None
    assert (daemon.base / "extracted" / "S2Query" / "fetched" / "network.txt").read_text() == "2"
    assert daemon.events("stars_script_ran")


def test_unpack_command(tmp_path):
    archive = _tar(tmp_path / "by-hand.tar.gz", _summit(tmp_path, 908))
    result = subprocess.run([str(BIN / "pfswatchd"), "unpack", str(archive), str(tmp_path / "out")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "3 files published" in result.stdout
    assert len(list((tmp_path / "out" / "by-hand").rglob("*.fits"))) == 3
    evil = _tar(tmp_path / "evil.tar", {"/etc/passwd-copy": b"x"}, mode="w")
    result = subprocess.run([str(BIN / "pfswatchd"), "unpack", str(evil), str(tmp_path / "out2")],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "absolute" in result.stderr


def test_failing_stars_script_leaves_the_bundle_for_the_operator(daemon, tmp_path):
    daemon.settings["archives"]["stars"] = {"run_unpack": True, "network": "1", "timeout": 30.0}
    daemon.write_config()
    daemon.start()
    failing = "open('half.fits', 'wb').write(b'SIMPLE  =')\nraise SystemExit('network unreachable')\n"
    _drop(_tar(tmp_path / "S2Query.tar", {"zadmin/unpack.py": failing.encode()}, mode="w"), daemon.incoming)
    status = daemon.wait_until(lambda s: s["archives"] and s["archives"][0]["state"] == "operator", 60)
    entry = status["archives"][0]
    assert entry["error_kind"] == "unpack_script" and "network unreachable" in entry["error"]
    assert entry["instructions"].startswith("zadmin/unpack.py failed") and "python3 zadmin/unpack.py" in \
        entry["instructions"]
    folder = daemon.base / "extracted" / "S2Query"
    assert (folder / "zadmin" / "unpack.py").exists() and not (folder / "half.fits").exists()


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not created within {timeout}s"
        time.sleep(0.05)


def test_staging_of_a_kill_mid_extraction_is_removed_at_restart(daemon, tmp_path):
    """SIGKILL while an archive is half extracted: the restart removes the staging folder at once (it
    named the dead process) and extracts the archive again; every member ingested once, the row done."""
    marker = tmp_path / "paused"
    daemon.start(env={"PFSWATCHD_FAULT": "unpack.member", "PFSWATCHD_FAULT_MARKER": str(marker)})
    _drop(_tar(tmp_path / "night.tar.gz", _summit(tmp_path, 910)), daemon.incoming)
    _wait_for(marker)  # the first member is in staging, the rest not yet
    daemon.kill()
    staging = daemon.base / "extracted" / ".pfswatchd-staging"
    [left] = list(staging.iterdir())
    assert list(left.rglob("*.fits"))
    daemon.start()  # the marker exists: no pause this time
    status = daemon.wait_until(lambda s: s["counts"].get("ingested", 0) >= 3 and s["archives"]
                               and s["archives"][0]["state"] == "done", 90)
    assert [e["path"] for e in daemon.events("staging_removed")] == [str(left)]
    assert list(staging.iterdir()) == []
    assert {k: v for k, v in status["counts"].items() if v} == {"ingested": 3} and len(daemon.datasets()) == 2
    assert len({f["path"] for f in status["files"]}) == 3


def test_a_member_1100_levels_deep_is_quarantined_and_leaves_no_staging(daemon, tmp_path):
    """Once stayed `extracting` forever with its staging folder (a RecursionError in the worker)."""
    from pfswatchd.archives.staging import remove_tree

    daemon.start()
    members = _summit(tmp_path, 911)
    members["/".join(["d"] * 1099 + ["PFSA09110111.fits"])] = b"x"
    try:
        archive = _drop(_tar(tmp_path / "deep.tar.gz", members), daemon.incoming)
        status = daemon.wait_until(lambda s: s["archives"] and s["archives"][0]["state"] == "quarantined", 60)
        entry = status["archives"][0]
        assert entry["error_kind"] == "archive_limit" and "1100 levels deep" in entry["error"]
        assert "\n" not in entry["error"] and (daemon.quarantine / archive.name).exists()
        assert list((daemon.base / "extracted" / ".pfswatchd-staging").iterdir()) == []
        assert status["counts"].get("ingested", 0) == 0
    finally:
        remove_tree(daemon.base / "extracted")  # iteratively: pytest's cleanup recurses per level


def test_concatenated_tars_and_a_name_twice_in_the_service(daemon, tmp_path):
    """Two tars cat'ed together: both ingested; a member name used twice: quarantined naming it."""
    daemon.start()
    first = _tar(tmp_path / "a.tar", dict(list(_summit(tmp_path, 912).items())[:2]), mode="w").read_bytes()
    second = _tar(tmp_path / "b.tar", _summit(tmp_path, 913), mode="w").read_bytes()
    (tmp_path / "cat.tar").write_bytes(first + second)
    _drop(tmp_path / "cat.tar", daemon.incoming)
    daemon.wait_files("ingested", 5, timeout=60)
    members = _summit(tmp_path, 914)
    name = next(iter(members))
    with tarfile.open(tmp_path / "twice.tar", "w") as tar:
        for data in (members[name], members[name][:-2880]):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    _drop(tmp_path / "twice.tar", daemon.incoming)
    status = daemon.wait_until(lambda s: any(a["state"] == "quarantined" for a in s["archives"]), 60)
    [entry] = [a for a in status["archives"] if a["state"] == "quarantined"]
    assert entry["error_kind"] == "corrupt_archive" and f"member {name!r} appears twice" in entry["error"]
