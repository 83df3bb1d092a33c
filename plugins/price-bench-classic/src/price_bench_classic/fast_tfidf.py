"""A vectorised ``transform`` for a fitted scikit-learn ``TfidfVectorizer``, byte-identical to its own.

scikit-learn's word analyzer runs in Python, one document and one feature at
a time (regex ``findall``, a ``" ".join`` per bigram, a dict lookup and a
counter per feature): about 0.2 ms of CPU per product text, most of a served
prediction's cost. :func:`tfidf_transform` produces the same matrix with a
handful of numpy operations per *batch*:

* the batch's ASCII documents are joined into one byte buffer (a non-word
  byte between documents), lowercased and classified through 256-entry
  tables; tokens are the runs of word bytes (``[a-z0-9_]``) of length >= 2,
  which is exactly what ``(?u)\\b\\w\\w+\\b`` finds in lowercased ASCII text;
* each token is read as a few uint64 (its bytes, zero-padded), hashed, looked
  up among the hashes of the words that occur in the vocabulary
  (:class:`HashIndex`) and compared in full with the word found; a bigram is
  a pair of adjacent word ids looked up among the vocabulary's pairs, so no
  bigram string is built;
* counts come from ``np.unique`` on (row, column) keys (sorted, duplicates
  summed), and the vectorizer's own ``TfidfTransformer`` applies sublinear tf,
  idf and the norm, so dtypes and the order of operations are scikit-learn's.

Exactness: Python's ``\\w`` and ``str.lower`` are Unicode-aware, and
``strip_accents`` only changes non-ASCII text, so a document that is not pure
ASCII goes through the vectorizer's own analyzer (its features are counted
with the others, so the row is the same). A vectorizer with any setting the
fast path does not reproduce (a custom analyzer, tokenizer, preprocessor or
token pattern, stop words, ``lowercase=False``, n-grams other than 1-2,
``binary``) is transformed by scikit-learn itself.

The lookup tables are derived from the fitted ``vocabulary_`` on first use
and kept in memory only (never pickled), so vectorizers fitted and saved
before this module existed work unchanged.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

#: The default token pattern, the only one the fast path reproduces.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
#: Vocabulary words longer than this are looked up by the slow path's dict (a wider table would cost every token).
MAX_WORD_BYTES = 48

#: An ASCII byte's lowercase form if it is a word byte (``[A-Za-z0-9_]``, what ``\\w`` matches in ASCII), else 0.
_CODE = np.zeros(256, dtype=np.uint8)
for _lo, _hi, _shift in (("a", "z", 0), ("A", "Z", 32), ("0", "9", 0), ("_", "_", 0)):
    _CODE[ord(_lo) : ord(_hi) + 1] = np.arange(ord(_lo), ord(_hi) + 1) + _shift
#: :data:`_CODE` as a ``bytes.translate`` table (one C pass over a batch's bytes).
_CODE_TABLE = _CODE.tobytes()
#: A vocabulary word an ASCII document's tokenizer can produce (lowercase word bytes) and the table holds.
_FAST_WORD = re.compile(rf"[a-z0-9_]{{2,{MAX_WORD_BYTES}}}")
#: ``_BYTE_MASKS[k]`` keeps the first ``k`` bytes of a little-endian uint64.
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def supports(vectorizer: Any) -> bool:
    """Whether :func:`tfidf_transform` reproduces ``vectorizer.transform`` (else it defers to it)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    v = vectorizer
    return (
        type(v) is TfidfVectorizer
        and v.analyzer == "word"
        and v.input == "content"
        and v.tokenizer is None
        and v.preprocessor is None
        and v.token_pattern == TOKEN_PATTERN
        and v.stop_words is None
        and v.lowercase is True
        and v.strip_accents in (None, "ascii", "unicode")
        and v.norm in (None, "l1", "l2")
        and tuple(v.ngram_range) in ((1, 1), (1, 2), (2, 2))
        and not v.binary
        and hasattr(v, "vocabulary_")
        and (not v.use_idf or hasattr(v, "idf_"))
    )


