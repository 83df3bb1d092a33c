"""Which of sparse-mlp's input blocks pay off on held-out data: K-fold CV on the amazon-course training items.

For each fold the full :class:`~price_bench_classic.sparse_features.SparseInputEncoder`
is fitted on the fold's training rows; then a Ridge on log price (alpha 1) is
fitted on all blocks and on all blocks but one (brand crosses, category
tokens, quantity tokens, quantity numbers, character n-grams, title words),
and on the word TF-IDF alone. It prints each variant's Error x constant-mean
(mean ± sd over folds) and its paired difference to "all blocks". Only the
training items (train + validation) are read; the test split is never used.

A linear model is the cheap probe; an MLP can use blocks a linear model
cannot, so a block that does not pay here is a candidate to switch off in
sparse-mlp, to be confirmed with ``-o sparse-mlp.<block>=false`` in CV.

Run: .venv/bin/python bench/sparse_input_ablation.py [--items PATH] [--folds 5] [--max-folds N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classic_suite import DEFAULT_ITEMS  # noqa: E402

VARIANTS = ("all", "-brand_crosses", "-category", "-quantity_tokens", "-quantity_numbers", "-char", "-title", "word only")


def column_kinds(encoder, width: int) -> np.ndarray:
    """The block of every column of the encoder's matrix."""
    words, titles, chars = (len(v.vocabulary_) if v is not None else 0 for v in (encoder.word, encoder.title, encoder.char))
    side = sorted(encoder.side.vocabulary_.items(), key=lambda kv: kv[1]) if encoder.side is not None else []

    def side_kind(token: str) -> str:
        if token.startswith("q_"):
            return "quantity_tokens"
        if token.startswith("cat=") and "|brand=" not in token:
            return "category"
        return "brand_crosses"  # brand=..., brand=...|token, cat=...|brand=...

    kinds = ["word"] * words + ["title"] * titles + ["char"] * chars + [side_kind(t) for t, _ in side]
    return np.array(kinds + ["quantity_numbers"] * (width - len(kinds)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=Path, default=DEFAULT_ITEMS)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-folds", type=int, default=0, help="stop after this many folds (0: all)")
    args = parser.parse_args()
    if not args.items.is_file():
        print(f"skipped: {args.items} not found")
        return 0
    os.environ["PRICE_BENCH_HOME"] = tempfile.mkdtemp(prefix="sparse-ablation-")

    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold

    from price_bench.data.catalog import build_dataset
    from price_bench_classic.sparse_features import SparseInputConfig, SparseInputEncoder

    dataset = build_dataset("amazon-course", str(args.items))
    items = list(dataset.train) + list(dataset.validation)
    y = np.array([item.price for item in items])
    folds = list(KFold(n_splits=args.folds, shuffle=True, random_state=0).split(items))[: args.max_folds or None]
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for k, (fit, held) in enumerate(folds):
        started = time.perf_counter()
        encoder = SparseInputEncoder(SparseInputConfig())
        x_fit = encoder.fit_transform([items[i] for i in fit])
        x_held = encoder.transform([items[i] for i in held])
        kinds = column_kinds(encoder, x_fit.shape[1])
        baseline = np.mean(np.abs(y[held] - y[fit].mean()))
        for variant in VARIANTS:
            keep = np.ones(len(kinds), bool) if variant == "all" else kinds == "word" if variant == "word only" else kinds != variant[1:]
            ridge = Ridge(alpha=1.0).fit(x_fit[:, keep], np.log1p(y[fit]))
            guess = np.clip(np.expm1(ridge.predict(x_held[:, keep])), y[fit].min(), y[fit].max())
            results[variant].append(float(np.mean(np.abs(guess - y[held])) / baseline))
        print(f"fold {k + 1}/{len(folds)} ({time.perf_counter() - started:.0f}s): "
              + ", ".join(f"{v} {r[-1]:.4f}" for v, r in results.items()), flush=True)
    print(f"\nRidge on log price over sparse-mlp's input blocks, {len(folds)} of {args.folds} folds (Error x constant-mean):")
    for variant, values in results.items():
        diff = np.array(values) - np.array(results["all"])
        spread = f" ± {np.std(values, ddof=1):.4f}" if len(values) > 1 else ""
        paired = f"{diff.mean():+.4f}" + (f" ± {diff.std(ddof=1):.4f}" if len(values) > 1 else "")
        print(f"  {variant:18s} {np.mean(values):.4f}{spread}   vs all blocks {paired}")
    print(f"load average {os.getloadavg()[0]:.1f} (a shared machine: the seconds are pessimistic)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
