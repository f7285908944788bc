"""A configuration that cannot work: refused by check-config and run (78), and by a reload, which keeps
the configuration that was running (issue 12, item 8)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from conftest import write_raw
from harness import BIN, Daemon, drop


@pytest.fixture()
def daemon(tmp_path):
    return Daemon(tmp_path / "svc")


def _wait_event(daemon: Daemon, name: str, count: int = 1, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = daemon.events(name)
        if len(events) >= count:
            return events
        time.sleep(0.1)
    raise AssertionError(f"no {name} within {timeout}s:\n{daemon.log()[-3000:]}")


@pytest.mark.parametrize("where", ["under", "is"])
def test_a_reload_that_cannot_be_applied_is_refused_and_the_old_configuration_keeps_running(daemon, tmp_path,
                                                                                           where):
    """SIGHUP with a watch path that is, or lies under, a regular file: one reload_failed line naming it,
    the service goes on running and ingesting from the folders it watched, and exits 0 when stopped."""
    daemon.start()
    plain = daemon.base / "plain"
    plain.write_text("a regular file\n")
    bad = "plain/sub/deeper" if where == "under" else "plain"
    daemon.settings["watch"]["paths"] = ["incoming", bad]
    daemon.write_config()
    daemon.process.send_signal(signal.SIGHUP)
    [refused] = _wait_event(daemon, "reload_failed")
    assert "\n" not in refused["reason"] and str(plain) in refused["reason"], refused
    assert "regular file" in refused["reason"] and "watch.paths" in refused["reason"], refused
    assert not daemon.events("config_reloaded")
    drop(write_raw(tmp_path / "src", visit=820), daemon.incoming)
    daemon.wait_files("ingested", 1, timeout=60)
    assert daemon.alive()
    daemon.wait_notify("READY=1")
    # The state folder is kept across reloads, so a bad one there is refused as well, and the service is
    # still there afterwards.
    daemon.settings["watch"]["paths"] = ["incoming"]
    daemon.settings["quarantine"]["path"] = "plain/quarantine"
    daemon.write_config()
    daemon.process.send_signal(signal.SIGHUP)
    refusals = _wait_event(daemon, "reload_failed", 2)
    assert "quarantine.path" in refusals[1]["reason"]
    drop(write_raw(tmp_path / "src", visit=821), daemon.incoming)
    daemon.wait_files("ingested", 2, timeout=60)
    assert daemon.stop() == 0
    assert [e["exit_code"] for e in daemon.events("service_stopped")] == [0]


def _config(tmp_path, watch: str, **extra: str):
    plain = tmp_path / "plain"
    plain.write_text("a regular file\n")
    lines = ["[repository]", 'root = "repo"', "[watch]", f"paths = [{watch!r}]".replace("'", '"'),
             "[state]", f'path = "{extra.get("state", "state")}"', "[log]", 'format = "json"']
    path = tmp_path / "pfswatchd.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("watch", "state", "key"), [
    ("plain/sub", "state", "watch.paths entry"),
    ("plain", "state", "watch.paths entry"),
    ("incoming", "plain/state", "state.path"),
])
def test_check_config_and_run_refuse_a_folder_under_a_regular_file(tmp_path, watch, state, key):
    """check-config and run exit 78 with one line naming the key, the path and the regular file."""
    path = _config(tmp_path, watch, state=state)
    for command in (["check-config", str(path)], ["run", "--config", str(path)]):
        result = subprocess.run([str(BIN / "pfswatchd"), *command], capture_output=True, text=True, timeout=120)
        assert result.returncode == 78, (command, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and key in lines[0] and str(tmp_path / "plain") in lines[0], lines
        assert "regular file" in lines[0] and "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "repo").exists()


def test_check_config_accepts_folders_that_run_would_create(tmp_path):
    """A watch path that does not exist yet is fine: run creates it (mkdir -p)."""
    path = _config(tmp_path, "not/yet/there")
    result = subprocess.run([str(BIN / "pfswatchd"), "check-config", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "not").exists()  # checking creates nothing


def test_a_configuration_error_at_startup_is_logged_with_the_real_exit_code(tmp_path):
    """No repository and repository.create = false: run exits 78, and the log says 78, not 0."""
    service = Daemon(tmp_path / "svc", repository={"root": "repo", "create": False})
    service.start(wait_ready=False)
    assert service.process.wait(timeout=120) == 78
    stopped = service.events("service_stopped")
    assert [e["exit_code"] for e in stopped] == [78], service.log()[-3000:]
    [failed] = service.events("service_failed")
    assert "repository.create" in failed["reason"] and failed["exit_code"] == 78
