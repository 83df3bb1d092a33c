"""``Results``: the runs of one :func:`price_bench.evaluate` call (or of a results folder), as tables.

One row per run in :meth:`Results.metrics_df`, one row per scored item in
:meth:`Results.predictions_df`, a paired bootstrap in :meth:`Results.compare`,
and a summary table in a terminal (rich) and in Jupyter (HTML). Text that
came from predictors (reasons, ids) is escaped before rich or HTML sees it.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from price_bench.results.store import ResultError

if TYPE_CHECKING:
    import pandas as pd

    from price_bench.data.dataset import Dataset
    from price_bench.harness.runner import RunOutcome
    from price_bench.results.schema import RunRecord

#: Metrics of the summary table, in order.
SUMMARY_METRICS = ("error", "rmsle", "hits", "coverage")


class Results:
    """Runs of predictors on a dataset: what :func:`price_bench.evaluate` returns.

    Iterating gives :class:`~price_bench.harness.runner.RunOutcome` objects
    (``predictor_id``, ``status``, ``record``, ``path``, ``reason``);
    ``results["tfidf-ridge"]`` is that predictor's first run (also by run id
    or index).
    """

    def __init__(
        self, runs: list[RunOutcome], *, results_dir: Path | None = None, dataset: Dataset | None = None, show_titles: bool = True
    ) -> None:
        self.runs = list(runs)
        self.results_dir = results_dir
        self.dataset = dataset
        self._show_titles = show_titles

    @classmethod
    def load(cls, results_dir: str | Path | None = None, *, dataset: str | None = None, predictor: str | None = None) -> Results:
        """The records already in a results folder (default ``$PRICE_BENCH_RESULTS`` or ``./results``)."""
        from price_bench.harness.runner import RunOutcome
        from price_bench.results.store import default_results_dir, select_records

        folder = Path(results_dir) if results_dir is not None else default_results_dir()
        runs = [
            RunOutcome(record.predictor.id, record.status, record, path, record.reason)
            for path, record in select_records(folder, dataset=dataset, predictor=predictor)
        ]
        return cls(runs, results_dir=folder, show_titles=False)

    # -- access ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[RunOutcome]:
        return iter(self.runs)

    def __getitem__(self, key: int | str) -> RunOutcome:
        if isinstance(key, int):
            return self.runs[key]
        for run in self.runs:
            if run.predictor_id == key or (run.record is not None and run.record.run_id == key):
                return run
        matches = [r for r in self.runs if r.record is not None and r.record.run_id.startswith(key)]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(dict.fromkeys(r.predictor_id for r in self.runs)) or "none"
        raise KeyError(f"no run {key!r} in these results (predictors: {known})")

    @property
    def records(self) -> list[RunRecord]:
        """The result record of every run (complete, skipped and failed)."""
        return [run.record for run in self.runs if run.record is not None]

    @property
    def failed(self) -> list[RunOutcome]:
        """Runs that failed (their ``reason`` says why); skipped runs are not failures."""
        return [run for run in self.runs if run.status == "failed"]

    # -- tables ------------------------------------------------------------------------------

    def metrics_df(self) -> pd.DataFrame:
        """One row per run: identity, status, every metric with its 95% CI (``error_ci_low``...), cost and timing."""
        import pandas as pd

        rows = [self._metrics_row(run) for run in self.runs]
        return pd.DataFrame(rows)

    def _metrics_row(self, run: RunOutcome) -> dict[str, Any]:
        record = run.record
        identity = {"predictor": run.predictor_id, "status": run.status, "reason": run.reason}
        if record is None:
            return identity
        return {
            **identity,
            "run_id": record.run_id,
            "seed": record.seed,
            "dataset": record.dataset.name,
            "fingerprint": record.dataset.fingerprint,
            "config_hash": record.predictor.config_hash,
            "plugin": f"{record.predictor.plugin_distribution} {record.predictor.plugin_version}",
            "n_items": record.n_items,
            "limit": record.limit,
            **_metric_columns(record),
            "parse_failures": record.parse_failures,
            "item_errors": record.item_errors,
            "cost_usd": record.usage.cost_usd,
            "new_items": record.usage.new_items,
            "cached_items": record.usage.cached_items,
            "fit_seconds": record.timing.fit_seconds,
            "predict_seconds_per_item": record.timing.predict_seconds_per_item,
            "record": str(run.path) if run.path else None,
        }

    def predictions_df(self, run: int | str | None = None) -> pd.DataFrame:
        """One row per scored item of every complete run (or of ``run``).

        Columns: predictor, run_id, seed, id, truth, guess (the scored price),
        error (``|guess - truth|``), parsed (False: scored with the fallback),
        category, item_error, and title (from the dataset, when these results
        were made with ``raw_output=True`` and the dataset is at hand).
        """
        import pandas as pd

        from price_bench.results.store import read_predictions

        chosen = [self[run]] if run is not None else self.runs
        titles = {item.id: item.title for item in self.dataset.test} if self._show_titles and self.dataset is not None else None
        rows = []
        for outcome in chosen:
            record = outcome.record
            if record is None or record.status != "complete" or outcome.path is None:
                continue
            for row in read_predictions(outcome.path, record):
                item = {
                    "predictor": record.predictor.id,
                    "run_id": record.run_id,
                    "seed": record.seed,
                    "id": row.id,
                    "truth": row.truth,
                    "guess": row.guess,
                    "error": abs(row.guess - row.truth),
                    "parsed": row.parsed is not None,
                    "category": row.category,
                    "item_error": row.error,
                }
                if titles is not None:
                    item["title"] = titles.get(row.id)
                rows.append(item)
        columns = ["predictor", "run_id", "seed", "id", "truth", "guess", "error", "parsed", "category", "item_error"]
        return pd.DataFrame(rows, columns=columns + (["title"] if titles is not None else []))

    def compare(self, a: int | str, b: int | str, *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
        """Is run ``a``'s Error really different from run ``b``'s? Paired bootstrap on the items both scored.

        ``a`` and ``b`` are predictor ids, run ids or indexes. Returns what
        ``price-bench compare --json`` prints: ``error_a``, ``error_b``,
        ``diff`` (A - B) with ``ci_low``/``ci_high``, ``p_value``,
        ``significant`` and ``better`` ("A", "B" or None).
        """
        from price_bench.results.compare import compare_runs

        path_a, record_a = self._complete(a)
        path_b, record_b = self._complete(b)
        return compare_runs(path_a, record_a, path_b, record_b, n_resamples=n_resamples, seed=seed)

    def _complete(self, key: int | str) -> tuple[Path, RunRecord]:
        run = self[key]
        if run.record is None or run.path is None or run.record.status != "complete":
            raise ResultError(f"run {key!r} is {run.status}, not complete: nothing to compare")
        return run.path, run.record

    # -- display -----------------------------------------------------------------------------

    def _summary_rows(self) -> list[list[str]]:
        rows = []
        for run in self.runs:
            record = run.record
            seed = str(record.seed) if record is not None else "-"
            if record is None or record.status != "complete":
                rows.append([run.predictor_id, seed, run.status, "-", *("-" for _ in SUMMARY_METRICS), "-", run.reason or ""])
                continue
            rows.append(
                [
                    run.predictor_id,
                    seed,
                    run.status,
                    f"{record.n_items:,}" + (" (limit)" if record.limit else ""),
                    *(_format_metric(name, record.metrics.get(name), ci=name == "error") for name in SUMMARY_METRICS),
                    f"{record.usage.new_items}/{record.usage.cached_items}",
                    run.reason or "",
                ]
            )
        return rows

    _HEADERS = ("predictor", "seed", "status", "n", "Error (95% CI)", "RMSLE", "Hits", "coverage", "new/cached", "reason")

    def _title(self) -> str:
        names = sorted({r.dataset.name for r in self.records})
        return f"{len(self.runs)} run{'s' if len(self.runs) != 1 else ''}" + (f" on {', '.join(names)}" if names else "")

    def __rich__(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self._title())
        for header in self._HEADERS:
            table.add_column(header)
        styles = {"complete": "green", "up-to-date": "green", "skipped": "yellow"}
        for row in self._summary_rows():
            cells = [Text(cell) for cell in row]  # Text, not markup: predictor text is never interpreted
            cells[2].stylize(styles.get(row[2], "red"))
            table.add_row(*cells)
        return table

    def __repr__(self) -> str:
        import io

        from rich.console import Console

        buffer = io.StringIO()
        Console(file=buffer, width=160, color_system=None, force_terminal=False).print(self.__rich__())
        return buffer.getvalue().rstrip()

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self._HEADERS)
        body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in self._summary_rows())
        return f"<table><caption>{esc(self._title())}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metric_columns(record: RunRecord) -> dict[str, float | None]:
    """``error``, ``error_ci_low``, ``error_ci_high``, ``rmsle``...: every metric of a record and its CI."""
    columns: dict[str, float | None] = {}
    for name, value in record.metrics.items():
        columns[name] = value.value
        if value.ci_low is not None or value.ci_high is not None:
            columns[f"{name}_ci_low"], columns[f"{name}_ci_high"] = value.ci_low, value.ci_high
    return columns


def _format_metric(name: str, value: Any, *, ci: bool = False) -> str:
    from price_bench.metrics.point import METRICS

    if value is None or value.value is None:
        return "-"
    unit = METRICS[name].unit if name in METRICS else ""
    text = _fmt(value.value, unit)
    if ci and value.ci_low is not None and value.ci_high is not None:
        text += f" ({_fmt(value.ci_low, unit)}–{_fmt(value.ci_high, unit)})"
    return text


def _fmt(number: float, unit: str) -> str:
    if unit == "$":
        return f"${number:,.2f}"
    if unit == "%":
        return f"{number:.1f}%"
    return f"{number:.3f}"
