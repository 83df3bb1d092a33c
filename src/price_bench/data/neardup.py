"""Near-duplicate detection between two sets of texts (the leakage check).

Texts are normalised (lower case, punctuation removed), cut into word
shingles (3 words by default) and summarised by a 64-value MinHash; locality
sensitive hashing (16 bands of 4 values) proposes candidate pairs, and each
candidate is confirmed by the exact Jaccard similarity of the shingle sets.
Pairs at or above the threshold are near-duplicates. With these bands a pair
at Jaccard 0.8 is proposed with probability > 0.999, at 0.5 with about 0.65
(and then rejected by the exact check).

Words are hashed with a stable polynomial hash of their bytes, so
signatures do not depend on which texts were hashed together or in which
process; :class:`Matcher` checks any block of reference texts on its own,
so blocks can run in any number of processes.

Two implementations of the per-word, per-text and per-pair steps give the
same values: numpy (whole-batch array passes, and one call per exact check)
and numba-compiled loops (:mod:`price_bench.data.neardup_kernel`: shingles,
MinHash, band look-ups and the candidate checks), 2.2x as fast on the
benchmark's 1M-record check (90,000 reference texts against 10,000: 2.4
against 5.3 s side by side at 256 texts per compiled call, 1.8-1.9 s at
1,024) but with a one-time compile per machine and about half a second of
import and cache loading per process. A check of at least
:data:`COMPILED_FROM` reference texts takes the compiled loops; smaller ones
(tests, the demo) never import numba. Where numba cannot be loaded (not
installed, or no writable cache folder) the numpy path runs: slower, the same
answer.

Memory is about 640 bytes per text (signature and band keys), plus the
query side's shingle sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from price_bench.data.curation import lower_utf8

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
MAX_CANDIDATES = 32
_BATCH = 64
_PERM_SLICE = 8  # MinHash permutations hashed at once (see _minhash)
_MATCH_BATCH = 256  # reference texts per vectorised candidate step (signatures do not depend on it)
_MATCH_BATCH_COMPILED = 1024  # the same for the compiled loops (fewer calls: the 1M check took 1.9 s, against 2.4 s at 256)
COMPILED_FROM = 32_768
"""Reference texts from which :func:`near_duplicates` uses the compiled loops (the answer is the same either way)."""

_rng = np.random.default_rng(20240601)
_A = (_rng.integers(1, 2**63 - 1, size=NUM_PERM, dtype=np.uint64) | np.uint64(1))
_B = _rng.integers(0, 2**63 - 1, size=NUM_PERM, dtype=np.uint64)
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5], dtype=np.uint64)
_PAD = np.uint64(2**40)
_P = 0x100000001B3  # odd, so invertible modulo 2**64
_P_INV = pow(_P, -1, 2**64)
_P64 = np.uint64(_P)
_BYTE_PLUS_ONE = np.arange(1, 257, dtype=np.uint64)
_IS_WORD = np.zeros(256, dtype=bool)
_IS_WORD[np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)] = True


def _powers(base: int, n: int) -> np.ndarray:
    """``base**i`` modulo 2**64 for i in 0..n-1."""
    out = np.full(n, base, dtype=np.uint64)
    if n:
        out[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(out, dtype=np.uint64)


_POWERS: dict[int, np.ndarray] = {}


def _powers_upto(base: int, n: int) -> np.ndarray:
    """:func:`_powers` of ``base``, at least ``n`` of them, computed once and grown as needed (same values)."""
    known = _POWERS.get(base)
    if known is None or known.size < n:
        known = _powers(base, max(n, 1 << 16, 2 * (known.size if known is not None else 0)))
        _POWERS[base] = known
    return known


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads a polynomial hash over all 64 bits."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Stable 64-bit hashes of every text's lower-cased ``[a-z0-9]+`` words, and each text's word count.

    The hash is a function of the word alone (a polynomial over its bytes,
    computed for all words of the batch at once with numpy), so signatures do
    not depend on which texts were hashed together or in which process.
    """
    parts = [lower_utf8(t) for t in texts]
    data = np.frombuffer(b"\n".join(parts), dtype=np.uint8)
    if data.size == 0:
        return np.zeros(0, np.uint64), np.zeros(len(texts), np.int64)
    is_word = np.zeros(data.size + 2, dtype=bool)  # padded with a non-word byte at both ends
    is_word[1:-1] = _IS_WORD[data]
    starts = np.flatnonzero(is_word[1:] > is_word[:-1])
    ends = np.flatnonzero(is_word[1:] < is_word[:-1])  # exclusive
    with np.errstate(over="ignore"):
        cum = np.zeros(data.size + 1, dtype=np.uint64)
        terms = _BYTE_PLUS_ONE[data]  # byte + 1, as uint64
        np.multiply(terms, _powers_upto(_P, data.size)[: data.size], out=terms)
        np.cumsum(terms, dtype=np.uint64, out=cum[1:])
        hashes = _mix((cum[ends] - cum[starts]) * _powers_upto(_P_INV, data.size)[starts])
    text_ends = np.cumsum(np.fromiter((len(p) + 1 for p in parts), dtype=np.int64, count=len(parts)))
    owner = np.searchsorted(text_ends, starts, side="right")
    counts = np.bincount(owner, minlength=len(texts)).astype(np.int64)
    return hashes, counts


