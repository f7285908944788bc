"""Safe extraction: a hostile-tarball corpus, limits, corrupt and partial archives, nesting, publishing."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from pfswatchd.archives.staging import remove_tree
from pfswatchd.archives.tarstream import MemberWriter as _Writer  # the O_NOFOLLOW layer is tested on its own below
from pfswatchd.archives.unpack import (
    STAGING_DIR_NAME,
    PublishConflictError,
    UnpackLimits,
    archive_complete,
    archive_stem,
    extract,
    is_archive_name,
    publish,
    unpack,
)
from pfswatchd.errors import (
    ArchiveLimitError,
    ConflictError,
    CorruptArchiveError,
    ErrorKind,
    UnsafeArchiveError,
)

WRITE_MODES = {"tar": "w", "tar.gz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}


def entry(
    name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, link, mode, 1_700_000_000
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def make_tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes]], suffix: str = "tar") -> Path:
    """Write ``entries`` exactly as given (tarfile.addfile keeps absolute names and '..')."""
    path = path.with_name(f"{path.name}.{suffix}")
    with tarfile.open(path, WRITE_MODES[suffix], format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def listing(root: Path) -> set[str]:
    """Every path under ``root`` (links not followed), with file contents for regular files."""
    found = set()
    for folder, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(folder, name)
            content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            found.add(f"{path.relative_to(root)}:{len(content)}:{zlib.crc32(content)}")
    return found


def zero_bomb(path: Path, header: bytes, zeros: int) -> Path:
    """A gzip file of ``header`` then ``zeros`` zero bytes, built without compressing them all.

    After a full flush, deflate output for a MiB of zeros is the same bytes every time, so the middle of
    the stream is one compressed unit repeated; the gzip header and trailer are written by hand.
    """
    mib = bytes(2**20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    unit = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert unit == compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header)
    with open(path, "wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03" + head + unit + unit)
        for _ in range(zeros // 2**20 - 2):
            out.write(unit)
        out.write(compressor.compress(bytes(zeros % 2**20)) + compressor.flush())
        for _ in range(zeros // 2**20):
            crc = zlib.crc32(mib, crc)
        crc = zlib.crc32(bytes(zeros % 2**20), crc)
        out.write(struct.pack("<II", crc, (len(header) + zeros) & 0xFFFFFFFF))
    return path


def tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.USTAR_FORMAT)


@pytest.fixture(params=["tar", "tar.gz"])
def suffix(request: pytest.FixtureRequest) -> str:
    """Uncompressed tars are checked header-first; compressed ones member by member: test both."""
    return str(request.param)


# --- names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("S2Query.tar", True),
        ("a.tar.gz", True),
        ("a.TGZ", True),
        ("a.tar.bz2", True),
        ("a.tbz2", True),
        ("a.tar.xz", True),
        ("a.txz", True),
        ("a.fits", False),
        ("a.gz", False),
        (".tar", False),
        ("tar", False),
    ],
)
def test_is_archive_name(name: str, expected: bool) -> None:
    """Only the tar extensions count, in any case, and a bare extension is not a name."""
    assert expected == is_archive_name(name)


def test_archive_stem_drops_the_whole_extension() -> None:
    """The publish folder is the name without .tar.gz, not without .gz only."""
    assert [archive_stem(n) for n in ("S2Query.tar", "x.y.tar.gz", "b.txz")] == ["S2Query", "x.y", "b"]


# --- the hostile corpus --------------------------------------------------------------------------------

HOSTILE = {  # case: (members after a harmless first one, what the refusal must say)
    "absolute path": (lambda tmp: [entry(str(tmp / "abs-escape.txt"), b"x")], "is an absolute path"),
    "dot-dot escape": (lambda tmp: [entry("../escape.txt", b"x")], "has a '..' component"),
    "dot-dot inside a path": (
        lambda tmp: [entry("a/b.txt", b"x"), entry("a/../../escape.txt", b"x")],
        "has a '..' component",
    ),
    "symlink to /etc/passwd": (
        lambda tmp: [entry("passwd", kind=tarfile.SYMTYPE, link="/etc/passwd")],
        "is a symlink to '/etc/passwd', outside",
    ),
    "symlink to .. then through it": (
        lambda tmp: [entry("up", kind=tarfile.SYMTYPE, link=".."), entry("up/escape.txt", b"x")],
        "is a symlink to '..', outside",
    ),
    "symlink to . then a/../../x": (
        lambda tmp: [entry("a", kind=tarfile.SYMTYPE, link="."), entry("a/../../escape.txt", b"x")],
        "has a '..' component",
    ),
    "write through a symlink to a dir inside": (
        lambda tmp: [
            entry("sub/", kind=tarfile.DIRTYPE),
            entry("d", kind=tarfile.SYMTYPE, link="sub"),
            entry("d/file.txt", b"x"),
        ],
        "goes through 'd', an earlier symlink",
    ),
    "symlink chain leaving through links": (
        lambda tmp: [
            entry("d", kind=tarfile.SYMTYPE, link="."),
            entry("e", kind=tarfile.SYMTYPE, link="d/.."),
        ],
        "symlink 'e' resolves to",
    ),
    "hardlink to outside (..)": (
        lambda tmp: [entry("h", kind=tarfile.LNKTYPE, link="../outside.txt")],
        "has a '..' component",
    ),
    "hardlink to outside (absolute)": (
        lambda tmp: [entry("h", kind=tarfile.LNKTYPE, link="/etc/passwd")],
        "is an absolute path",
    ),
    "hardlink to a name the archive lacks": (
        lambda tmp: [entry("h", kind=tarfile.LNKTYPE, link="etc/passwd")],
        "is a hard link to 'etc/passwd', which is not an earlier file",
    ),
    "character device": (lambda tmp: [entry("null", kind=tarfile.CHRTYPE)], "is a character device"),
    "block device": (lambda tmp: [entry("sda", kind=tarfile.BLKTYPE)], "is a block device"),
    "fifo": (lambda tmp: [entry("pipe", kind=tarfile.FIFOTYPE)], "is a fifo"),
    "directory replaced by a file": (
        lambda tmp: [entry("d/", kind=tarfile.DIRTYPE), entry("d", b"x")],
        "would replace an earlier directory",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_and_nothing_is_left(case: str, suffix: str, tmp_path: Path) -> None:
    """Each hostile archive is refused with its reason; staging is removed, nothing written elsewhere."""
    members, reason = HOSTILE[case]
    work = tmp_path / "work"
    work.mkdir()
    archive = make_tar(work / "hostile", [entry("first.txt", b"ok"), *members(tmp_path)], suffix)
    before = listing(tmp_path)
    staging = work / "staging"
    with pytest.raises(UnsafeArchiveError) as caught:
        extract(archive, staging)
    message = str(caught.value)
    assert caught.value.kind == ErrorKind.UNSAFE_ARCHIVE
    assert message.startswith(f"{archive.name}: ") and reason in message and "\n" not in message
    assert not staging.exists()
    assert before == listing(tmp_path)


def test_no_write_follows_a_symlink_even_past_the_header_checks(tmp_path: Path) -> None:
    """Second layer: directories are opened with O_NOFOLLOW, so no write goes through a link on disk."""
    root = tmp_path / "root"
    (tmp_path / "outside").mkdir()
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    writer = _Writer(root, "test.tar", (0o644, 0o755))
    try:
        with pytest.raises(UnsafeArchiveError, match="'link' is a symlink or file on disk"):
            writer.dir_fd(("link", "x"))
    finally:
        writer.close()
    assert os.listdir(tmp_path / "outside") == []


def test_hardlink_to_an_earlier_member_is_allowed(suffix: str, tmp_path: Path) -> None:
    """A hard link to an earlier file of the archive becomes a second name of the same inode."""
    archive = make_tar(
        tmp_path / "links",
        [entry("data/a.fits", b"pixels"), entry("b.fits", kind=tarfile.LNKTYPE, link="data/a.fits")],
        suffix,
    )
    root = extract(archive, tmp_path / "staging").root
    assert (root / "b.fits").read_bytes() == b"pixels"
    assert os.stat(root / "b.fits").st_ino == os.stat(root / "data/a.fits").st_ino


def test_symlink_inside_is_kept(suffix: str, tmp_path: Path) -> None:
    """A relative symlink that stays inside the folder is extracted as a symlink."""
    archive = make_tar(
        tmp_path / "sym",
        [entry("data/a.fits", b"pixels"), entry("latest", kind=tarfile.SYMTYPE, link="data/a.fits")],
        suffix,
    )
    root = extract(archive, tmp_path / "staging").root
    assert os.readlink(root / "latest") == "data/a.fits"


@pytest.mark.parametrize(
    "first, second",
    [
        (entry("raw/PFSA00000111.fits", b"first"), entry("raw/PFSA00000111.fits", b"second")),
        (entry("./raw/PFSA00000111.fits", b"first"), entry("raw//PFSA00000111.fits", b"second")),
        (entry("link", kind=tarfile.SYMTYPE, link="target.txt"), entry("link", b"replacement")),
        (entry("raw/PFSA00000111.fits", b"first"), entry("raw/PFSA00000111.fits", kind=tarfile.LNKTYPE,
                                                         link="target.txt")),
    ],
    ids=["file twice", "same name spelled twice", "file after a symlink", "hard link after a file"],
)
def test_a_name_used_twice_is_refused_naming_it(
    first: tuple[tarfile.TarInfo, bytes], second: tuple[tarfile.TarInfo, bytes], suffix: str, tmp_path: Path,
) -> None:
    """tar keeps the last of two members of one name and loses the first: refused, naming it; nothing left."""
    archive = make_tar(tmp_path / "dup", [entry("target.txt", b"original"), first, second], suffix)
    staging = tmp_path / "staging"
    with pytest.raises(CorruptArchiveError) as caught:
        extract(archive, staging)
    message = str(caught.value)
    assert message.startswith("dup.") and "appears twice" in message and "\n" not in message
    assert second[0].name in message
    assert not staging.exists()


def test_a_folder_named_twice_is_one_folder(suffix: str, tmp_path: Path) -> None:
    """Directories may repeat (tar lists a folder, GNU tar -r adds it again): they are one folder."""
    archive = make_tar(tmp_path / "dirs", [entry("raw/", kind=tarfile.DIRTYPE), entry("raw/a.fits", b"a"),
                                           entry("raw/", kind=tarfile.DIRTYPE), entry("raw/b.fits", b"b")], suffix)
    root = extract(archive, tmp_path / "staging").root
    assert sorted(p.name for p in (root / "raw").iterdir()) == ["a.fits", "b.fits"]


def test_modes_are_normalised_and_special_bits_stripped(suffix: str, tmp_path: Path) -> None:
    """setuid/setgid/sticky and execute bits are dropped: files get 0o644, directories 0o755; staging 0o700."""
    archive = make_tar(
        tmp_path / "modes",
        [
            entry("suid", b"#!", mode=0o4755),
            entry("sgid", b"x", mode=0o6640),
            entry("plain", b"x", mode=0o600),
            entry("tmp/", kind=tarfile.DIRTYPE, mode=0o1777),
        ],
        suffix,
    )
    root = extract(archive, tmp_path / "staging").root
    modes = {name: stat.S_IMODE(os.stat(root / name).st_mode) for name in ("suid", "sgid", "plain", "tmp")}
    assert modes == {"suid": 0o644, "sgid": 0o644, "plain": 0o644, "tmp": 0o755}
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


def test_caller_modes_are_used(tmp_path: Path) -> None:
    """file_mode and dir_mode replace the defaults, exactly (an executable member gets no execute bits)."""
    archive = make_tar(tmp_path / "modes", [entry("d/f", b"x"), entry("d/run", b"x", mode=0o755)])
    root = extract(archive, tmp_path / "staging", file_mode=0o640, dir_mode=0o750).root
    modes = [stat.S_IMODE(os.stat(root / name).st_mode) for name in ("d", "d/f", "d/run")]
    assert modes == [0o750, 0o640, 0o640]


def test_staging_must_be_new(tmp_path: Path) -> None:
    """An existing staging folder is never used, so cleanup can only remove this call's output."""
    archive = make_tar(tmp_path / "a", [entry("f", b"x")])
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "keep").write_text("mine")
    with pytest.raises(FileExistsError):
        extract(archive, tmp_path / "staging")
    assert (tmp_path / "staging" / "keep").read_text() == "mine"


