"""Fuzzed archives never write outside staging: hypothesis builds hostile tars, then checks the sandbox.

Each example gets a fresh sandbox (``ROOT/<mkdtemp>``) holding the archive, victim files and the staging
or destination folder; ``ROOT/outside`` is a sibling that ``../../outside/...`` or an absolute member name
would hit.  Absolute names and link targets are rebased into ``ROOT/outside`` (``/etc`` becomes
``ROOT/outside/etc``, itself a link back to the outside folder): the tests may run as root.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from pathlib import Path

from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from pfswatchd.archives.unpack import STAGING_DIR_NAME, UnpackLimits, archive_complete, extract, unpack
from pfswatchd.errors import ArchiveLimitError, ConflictError, CorruptArchiveError, TransientError, UnsafeArchiveError

_TMP = tempfile.TemporaryDirectory(prefix="pfswatchd-fuzz-archives-")  # removed at exit
ROOT = Path(_TMP.name)
OUTSIDE = ROOT / "outside"
EXTRACT_ERRORS = (UnsafeArchiveError, CorruptArchiveError, ArchiveLimitError, TransientError)
UNPACK_ERRORS = (*EXTRACT_ERRORS, ConflictError)
COMPRESS = {"tar": lambda b: b, "tar.gz": lambda b: gzip.compress(b, mtime=0), "tar.bz2": bz2.compress,
            "tar.xz": lambda b: lzma.compress(b, format=lzma.FORMAT_XZ)}
SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
FAKE_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def _victims(folder: Path) -> None:
    """Files that a '../' or absolute member would overwrite, extend, link to or write through."""
    (folder / "a").mkdir(parents=True)
    (folder / "a/x.fits").write_bytes(b"victim")
    (folder / "x.fits").write_bytes(b"victim")
    (folder / "b").write_bytes(b"")
    (folder / "link").symlink_to("a")
    (folder / "etc").symlink_to(OUTSIDE)


_victims(OUTSIDE)

PIECES = ["a", "b", "..", ".", "", "/", "//", "/etc", "x.fits", "link", "outside", "etc", "x.tar",
          "y.tar.gz", "x.fits.md5", "SUMS", "é", "日本語", "\udcff", "a\nb", "a\0b", "n" * 255, "n" * 256]
TAME_PIECES = ["a", "b", ".", "", "x.fits", "link", "é", "日本語", "n" * 255, "x.fits.md5", "SUMS"]
PATHS = st.lists(st.sampled_from(PIECES), min_size=1, max_size=4).map("/".join)
ESCAPES = ["../x.fits", "../a/x.fits", "../../outside/x.fits", "../../outside/new", "a/../../b",
           "./../link/new", "link/new", "etc/x.fits", f"{OUTSIDE}/x.fits", f"/{OUTSIDE}/a/x.fits", ".."]
NAMES = PATHS | st.sampled_from(ESCAPES)  # aimed at the victims
TAME_LEAVES = st.sampled_from([piece for piece in TAME_PIECES if piece not in ("", ".")])
TAME_NAMES = TAME_LEAVES | st.builds("{}/{}/{}".format, TAME_LEAVES, st.sampled_from(TAME_PIECES),
                                     TAME_LEAVES)
TAME_LINKS = st.lists(st.sampled_from([*TAME_PIECES, ".."]), min_size=1, max_size=3).map("/".join)
LINKS = PATHS | st.sampled_from(["/etc", "/etc/passwd", "/", "../../outside", "link/..", *ESCAPES])
KINDS = [tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
         tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE]
TAME_KINDS = [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]
MODES = st.one_of(st.sampled_from([0o644, 0o755, 0o4755, 0o2755, 0o6777, 0o1777, 0o7777, 0, 0o111]),
                  st.integers(0, 0o7777))
MTIMES = st.sampled_from([1_700_000_000, 0, -1, 2**34, 2**40])
PAX = st.one_of(st.just({}), st.sampled_from([
    {"path": "a\0b"}, {"path": f"{OUTSIDE}/x.fits"}, {"path": "../../outside/x.fits"}, {"linkpath": "a\0b"},
    {"linkpath": f"{OUTSIDE}/etc"}, {"size": "-1"}, {"size": "99999999999"}, {"GNU.sparse.map": "0,1,2,3"},
    {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "s"}, {"GNU.sparse.offset": "x"},
    {"mtime": "nan"}, {"mtime": "1e400"}, {"uid": "x"}, {"hdrcharset": "BINARY"}, {"comment": "\0\n"},
]))
DATA = st.one_of(st.binary(max_size=40), st.integers(0, 3000).map(bytes), st.sampled_from([
    f"{FAKE_MD5}  x.fits\n".encode(), f"{FAKE_MD5}  ../../outside/x.fits\n".encode(),
    f"{FAKE_MD5}  {OUTSIDE}/x.fits\n".encode(), f"{FAKE_MD5}  link/x.fits\n".encode(),
]))
NESTED_FOLDERS = st.sampled_from(["", "a/", "b/c/", "x"])  # "x": "x.tar" is expanded into "x/"
FORMATS = st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
LIMITS = st.one_of(st.just(UnpackLimits()), st.builds(
    UnpackLimits, max_members=st.integers(1, 12), max_total_bytes=st.integers(0, 300),
    max_depth=st.integers(1, 3), max_member_bytes=st.none() | st.integers(0, 60),
    max_path_parts=st.integers(1, 5), max_path_bytes=st.integers(1, 600)))


class Archive:
    """Archive bytes with a short description (hypothesis prints this, not the bytes)."""

    def __init__(self, suffix: str, data: bytes, members: list[str]) -> None:
        self.suffix, self.data, self.members = suffix, data, members

    def __repr__(self) -> str:
        return f"Archive({self.suffix}, {len(self.data)} bytes, [{', '.join(self.members)}])"


@st.composite
def archives(draw: st.DrawFn, depth: int = 2) -> Archive:
    """An archive of hostile members, maybe holding smaller archives."""
    # Each of a member's name, type, link target and pax headers is hostile at one of these odds, so
    # one hostile attribute often sits among harmless ones (sampled_from favours early entries).
    odds = draw(st.sampled_from([[False] * 31 + [True], [False] * 7 + [True], [True, False]]))
    members: list[tuple[tarfile.TarInfo, bytes, str]] = []
    for _ in range(draw(st.integers(0, 6))):
        names = [info.name for info, _, _ in members]
        if draw(st.sampled_from([False] * 15 + [True])):  # a link chain, e.g. a -> ".", b -> "a/..", "b/x"
            a, b, leaf = draw(TAME_LEAVES), draw(TAME_LEAVES), draw(TAME_LEAVES)
            first, second = draw(st.sampled_from([".", "..", "b"])), draw(st.sampled_from(["..", ".", leaf]))
            chain = [_info(a, tarfile.SYMTYPE, first), _info(b, tarfile.SYMTYPE, f"{a}/{second}")]
            chain.append(_info(f"{b}/{leaf}", tarfile.REGTYPE, "", size=1))
            members += [(info, b"x" if info.isreg() else b"", "") for info in chain]
            continue
        files = [info.name for info, _, _ in members if info.isreg()]
        kind = draw(st.sampled_from(KINDS if draw(st.sampled_from(odds)) else TAME_KINDS[: 4 + bool(files)]))
        # Relation to earlier members: 1 the same name, 2 inside an earlier folder, 3 through the last one
        relation = draw(st.sampled_from([0] * 4 + [1, 2, 2, 3])) if names else 0
        folders = [info.name for info, _, _ in members if info.isdir()]
        folders += [name.rpartition("/")[0] for name in names]
        if relation == 1:
            name = draw(st.sampled_from(names))
        elif relation >= 2:
            base, leaf = names[-1] if relation == 3 else draw(st.sampled_from(folders)), draw(TAME_LEAVES)
            name = f"{base}/{leaf}" if base else leaf
        else:
            name = draw(NAMES if draw(st.sampled_from(odds)) else TAME_NAMES)
        data, about = b"", ""
        if kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
            if depth > 0 and draw(st.integers(0, 3)) == 0:
                nested = draw(archives(depth - 1))
                name, data = f"{draw(NESTED_FOLDERS)}x.{nested.suffix}", nested.data
                about = f"holding {nested!r}"
            else:
                data = draw(DATA)
        wild = draw(st.sampled_from(odds))
        links = LINKS if wild else TAME_LINKS
        if names and (wild or kind != tarfile.LNKTYPE):  # an earlier member or its parent: link chains
            links = st.one_of(st.sampled_from(names).map("{}/..".format), links, st.sampled_from(names))
        elif files:  # a tame hard link names an earlier file
            links = st.sampled_from(files)
        pax = draw(PAX) if draw(st.sampled_from(odds)) else {}
        info = _info(_aim(name), kind, _aim(draw(links)), draw(MODES), draw(MTIMES), len(data), pax)
        members.append((info, data, about))
    suffix, fmt = draw(st.sampled_from(sorted(COMPRESS))), draw(FORMATS)
    data, fmt = _tar([(info, data) for info, data, _ in members], fmt)
    return Archive(suffix, COMPRESS[suffix](data), [f"format {fmt}", *(
        f"{info.name!r} type {info.type!r} -> {info.linkname!r} mode {info.mode:o} mtime {info.mtime} "
        f"pax {info.pax_headers!r} {about or data[:40]!r}" for info, data, about in members)])


def _aim(path: str) -> str:
    """Absolute paths point into the outside folder, never at / or /etc: the tests may run as root."""
    return f"{OUTSIDE}{path}" if path.startswith("/") and not path.startswith(str(OUTSIDE)) else path


def _info(name: str, kind: bytes, link: str, mode: int = 0o644, mtime: float = 1_700_000_000, size: int = 0,
          pax: dict[str, str] | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime, info.pax_headers = kind, link, mode, mtime, pax or {}
    info.size = size if info.isreg() else 0
    return info


def _tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int) -> tuple[bytes, int]:
    """The tar bytes exactly as given (addfile keeps absolute names, '..' and odd types); PAX if need be."""
    buffer = io.BytesIO()
    try:
        with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
            for info, data in members:
                tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    except (ValueError, UnicodeError):  # USTAR/GNU cannot hold some names, numbers or encodings
        return _tar(members, tarfile.PAX_FORMAT)
    return buffer.getvalue(), fmt


DAMAGE = st.tuples(st.lists(st.tuples(st.integers(0, 2**20), st.integers(1, 255)), max_size=3),
                   st.none() | st.integers(0, 2**20))
UNDAMAGED = st.just(([], None))


def _damage(data: bytes, damage: tuple[list[tuple[int, int]], int | None]) -> bytes:
    """Flip bytes at (position mod length) and cut at (cut mod length + 1)."""
    flips, cut = damage
    out = bytearray(data)
    for position, xor in flips:
        if out:
            out[position % len(out)] ^= xor
    return bytes(out if cut is None else out[: cut % (len(out) + 1)])


def _snapshot(top: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[object, ...]]:
    """Every path under ``top`` (links not followed): type, mode, size, links, times, content, target."""
    found: dict[str, tuple[object, ...]] = {}
    for folder, dirnames, filenames in os.walk(top):
        dirnames[:] = [name for name in dirnames if Path(folder, name) not in skip]
        for name in dirnames + [name for name in filenames if Path(folder, name) not in skip]:
            path = Path(folder, name)
            info = os.lstat(path)
            content = (zlib.crc32(path.read_bytes()) if stat.S_ISREG(info.st_mode)
                       else os.readlink(path) if stat.S_ISLNK(info.st_mode) else None)
            found[str(path.relative_to(top))] = (info.st_mode, info.st_size, info.st_nlink, info.st_mtime_ns,
                                                 info.st_ctime_ns, content)
    return found


def _world(sandbox: Path, skip: tuple[Path, ...]) -> tuple[object, ...]:
    """What must not change: the sandbox outside ``skip``, the outside folder, and ROOT's listing."""
    top = os.lstat(OUTSIDE)
    return (_snapshot(sandbox, skip), _snapshot(OUTSIDE), (top.st_mtime_ns, top.st_ctime_ns),
            sorted(os.listdir(ROOT)))


