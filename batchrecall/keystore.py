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

DEFAULT_MEMORY_LIMIT = 10_000


class KeyStore:
    """Keys and their values: a dict up to `memory_limit` keys, then a temporary SQLite file.

    Once on disk, new keys gather in a small buffer written a batch at a time, and a Bloom filter
    answers "never seen" for most keys without asking SQLite: a key a statement cost some 16 us,
    a batch insert and the filter about 2 us.
    """

    def __init__(self, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        self._limit = memory_limit
        self._memory: dict[str, str] = {}
        self._pending: dict[str, str] = {}
        """Spilled: keys added or changed since the last batch write."""
        self._bloom = _BloomFilter()
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
        if key in self._pending or self._stored(key):
            return False
        self._pending[key] = value
        self._count += 1
        self._flush_if_full()
        return True

    def put(self, key: str, value: str) -> None:
        if self._db is None:
            self._count += key not in self._memory
            self._memory[key] = value
            self._spill_if_full()
            return
        known = key in self._pending or self._stored(key)
        self._pending[key] = value
        self._count += not known
        self._flush_if_full()

    def get(self, key: str) -> str | None:
        if self._db is None:
            return self._memory.get(key)
        if key in self._pending:
            return self._pending[key]
        if not self._bloom.may_hold(key):
            return None
        row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def items(self) -> Iterator[tuple[str, str]]:
        if self._db is None:
            yield from list(self._memory.items())
            return
        self._flush()
        for key, value in self._db.execute("SELECT k, v FROM kv ORDER BY k"):
            yield str(key), str(value)

    def close(self) -> None:
        """Forget everything; a spilled store's temporary file is removed."""
        if self._cleanup is not None:
            self._cleanup()
        self._db = None
        self._memory.clear()
        self._pending.clear()

    def _stored(self, key: str) -> bool:
        """Whether a spilled `key` is on disk; it joins the Bloom filter either way (the callers
        store it next)."""
        assert self._db is not None
        if not self._bloom.add(key):
            return False  # surely never added
        return self._db.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None

    def _flush_if_full(self) -> None:
        if len(self._pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._db is None or not self._pending:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", self._pending.items())
        self._db.execute("COMMIT")
        self._pending.clear()

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
        db.execute("PRAGMA cache_size = -4000")
        db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID")
        self._db = db
        self._pending = self._memory
        self._memory = {}
        for key in self._pending:
            self._bloom.add(key)
        self._flush()


# Keys written to disk a batch at a time.
_BATCH = 2_048


class _BloomFilter:
    """Which keys were surely never added: 2**25 bits (4 MiB), 4 probes a key. Up to 1,000,000
    keys it wrongly says "maybe" for 1 key in 6,000; at 10,000,000 for 1 in 4 (SQLite answers)."""

    _BITS_LOG2 = 25
    _PROBES = 4

    def __init__(self) -> None:
        self._bits: bytearray | None = None  # allocated on the first add
        self._mask = (1 << self._BITS_LOG2) - 1

    def add(self, key: str) -> bool:
        """Add `key`; True when it may have been added before (every probe was set already)."""
        if self._bits is None:
            self._bits = bytearray(1 << (self._BITS_LOG2 - 3))
        bits, mask, seen = self._bits, self._mask, True
        # Python caches a string's hash: its two halves give the probes (double hashing).
        h = hash(key) & 0xFFFFFFFFFFFFFFFF
        position, step = h & 0xFFFFFFFF, (h >> 32) | 1
        for _ in range(self._PROBES):
            p = position & mask
            bit = 1 << (p & 7)
            if not bits[p >> 3] & bit:
                seen = False
                bits[p >> 3] |= bit
            position += step
        return seen

    def may_hold(self, key: str) -> bool:
        bits, mask = self._bits, self._mask
        if bits is None:
            return False
        h = hash(key) & 0xFFFFFFFFFFFFFFFF
        position, step = h & 0xFFFFFFFF, (h >> 32) | 1
        for _ in range(self._PROBES):
            p = position & mask
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
            position += step
        return True


def _remove(db: sqlite3.Connection, folder: Path) -> None:
    db.close()
    shutil.rmtree(folder, ignore_errors=True)
