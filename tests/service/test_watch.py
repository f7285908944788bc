"""Watching on other platforms: the service where Linux-only pieces are missing (tests/macos.py)."""

from __future__ import annotations

import io
import os
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import write_raw
from harness import Daemon, drop

MACOS = Path(__file__).resolve().parents[1] / "macos.py"


def _plain_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:  # uncompressed: extracted with copy_file_range on Linux
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("platform", ["no native events", "fsevents"])
def test_native_mode_without_inotify_or_copy_file_range(tmp_path, platform):
    """As on macOS: native mode starts (FSEvents, or polling with a warning), a plain .tar is extracted
    without copy_file_range, and files seen through a linked folder have one ledger row, under the path
    as configured."""
    base = tmp_path / "svc"
    (tmp_path / "real-incoming").mkdir()
    base.mkdir()
    (base / "incoming").symlink_to(tmp_path / "real-incoming")  # like /tmp -> /private/tmp
    daemon = Daemon(base, watch={"mode": "native", "poll_interval": 0.2, "rescan_interval": 3600.0},
                    archives={"extract_to": "extracted"})
    flags = ["--fsevents"] if platform == "fsevents" else []
    daemon.start(prefix=[sys.executable, str(MACOS), *flags])
    if platform == "fsevents":
        assert daemon.events("watch_native_unavailable") == []
    else:
        [warning] = daemon.events("watch_native_unavailable")
        assert "polling every 0.2 s" in warning["reason"]
    raw = drop(write_raw(tmp_path / "src", visit=410), daemon.incoming)
    source = write_raw(tmp_path / "src", visit=411)
    archive = _plain_tar(tmp_path / "night.tar", {f"sps/{source.name}": source.read_bytes()})
    os.rename(archive, daemon.incoming / archive.name)
    status = daemon.wait_files("ingested", 2, timeout=60)
    assert sorted(f["path"] for f in status["files"] if f["state"] == "ingested") == sorted(
        [str(raw), str(base / "extracted" / "night" / "sps" / source.name)])
    assert len(status["files"]) == 2, status["files"]  # not a second row under the real path
    assert [a["state"] for a in status["archives"]] == ["done"]
    assert "Traceback" not in daemon.log()
    assert daemon.stop() == 0