def _check_tree(top: Path, *, modes: bool) -> None:
    """Only directories, files and symlinks that resolve inside ``top``; no setuid/setgid/sticky bits."""
    real_top = os.path.realpath(top)
    for folder, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(folder, name)
            mode = os.lstat(path).st_mode
            assert stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode), (path, oct(mode))
            assert not mode & SPECIAL_BITS, (path, oct(mode))
            if stat.S_ISLNK(mode):
                real = os.path.realpath(path)
                assert real == real_top or real.startswith(real_top + os.sep), (path, os.readlink(path))
            elif modes:  # extract's defaults: exactly file_mode 0o644 and dir_mode 0o755
                assert stat.S_IMODE(mode) == (0o755 if stat.S_ISDIR(mode) else 0o644), (path, oct(mode))


def _sandbox(suffix: str, data: bytes) -> tuple[Path, Path]:
    sandbox = Path(tempfile.mkdtemp(dir=ROOT))
    _victims(sandbox)
    (sandbox / f"fuzz.{suffix}").write_bytes(data)
    return sandbox, sandbox / f"fuzz.{suffix}"


def _check_extract(suffix: str, data: bytes, limits: UnpackLimits) -> None:
    sandbox, archive = _sandbox(suffix, data)
    try:
        staging = sandbox / "staging"
        before = _world(sandbox, (staging,))
        try:
            complete: bool | None = archive_complete(archive, limits=limits)
        except EXTRACT_ERRORS:
            complete = None
        assert _world(sandbox, (staging,)) == before, "archive_complete wrote something"
        try:
            extracted = extract(archive, staging, limits)
        except EXTRACT_ERRORS as exc:
            event(f"extract: {type(exc).__name__}")
            assert not os.path.lexists(staging), "staging left behind after a refusal"
        else:
            event(f"extracted {'nested' if extracted.nested else 'flat'}, {len(_snapshot(staging))} paths")
            assert complete is True, "extracted an archive that archive_complete calls incomplete"
            assert extracted.root == staging and stat.S_IMODE(os.lstat(staging).st_mode) == 0o700
            assert extracted.members <= limits.max_members and extracted.bytes <= limits.max_total_bytes
            _check_tree(staging, modes=True)
        assert _world(sandbox, (staging,)) == before, "something outside staging changed"
    finally:
        shutil.rmtree(sandbox)


