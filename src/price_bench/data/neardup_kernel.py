"""The compiled inner loops of the leakage check: word shingles, MinHash, band look-ups, and candidate estimates, order and exact Jaccard.

Each is per word, per pair or per row: thousands of small steps that numpy
can only run as many whole-array passes or one call at a time. numba compiles
each into one call per batch of texts.

:func:`minhash` and :func:`band_pairs` give exactly the values of the numpy
path's ``_minhash`` and ``Matcher._pairs`` (``tests/data/test_scale.py``
compares them).

:func:`shingle_hashes` cuts lower-cased texts into words (maximal runs of
``[a-z0-9]``), hashes each word with a polynomial over its bytes and the
splitmix64 finaliser, and hashes every ``k`` consecutive words (a text of
fewer words is padded to ``k``). The values are those of the numpy path in
:mod:`price_bench.data.neardup` (``tests/data/test_scale.py`` compares them).

:func:`first_matches` confirms the candidate pairs that :func:`band_pairs`
found (LSH band look-ups), with the rule the check has always had:

- a pair's MinHash estimate is the fraction of equal signature values;
- a row's candidates are tried by estimate, highest first, ties by query
  index, at most ``max_candidates`` of them and none estimated below
  ``floor``;
- the first whose exact Jaccard similarity (of the unique shingle sets,
  ``inter / (|a| + |b| - inter)`` in float64, 1.0 for two empty sets)
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


_FIBONACCI = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True)
def _fill_set(values: np.ndarray, keys: np.ndarray, stamps: np.ndarray, stamp: int, bits: int) -> int:  # pragma: no cover - compiled
    """Put ``values`` into the open-addressing set ``keys`` (slots whose ``stamps`` equal ``stamp``); the distinct count.

    The table has ``2**bits`` slots, at least twice as many as ``values``; a
    slot is free unless its stamp is this set's, so the table is never cleared.
    """
    mask = np.int64((1 << bits) - 1)
    if 2 * values.size > mask + 1:
        raise ValueError("the hash set is too small for the row")  # a probe could then run forever
    shift = np.uint64(64 - bits)
    distinct = 0
    for v in values:
        slot = np.int64((v * _FIBONACCI) >> shift)
        while stamps[slot] == stamp:
            if keys[slot] == v:
                break
            slot = (slot + 1) & mask
        else:
            stamps[slot] = stamp
            keys[slot] = v
            distinct += 1
    return distinct


@numba.njit(cache=True, nogil=True)
def _shared(keys: np.ndarray, stamps: np.ndarray, stamp: int, bits: int, q_flat: np.ndarray, lo: int, hi: int) -> int:  # pragma: no cover - compiled
    """How many of ``q_flat[lo:hi]`` (a query's shingles, each once) are in the set :func:`_fill_set` made with ``stamp``."""
    mask = np.int64((1 << bits) - 1)
    shift = np.uint64(64 - bits)
    inter = 0
    for y in range(lo, hi):
        v = q_flat[y]
        slot = np.int64((v * _FIBONACCI) >> shift)
        while stamps[slot] == stamp:
            if keys[slot] == v:
                inter += 1
                break
            slot = (slot + 1) & mask
    return inter


@numba.njit(cache=True, nogil=True)
def first_matches(hashes: np.ndarray, bounds: np.ndarray, rows: np.ndarray, cands: np.ndarray, r_sig: np.ndarray,
                  q_sig: np.ndarray, q_flat: np.ndarray, q_bounds: np.ndarray, threshold: float, floor: float,
                  max_candidates: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """``(rows, queries)``: each row's first similar candidate, for the rows that have one (ascending rows).

    ``hashes[bounds[r]:bounds[r + 1]]`` are row ``r``'s shingle hashes
    (duplicates allowed), ``r_sig``/``q_sig`` the MinHash signatures,
    ``q_flat[q_bounds[q]:q_bounds[q + 1]]`` query ``q``'s unique shingles
    (each once: they are counted, not merged). ``(rows, cands)`` are the
    candidate pairs, sorted by row then query, each pair once (a row's pairs
    must be one run: its hash set is made once).

    A row's next candidate is picked by a scan for the highest estimate not
    yet tried (the first of equals: the lowest query), so the usual row, whose
    first candidate matches, costs one pass and no sort. The row's shingles go
    into a hash set once (their distinct count is the set's size) and each
    tried query's shingles are looked up in it: the same integer counts as a
    merge of the two sorted sets.
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
    longest = 1  # the table is sized for the longest row that has candidates
    for p in range(n):
        if p == 0 or rows[p] != rows[p - 1]:
            longest = max(longest, bounds[rows[p] + 1] - bounds[rows[p]])
    bits = 4
    while (1 << bits) < 2 * longest:
        bits += 1
    keys = np.empty(1 << bits, np.uint64)
    stamps = np.full(1 << bits, -1, np.int64)
    out_rows = np.empty(n, np.int64)
    out_queries = np.empty(n, np.int64)
    found = 0
    i = 0
    while i < n:
        row = rows[i]
        j = i + 1
        while j < n and rows[j] == row:
            j += 1
        distinct = -1
        for _ in range(min(j - i, max_candidates)):
            best = i
            for p in range(i + 1, j):
                if equal[p] > equal[best]:
                    best = p
            if equal[best] < 0 or equal[best] / perm < floor:
                break  # the rest are estimated lower still (or all were tried)
            if distinct < 0:
                distinct = _fill_set(hashes[bounds[row] : bounds[row + 1]], keys, stamps, row, bits)
            q = cands[best]
            lo, hi = q_bounds[q], q_bounds[q + 1]
            if hi == lo:
                similarity = 1.0 if distinct == 0 else 0.0
            else:
                inter = _shared(keys, stamps, row, bits, q_flat, lo, hi)
                similarity = inter / (distinct + (hi - lo) - inter)
            if similarity >= threshold:
                out_rows[found] = row
                out_queries[found] = q
                found += 1
                break
            equal[best] = -1  # tried
        i = j
    return out_rows[:found], out_queries[:found]


@numba.njit(cache=True, nogil=True)
def minhash(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``(len(offsets), a.size)`` MinHash values: per text and permutation ``p``, the least ``a[p] * h + b[p]`` (mod 2**64).

    Text ``t``'s shingle hashes are ``hashes[offsets[t]:offsets[t + 1]]`` (the last runs to the end); every
    text has at least one (the shingler pads short texts). The values of the numpy path's ``_minhash``.
    """
    n = offsets.size
    perm = a.size
    out = np.empty((n, perm), np.uint64)
    for t in range(n):
        lo = offsets[t]
        hi = offsets[t + 1] if t + 1 < n else hashes.size
        if hi <= lo:
            raise ValueError("a text without shingles")
        row = out[t]
        h = hashes[lo]
        for p in range(perm):
            row[p] = a[p] * h + b[p]
        for i in range(lo + 1, hi):
            h = hashes[i]
            for p in range(perm):
                value = a[p] * h + b[p]
                if value < row[p]:
                    row[p] = value
    return out


@numba.njit(cache=True, nogil=True)
def _first_at_least(known: np.ndarray, key: np.uint64) -> int:  # pragma: no cover - compiled
    """The first index of the ascending ``known`` whose value is not below ``key`` (``searchsorted``, left)."""
    lo = 0
    hi = known.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if known[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def band_pairs(r_keys: np.ndarray, band_sorted: np.ndarray, band_order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Unique ``(row, query)`` pairs sharing a band key, sorted by row then query (the numpy path's ``Matcher._pairs``).

    ``band_sorted[b]`` holds band ``b``'s query keys in ascending order and
    ``band_order[b]`` the query of each; ``r_keys[r, b]`` is row ``r``'s key.
    A query met again in a later band of the same row is skipped by a
    per-query mark, so only a row's distinct candidates are sorted.
    """
    n, bands = r_keys.shape
    queries = band_order.shape[1]
    seen_by = np.full(queries, -1, np.int64)
    rows = np.empty(max(16, 4 * n), np.int64)
    cands = np.empty_like(rows)
    found = 0
    for r in range(n):
        first = found
        for band in range(bands):
            known = band_sorted[band]
            key = r_keys[r, band]
            x = _first_at_least(known, key)
            order = band_order[band]
            while x < queries and known[x] == key:
                q = order[x]
                x += 1
                if seen_by[q] == r:
                    continue
                seen_by[q] = r
                if found == rows.size:
                    grown_rows = np.empty(2 * found, np.int64)
                    grown_cands = np.empty(2 * found, np.int64)
                    grown_rows[:found] = rows[:found]
                    grown_cands[:found] = cands[:found]
                    rows, cands = grown_rows, grown_cands
                rows[found] = r
                cands[found] = q
                found += 1
        if found - first > 1:
            cands[first:found] = np.sort(cands[first:found])
    return rows[:found], cands[:found]


def warm() -> None:
    """Compile (or load from numba's cache) the kernels for the dtypes the check passes."""
    u64, i64 = np.zeros(0, np.uint64), np.zeros(0, np.int64)
    sig = np.zeros((0, 64), np.uint64)
    first_matches(u64, i64, i64, i64, sig, sig, u64, i64, 0.8, 0.6, 32)
    shingle_hashes(np.zeros(0, np.uint8), i64, i64, 3, np.zeros(256, np.bool_), np.zeros(4, np.uint64), np.uint64(3),
                   np.uint64(0))
    minhash(u64, i64, u64, u64)
    keys = np.zeros((0, 16), np.uint64)
    band_pairs(keys, keys.T.copy(), np.zeros((16, 0), np.int64))
