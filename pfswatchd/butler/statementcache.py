"""The registry's cache of compiled SQL statements, bounded and kept for statements that are used again.

Every ``Butler.ingest`` call inserts its datasets through a temporary table with a new name
(``tmp_<uuid>``): three or four statements per call that SQLAlchemy compiles, caches, and never
uses again.  Its engine cache keeps 500 (pruned when it reaches 750, the least recently used first),
so a service's memory grew with the files it ingested until some 45,000 files, and then went up and
down by thousands of objects with every prune.

:func:`bound` gives the registry's engine a cache that takes a statement only the second time it is
compiled (the first time only its hash is noted, in a bounded list): the temporary tables' statements
never enter it, the few dozen a batch uses again do, at the cost of one more compilation each.  A
statement of a temporary table that one batch compiles twice (seen in a run of small batches: seven
of one table's statements) is not admitted either: its key names the table (``tmp_``, daf_butler's
prefix for them).  The cache itself is bounded too (:data:`SIZE`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.util import LRUCache

SIZE = 300  # compiled statements kept (SQLAlchemy prunes at 1.5 x); a batch uses a few dozen
TEMPORARY = "'tmp_"  # how a temporary table's name starts in a statement's cache key
SEEN = 2000  # hashes of statements compiled once, kept to tell a second compilation


class ReusedStatements(LRUCache[Any, Any]):
    """An LRU cache of compiled statements that admits a statement when it is compiled a second time."""

    def __init__(self, capacity: int = SIZE, seen: int = SEEN) -> None:
        super().__init__(capacity)
        self._once: LRUCache[int, bool] = LRUCache(seen)

    def __setitem__(self, key: Any, value: Any) -> None:
        digest = hash(key)
        if not self._once.get(digest):
            self._once[digest] = True
        elif TEMPORARY not in str(key):  # only on a second compilation: rare, and the key is short
            super().__setitem__(key, value)


def bound(butler: Any, size: int | None = None) -> None:
    """Give ``butler``'s registry database a :class:`ReusedStatements` cache of ``size`` (:data:`SIZE`)."""
    engine = getattr(getattr(getattr(butler, "_registry", None), "_db", None), "_engine", None)
    if engine is None:  # not a butler with a SQL registry of its own (a remote one): nothing to bound
        return
    engine.update_execution_options(compiled_cache=ReusedStatements(size or SIZE))
    if engine._compiled_cache is not None:  # what start-up compiled, before this one was in place
        engine._compiled_cache.clear()