# --- limits --------------------------------------------------------------------------------------------


def test_member_count_bomb(suffix: str, tmp_path: Path) -> None:
    """20,000 empty members against max_members=10,000: refused with both numbers, nothing left."""
    archive = make_tar(tmp_path / "many", [entry(f"f{i}") for i in range(20_000)], suffix)
    before = listing(tmp_path)
    with pytest.raises(ArchiveLimitError, match="10000.*max_members = 10000"):
        extract(archive, tmp_path / "staging", UnpackLimits(max_members=10_000))
    assert before == listing(tmp_path)


def test_size_bomb_small_on_disk_is_caught_by_the_ratio(tmp_path: Path) -> None:
    """A 1 GiB member of zeros in a ~1 MB gzip exceeds max_ratio before anything big is written."""
    archive = zero_bomb(tmp_path / "bomb.tar.gz", tar_header("zeros.fits", 2**30), 2**30 + 10240)
    assert archive.stat().st_size < 2 * 2**20
    with pytest.raises(ArchiveLimitError, match=r"ratio .*max_ratio = 200") as caught:
        extract(archive, tmp_path / "staging")
    assert caught.value.kind == ErrorKind.ARCHIVE_LIMIT
    assert not (tmp_path / "staging").exists()


def test_bomb_that_lies_is_caught_while_streaming(tmp_path: Path) -> None:
    """Small declared members, then a GiB of zeros after the end marker: the stream itself is counted."""
    body = tar_header("small.txt", 3) + b"abc".ljust(512, b"\0")
    archive = zero_bomb(tmp_path / "liar.tar.gz", body, 2**30)
    with pytest.raises(ArchiveLimitError, match="expands to more than"):
        extract(archive, tmp_path / "staging")
    assert not (tmp_path / "staging").exists()
    with pytest.raises(ArchiveLimitError):
        archive_complete(archive)


