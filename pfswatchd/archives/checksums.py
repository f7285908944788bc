"""Checksum sidecars in an extracted tree: find them, hash what they list, report per file.

Recognised sidecars, by name:

- ``<file>.md5`` / ``.sha1`` / ``.sha256`` / ``.sha512``: a bare digest for ``<file>``, or md5sum-style lines;
- md5sum/sha256sum lists: ``MD5SUMS``, ``SHA256SUMS`` (any ``*SUMS``), ``*.md5sum``, ``*.sha256sum``, and
  STARS-style ``0_list_*`` files.  Lines are ``<hex>  <name>`` or ``<hex> *<name>``; other lines (such as
  the URLs of a ``wget -i`` list) are ignored.

The algorithm is taken from the digest's length (32 hex digits md5, 40 sha1, 64 sha256, 128 sha512), so a
list named ``MD5SUMS`` that holds sha256 digests is still checked correctly.  Names are relative to the
sidecar's folder; a name that is absolute or leaves the tree (``md5sum /data/x.fits > x.fits.md5`` on the
server) is looked up by its base name next to the sidecar.  Nothing outside the tree is ever read.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pfswatchd.errors import ChecksumMismatchError
from pfswatchd.files.names import is_checksum_name

_ALGORITHMS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_SIDECAR_SUFFIX = re.compile(r"\.(md5|sha1|sha256|sha512)$", re.IGNORECASE)
_LINE = re.compile(r"([0-9a-fA-F]{32,128})(?:[ \t]+\*?(.+))?")
_MAX_SIDECAR_BYTES = 16 * 2**20  # a "sidecar" bigger than this is data with an unlucky name
_CHUNK = 4 * 2**20

Status = Literal["ok", "mismatch", "missing"]


@dataclass(frozen=True, slots=True)
class ChecksumResult:
    """One file checked against one sidecar line.

    Attributes:
        path: the listed file (absolute, inside the tree).
        sidecar: the sidecar that lists it.
        algorithm: ``md5``, ``sha1``, ``sha256`` or ``sha512``.
        expected: the digest the sidecar gives (lower case).
        actual: the file's digest, or None when the file is missing.
    """

    path: Path
    sidecar: Path
    algorithm: str
    expected: str
    actual: str | None

    @property
    def status(self) -> Status:
        if self.actual is None:
            return "missing"
        return "ok" if self.actual == self.expected else "mismatch"

    @property
    def error(self) -> ChecksumMismatchError | None:
        """The error to record for a mismatch; None when the file is fine or missing."""
        if self.status != "mismatch":
            return None
        return ChecksumMismatchError(
            f"{self.path.name}: {self.algorithm} is {self.actual}, expected {self.expected} "
            f"(from {self.sidecar.name})"
        )


@dataclass(frozen=True, slots=True)
class ChecksumReport:
    """Every sidecar line found under the verified folder, in walk order."""

    results: tuple[ChecksumResult, ...]

    @property
    def mismatched(self) -> tuple[ChecksumResult, ...]:
        return tuple(r for r in self.results if r.status == "mismatch")

    @property
    def missing(self) -> tuple[ChecksumResult, ...]:
        """Listed files that are not in the tree: recorded, not an error."""
        return tuple(r for r in self.results if r.status == "missing")

    @property
    def failed_paths(self) -> frozenset[Path]:
        """Files that do not match a sidecar; they must not be published."""
        return frozenset(r.path for r in self.mismatched)


def hash_file(path: Path, algorithm: str) -> str:
    """The hex digest of ``path``, read in 4 MiB chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as stream:
        while count := stream.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def read_sidecar(path: Path) -> list[tuple[str, str, str | None]]:
    """The ``(algorithm, digest, name)`` entries of a sidecar; ``name`` is None for a bare digest.

    A file too large to be a sidecar, or one that cannot be decoded as text, gives no entries.
    """
    if path.stat().st_size > _MAX_SIDECAR_BYTES:
        return []
    entries: list[tuple[str, str, str | None]] = []
    for raw_line in path.read_bytes().decode("utf-8", "surrogateescape").splitlines():
        line = raw_line.strip()
        escaped = line.startswith("\\")  # md5sum escapes names holding '\' or a newline this way
        match = _LINE.fullmatch(line[1:] if escaped else line)
        if match is None or len(match[1]) not in _ALGORITHMS:
            continue
        name = match[2]
        if name is not None and escaped:
            name = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], name)
        entries.append((_ALGORITHMS[len(match[1])], match[1].lower(), name))
    return entries


def verify_tree(root: Path) -> ChecksumReport:
    """Check every file listed by a sidecar under ``root``.

    Each file is hashed once per algorithm, however many sidecars list it.

    Returns:
        The per-line results; mismatches carry a ``ChecksumMismatchError`` in ``error``.
    """
    root = Path(root)
    top = os.path.realpath(root)
    digests: dict[tuple[str, str], str] = {}
    results: list[ChecksumResult] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            sidecar = Path(folder, name)
            if not is_checksum_name(name) or not sidecar.is_file():
                continue
            for algorithm, expected, listed in read_sidecar(sidecar):
                if listed is None:
                    base = _SIDECAR_SUFFIX.sub("", name)
                    if base == name:  # a bare digest in a list file names no file
                        continue
                    listed = base
                target = _resolve(sidecar.parent, listed, top)
                real = os.path.realpath(target)
                actual: str | None = None
                if _inside(real, top) and os.path.isfile(real):
                    key = (real, algorithm)
                    if key not in digests:
                        digests[key] = hash_file(Path(real), algorithm)
                    actual = digests[key]
                results.append(ChecksumResult(target, sidecar, algorithm, expected, actual))
    return ChecksumReport(tuple(results))


def _resolve(folder: Path, listed: str, top: str) -> Path:
    """Where a listed name points: next to the sidecar, or its base name there when it leaves the tree."""
    candidate = Path(os.path.normpath(folder / listed))
    if not listed.startswith("/") and _inside(os.path.realpath(candidate.parent), top):
        return candidate
    return folder / Path(listed).name


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)
