"""PostgreSQL fixtures; tests/conftest.py imports them:

    from conftest_pg import pg_database, postgres  # noqa: F401

``postgres`` is one real server (tests/pgserver.py) shared by the session;
``pg_database`` is a fresh database on it (with btree_gist) per test, given as
its ``postgresql+psycopg2://`` URL and dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from pgserver import PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A started PostgreSQL server for the whole session (tests may stop/restart it)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture()
def pg_database(postgres: PostgresServer) -> Iterator[str]:
    """URL of a new, empty database (btree_gist installed) on the session server."""
    postgres.start()  # a no-op unless an earlier test left it stopped
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = postgres.create_database(name)
    yield url
    postgres.start()
    postgres.drop_database(name)
