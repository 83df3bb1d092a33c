"""The local engine at scale: many spans, any number of processes, bad input mid-file, --strict, a killed worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from price_bench.data import sources
from price_bench.data.catalog import build_dataset
from price_bench.data.dataset import SPLITS, datasets_dir
from price_bench.data.pipeline import CurationError

REPO_SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


@pytest.fixture
def small_spans(monkeypatch):
    """4 KiB spans, so a few hundred records make dozens of work units."""
    monkeypatch.setattr(sources, "SPAN_BYTES", 4096)


@pytest.fixture
def big_file(tmp_path, raw_records, write_jsonl):
    records = raw_records(400)
    lines = records[:150] + ["{\"title\": \"broken"] + records[150:300] + ["[not, json"] + records[300:]
    return write_jsonl(tmp_path / "meta_Electronics.jsonl", lines)


def test_any_number_of_workers_gives_the_same_bytes(small_spans, big_file, tmp_path):
    built = [build_dataset("d", str(big_file), home=tmp_path / str(n), workers=n) for n in (1, 2, 3)]
    assert len({ds.fingerprint for ds in built}) == 1
    for split in SPLITS:
        assert len({(ds.path / f"{split}.parquet").read_bytes() for ds in built}) == 1
    manifests = [{k: v for k, v in json.loads((ds.path / "manifest.json").read_text()).items() if k != "name"} for ds in built]
    assert manifests[0] == manifests[1] == manifests[2]


@pytest.mark.parametrize("spill_per_item", [0, 0.0015])
def test_rows_taken_back_from_the_source_give_the_same_bytes_as_spilled_rows(small_spans, big_file, tmp_path,
                                                                              monkeypatch, spill_per_item):
    """Past ``spill_rows``, a span's selected rows are read and curated again: the same files, for 1 or 2 workers."""
    from price_bench.data import pipeline, workers

    writes: list[str] = []
    real_write = workers.Spill.write
    monkeypatch.setattr(workers.Spill, "write", classmethod(lambda cls, path, *a: (writes.append(path), real_write(path, *a))))

    def built(tag: str, per_item: float, n: int):
        monkeypatch.setattr(pipeline, "SPILL_ROWS_PER_ITEM", per_item)
        writes.clear()
        ds = build_dataset("d", str(big_file), home=tmp_path / tag, workers=n)
        manifest = {k: v for k, v in json.loads((ds.path / "manifest.json").read_text()).items() if k != "name"}
        return ds.fingerprint, [(ds.path / f"{split}.parquet").read_bytes() for split in SPLITS], manifest, len(writes)

    spilled = built("spilled", 10, 1)
    assert spilled[3] > 50  # every unit's rows were spilled (4 KiB spans of 400 records)
    located = built("located", spill_per_item, 1)
    assert (located[3] == 0) if spill_per_item == 0 else (0 < located[3] < spilled[3])  # 150 rows spilled, then located
    assert located[:3] == spilled[:3]
    assert built("located-2", spill_per_item, 2)[:3] == spilled[:3]


