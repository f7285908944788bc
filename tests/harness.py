"""Run the real service as a subprocess, as systemd would, and observe it.

The harness listens on a NOTIFY_SOCKET of its own, so tests wait for READY=1
exactly as systemd does, and it reads state through `pfswatchd status --json`
and the butler, never through the service's memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsst.daf.butler import Butler

from pfswatchd import fakedata
from pfswatchd.state import status
from pfswatchd.state.ledger import Ledger

BIN = Path(sys.executable).parent
RUNNING: list[Daemon] = []  # killed by the autouse fixture in conftest.py when a test ends


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


class Daemon:
    """One pfswatchd service in a temporary folder: incoming/, repo/, state/, quarantine/."""

    def __init__(self, base: Path, **sections: dict[str, Any]) -> None:
        self.base = base
        self.quarantine = base / "quarantine"
        self.config_path = base / "pfswatchd.toml"
        self.log_path = base / "service.log"
        settings: dict[str, dict[str, Any]] = {
            "repository": {"root": "repo"},
            "watch": {"paths": ["incoming"], "settle_seconds": 0.5, "rescan_interval": 30.0},
            "ingest": {"transfer": "link", "retry_initial": 0.2},
            "state": {"path": "state"},
            "quarantine": {"policy": "move", "path": "quarantine"},
            "log": {"format": "json", "level": "info"},
        }
        for name, values in sections.items():
            settings.setdefault(name, {}).update(values)
        self.settings = settings
        self.repo = base / settings["repository"]["root"]
        self.incoming = base / settings["watch"]["paths"][0]
        self.ledger_url = settings["state"].get("url") or f"sqlite:///{base / 'state' / 'ledger.sqlite3'}"
        self.incoming.mkdir(parents=True, exist_ok=True)
        base.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.process: subprocess.Popen[bytes] | None = None
        self.notify: socket.socket | None = None
        self.messages: list[str] = []

    def write_config(self) -> None:
        lines = []
        for name, values in self.settings.items():
            lines.append(f"[{name}]")
            lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items()
                         if not isinstance(value, dict))
            for key, table in values.items():
                if isinstance(table, dict):
                    lines.append(f"[{name}.{key}]")
                    lines.extend(f"{k} = {toml_value(v)}" for k, v in table.items())
        self.config_path.write_text("\n".join(lines) + "\n")

    # -- process ---------------------------------------------------------------------------------

    def start(self, *, wait_ready: bool = True, env: dict[str, str] | None = None,
              prefix: list[str] | None = None, new_session: bool = False) -> Daemon:
        """Start the service; with ``new_session`` in a process group of its own, as a terminal's
        foreground job is (``interrupt`` then sends SIGINT to the whole group, like Ctrl-C)."""
        address = str(self.base / "notify.sock")
        if os.path.exists(address):
            os.unlink(address)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(address)
        self.notify.settimeout(0.2)
        self.messages = []
        environment = {**os.environ, "NOTIFY_SOCKET": address, **(env or {})}
        command = [*(prefix or []), str(BIN / "pfswatchd"), "run", "--config", str(self.config_path)]
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment,
                                            start_new_session=new_session)
        RUNNING.append(self)
        if wait_ready:
            self.wait_notify("READY=1", timeout=90)
        return self

    def wait_notify(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if text in message:
                    return message
            self.poll_notify()
            if self.process is not None and self.process.poll() is not None and not any(
                    text in m for m in self.messages):
                raise AssertionError(f"service exited ({self.process.returncode}) before {text}:\n{self.log()}")
        raise AssertionError(f"no {text} within {timeout}s; got {self.messages}\n{self.log()[-3000:]}")

    def poll_notify(self) -> None:
        assert self.notify is not None
        with contextlib.suppress(TimeoutError):
            self.messages.append(self.notify.recv(4096).decode())

    def drain_notify(self) -> None:
        """Read what the service has sent so far, without waiting, as systemd keeps reading (the socket's
        queue holds 10 datagrams; the service drops its periodic ones while it is full)."""
        if self.notify is None:
            return
        while True:
            try:
                self.messages.append(self.notify.recv(4096, socket.MSG_DONTWAIT).decode())
            except (BlockingIOError, TimeoutError):
                return

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self._close()
        self._say_why(code)
        return code

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C: SIGINT to the service's process group (examiner workers and fork server included)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=timeout)
        self._close()
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)
        self._close()

    def cleanup(self) -> None:
        """Kill the service if a test left it running (after a failure)."""
        if self.alive():
            self.kill()
        self._close()

    def _say_why(self, code: int) -> None:
        """A stop that did not end with status 0: the log's last lines go to stderr, which pytest shows
        with the failure (CI keeps nothing else of the service's run)."""
        if code != 0:
            print(f"service exited with status {code}; the last lines of its log:\n{self.log()[-4000:]}",
                  file=sys.stderr)

    def _close(self) -> None:
        if self.notify is not None:
            self.notify.close()
            self.notify = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        result = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if name is None or event.get("event") == name:
                    result.append(event)
        return result

    # -- observing -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """`pfswatchd status --json`, run as an operator would."""
        result = subprocess.run([str(BIN / "pfswatchd"), "status", "--json", "--config", str(self.config_path)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def quick_status(self) -> dict[str, Any]:
        """The same object, read in-process (for polling loops)."""
        ledger = Ledger(self.ledger_url)
        try:
            return status.collect(ledger)
        finally:
            ledger.close()

    def wait_until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60,
                   what: str = "condition") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if not self.ledger_url.startswith("sqlite") or (self.base / "state" / "ledger.sqlite3").exists():
                try:
                    last = self.quick_status()
                except Exception:
                    last = {}
                if last and predicate(last):
                    return last
            if self.process is not None and self.process.poll() is not None:
                break
            self.drain_notify()
            time.sleep(0.1)
        counts = last.get("counts")
        raise AssertionError(f"{what} not reached within {timeout}s: counts {counts}\n{self.log()[-4000:]}")

    def wait_files(self, state: str, count: int, timeout: float = 60) -> dict[str, Any]:
        return self.wait_until(lambda s: s["counts"].get(state, 0) >= count, timeout,
                               what=f"{count} files {state}")

    def datasets(self, dataset_type: str = "raw", collections: str = "PFS/defaults") -> list[Any]:
        with Butler.from_config(str(self.repo), collections=collections) as butler:
            return butler.query_datasets(dataset_type, collections=collections, find_first=False, limit=None,
                                         explain=False)


def burst_files(folder: Path, templates_folder: Path, count: int, first_visit: int = 1000) -> list[Path]:
    """``count`` distinct raws (4 spectrographs x b, r, n per visit) cloned from templates."""
    return fakedata.clone_burst(folder, count, first_visit, templates_folder)


def drop(path: Path, incoming: Path, name: str | None = None) -> Path:
    """Put a file into the watched folder the safe way: write a temporary name, then rename."""
    target = incoming / (name or path.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(target.name + ".part")
    temp.write_bytes(path.read_bytes())
    os.rename(temp, target)
    return target


def obeying_file_modes() -> list[str]:
    """A command prefix under which even root is refused by file mode bits (for permission tests)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
