"""An honest check against over-tuning: every classical predictor on the test split AND by 5-fold CV on train.

Builds ``amazon-course`` from ``../shared/data/amazon-course/items.jsonl``
with the harness's own recipe and split, in a fresh ``PRICE_BENCH_HOME``.
Every predictor is fitted exactly as the harness fits it (train +
validation items, seed 0, default config), so its test figures equal its
leaderboard row; then, separately, it is scored by K-fold cross-validation
on those training items (seeded ``KFold``, shuffled), which never looks at
the test split. Per predictor it prints, for the test split and for CV
(mean ± standard deviation over folds):

* Error × constant-mean (each fold against constant-mean on that fold),
* RMSLE and Hits,
* fit seconds (the full fit), predict milliseconds per test item, and
  the peak RSS sampled while the predictor fitted and predicted.

The ensemble is not refitted from scratch: its fit is "K out-of-fold fits
plus one full fit of every base, then a non-negative linear blender on log
price and, with ``dollar_scale``, one dollar factor" (the ensemble's own
``Blender``; ``-o ensemble.dollar_scale=false`` scores it without), on the same seeded folds as the CV here, and those are exactly the
fits this benchmark has just made for its bases. Its test row is computed
from them (:func:`stacked_test`: the blender fitted on the bases' out-of-fold
predictions, applied to their full fits' test predictions), and its fit time
is the sum of those fits' measured times. Its CV row stacks each base's
out-of-fold predictions with the blender fitted on the other folds' rows
only; the base models behind those rows did see the held fold, a slight
optimism that the row says. ``--nested`` refits the real ensemble on every
fold instead (K times the ensemble's fit).

Every predictor's out-of-fold and test predictions are saved in the home
folder as soon as they exist (one ``.npz`` per predictor and config), so a
run stopped on a busy machine resumes with ``--home`` where it stopped.
``-o ID.KEY=VALUE`` scores a variant (chosen by the CV column, never the test one).

A test-vs-CV gap over 0.02 (× constant-mean) is flagged: it is a sign that a
choice was tuned to the test split (or that the split is unlucky). Targets:
best predictor ≤ 0.50 × constant-mean on test, sparse-mlp ≤ 0.55 ×, the
whole suite (fit + predict on the test split, every predictor) < 15 min,
peak RSS < 4 GB.

Run: .venv/bin/python bench/classic_cv.py [--items PATH] [--only ID,ID] [--folds 5] [--nested] [--ensemble-bases ID,ID]
     [--home DIR] [-o ID.KEY=VALUE ...]

On a shared CPU set OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads otherwise spin while they wait.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classic_suite import DEFAULT_ITEMS, SUITE, RssSampler  # noqa: E402

GAP_FLAG = 0.02
TARGET_BEST, TARGET_SPARSE_MLP = 0.50, 0.55


@dataclass
class Scores:
    """Error / constant-mean ratio, RMSLE and Hits of one set of predictions."""

    ratio: float
    rmsle: float
    hits: float

    @classmethod
    def of(cls, truth: np.ndarray, guess: np.ndarray, train_mean: float) -> Scores:
        from price_bench.metrics.point import error, hits, rmsle

        return cls(error(truth, guess) / error(truth, np.full_like(truth, train_mean)), rmsle(truth, guess), hits(truth, guess))


@dataclass
class Row:
    predictor: str
    test: Scores | None = None
    error_usd: float = float("nan")
    folds: list[Scores] = field(default_factory=list)
    fit_s: float = float("nan")
    predict_ms: float = float("nan")
    peak_rss: int = 0
    cv_note: str = ""
    skipped: str | None = None

    def cv(self, name: str) -> tuple[float, float]:
        values = np.array([getattr(f, name) for f in self.folds])
        return (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0) if len(values) else (np.nan, np.nan)


def fit_and_score(cls, items, test, seed: int, config=None):
    """Fit a fresh model (default config unless given) on ``items`` as the harness does; predict ``test``; time both."""
    model = cls(config or cls.Config(), seed=seed).build_model()
    started = time.perf_counter()
    model.fit(items, [item.price for item in items])
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    guess = model.predict(test)
    return model, guess, fit_s, (time.perf_counter() - started) / max(1, len(test))


def out_of_fold(cls, items, folds, seed: int, config=None) -> tuple[np.ndarray, float]:
    """Out-of-fold predictions of a model (default config unless given) over ``items``, and the fold fits' seconds."""
    oof = np.zeros(len(items))
    prices = np.array([item.price for item in items])
    seconds = 0.0
    for fit_rows, held_rows in folds:
        started = time.perf_counter()
        model = cls(config or cls.Config(), seed=seed).build_model().fit([items[i] for i in fit_rows], prices[fit_rows])
        seconds += time.perf_counter() - started
        oof[held_rows] = model.predict([items[i] for i in held_rows])
    return oof, seconds


