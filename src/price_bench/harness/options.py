"""What a run takes besides the predictor ids (:class:`RunOptions`), and its checks before any work.

Every check raises :class:`~price_bench.harness.errors.HarnessError` with
one line, before anything is fitted or predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from price_bench.data.dataset import Dataset, DatasetError
from price_bench.harness.errors import HarnessError
from price_bench.predictors.registry import PredictorRegistry, UnknownPredictorError

Overwrite = Literal["never", "always", "missing"]
OVERWRITE_MODES: tuple[str, ...] = ("never", "always", "missing")
#: ``--seed`` is stored in SQLite and JSON as a signed 64-bit integer.
SEED_MAX = 2**63 - 1
#: ``--bootstrap``: 0 turns the confidence intervals off; otherwise at least this many
#: resamples (with fewer, the 2.5% and 97.5% percentiles are the extreme resamples
#: themselves). The default is 1000; 10-100 are for quick checks and tests only.
MIN_RESAMPLES = 10
#: ``--ci`` values and the names records give them.
CI_METHOD_NAMES = {"percentile": "percentile bootstrap", "bca": "BCa bootstrap"}


@dataclass
class RunOptions:
    """Everything ``price-bench run`` takes besides the predictor ids.

    ``overwrite``: ``missing`` (default) reuses cached predictions and computes
    only the missing ones; ``always`` ignores the prediction cache (recomputes
    and overwrites it); ``never`` skips a predictor that already has a
    complete record for the same config, versions, seed, dataset and limit.
    ``refit`` ignores a previous fit in the work folder.
    """

    dataset: str = "demo"
    limit: int | None = None
    workers: int = 1
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    overwrite: Overwrite = "missing"
    refit: bool = False
    results_dir: Path | None = None
    seed: int = 0
    n_resamples: int = 1000
    progress: bool | None = None
    home: Path | None = None
    cache_path: Path | None = None
    #: False: the sidecar keeps parsed prices but no raw model text, which can
    #: quote the product (for data that must not be redistributed).
    raw_output: bool = True
    #: Run matrix: per predictor id, the override sets to run it with (one row each),
    #: applied on top of ``overrides``; see :func:`price_bench.harness.overrides.parse_variants`.
    variants: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    #: Reuse answers and fits made by an earlier version of the predictor's code
    #: (see :mod:`price_bench.harness.codedigest`).
    keep_cache_on_code_change: bool = False
    #: "percentile" or "bca": how the bootstrap CIs are computed.
    ci_method: str = "percentile"
    #: ``local`` (threads here) or ``ray`` (Ray Data actors; see price_bench.engines.ray_predict).
    engine: str = "local"
    ray_address: str | None = None


def check_options(options: RunOptions) -> None:
    """Reject bad run options before any work (HarnessError, one line)."""
    if options.overwrite not in OVERWRITE_MODES:
        raise HarnessError(f"--overwrite must be one of {', '.join(OVERWRITE_MODES)}, not {options.overwrite!r}")
    if options.limit is not None and options.limit < 1:
        raise HarnessError("--limit must be a positive number of items")
    if options.workers < 1:
        raise HarnessError("--workers must be at least 1")
    check_seed(options.seed)
    check_resamples(options.n_resamples)


def check_seed(seed: int) -> int:
    """``seed`` when it is an integer in 0..2**63-1 (it is stored as a signed 64-bit integer)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise HarnessError(f"--seed must be an integer from 0 to {SEED_MAX}, not {seed!r}")
    return seed


def check_resamples(n_resamples: int) -> int:
    """``n_resamples`` when it is 0 (no confidence intervals) or at least :data:`MIN_RESAMPLES`."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or not (
        n_resamples == 0 or n_resamples >= MIN_RESAMPLES
    ):
        raise HarnessError(f"--bootstrap must be 0 (no confidence intervals) or at least {MIN_RESAMPLES}, not {n_resamples!r}")
    return n_resamples


def check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` and prove a file can be written there (HarnessError, one line, otherwise)."""
    from price_bench.data.folders import ensure_writable

    try:
        ensure_writable(folder, what)
    except DatasetError as exc:
        raise HarnessError(str(exc)) from None


def resolve_ids(registry: PredictorRegistry, ids: Sequence[str], all_: bool = False, exclude: Sequence[str] = ()) -> list[str]:
    """The predictor ids to run (``--all``: every registered one but ``exclude``), unknown ids rejected."""
    if exclude and not all_:
        raise HarnessError("--exclude goes with --all")
    unknown = [pid for pid in exclude if pid not in registry]
    if unknown:
        raise HarnessError(f"--exclude {unknown[0]}: unknown predictor (see `price-bench list`)")
    if all_:
        return [pid for pid in registry.ids() if pid not in set(exclude)]
    if not ids:
        raise HarnessError("name at least one predictor id, or pass --all (see `price-bench list`)")
    for pid in ids:
        try:
            registry.get(pid)
        except UnknownPredictorError as exc:
            raise HarnessError(str(exc)) from None
    return list(dict.fromkeys(ids))


def open_dataset_by_name(name: str) -> Dataset:
    """The dataset ``name`` (built on first use when the catalog knows how), or HarnessError.

    A bare name is looked up in the data home only; a folder is used only for
    an explicit path (``./x``, ``/data/x``). The fingerprint is recomputed
    from the splits (:meth:`Dataset.verify`) before anything is keyed on it.
    """
    from price_bench.harness.fitting import print_note

    try:
        from price_bench.data.catalog import get_dataset

        dataset = get_dataset(name)
        dataset.verify()
        if dataset.source == "path":
            print_note(f"dataset {dataset.name} read from the folder {dataset.path} (an explicit path)")
        return dataset
    except DatasetError as exc:
        raise HarnessError(str(exc)) from None


def verified(dataset: Dataset) -> Dataset:
    """``dataset`` once its fingerprint is checked against its splits (HarnessError when it does not match)."""
    try:
        dataset.verify()
    except DatasetError as exc:
        raise HarnessError(str(exc)) from None
    return dataset