class _Tables:
    """The fitted vocabulary as lookup tables: its ASCII words (packed uint64, hashed) and word pairs (int64 keys) to columns."""

    def __init__(self, vectorizer: Any) -> None:
        vocabulary: dict[str, int] = vectorizer.vocabulary_
        self.vocabulary = vocabulary
        self.n_features = len(vocabulary)
        self.min_n, self.max_n = (int(n) for n in vectorizer.ngram_range)
        self.analyze = vectorizer.build_analyzer()
        words: dict[str, int] = {}
        unigrams: list[tuple[int, int]] = []
        bigrams: list[tuple[int, int, int]] = []
        self.long_words = False  # whether some ASCII vocabulary word is too long for the table (see MAX_WORD_BYTES)
        for term, column in vocabulary.items():
            parts = term.split(" ")
            if not all(map(_FAST_WORD.fullmatch, parts)):
                # only a non-ASCII document, or an ASCII one with a token longer than any table word, can produce it:
                # both go through the slow path
                self.long_words = self.long_words or any(len(p) > MAX_WORD_BYTES and p.isascii() for p in parts)
                continue
            ids = [words.setdefault(p, len(words)) for p in parts]
            if len(ids) == 1:
                unigrams.append((ids[0], column))
            elif len(ids) == 2:
                bigrams.append((ids[0], ids[1], column))
        self.n_words = len(words)
        self.chunks = -(-max((len(w) for w in words), default=1) // 8)  # uint64 chunks of the longest word
        packed = _pack([w.encode("ascii") for w in words], self.chunks)
        self.multipliers, hashes = _unique_hashes(packed)
        #: ``columns[j][i]``: bytes ``8j .. 8j+7`` of word ``i`` (one contiguous array per chunk, for 1-d gathers).
        self.columns = [np.ascontiguousarray(packed[:, j]) for j in range(self.chunks)]
        self.word_lengths = np.array([len(w) for w in words], dtype=np.int64)
        self.word_index = HashIndex(hashes)  # a word's id is its row
        self.unigram_column = np.full(max(self.n_words, 1), -1, dtype=np.int64)
        for word, column in unigrams:
            self.unigram_column[word] = column
        keys = np.array([a * self.n_words + b for a, b, _ in bigrams], dtype=np.int64)
        self.bigram_index = HashIndex(keys.view(np.uint64), np.array([c for _, _, c in bigrams], dtype=np.int64))

    def ascii_features(self, docs: Sequence[str], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, column) of every in-vocabulary feature of the ASCII ``docs`` (rows: their row numbers).

        The third array holds the rows with a token longer than the table's
        words: a longer vocabulary word (left out of the table) could match
        it, so the caller recounts those rows with the slow path.
        """
        empty = np.zeros(0, dtype=np.int64)
        if not docs:
            return empty, empty, empty
        code = np.frombuffer("\n".join(docs).encode("ascii").translate(_CODE_TABLE), dtype=np.uint8)
        word = np.zeros(len(code) + 2, dtype=np.int8)  # a non-word byte on either side
        word[1:-1] = code != 0
        edges = np.flatnonzero(np.diff(word))  # alternately a token's first byte and the byte after its last
        starts, ends = edges[0::2], edges[1::2]
        lengths = ends - starts
        keep = lengths >= 2
        starts, lengths = starts[keep], lengths[keep]
        doc_starts = np.cumsum([0] + [len(d) + 1 for d in docs[:-1]])
        first_tokens = np.searchsorted(starts, doc_starts)  # each document's first token
        token_rows = np.repeat(rows, np.diff(np.append(first_tokens, len(starts))))
        long_rows = np.unique(token_rows[lengths > 8 * self.chunks]) if self.long_words else empty
        ids = self._word_ids(code, starts, lengths)
        out_rows, out_cols = [], []
        if self.min_n == 1:
            cols = np.where(ids >= 0, self.unigram_column[np.maximum(ids, 0)], -1)
            out_rows.append(token_rows)
            out_cols.append(cols)
        if self.max_n == 2 and len(ids) > 1 and self.bigram_index.size:
            first, second = ids[:-1], ids[1:]
            pair = (token_rows[:-1] == token_rows[1:]) & (first >= 0) & (second >= 0)
            keys = first[pair] * self.n_words + second[pair]
            out_rows.append(token_rows[:-1][pair])
            out_cols.append(self.bigram_index.lookup(keys.view(np.uint64)))
        if not out_rows:
            return empty, empty, long_rows
        all_rows, all_cols = np.concatenate(out_rows), np.concatenate(out_cols)
        found = all_cols >= 0
        return all_rows[found], all_cols[found], long_rows

    def _word_ids(self, code: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The vocabulary word id of each token (-1: no vocabulary term contains it).

        Each token is read as little-endian uint64 chunks (bytes past its end
        zeroed; only a token longer than ``8j`` bytes has a chunk ``j``),
        hashed, looked up among the vocabulary words' hashes, and compared in
        full (its length and every chunk) with the word found.
        """
        ids = np.full(len(starts), -1, dtype=np.int64)
        if not len(starts) or not self.n_words:
            return ids
        padded = np.concatenate([code, np.zeros(8, dtype=np.uint8)])
        at = np.ndarray((len(code) + 1,), dtype="<u8", buffer=padded, strides=(1,))  # at[i]: the 8 bytes from byte i
        head = np.take(at, starts) & _BYTE_MASKS[np.minimum(lengths, 8)]
        mixed = head * self.multipliers[0]
        tails: list[tuple[np.ndarray, np.ndarray]] = []  # (tokens longer than 8j bytes, their chunk j), j >= 1
        longer = np.arange(len(starts))
        for j in range(1, self.chunks):
            longer = longer[lengths[longer] > 8 * j]
            if not len(longer):
                break
            chunk = np.take(at, starts[longer] + 8 * j) & _BYTE_MASKS[np.minimum(lengths[longer] - 8 * j, 8)]
            mixed[longer] += chunk * self.multipliers[j]
            tails.append((longer, chunk))
        found = self.word_index.lookup(_mix(mixed))  # the same hash as _hash() of the zero-padded chunks
        candidates = np.flatnonzero(found >= 0)
        words = found[candidates]
        same = (self.word_lengths[words] == lengths[candidates]) & (self.columns[0][words] == head[candidates])
        ids[candidates[same]] = words[same]
        for j, (longer, chunk) in enumerate(tails, start=1):  # equal lengths: the word has chunk j exactly when the token has
            words = ids[longer]
            hit = words >= 0
            ids[longer[hit][self.columns[j][words[hit]] != chunk[hit]]] = -1
        return ids

    def other_features(self, docs: Sequence[str], rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of the features of non-ASCII ``docs``, from the vectorizer's own analyzer."""
        out_rows: list[int] = []
        out_cols: list[int] = []
        get = self.vocabulary.get
        for row, doc in zip(rows, docs, strict=True):
            cols = [c for c in map(get, self.analyze(doc)) if c is not None]
            out_cols.extend(cols)
            out_rows.extend([row] * len(cols))
        return np.asarray(out_rows, dtype=np.int64), np.asarray(out_cols, dtype=np.int64)


class HashIndex:
    """A static map from unique uint64 keys to int64 values, looked up in bulk (pandas' hash table).

    pandas' ``UInt64Engine.get_indexer`` on a unique ``uint64`` index is a
    khash look-up in C, one pass over the queries: about 4x faster than
    ``np.searchsorted`` on the sorted keys, and it needs no table of our own.
    It is called on the index's engine, not through ``Index.get_indexer``,
    whose argument checks cost as much as the look-up for a batch of ~10,000
    queries (the same answers: ``tests`` compare the two). Without
    ``values``, a key's value is its position.
    """

    def __init__(self, keys: np.ndarray, values: np.ndarray | None = None) -> None:
        import pandas as pd

        keys = np.asarray(keys, dtype=np.uint64)
        self.values = None if values is None else np.asarray(values, dtype=np.int64)
        if self.values is not None and len(keys) != len(self.values):
            raise ValueError(f"HashIndex: {len(keys)} keys but {len(self.values)} values")
        self.size = len(keys)
        self.index = pd.Index(keys, dtype=np.uint64)
        if not self.index.is_unique:
            raise ValueError("HashIndex: the keys are not unique")
        engine = getattr(self.index, "_engine", None)
        self._get_indexer = engine.get_indexer if hasattr(engine, "get_indexer") else self.index.get_indexer

    def lookup(self, queries: np.ndarray) -> np.ndarray:
        """The value of each query key (-1 where the key is absent)."""
        if not self.size or not len(queries):
            return np.full(len(queries), -1, dtype=np.int64)
        at = np.asarray(self._get_indexer(np.ascontiguousarray(queries, dtype=np.uint64)), dtype=np.int64)
        if self.values is None:
            return at
        return np.where(at >= 0, self.values[np.maximum(at, 0)], -1)


def _pack(words: list[bytes], chunks: int) -> np.ndarray:
    """Words as rows of ``chunks`` little-endian uint64 (NUL-padded)."""
    width = 8 * chunks
    buffer = b"".join(w.ljust(width, b"\0") for w in words)
    return np.frombuffer(buffer, dtype="<u8").astype(np.uint64).reshape(len(words), chunks)


def _hash(packed: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of packed words (multiply-add modulo 2**64, then an xor-shift mix)."""
    mixed: np.ndarray = packed[:, 0] * multipliers[0]
    for j in range(1, packed.shape[1]):  # column by column: numpy's row-wise sum over a short axis is slow
        mixed += packed[:, j] * multipliers[j]
    return _mix(mixed)


def _mix(sums: np.ndarray) -> np.ndarray:
    """The hash's final xor-shift of the multiply-add sums, in place (shared by both hash paths)."""
    sums ^= sums >> np.uint64(31)
    return sums


def _unique_hashes(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Odd multipliers under which no two vocabulary words share a hash, and the hashes."""
    rng = np.random.default_rng(0)
    while True:
        draws = np.asarray(rng.integers(1, 2**63, size=packed.shape[1], dtype=np.uint64))
        multipliers = draws * np.uint64(2) + np.uint64(1)  # odd (the sum wraps modulo 2**64)
        hashes = _hash(packed, multipliers)
        if len(np.unique(hashes)) == len(hashes):
            return multipliers, hashes


_TABLES: weakref.WeakKeyDictionary[Any, _Tables] = weakref.WeakKeyDictionary()
_TABLES_LOCK = threading.Lock()


def _tables(vectorizer: Any) -> _Tables:
    """The vectorizer's lookup tables, built on first use (in memory only)."""
    tables = _TABLES.get(vectorizer)
    if tables is None or tables.vocabulary is not vectorizer.vocabulary_:
        with _TABLES_LOCK:
            tables = _TABLES.get(vectorizer)
            if tables is None or tables.vocabulary is not vectorizer.vocabulary_:
                tables = _Tables(vectorizer)
                _TABLES[vectorizer] = tables
    return tables


def prepare(vectorizer: Any) -> None:
    """Build the vectorizer's lookup tables now (else on the first transform): ~1 s for a 300,000-term vocabulary."""
    if supports(vectorizer):
        _tables(vectorizer)


def count_matrix(vectorizer: Any, docs: Sequence[str]) -> Any:
    """The term-count matrix ``CountVectorizer.transform`` gives (CSR, sorted indices, the vectorizer's dtype)."""
    import scipy.sparse as sp

    data, indices, indptr = _count_arrays(vectorizer, docs)
    matrix = sp.csr_array((data, indices, indptr), shape=(len(docs), len(vectorizer.vocabulary_)))
    matrix.sort_indices()
    return matrix


def _count_arrays(vectorizer: Any, docs: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(data, indices, indptr)`` of :func:`count_matrix`: each row's features in column order, with their counts."""
    tables = _tables(vectorizer)
    is_ascii = [d.isascii() for d in docs]
    if all(is_ascii):
        rows, cols, long_rows = tables.ascii_features(docs, np.arange(len(docs)))
        other_rows: list[int] = []
    else:
        ascii_rows = [i for i, a in enumerate(is_ascii) if a]
        rows, cols, long_rows = tables.ascii_features([docs[i] for i in ascii_rows], np.asarray(ascii_rows, dtype=np.int64))
        other_rows = [i for i, a in enumerate(is_ascii) if not a]
    if len(long_rows):
        recount = ~np.isin(rows, long_rows)
        rows, cols = rows[recount], cols[recount]
        other_rows = sorted([*other_rows, *long_rows.tolist()])
    if other_rows:
        slow_rows, slow_cols = tables.other_features([docs[i] for i in other_rows], other_rows)
        rows, cols = np.concatenate([rows, slow_rows]), np.concatenate([cols, slow_cols])
    n_docs, n_features = len(docs), tables.n_features
    # (row, column) as one sortable key; int32 when it fits (numpy sorts int32 about twice as fast)
    key_dtype = np.int32 if n_docs * n_features <= np.iinfo(np.int32).max else np.int64
    keys = np.sort((rows * n_features + cols).astype(key_dtype))
    first = np.ones(len(keys), dtype=np.bool_)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, len(keys)))
    keys = keys[starts]
    indices_dtype = np.int32 if len(keys) <= np.iinfo(np.int32).max else np.int64
    indptr = np.searchsorted(keys, np.arange(n_docs + 1, dtype=np.int64) * n_features).astype(indices_dtype)
    return counts.astype(vectorizer.dtype), (keys % n_features).astype(indices_dtype), indptr


def tfidf_transform(vectorizer: Any, docs: Sequence[str]) -> Any:
    """``vectorizer.transform(docs)``, byte for byte, computed in bulk (see the module docstring)."""
    import scipy.sparse as sp
    import sklearn

    if isinstance(docs, str) or not supports(vectorizer):
        return vectorizer.transform(docs)
    docs = list(docs)
    if not docs or not all(isinstance(d, str) for d in docs):  # scikit-learn's own answer (or error)
        return vectorizer.transform(docs)
    csr = sp.csr_array if sklearn.get_config().get("sparse_interface", "spmatrix") == "sparray" else sp.csr_matrix
    matrix = csr(_count_arrays(vectorizer, docs), shape=(len(docs), len(vectorizer.vocabulary_)))
    matrix.has_sorted_indices = True  # each row's columns come out of one sort
    return _weigh(vectorizer, matrix)


def _weigh(vectorizer: Any, counts: Any) -> Any:
    """``TfidfTransformer.transform`` without its per-call input validation, in place: the same operations in the same order."""
    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l1, inplace_csr_row_normalize_l2

    if vectorizer.sublinear_tf:
        np.log(counts.data, counts.data)
        counts.data += 1.0
    if vectorizer.use_idf:
        counts.data *= vectorizer.idf_[counts.indices]
    if vectorizer.norm == "l2":
        inplace_csr_row_normalize_l2(counts)
    elif vectorizer.norm == "l1":
        inplace_csr_row_normalize_l1(counts)
    return counts