class Shingler:
    """Word ``k``-shingles as uint64 hashes of stable word hashes (see :func:`word_hashes`).

    ``compiled``: hash with :func:`price_bench.data.neardup_kernel.shingle_hashes` (the same values).
    """

    def __init__(self, k: int = 3, compiled: bool = False):
        self.k = k
        self.compiled = compiled

    def batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All shingle hashes of ``texts`` (duplicates kept) and each text's offset into them."""
        if self.compiled:
            return self._compiled_batch(texts)
        k = self.k
        flat, lengths = word_hashes(texts)
        if (lengths < k).any():  # pad short texts to k words, as one shingle
            pieces, start = [], 0
            for n in lengths.tolist():
                pieces.append(flat[start : start + n])
                if n < k:
                    pieces.append(np.full(k - n, _PAD, dtype=np.uint64))
                start += n
            flat = np.concatenate(pieces)
            lengths = np.maximum(lengths, k)
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

    def _compiled_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        from price_bench.data.neardup_kernel import shingle_hashes

        parts = [lower_utf8(t) for t in texts]
        sizes = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        ends = np.cumsum(sizes + 1) - 1  # exclusive; each text is followed by one separator byte
        data = np.frombuffer(b"\n".join(parts), dtype=np.uint8)
        return shingle_hashes(data, ends - sizes, ends, self.k, _IS_WORD, _MIX, _P64, _PAD)

    def __call__(self, text: str) -> np.ndarray:
        """Sorted unique uint64 hashes of one text's word shingles."""
        hashes, _ = self.batch([text])
        return _sorted_unique(hashes)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique arrays (the intersection found by binary search of ``a`` in ``b``)."""
    if b.size == 0:
        return 1.0 if a.size == 0 else 0.0
    at = b.searchsorted(a)
    np.minimum(at, b.size - 1, out=at)
    inter = int(np.count_nonzero(b[at] == a))
    return inter / (a.size + b.size - inter)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    out = np.sort(values)
    if out.size > 1:
        out = out[np.concatenate(([True], out[1:] != out[:-1]))]
    return out


def signatures(texts: Sequence[str], shingler: Shingler) -> np.ndarray:
    """``(len(texts), NUM_PERM)`` uint64 MinHash signatures."""
    out = np.zeros((len(texts), NUM_PERM), dtype=np.uint64)
    for start in range(0, len(texts), _BATCH):
        batch = texts[start : start + _BATCH]
        out[start : start + len(batch)] = _minhash(*shingler.batch(batch))
    return out


def _minhash(hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``(len(offsets), NUM_PERM)`` MinHash values of the texts whose shingles start at ``offsets``.

    Permutations x shingles, so that the reduction runs along contiguous
    memory (~10x faster), :data:`_PERM_SLICE` permutations at a time, so that
    the hashed block stays in cache (~2.5x faster than all 64 at once; the
    same values: each permutation's minimum is its own).
    """
    out = np.empty((offsets.size, NUM_PERM), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for lo in range(0, NUM_PERM, _PERM_SLICE):
            hashed = np.multiply.outer(_A[lo : lo + _PERM_SLICE], hashes)
            hashed += _B[lo : lo + _PERM_SLICE, None]
            out[:, lo : lo + _PERM_SLICE] = np.minimum.reduceat(hashed, offsets, axis=1).T
    return out


def band_keys(sig: np.ndarray) -> np.ndarray:
    """``(n, BANDS)`` uint64 LSH band keys from signatures."""
    banded = sig.reshape(sig.shape[0], BANDS, ROWS)
    with np.errstate(over="ignore"):
        keys: np.ndarray = (banded * _MIX[None, None, :ROWS]).sum(axis=2, dtype=np.uint64)
    return keys


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(s, s + n)`` for every ``(s, n)``, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    out: np.ndarray = np.arange(total, dtype=np.int64) + shift
    return out


class Matcher:
    """The query side of the check: signatures, LSH band index, shingle sets.

    :meth:`match` checks one block of reference texts; blocks are independent,
    so they can run in any number of processes with the same result. The
    candidate pairs of a whole batch of reference texts are found, estimated
    and ordered with numpy (``searchsorted`` on each band's sorted keys);
    only the exact Jaccard checks run one pair at a time. With ``compiled``,
    the shingles, MinHash, band look-ups, and the estimates, order and exact
    checks of each batch of candidates, run in numba-compiled loops (the
    same answer).
    """

    def __init__(self, queries: Sequence[str], threshold: float = 0.8, k: int = 3, compiled: bool = False):
        if compiled:
            from price_bench.data.neardup_kernel import warm

            warm()  # here, before a pool forks: the workers inherit the machine code
        self.compiled = compiled
        self.threshold = float(threshold)
        self.shingler = Shingler(k, compiled)
        self.size = len(queries)
        self.q_sig = np.zeros((len(queries), NUM_PERM), dtype=np.uint64)
        self.q_shingles: list[np.ndarray] = []
        for lo in range(0, len(queries), _BATCH):
            hashes, offsets = self.shingler.batch(queries[lo : lo + _BATCH])
            self.q_sig[lo : lo + offsets.size] = self._minhash(hashes, offsets)
            bounds = np.append(offsets, hashes.size)
            self.q_shingles += [_sorted_unique(hashes[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]
        self.q_flat = np.zeros(0, np.uint64)
        """With ``compiled``: the query shingle sets one after another (query ``q``'s: ``q_flat[q_bounds[q]:q_bounds[q + 1]]``)."""
        self.q_bounds = np.zeros(len(self.q_shingles) + 1, dtype=np.int64)
        if compiled and self.q_shingles:
            self.q_flat = np.concatenate(self.q_shingles)
            np.cumsum([sh.size for sh in self.q_shingles], dtype=np.int64, out=self.q_bounds[1:])
        q_keys = band_keys(self.q_sig)
        self.band_order = np.argsort(q_keys, axis=0, kind="stable")
        """Per band, the queries ordered by band key (ties by query index)."""
        self.band_sorted = np.ascontiguousarray(np.take_along_axis(q_keys, self.band_order, axis=0).T)
        self.band_order = np.ascontiguousarray(self.band_order.T)

    def _pairs(self, r_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unique ``(row, query)`` pairs sharing a band key, sorted by row then query."""
        rows: list[np.ndarray] = []
        found: list[np.ndarray] = []
        local = np.arange(r_keys.shape[0], dtype=np.int64)
        for band in range(BANDS):
            known = self.band_sorted[band]
            keys = r_keys[:, band]
            lo = np.searchsorted(known, keys, side="left")
            counts = np.searchsorted(known, keys, side="right") - lo
            if not counts.any():
                continue
            rows.append(np.repeat(local, counts))
            found.append(self.band_order[band][_ranges(lo.astype(np.int64), counts.astype(np.int64))])
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        width = max(self.size, 1)
        pair = np.sort(np.concatenate(rows) * width + np.concatenate(found))
        if pair.size > 1:
            pair = pair[np.concatenate(([True], pair[1:] != pair[:-1]))]
        return pair // width, pair % width

    def match(self, reference: Sequence[str], start: int, end: int) -> dict[int, int]:
        """``{ref_index: query_index}`` for the near-duplicates among ``reference[start:end]``.

        A reference text's candidates (queries sharing a band) are tried in
        order of MinHash estimate (highest first, ties by query index), at most
        :data:`MAX_CANDIDATES` of them and none estimated below the threshold
        minus 0.2; the first whose exact Jaccard similarity reaches the
        threshold is its match.
        """
        found: dict[int, int] = {}
        if self.size == 0:
            return found
        floor = max(0.0, self.threshold - 0.2)
        step = _MATCH_BATCH_COMPILED if self.compiled else _MATCH_BATCH
        for lo in range(start, end, step):
            hi = min(lo + step, end)
            hashes, offsets = self.shingler.batch(reference[lo:hi])
            r_sig = self._minhash(hashes, offsets)
            if self.compiled:
                self._compiled_confirm(hashes, np.append(offsets, hashes.size), r_sig, lo, floor, found)
                continue
            rows, cands = self._pairs(band_keys(r_sig))
            if rows.size == 0:
                continue
            estimate = np.count_nonzero(self.q_sig[cands] == r_sig[rows], axis=1) / NUM_PERM
            order = np.lexsort((cands, -estimate, rows))
            rows, cands, estimate = rows[order], cands[order], estimate[order]
            rank = np.arange(rows.size) - np.searchsorted(rows, rows, side="left")
            keep = (rank < MAX_CANDIDATES) & (estimate >= floor)
            self._confirm(hashes, np.append(offsets, hashes.size).tolist(), rows[keep], cands[keep], lo, found)
        return found

    def _confirm(self, hashes: np.ndarray, bounds: list[int], rows: np.ndarray, cands: np.ndarray, lo: int,
                 found: dict[int, int]) -> None:
        """Each row's first candidate (in the given order) whose exact Jaccard reaches the threshold, into ``found``.

        ``rows`` is sorted (each row's candidates are one run), as :meth:`match` orders them.
        The first candidate is checked alone (nine rows in ten that match, match it); the rest of
        a row's candidates in one vectorised step (on the worst-case benchmark input, the rows
        that match none of theirs took two thirds of the checks).
        """
        if rows.size == 0:
            return
        starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
        ends = np.append(starts[1:], rows.size).tolist()
        candidates = cands.tolist()
        shingles, threshold = self.q_shingles, self.threshold
        for row, start, end in zip(rows[starts].tolist(), starts.tolist(), ends):
            r_sh = _sorted_unique(hashes[bounds[row] : bounds[row + 1]])
            first = candidates[start]
            if jaccard(r_sh, shingles[first]) >= threshold:
                found[lo + row] = first
            elif end - start > 1:
                hit = self._first_similar(r_sh, candidates[start + 1 : end])
                if hit is not None:
                    found[lo + row] = hit

    def _minhash(self, hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """:func:`_minhash`, or with ``compiled`` its compiled loop (the same values)."""
        if not self.compiled:
            return _minhash(hashes, offsets)
        from price_bench.data.neardup_kernel import minhash

        return minhash(hashes, offsets, _A, _B)

    def _compiled_confirm(self, hashes: np.ndarray, bounds: np.ndarray, r_sig: np.ndarray, lo: int, floor: float,
                          found: dict[int, int]) -> None:
        """The candidates (band look-ups), estimate, order and first similar candidate of every row, compiled (:meth:`match`'s rule)."""
        from price_bench.data.neardup_kernel import band_pairs, first_matches

        rows, cands = band_pairs(band_keys(r_sig), self.band_sorted, self.band_order)
        if rows.size == 0:
            return
        hit_rows, hit_queries = first_matches(hashes, bounds, rows, cands, r_sig, self.q_sig, self.q_flat, self.q_bounds,
                                              self.threshold, floor, MAX_CANDIDATES)
        found.update(zip((hit_rows + lo).tolist(), hit_queries.tolist()))

    def _first_similar(self, r_sh: np.ndarray, candidates: list[int]) -> int | None:
        """The first of ``candidates`` whose :func:`jaccard` with ``r_sh`` reaches the threshold (None: none does).

        All intersections at once, by binary search of the candidates' shingles in ``r_sh``;
        the same counts and the same float division as :func:`jaccard`, so the same answer.
        """
        sets = [self.q_shingles[qi] for qi in candidates]
        sizes = np.fromiter((s.size for s in sets), dtype=np.int64, count=len(sets))
        if r_sh.size == 0 or not sizes.all():  # reduceat cannot count an empty set: one at a time
            return next((qi for qi, s in zip(candidates, sets) if jaccard(r_sh, s) >= self.threshold), None)
        flat = np.concatenate(sets)
        at = r_sh.searchsorted(flat)
        np.minimum(at, r_sh.size - 1, out=at)
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        inter = np.add.reduceat(r_sh[at] == flat, offsets, dtype=np.int64)
        similar = np.flatnonzero(inter / (r_sh.size + sizes - inter) >= self.threshold)
        return candidates[int(similar[0])] if similar.size else None


def compiled_loops_available() -> bool:
    """Whether :mod:`price_bench.data.neardup_kernel` loads here (numba installed, and a folder to cache its machine code in)."""
    try:
        import price_bench.data.neardup_kernel  # noqa: F401
    except (ImportError, RuntimeError, OSError):  # numba raises RuntimeError when no cache folder is writable
        return False
    return True


MapBlocks = Callable[["Matcher", Sequence[str], list[tuple[int, int]]], Iterable[dict[int, int]]]
BLOCK = 4096


def near_duplicates(reference: Sequence[str], queries: Sequence[str], threshold: float = 0.8, k: int = 3,
                    map_blocks: MapBlocks | None = None, block: int = BLOCK, compiled: bool | None = None) -> dict[int, int]:
    """Reference indices that nearly duplicate some query: ``{ref_index: query_index}``.

    A pair is a near-duplicate when the Jaccard similarity of their word
    ``k``-shingles is at least ``threshold``. Candidates come from LSH; those
    whose MinHash estimate is far below the threshold are skipped before the
    exact check. ``map_blocks(matcher, reference, blocks)`` may run the
    reference blocks (of ``block`` texts) elsewhere (a process pool); the
    result is the same for any block size, and with or without the
    ``compiled`` loops (default: from :data:`COMPILED_FROM` reference texts).
    """
    if not reference or not queries:
        return {}
    if compiled is None:
        compiled = len(reference) >= COMPILED_FROM and compiled_loops_available()
    matcher = Matcher(queries, threshold, k, compiled=compiled)
    blocks = [(lo, min(lo + block, len(reference))) for lo in range(0, len(reference), block)]
    if map_blocks is None:
        results: Iterable[dict[int, int]] = (matcher.match(reference, lo, hi) for lo, hi in blocks)
    else:
        results = map_blocks(matcher, reference, blocks)
    found: dict[int, int] = {}
    for part in results:
        found.update(part)
    return found
