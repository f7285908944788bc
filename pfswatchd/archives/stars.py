"""STARS2 download bundles (S2Query.tar): detect them, run their fetch script, or tell the operator how.

An S2Query.tar holds a download script, ``zadmin/unpack.py``, not the data: run in the extracted folder
it asks which network to use and then fetches the FITS files into that folder
(pfs-datamodel.md section 6).  Running it is the operator's choice; by default the daemon records
``operator_instructions`` instead.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pfswatchd.errors import UnpackScriptError

if TYPE_CHECKING:
    from pfswatchd.archives.tarstream import Extracted

SCRIPT = Path("zadmin", "unpack.py")
DEFAULT_ENV = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR")
_TAIL_BYTES = 4096


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """A finished run of ``zadmin/unpack.py``.

    Attributes:
        folder: the bundle folder the script ran in.
        new_files: files that were not in ``folder`` before the run (absolute paths, sorted).
        stdout_tail: the last lines the script printed (at most 4 KiB).
        seconds: how long it ran.
    """

    folder: Path
    new_files: tuple[Path, ...]
    stdout_tail: str
    seconds: float


def is_stars_bundle(extracted: Extracted | Path) -> bool:
    """True when the extracted tree holds ``zadmin/unpack.py`` at its top (a regular file, not a link)."""
    root = extracted if isinstance(extracted, Path) else extracted.root
    try:
        return stat.S_ISREG(os.lstat(root / SCRIPT).st_mode) and not (root / "zadmin").is_symlink()
    except OSError:
        return False


def operator_instructions(folder: Path) -> str:
    """The paragraph the daemon records when it does not run the script itself."""
    return (
        f"STARS2 download bundle extracted to {folder}. It holds a download script, not the data; "
        f"pfswatchd did not run it (running the script is disabled). To fetch the data, run: "
        f"cd {shlex.quote(str(folder))} && python3 zadmin/unpack.py (it asks which network to use). "
        "Fetched files placed in the watched folder will be ingested automatically."
    )


def run_unpack_script(
    folder: Path,
    *,
    network: str,
    timeout: float,
    env_allow: tuple[str, ...] = DEFAULT_ENV,
) -> ScriptResult:
    """Run ``zadmin/unpack.py`` in ``folder`` and answer its network question with ``network``.

    The script runs as ``sys.executable zadmin/unpack.py`` (no shell) in its own process group, with
    only the ``env_allow`` variables; HOME and TMPDIR point into a private folder next to ``folder``
    that is removed afterwards.  Its output goes to files, so a chatty or stuck child cannot block on a
    pipe.  When it ends, whatever it left running in its process group is killed too.

    Returns:
        The files it created.

    Raises:
        ValueError: ``network`` spans more than one line.
        UnpackScriptError: the script is missing, exits non-zero, or runs longer than ``timeout`` seconds
            (it is then killed with its process group).
    """
    folder = Path(folder)
    if "\n" in network or "\r" in network:
        raise ValueError(f"network {network!r}: expected a single line")
    script = folder / SCRIPT
    if not script.is_file():
        raise UnpackScriptError(f"{script}: not found; expected the STARS2 download script there")
    before = _files(folder)
    area = Path(tempfile.mkdtemp(prefix=".pfswatchd-script-", dir=folder.parent))
    try:
        env = _environment(env_allow, area)
        started = time.monotonic()
        with open(area / "stdout", "w+b") as out, open(area / "stderr", "w+b") as err:
            returncode = _run(folder, network, timeout, env, out, err, script)
            stdout_tail, stderr_tail = _tail(out), _tail(err)
        seconds = time.monotonic() - started
    finally:
        shutil.rmtree(area, ignore_errors=True)
    if returncode != 0:
        last = stderr_tail.strip().splitlines()[-1:] or ["(no output on stderr)"]
        how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
        raise UnpackScriptError(f"{script} {how}: {last[0]}; expected exit code 0")
    new = tuple(sorted(folder / name for name in _files(folder) - before))
    return ScriptResult(folder, new, stdout_tail, seconds)


def _run(folder: Path, network: str, timeout: float, env: dict[str, str], out: BinaryIO, err: BinaryIO,
         script: Path) -> int:
    """Start the script, feed its stdin, wait; kill its process group on timeout and after it ends."""
    process = subprocess.Popen(  # noqa: S603 - an argument list, never a shell
        [sys.executable, str(SCRIPT)],
        cwd=folder,
        stdin=subprocess.PIPE,
        stdout=out,
        stderr=err,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    assert process.stdin is not None
    try:
        process.stdin.write(f"{network}\n".encode())
        process.stdin.close()
    except BrokenPipeError:  # the script exited without reading its question
        pass
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        process.wait()
        raise UnpackScriptError(
            f"{script} did not finish within {timeout:g} s and was killed with its process group; "
            "expected it to finish (raise the timeout for a slow network)"
        ) from None
    finally:
        _kill_group(process.pid)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left to kill
        os.killpg(pgid, signal.SIGKILL)


def _environment(env_allow: tuple[str, ...], area: Path) -> dict[str, str]:
    """Only the allowed variables; HOME and TMPDIR inside ``area``."""
    env: dict[str, str] = {}
    for key in env_allow:
        if key in ("HOME", "TMPDIR"):
            private = area / key.lower()
            private.mkdir(mode=0o700)
            env[key] = str(private)
        elif key in os.environ:
            env[key] = os.environ[key]
    return env


def _files(folder: Path) -> set[str]:
    """Relative paths of the files under ``folder`` (links not followed)."""
    found: set[str] = set()
    for parent, _dirnames, filenames in os.walk(folder):
        found.update(os.path.relpath(os.path.join(parent, name), folder) for name in filenames)
    return found


def _tail(stream: BinaryIO) -> str:
    """The last few KiB written to an output file, decoded leniently."""
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - _TAIL_BYTES))
    return stream.read().decode("utf-8", "replace")
