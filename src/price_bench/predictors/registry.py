"""A strict, lazy registry of predictors.

Plugins register either a :class:`~price_bench.predictors.contract.Predictor`
subclass or a :class:`PredictorSpec` whose ``factory`` is a ``"module:Class"``
string imported only when the predictor is actually needed. A second
registration of the same id is refused (never a silent last-wins): the first
registration is kept, a warning naming both origins goes to
:attr:`PredictorRegistry.warnings`, and only loading that id fails, with
:class:`DuplicatePredictorError` (so ``list`` and every other predictor keep
working). A strict registry raises at the second registration instead.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from price_bench.errors import PriceBenchError
from price_bench.names import name_problem

if TYPE_CHECKING:
    from price_bench.predictors.contract import Predictor


class UnknownPredictorError(PriceBenchError, KeyError):
    """No predictor has this id."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that
        return str(self.args[0])


class DuplicatePredictorError(PriceBenchError, ValueError):
    """Two registrations claimed the same predictor id."""


class InvalidPredictorIdError(PriceBenchError, ValueError):
    """A predictor id that cannot name a folder (see :mod:`price_bench.names`)."""


@dataclass
class PredictorSpec:
    """What a plugin registers: an id plus where to find the class.

    ``factory`` is the class itself or a ``"package.module:ClassName"`` string.
    ``origin`` (the registering plugin's distribution name) and
    ``plugin_version`` are filled in by the plugin manager.
    """

    id: str
    factory: type[Predictor] | str
    description: str = ""
    origin: str = "?"
    plugin_version: str = "0"
    _cls: type[Predictor] | None = field(default=None, repr=False)
    #: Set by the registry when a second registration of this id was refused: loading then fails with it.
    conflict: str | None = field(default=None, repr=False)

    def load(self) -> type[Predictor]:
        """Import (once) and return the predictor class.

        Raises :class:`DuplicatePredictorError` when another plugin also
        registered this id (see :attr:`conflict`).
        """
        if self.conflict is not None:
            raise DuplicatePredictorError(self.conflict)
        if self._cls is None:
            if isinstance(self.factory, str):
                module_name, _, attr = self.factory.partition(":")
                cls = getattr(importlib.import_module(module_name), attr)
            else:
                cls = self.factory
            if cls.id != self.id:
                raise ValueError(f"predictor spec {self.id!r} points at class {cls.__name__} whose id is {cls.id!r}")
            self._cls = cls
        return self._cls


class PredictorRegistry:
    """Maps predictor ids to :class:`PredictorSpec` objects."""

    def __init__(self, *, strict: bool = False) -> None:
        self._specs: dict[str, PredictorSpec] = {}
        self.strict = strict
        #: One line per refused duplicate registration, for the CLI to print.
        self.warnings: list[str] = []

    def add(self, spec: PredictorSpec) -> None:
        """Add ``spec``. A taken id keeps the first registration and refuses this one.

        The refusal is a line in :attr:`warnings` naming both origins, and the
        kept spec then fails to load (the id is ambiguous, so running it would
        mislead); a strict registry raises :class:`DuplicatePredictorError` here.
        """
        if not spec.id:
            raise ValueError(f"a predictor from {spec.origin} has an empty id")
        problem = name_problem(spec.id, "predictor id")
        if problem:  # ids name result and work folders: one rule, checked where they enter
            raise InvalidPredictorIdError(f"{problem}, registered by {spec.origin}")
        existing = self._specs.get(spec.id)
        if existing is None:
            self._specs[spec.id] = spec
            return
        clash = f"predictor id {spec.id!r} is registered twice: by {existing.origin} and by {spec.origin}"
        if self.strict:
            raise DuplicatePredictorError(clash)
        self.warnings.append(f"{clash}; kept the first, refused the second (running {spec.id!r} fails until one is uninstalled)")
        if existing.conflict is None:
            self._specs[spec.id] = replace(existing, conflict=f"{clash}: uninstall one of them to run it")

    def snapshot(self) -> tuple[dict[str, PredictorSpec], int]:
        """The current registrations, for :meth:`restore` (a plugin's registrations are all-or-nothing)."""
        return dict(self._specs), len(self.warnings)

    def restore(self, snapshot: tuple[dict[str, PredictorSpec], int]) -> None:
        """Drop every registration (and warning) made since ``snapshot``."""
        specs, n_warnings = snapshot
        self._specs = dict(specs)
        del self.warnings[n_warnings:]

    def get(self, predictor_id: str) -> PredictorSpec:
        """The spec for ``predictor_id``, with a "did you mean" hint when unknown."""
        try:
            return self._specs[predictor_id]
        except KeyError:
            close = difflib.get_close_matches(predictor_id, self._specs, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownPredictorError(f"unknown predictor {predictor_id!r}{hint}") from None

    def ids(self) -> list[str]:
        """All registered ids, sorted."""
        return sorted(self._specs)

    def specs(self) -> list[PredictorSpec]:
        """All specs, sorted by id."""
        return [self._specs[i] for i in self.ids()]

    def __contains__(self, predictor_id: object) -> bool:
        return predictor_id in self._specs

    def __len__(self) -> int:
        return len(self._specs)
