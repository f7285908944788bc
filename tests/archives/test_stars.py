"""STARS2 bundles: detection, the download-script runner, operator instructions."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import pytest

from pfswatchd.archives.stars import is_stars_bundle, operator_instructions, run_unpack_script
from pfswatchd.errors import ErrorKind, UnpackScriptError

FAKE_SCRIPT = """
import json, os, sys
network = sys.stdin.readline().rstrip("\\n")
with open("fetched-" + str(len(network)) + ".fits", "w") as out:
    out.write(network)
with open("env.json", "w") as out:
    json.dump({"keys": sorted(os.environ), "home": os.environ.get("HOME"), "tmp": os.environ.get("TMPDIR"),
               "ppid": os.getppid(), "cwd": os.getcwd()}, out)
print("Select network: fetched 1 file")
"""


def bundle(tmp_path: Path, script: str, name: str = "S2Query") -> Path:
    folder = tmp_path / "staging" / name
    (folder / "zadmin").mkdir(parents=True)
    (folder / "zadmin/unpack.py").write_text(textwrap.dedent(script))
    return folder


def test_bundle_detection(tmp_path: Path) -> None:
    """Only a tree with a regular zadmin/unpack.py at its top is a bundle."""
    folder = bundle(tmp_path, "print()")
    other = tmp_path / "other"
    (other / "zadmin").mkdir(parents=True)
    (other / "zadmin/unpack.py").symlink_to(folder / "zadmin/unpack.py")
    assert (is_stars_bundle(folder), is_stars_bundle(other), is_stars_bundle(tmp_path)) == (
        True,
        False,
        False,
    )


def test_script_gets_the_network_and_a_limited_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The network arrives on stdin verbatim, no shell runs, and only allowed variables are passed."""
    monkeypatch.setenv("PFSWATCHD_TEST_SECRET", "do-not-leak")
    folder = bundle(tmp_path, FAKE_SCRIPT, name="S2 Query; touch pwned")
    network = "hilo $(touch pwned) `id`"
    result = run_unpack_script(folder, network=network, timeout=60)
    assert [folder / "env.json", folder / f"fetched-{len(network)}.fits"] == list(result.new_files)
    assert network == (folder / f"fetched-{len(network)}.fits").read_text()
    seen = json.loads((folder / "env.json").read_text())
    assert "PFSWATCHD_TEST_SECRET" not in seen["keys"]
    assert set(seen["keys"]) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "LC_CTYPE"}
    assert os.getpid() == seen["ppid"]  # the script is our child: no shell in between
    assert str(folder) == seen["cwd"]
    for key in ("home", "tmp"):
        assert Path(seen[key]).parent.parent == folder.parent and not Path(seen[key]).exists()
    assert not list(tmp_path.rglob("pwned"))
    assert "fetched 1 file" in result.stdout_tail


def test_timeout_kills_the_script_and_its_children(tmp_path: Path) -> None:
    """A sleeping script and the child it started are killed after the timeout."""
    folder = bundle(
        tmp_path,
        """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(60)
    """,
    )
    started = time.monotonic()
    with pytest.raises(UnpackScriptError, match="within 1 s") as caught:
        run_unpack_script(folder, network="x", timeout=1)
    assert time.monotonic() - started < 30
    assert caught.value.kind == ErrorKind.UNPACK_SCRIPT
    pid = int((folder / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_children_left_running_after_a_normal_exit_are_killed(tmp_path: Path) -> None:
    """A background download the script leaves behind does not keep writing into the folder."""
    folder = bundle(
        tmp_path,
        """
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open("child.pid", "w").write(str(child.pid))
    """,
    )
    run_unpack_script(folder, network="x", timeout=60)
    pid = int((folder / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_nonzero_exit_reports_code_and_last_stderr_line(tmp_path: Path) -> None:
    """A failing script raises with its exit code and the last line it wrote to stderr."""
    folder = bundle(
        tmp_path,
        """
        import sys
        print("first problem", file=sys.stderr)
        print("network hilo unreachable", file=sys.stderr)
        sys.exit(3)
    """,
    )
    with pytest.raises(UnpackScriptError, match="exited with code 3: network hilo unreachable"):
        run_unpack_script(folder, network="hilo", timeout=60)


def test_network_must_be_one_line(tmp_path: Path) -> None:
    """A network answer with a newline would answer a second question: refused."""
    folder = bundle(tmp_path, "print()")
    with pytest.raises(ValueError, match="single line"):
        run_unpack_script(folder, network="a\nb", timeout=5)


def test_operator_instructions(tmp_path: Path) -> None:
    """The paragraph names the folder, the exact commands and automatic ingestion."""
    folder = tmp_path / "dest" / "S2Query"
    text = operator_instructions(folder)
    assert f"cd {folder} && python3 zadmin/unpack.py" in text
    assert "ingested automatically" in text and "\n" not in text
