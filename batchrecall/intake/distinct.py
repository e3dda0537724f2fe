"""How many distinct item keys a job holds, with memory flat on any number of them.

`validate` needs the count only at the end, never an answer per key as a run does (KeyStore).
Keys gather in a batch; a job with more than a batch of them spills each batch to one of
`_PARTS` temporary files chosen by the key's hash, so equal keys share a file, and at the end
each file is counted on its own with a set: the memory of one file's keys, 1/256 of the job's.
`batchrecall validate` on 1,000,000 distinct keys: 0.3 us of CPU a key, against 2.3 us for
sorted batches into SQLite and 11 us through KeyStore (a Bloom filter in Python, an insert a key).
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import IO

__all__ = ["DistinctKeys"]

_BATCH = 100_000
_PARTS = 256
_MASK = _PARTS - 1


class DistinctKeys:
    """Counts distinct keys: a batch in memory, then each batch spread over partition files.

    A key is not empty and holds no line break (an item key's parts are percent-encoded): the
    files keep a key a line.
    """

    def __init__(self, batch: int | None = None) -> None:
        self._batch = _BATCH if batch is None else batch
        self._pending: list[str] = []
        self._files: list[IO[str]] | None = None
        self._cleanup: weakref.finalize[..., DistinctKeys] | None = None

    def add(self, key: str) -> None:
        self._pending.append(key)
        if len(self._pending) >= self._batch:
            self._spill()

    def update(self, keys: list[str]) -> None:
        self._pending += keys
        if len(self._pending) >= self._batch:
            self._spill()

    def count(self) -> int:
        """The distinct keys added so far."""
        if self._files is None:
            return len(set(self._pending))
        self._spill()
        total = 0
        for file in self._files:
            file.flush()
            file.seek(0)
            keys = set(file.read().split("\n"))
            keys.discard("")  # after the last line's break
            total += len(keys)
            file.seek(0, 2)  # the count goes on after being asked
        return total

    def close(self) -> None:
        """Forget the keys; the temporary files, if any, are removed."""
        if self._cleanup is not None:
            self._cleanup()
        self._files = None
        self._pending = []

    def _spill(self) -> None:
        files = self._files or self._open()
        parts: list[list[str]] = [[] for _ in range(_PARTS)]
        for key in self._pending:
            parts[hash(key) & _MASK].append(key)
        self._pending = []
        for file, part in zip(files, parts, strict=True):
            if part:
                part.append("")
                file.write("\n".join(part))

    def _open(self) -> list[IO[str]]:
        folder = Path(tempfile.mkdtemp(prefix="batchrecall-"))
        files: list[IO[str]] = []
        self._cleanup = weakref.finalize(self, _remove, files, folder)
        for part in range(_PARTS):
            name = folder / f"{part:03d}.keys"
            files.append(open(name, "w+", encoding="utf-8", errors="surrogatepass"))  # noqa: SIM115
        self._files = files
        return files


def _remove(files: list[IO[str]], folder: Path) -> None:
    for file in files:
        file.close()
    shutil.rmtree(folder, ignore_errors=True)
