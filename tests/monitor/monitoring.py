"""Helpers for the monitor's service tests: fake visits by camera, the endpoint's address, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from harness import BIN, Daemon
from pfswatchd import fakedata
from pfswatchd.files.names import parse_name

FAST = {"interval": 0.3}


def visit(src: Path, number: int, arms: tuple[str, ...] = ("b", "r")) -> dict[str, Path]:
    """One fake visit (spectrograph 1): {"pfsConfig": path, "b1": path, ...}, not yet in the watched folder."""
    written = fakedata.make_visits(src / str(number), visits=1, first_visit=number, spectrographs=(1,), arms=arms)
    out = {}
    for path in written:
        name = parse_name(path)
        out["pfsConfig" if name.arm is None else f"{name.arm}{name.spectrograph}"] = path
    return out


def design_of(config: Path) -> int:
    design = parse_name(config).pfs_design_id
    assert design is not None
    return design


def bad_header(files: dict[str, Path], camera: str, number: int) -> Path:
    """Rewrite one camera's raw without W_ENFCAZ (a bad_header failure)."""
    arm, spectrograph = camera[0], int(camera[1])
    return fakedata.write_pfsa(files[camera], visit=number, spectrograph=spectrograph, arm=arm,
                               pfs_design_id=design_of(files["pfsConfig"]), drop_cards=["W_ENFCAZ"])


def drop(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    temp = target.with_name(target.name + ".part")
    temp.write_bytes(path.read_bytes())
    os.rename(temp, target)
    return target


def port(daemon: Daemon) -> int:
    events = daemon.events("http_listening")
    assert events, daemon.log()[-2000:]
    return int(events[-1]["port"])


def get(daemon: Daemon, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port(daemon)}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def cli_status(daemon: Daemon, *args: str) -> str:
    result = subprocess.run([str(BIN / "pfswatchd"), "status", "--config", str(daemon.config_path), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def visits(daemon: Daemon) -> dict[int, dict[str, Any]]:
    data = json.loads(cli_status(daemon, "--visits", "--json"))
    return {item["visit"]: item for item in data["visits"]}


def wait_event(daemon: Daemon, name: str, timeout: float = 60, **fields: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in daemon.events(name):
            if all(event.get(k) == v for k, v in fields.items()):
                return event
        assert daemon.alive(), daemon.log()[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"no {name} {fields} within {timeout}s\n{daemon.log()[-3000:]}")
