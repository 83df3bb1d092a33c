"""Judging a run's outcomes: whether ``price-bench run`` (or a script) should call the run clean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from price_bench.harness.runner import RunOutcome


def run_problems(outcomes: Sequence[RunOutcome], *, max_error_share: float = 0.0, skipped_ok: bool = False) -> list[str]:
    """One line per reason for a run to exit non-zero (empty when the run is clean).

    Failed predictors; complete runs whose share of errored items is above
    ``max_error_share``; skipped predictors unless ``skipped_ok`` (``--all``).
    """
    problems = []
    failed = [o.predictor_id for o in outcomes if o.status == "failed"]
    if failed:
        problems.append(f"{len(failed)} predictor(s) failed: {', '.join(failed)}")
    for o in outcomes:
        r = o.record
        if o.status == "complete" and r is not None and r.n_items and r.item_errors / r.n_items > max_error_share:
            problems.append(
                f"{o.predictor_id}: {r.item_errors} of {r.n_items} items errored "
                f"({r.item_errors / r.n_items:.1%} > --max-error-share {max_error_share:.1%}; first: {o.first_error}); "
                "rerun to retry them"
            )
    skipped = [o for o in outcomes if o.status == "skipped"]
    if skipped and not skipped_ok:
        problems.append("requested predictor(s) skipped: " + "; ".join(f"{o.predictor_id} ({o.reason})" for o in skipped))
    return problems