def _settings(examples: int) -> settings:
    # No explain phase: tracing tarfile and the decompressors makes a failing run take minutes.
    return settings(max_examples=examples, deadline=None, phases=[p for p in Phase if p != Phase.explain],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_settings(300)
@given(archive=archives(), limits=LIMITS)
def test_fuzzed_archive_never_writes_outside_staging(archive: Archive, limits: UnpackLimits) -> None:
    """Whole archives of hostile members: a PfsWatchError or a clean tree, and nothing changes outside."""
    _check_extract(archive.suffix, archive.data, limits)


@_settings(200)
@given(archive=archives(depth=1), damage=DAMAGE, limits=LIMITS)
def test_damaged_archive_never_writes_outside_staging(
    archive: Archive, damage: tuple[list[tuple[int, int]], int | None], limits: UnpackLimits,
) -> None:
    """Flipped bytes and cuts at any offset: still only our errors, staging removed, nothing outside."""
    _check_extract(archive.suffix, _damage(archive.data, damage), limits)


@_settings(300)
@given(archive=archives(depth=1), damage=UNDAMAGED | UNDAMAGED | DAMAGE,
       limits=st.just(UnpackLimits()) | LIMITS, occupied=st.booleans())
def test_fuzzed_unpack_never_writes_outside_dest(
    archive: Archive, damage: tuple[list[tuple[int, int]], int | None], limits: UnpackLimits,
    occupied: bool,
) -> None:
    """unpack changes nothing outside dest, never overwrites a file in dest, and empties its staging."""
    sandbox, archive_path = _sandbox(archive.suffix, _damage(archive.data, damage))
    try:
        dest = sandbox / "dest"
        kept = [dest / "fuzz" / name for name in ("a", "x.fits", "é", "b/x.fits", "b/link") if occupied]
        for path in kept:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"old")
        before, dest_before = _world(sandbox, (dest,)), _snapshot(dest, (dest / STAGING_DIR_NAME,))
        try:
            result = unpack(archive_path, dest, limits=limits)
        except UNPACK_ERRORS as exc:
            event(f"unpack: {type(exc).__name__}")
            if not isinstance(exc, ConflictError):  # refused before publishing: dest is as it was
                assert _snapshot(dest, (dest / STAGING_DIR_NAME,)) == dest_before
        else:
            event(f"unpacked {len(result.published)} files")
            assert result.dest == dest / "fuzz"
            assert all(path.is_relative_to(result.dest) for path in result.published)
            _check_tree(result.dest, modes=False)
        assert _world(sandbox, (dest,)) == before, "something outside dest changed"
        assert set(os.listdir(dest)) <= {"fuzz", STAGING_DIR_NAME}
        assert os.listdir(dest / STAGING_DIR_NAME) == [], "staging left behind"
        for path in kept:
            assert not path.is_symlink() and path.read_bytes() == b"old", path
    finally:
        shutil.rmtree(sandbox)


