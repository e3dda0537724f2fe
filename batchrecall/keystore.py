"""Item keys with a short value each, in memory while few and in a temporary SQLite file beyond.

Duplicate detection and the resume index must remember every item of a run; kept in a dict that
memory would grow with the job's length, so past `memory_limit` keys they move to disk.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

DEFAULT_MEMORY_LIMIT = 100_000


class KeyStore:
    def __init__(self, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        self._limit = memory_limit
        self._memory: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None
        self._cleanup: weakref.finalize[..., KeyStore] | None = None
        self._folder: Path | None = None
        self._count = 0

    @property
    def folder(self) -> Path | None:
        """Where the temporary file lies once the keys spilled to disk."""
        return self._folder

    def __len__(self) -> int:
        return self._count

    def add_new(self, key: str, value: str = "") -> bool:
        """Store `key` if it is not there yet; True when it was new."""
        if self._db is None:
            if key in self._memory:
                return False
            self._memory[key] = value
            self._count += 1
            self._spill_if_full()
            return True
        cursor = self._db.execute("INSERT OR IGNORE INTO kv VALUES (?, ?)", (key, value))
        added = cursor.rowcount == 1
        self._count += added
        return added

    def put(self, key: str, value: str) -> None:
        if self._db is None:
            self._count += key not in self._memory
            self._memory[key] = value
            self._spill_if_full()
        elif not self.add_new(key, value):
            self._db.execute("UPDATE kv SET v = ? WHERE k = ?", (value, key))

    def get(self, key: str) -> str | None:
        if self._db is None:
            return self._memory.get(key)
        row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def items(self) -> Iterator[tuple[str, str]]:
        if self._db is None:
            yield from list(self._memory.items())
            return
        for key, value in self._db.execute("SELECT k, v FROM kv ORDER BY k"):
            yield str(key), str(value)

    def close(self) -> None:
        """Forget everything; a spilled store's temporary file is removed."""
        if self._cleanup is not None:
            self._cleanup()
        self._db = None
        self._memory.clear()

    def _spill_if_full(self) -> None:
        if len(self._memory) <= self._limit:
            return
        folder = Path(tempfile.mkdtemp(prefix="batchrecall-"))
        db = sqlite3.connect(folder / "keys.sqlite3", isolation_level=None)
        # Removed on close(), or when the store is collected, or at exit, whichever comes first.
        self._cleanup = weakref.finalize(self, _remove, db, folder)
        self._folder = folder
        # A scratch file: nothing to recover after a crash, so no journal and no syncs.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -8000")
        db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID")
        db.execute("BEGIN")
        db.executemany("INSERT INTO kv VALUES (?, ?)", self._memory.items())
        db.execute("COMMIT")
        self._memory.clear()
        self._db = db


def _remove(db: sqlite3.Connection, folder: Path) -> None:
    db.close()
    shutil.rmtree(folder, ignore_errors=True)
