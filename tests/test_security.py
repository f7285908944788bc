"""Security: what pfswatchd creates gets the configured permissions; links in drop folders are not
followed out; no shell is ever involved."""

from __future__ import annotations

import ast
import io
import os
import stat
import subprocess
import tarfile
import time
from pathlib import Path

from conftest import write_raw
from harness import Daemon, drop

PACKAGE = Path(__file__).resolve().parents[1] / "pfswatchd"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_created_files_and_folders_get_the_configured_permissions(tmp_path):
    group = 4 if os.getegid() != 4 else 50  # a group this process does not run as
    daemon = Daemon(tmp_path / "svc", ingest={"transfer": "copy"},
                    service={"file_mode": "0640", "dir_mode": "0750", "group": str(group)},
                    archives={"extract_to": "extracted"})
    daemon.start()
    good = drop(write_raw(tmp_path / "src", visit=1100), daemon.incoming)
    bad = drop(write_raw(tmp_path / "src", visit=1101, drop_cards=["W_PFDSGN"]), daemon.incoming / "sub")
    members = {"raw/2025-05-01/sps/" + write_raw(tmp_path / "a", visit=1102, arm="r").name: None}
    archive = tmp_path / "pack.tar"
    with tarfile.open(archive, "w") as tar:
        for name in members:
            data = (tmp_path / "a" / Path(name).name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o4777  # setuid and world-writable in the archive
            tar.addfile(info, io.BytesIO(data))
    os.rename(archive, daemon.incoming / archive.name)
    daemon.wait_until(lambda s: s["counts"]["ingested"] == 2 and s["counts"]["quarantined"] == 1, 60)

    stored = [p for p in daemon.repo.rglob("*.fits")]
    assert len(stored) == 2
    for path in stored:  # copies in the datastore
        assert (_mode(path), path.stat().st_gid) == (0o640, group), path
        assert (_mode(path.parent), path.parent.stat().st_gid) == (0o750, group), path.parent
    quarantined = daemon.quarantine / "sub" / bad.name
    reason = quarantined.with_name(quarantined.name + ".reason")
    assert (_mode(reason), reason.stat().st_gid) == (0o640, group)
    assert (_mode(quarantined.parent), quarantined.parent.stat().st_gid) == (0o750, group)
    [extracted] = (daemon.base / "extracted").rglob("*.fits")
    assert _mode(extracted) == 0o640 and extracted.stat().st_gid == group  # setuid and o+w not restored
    assert good.exists()


def _untouched(files: dict[Path, bytes]) -> list[str]:
    """The files of ``files`` that are gone or changed."""
    return [str(path) for path, data in files.items() if not path.exists() or path.read_bytes() != data]


def test_links_in_a_watched_folder_are_not_followed_out_of_it(tmp_path):
    """Move mode, where following a link deletes what it reaches: links to files and folders outside,
    present at start-up or copied in later with `cp -r` (a tree holding sub/link -> outside folder), are
    not read, moved or deleted (same bytes, still there, not in the ledger) and each is logged
    link_ignored; a link to a file inside the watched folder still works, and events keep flowing."""
    daemon = Daemon(tmp_path / "svc", ingest={"transfer": "move"})
    outside = tmp_path / "outside"
    secret = write_raw(outside, visit=1200)
    folder_outside = outside / "tree"
    write_raw(folder_outside, visit=1201)
    copied_outside = tmp_path / "elsewhere"
    write_raw(copied_outside, visit=1204)
    write_raw(copied_outside / "deeper", visit=1206)
    before = {path: path.read_bytes() for path in outside.rglob("*.fits")}
    before |= {path: path.read_bytes() for path in copied_outside.rglob("*.fits")}
    os.symlink(secret, daemon.incoming / "PFSA00120011.fits")
    os.symlink(folder_outside, daemon.incoming / "linked-folder")
    inside = write_raw(daemon.incoming / "real", visit=1202)
    os.symlink(inside, daemon.incoming / "PFSA00120211-link.fits")  # a link within the folder is fine
    daemon.start()
    daemon.wait_files("ingested", 1, timeout=60)
    drop(write_raw(tmp_path / "src", visit=1203), daemon.incoming)  # and events keep flowing
    tree = tmp_path / "tree-to-copy"
    write_raw(tree / "sub", visit=1205)
    os.symlink(copied_outside, tree / "sub" / "link")
    subprocess.run(["cp", "-r", str(tree), str(daemon.incoming / "copied")], check=True)
    status = daemon.wait_files("ingested", 3, timeout=60)
    copied_link = daemon.incoming / "copied" / "sub" / "link"
    deadline = time.monotonic() + 30
    while copied_link not in {Path(e["path"]) for e in daemon.events("link_ignored")}:
        assert time.monotonic() < deadline, daemon.log()[-3000:]
        time.sleep(0.1)
    time.sleep(2)  # what a followed link would have done has had its time
    status = daemon.quick_status()
    paths = {f["path"] for f in status["files"]}
    assert str(daemon.incoming / "PFSA00120011.fits") not in paths
    assert not any("linked-folder" in p or str(copied_link) in p for p in paths), paths
    assert {e["path"] for e in daemon.events("link_ignored")} >= {
        str(daemon.incoming / "PFSA00120011.fits"), str(daemon.incoming / "linked-folder"), str(copied_link)}
    assert _untouched(before) == []
    visits = {r.dataId["visit"] for r in daemon.datasets()}
    assert visits == {1202, 1203, 1205}
    assert daemon.stop() == 0


def test_a_new_folder_swapped_for_a_link_before_its_walk_is_not_followed(tmp_path):
    """A folder is created in a move-mode drop folder and, while the service is held just before it walks
    it (fault point pipeline.new_folder), swapped for a link to a folder elsewhere: the walk does not
    enter the link, the files there are untouched and not ingested, link_ignored says why."""
    daemon = Daemon(tmp_path / "svc", ingest={"transfer": "move"})
    elsewhere = tmp_path / "elsewhere"
    target = {path: path.read_bytes() for path in (write_raw(elsewhere, visit=1210),
                                                    write_raw(elsewhere, visit=1210, arm="r"))}
    marker = tmp_path / "walk-held"
    daemon.start(env={"PFSWATCHD_FAULT": "pipeline.new_folder", "PFSWATCHD_FAULT_MARKER": str(marker),
                      "PFSWATCHD_FAULT_SECONDS": "3"})
    night = daemon.incoming / "night"
    night.mkdir()
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the service never reached the walk of the new folder"
        time.sleep(0.01)
    _swap_for_link(daemon, night, daemon.incoming / "night-before", elsewhere, ignored=night)
    drop(write_raw(tmp_path / "src", visit=1211), daemon.incoming)  # the service goes on
    daemon.wait_files("ingested", 1, timeout=60)
    time.sleep(1)
    assert _untouched(target) == []
    paths = {f["path"] for f in daemon.quick_status()["files"]}
    assert not any(p.startswith(str(night) + os.sep) for p in paths), paths
    assert {r.dataId["visit"] for r in daemon.datasets()} == {1211}
    assert daemon.stop() == 0


def test_a_settling_file_whose_folder_becomes_a_link_is_not_followed(tmp_path):
    """A file still being written (open, no close yet) is settling in night/ when night/ is swapped for a
    link to a folder holding a file of the same name: when its settle time comes, the path now leads out
    of the watched folder through a parent link (not its last name), so the file there is not examined,
    ingested or moved; link_ignored says why.  The file that was really written is ingested from where it
    went."""
    daemon = Daemon(tmp_path / "svc", ingest={"transfer": "move"}, watch={"settle_seconds": 4.0})
    source = write_raw(tmp_path / "src", visit=1220)
    elsewhere = tmp_path / "elsewhere"
    decoy = write_raw(elsewhere, visit=1220, exptime=31.0)
    target = {decoy: decoy.read_bytes()}
    daemon.start()
    night = daemon.incoming / "night"
    night.mkdir()
    time.sleep(1)  # its watch placed
    settling = night / source.name
    with open(settling, "wb") as out:
        out.write(source.read_bytes())
        out.flush()
        daemon.wait_until(lambda s: any(f["path"] == str(settling) for f in s["files"]), 30,
                          what="the settling file seen")
        _swap_for_link(daemon, night, daemon.incoming / "night-written", elsewhere, ignored=settling)
    written = daemon.incoming / "night-written" / source.name
    status = daemon.wait_until(lambda s: any(f["path"] == str(written) and f["state"] == "ingested"
                                             for f in s["files"]), 60, what="the written file ingested")
    time.sleep(1)
    assert _untouched(target) == []
    # Its row is left pending, or recorded ignored as a file that went away before it was examined.
    assert not any(f["path"] == str(settling) and f["state"] not in ("pending", "ingesting", "ignored")
                   for f in status["files"])
    assert not daemon.events("file_ingested") or all(e["path"] != str(settling)
                                                     for e in daemon.events("file_ingested"))
    assert daemon.stop() == 0


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            found.append((f"{owner}.{name}" if owner else name, node))
    return found


def test_no_shell_command_is_ever_built():
    """No os.system/popen, no shell=True, and subprocess only with an argument list, in stars.py alone."""
    offenders = []
    for source in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(source.read_text())
        for name, call in _calls(tree):
            if name in ("os.system", "os.popen", "os.execl", "os.execlp", "os.spawnl", "os.spawnlp"):
                offenders.append(f"{source.name}: {name}")
            if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                   for k in call.keywords):
                offenders.append(f"{source.name}: {name}(shell=...)")
            if name.startswith("subprocess."):
                if source.name != "stars.py":
                    offenders.append(f"{source.name}: {name} outside stars.py")
                elif call.args and not isinstance(call.args[0], ast.List | ast.Name):
                    offenders.append(f"{source.name}: {name} with a non-list command")
    assert offenders == []


def _swap_for_link(daemon, folder: Path, aside: Path, elsewhere: Path, *, ignored: Path) -> None:
    """Rename ``folder`` to ``aside``, put a link to ``elsewhere`` in its place, and wait until the service
    says it ignored ``ignored`` (reached through that link)."""
    os.rename(folder, aside)
    os.symlink(elsewhere, folder)
    deadline = time.monotonic() + 30
    while str(ignored) not in {e["path"] for e in daemon.events("link_ignored")}:
        assert time.monotonic() < deadline, daemon.log()[-3000:]
        time.sleep(0.1)
