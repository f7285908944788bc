"""Planner statistics for a SQLite registry, so that one ingest costs the same in a year's repository.

Every ``Butler.ingest`` call checks its new datasets against those registered: daf_butler puts them in a
temporary table and joins it with the ``dataset`` and ``dataset_tags_*`` tables (same id, same data ID,
same run).  SQLite, which has no statistics about any of these tables, assumes a million rows in each
and starts the join from the registry's table: it reads every registered dataset to check one file.
Measured (bench_scale, 200,000 raws registered): 95 ms per single-file ingest, 65 ms of them in those
checks; at 2 million (a year) the checks alone would take most of a second per file.  A real
``ANALYZE`` makes it worse (117 ms): the registry's tables are then known to hold 200,000 rows, fewer
than the million assumed for the temporary table, which nothing ever analyses.

SQLite documents the fix ("Manual Control Of Query Plans Using SQLITE_STAT Tables"): rows written into
``sqlite_stat1``.  :func:`fit` writes, for every index of the dataset tables and the file datastore's
table, what SQLite assumes without statistics (about 10 rows per value of the first column, 9, 8 ...
for more, one for a unique index) except the number of rows, which it says is :data:`ROWS`, more than
any temporary table.  The planner then starts from the temporary table and looks each new dataset up
by index: 40-65 ms per single-file ingest at 200,000 raws (most of what remains is daf_butler's own
``DELETE ... IN (SELECT id FROM dataset)``, 14-21 ms, which SQLite 3.40 runs over the whole index
whatever the statistics: it assumes a subquery yields 25 rows).  Nothing else in the registry changes,
and a registry that is not SQLite is left alone.
The rows are written again whenever they are missing (a new dataset table, or an ``ANALYZE`` run by
hand replaced them), each time a writeable butler is opened; a new connection reads them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

ROWS = 2**30  # rows each dataset table is said to hold
PER_VALUE = (10, 9, 8, 7, 6)  # SQLite's own guesses without statistics, rows per value of 1, 2 ... columns
MORE = 5  # ... and for more columns
# The tables those checks join (LIKE patterns, backslash escapes): one row per dataset, or per file.
TABLES = ("dataset", "dataset\\_tags\\_%", "dataset\\_calibs\\_%", "file\\_datastore\\_records")


def registry_file(db: str, root: str | Path) -> Path | None:
    """The SQLite file of a registry URL as butler.yaml gives it (``<butlerRoot>`` resolved), or None
    for another database."""
    prefix = "sqlite:///"
    if not db.startswith(prefix):
        return None
    return Path(db[len(prefix):].replace("<butlerRoot>", str(root)))


def stat(key_columns: int, unique: bool) -> str:
    """The sqlite_stat1 text of an index with ``key_columns`` columns."""
    per_value = [PER_VALUE[i] if i < len(PER_VALUE) else MORE for i in range(key_columns)]
    if unique and per_value:
        per_value[-1] = 1
    return " ".join(str(n) for n in (ROWS, *per_value))


def fit(path: Path, timeout: float = 30.0) -> int:
    """Write the statistics of the dataset tables' indexes into the registry at ``path`` where they are not
    already ours; return how many index rows were written (0: they were all there)."""
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        like = " OR ".join("tbl_name LIKE ? ESCAPE '\\'" for _ in TABLES)
        indexes = db.execute(f"SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND ({like})",
                             TABLES).fetchall()
        if not indexes:
            return 0
        wanted = {}
        for index, table in indexes:
            unique = {row[1]: bool(row[2]) for row in db.execute(f'PRAGMA index_list("{table}")')}
            columns = len(db.execute(f'PRAGMA index_info("{index}")').fetchall())
            wanted[(table, index)] = stat(columns, unique.get(index, False))
        have = {}
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
            have = {(t, i): s for t, i, s in db.execute("SELECT tbl, idx, stat FROM sqlite_stat1")}
        missing = {key: text for key, text in wanted.items() if have.get(key) != text}
        if not missing:
            return 0
        db.execute("BEGIN IMMEDIATE")
        try:
            if not have:
                # sqlite_stat1 cannot be created by hand: ANALYZE of one small table creates it.
                small = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' "
                                   "ORDER BY name = 'butler_attributes' DESC LIMIT 1").fetchone()
                db.execute(f'ANALYZE "{small[0]}"')
            for (table, index), text in missing.items():
                db.execute("DELETE FROM sqlite_stat1 WHERE tbl = ? AND idx = ?", (table, index))
                db.execute("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", (table, index, text))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(missing)
    finally:
        db.close()
