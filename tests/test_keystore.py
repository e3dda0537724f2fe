"""KeyStore: the same answers in memory and after spilling to its temporary SQLite file."""

from __future__ import annotations

from batchrecall.keystore import KeyStore


def test_spills_past_the_memory_limit_and_keeps_every_answer() -> None:
    store = KeyStore(memory_limit=3)
    assert all(store.add_new(f"k{i}") for i in range(3))
    assert store.folder is None, "still in memory at the limit"
    assert store.add_new("k3")
    folder = store.folder
    assert folder is not None
    assert folder.is_dir()
    assert not store.add_new("k1"), "a key stored before the spill is still known"
    assert store.add_new("k4")
    assert len(store) == 5


def test_put_and_get_across_the_spill() -> None:
    store = KeyStore(memory_limit=2)
    store.put("a", "ok\t")
    store.put("a", "failed\ttimeout")  # the latest value wins, and counts once
    store.put("b", "ok\t")
    store.put("c", "ok\t")  # spills here
    store.put("a", "ok\t")
    store.put("d", "failed\tnot-found")
    assert store.folder is not None
    assert store.get("a") == "ok\t"
    assert store.get("d") == "failed\tnot-found"
    assert store.get("zz") is None
    assert len(store) == 4
    assert dict(store.items()) == {
        "a": "ok\t",
        "b": "ok\t",
        "c": "ok\t",
        "d": "failed\tnot-found",
    }


def test_close_removes_the_temporary_file() -> None:
    store = KeyStore(memory_limit=1)
    store.add_new("x")
    store.add_new("y")
    folder = store.folder
    assert folder is not None
    assert folder.exists()
    store.close()
    assert not folder.exists()
    assert store.get("x") is None


def test_keys_written_to_disk_in_batches_are_still_known() -> None:
    """Past the spill, keys reach SQLite a batch at a time; a Bloom filter screens lookups."""
    store = KeyStore(memory_limit=2)
    keys = [f"key-{i}" for i in range(5_000)]
    assert all(store.add_new(key, "new") for key in keys)
    assert len(store) == 5_000
    assert not any(store.add_new(key) for key in keys[::7]), "every key is known, written or not"
    store.put(keys[0], "changed")  # on disk by now
    store.put(keys[-1], "changed")  # still in the batch to write
    store.put("another", "x")
    assert len(store) == 5_001
    assert store.get(keys[0]) == store.get(keys[-1]) == "changed"
    assert store.get(keys[1]) == "new"
    assert store.get("never") is None
    stored = dict(store.items())
    assert len(stored) == 5_001
    assert stored[keys[0]] == "changed"
    assert stored["another"] == "x"
