"""The SQLite response cache."""

from __future__ import annotations

import sqlite3
import threading

from price_bench_frontier.cache import ResponseCache, cache_key, default_cache_path

MESSAGES = [{"role": "user", "content": "How much does this cost?\n\nA mug"}]


def test_key_is_stable_and_sensitive():
    base = cache_key("http://x/v1", "m", MESSAGES, {"temperature": 0, "seed": 1})
    assert base == cache_key("http://x/v1", "m", [dict(m) for m in MESSAGES], {"seed": 1, "temperature": 0})
    assert len(base) == 64
    others = {
        cache_key("http://y/v1", "m", MESSAGES, {"temperature": 0, "seed": 1}),
        cache_key("http://x/v1", "m2", MESSAGES, {"temperature": 0, "seed": 1}),
        cache_key("http://x/v1", "m", [{"role": "user", "content": "other"}], {"temperature": 0, "seed": 1}),
        cache_key("http://x/v1", "m", MESSAGES, {"temperature": 0, "seed": 2}),
    }
    assert base not in others and len(others) == 4


def test_roundtrip_persists_across_instances(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    assert cache.get("k") is None
    cache.put("k", "m", {"text": "45.00", "tokens_in": 3})
    cache.close()
    reopened = ResponseCache(path)
    assert reopened.get("k") == {"text": "45.00", "tokens_in": 3}
    assert len(reopened) == 1
    reopened.close()


def test_wal_mode_and_default_location(price_bench_home):
    cache = ResponseCache()
    assert cache.path == default_cache_path() == price_bench_home / "cache" / "llm-responses.sqlite"
    cache.put("k", "m", {"text": "1"})
    mode = sqlite3.connect(cache.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    cache.close()


def test_concurrent_writers(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")

    def write(start: int) -> None:
        for i in range(start, start + 50):
            cache.put(f"k{i}", "m", {"text": str(i)})

    threads = [threading.Thread(target=write, args=(n * 50,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 200
    assert cache.get("k199") == {"text": "199"}
    cache.close()


def test_corrupt_row_is_a_miss(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache._conn.execute("INSERT INTO responses VALUES ('bad', 'm', '{not json', 0)")
    assert cache.get("bad") is None
    cache.close()