def nested_cv(cls, config, items, folds, seed: int) -> list[Scores]:
    """The real predictor refitted on every fold (for the ensemble: its own inner CV inside each fold)."""
    oof, _ = out_of_fold(cls, items, folds, seed, config)
    prices = np.array([item.price for item in items])
    return [Scores.of(prices[held], oof[held], float(prices[fit].mean())) for fit, held in folds]


def stacked_test(oof: dict[str, np.ndarray], test_guess: dict[str, np.ndarray], bases: list[str], prices: np.ndarray,
                 *, dollar_scale: bool = True):
    """The ensemble's test predictions and weights from its bases' out-of-fold and test predictions.

    Exactly what the ensemble's own fit computes on these folds (its blender,
    :class:`price_bench_classic.ensemble.Blender`, is fitted on the bases'
    out-of-fold predictions; it predicts from the full fits' test predictions,
    then clips as every classic model does), so the row needs no refit and
    survives a stopped run (the bases' predictions are saved as they finish).
    """
    from price_bench_classic.ensemble import Blender

    blender = Blender(dollar_scale=dollar_scale).fit(np.column_stack([oof[b] for b in bases]), prices)
    guess = _as_model_answers(blender.predict(np.column_stack([test_guess[b] for b in bases])), prices)
    return guess, {b: round(float(w), 4) for b, w in zip(bases, blender.linear.coef_)}


def stacked_cv(oof: dict[str, np.ndarray], bases: list[str], prices: np.ndarray, folds, *, dollar_scale: bool = True) -> list[Scores]:
    """CV of the ensemble's blender on the bases' out-of-fold predictions (see the module docstring)."""
    from price_bench_classic.ensemble import Blender

    guesses = np.column_stack([oof[b] for b in bases])
    scores = []
    for fit_rows, held_rows in folds:
        blender = Blender(dollar_scale=dollar_scale).fit(guesses[fit_rows], prices[fit_rows])
        guess = _as_model_answers(blender.predict(guesses[held_rows]), prices[fit_rows])
        scores.append(Scores.of(prices[held_rows], guess, float(prices[fit_rows].mean())))
    return scores


