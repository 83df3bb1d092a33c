"""Which registered predictors can run here, and why not: what ``price-bench list`` shows."""

from __future__ import annotations

from typing import Any


def predictor_statuses() -> list[dict[str, Any]]:
    """Every registered predictor with its status (``ready``, ``skipped: reason`` or ``error: ...``).

    Requirement checks run in cheap mode: no heavy import happens here.
    """
    from price_bench.harness.errors import one_line
    from price_bench.plugins.manager import get_registry
    from price_bench.predictors.contract import cheap_checks

    rows = []
    with cheap_checks():
        for spec in get_registry().specs():
            row: dict[str, Any] = {"id": spec.id, "origin": spec.origin, "plugin_version": spec.plugin_version, "description": spec.description}
            try:
                cls = spec.load()
                row["description"] = cls.description or spec.description
                reason = cls.skip_reason(cls.Config())
                row["status"] = "ready" if reason is None else "skipped"
                row["reason"] = reason
            except Exception as exc:
                row["status"], row["reason"] = "error", one_line(exc)
            rows.append(row)
    return rows
