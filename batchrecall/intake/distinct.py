"""How many distinct item keys a job holds, with memory flat on any number of them.

`validate` needs the count only at the end, never an answer per key as a run does (KeyStore), so
keys gather in a batch that goes into a temporary SQLite table sorted, all at once: a B-tree
takes sorted keys along its leaves in order, where a key at a time lands on a random page.
`batchrecall validate` on 1,000,000 distinct keys: 3.5 us of CPU a key, against 11 us through
KeyStore (its Bloom filter in Python and one insert a key).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import weakref
from pathlib import Path

__all__ = ["DistinctKeys"]

_BATCH = 50_000


class DistinctKeys:
    """Counts distinct keys: a batch in memory, then each batch into a temporary SQLite file."""

    def __init__(self, batch: int | None = None) -> None:
        self._batch = _BATCH if batch is None else batch
        self._pending: list[str] = []
        self._stored = 0
        self._db: sqlite3.Connection | None = None
        self._cleanup: weakref.finalize[..., DistinctKeys] | None = None

    def add(self, key: str) -> None:
        self._pending.append(key)
        if len(self._pending) >= self._batch:
            self._flush()

    def count(self) -> int:
        """The distinct keys added so far."""
        if self._db is None:
            return len(set(self._pending))
        self._flush()
        return self._stored

    def close(self) -> None:
        """Forget the keys; the temporary file, if any, is removed."""
        if self._cleanup is not None:
            self._cleanup()
        self._db = None
        self._pending = []

    def _flush(self) -> None:
        db = self._db or self._open()
        batch = sorted(set(self._pending))
        self._pending = []
        db.execute("BEGIN")
        # A key already stored is ignored, so the rows inserted are the new distinct keys.
        self._stored += db.executemany("INSERT OR IGNORE INTO k VALUES (?)", zip(batch)).rowcount
        db.execute("COMMIT")

    def _open(self) -> sqlite3.Connection:
        folder = Path(tempfile.mkdtemp(prefix="batchrecall-"))
        db = sqlite3.connect(folder / "keys.sqlite3", isolation_level=None)
        self._cleanup = weakref.finalize(self, _remove, db, folder)
        # A scratch file: nothing to recover after a crash, so no journal and no syncs.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -4000")
        db.execute("CREATE TABLE k (k TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db = db
        return db


def _remove(db: sqlite3.Connection, folder: Path) -> None:
    db.close()
    shutil.rmtree(folder, ignore_errors=True)
