"""Near-duplicate detection between two sets of texts (the leakage check).

Texts are normalised (lower case, punctuation removed), cut into word
shingles (3 words by default) and summarised by a 64-value MinHash; locality
sensitive hashing (16 bands of 4 values) proposes candidate pairs, and each
candidate is confirmed by the exact Jaccard similarity of the shingle sets.
Pairs at or above the threshold are near-duplicates. With these bands a pair
at Jaccard 0.8 is proposed with probability > 0.999, at 0.5 with about 0.65
(and then rejected by the exact check).

Memory is about 640 bytes per text (signature and band keys).
"""

from __future__ import annotations

import re
from itertools import chain
from typing import Sequence

import numpy as np

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
MAX_CANDIDATES = 32
_BATCH = 512

_rng = np.random.default_rng(20240601)
_A = (_rng.integers(1, 2**63 - 1, size=NUM_PERM, dtype=np.uint64) | np.uint64(1))
_B = _rng.integers(0, 2**63 - 1, size=NUM_PERM, dtype=np.uint64)
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5], dtype=np.uint64)
_WORD = re.compile(r"[a-z0-9]+")
_PAD = 2**40


class Shingler:
    """Word ``k``-shingles as uint64 hashes; words get ids in first-seen order (deterministic)."""

    def __init__(self, k: int = 3):
        self.k = k
        self.vocab: dict[str, int] = {}

    def word_ids(self, text: str) -> list[int]:
        """Ids of the text's lower-cased words, padded to at least ``k``."""
        words = _WORD.findall(text.lower())
        ids = list(map(self.vocab.get, words))
        if None in ids:
            vocab = self.vocab
            ids = [vocab.setdefault(w, len(vocab)) for w in words]
        if len(ids) < self.k:
            ids += [_PAD] * (self.k - len(ids))
        return ids

    def batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All shingle hashes of ``texts`` (duplicates kept) and each text's offset into them."""
        k = self.k
        lists = [self.word_ids(t) for t in texts]
        lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        flat = np.fromiter(chain.from_iterable(lists), dtype=np.uint64, count=int(lengths.sum()))
        span = flat.size - k + 1
        acc = np.zeros(span, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(k):
                acc = acc * np.uint64(0x100000001B3) + (flat[j : j + span] + np.uint64(1)) * _MIX[j % 4]
        ends = np.cumsum(lengths)
        valid = np.ones(span, dtype=bool)
        for j in range(1, k):  # windows that start in one text and end in the next
            crossing = ends[:-1] - j
            valid[crossing[crossing >= 0]] = False
        counts = lengths - k + 1
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return acc[valid], offsets

    def __call__(self, text: str) -> np.ndarray:
        """Sorted unique uint64 hashes of one text's word shingles."""
        hashes, _ = self.batch([text])
        return np.unique(hashes)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique arrays."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def signatures(texts: Sequence[str], shingler: Shingler) -> np.ndarray:
    """``(len(texts), NUM_PERM)`` uint64 MinHash signatures."""
    out = np.zeros((len(texts), NUM_PERM), dtype=np.uint64)
    for start in range(0, len(texts), _BATCH):
        batch = texts[start : start + _BATCH]
        hashes, offsets = shingler.batch(batch)
        with np.errstate(over="ignore"):
            hashed = hashes[:, None] * _A[None, :] + _B[None, :]
        out[start : start + len(batch)] = np.minimum.reduceat(hashed, offsets, axis=0)
    return out


def band_keys(sig: np.ndarray) -> np.ndarray:
    """``(n, BANDS)`` uint64 LSH band keys from signatures."""
    banded = sig.reshape(sig.shape[0], BANDS, ROWS)
    with np.errstate(over="ignore"):
        return (banded * _MIX[None, None, :ROWS]).sum(axis=2, dtype=np.uint64)


def near_duplicates(reference: Sequence[str], queries: Sequence[str], threshold: float = 0.8, k: int = 3) -> dict[int, int]:
    """Reference indices that nearly duplicate some query: ``{ref_index: query_index}``.

    A pair is a near-duplicate when the Jaccard similarity of their word
    ``k``-shingles is at least ``threshold``. Candidates come from LSH; those
    whose MinHash estimate is far below the threshold are skipped before the
    exact check.
    """
    if not reference or not queries:
        return {}
    shingler = Shingler(k)
    q_sig = signatures(queries, shingler)
    r_sig = signatures(reference, shingler)
    q_keys, r_keys = band_keys(q_sig), band_keys(r_sig)
    index: list[dict[int, list[int]]] = [{} for _ in range(BANDS)]
    for qi, row in enumerate(q_keys.tolist()):
        for band, key in enumerate(row):
            index[band].setdefault(key, []).append(qi)
    hits = np.zeros(len(reference), dtype=bool)
    for band in range(BANDS):
        hits |= np.isin(r_keys[:, band], np.fromiter(index[band].keys(), dtype=np.uint64, count=len(index[band])))
    found: dict[int, int] = {}
    q_cache: dict[int, np.ndarray] = {}
    floor = max(0.0, threshold - 0.2)
    for ri in np.flatnonzero(hits).tolist():
        candidates = sorted({qi for band, key in enumerate(r_keys[ri].tolist()) for qi in index[band].get(key, ())})
        estimate = (q_sig[candidates] == r_sig[ri]).mean(axis=1)
        order = np.argsort(-estimate, kind="stable")
        r_sh = None
        for pos in order[:MAX_CANDIDATES].tolist():
            if estimate[pos] < floor:
                break
            qi = candidates[pos]
            if r_sh is None:
                r_sh = shingler(reference[ri])
            if qi not in q_cache:
                q_cache[qi] = shingler(queries[qi])
            if jaccard(r_sh, q_cache[qi]) >= threshold:
                found[ri] = qi
                break
    return found
