"""Kernel copies (copy_file_range, sendfile, the portable loop) and the byte comparison, and the copying
transfers built on them: a copy, and a move from another filesystem (a tmpfs), into a real repository."""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from conftest import classified, make_ingester, write_raw
from pfswatchd.butler import filecopy
from pfswatchd.model import Status


@pytest.fixture()
def small_blocks(monkeypatch):
    """Several blocks (and mapped windows) and a partial last one, in a small file."""
    monkeypatch.setattr(filecopy, "BLOCK", 4096)
    monkeypatch.setattr(filecopy, "WINDOW", mmap.ALLOCATIONGRANULARITY)


def _copy(source: Path, dest: Path, how) -> None:
    with open(source, "rb", buffering=0) as src, open(dest, "xb", buffering=0) as out:
        how(src.fileno(), out.fileno())


@pytest.mark.parametrize("how", ["copy_data", "copy_file_range", "sendfile", "loop"])
def test_every_way_copies_every_byte(tmp_path, small_blocks, how):
    data = os.urandom(5 * 4096 + 123)
    source = tmp_path / "source"
    source.write_bytes(data)
    ways = {"copy_data": filecopy.copy_data, "loop": filecopy._loop_copy,
            "copy_file_range": lambda s, d: filecopy._kernel_copy(os.copy_file_range, s, d),
            "sendfile": lambda s, d: filecopy._kernel_copy(filecopy._sendfile, s, d)}
    _copy(source, tmp_path / "copy", ways[how])
    assert (tmp_path / "copy").read_bytes() == data


def test_across_filesystems_the_kernel_still_copies(tmp_path, small_blocks):
    data = os.urandom(3 * 4096 + 7)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:  # tmpfs: another filesystem than tmp_path
        source = Path(shm) / "source"
        source.write_bytes(data)
        assert os.stat(shm).st_dev != os.stat(tmp_path).st_dev
        _copy(source, tmp_path / "copy", filecopy.copy_data)
    assert (tmp_path / "copy").read_bytes() == data


def test_without_kernel_copies_the_loop_is_used(tmp_path, small_blocks, monkeypatch):
    """macOS and the BSDs have neither copy_file_range nor a file-to-file sendfile."""
    monkeypatch.delattr(os, "copy_file_range", raising=False)
    monkeypatch.setattr(filecopy.sys, "platform", "darwin")
    monkeypatch.setattr(filecopy, "_sendfile", None)  # would fail if it were called
    data = os.urandom(2 * 4096 + 1)
    (tmp_path / "source").write_bytes(data)
    _copy(tmp_path / "source", tmp_path / "copy", filecopy.copy_data)
    assert (tmp_path / "copy").read_bytes() == data


@pytest.mark.parametrize("way", ["mapped", "read"])
def test_same_bytes_compares_every_block(tmp_path, small_blocks, monkeypatch, way):
    assert filecopy._MEMCMP is not None  # ctypes reaches the C library's memcmp here
    if way == "read":  # where files cannot be mapped, or ctypes cannot reach memcmp
        monkeypatch.setattr(filecopy, "_MEMCMP", None)
    data = os.urandom(4 * mmap.ALLOCATIONGRANULARITY + 10)
    first = tmp_path / "first"
    first.write_bytes(data)
    cases = {"same": data, "last byte": data[:-1] + bytes([data[-1] ^ 1]),
             "middle block": data[:6000] + bytes([data[6000] ^ 1]) + data[6001:], "shorter": data[:-1],
             "block boundary": data[:4096] + bytes([data[4096] ^ 1]) + data[4097:], "empty": b""}
    results = {}
    for name, content in cases.items():
        other = tmp_path / name
        other.write_bytes(content)
        results[name] = filecopy.same_bytes(first, other)
    assert results == {"same": True, "last byte": False, "middle block": False, "shorter": False,
                       "block boundary": False, "empty": False}
    (tmp_path / "nothing").write_bytes(b"")
    assert filecopy.same_bytes(tmp_path / "empty", tmp_path / "nothing")


def test_copy_and_move_from_another_filesystem_into_a_repository(butler, pfs_repo, tmp_path):
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        copied = write_raw(Path(shm), visit=900, arm="b")
        moved = write_raw(Path(shm), visit=900, arm="r")
        data = {copied: copied.read_bytes(), moved: moved.read_bytes()}
        [one] = make_ingester(butler, pfs_repo, transfer="copy").ingest(classified(copied))
        [two] = make_ingester(butler, pfs_repo, transfer="move").ingest(classified(moved))
        assert (one.status, two.status) == (Status.INGESTED, Status.INGESTED)
        assert copied.exists() and not moved.exists()  # a move unlinks its source after the commit
    with Butler.from_config(str(pfs_repo), collections="PFS/raw/all") as reader:
        for outcome, source in ((one, copied), (two, moved)):
            ref = reader.get_dataset(outcome.dataset_id)
            stored = Path(reader.getURI(ref).ospath)
            assert stored.read_bytes() == data[source] and os.stat(stored).st_nlink == 1
    assert list((pfs_repo / ".pfswatchd-tmp").iterdir()) == []  # no temporary copy left


def test_folders_made_are_remembered_by_name_a_bounded_number_and_made_again_when_removed(tmp_path, monkeypatch):
    """The service makes a datastore folder per visit: it remembers the most recent ones as text
    (a Path keeps its parts too, ~1 KiB each), and one removed since is made again."""
    import shutil

    from cachetools import LRUCache

    from pfswatchd.butler import transfer

    monkeypatch.setattr(transfer, "_made", LRUCache(maxsize=3))
    root = tmp_path / "datastore"
    root.mkdir()
    source = tmp_path / "a.fits"
    source.write_bytes(b"x" * 2880)
    for visit in range(5):
        transfer.place(source, root / f"v{visit}" / "a.fits", "link", datastore_root=root)
    assert list(transfer._made) == [str(root / f"v{visit}") for visit in (2, 3, 4)]
    shutil.rmtree(root / "v4")
    transfer.place(source, root / "v4" / "a.fits", "link", datastore_root=root)
    assert (root / "v4" / "a.fits").read_bytes() == source.read_bytes()
