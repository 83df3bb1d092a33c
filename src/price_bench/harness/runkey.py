"""One key for one predictor's fit and answers on one dataset.

A :class:`RunKey` names the cached answers (:meth:`RunKey.cache_key`) and
the work folder of the fit (:meth:`RunKey.workdir`). ``price-bench run``,
``price-bench predict`` and ``price-bench serve bundle`` all build their
keys here, so a fit made by one is found by the others: the work folder is
keyed by the *fit* fields of the config only (a new ``max_tokens`` reuses
the fit), the answers by every fit and predict field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from price_bench.harness.cache import CacheKey
from price_bench.harness.codedigest import code_digest
from price_bench.harness.overrides import config_hash
from price_bench.harness.workdir import workdir_for

if TYPE_CHECKING:
    from pydantic import BaseModel

    from price_bench.predictors.contract import Predictor
    from price_bench.predictors.registry import PredictorSpec
    from price_bench.results.schema import RunRecord


@dataclass(frozen=True)
class RunKey:
    """Everything that identifies a predictor's fit and answers: id, config, versions, code, data and seed."""

    predictor_id: str
    #: Hash of the fit and predict fields: keys the cached answers.
    config_hash: str
    #: Hash of the fit fields only: keys the work folder.
    fit_hash: str
    plugin_version: str
    predictor_version: str
    fingerprint: str
    seed: int = 0
    #: Digest of the predictor's source code ("" when none could be computed).
    code_digest: str = ""

    @classmethod
    def for_predictor(
        cls, spec: PredictorSpec, predictor_cls: type[Predictor], config: BaseModel, fingerprint: str, seed: int = 0
    ) -> RunKey:
        """The key of the installed predictor ``predictor_cls`` (registered as ``spec``) with ``config``."""
        return cls(
            predictor_id=spec.id,
            config_hash=config_hash(config),
            fit_hash=config_hash(config, roles=("fit",)),
            plugin_version=spec.plugin_version,
            predictor_version=str(predictor_cls.version),
            fingerprint=fingerprint,
            seed=seed,
            code_digest=code_digest(predictor_cls),
        )

    @classmethod
    def for_record(cls, record: RunRecord, config: BaseModel) -> RunKey:
        """The key of the run ``record`` describes, ``config`` being its config rebuilt for the installed class."""
        p = record.predictor
        return cls(
            predictor_id=p.id,
            config_hash=p.config_hash,
            fit_hash=config_hash(config, roles=("fit",)),
            plugin_version=p.plugin_version,
            predictor_version=p.predictor_version,
            fingerprint=record.dataset.fingerprint,
            seed=record.seed,
            code_digest=p.code_digest or "",
        )

    def cache_key(self) -> CacheKey:
        """The prediction-cache key of this run's answers."""
        return CacheKey(
            self.predictor_id, self.config_hash, self.plugin_version, self.predictor_version, self.fingerprint, self.seed,
            self.code_digest,
        )

    def workdir(self, home: Path | None = None) -> Path:
        """The work folder of this run's fit under ``home`` (default: the data home); not created.

        ValueError when the predictor id or the fingerprint is not valid.
        """
        return workdir_for(
            self.predictor_id, self.fit_hash, self.plugin_version, self.predictor_version, self.fingerprint, self.seed, home,
            code_digest=self.code_digest,
        )
