"""Security: what pfswatchd creates gets the configured permissions; links in drop folders are not
followed out; no shell is ever involved."""

from __future__ import annotations

import ast
import io
import os
import stat
import tarfile
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


def test_links_in_a_watched_folder_are_not_followed_out_of_it(tmp_path):
    daemon = Daemon(tmp_path / "svc")
    outside = tmp_path / "outside"
    secret = write_raw(outside, visit=1200)
    folder_outside = outside / "tree"
    write_raw(folder_outside, visit=1201)
    os.symlink(secret, daemon.incoming / "PFSA00120011.fits")
    os.symlink(folder_outside, daemon.incoming / "linked-folder")
    inside = write_raw(daemon.incoming / "real", visit=1202)
    os.symlink(inside, daemon.incoming / "PFSA00120211-link.fits")  # a link within the folder is fine
    daemon.start()
    daemon.wait_files("ingested", 1, timeout=30)
    drop(write_raw(tmp_path / "src", visit=1203), daemon.incoming)  # and events keep flowing
    status = daemon.wait_files("ingested", 2, timeout=30)
    paths = {f["path"] for f in status["files"]}
    assert str(daemon.incoming / "PFSA00120011.fits") not in paths
    assert not any("linked-folder" in p for p in paths)
    assert {e["path"] for e in daemon.events("link_ignored")} == {
        str(daemon.incoming / "PFSA00120011.fits"), str(daemon.incoming / "linked-folder")}
    visits = {r.dataId["visit"] for r in daemon.datasets()}
    assert visits == {1202, 1203}
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
