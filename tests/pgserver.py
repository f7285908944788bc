"""A real, throw-away PostgreSQL server on loopback for tests.

``PostgresServer`` runs ``initdb`` into a fresh folder under /tmp, starts the
server on a free 127.0.0.1 port (password authentication, scram-sha-256, on
TCP; durability switched off for speed) and removes everything on
:meth:`close`, also when a test fails or the interpreter exits.  As root the
server runs as the ``postgres`` system user (or ``nobody``), because initdb
and postgres refuse to run as root.

    with PostgresServer() as server:
        url = server.create_database("ledger")   # postgresql+psycopg2://...
        server.restart()                         # same data, same port
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}
HBA = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"


def find_bindir() -> Path:
    """The folder holding initdb, pg_ctl and postgres."""
    candidates = []
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)
    versions = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    versions.sort(key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0), reverse=True)
    candidates += [Path(p).parent for p in versions]
    for folder in candidates:
        if all((folder / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
        "/usr/lib/postgresql/*/bin; scripts/test installs them (Debian package 'postgresql')"
    )


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, reachable on 127.0.0.1:``port``."""

    def __init__(self, *, user: str = "pfstest", timeout: float = 60.0) -> None:
        self.bindir = find_bindir()
        self.user = user
        self.password = "pw-" + secrets.token_hex(12)  # distinctive: tests grep for it
        self.timeout = timeout
        self.port = 0
        self.base: Path | None = None
        self.running = False
        self._prefix: list[str] = []  # runs the server tools as self._owner when we are root
        self._demote: Any = None  # or a preexec_fn, when neither runuser nor setpriv exists
        self._owner = _unprivileged_user() if os.geteuid() == 0 else None
        if (owner := self._owner) is not None:
            if shutil.which("runuser"):
                self._prefix = ["runuser", "-u", owner.pw_name, "--"]
            elif shutil.which("setpriv"):
                self._prefix = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}",
                                "--init-groups"]
            else:
                self._demote = lambda: (os.setgid(owner.pw_gid), os.setuid(owner.pw_uid))

    # -- paths and urls --------------------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.base is not None, "server not started"
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        assert self.base is not None, "server not started"
        return self.base / "server.log"

    def url(self, dbname: str) -> str:
        return (f"postgresql+psycopg2://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@127.0.0.1:{self.port}/{dbname}")

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Create the cluster (first time) and start it; a no-op when it runs already."""
        if self.running:
            return self
        first = self.base is None
        if first:
            atexit.register(self.close)  # removes the folder even if nobody calls close()
            self._initdb()
        for attempt in range(3):
            if first:
                with socket.socket() as sock:  # a free port (retried if someone takes it meanwhile)
                    sock.bind(("127.0.0.1", 0))
                    self.port = sock.getsockname()[1]
            done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t",
                             str(int(self.timeout)), "-o", f"-p {self.port}", "start", check=False)
            if done.returncode == 0:
                break
            if not (first and attempt < 2 and "could not bind" in self.log()):
                raise RuntimeError(f"pg_ctl start failed: {done.stdout}\n{self._log_tail()}")
        self.running = True
        self._wait_ready()
        return self

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``); the data folder stays for :meth:`start`."""
        if not self.running:
            return
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", str(int(self.timeout)), "stop")
        self.running = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop (or kill) the server and remove its folder; safe to call twice."""
        if self.base is None:
            return
        try:
            self.stop()
        except Exception:
            self._kill()
        self.running = False
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None
        atexit.unregister(self.close)

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- databases -------------------------------------------------------------------------------

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> Any:
        """A psycopg2 connection over TCP with the password (autocommit)."""
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=dbname,
                                password=kwargs.pop("password", self.password), connect_timeout=5, **kwargs)
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> str:
        """Create database ``name`` with the btree_gist extension; return its URL."""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with contextlib.closing(self.connect(name)) as conn, conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending its remaining connections."""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""

    # -- internals -------------------------------------------------------------------------------

    def _initdb(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="pgserver-", dir="/tmp"))
        self.base = base
        (base / "sock").mkdir()
        pwfile = base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._owner is not None:
            for path in (base, base / "sock", pwfile):
                os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
                      "--auth-local=trust", "--auth-host=scram-sha-256", "--no-locale", "-E", "UTF8",
                      "--no-sync")
        finally:
            pwfile.unlink()
        settings = {**SETTINGS, "unix_socket_directories": f"'{base / 'sock'}'"}
        with open(self.data / "postgresql.conf", "a") as conf:  # append: the file keeps its owner
            conf.write("\n# pgserver.py\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
        with open(self.data / "pg_hba.conf", "w") as hba:
            hba.write(HBA)

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        done = subprocess.run([*self._prefix, str(self.bindir / tool), *args], cwd=self.base, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=self.timeout + 30, preexec_fn=self._demote, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n"
                               f"{self._log_tail()}")
        return done

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.connect().close()
                return
            except psycopg2.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL on port {self.port} not ready: {exc}\n"
                                       f"{self._log_tail()}") from None
                time.sleep(0.1)

    def _kill(self) -> None:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)

    def _log_tail(self, lines: int = 40) -> str:
        text = self.log()
        return "server log:\n" + "\n".join(text.splitlines()[-lines:]) if text else "(no server log)"


def _unprivileged_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return pwd.getpwnam("nobody")
