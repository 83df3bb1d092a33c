"""The compiled inner loops of the leakage check: word shingles, and candidate estimates, order and exact Jaccard.

Both are per word, per pair or per row: thousands of small steps that numpy
can only run as many whole-array passes or one call at a time. numba compiles
each into one call per batch of texts.

:func:`shingle_hashes` cuts lower-cased texts into words (maximal runs of
``[a-z0-9]``), hashes each word with a polynomial over its bytes and the
splitmix64 finaliser, and hashes every ``k`` consecutive words (a text of
fewer words is padded to ``k``). The values are those of the numpy path in
:mod:`price_bench.data.neardup` (``tests/data/test_scale.py`` compares them).

:func:`first_matches` confirms the candidate pairs that
:class:`price_bench.data.neardup.Matcher` found with numpy (LSH band
look-ups), with the rule the check has always had:

- a pair's MinHash estimate is the fraction of equal signature values;
- a row's candidates are tried by estimate, highest first, ties by query
  index, at most ``max_candidates`` of them and none estimated below
  ``floor``;
- the first whose exact Jaccard similarity (of the sorted unique shingle
  sets, ``inter / (|a| + |b| - inter)`` in float64, 1.0 for two empty sets)
  reaches ``threshold`` is the row's match.

Integer counts and the same float64 divisions as the numpy path, so the same
pairs, in any process. numba compiles them once per machine (the
machine code is cached beside this file, or in numba's user cache where that
is read-only); :func:`warm` loads them before a pool forks, so workers inherit them.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _splitmix(x: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True, nogil=True)
def shingle_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, k: int, is_word: np.ndarray,
                   mix: np.ndarray, prime: np.uint64, pad: np.uint64) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Every text's word ``k``-shingle hashes (duplicates kept, in text order) and each text's offset into them.

    Text ``t`` is ``data[starts[t]:ends[t]]`` (lower-cased UTF-8); ``is_word``
    marks the word bytes; a word's hash is ``splitmix(sum((byte + 1) *
    prime**i))`` and a shingle's is ``sum((word + 1) * mix[j % 4] *
    prime**(k - 1 - j))``, all modulo 2**64.
    """
    n = starts.size
    one = np.uint64(1)
    out = np.empty(data.size + n * k, np.uint64)
    offsets = np.empty(n, np.int64)
    longest = 0
    for t in range(n):
        longest = max(longest, ends[t] - starts[t])
    words = np.empty(longest + k, np.uint64)
    made = 0
    for t in range(n):
        offsets[t] = made
        count = 0
        i = starts[t]
        end = ends[t]
        while i < end:
            if not is_word[data[i]]:
                i += 1
                continue
            h = np.uint64(0)
            power = one
            while i < end and is_word[data[i]]:
                h += (np.uint64(data[i]) + one) * power
                power *= prime
                i += 1
            words[count] = _splitmix(h)
            count += 1
        while count < k:  # a text shorter than k words is one padded shingle
            words[count] = pad
            count += 1
        for first in range(count - k + 1):
            acc = np.uint64(0)
            for j in range(k):
                acc = acc * prime + (words[first + j] + one) * mix[j % 4]
            out[made] = acc
            made += 1
    return out[:made], offsets


@numba.njit(cache=True, nogil=True)
def _unique_sorted(values: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled (tested through first_matches)
    out = np.sort(values)
    size = 0
    for x in range(out.size):
        if x == 0 or out[x] != out[size - 1]:
            out[size] = out[x]
            size += 1
    return out[:size]


@numba.njit(cache=True, nogil=True)
def _similarity(row_set: np.ndarray, q_flat: np.ndarray, lo: int, hi: int) -> float:  # pragma: no cover - compiled
    """Jaccard similarity of a sorted unique set and the sorted unique ``q_flat[lo:hi]`` (a merge)."""
    size = hi - lo
    if size == 0:
        return 1.0 if row_set.size == 0 else 0.0
    inter = 0
    x = 0
    y = lo
    while x < row_set.size and y < hi:
        u = row_set[x]
        v = q_flat[y]
        if u < v:
            x += 1
        elif u > v:
            y += 1
        else:
            inter += 1
            x += 1
            y += 1
    return inter / (row_set.size + size - inter)


@numba.njit(cache=True, nogil=True)
def first_matches(hashes: np.ndarray, bounds: np.ndarray, rows: np.ndarray, cands: np.ndarray, r_sig: np.ndarray,
                  q_sig: np.ndarray, q_flat: np.ndarray, q_bounds: np.ndarray, threshold: float, floor: float,
                  max_candidates: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """``(rows, queries)``: each row's first similar candidate, for the rows that have one (ascending rows).

    ``hashes[bounds[r]:bounds[r + 1]]`` are row ``r``'s shingle hashes
    (duplicates allowed), ``r_sig``/``q_sig`` the MinHash signatures,
    ``q_flat[q_bounds[q]:q_bounds[q + 1]]`` query ``q``'s sorted unique
    shingles. ``(rows, cands)`` are the candidate pairs, sorted by row then
    query, each pair once.
    """
    n = rows.size
    perm = q_sig.shape[1]
    equal = np.empty(n, np.int64)
    for p in range(n):
        a = r_sig[rows[p]]
        b = q_sig[cands[p]]
        same = 0
        for t in range(perm):
            if a[t] == b[t]:
                same += 1
        equal[p] = same
    out_rows = np.empty(n, np.int64)
    out_queries = np.empty(n, np.int64)
    found = 0
    i = 0
    while i < n:
        row = rows[i]
        j = i + 1
        while j < n and rows[j] == row:
            j += 1
        order = np.argsort(-equal[i:j], kind="mergesort")  # stable: ties keep the ascending query order
        row_set = hashes[0:0].copy()
        have_set = False
        for rank in range(min(order.size, max_candidates)):
            p = i + order[rank]
            if equal[p] / perm < floor:
                break  # the rest are estimated lower still
            if not have_set:
                row_set = _unique_sorted(hashes[bounds[row] : bounds[row + 1]])
                have_set = True
            q = cands[p]
            if _similarity(row_set, q_flat, q_bounds[q], q_bounds[q + 1]) >= threshold:
                out_rows[found] = row
                out_queries[found] = q
                found += 1
                break
        i = j
    return out_rows[:found], out_queries[:found]


def warm() -> None:
    """Compile (or load from numba's cache) both kernels for the dtypes the check passes."""
    u64, i64 = np.zeros(0, np.uint64), np.zeros(0, np.int64)
    sig = np.zeros((0, 64), np.uint64)
    first_matches(u64, i64, i64, i64, sig, sig, u64, i64, 0.8, 0.6, 32)
    shingle_hashes(np.zeros(0, np.uint8), i64, i64, 3, np.zeros(256, np.bool_), np.zeros(4, np.uint64), np.uint64(3),
                   np.uint64(0))