@pytest.mark.parametrize(("workers", "keep_mtime"), [(1, False), (2, False), (1, True), (2, True)])
def test_a_source_that_changes_before_its_rows_are_taken_back_fails_the_build(small_spans, big_file, monkeypatch, workers,
                                                                              keep_mtime):
    """Caught by the file's changed stamp, or (its modification time put back) by the row's changed keys."""
    from price_bench.data import pipeline

    monkeypatch.setattr(pipeline, "SPILL_ROWS_PER_ITEM", 0)
    first = big_file.read_bytes().index(b'"title": "') + len(b'"title": "')
    stat = os.stat(big_file)

    edited: list[str] = []

    def edit_an_accepted_line(message: str) -> None:  # called at line 151, after the first records were curated
        if edited:
            return  # called again for line 302
        edited.append(message)
        with open(big_file, "r+b") as fh:
            fh.seek(first)
            old = fh.read(1)
            fh.seek(first)
            # same length, so every offset still points at a line: a case change keeps the row's keys (only the
            # file's stamp shows it), a letter turned into punctuation changes its text key
            new = b"#" if keep_mtime else old.swapcase()
            assert new != old
            fh.write(new)
        if keep_mtime:
            os.utime(big_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    with pytest.raises(CurationError, match="changed while the build read it"):
        build_dataset("d", str(big_file), workers=workers, on_problem=edit_an_accepted_line)
    root = datasets_dir()
    assert not root.exists() or [p.name for p in root.iterdir()] == []


def test_malformed_records_mid_file_name_file_and_line_with_workers(small_spans, big_file):
    messages: list[str] = []
    build_dataset("d", str(big_file), workers=2, on_problem=messages.append)
    assert messages[0].startswith(f"{big_file}:151: malformed JSON")
    assert messages[1].startswith(f"{big_file}:302: malformed JSON")
    assert len(messages) == 2


def test_strict_stops_every_worker_at_the_first_bad_record(small_spans, big_file):
    with pytest.raises(CurationError) as info:
        build_dataset("d", str(big_file), workers=2, strict=True)
    assert str(info.value).startswith(f"{big_file}:151: malformed JSON")
    root = datasets_dir()
    assert not root.exists() or list(root.iterdir()) == []


def test_hub_layout_all_categories_streams_each_through_datasets(shared_data, tmp_path, monkeypatch):
    """--source hf --categories all on a local folder laid out like the Hub repository."""
    pytest.importorskip("datasets")
    mirror = tmp_path / "hub"
    meta = mirror / "raw" / "meta_categories"
    meta.mkdir(parents=True)
    raw = shared_data / "amazon-2023-raw"
    (meta / "meta_Health_and_Personal_Care.jsonl").write_bytes((raw / "Health_and_Personal_Care.jsonl").read_bytes())
    (meta / "meta_Musical_Instruments.jsonl").write_bytes((raw / "Musical_Instruments.jsonl").read_bytes())
    (meta / "meta_Unknown.jsonl").write_bytes((raw / "_unpriced_or_bad_sample.jsonl").read_bytes())
    monkeypatch.setenv(sources.HF_MIRROR_ENV, str(mirror))
    progress = []
    ds = build_dataset("hub", "hf", categories=["all"], workers=2, on_progress=progress.append)
    by_category = {s["label"].rsplit("meta_", 1)[-1]: s for s in ds.manifest["sources"]}
    assert set(by_category) == {"Health_and_Personal_Care.jsonl", "Musical_Instruments.jsonl", "Unknown.jsonl"}
    assert by_category["Health_and_Personal_Care.jsonl"]["accepted"] == 434
    assert by_category["Unknown.jsonl"]["records"] == 300 and by_category["Unknown.jsonl"]["accepted"] == 0
    done = {p.category: p for p in progress if p.done}
    assert set(done) == {"Health_and_Personal_Care", "Musical_Instruments", "Unknown"}
    assert done["Health_and_Personal_Care"].read == 434 and done["Unknown"].rejected == 300
    local = build_dataset("local", str(raw), workers=1)
    assert {i.id for s in SPLITS for i in ds.items(s)} == {i.id for s in SPLITS for i in local.items(s)}


@pytest.mark.slow
def test_a_killed_worker_fails_the_build_and_leaves_no_dataset(tmp_path, raw_records, write_jsonl, price_bench_home):
    psutil = pytest.importorskip("psutil")
    records = raw_records(300)
    path = write_jsonl(tmp_path / "many.jsonl", records * 200)  # 60,000 lines, many spans
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(REPO_SRC), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "price_bench", "data", "build", "killed", "--source", str(path), "--workers", "2", "--no-progress"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    workers = []
    while time.time() < deadline and not workers and proc.poll() is None:
        workers = psutil.Process(proc.pid).children()
        time.sleep(0.05)
    assert workers, "the build never started its worker processes"
    os.kill(workers[0].pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert "Error: a curation worker process died" in err and "nothing was written" in err
    assert "Traceback" not in err
    root = price_bench_home / "datasets"
    assert not root.exists() or list(root.iterdir()) == []


def test_fast_scrub_equals_the_regex_scrub():
    import random
    import re

    from price_bench.data.curation import _drop_part_number, scrub_part_numbers

    def regex_scrub(text: str, min_len: int) -> str:
        scrubbed = re.sub(rf"[A-Z0-9]{{{min_len},}}(?!\w)", _drop_part_number, text)
        if len(scrubbed) == len(text):
            return text
        return "\n".join(" ".join(line.split()) for line in scrubbed.split("\n"))

    rng = random.Random(3)
    alphabet = "AB19 a_-é\nZ0x.Ŝ™"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        for min_len in (7, 3):
            assert scrub_part_numbers(text, min_len) == regex_scrub(text, min_len), (text, min_len)


def test_signatures_do_not_depend_on_the_batch_or_process():
    from price_bench.data.neardup import Shingler, signatures

    texts = [f"Stainless steel kettle model {n} with a 1.7 litre capacity and auto shut-off" for n in range(300)]
    alone = signatures(texts[150:151], Shingler(3))
    together = signatures(texts, Shingler(3))
    assert (alone[0] == together[150]).all()


def test_workers_hash_the_sources_in_the_background_to_the_same_digest(small_spans, big_file, tmp_path, monkeypatch):
    import hashlib
    import threading

    hashed_by: list[str] = []
    real = sources.file_sha256

    def recording(location, cancelled=None):
        hashed_by.append(threading.current_thread().name)
        return real(location, cancelled)

    monkeypatch.setattr(sources, "file_sha256", recording)
    expected = "sha256:" + hashlib.sha256(big_file.read_bytes()).hexdigest()
    for workers, thread in ((1, "MainThread"), (2, "price-bench-sha256")):
        hashed_by.clear()
        ds = build_dataset("d", str(big_file), home=tmp_path / str(workers), workers=workers)
        assert hashed_by == [thread]
        assert json.loads((ds.path / "manifest.json").read_text())["sources"][0]["sha256"] == expected


def test_background_hashes_report_an_unreadable_file_and_stop_when_cancelled(tmp_path):
    import threading

    from price_bench.data.sources import BackgroundHashes, SourceError, file_sha256

    missing = BackgroundHashes([str(tmp_path / "gone.jsonl")])
    with pytest.raises(SourceError, match="gone.jsonl: cannot read"):
        missing.result()
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"x" * (3 << 20))
    stopped = threading.Event()
    stopped.set()
    assert file_sha256(str(path), stopped) is None
    cancelled = BackgroundHashes([str(path)])
    cancelled.cancel()
    cancelled.start()  # a cancelled run reads no further than the first block
    assert cancelled.result() == [None]


def test_a_failed_build_stops_the_hashing_thread(small_spans, big_file, monkeypatch):
    import threading

    started = threading.Event()

    def endless(location, cancelled=None):  # a source that takes as long as the build to hash
        started.set()
        cancelled.wait(60)
        return None

    monkeypatch.setattr(sources, "file_sha256", endless)
    with pytest.raises(CurationError):
        build_dataset("d", str(big_file), workers=2, strict=True)
    assert started.is_set(), "the hashing thread never ran, so this test showed nothing"
    assert not [t for t in threading.enumerate() if t.name == "price-bench-sha256"]


def test_the_compiled_shingles_are_the_numpy_values():
    """Word runs, non-ASCII lower-casing, short and empty texts, line breaks, for k of 1 to 5."""
    import random

    from price_bench.data.neardup import Shingler

    rng = random.Random(3)
    alphabet = list("abcXYZ019 \n.,-é") + ["İ", "Σ", "ß", "日本", "  "]
    texts = ["", "a", "a b", "İstanbul ΣΑΣ straße", "x\ny\nz w", "...", "AB12 cd34 Ef"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(400)]
    for k in (1, 2, 3, 5):
        for lo in range(0, len(texts), 37):
            hashes, offsets = Shingler(k, compiled=True).batch(texts[lo : lo + 37])
            expected, expected_offsets = Shingler(k).batch(texts[lo : lo + 37])
            assert hashes.dtype == expected.dtype and offsets.dtype == expected_offsets.dtype
            assert hashes.tolist() == expected.tolist()
            assert offsets.tolist() == expected_offsets.tolist()


def _first_matches_by_numpy(hashes, bounds, rows, cands, r_sig, q_sets, q_sig, threshold, floor, max_candidates):
    """The rule of the compiled check, written with numpy one pair at a time (the code it replaced)."""
    from price_bench.data.neardup import jaccard

    estimate = np.count_nonzero(q_sig[cands] == r_sig[rows], axis=1) / q_sig.shape[1]
    order = np.lexsort((cands, -estimate, rows))
    rows, cands, estimate = rows[order], cands[order], estimate[order]
    rank = np.arange(rows.size) - np.searchsorted(rows, rows, side="left")
    keep = (rank < max_candidates) & (estimate >= floor)
    found: dict[int, int] = {}
    for row, query in zip(rows[keep].tolist(), cands[keep].tolist()):
        if row not in found:
            r_sh = np.unique(hashes[bounds[row] : bounds[row + 1]])
            if jaccard(r_sh, q_sets[query]) >= threshold:
                found[row] = query
    return found


def _compare_first_matches(rng, hashes, bounds, r_sig, q_sig, q_sets, most_candidates, threshold, floor):
    """Random candidate pairs (fewer than ``most_candidates`` a row) checked by the kernel and by the numpy rule, which must agree."""
    from price_bench.data.neardup_kernel import first_matches

    n_rows, n_queries = bounds.size - 1, len(q_sets)
    pairs = [(r, q) for r in range(n_rows)
             for q in sorted(rng.choice(n_queries, rng.integers(0, most_candidates), replace=False))]
    rows = np.array([r for r, _ in pairs], dtype=np.int64)
    cands = np.array([q for _, q in pairs], dtype=np.int64)
    q_flat = np.concatenate(q_sets)
    q_bounds = np.concatenate(([0], np.cumsum([x.size for x in q_sets]))).astype(np.int64)
    expected = _first_matches_by_numpy(hashes, bounds, rows, cands, r_sig, q_sets, q_sig, threshold, floor, 8)
    hit_rows, hit_queries = first_matches(hashes, bounds, rows, cands, r_sig, q_sig, q_flat, q_bounds, threshold, floor, 8)
    assert dict(zip(hit_rows.tolist(), hit_queries.tolist())) == expected
    assert hit_rows.tolist() == sorted(expected)
    return expected, rows


def test_the_compiled_candidate_check_follows_the_estimate_order_and_the_exact_jaccard_rule():
    """Ties in the estimate (query order), the candidate cap, the estimate floor and empty sets, on random cases."""
    rng = np.random.default_rng(5)
    answers = capped = 0
    for _ in range(150):
        n_rows, n_queries, perm = 24, 70, 16
        r_sig = rng.integers(0, 3, (n_rows, perm)).astype(np.uint64)  # few values: many equal estimates
        q_sig = rng.integers(0, 3, (n_queries, perm)).astype(np.uint64)
        q_sets = [np.unique(rng.integers(0, 14, rng.integers(0, 9))).astype(np.uint64) for _ in range(n_queries)]
        lengths = rng.integers(0, 10, n_rows)
        hashes = rng.integers(0, 14, int(lengths.sum())).astype(np.uint64)  # duplicates allowed, as shingles come
        bounds = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        threshold, floor = float(rng.choice([0.3, 0.5, 0.8])), float(rng.choice([0.0, 0.3, 0.6]))
        expected, rows = _compare_first_matches(rng, hashes, bounds, r_sig, q_sig, q_sets, 50, threshold, floor)
        answers += len(expected)
        capped += int(np.bincount(rows, minlength=n_rows).max() > 8)
    assert answers > 500 and capped > 100  # matches were found, and the cap of 8 candidates was in play


def test_the_compiled_candidate_check_is_exact_on_long_rows_of_close_hashes():
    """Rows of hundreds of shingles (the hash set grows past its first size) from a narrow range (long probe runs)."""
    rng = np.random.default_rng(12)
    answers = 0
    for case in range(40):
        n_rows, n_queries, perm = 12, 30, 16
        base = np.uint64(2**64 - 5000) if case % 2 else np.uint64(0)  # high-bit values on every other case
        pool = base + np.arange(0, 3000 if case % 3 else 600, dtype=np.uint64) * np.uint64(1 << 20)
        r_sig = rng.integers(0, 2, (n_rows, perm)).astype(np.uint64)
        q_sig = rng.integers(0, 2, (n_queries, perm)).astype(np.uint64)
        q_sets = [np.unique(rng.choice(pool, rng.integers(0, 500))) for _ in range(n_queries)]
        lengths = rng.integers(0, 900, n_rows)
        hashes = np.concatenate([rng.choice(pool, n) for n in lengths]).astype(np.uint64)  # duplicates within a row
        bounds = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        expected, _ = _compare_first_matches(rng, hashes, bounds, r_sig, q_sig, q_sets, 12, float(rng.choice([0.1, 0.2, 0.3])), 0.0)
        answers += len(expected)
    assert answers > 40  # matches were found on these long rows


def test_the_compiled_minhash_and_band_look_ups_are_the_numpy_values():
    """Signatures of real-length and one-shingle texts; band pairs with many shared keys (buckets of many queries)."""
    import random

    from price_bench.data import neardup
    from price_bench.data.neardup_kernel import band_pairs, minhash

    rng = random.Random(4)
    words = [f"w{n}" for n in range(40)]
    texts = ["", "a", "a b c"] + [" ".join(rng.choice(words) for _ in range(rng.randint(1, 200))) for _ in range(300)]
    hashes, offsets = neardup.Shingler(3, compiled=True).batch(texts)
    assert minhash(hashes, offsets, neardup._A, neardup._B).tolist() == neardup._minhash(hashes, offsets).tolist()
    keys_rng = np.random.default_rng(9)
    for low, few_values in ((0, 3), (0, 50), (2**64 - 50, 50), (0, 2**64 - 1)):  # also keys with the high bit set
        queries = [" ".join(rng.choice(words) for _ in range(30)) for _ in range(120)]
        matcher = neardup.Matcher(queries, compiled=True)

        def keys(shape, low=low, few_values=few_values):
            return np.uint64(low) + keys_rng.integers(0, few_values, shape, dtype=np.uint64)

        matcher.band_sorted = np.sort(keys((neardup.BANDS, 120)), axis=1)
        matcher.band_order = np.ascontiguousarray(np.argsort(keys_rng.random((neardup.BANDS, 120)), axis=1))
        r_keys = keys((200, neardup.BANDS))
        picked = keys_rng.integers(0, 120, (50, neardup.BANDS))  # every 4th row shares its keys with some queries
        r_keys[::4] = np.take_along_axis(matcher.band_sorted.T, picked, axis=0)
        rows, cands = band_pairs(r_keys, matcher.band_sorted, matcher.band_order)
        expected_rows, expected_cands = matcher._pairs(r_keys)
        assert rows.tolist() == expected_rows.tolist() and cands.tolist() == expected_cands.tolist()
        assert rows.size > (50 if few_values > 100 else 1000)  # shared keys in play, many where the values are few
    empty_rows, _ = band_pairs(np.zeros((0, neardup.BANDS), np.uint64), matcher.band_sorted, matcher.band_order)
    assert empty_rows.size == 0


def test_the_vectorised_candidate_check_picks_the_first_similar_candidate_like_the_loop():
    import random

    from price_bench.data.neardup import Matcher, jaccard

    rng = random.Random(11)
    words = [f"w{n}" for n in range(60)]
    base = [rng.choice(words) for _ in range(40)]

    def variant(edits: int) -> str:
        text = list(base)
        for _ in range(edits):
            text[rng.randrange(len(text))] = rng.choice(words)
        return " ".join(text)

    queries = [variant(rng.randint(0, 8)) for _ in range(200)] + ["", "w1", "w1 w2"]  # a spread of Jaccards around 0.8
    matcher = Matcher(queries, threshold=0.8)
    shingles = matcher.q_shingles
    hits = misses = 0
    for _ in range(2000):
        r_sh = matcher.shingler(variant(rng.randint(0, 6)) if rng.random() < 0.9 else rng.choice(["", "w1 w2"]))
        candidates = rng.sample(range(len(queries)), rng.randint(1, 32))
        looped = next((qi for qi in candidates if jaccard(r_sh, shingles[qi]) >= 0.8), None)
        assert matcher._first_similar(r_sh, candidates) == looped
        hits, misses = hits + (looped is not None), misses + (looped is None)
    assert hits > 200 and misses > 200  # both answers were exercised
    # empty sets (never made by the shingler, which pads short texts) take the loop
    matcher.q_shingles = shingles + [np.zeros(0, dtype=np.uint64)]
    empty = len(matcher.q_shingles) - 1
    assert matcher._first_similar(np.zeros(0, dtype=np.uint64), [0, empty, 1]) == empty
    assert matcher._first_similar(shingles[0], [empty, 0]) == 0


def test_the_compiled_and_numpy_checks_find_the_same_pairs():
    """Whole checks on texts near and far from each other, below and above COMPILED_FROM's default switch."""
    import random

    from price_bench.data import neardup

    rng = random.Random(8)
    words = [f"w{n}" for n in range(300)]
    bases = [[rng.choice(words) for _ in range(rng.randint(5, 60))] for _ in range(40)]

    def variant() -> str:
        text = list(rng.choice(bases))
        for _ in range(rng.randint(0, len(text) // 3)):
            text[rng.randrange(len(text))] = rng.choice(words)
        return " ".join(text)

    queries = [variant() for _ in range(300)]
    reference = [variant() for _ in range(3000)]
    numpy_pairs = neardup.near_duplicates(reference, queries, 0.8, compiled=False)
    compiled_pairs = neardup.near_duplicates(reference, queries, 0.8, compiled=True)
    assert compiled_pairs == numpy_pairs
    assert 300 < len(numpy_pairs) < 2700  # some texts match and some do not
    small = "from price_bench.data.neardup import near_duplicates; import sys; near_duplicates(['a b c'] * 50, ['a b c']); print('numba' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", small], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_large_check_without_numba_takes_the_numpy_path_to_the_same_pairs(tmp_path):
    """numba missing (or without a cache folder): the check still runs, with numpy, and finds the same pairs."""
    script = tmp_path / "check.py"
    script.write_text(
        "import sys\n"
        "sys.modules['numba'] = None  # import numba now raises ImportError\n"
        "from price_bench.data import neardup\n"
        "neardup.COMPILED_FROM = 10\n"
        "texts = [f'word{n} shared words of every text here and there in this list {n % 7}' for n in range(60)]\n"
        "print(neardup.compiled_loops_available(), len(neardup.near_duplicates(texts, texts[:20])))\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout.split()
    from price_bench.data import neardup

    texts = [f"word{n} shared words of every text here and there in this list {n % 7}" for n in range(60)]
    assert out == ["False", str(len(neardup.near_duplicates(texts, texts[:20], compiled=True)))]
    assert int(out[1]) > 20


def test_the_matcher_keeps_each_querys_unique_shingles():
    from price_bench.data.neardup import Matcher

    texts = ["a b c d e a b c", "one two three four", "x"]
    matcher = Matcher(texts, threshold=0.8, compiled=True)
    for n, text in enumerate(texts):
        q_set = matcher.q_flat[matcher.q_bounds[n] : matcher.q_bounds[n + 1]]
        assert q_set.tolist() == matcher.q_shingles[n].tolist() == matcher.shingler(text).tolist()
