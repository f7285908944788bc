"""ingest-raws and ingest-pfsconfig as a user meets them: real subprocesses, the real butler.

Interrupts are driven by the fault-injection points of pfswatchd.faults (a test names a point, the
command pauses there and writes a marker file, the test sends SIGINT at that moment).
"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from conftest import write_config, write_raw
from harness import obeying_file_modes
from pfswatchd import oneshot
from pfswatchd.butler import repo
from pfswatchd.butler.ingest import IngestSettings
from pfswatchd.fakedata import make_visits
from pfswatchd.model import FileKind

BIN = Path(sys.executable).parent


def pfswatchd(*args, check=None, prefix=(), env=None):
    result = subprocess.run([*prefix, str(BIN / "pfswatchd"), *map(str, args)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, **(env or {})})
    assert "Traceback" not in result.stderr, result.stderr
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


def datasets(repo: Path, dataset_type: str = "raw", collections: str = "PFS/defaults") -> list:
    with Butler.from_config(str(repo), collections=collections) as butler:
        return list(butler.query_datasets(dataset_type, collections=collections, find_first=False, limit=None,
                                          explain=False))


def datastore_files(repo: Path) -> list[Path]:
    """Every FITS file under the repository (the datastore), registered or not."""
    return sorted(p for p in repo.rglob("*.fits"))


def interrupted_run(tmp_path, point, *args):
    """Start a one-shot command that pauses at ``point``; send SIGINT there; return (code, stdout, stderr)."""
    marker = tmp_path / "paused"
    env = {**os.environ, "PFSWATCHD_FAULT": point, "PFSWATCHD_FAULT_MARKER": str(marker),
           "PFSWATCHD_FAULT_SECONDS": "20"}
    process = subprocess.Popen([str(BIN / "pfswatchd"), *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the command never reached the fault point"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


# -- Ctrl-C --------------------------------------------------------------------------------------


def test_ctrl_c_in_a_garbage_collection_callback_still_stops_the_command(pfs_repo, tmp_path):
    """An interrupt that lands while Python runs a finalizer was swallowed ('Exception ignored in ...
    KeyboardInterrupt') and the command ran to the end with status 0; it must stop with 130."""
    make_visits(tmp_path / "d", visits=2, spectrographs=(1,))
    code, out, err = interrupted_run(tmp_path, "oneshot.examined:finalizer", "ingest-raws", pfs_repo, tmp_path / "d")
    assert code == 130, out + err
    assert "Exception ignored" not in err and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "pfswatchd: interrupted (SIGINT); nothing more was written"
    assert "ingested" not in out  # no summary of a run that did not finish
    assert datasets(pfs_repo) == [] and datastore_files(pfs_repo) == []


def test_ctrl_c_while_files_are_placed_leaves_no_file_the_registry_does_not_know(pfs_repo, tmp_path):
    make_visits(tmp_path / "d", visits=2, spectrographs=(1,))
    for point in ("ingest.placed", "ingest.registered"):
        (tmp_path / "paused").unlink(missing_ok=True)
        code, out, err = interrupted_run(tmp_path, point, "ingest-raws", pfs_repo, tmp_path / "d", "--transfer",
                                         "copy")
        assert code == 130, (point, out, err)
        assert "Traceback" not in err
        assert datasets(pfs_repo) == [], point  # the batch in flight was rolled back
        assert datastore_files(pfs_repo) == [], point  # and what it had placed removed
    result = pfswatchd("ingest-raws", pfs_repo, tmp_path / "d", "--transfer", "copy", check=0)
    assert "6 ingested" in result.stdout and len(datastore_files(pfs_repo)) == 6


# -- a pfsConfig before its raws -----------------------------------------------------------------


def test_pfsconfig_before_its_raws_waits_and_the_next_call_ingests_it(pfs_repo, tmp_path):
    make_visits(tmp_path / "d", visits=2, spectrographs=(1,))
    configs = sorted((tmp_path / "d").rglob("pfsConfig-*.fits"))
    result = pfswatchd("ingest-pfsconfig", pfs_repo, "PFS", "PFS/raw/pfsConfig", *configs)
    assert result.returncode == 3, result  # waiting is not success
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == [f"WAITING {p}" for p in configs]
    assert "2 waiting" in result.stdout
    assert datasets(pfs_repo, "pfsConfig") == []
    result = pfswatchd("ingest-raws", pfs_repo, tmp_path / "d" / "raw", check=0)
    assert "earlier waiting pfsConfigs: 2 ingested" in result.stdout, result.stdout
    assert sorted(line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("INGESTED")) == [
        f"INGESTED {p.absolute()}" for p in configs]
    assert {ref.dataId["visit"] for ref in datasets(pfs_repo, "pfsConfig")} == {100, 101}
    # Nothing is left waiting: the next call has nothing more to say about them.
    result = pfswatchd("ingest-raws", pfs_repo, tmp_path / "d" / "raw" / "2025-05-01" / "sps", check=0)
    assert "earlier" not in result.stdout and "INGESTED" not in result.stderr


def test_pfsconfig_still_waiting_keeps_its_run_and_transfer(pfs_repo, tmp_path):
    write_raw(tmp_path / "raws", visit=77)
    config = write_config(tmp_path / "configs", visit=77)
    pfswatchd("ingest-pfsconfig", pfs_repo, "PFS", "PFS/raw/myConfigs", config, "--transfer", "copy", check=3)
    pfswatchd("ingest-raws", pfs_repo, tmp_path / "raws", check=0)
    [ref] = datasets(pfs_repo, "pfsConfig", collections="PFS/raw/myConfigs")
    with Butler.from_config(str(pfs_repo)) as butler:
        stored = Path(butler.getURI(ref).ospath)
    assert stored.stat().st_ino != config.stat().st_ino  # copied, as that call asked, not linked


# -- folders that cannot be read, repositories that cannot be written ----------------------------


def test_unreadable_folder_is_a_failure_with_its_reason(pfs_repo, tmp_path):
    write_raw(tmp_path / "d" / "open", visit=10)
    locked = tmp_path / "d" / "locked"
    write_raw(locked, visit=11)
    locked.chmod(0o000)
    try:
        result = pfswatchd("ingest-raws", pfs_repo, tmp_path / "d", prefix=obeying_file_modes())
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1
    assert f"FAILED {locked}{os.sep}: [permission_denied] cannot read the folder: Permission denied" in \
        result.stderr.splitlines()
    assert result.stdout.strip() == ("1 files, 1 unreadable folders: 1 ingested, 0 duplicate, 0 waiting, 0 skipped, "
                                     "0 failed")


def test_links_out_of_a_folder_argument_are_skipped_not_moved(pfs_repo, tmp_path):
    """ingest-raws --transfer move FOLDER: a link in it to a raw outside the folder, and a link to a folder
    outside, are not read, moved or deleted (same bytes, still there); the file link is SKIPPED with its
    reason; the folder's own raw is ingested."""
    outside = write_raw(tmp_path / "outside", visit=20)
    write_raw(tmp_path / "outside" / "tree", visit=21)
    before = {path: path.read_bytes() for path in (tmp_path / "outside").rglob("*.fits")}
    drop = tmp_path / "d"
    write_raw(drop / "real", visit=22)
    os.symlink(outside, drop / outside.name)
    os.symlink(tmp_path / "outside" / "tree", drop / "linked-folder")
    result = pfswatchd("ingest-raws", "--transfer", "move", pfs_repo, drop)
    assert {path for path, data in before.items() if not path.exists() or path.read_bytes() != data} == set()
    assert f"SKIPPED {drop / outside.name}: a link out of {drop}: not read, moved or deleted" in \
        result.stderr.splitlines(), result.stderr
    assert {ref.dataId["visit"] for ref in datasets(pfs_repo)} == {22}


def test_read_only_repository_is_one_line_naming_it(pfs_repo, tmp_path):
    write_raw(tmp_path / "d", visit=12)
    for path in [pfs_repo, *pfs_repo.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        result = pfswatchd("ingest-raws", pfs_repo, tmp_path / "d", prefix=obeying_file_modes())
    finally:
        for path in [pfs_repo, *pfs_repo.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"pfswatchd: {pfs_repo}: the repository is not writable by user ")
    assert "ask its owner for write access" in line and "SQL" not in line


# -- reasons and counts ------------------------------------------------------------------------


def test_every_skipped_file_gets_a_reason(pfs_repo, tmp_path):
    odd = tmp_path / "PFSZ00010011.fits"
    odd.write_bytes(b"SIMPLE  =                    T" + b" " * 2850)
    config = write_config(tmp_path / "c", visit=5)
    result = pfswatchd("ingest-raws", pfs_repo, odd, config, check=0)
    lines = result.stderr.splitlines()
    assert f"SKIPPED {odd}: PFSZ is not a PFS file category pfswatchd knows (A, B: raw frames; F: pfsConfig; " \
        "C, D: metrology and guider frames); not ingested" in lines
    assert f"SKIPPED {config}: a pfsConfig file; this command does not ingest it (use ingest-pfsconfig)" in lines
    # Found in a folder: one line per kind, not one per file.
    make_visits(tmp_path / "d", visits=3, spectrographs=(1,))
    result = pfswatchd("ingest-pfsconfig", pfs_repo, "PFS", "PFS/raw/pfsConfig", tmp_path / "d", check=3)
    skipped = [line for line in result.stderr.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 2 and all(re.match(r"SKIPPED \d+ files like ", line) for line in skipped)


def test_failure_lines_name_the_file_once_and_fail_fast_says_what_it_left(pfs_repo, tmp_path):
    bad = tmp_path / "d" / "a" / "PFSA00010011.fits"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a FITS file at all" * 200)
    for visit in (2, 3, 4):
        write_raw(tmp_path / "d" / "b", visit=visit)
    result = pfswatchd("ingest-raws", pfs_repo, tmp_path / "d", "--fail-fast", check=1)
    [failed] = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert failed.startswith(f"FAILED {bad}: [not_fits] ") and failed.count(bad.name) == 1, failed
    assert "pfswatchd: --fail-fast stopped at the first failure: 3 files not examined, 0 examined but not " \
        "written" in result.stderr
    assert result.stdout.strip().endswith("1 failed, 3 not written (--fail-fast)")


# -- progress ------------------------------------------------------------------------------------


def _on_a_terminal(args, env, timeout=120.0) -> tuple[int, str]:
    """Run a command with stdout and stderr on a pseudo-terminal; its exit status and everything it drew."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the command closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=30), screen.decode(errors="replace")


def test_progress_on_a_terminal_shows_files_megabytes_rate_and_time_left(pfs_repo, tmp_path):
    make_visits(tmp_path / "d", visits=5, spectrographs=(1, 2))  # 30 raws
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm", "PFSWATCHD_FAULT": "oneshot.examined",
           "PFSWATCHD_FAULT_MARKER": str(tmp_path / "paused"), "PFSWATCHD_FAULT_SECONDS": "1"}
    night = tmp_path / "d" / "raw" / "2025-05-01"
    code, screen = _on_a_terminal([str(BIN / "pfswatchd"), "ingest-raws", str(pfs_repo), str(night / "sps"),
                                   str(night / "ramps")], env)
    assert code == 0, screen
    plain = re.sub(r"\x1b\[[0-9;]*m", "", screen)  # colours off, then cursor moves and \r end a frame line
    frames = re.split(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n", plain)
    examine = [line for line in frames if line.strip().startswith("examine")]
    ingest = [line for line in frames if line.strip().startswith("ingest")]
    # While the first file was being examined (the fault point holds it for a second), the bar showed it.
    assert any(" 1/30 files" in line for line in examine), examine
    assert any("30/30 files" in line for line in examine)
    assert any(" 0/30 files" in line for line in ingest) and any("30/30 files" in line for line in ingest), ingest
    final = ingest[-1]
    assert re.search(r"\d+(\.\d+)?/\d+(\.\d+)? [kM]B", final) and re.search(r"[kM]B/s", final), final
    assert re.search(r"\d+:\d\d:\d\d|-:--:--", final), final  # time left
    assert "30 files: 30 ingested" in screen


def test_no_progress_when_not_on_a_terminal(pfs_repo, tmp_path):
    make_visits(tmp_path / "d", visits=4, spectrographs=(1, 2))
    night = tmp_path / "d" / "raw" / "2025-05-01"
    result = pfswatchd("ingest-raws", pfs_repo, night / "sps", night / "ramps", check=0)
    assert result.stderr == "" and result.stdout.strip().startswith("24 files: 24 ingested")


# -- streaming: PATH arguments walked lazily, batches ingested as they fill (in-process) -------------


def _tree(base):
    for name in ("a/x.fits", "a/y.fits", "a/sub/z.fits", "b/w.fits", "a/notes.txt", "a/.hidden/h.fits"):
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return base


def _names(named, base):
    return [os.path.relpath(os.path.abspath(p), base) for p, _ in named]


def test_overlapping_arguments_give_each_file_once(tmp_path, monkeypatch):
    """PATH arguments are walked lazily; the paths already given are remembered only when arguments overlap."""
    base = _tree(tmp_path)
    arguments = [str(base / "a" / "x.fits"), str(base / "a"), str(base / "a" / "**" / "*.fits"), str(base / "b")]
    assert sorted(_names(oneshot.iter_paths(arguments), base)) == ["a/sub/z.fits", "a/x.fits", "a/y.fits",
                                                                     "b/w.fits"]
    monkeypatch.chdir(base)
    assert _names(oneshot.iter_paths(["a", "b/w.fits"]), base) == ["a/x.fits", "a/y.fits", "a/sub/z.fits",
                                                                   "b/w.fits"]


def test_paths_are_streamed_and_checked_first(tmp_path):
    base = _tree(tmp_path)
    stream = oneshot.iter_paths([str(base / "a"), str(base / "missing")])
    assert next(stream)[0].name == "x.fits"  # given before the later argument is even looked at
    with pytest.raises(oneshot.PathError, match="missing: no such file or directory"):
        oneshot.check_paths([str(base / "a"), str(base / "missing")])
    with pytest.raises(oneshot.PathError, match=r"\*\.fit: the pattern matches no file"):
        oneshot.check_paths([str(base / "a" / "*.fit")])
    oneshot.check_paths([str(base / "a" / "*.fits"), str(base / "b")])


def test_each_batch_is_written_before_later_files_are_examined(tmp_path, monkeypatch):
    """Batches of 2: the first batch's registry commit (held at the fault point ingest.registered)
    comes before the third file is examined, so only a batch is ever held (the command used to examine
    every file first, and hold them all: ~3 KiB each, 6.6 GiB for a year in one call)."""
    monkeypatch.setattr(oneshot, "BATCH", 2)
    root = tmp_path / "repo"
    repo.create(root).close()
    data = tmp_path / "data"
    write_raw(data, visit=601, arm="b")
    write_raw(data, visit=601, arm="r")
    (data / "PFSA00060211.fits").write_bytes(b"not a FITS file" * 200)  # sorted last: examined last
    marker = tmp_path / "held"
    monkeypatch.setenv("PFSWATCHD_FAULT", "ingest.registered")
    monkeypatch.setenv("PFSWATCHD_FAULT_MARKER", str(marker))
    monkeypatch.setenv("PFSWATCHD_FAULT_SECONDS", "3")
    err, out = io.StringIO(), io.StringIO()
    seen_while_held: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_while_held.append(err.getvalue())

    watcher = threading.Thread(target=watch)
    watcher.start()
    status = oneshot.run_ingest(str(root), [str(data)], accept=frozenset({FileKind.RAW_CCD, FileKind.RAW_NIR}),
                                settings=IngestSettings(transfer="link"), out=out, err=err)
    watcher.join()
    assert marker.exists() and seen_while_held == [""]  # the bad third file was not examined yet
    assert "FAILED" in err.getvalue() and "PFSA00060211.fits" in err.getvalue()
    assert status == 1 and out.getvalue().startswith("3 files: 2 ingested")