FILE_NAMES = st.builds("{}/{}".format, st.sampled_from(["raw", "raw/sps", "a", "é"]),
                       st.sampled_from(["PFSA00000111.fits", "PFSA00000112.fits", "x.fits", "日本語"]))


def _compress_parts(suffix: str, parts: list[bytes], streams: bool) -> bytes:
    """The tars cat'ed and compressed once, or each compressed on its own and the streams cat'ed."""
    if streams:
        return b"".join(COMPRESS[suffix](part) for part in parts)
    return COMPRESS[suffix](b"".join(parts))


@_settings(150)
@given(files=st.lists(st.tuples(FILE_NAMES, st.binary(max_size=600)), min_size=1, max_size=6),
       cuts=st.lists(st.integers(0, 6), max_size=2), fmt=FORMATS, suffix=st.sampled_from(sorted(COMPRESS)),
       streams=st.booleans(), padding=st.sampled_from([0, 512, 1024, 10240]))
def test_concatenated_tars_lose_no_member_and_a_name_twice_is_refused(
    files: list[tuple[str, bytes]], cuts: list[int], fmt: int, suffix: str, streams: bool, padding: int,
) -> None:
    """Files split over 1-3 tars cat'ed together (or their compressed streams, with extra zero blocks):
    either every file is extracted with its bytes, or, when a name is used twice, the archive is refused
    naming that member; never one member silently kept and the other dropped."""
    bounds = sorted({min(cut, len(files)) for cut in cuts} | {0, len(files)})
    parts = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        members = [(_info(name, tarfile.REGTYPE, "", size=len(data)), data) for name, data in files[start:end]]
        parts.append(_tar(members, fmt)[0] + bytes(padding))
    sandbox, archive = _sandbox(suffix, _compress_parts(suffix, parts, streams))
    try:
        names = [name for name, _ in files]
        twice = {name for name in names if names.count(name) > 1}
        event(f"{len(parts)} tars, {'a name twice' if twice else 'distinct names'}")
        staging = sandbox / "staging"
        if twice:
            try:
                extract(archive, staging)
            except CorruptArchiveError as exc:
                assert "appears twice" in str(exc) and any(repr(name) in str(exc) for name in twice), exc
            else:
                raise AssertionError(f"{sorted(twice)} used twice and not refused")
            assert not os.path.lexists(staging)
        else:
            assert archive_complete(archive)
            extracted = extract(archive, staging)
            found = {str(path.relative_to(staging)): path.read_bytes() for path in staging.rglob("*")
                     if path.is_file()}
            assert found == dict(files) and extracted.members == len(files)
    finally:
        shutil.rmtree(sandbox)
