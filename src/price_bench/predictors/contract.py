"""The predictor contract that every plugin implements.

A predictor is a class with a unique ``id``, a pydantic ``Config`` whose
fields all have defaults (overridable from the CLI with ``-o ID.key=value``),
optional ``requires`` checked before anything heavy is imported, an optional
``fit`` and a batched ``predict``. See ``docs/writing-a-plugin.md``.

Heavy libraries (torch, transformers, openai, gensim, scikit-learn) must be
imported inside methods, never at module top level, so that ``price-bench
list`` stays fast.
"""

from __future__ import annotations

import contextvars
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from price_bench.items import Item

#: Config field roles, set with :func:`predict_field` / :func:`runtime_field`.
#: "fit" (the default): changes the fitted artefacts, so it keys the work folder
#: and the prediction cache. "predict": changes answers but not the fit (e.g.
#: max_tokens), so it keys the prediction cache only. "runtime": changes
#: neither (concurrency, timeouts, spending confirmations, budgets), so a new
#: value reuses both the fit and every cached answer.
ROLE_KEY = "price_bench_role"
FIELD_ROLES = ("fit", "predict", "runtime")


def predict_field(default: Any = ..., **kwargs: Any) -> Any:
    """A config field that changes predictions but not the fitted artefacts."""
    return Field(default, json_schema_extra={ROLE_KEY: "predict"}, **kwargs)


def runtime_field(default: Any = ..., **kwargs: Any) -> Any:
    """A config field that changes neither the fit nor the answers (concurrency, timeouts, confirmations)."""
    return Field(default, json_schema_extra={ROLE_KEY: "runtime"}, **kwargs)


def field_role(config_cls: type[BaseModel], name: str) -> str:
    """The role of config field ``name``: "fit", "predict" or "runtime"."""
    extra = config_cls.model_fields[name].json_schema_extra
    role = extra.get(ROLE_KEY, "fit") if isinstance(extra, dict) else "fit"
    if role not in FIELD_ROLES:
        raise ValueError(f"{config_cls.__name__}.{name}: unknown role {role!r}")
    return role


class PredictorConfig(BaseModel):
    """Base class for predictor configs: every field needs a default.

    Unknown keys are rejected, so that a typo in ``-o ID.key=value`` fails
    loudly instead of being silently ignored. Mark fields that do not change
    the fit with :func:`predict_field`, and fields that change nothing the
    harness caches with :func:`runtime_field`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Seconds one ``predict`` batch may run before the harness gives up on it
    #: (None: the predictor's ``default_batch_timeout_s``; 0: no limit). See
    #: :func:`batch_timeout`. A runtime field: it keys neither the fit nor the cache.
    batch_timeout_s: float | None = runtime_field(None, ge=0, allow_inf_nan=False)


@dataclass
class Prediction:
    """One predictor answer for one item.

    ``Prediction(price=12.5)`` is a predictor that computes the number itself;
    ``Prediction(raw=answer_text)`` lets the harness parse a model's text.
    ``raw`` is what the predictor produced (model text, or the number itself).
    ``price`` is the parsed price, or None: when None and ``raw`` is text, the
    harness parses ``raw`` itself with :func:`price_bench.parsing.parse_price`;
    when that also fails the answer counts as a parse failure (never as $0).
    ``error`` marks a per-item failure (e.g. an API call that kept failing).
    ``cost_usd`` None means the cost is unknown (e.g. a model missing from
    every price list): the run's cost is then reported as unknown, never $0.
    """

    raw: str | float | None = None
    price: float | None = None
    cost_usd: float | None = 0.0
    latency_s: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Requirement:
    """Something a predictor needs before it can run.

    An unmet requirement means the predictor is *skipped* with the reason,
    never failed. Build them with :meth:`env`, :meth:`package` or :meth:`cuda`.
    """

    kind: str  # "env" | "package" | "cuda"
    name: str = ""
    hint: str = ""

    @classmethod
    def env(cls, name: str, hint: str = "") -> Requirement:
        """An environment variable that must be set and non-empty."""
        return cls("env", name, hint)

    @classmethod
    def package(cls, name: str, hint: str = "") -> Requirement:
        """An importable module (checked with importlib.util.find_spec, no import)."""
        return cls("package", name, hint)

    @classmethod
    def cuda(cls, hint: str = "") -> Requirement:
        """A CUDA device visible to torch."""
        return cls("cuda", "cuda", hint)

    def unmet_reason(self) -> str | None:
        """None when satisfied, else a short human reason."""
        suffix = f" ({self.hint})" if self.hint else ""
        if self.kind == "env":
            return None if os.environ.get(self.name) else f"environment variable {self.name} is not set{suffix}"
        if self.kind == "package":
            try:
                found = importlib.util.find_spec(self.name) is not None
            except (ImportError, ValueError):
                found = False
            return None if found else f"package {self.name!r} is not installed{suffix}"
        if self.kind == "cuda":
            return None if cuda_available() else f"no CUDA device{suffix}"
        raise ValueError(f"unknown requirement kind {self.kind!r}")


_CHEAP_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar("price_bench_cheap_checks", default=False)


@contextmanager
def cheap_checks() -> Iterator[None]:
    """Within this block, requirement checks never import heavy libraries.

    ``price-bench list`` uses it: the CUDA check then probes the NVIDIA
    driver instead of importing torch (``run`` always does the exact check).
    """
    token = _CHEAP_CHECKS.set(True)
    try:
        yield
    finally:
        _CHEAP_CHECKS.reset(token)


def _nvidia_driver_present() -> bool:
    gpus = Path("/proc/driver/nvidia/gpus")
    return (gpus.is_dir() and any(gpus.iterdir())) or any(Path("/dev").glob("nvidia[0-9]*"))


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (imports torch lazily).

    Inside :func:`cheap_checks` (and while torch is not imported yet) the
    answer comes from a driver probe instead.
    """
    if importlib.util.find_spec("torch") is None:
        return False
    if _CHEAP_CHECKS.get() and "torch" not in sys.modules:
        return _nvidia_driver_present()
    import torch

    return bool(torch.cuda.is_available())


