"""The SQLite registry's planner statistics (pfswatchd/butler/sqlitestats.py), on a real repository."""

from __future__ import annotations

import sqlite3

from conftest import classified, make_ingester, write_raw
from pfswatchd.butler import repo, sqlitestats
from pfswatchd.model import Status


def _plan_of_the_ingest_check(db: sqlite3.Connection) -> list[str]:
    """EXPLAIN QUERY PLAN of the check daf_butler makes at each Butler.ingest (its _validate_import): a
    temporary table of the new datasets, shaped as the tags table, joined with the registered ones."""
    table = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dataset_tags_%' "
                       "ORDER BY name LIMIT 1").fetchone()[0]
    db.execute(f'CREATE TEMPORARY TABLE tmp_new AS SELECT * FROM "{table}" WHERE 0')
    db.execute("CREATE UNIQUE INDEX temp.tmp_new_pk ON tmp_new (dataset_id, collection_id)")
    rows = db.execute(f'EXPLAIN QUERY PLAN SELECT t.dataset_id FROM "{table}" AS t JOIN tmp_new AS n '
                      "ON t.dataset_id = n.dataset_id WHERE t.dataset_type_id != n.dataset_type_id").fetchall()
    db.execute("DROP TABLE tmp_new")
    return [row[-1] for row in rows]


def test_opening_a_repository_makes_the_ingest_check_look_datasets_up_by_index(pfs_repo, tmp_path):
    butler = repo.open_butler(pfs_repo)
    outcomes = make_ingester(butler, pfs_repo).ingest(
        classified(*(write_raw(tmp_path / "in", visit=4200, arm=arm) for arm in "brn")))
    assert {o.status for o in outcomes} == {Status.INGESTED}
    butler.close()
    registry = sqlitestats.registry_file("sqlite:///<butlerRoot>/gen3.sqlite3", pfs_repo)
    with sqlite3.connect(registry) as db:
        stats = dict(((t, i), s) for t, i, s in db.execute("SELECT tbl, idx, stat FROM sqlite_stat1"))
        plan = _plan_of_the_ingest_check(db)
    # Written when the butler was opened: every index of the dataset tables (raws' and pfsConfigs')
    assert stats[("dataset", "sqlite_autoindex_dataset_1")] == f"{sqlitestats.ROWS} 1"  # the unique id
    tags = {t for t, _ in stats if t.startswith("dataset_tags_")}
    assert len(tags) >= 2, stats
    # ... and the planner starts from the new datasets, looking each registered one up by index (without
    # them it read every registered dataset at each ingest: 65 ms of 95 at 200,000 raws).
    assert plan[0].startswith("SCAN n") and plan[1].startswith("SEARCH t USING"), plan


def test_the_statistics_are_written_again_only_when_they_are_not_ours(pfs_repo):
    registry = pfs_repo / "gen3.sqlite3"
    sqlitestats.fit(registry)
    assert sqlitestats.fit(registry) == 0  # all there: nothing written
    with sqlite3.connect(registry) as db:
        db.execute("ANALYZE")  # by hand: the true row counts (an empty table gets none)
    assert _dataset_id_stat(registry) != f"{sqlitestats.ROWS} 1"
    assert sqlitestats.fit(registry) > 0
    assert _dataset_id_stat(registry) == f"{sqlitestats.ROWS} 1"
    assert sqlitestats.fit(registry) == 0


def _dataset_id_stat(registry) -> str | None:
    with sqlite3.connect(registry) as db:
        row = db.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'sqlite_autoindex_dataset_1'").fetchone()
    return row[0] if row else None


def test_only_a_sqlite_registry_is_touched():
    assert sqlitestats.registry_file("postgresql+psycopg2://pfs@db/registry", "/repo") is None
    assert str(sqlitestats.registry_file("sqlite:///<butlerRoot>/gen3.sqlite3", "/data/repo")) == \
        "/data/repo/gen3.sqlite3"
    assert sqlitestats.stat(3, unique=True) == f"{sqlitestats.ROWS} 10 9 1"
    assert sqlitestats.stat(2, unique=False) == f"{sqlitestats.ROWS} 10 9"
