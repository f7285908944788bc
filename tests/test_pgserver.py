"""The throw-away PostgreSQL server of tests/pgserver.py works as the other tests assume."""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from pgserver import PostgresServer

pytestmark = pytest.mark.postgres


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())  # a zombie has exited


def _postmaster_pid(server: PostgresServer) -> int:
    return int((server.data / "postmaster.pid").read_text().split()[0])


def test_accepts_the_password_over_tcp(postgres):
    url = sa.engine.make_url(postgres.admin_url)
    assert (url.drivername, url.host, url.port, url.database) == ("postgresql+psycopg2", "127.0.0.1",
                                                                   postgres.port, "postgres")
    assert url.username == postgres.user and url.password == postgres.password
    engine = sa.create_engine(postgres.admin_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == postgres.user
            assert conn.execute(sa.text("SELECT inet_server_addr()::text")).scalar() == "127.0.0.1/32"
            settings = dict(conn.execute(sa.text(
                "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'fsync', "
                "'synchronous_commit', 'full_page_writes', 'max_connections', 'password_encryption')")).all())
    finally:
        engine.dispose()
    assert settings == {"listen_addresses": "127.0.0.1", "fsync": "off", "synchronous_commit": "off",
                        "full_page_writes": "off", "max_connections": "200",
                        "password_encryption": "scram-sha-256"}


def test_refuses_a_wrong_or_missing_password(postgres):
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        postgres.connect(password="not-" + postgres.password)
    with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
        postgres.connect(password="")
    wrong = postgres.admin_url.replace(postgres.password, "wrong")
    engine = sa.create_engine(wrong)
    try:
        with pytest.raises(sa.exc.OperationalError, match="password authentication failed"), engine.connect():
            pass
    finally:
        engine.dispose()


def test_runs_as_an_unprivileged_user(postgres):
    pid = _postmaster_pid(postgres)
    uid = int(next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("Uid:")).split()[1])
    if os.geteuid() == 0:
        expected = {pwd.getpwnam(name).pw_uid for name in ("postgres", "nobody")
                    if name in {p.pw_name for p in pwd.getpwall()}}
        assert uid in expected and uid != 0
        assert postgres.data.stat().st_uid == uid
    else:
        assert uid == os.geteuid()


def test_created_databases_have_btree_gist(postgres, pg_database):
    engine = sa.create_engine(pg_database)
    try:
        with engine.begin() as conn:
            name = conn.execute(sa.text("SELECT current_database()")).scalar()
            assert name == pg_database.rsplit("/", 1)[1]
            assert "btree_gist" in conn.execute(sa.text("SELECT extname FROM pg_extension")).scalars().all()
            # What the butler uses it for: an exclusion constraint mixing = on a scalar and && on a range.
            conn.execute(sa.text("CREATE TABLE calib (detector int, valid tsrange, "
                                 "EXCLUDE USING gist (detector WITH =, valid WITH &&))"))
            conn.execute(sa.text("INSERT INTO calib VALUES (1, '[2025-01-01,2025-02-01)')"))
            conn.execute(sa.text("INSERT INTO calib VALUES (2, '[2025-01-01,2025-02-01)')"))
        with pytest.raises(sa.exc.IntegrityError, match="exclusion constraint"), engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO calib VALUES (1, '[2025-01-15,2025-03-01)')"))
    finally:
        engine.dispose()


def test_restart_keeps_data_and_port(postgres, pg_database):
    engine = sa.create_engine(pg_database)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE kept (x int)"))
            conn.execute(sa.text("INSERT INTO kept VALUES (42)"))
        port, pid = postgres.port, _postmaster_pid(postgres)
        postgres.restart()
        assert postgres.port == port and postgres.running
        assert _postmaster_pid(postgres) != pid and not _alive(pid)
        engine.dispose()  # the pooled connection died with the old server
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT x FROM kept")).scalar() == 42
    finally:
        engine.dispose()


def test_stop_frees_the_port_and_close_removes_everything():
    server = PostgresServer()
    try:
        server.start()
        port, base, pid = server.port, server.base, _postmaster_pid(server)
        assert _port_open(port)
        server.stop()
        assert not server.running and not _alive(pid)
        assert not _port_open(port)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))  # nobody holds it any more
        with pytest.raises(psycopg2.OperationalError):
            server.connect()
        server.start()  # stop keeps the cluster: it starts again on the same port
        assert server.port == port and _port_open(port)
    finally:
        server.close()
    assert not base.exists() and not _port_open(port)
    server.close()  # twice is fine


class _TestFailed(Exception):
    pass


def test_a_failing_test_still_cleans_up():
    with pytest.raises(_TestFailed), PostgresServer() as server:
        base, port, pid = server.base, server.port, _postmaster_pid(server)
        raise _TestFailed
    assert not base.exists() and not _port_open(port) and not _alive(pid)

