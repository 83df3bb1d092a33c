"""The bulk TF-IDF transform equals scikit-learn's ``TfidfVectorizer.transform`` byte for byte."""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from price_bench_classic.fast_tfidf import count_matrix, supports, tfidf_transform
from price_bench_classic.linear import make_tfidf

from price_bench import Item

SHARED_RECORDS = Path("amazon-2023-raw") / "Health_and_Personal_Care.jsonl"  # under the shared data folder

ADVERSARIAL = [
    "",
    " ",
    "\t\n  \r",
    "a",
    "a b c d",
    "ab",
    "AB ab Ab aB",
    "under_score __ _x x_ a_b_c",
    "123 4567 12ab 1 2 3 007",
    "it's rock'n'roll, e-mail: x@y.com; 3.5mm/10-pack",
    "Café crème brûlée naïve Ångström",
    "ﬁne ﬂour (ligatures) ² ³ ½ Ⅻ",
    "日本語 テキスト 中文 한국어 ab cd",
    "İstanbul ǅ ß straße STRASSE",
    "e\u0301 combining a\u0308b",
    "nbsp\u00a0between ab\u2003cd em-space",
    "emoji 😀 ab 😀cd ef😀",
    "x" * 5000 + " ab cd " + "y" * 70,
    " ".join(f"w{i}" for i in range(3000)),
    "ab\x00cd nul\x00byte",
    "tab\tsep\tand\nnew\nlines",
    "Hello WORLD hello world HELLO",
]


def _same(a, b) -> bool:
    """Same sparse type, shape, dtypes and bytes of data, indices and indptr."""
    return (
        type(a) is type(b)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and a.indices.dtype == b.indices.dtype
        and a.indptr.dtype == b.indptr.dtype
        and a.data.tobytes() == b.data.tobytes()
        and a.indices.tobytes() == b.indices.tobytes()
        and a.indptr.tobytes() == b.indptr.tobytes()
    )


def _random_texts(n: int, seed: int) -> list[str]:
    """Texts drawn from an alphabet mixing ASCII word bytes, separators and non-ASCII letters."""
    rng = random.Random(seed)
    alphabet = list("abcdeABCDE0123_ _ -.,'\t\n") + ["é", "ß", "İ", "ﬁ", "中", "\u0301", "\u00a0"]
    out = []
    for _ in range(n):
        length = rng.choice([0, 1, 2, 5, 40, 300])
        ascii_only = rng.random() < 0.6
        chars = alphabet[:25] if ascii_only else alphabet
        out.append("".join(rng.choice(chars) for _ in range(length)))
    return out


@pytest.fixture(scope="module")
def adversarial_vectorizer():
    """A vectorizer whose vocabulary holds ASCII words, underscores, digits and non-ASCII words."""
    vectorizer = make_tfidf(max_features=5000, ngram_max=2, min_df=1)
    vectorizer.fit(ADVERSARIAL + _random_texts(400, seed=1))
    return vectorizer


def test_fast_path_covers_the_shared_vectorizer(adversarial_vectorizer):
    assert supports(adversarial_vectorizer)


@pytest.mark.parametrize("docs", [ADVERSARIAL, ADVERSARIAL[::-1], [ADVERSARIAL[3]], [""]], ids=["all", "reversed", "one", "empty-text"])
def test_adversarial_texts_match_sklearn(adversarial_vectorizer, docs):
    assert _same(tfidf_transform(adversarial_vectorizer, docs), adversarial_vectorizer.transform(docs))


def test_no_documents_fail_as_in_sklearn(adversarial_vectorizer):
    for transform in (adversarial_vectorizer.transform, lambda docs: tfidf_transform(adversarial_vectorizer, docs)):
        with pytest.raises(ValueError):
            transform([])


@pytest.mark.parametrize("seed", [2, 3])
def test_random_texts_match_sklearn(adversarial_vectorizer, seed):
    docs = _random_texts(300, seed=seed)
    assert _same(tfidf_transform(adversarial_vectorizer, docs), adversarial_vectorizer.transform(docs))


def test_counts_match_count_vectorizer(adversarial_vectorizer):
    from sklearn.feature_extraction.text import CountVectorizer

    counter = CountVectorizer(ngram_range=(1, 2), strip_accents="unicode", dtype=np.float32, vocabulary=adversarial_vectorizer.vocabulary_)
    docs = ADVERSARIAL + _random_texts(50, seed=4)
    expected = counter.transform(docs)
    assert (count_matrix(adversarial_vectorizer, docs) != expected).nnz == 0


@pytest.mark.parametrize(
    "settings",
    [
        {"ngram_range": (1, 1)},
        {"ngram_range": (2, 2)},
        {"sublinear_tf": False, "norm": "l1"},
        {"use_idf": False, "norm": None},
        {"strip_accents": None, "dtype": np.float64},
        {"strip_accents": "ascii"},
    ],
)
def test_other_supported_settings_match_sklearn(settings):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(**settings).fit(ADVERSARIAL + _random_texts(200, seed=5))
    assert supports(vectorizer)
    docs = ADVERSARIAL + _random_texts(100, seed=6)
    assert _same(tfidf_transform(vectorizer, docs), vectorizer.transform(docs))


