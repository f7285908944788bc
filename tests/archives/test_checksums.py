"""Checksum sidecars: single-file sidecars, md5sum/sha256sum lists, STARS-style lists."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pfswatchd.archives.checksums import hash_file, read_sidecar, verify_tree
from pfswatchd.errors import ChecksumMismatchError, ErrorKind
from pfswatchd.files.names import is_checksum_name


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_sidecar_match(tmp_path: Path) -> None:
    """A bare md5 in <file>.md5 that matches gives one ok result."""
    (tmp_path / "PFSA00000111.fits").write_bytes(b"pixels")
    (tmp_path / "PFSA00000111.fits.md5").write_text(md5(b"pixels") + "\n")
    report = verify_tree(tmp_path)
    assert [("ok", tmp_path / "PFSA00000111.fits", "md5")] == [
        (r.status, r.path, r.algorithm) for r in report.results
    ]
    assert frozenset() == report.failed_paths


def test_sidecar_mismatch_names_the_file_and_both_sums(tmp_path: Path) -> None:
    """A wrong sha256 is a mismatch; its one-line message names the file and both sums."""
    (tmp_path / "PFSB00000112.fits").write_bytes(b"ramp")
    wrong = sha256(b"other")
    (tmp_path / "PFSB00000112.fits.sha256").write_text(f"{wrong.upper()}  PFSB00000112.fits\n")
    report = verify_tree(tmp_path)
    (result,) = report.mismatched
    error = result.error
    assert isinstance(error, ChecksumMismatchError) and error.kind == ErrorKind.CHECKSUM_MISMATCH
    message = str(error)
    assert "PFSB00000112.fits" in message and wrong in message and sha256(b"ramp") in message
    assert "\n" not in message
    assert frozenset({tmp_path / "PFSB00000112.fits"}) == report.failed_paths


def test_md5sum_list_file(tmp_path: Path) -> None:
    """MD5SUMS lines in text and binary style are checked; a listed file that is absent is only recorded."""
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/a.fits").write_bytes(b"a")
    (tmp_path / "raw/b.fits").write_bytes(b"b")
    (tmp_path / "MD5SUMS").write_text(
        f"{md5(b'a')}  raw/a.fits\n{md5(b'x')} *raw/b.fits\n{md5(b'c')}  raw/c.fits\nnot a checksum line\n"
    )
    report = verify_tree(tmp_path)
    statuses = {r.path.relative_to(tmp_path).as_posix(): r.status for r in report.results}
    assert statuses == {"raw/a.fits": "ok", "raw/b.fits": "mismatch", "raw/c.fits": "missing"}
    assert None is report.missing[0].error


def test_stars_style_list_with_urls(tmp_path: Path) -> None:
    """A 0_list_* file mixing wget URLs and checksum lines: only the checksum lines count."""
    (tmp_path / "HSCA001.fits").write_bytes(b"frame")
    (tmp_path / "0_list_20250101").write_text(
        f"https://stars2.naoj.hawaii.edu/fetch/HSCA001.fits\n{md5(b'frame')}  HSCA001.fits\n"
    )
    report = verify_tree(tmp_path)
    assert [r.status for r in report.results] == ["ok"]


def test_list_of_several_lines_in_an_md5_file(tmp_path: Path) -> None:
    """A STARS-style *.md5 that lists several files checks each of them."""
    for name in ("a.fits", "b.fits"):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "frames.md5").write_text(f"{md5(b'a.fits')}  a.fits\n{md5(b'b.fits')}  b.fits\n")
    assert [r.status for r in verify_tree(tmp_path).results] == ["ok", "ok"]


def test_absolute_or_escaping_names_are_looked_up_next_to_the_sidecar(tmp_path: Path) -> None:
    """A name that leaves the tree is read as its base name beside the sidecar; nothing outside is read."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tmp_path / "secret.fits").write_bytes(b"outside")
    (tree / "x.fits").write_bytes(b"inside")
    (tree / "SHA256SUMS").write_text(
        f"{sha256(b'inside')}  /data/somewhere/x.fits\n{sha256(b'outside')}  ../secret.fits\n"
    )
    report = verify_tree(tree)
    assert [("ok", tree / "x.fits"), ("missing", tree / "secret.fits")] == [
        (r.status, r.path) for r in report.results
    ]


def test_each_file_is_hashed_once_per_algorithm(tmp_path: Path) -> None:
    """Two sidecars listing the same file agree on its digest."""
    (tmp_path / "a.fits").write_bytes(b"a")
    (tmp_path / "a.fits.md5").write_text(md5(b"a"))
    (tmp_path / "MD5SUMS").write_text(f"{md5(b'a')}  a.fits\n")
    results = verify_tree(tmp_path).results
    assert len(results) == 2 and {md5(b"a")} == {r.actual for r in results}


def test_read_sidecar_handles_escaped_names(tmp_path: Path) -> None:
    """md5sum escapes a backslash or newline in a name with a leading backslash."""
    sidecar = tmp_path / "MD5SUMS"
    sidecar.write_text("\\" + md5(b"x") + "  odd\\\\name\\nline\n")
    assert [("md5", md5(b"x"), "odd\\name\nline")] == read_sidecar(sidecar)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.fits.md5", True),
        ("a.SHA256", True),
        ("MD5SUMS", True),
        ("SHA256SUMS", True),
        ("x.md5sum", True),
        ("0_list_20250101", True),
        ("a.fits", False),
        ("md5.txt", False),
    ],
)
def test_sidecar_names(name: str, expected: bool) -> None:
    """Which names are read as sidecars."""
    assert expected == is_checksum_name(name)


def test_hash_file_reads_large_files_in_chunks(tmp_path: Path) -> None:
    """hash_file agrees with hashlib on a file larger than one read."""
    data = bytes(range(256)) * 40_000
    (tmp_path / "big").write_bytes(data)
    assert hashlib.sha256(data).hexdigest() == hash_file(tmp_path / "big", "sha256")
