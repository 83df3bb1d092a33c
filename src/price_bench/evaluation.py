"""``price_bench.evaluate``: ``price-bench run`` as one function call, for notebooks and scripts.

It runs the same code as the CLI (:func:`~price_bench.harness.runner.run_predictors`),
with the same prediction cache, work folders, result records and metrics, on
a registry built for the call: predictors may be given as registered ids,
as classes (a class defined in a notebook needs no plugin or entry point) or
as instances (which stand for their class and their config).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from price_bench.harness.errors import HarnessError

if TYPE_CHECKING:
    from price_bench.data.dataset import Dataset
    from price_bench.harness.options import Overwrite
    from price_bench.predictors.contract import Predictor
    from price_bench.predictors.registry import PredictorRegistry, PredictorSpec
    from price_bench.results.collection import Results

PredictorLike = Union[str, "type[Predictor]", "Predictor"]


def evaluate(
    predictors: PredictorLike | Sequence[PredictorLike],
    dataset: str | Path | Dataset = "demo",
    *,
    limit: int | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | Iterable[str] | None = None,
    seeds: int | Iterable[int] | None = None,
    workers: int = 1,
    overwrite: Overwrite = "missing",
    refit: bool = False,
    results_dir: str | Path | None = None,
    n_resamples: int = 1000,
    progress: bool | None = None,
    raw_output: bool = True,
) -> Results:
    """Fit and score predictors on a dataset's test split; one run per predictor and seed.

    ``predictors``: one or a list of registered ids (``"tfidf-ridge"``),
    :class:`~price_bench.Predictor` subclasses or instances. ``dataset``: a
    name (``demo`` is built on first use), a dataset folder or a
    :class:`~price_bench.Dataset`. ``overrides``: ``{"id": {"key": value}}``
    or CLI-style ``["id.key=value"]``; an instance's own config counts as
    overrides of its class (explicit ones win). ``seeds``: one seed or several
    (default 0); each seed is a separate run with its own cache entries.

    The rest is ``price-bench run``'s options: ``limit`` (first N test items;
    such runs never reach a leaderboard), ``workers``, ``overwrite``
    (``missing``, ``always`` or ``never``), ``refit``, ``results_dir``
    (default ``$PRICE_BENCH_RESULTS`` or ``./results``), ``n_resamples`` and
    ``raw_output``. Records are written exactly as the CLI writes them.

    Failed and skipped predictors do not raise: their runs say why (see
    :attr:`Results.failed`). User errors found before anything runs (unknown
    id, bad config key or value, missing dataset) raise :class:`HarnessError`.
    """
    from dataclasses import replace

    from price_bench.harness.runner import RunOptions, run_seeds
    from price_bench.results.collection import Results
    from price_bench.results.store import default_results_dir

    entries = _entries(predictors)
    explicit = _normalise_overrides(overrides)
    registry, targets = _call_registry(entries, explicit)
    ds = _open(dataset)
    out_dir = Path(results_dir) if results_dir is not None else default_results_dir()
    base = RunOptions(dataset=ds.name, limit=limit, workers=workers, overwrite=overwrite, refit=refit, results_dir=out_dir,
                      n_resamples=n_resamples, progress=progress, raw_output=raw_output)
    outcomes = []
    for group in _unique_id_groups(targets):  # one group (of distinct ids) unless an id comes twice
        options = replace(base, overrides={pid: dict(values) for pid, values in group if values})
        outcomes += run_seeds([pid for pid, _ in group], options, _seeds(seeds), registry=registry, dataset=ds)
    return Results(outcomes, results_dir=out_dir, dataset=ds, show_titles=raw_output)


# -- what to run ----------------------------------------------------------------------------


def _entries(predictors: PredictorLike | Sequence[PredictorLike]) -> list[PredictorLike]:
    from price_bench.predictors.contract import Predictor

    if isinstance(predictors, (str, Predictor)) or inspect.isclass(predictors):
        return [predictors]
    entries = list(predictors)
    if not entries:
        raise HarnessError("evaluate() needs at least one predictor (an id, a Predictor class or an instance)")
    return entries


def _normalise_overrides(overrides: Mapping[str, Mapping[str, Any]] | Iterable[str] | None) -> dict[str, dict[str, Any]]:
    from price_bench.harness.overrides import parse_overrides

    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        out = {}
        for pid, values in overrides.items():
            if not isinstance(values, Mapping):
                raise HarnessError(f"overrides[{pid!r}] must be a mapping of config keys to values, not {type(values).__name__}")
            out[str(pid)] = dict(values)
        return out
    if isinstance(overrides, str):
        overrides = [overrides]
    return parse_overrides(overrides)


def _call_registry(
    entries: list[PredictorLike], explicit: dict[str, dict[str, Any]]
) -> tuple[PredictorRegistry, list[tuple[str, dict[str, Any]]]]:
    """A registry holding exactly the predictors of this call, and (id, overrides) per entry."""
    from price_bench.plugins.manager import get_registry
    from price_bench.predictors.contract import Predictor
    from price_bench.predictors.registry import PredictorRegistry, UnknownPredictorError

    installed = get_registry()
    registry = PredictorRegistry()
    targets: list[tuple[str, dict[str, Any]]] = []
    for entry in entries:
        config_values: dict[str, Any] = {}
        if isinstance(entry, str):
            try:
                spec = installed.get(entry)
            except UnknownPredictorError as exc:
                raise HarnessError(str(exc)) from None
        elif isinstance(entry, Predictor):
            spec = _spec_for_class(type(entry), installed)
            config_values = {name: getattr(entry.config, name) for name in entry.config.model_fields_set}
        elif inspect.isclass(entry) and issubclass(entry, Predictor):
            spec = _spec_for_class(entry, installed)
        else:
            raise HarnessError(f"cannot evaluate {entry!r}: expected a predictor id, a Predictor subclass or an instance")
        _add_once(registry, spec)
        targets.append((spec.id, {**config_values, **explicit.get(spec.id, {})}))
    stray = sorted(set(explicit) - {pid for pid, _ in targets})
    if stray:
        raise HarnessError(f"overrides for {stray[0]!r}: that predictor is not part of this call")
    return registry, targets


def _add_once(registry: PredictorRegistry, spec: PredictorSpec) -> None:
    if spec.id in registry:
        if registry.get(spec.id).factory is not spec.factory:
            raise HarnessError(f"two different predictors with id {spec.id!r} in one evaluate() call")
        return
    registry.add(spec)


def _spec_for_class(cls: type[Predictor], installed: PredictorRegistry) -> PredictorSpec:
    """The installed spec when ``cls`` is the registered class, else an in-process spec for it."""
    from price_bench.predictors.registry import PredictorSpec

    if not cls.id:
        raise HarnessError(f"{cls.__qualname__} has no id: set the class attribute `id = \"my-predictor\"`")
    if cls.id in installed:
        spec = installed.get(cls.id)
        try:
            registered = spec.load()
        except Exception:
            registered = None
        if registered is cls:
            return spec
        raise HarnessError(
            f"predictor id {cls.id!r} is already registered by {spec.origin}; "
            f"{cls.__module__}.{cls.__qualname__} needs another id (or pass the id string to run the registered one)"
        )
    distribution, version = _distribution_of(cls)
    return PredictorSpec(id=cls.id, factory=cls, description=cls.description, origin=distribution, plugin_version=version)


def _distribution_of(cls: type) -> tuple[str, str]:
    """(distribution, version) shipping ``cls``'s module; for code outside any distribution
    (a notebook, a script) ``"<module> (in-process)"`` and a digest of the class's code, so
    that editing a method never reuses the answers of the old code."""
    top = cls.__module__.split(".")[0]
    if top not in ("__main__", "builtins"):
        for dist_name in importlib.metadata.packages_distributions().get(top, []):
            try:
                return dist_name, importlib.metadata.version(dist_name)
            except importlib.metadata.PackageNotFoundError:
                continue
    return f"{cls.__module__} (in-process)", "code-" + code_digest(cls)[:12]


def code_digest(cls: type) -> str:
    """sha256 over the bytecode, constants and names of the methods ``cls`` and its bases define.

    Bases from price-bench itself are left out (their behaviour is keyed by
    the price-bench version). Module-level helpers the methods call are not
    seen: bump ``version`` when only those change.
    """
    digest = hashlib.sha256()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in ("price_bench", "builtins"):
            continue
        digest.update(f"class {klass.__qualname__}\n".encode())
        for name, value in sorted(vars(klass).items()):
            digest.update(f"{name}=".encode())
            _feed(digest, value)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        for part in (value.fget, value.fset, value.fdel):
            _feed(digest, part)
        return
    if isinstance(value, types.FunctionType):
        value = value.__code__
    if isinstance(value, types.CodeType):
        digest.update(value.co_code)
        digest.update(repr(value.co_names).encode())
        for const in value.co_consts:
            _feed(digest, const)
        return
    if inspect.isclass(value):
        fields = getattr(value, "model_fields", None)
        digest.update(repr(sorted(fields)).encode() if fields is not None else value.__qualname__.encode())
        return
    if isinstance(value, (str, bytes, int, float, bool, tuple, frozenset, type(None))):
        digest.update(repr(value).encode())


def _unique_id_groups(targets: list[tuple[str, dict[str, Any]]]) -> list[list[tuple[str, dict[str, Any]]]]:
    """Split the targets into runs of distinct ids (the runner keys overrides by id)."""
    groups: list[list[tuple[str, dict[str, Any]]]] = []
    for pid, values in targets:
        for group in groups:
            if all(pid != other for other, _ in group):
                group.append((pid, values))
                break
        else:
            groups.append([(pid, values)])
    return groups


def _seeds(seeds: int | Iterable[int] | None) -> list[int]:
    if seeds is None:
        return [0]
    if isinstance(seeds, int):
        return [seeds]
    out = list(dict.fromkeys(int(s) for s in seeds))
    if not out:
        raise HarnessError("seeds must name at least one seed")
    return out


def _open(dataset: str | Path | Dataset) -> Dataset:
    from price_bench.data.catalog import load_dataset
    from price_bench.data.dataset import Dataset, DatasetError

    if isinstance(dataset, Dataset):
        return dataset
    try:
        return load_dataset(dataset)
    except DatasetError as exc:
        raise HarnessError(str(exc)) from None


__all__ = ["evaluate", "code_digest"]