@pytest.mark.parametrize(
    "settings",
    [{"lowercase": False}, {"stop_words": "english"}, {"ngram_range": (1, 3)}, {"token_pattern": r"\b\w+\b"}, {"binary": True}, {"analyzer": "char"}],
)
def test_unsupported_settings_defer_to_sklearn(settings):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(**settings).fit(ADVERSARIAL)
    assert not supports(vectorizer)
    assert _same(tfidf_transform(vectorizer, ADVERSARIAL), vectorizer.transform(ADVERSARIAL))


def test_a_refitted_vectorizer_gets_new_tables():
    vectorizer = make_tfidf(max_features=100, ngram_max=2, min_df=1).fit(["alpha beta", "gamma delta"])
    tfidf_transform(vectorizer, ["alpha beta"])
    vectorizer.fit(["epsilon zeta", "eta theta"])
    assert _same(tfidf_transform(vectorizer, ["epsilon zeta eta"]), vectorizer.transform(["epsilon zeta eta"]))


def test_a_pickled_vectorizer_carries_no_tables():
    import pickle

    vectorizer = make_tfidf(max_features=100, ngram_max=2, min_df=1).fit(["alpha beta", "gamma delta"])
    before = pickle.dumps(vectorizer)
    tfidf_transform(vectorizer, ["alpha beta"])
    assert pickle.dumps(vectorizer) == before
    assert _same(tfidf_transform(pickle.loads(before), ["alpha gamma"]), vectorizer.transform(["alpha gamma"]))


def _shared_texts(shared_data: Path) -> list[tuple[str, str]]:
    path = shared_data / SHARED_RECORDS
    if not path.is_file():
        pytest.skip(f"{path} not found (the shared Amazon records live outside the repository)")
    texts = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            title = record.get("title") or ""
            body = "\n".join([title, *record.get("features", []), *record.get("description", [])])
            texts.append((title, body))
    return texts


def test_real_records_match_sklearn(shared_data):
    texts = _shared_texts(shared_data)
    bodies, titles = [b for _, b in texts], [t for t, _ in texts]
    assert any(not b.isascii() for b in bodies) and any(b.isascii() for b in bodies)  # both paths are exercised
    half = len(texts) // 2
    for docs, min_df in ((bodies, 2), (titles, 1)):
        vectorizer = make_tfidf(max_features=20_000, ngram_max=2, min_df=min_df).fit(docs[:half])
        for batch in (docs, docs[half:], docs[half : half + 100], docs[half : half + 1]):
            assert _same(tfidf_transform(vectorizer, batch), vectorizer.transform(batch))


def test_tfidf_ridge_predictions_are_unchanged_by_the_fast_path(demo_split, monkeypatch):
    """The served model's prices, bulk transform vs scikit-learn's transform: the same float64 bytes."""
    import price_bench_classic.linear as linear
    from price_bench_classic.linear import TfidfRidgeConfig, TfidfRidgeModel

    model = TfidfRidgeModel(TfidfRidgeConfig(), seed=0).fit(demo_split.train, [i.price for i in demo_split.train])
    items = [Item(id=i.id, text=i.text, title=i.title, category=i.category, price=math.nan) for i in demo_split.test]
    fast = model.predict(items)
    import pickle

    from price_bench_classic.fast_tfidf import _TABLES

    loaded = pickle.loads(pickle.dumps(model))  # as a saved work folder or bundle loads: the tables are built at load
    assert loaded.vectorizer in _TABLES and loaded.title_vectorizer in _TABLES
    assert loaded.predict(items).tobytes() == fast.tobytes()
    monkeypatch.setattr(linear, "tfidf_transform", lambda vectorizer, docs: vectorizer.transform(docs))
    monkeypatch.setattr(linear, "linear_predict", lambda regressor, x: regressor.predict(x))
    slow = model.predict(items)
    assert hashlib.sha256(fast.tobytes()).hexdigest() == hashlib.sha256(slow.tobytes()).hexdigest()


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 50_000])
def test_hash_index_finds_every_key_and_nothing_else(n):
    from price_bench_classic.fast_tfidf import HashIndex

    rng = np.random.default_rng(n)
    keys = np.unique(rng.integers(0, 2**63, size=n, dtype=np.uint64))
    clustered = np.arange(len(keys), dtype=np.uint64) * np.uint64(1 << 40)  # keys that share low bits
    for stored in (keys, clustered):
        values = rng.permutation(len(stored)).astype(np.int64)
        index = HashIndex(stored, values)
        assert (index.lookup(stored) == values).all()
        assert all((index.lookup(stored[i : i + 100]) == values[i : i + 100]).all() for i in range(0, len(stored), 5000))
        absent = np.setdiff1d(rng.integers(0, 2**63, size=3000, dtype=np.uint64), stored)
        assert (index.lookup(absent) == -1).all() and (index.lookup(absent[:10]) == -1).all()
        mixed = rng.permutation(np.concatenate([stored, absent]))
        public = np.asarray(pd.Index(stored, dtype=np.uint64).get_indexer(mixed))  # the engine answers as pandas' own API
        assert (HashIndex(stored).lookup(mixed) == public).all()
    with pytest.raises(ValueError):
        HashIndex(np.array([5, 5], dtype=np.uint64), np.array([0, 1]))  # keys must be unique
    big = np.array([2**64 - 1, 0], dtype=np.uint64)  # the whole uint64 range is usable
    assert (HashIndex(big, np.array([3, 4])).lookup(big) == [3, 4]).all()