def _as_model_answers(blend: np.ndarray, train_prices: np.ndarray) -> np.ndarray:
    """What the ensemble model answers for a blend's prices: through its log scale, clipped to the train range."""
    raw = np.log1p(np.maximum(blend, 0.0))
    return np.clip(np.expm1(np.clip(raw, -50, 50)), train_prices.min(), train_prices.max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=Path, default=DEFAULT_ITEMS, help="curated items JSONL (default: %(default)s)")
    parser.add_argument("--only", default="", help="comma-separated subset of the classic predictor ids")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nested", action="store_true", help="refit the real ensemble on every CV fold")
    parser.add_argument(
        "--ensemble-bases", default="", help="comma-separated bases for the ensemble row (default: the ensemble's own default)"
    )
    parser.add_argument(
        "--home", type=Path, default=None,
        help="PRICE_BENCH_HOME to use (default: a fresh temporary one); a rerun with the same one resumes",
    )
    parser.add_argument(
        "-o", "--override", action="append", default=[], metavar="ID.KEY=VALUE",
        help="a config field of one predictor (repeatable), e.g. -o sparse-mlp.seeds=4: screen variants by CV",
    )
    args = parser.parse_args()
    if not args.items.is_file():
        print(f"skipped: {args.items} not found (the shared data folder sits beside the repository on the project's machines)")
        return 0

    home = args.home or Path(tempfile.mkdtemp(prefix="classic-cv-"))
    os.environ["PRICE_BENCH_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    from price_bench_classic import predictor_classes
    from rich.console import Console
    from rich.markup import escape
    from sklearn.model_selection import KFold

    from price_bench.data.catalog import build_dataset

    console = Console(width=170)
    classes = {cls.id: cls for cls in predictor_classes()}
    wanted = [p for p in args.only.split(",") if p] or list(dict.fromkeys([*SUITE, "sparse-mlp", "ensemble"]))
    wanted = [p for p in wanted if p != "ensemble"] + (["ensemble"] if "ensemble" in wanted else [])  # the ensemble reuses the bases' rows
    overrides: dict[str, dict[str, str]] = {}
    for override in args.override:
        target, _, value = override.partition("=")
        pid, _, key = target.partition(".")
        if not (pid and key and _):
            print(f"--override {override!r}: expected ID.KEY=VALUE", file=sys.stderr)
            return 2
        overrides.setdefault(pid, {})[key] = value
    unknown = [p for p in wanted if p not in classes]
    if unknown:
        print(f"unknown predictor {unknown[0]!r}; choose from {', '.join(sorted(classes))}", file=sys.stderr)
        return 2
    dataset = build_dataset("amazon-course", str(args.items))
    items = list(dataset.train) + list(dataset.validation)
    test = list(dataset.test)
    prices = np.array([item.price for item in items])
    truth = np.array([item.price for item in test])
    folds = list(KFold(n_splits=args.folds, shuffle=True, random_state=args.seed).split(items))
    console.print(
        f"dataset {dataset.name}: {len(items)} training items (train + validation), {len(test)} test items "
        f"({dataset.fingerprint[:19]}…); {args.folds}-fold CV on the training items; home {home}\n"
        f"x const = Error / Error of the mean price of the same training items (on test: "
        f"${float(np.mean(np.abs(truth - prices.mean()))):.2f}; the leaderboard's constant-mean uses the train split only)"
    )

    sampler = RssSampler().start()
    suite_started = time.perf_counter()
    suite_seconds = 0.0
    rows: list[Row] = []
    oof: dict[str, np.ndarray] = {}
    test_guess: dict[str, np.ndarray] = {}
    fold_seconds: dict[str, float] = {}
    from price_bench.metrics.point import error

    for pid in wanted:
        cls = classes[pid]
        row = Row(pid)
        rows.append(row)
        config = cls.make_config(overrides.get(pid, {}))
        reason = cls.skip_reason(config)
        if reason:
            row.skipped = reason
            console.print(f"  {pid}: skipped: {escape(reason)}")
            continue
        sampler.reset()
        cv_started = time.perf_counter()
        if pid == "ensemble":
            # Its inner folds are this benchmark's folds (the default, 5, is the ensemble's own default).
            config = cls.make_config(
                {"folds": args.folds, **({"bases": args.ensemble_bases} if args.ensemble_bases else {}), **overrides.get(pid, {})}
            )
            bases = list(config.bases)
            missing = [b for b in bases if b not in oof]
            if missing:
                row.skipped = f"bases without a row in this run: {', '.join(missing)} (list them in --only)"
                console.print(f"  {pid}: skipped: {escape(row.skipped)}")
                continue
            guess, weights = stacked_test(oof, test_guess, bases, prices, dollar_scale=config.dollar_scale)
            rows_by_id = {r.predictor: r for r in rows}
            row.fit_s = sum(fold_seconds[b] + rows_by_id[b].fit_s for b in bases)
            per_item = sum(rows_by_id[b].predict_ms for b in bases) / 1000
            if args.nested:
                row.folds = nested_cv(cls, config, items, folds, args.seed)
            else:
                row.folds = stacked_cv(oof, bases, prices, folds, dollar_scale=config.dollar_scale)
                row.cv_note = "stacked on the bases' CV out-of-fold predictions"
            console.print(f"    ensemble weights {weights}")
        else:
            saved = _load_rows(home, pid, config, len(items), len(test))
            if saved is not None:
                oof[pid], guess, row.fit_s, per_item, fold_seconds[pid] = saved
                console.print(f"  {pid}: resumed from {home} (fit seconds as measured then)")
            else:
                model, guess, row.fit_s, per_item = fit_and_score(cls, items, test, args.seed, config)
                del model
                oof[pid], fold_seconds[pid] = out_of_fold(cls, items, folds, args.seed, config)
                _save_rows(home, pid, config, oof[pid], guess, row.fit_s, per_item, fold_seconds[pid])
            test_guess[pid] = guess
            row.folds = [Scores.of(prices[held], oof[pid][held], float(prices[fit].mean())) for fit, held in folds]
        row.predict_ms = 1000 * per_item
        suite_seconds += row.fit_s + per_item * len(test)
        row.test = Scores.of(truth, guess, float(prices.mean()))
        row.error_usd = error(truth, guess)
        row.peak_rss = sampler.peak()
        console.print(
            f"  {pid}: test {row.test.ratio:.3f}, CV {row.cv('ratio')[0]:.3f} ± {row.cv('ratio')[1]:.3f} "
            f"(fit {row.fit_s:.1f}s, with CV {time.perf_counter() - cv_started:.0f}s)"
        )
    sampler.stop()
    np.savez_compressed(home / "classic_cv_oof.npz", prices=prices, **{k.replace("-", "_"): v for k, v in oof.items()})
    console.print(f"out-of-fold predictions saved in {home / 'classic_cv_oof.npz'}")
    total_wall = time.perf_counter() - suite_started
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    print_table(console, rows, dataset.name, len(test), args.folds)
    return print_checks(console, rows, suite_seconds, total_wall, peak_rss)


def _rows_file(home: Path, pid: str, config) -> Path:
    digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:12]
    return home / f"classic_cv_{pid}_{digest}.npz"


