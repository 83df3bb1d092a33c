"""Is run A really better than run B? A paired bootstrap on the items both scored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from price_bench.results.schema import ItemPrediction, RunRecord
from price_bench.results.store import ResultError, read_predictions


def compare_runs(
    path_a: Path, record_a: RunRecord, path_b: Path, record_b: RunRecord, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Paired bootstrap of two runs on the items they share (matched by id), for Error, RMSLE and Hits.

    Returns the two runs' ids and predictors, ``same_dataset`` (equal
    fingerprints), :class:`~price_bench.metrics.bootstrap.Comparison`'s fields
    for Error (``error_a``, ``error_b``, ``diff``, its CI, ``p_value``,
    ``significant``, ``better``), one test per headline metric (``metrics``)
    and how the runs' provenance differs (versions, hardware, threads, git
    state, code). Raises :class:`ResultError` when a run has no per-item file
    or the two share no item with the same true price.
    """
    import numpy as np

    from price_bench.harness.provenance import differences
    from price_bench.metrics.bootstrap import paired_compare
    from price_bench.metrics.ties import pair_tests

    rows_a = {row.id: row for row in read_predictions(path_a, record_a)}
    rows_b = {row.id: row for row in read_predictions(path_b, record_b)}
    if not rows_a or not rows_b:
        raise ResultError("both runs need per-item predictions (complete runs with a sidecar file)")
    common = [item_id for item_id in rows_a if item_id in rows_b]
    if not common:
        raise ResultError("the two runs share no item: they were scored on different datasets")
    for path, record, rows in ((path_a, record_a, rows_a), (path_b, record_b, rows_b)):
        _check_prices(Path(path).with_name(record.predictions_file or ""), [rows[i] for i in common])
    mismatched = [i for i in common if abs(rows_a[i].truth - rows_b[i].truth) > 1e-6]
    if mismatched:
        raise ResultError(f"item {mismatched[0]!r} has different true prices in the two runs: not the same items")
    truth = np.array([rows_a[i].truth for i in common])
    guess_a, guess_b = [rows_a[i].guess for i in common], [rows_b[i].guess for i in common]
    comparison = paired_compare(truth, guess_a, guess_b, n_resamples=n_resamples, seed=seed)
    tests = pair_tests(truth, guess_a, guess_b, n_resamples=n_resamples, seed=seed)
    provenance = differences(record_a.provenance, record_b.provenance)
    if record_a.git_commit != record_b.git_commit:
        provenance.insert(0, f"git commit: {(record_a.git_commit or '-')[:12]} vs {(record_b.git_commit or '-')[:12]}")
    if record_a.predictor.code_digest != record_b.predictor.code_digest:
        provenance.insert(0, f"predictor code digest: {record_a.predictor.code_digest or '-'} vs {record_b.predictor.code_digest or '-'}")
    for field_name in ("n_resamples", "ci_method", "seed"):
        va, vb = getattr(record_a, field_name), getattr(record_b, field_name)
        if va != vb:
            provenance.append(f"{field_name}: {va} vs {vb}")
    return {
        "a": {"run_id": record_a.run_id, "predictor": record_a.predictor.id, "n_items": len(rows_a)},
        "b": {"run_id": record_b.run_id, "predictor": record_b.predictor.id, "n_items": len(rows_b)},
        "same_dataset": record_a.dataset.fingerprint == record_b.dataset.fingerprint,
        **comparison.to_dict(),
        "metrics": [t.to_dict() for t in tests],
        "provenance_differences": provenance,
    }


def _check_prices(sidecar: Path, rows: list[ItemPrediction]) -> None:
    """ResultError when a row's truth or guess is not a price (finite, 0 to MAX_PRICE).

    The harness never writes one, so it is a hand-edited file; a paired
    bootstrap on it would print "$inf", NaN intervals and a p-value that
    mean nothing. (Pages and tables still render such records: docs/results.md.)
    """
    import math

    from price_bench.parsing import MAX_PRICE

    for row in rows:
        for field in ("truth", "guess"):
            value = getattr(row, field)
            if not (math.isfinite(value) and 0 <= value <= MAX_PRICE):
                raise ResultError(f"{sidecar}: item {row.id[:40]!r}: {field} is {value!r}, not a price; "
                                  "cannot compare runs on it (the harness never writes one)")