class Predictor:
    """Base class for price predictors.

    Subclasses set ``id`` (unique, lowercase, dashes), ``description``,
    optionally ``Config`` (a :class:`PredictorConfig` subclass), ``requires``,
    ``batch_size`` and ``version`` (bump it when the same config would give
    different predictions: it is part of the cache key).

    The harness calls, in order: ``skip_reason()`` (class-level, cheap),
    ``__init__(config, seed=...)``, then either ``load(workdir)`` (when a
    previous fit left artefacts) or ``fit(train, validation, workdir)``, then
    ``predict(batch)`` for batches of test items, then ``close()``.
    """

    id: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    Config: ClassVar[type[PredictorConfig]] = PredictorConfig
    requires: ClassVar[tuple[Requirement, ...]] = ()
    batch_size: ClassVar[int] = 64
    #: True when predictions can change between identical calls (e.g. sampled
    #: LLM output without a seed); such predictions are never cached.
    nondeterministic: ClassVar[bool] = False
    #: The batch timeout of this kind of predictor (seconds), used when the
    #: config's ``batch_timeout_s`` is None. Generous: it catches a hang, not a
    #: slow machine. Remote-API and local-LLM predictors declare longer ones.
    default_batch_timeout_s: ClassVar[float] = 600.0

    #: Config fields that name a run on a leaderboard (e.g. ``("model", "base_url")``:
    #: ``frontier · gpt-4o-mini · openai``); empty: the model and endpoint fields the config has.
    label_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: PredictorConfig | None = None, *, seed: int = 0) -> None:
        self.config = config if config is not None else self.Config()
        self.seed = seed

    @classmethod
    def skip_reason(cls, config: PredictorConfig) -> str | None:
        """Why this predictor cannot run here (None when it can).

        The default checks ``requires``. Override to add config-dependent
        checks (e.g. "an API key *or* a base_url"). Must stay cheap: no heavy
        imports, no network.
        """
        for req in cls.requires:
            reason = req.unmet_reason()
            if reason:
                return reason
        return None

    def fit(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        """Learn from ``train`` (and optionally ``validation``); save artefacts under ``workdir``.

        Optional: the default does nothing. ``workdir`` is private to this
        predictor, config, plugin version and dataset; it survives reruns.
        """

    def load(self, workdir: Path) -> bool:
        """Restore a previous fit from ``workdir``; return False to make the harness refit.

        The default returns True only for predictors that do not override
        ``fit`` (nothing to restore).
        """
        return type(self).fit is Predictor.fit

    def predict(self, items: Sequence[Item]) -> list[Prediction]:
        """Return one :class:`Prediction` per item, in order. Must not read ``item.price``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (servers, GPU memory). Optional."""

    def progress_note(self) -> str | None:
        """A short live status shown in the progress bar (e.g. "conc 6/16"). Optional."""
        return None

    def info(self) -> dict[str, Any]:
        """JSON-serialisable facts for the result record's ``extra`` (e.g. training losses). Optional.

        Called after ``predict``; the harness keeps the answer in the work
        folder (``info.json``) so that fully cached reruns report it too.
        """
        return {}

    # -- helpers used by the harness -------------------------------------------------

    @classmethod
    def make_config(cls, overrides: dict[str, Any] | None = None) -> PredictorConfig:
        """Build the config from defaults plus CLI overrides (strings are coerced by pydantic)."""
        values: dict[str, Any] = {}
        for key, value in (overrides or {}).items():
            field = cls.Config.model_fields.get(key)
            if field is not None and isinstance(value, str) and _is_sequence_type(field.annotation):
                value = [part.strip() for part in value.split(",") if part.strip()]
            values[key] = value
        return cls.Config.model_validate(values)


def batch_timeout(predictor: Predictor) -> float | None:
    """Seconds one ``predict`` batch of ``predictor`` may take, or None for no limit.

    The config's ``batch_timeout_s`` when set (``-o ID.batch_timeout_s=30``; 0
    means no limit), else the class's ``default_batch_timeout_s``. When a batch
    runs longer, the harness marks its items as errored (not cached: the next
    run retries them) and moves on; the hung call is abandoned in its thread
    (a daemon thread, so it never keeps the process alive) and whatever it
    returns later is discarded. A predictor whose ``predict`` can hang should
    therefore tolerate a second ``predict`` call starting while an abandoned
    one is still running.
    """
    value = getattr(predictor.config, "batch_timeout_s", None)
    if value is None:
        value = getattr(type(predictor), "default_batch_timeout_s", None)
    return float(value) if value else None


def _is_sequence_type(annotation: Any) -> bool:
    import typing

    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_is_sequence_type(arg) for arg in typing.get_args(annotation))
    return False
