"""Per-item predict time of the classic predictors at batch 1 and batch 100 (issue 19: the serving path).

Fits each predictor (default config, seed 0) on the first ``--train`` items of
the ``demo`` training split, then times ``Predictor.predict`` on single items
and on batches of 100 test items: the median over ``--repeats`` calls, in
milliseconds per item, twice and interleaved call by call: with the plugin's
predict path as shipped and with scikit-learn's input and parameter checks
left on (``price_bench_classic.base.trusted_inputs`` replaced by a no-op, as
before issue 19), so both see the same machine load. The SHA-256 of each
variant's answers is printed: they must be equal.

On a CPU shared with other jobs the absolute times are pessimistic; the
ratio of the two columns measured side by side is the figure.

Run: .venv/bin/python bench/classic_predict_latency.py [--only ID,ID] [--train 3000] [--repeats 50]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = ("fe-linear", "bow-linear", "tfidf-ridge", "tfidf-mlp", "tfidf-knn", "svd-hgb", "sparse-mlp")


def per_item_ms(predictor, batches, repeats: int) -> dict[str, tuple[float, str]]:
    """Median ms per item of ``predictor.predict`` and the digest of its answers, per variant (interleaved)."""
    from price_bench_classic import base

    shipped = base.trusted_inputs
    variants = {"shipped": shipped, "checks on": contextlib.nullcontext}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    answers: dict[str, list] = {name: [] for name in variants}
    try:
        for _ in range(repeats):
            for batch in batches:
                for name, context in variants.items():
                    base.trusted_inputs = context
                    started = time.perf_counter()
                    answer = [p.price for p in predictor.predict(batch)]
                    samples[name].append((time.perf_counter() - started) * 1000 / len(batch))
                    answers[name].append(answer)
    finally:
        base.trusted_inputs = shipped
    return {
        name: (statistics.median(samples[name]), hashlib.sha256(repr(answers[name]).encode()).hexdigest()[:12])
        for name in variants
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help=f"comma-separated predictor ids (default: {','.join(DEFAULT)})")
    parser.add_argument("--train", type=int, default=3000, help="training items (first N of demo's train split)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("PRICE_BENCH_HOME", tempfile.mkdtemp(prefix="classic-latency-"))

    from price_bench_classic import predictor_classes

    import price_bench

    classes = {cls.id: cls for cls in predictor_classes()}
    dataset = price_bench.load_dataset("demo")
    train, test = list(dataset.train)[: args.train], list(dataset.test)
    singles = [[item] for item in test[:20]]
    hundreds = [test[i : i + 100] for i in range(0, 500, 100)]
    print(f"demo: fitted on {len(train)} items; batch 1: 20 items x {args.repeats}; batch 100: 5 batches x {args.repeats}")
    print(f"{'predictor':14s} {'batch':>5s} {'checks on ms/item':>18s} {'shipped ms/item':>16s} {'ratio':>6s}  answers")
    for pid in [p for p in args.only.split(",") if p] or DEFAULT:
        cls = classes[pid]
        reason = cls.skip_reason(cls.Config())
        if reason:
            print(f"{pid:14s} skipped: {reason}")
            continue
        predictor = cls(cls.Config(), seed=0)
        with tempfile.TemporaryDirectory() as workdir:
            predictor.fit(train, [], Path(workdir))
        predictor.predict(singles[0])  # warm-up: lazy imports, first-call caches
        for size, batches, repeats in ((1, singles, args.repeats), (100, hundreds, max(1, args.repeats // 4))):
            got = per_item_ms(predictor, batches, repeats)
            (before, before_digest), (after, after_digest) = got["checks on"], got["shipped"]
            same = "identical" if before_digest == after_digest else "DIFFERENT"
            print(f"{pid:14s} {size:5d} {before:18.3f} {after:16.3f} {before / after:6.2f}  {same} ({after_digest})", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} (a shared machine: absolute times are pessimistic)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