def _save_rows(home: Path, pid: str, config, oof, guess, fit_s: float, per_item: float, fold_s: float) -> None:
    """Keep one predictor's out-of-fold and test predictions as soon as they exist (a rerun with --home resumes)."""
    np.savez_compressed(
        _rows_file(home, pid, config), oof=oof, test_guess=np.asarray(guess), fit_s=fit_s, per_item=per_item, fold_s=fold_s
    )


def _load_rows(home: Path, pid: str, config, n_items: int, n_test: int):
    """What :func:`_save_rows` kept for this predictor and config, or None (this benchmark wrote the file: no pickles)."""
    path = _rows_file(home, pid, config)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as saved:
        if saved["oof"].shape != (n_items,) or saved["test_guess"].shape != (n_test,):
            return None
        return saved["oof"], saved["test_guess"], float(saved["fit_s"]), float(saved["per_item"]), float(saved["fold_s"])


def print_table(console, rows: list[Row], dataset: str, n_test: int, n_folds: int) -> None:
    from rich.table import Table

    table = Table(title=f"price-bench-classic on {dataset}: test split ({n_test} items) and {n_folds}-fold CV on train")
    for name in (
        "predictor", "test x const", "CV x const (±sd)", "gap", "test RMSLE", "CV RMSLE", "test Hits", "CV Hits",
        "Error $", "fit s", "predict ms/item", "peak RSS MB",
    ):
        table.add_column(name, justify="left" if name == "predictor" else "right")
    for row in rows:
        if row.test is None:
            table.add_row(row.predictor, "skipped", row.skipped or "", *[""] * 9)
            continue
        cv_mean, cv_sd = row.cv("ratio")
        gap = row.test.ratio - cv_mean
        table.add_row(
            row.predictor + (" *" if row.cv_note else ""),
            f"{row.test.ratio:.3f}",
            f"{cv_mean:.3f} ± {cv_sd:.3f}",
            f"{gap:+.3f}" + (" !" if abs(gap) > GAP_FLAG else ""),
            f"{row.test.rmsle:.3f}",
            "{:.3f} ± {:.3f}".format(*row.cv("rmsle")),
            f"{row.test.hits:.1f}%",
            "{:.1f}% ± {:.1f}".format(*row.cv("hits")),
            f"{row.error_usd:.2f}",
            f"{row.fit_s:.1f}",
            f"{row.predict_ms:.2f}",
            f"{row.peak_rss / 2**20:.0f}",
        )
    console.print(table)
    notes = {row.cv_note for row in rows if row.cv_note}
    for note in notes:
        console.print(f"* CV {note} (blender fitted on the other folds' rows, whose base predictions came from models that saw the held fold: slightly optimistic; --nested refits)")
    console.print(f"! test-vs-CV gap over {GAP_FLAG} x constant-mean: a sign of tuning to the test split, or an unlucky split")


def print_checks(console, rows: list[Row], suite_seconds: float, total_wall: float, peak_rss: int) -> int:
    scored = {row.predictor: row for row in rows if row.test is not None}
    checks = []
    if scored:
        best = min(scored.values(), key=lambda r: r.test.ratio)
        checks.append((f"best ({best.predictor}) <= {TARGET_BEST} x constant-mean on test", best.test.ratio <= TARGET_BEST,
                       f"{best.test.ratio:.3f} (CV {best.cv('ratio')[0]:.3f})"))
    if "sparse-mlp" in scored:
        r = scored["sparse-mlp"]
        checks.append((f"sparse-mlp <= {TARGET_SPARSE_MLP} x constant-mean on test", r.test.ratio <= TARGET_SPARSE_MLP,
                       f"{r.test.ratio:.3f} (CV {r.cv('ratio')[0]:.3f})"))
    checks.append(("whole suite (fit + predict on the test split) < 15 min", suite_seconds < 900, f"{suite_seconds:.0f}s"))
    checks.append(("peak RSS < 4 GB", peak_rss < 4 * 2**30, f"{peak_rss / 2**30:.2f} GB"))
    for label, ok, value in checks:
        console.print(f"{'PASS' if ok else 'FAIL'}  {label}: {value}")
    gaps = [r.predictor for r in scored.values() if abs(r.test.ratio - r.cv("ratio")[0]) > GAP_FLAG]
    console.print(f"test-vs-CV gap over {GAP_FLAG}: {', '.join(gaps) if gaps else 'none'}")
    console.print(
        f"whole bench (suite plus CV) {total_wall:.0f}s wall; CPU: {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end (the machine is shared with other engineers' jobs: wall-clock times are pessimistic)"
    )
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
