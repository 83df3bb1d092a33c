"""MiniLM embeddings are a function of the text alone: not of the batch it is encoded in, nor of what ran before."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from price_bench_classic.embeddings import clear_memos, minilm_embed

MAX_SEQ_LENGTH = 64
#: Texts shorter than the longest ones, so that a batch mixing them pads them (the case that used to differ).
SHORT_TEXTS = ["USB-C cable, 2 m", "Stainless steel water bottle 750 ml", "Kids' rain boots\nsize 11, blue", "LED bulb"]


@pytest.fixture(autouse=True)
def _needs_the_packaged_minilm():
    from price_bench_classic.minilm import MiniLMRidge

    reason = MiniLMRidge.skip_reason(MiniLMRidge.Config())
    if reason:
        pytest.skip(f"the packaged all-MiniLM-L6-v2 is needed: {reason}")
    clear_memos()
    yield
    clear_memos()


def _fresh(texts: list[str]) -> np.ndarray:
    """Embeddings computed now (no memo hit)."""
    clear_memos()
    return minilm_embed(texts, max_seq_length=MAX_SEQ_LENGTH)


@pytest.mark.slow
def test_a_texts_embedding_does_not_depend_on_its_batch_or_order(demo_split):
    texts = SHORT_TEXTS + [item.text for item in demo_split.test[:76]]
    together = _fresh(texts)
    assert together.shape == (len(texts), 384) and together.dtype == np.float32

    reordered = _fresh(texts[::-1])[::-1]
    alone = np.stack([_fresh([text])[0] for text in texts[:6] + texts[-2:]])
    with_others = _fresh(texts[1::3] + [item.text for item in demo_split.train[:40]])[: len(texts[1::3])]
    assert reordered.tobytes() == together.tobytes()
    assert alone.tobytes() == np.concatenate([together[:6], together[-2:]]).tobytes()
    assert with_others.tobytes() == together[1::3].tobytes()


@pytest.mark.slow
def test_the_fixed_shape_batches_are_still_the_packaged_sentence_transformer(demo_split):
    from price_bench_classic.embeddings import _minilm

    texts = SHORT_TEXTS + [item.text for item in demo_split.test[:20]]
    model = _minilm()
    model.max_seq_length = MAX_SEQ_LENGTH
    reference = model.encode(texts, batch_size=8, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    np.testing.assert_allclose(_fresh(texts), reference, atol=1e-5)


@pytest.mark.slow
def test_a_minilm_model_gives_the_same_guesses_whatever_was_embedded_first(demo_split, make_predictor):
    # Every third item keeps only its first few words: texts of many lengths, which batches used to pad differently.
    def titles(items):
        return [replace(item, text=" ".join(item.text.split()[: 3 + i % 11])) if i % 3 == 0 else item for i, item in enumerate(items)]

    train, test = titles(demo_split.train[:400]), titles(demo_split.test[:100])
    prices = [item.price for item in train]

    def unrounded_guesses() -> tuple[bytes, bytes]:
        """The model's guesses before rounding to cents, and the embeddings of the test items it used."""
        model = make_predictor("minilm-ridge").build_model().fit(train, prices)
        guesses = np.asarray(model.predict(test), dtype=np.float64)
        return guesses.tobytes(), model.embed(test).tobytes()

    clear_memos()
    first = unrounded_guesses()
    clear_memos()
    # Other work in the same process embeds an overlapping set of texts first, in other batches: some alone.
    minilm_embed(SHORT_TEXTS + [i.text for i in train[::-3]], max_seq_length=MAX_SEQ_LENGTH)
    for item in test[:30]:
        minilm_embed([item.text], max_seq_length=MAX_SEQ_LENGTH)
    assert unrounded_guesses() == first