@pytest.mark.parametrize(
    ("limits", "pattern"),
    [
        (UnpackLimits(max_total_bytes=1000), "max_total_bytes = 1000"),
        (UnpackLimits(max_member_bytes=500), "600 bytes; limit max_member_bytes = 500"),
    ],
)
def test_size_limits(limits: UnpackLimits, pattern: str, tmp_path: Path) -> None:
    """Total and per-member sizes are checked from the headers."""
    archive = make_tar(tmp_path / "big", [entry("a", bytes(600)), entry("b", bytes(600))])
    with pytest.raises(ArchiveLimitError, match=pattern):
        extract(archive, tmp_path / "staging", limits)


def test_limits_are_frozen() -> None:
    """UnpackLimits is an immutable value."""
    with pytest.raises(AttributeError):
        UnpackLimits().max_members = 1  # type: ignore[misc]


# --- corrupt and partial archives ----------------------------------------------------------------------


def sample_entries() -> list[tuple[tarfile.TarInfo, bytes]]:
    return [
        entry("raw/PFSA00000111.fits", os.urandom(20_000)),
        entry("raw/PFSA00000112.fits", bytes(30_000)),
        entry("notes.txt", b"hello"),
    ]


def test_corrupt_gzip_is_reported(tmp_path: Path) -> None:
    """Flipped bytes in the middle of the deflate stream raise CorruptArchiveError."""
    archive = make_tar(tmp_path / "bad", sample_entries(), "tar.gz")
    data = bytearray(archive.read_bytes())
    for index in range(len(data) // 2, len(data) // 2 + 16):
        data[index] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(CorruptArchiveError, match="bad.tar.gz"):
        archive_complete(archive)  # corrupt, not incomplete: waiting would not help
    with pytest.raises(CorruptArchiveError, match="bad.tar.gz"):
        extract(archive, tmp_path / "staging")
    assert not (tmp_path / "staging").exists()


def test_bad_header_checksum_is_reported(tmp_path: Path) -> None:
    """A damaged second header is an error, not a silent end of the member list."""
    archive = make_tar(tmp_path / "hdr", sample_entries())
    with tarfile.open(archive) as tar:
        offset = tar.getmembers()[1].offset + 100  # the mode field of the second header
    data = bytearray(archive.read_bytes())
    data[offset] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(CorruptArchiveError, match="header"):
        archive_complete(archive)  # a whole header block with a wrong checksum is damage, not a cut
    with pytest.raises(CorruptArchiveError, match="header"):
        extract(archive, tmp_path / "staging")


@pytest.mark.parametrize("kind", sorted(WRITE_MODES))
def test_truncated_archive(kind: str, tmp_path: Path) -> None:
    """Cut anywhere before its end: never complete, and extract raises CorruptArchiveError."""
    whole = make_tar(tmp_path / "whole", sample_entries(), kind).read_bytes()
    end_marker = len(whole) if kind != "tar" else whole.rindex(b"hello") + 512 + 1024
    cuts = sorted(
        {
            0,
            1,
            100,
            511,
            512,
            1500,
            len(whole) // 3,
            len(whole) // 2,
            end_marker - 513,
            end_marker - 512,
            end_marker - 1,
        }
    )
    before = listing(tmp_path)
    for cut in cuts:
        partial = tmp_path / f"cut.{kind}"
        partial.write_bytes(whole[:cut])
        assert not archive_complete(partial), cut
        with pytest.raises(CorruptArchiveError):
            extract(partial, tmp_path / "staging")
        partial.unlink()
        assert before == listing(tmp_path), cut


@pytest.mark.parametrize("kind", sorted(WRITE_MODES))
def test_archive_being_written(kind: str, tmp_path: Path) -> None:
    """Half written: not complete; once the rest is appended: complete and extractable."""
    whole = make_tar(tmp_path / "src", sample_entries(), kind).read_bytes()
    growing = tmp_path / f"growing.{kind}"
    growing.write_bytes(whole[: len(whole) // 2])
    assert not archive_complete(growing)
    with open(growing, "ab") as out:
        out.write(whole[len(whole) // 2 :])
    assert archive_complete(growing)
    extracted = extract(growing, tmp_path / "staging")
    assert (extracted.members, extracted.bytes) == (3, 50_005)
    assert (extracted.root / "notes.txt").read_bytes() == b"hello"


def test_concatenated_gzip_members_are_one_archive(tmp_path: Path) -> None:
    """pigz-style multi-member gzip: the second member's data is read and its trailer checked."""
    plain = make_tar(tmp_path / "plain", sample_entries()).read_bytes()
    half = len(plain) // 2
    archive = tmp_path / "multi.tar.gz"
    archive.write_bytes(zlib_gzip(plain[:half]) + zlib_gzip(plain[half:]))
    assert archive_complete(archive)
    assert (extract(archive, tmp_path / "staging").root / "notes.txt").read_bytes() == b"hello"


def concatenated(tmp_path: Path, kind: str) -> tuple[Path, set[str]]:
    """Two tars, each with its end marker and record padding, cat'ed together (or their gzip streams)."""
    first = make_tar(tmp_path / "first", sample_entries(), "tar").read_bytes()
    second = make_tar(tmp_path / "second", [entry("raw/PFSA00000113.fits", os.urandom(3000)),
                                            entry("late/notes2.txt", b"world")], "tar").read_bytes()
    assert len(first) % tarfile.RECORDSIZE == 0 and first.endswith(bytes(1024))
    path = tmp_path / f"cat.{kind}"
    if kind == "tar":
        path.write_bytes(first + second)
    elif kind == "tar.gz streams":  # cat a.tar.gz b.tar.gz
        path = tmp_path / "cat.tar.gz"
        path.write_bytes(zlib_gzip(first) + zlib_gzip(second))
    else:  # cat a.tar b.tar | gzip
        path = tmp_path / "cat.tar.gz"
        path.write_bytes(zlib_gzip(first + second))
    names = {"raw/PFSA00000111.fits", "raw/PFSA00000112.fits", "notes.txt", "raw/PFSA00000113.fits",
             "late/notes2.txt"}
    return path, names


@pytest.mark.parametrize("kind", ["tar", "tar.gz streams", "tar.gz one stream"])
def test_concatenated_tars_are_read_whole_like_tar_ignore_zeros(kind: str, tmp_path: Path) -> None:
    """Past the first tar's end marker another tar follows: its members are extracted too (as `tar -i`)."""
    archive, names = concatenated(tmp_path, kind)
    assert archive_complete(archive)
    extracted = extract(archive, tmp_path / "staging")
    found = {str(p.relative_to(extracted.root)) for p in extracted.root.rglob("*") if p.is_file()}
    assert found == names and extracted.members == 5
    assert (extracted.root / "late/notes2.txt").read_bytes() == b"world"
    gnu = subprocess.run(["tar", "-tzif" if kind != "tar" else "-tif", str(archive)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert set(gnu) >= names  # what GNU tar --ignore-zeros lists (it also lists the folder)


@pytest.mark.parametrize("kind", ["tar", "tar.gz streams"])
def test_a_concatenated_tar_cut_short_is_not_complete(kind: str, tmp_path: Path) -> None:
    """A second tar still being appended: not complete (waited for), never extracted without its members."""
    archive, _ = concatenated(tmp_path, kind)
    whole = archive.read_bytes()
    if kind == "tar":  # the second tar: header, 3000 bytes of data, header, 5 bytes, end marker at +4608
        first = len(make_tar(tmp_path / "first", sample_entries(), "tar").read_bytes())
        cuts = (first + 100, first + 512, first + 1500, first + 4608 + 1023)
    else:
        first = whole.index(b"\x1f\x8b", 10)
        cuts = (first + 10, first + 100, len(whole) - 8, len(whole) - 1)
    for cut in cuts:
        archive.write_bytes(whole[:cut])
        assert not archive_complete(archive), cut
        with pytest.raises(CorruptArchiveError):
            extract(archive, tmp_path / "staging")
        assert not (tmp_path / "staging").exists()


def test_data_after_the_end_marker_is_refused(suffix: str, tmp_path: Path) -> None:
    """Bytes after the end-of-archive marker that are no tar: refused with where they start, not ignored."""
    plain = make_tar(tmp_path / "plain", sample_entries()).read_bytes() + b"not a tar header".ljust(512, b"!")
    archive = tmp_path / f"trailing.{suffix}"
    archive.write_bytes(plain if suffix == "tar" else zlib_gzip(plain))
    with pytest.raises(CorruptArchiveError) as caught:
        extract(archive, tmp_path / "staging")
    message = str(caught.value)
    assert message.startswith("trailing.") and f"not a tar header at byte {len(plain) - 512}" in message
    assert "\n" not in message and not (tmp_path / "staging").exists()


def deep_name(levels: int, leaf: str = "PFSA00000111.fits", part: str = "a") -> str:
    return "/".join([part] * (levels - 1) + [leaf])


@pytest.mark.parametrize(
    "name, pattern",
    [
        (deep_name(1100), "is 1100 levels deep; limit max_path_parts = 64"),
        (deep_name(65), "is 65 levels deep; limit max_path_parts = 64"),
        (deep_name(20, part="d" * 60), "has a path of 1176 bytes; limit max_path_bytes = 1024"),
    ],
    ids=["1100 levels", "65 levels", "long path"],
)
def test_a_member_too_deep_or_too_long_is_refused_and_nothing_is_left(
    name: str, pattern: str, suffix: str, tmp_path: Path,
) -> None:
    """Depth and path length are limited with a reason (a 1,100-level member hit a RecursionError and left
    its staging folder); unpack leaves no staging behind."""
    archive = make_tar(tmp_path / "deep", [entry("ok.txt", b"1"), entry(name, b"x")], suffix)
    dest = tmp_path / "dest"
    try:
        with pytest.raises(ArchiveLimitError) as caught:
            unpack(archive, dest)
        message = str(caught.value)
        assert message.startswith(f"{archive.name}: member 'a/a/") or message.startswith(f"{archive.name}: member 'd")
        assert pattern in message and "\n" not in message and len(message) < 300
        assert os.listdir(dest) == [STAGING_DIR_NAME] and os.listdir(dest / STAGING_DIR_NAME) == []
    finally:
        remove_tree(dest)  # iteratively: pytest's tmp cleanup (shutil.rmtree) recurses per level


def test_the_depth_limit_counts_the_folders_of_nested_archives(tmp_path: Path) -> None:
    """A member of a nested archive is as deep as its folder in the outer one plus its own path (9 + 1 + 10)."""
    inner = make_tar(tmp_path / "inner", [entry(deep_name(10), b"x")], "tar.gz")
    outer = make_tar(tmp_path / "outer", [entry(f"{deep_name(10, 'inner.tar.gz', 'b')}", inner.read_bytes())])
    assert extract(outer, tmp_path / "ok", UnpackLimits(max_path_parts=20)).members == 2
    with pytest.raises(ArchiveLimitError, match="is 20 levels deep; limit max_path_parts = 19"):
        extract(outer, tmp_path / "staging", UnpackLimits(max_path_parts=19))
    assert not (tmp_path / "staging").exists()


def test_remove_tree_removes_any_depth_without_following_links(tmp_path: Path) -> None:
    """remove_tree (used for staging) goes through 3,000 levels of 100-byte names, past PATH_MAX, and
    removes links without touching what they point to."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"keep")
    top = tmp_path / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(3000):
            os.mkdir("d" * 100, dir_fd=fd)
            below = os.open("d" * 100, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
            if level % 1000 == 0:
                os.symlink(str(outside), "link", dir_fd=fd)
                os.close(os.open("file", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd))
    finally:
        os.close(fd)
    remove_tree(top)
    assert not top.exists() and (outside / "keep.txt").read_bytes() == b"keep"


def zlib_gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


# --- nested archives -----------------------------------------------------------------------------------


def nested_archive(tmp_path: Path, depth: int) -> Path:
    """``depth`` levels: level1.tar holds level2.tar.gz holds ... each level holding one text file."""
    inner: Path | None = None
    for level in range(depth, 0, -1):
        entries = [entry(f"file{level}.txt", f"level {level}".encode())]
        if inner is not None:
            entries.append(entry(f"sub/{inner.name}", inner.read_bytes()))
        inner = make_tar(tmp_path / f"level{level}", entries, "tar" if level == 1 else "tar.gz")
    assert inner is not None
    return inner


def test_nested_archive_is_expanded_next_to_itself(tmp_path: Path) -> None:
    """A tar.gz inside a tar is expanded into a folder named after it, and the nested file is removed."""
    archive = nested_archive(tmp_path, 2)
    extracted = extract(archive, tmp_path / "staging")
    root = extracted.root
    assert (root / "sub/level2/file2.txt").read_bytes() == b"level 2"
    assert not (root / "sub/level2.tar.gz").exists()
    assert (Path("sub/level2.tar.gz"),) == extracted.nested
    assert extracted.members == 3


def test_nesting_depth_is_limited(tmp_path: Path) -> None:
    """Four levels with max_depth=3 raise ArchiveLimitError; max_depth=4 expands them all."""
    archive = nested_archive(tmp_path, 4)
    with pytest.raises(ArchiveLimitError, match="level 4; limit max_depth = 3"):
        extract(archive, tmp_path / "staging")
    assert not (tmp_path / "staging").exists()
    root = extract(archive, tmp_path / "staging", UnpackLimits(max_depth=4)).root
    assert (root / "sub/level2/sub/level3/sub/level4/file4.txt").read_bytes() == b"level 4"


def test_nested_totals_count_over_the_whole_tree(tmp_path: Path) -> None:
    """Members of nested archives count toward max_members (the outer archive alone has two)."""
    archive = nested_archive(tmp_path, 2)
    with pytest.raises(ArchiveLimitError, match="level2.tar.gz: more than 2 members"):
        extract(archive, tmp_path / "staging", UnpackLimits(max_members=2))


def test_hostile_nested_archive_is_refused(tmp_path: Path) -> None:
    """An escape inside a nested archive is refused like one at the top; nothing is left."""
    inner = make_tar(tmp_path / "inner", [entry("../../escape.txt", b"x")], "tar.gz")
    archive = make_tar(tmp_path / "outer", [entry("inner.tar.gz", inner.read_bytes())])
    before = listing(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="outer.tar/inner.tar.gz"):
        extract(archive, tmp_path / "staging")
    assert before == listing(tmp_path)


def test_nested_archive_folder_clash_is_refused(tmp_path: Path) -> None:
    """A nested archive whose folder name the outer archive already uses is not merged into it."""
    inner = make_tar(tmp_path / "data", [entry("f.txt", b"x")], "tar.gz")
    archive = make_tar(
        tmp_path / "outer", [entry("data/own.txt", b"y"), entry("data.tar.gz", inner.read_bytes())]
    )
    with pytest.raises(UnsafeArchiveError, match="already holds"):
        extract(archive, tmp_path / "staging")


# --- publish and unpack --------------------------------------------------------------------------------


def test_publish_moves_by_rename_and_reports_identical_files(tmp_path: Path) -> None:
    """New files are moved (same inode); an identical existing file is kept and its path reported."""
    archive = make_tar(tmp_path / "pub", [entry("a/new.fits", b"new"), entry("a/same.fits", b"same")])
    extracted = extract(archive, tmp_path / "staging")
    staged_inode = os.stat(extracted.root / "a/new.fits").st_ino
    dest = tmp_path / "dest"
    (dest / "a").mkdir(parents=True)
    (dest / "a/same.fits").write_bytes(b"same")
    existing_inode = os.stat(dest / "a/same.fits").st_ino
    published = publish(extracted, dest)
    assert [dest / "a/new.fits", dest / "a/same.fits"] == published
    assert staged_inode == os.stat(dest / "a/new.fits").st_ino
    assert existing_inode == os.stat(dest / "a/same.fits").st_ino
    assert not (extracted.root / "a/same.fits").exists()


def test_publish_conflict_keeps_the_staged_copy(tmp_path: Path) -> None:
    """A different existing file is not overwritten: ConflictError, the other files still published."""
    archive = make_tar(
        tmp_path / "pub", [entry("a/clash.fits", b"from archive"), entry("a/other.fits", b"o")]
    )
    extracted = extract(archive, tmp_path / "staging")
    dest = tmp_path / "dest"
    (dest / "a").mkdir(parents=True)
    (dest / "a/clash.fits").write_bytes(b"already here")
    with pytest.raises(ConflictError) as caught:
        publish(extracted, dest)
    error = caught.value
    assert isinstance(error, PublishConflictError) and error.kind == ErrorKind.CONFLICT
    assert "clash.fits" in str(error) and "\n" not in str(error)
    assert (dest / "a/clash.fits").read_bytes() == b"already here"
    assert (extracted.root / "a/clash.fits",) == error.conflicts
    assert (extracted.root / "a/clash.fits").read_bytes() == b"from archive"
    assert (dest / "a/other.fits",) == error.published and (dest / "a/other.fits").exists()


def test_publish_renames_new_folders_whole_and_merges_existing_ones(tmp_path: Path) -> None:
    """A folder new to the destination moves in one rename; an existing one gains the staged files."""
    archive = make_tar(tmp_path / "pub", [entry("old/a.fits", b"a"), entry("new/deep/b.fits", b"b")])
    extracted = extract(archive, tmp_path / "staging")
    inode = os.stat(extracted.root / "new/deep/b.fits").st_ino
    dest = tmp_path / "dest"
    (dest / "old").mkdir(parents=True)
    (dest / "old/mine.txt").write_text("kept")
    published = publish(extracted, dest)
    assert sorted(published) == [dest / "new/deep/b.fits", dest / "old/a.fits"]
    assert os.stat(dest / "new/deep/b.fits").st_ino == inode
    assert (dest / "old/mine.txt").read_text() == "kept"
    assert not (extracted.root / "new").exists()


def test_publish_uses_the_dir_mode(tmp_path: Path) -> None:
    """Directories created in the destination get the given mode."""
    extracted = extract(make_tar(tmp_path / "d", [entry("x/y/f", b"1")]), tmp_path / "staging")
    publish(extracted, tmp_path / "dest", dir_mode=0o750)
    assert [stat.S_IMODE(os.stat(tmp_path / "dest" / p).st_mode) for p in ("x", "x/y")] == [0o750, 0o750]


def test_unpack_publishes_under_the_archive_stem_and_cleans_staging(tmp_path: Path) -> None:
    """The inner layout lands in DEST/<stem>/ and the staging folder is gone."""
    archive = make_tar(tmp_path / "S2Query", sample_entries(), "tar.gz")
    dest = tmp_path / "dest"
    result = unpack(archive, dest)
    assert dest / "S2Query" == result.dest
    assert {
        dest / "S2Query/raw/PFSA00000111.fits",
        dest / "S2Query/raw/PFSA00000112.fits",
        dest / "S2Query/notes.txt",
    } == set(result.published)
    assert (result.members, result.bytes, result.failed, result.stars_bundle) == (3, 50_005, (), False)
    assert list((dest / STAGING_DIR_NAME).iterdir()) == []


def test_unpack_cleans_staging_after_a_refusal(tmp_path: Path) -> None:
    """A refused archive leaves no staging folder and publishes nothing."""
    archive = make_tar(tmp_path / "evil", [entry("ok.txt", b"1"), entry("/etc/evil", b"x")], "tar.gz")
    with pytest.raises(UnsafeArchiveError):
        unpack(archive, tmp_path / "dest")
    assert os.listdir(tmp_path / "dest") == [STAGING_DIR_NAME]
    assert os.listdir(tmp_path / "dest" / STAGING_DIR_NAME) == []


def test_unpack_holds_back_files_that_fail_their_checksum(tmp_path: Path) -> None:
    """A file that does not match its .md5 sidecar is reported in failed and not published."""
    good, bad = b"good pixels", b"bad pixels"
    entries = [
        entry("good.fits", good),
        entry("good.fits.md5", hashlib.md5(good).hexdigest().encode()),
        entry("bad.fits", bad),
        entry("bad.fits.md5", b"0" * 32 + b"  bad.fits\n"),
    ]
    result = unpack(make_tar(tmp_path / "sums", entries), tmp_path / "dest")
    assert [Path("bad.fits")] == [path for path, _reason in result.failed]
    assert "expected 00000000000000000000000000000000" in result.failed[0][1]
    assert (tmp_path / "dest/sums/good.fits").exists() and not (tmp_path / "dest/sums/bad.fits").exists()


def test_unpack_recognises_a_stars_bundle(tmp_path: Path) -> None:
    """An archive holding zadmin/unpack.py is flagged as a STARS2 bundle."""
    archive = make_tar(tmp_path / "S2Query", [entry("zadmin/unpack.py", b"print('hi')\n")])
    assert unpack(archive, tmp_path / "dest").stars_bundle


def test_extraction_restores_member_mtime(tmp_path: Path) -> None:
    """Files keep the member's modification time, as tar does."""
    root = extract(make_tar(tmp_path / "t", [entry("f", b"x")]), tmp_path / "staging").root
    assert int(os.stat(root / "f").st_mtime) == 1_700_000_000
