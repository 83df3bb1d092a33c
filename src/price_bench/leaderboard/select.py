"""Which result records make a leaderboard, and which are left out (and why).

Rules, per dataset name:

* ``--limit`` runs never count (they are only counted, to say so).
* The board is for one dataset fingerprint: the one of the most recent
  complete run (or, when there is none, of the most recent run). Runs on any
  other fingerprint are left out and listed.
* Per (predictor id, config hash) the latest complete run is ranked; when
  runs with several seeds exist (``run --seeds 0,1,2``), the latest complete
  run of each seed counts and the row shows their mean and spread
  (:attr:`Board.seed_runs`).
* A (predictor id, config hash) whose latest run was skipped or failed is
  listed with its reason, even when an older complete run is in the table.

Records are compared by ``finished_at`` then ``run_id``, never by file time,
so the board is a pure function of the records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from price_bench.results.schema import RunRecord


@dataclass(frozen=True)
class Entry:
    """A record together with the file it was read from."""

    path: Path
    record: RunRecord

    @property
    def key(self) -> tuple[str, str]:
        """(predictor id, config hash): one leaderboard row per key."""
        return (self.record.predictor.id, self.record.predictor.config_hash)


@dataclass
class Board:
    """Everything one leaderboard page shows, before any formatting."""

    dataset: str
    fingerprint: str
    split: str
    synthetic: bool
    recipe: str | None
    n_total: int
    ranked: list[Entry] = field(default_factory=list)
    not_run: list[Entry] = field(default_factory=list)
    other_fingerprint: list[Entry] = field(default_factory=list)
    limit_runs: int = 0
    superseded: int = 0
    #: (predictor id, config hash) -> its latest complete run per seed, by seed, when there are several seeds.
    seed_runs: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)
    _labels: dict[tuple[str, str], str] | None = field(default=None, repr=False, compare=False)

    @property
    def latest_run(self) -> str | None:
        """``finished_at`` of the newest run on the board (ranked or not run)."""
        times = [e.record.finished_at for e in self.ranked + self.not_run]
        return max(times, key=parse_time) if times else None

    def label(self, entry: Entry) -> str:
        """The row's name on this board: what ran (see :mod:`price_bench.leaderboard.labels`)."""
        if self._labels is None:
            from price_bench.leaderboard.labels import board_labels

            self._labels = board_labels(e.record for e in self.ranked + self.not_run)
        return self._labels.get(entry.key, entry.key[0])

    def is_local(self, entry: Entry) -> bool:
        """True when the row's model ran on a self-hosted (local) endpoint."""
        from price_bench.leaderboard.labels import is_local

        return is_local(entry.record)


def parse_time(stamp: str) -> datetime:
    """An ISO-8601 time as an aware UTC datetime (naive ones are taken as UTC)."""
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _order(entry: Entry) -> tuple[datetime, str]:
    return (parse_time(entry.record.finished_at), entry.record.run_id)


def group_by_dataset(entries: list[Entry]) -> dict[str, list[Entry]]:
    """Entries per dataset name, names sorted."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.record.dataset.name, []).append(entry)
    return {name: groups[name] for name in sorted(groups)}


def _error_value(entry: Entry) -> float:
    metric = entry.record.metrics.get("error")
    return metric.value if metric is not None and metric.value is not None else float("inf")


def select_board(dataset: str, entries: list[Entry]) -> Board | None:
    """Build the board for ``dataset`` from its entries; None when only ``--limit`` runs exist."""
    full = [e for e in entries if e.record.limit is None]
    if not full:
        return None
    complete = [e for e in full if e.record.status == "complete"]
    reference = max(complete or full, key=_order).record.dataset
    current = [e for e in full if e.record.dataset.fingerprint == reference.fingerprint]

    latest_complete: dict[tuple[str, str], Entry] = {}
    latest_any: dict[tuple[str, str], Entry] = {}
    per_seed: dict[tuple[str, str], dict[int, Entry]] = {}
    for entry in sorted(current, key=_order):
        latest_any[entry.key] = entry
        if entry.record.status == "complete":
            latest_complete[entry.key] = entry
            per_seed.setdefault(entry.key, {})[entry.record.seed] = entry
    seed_runs = {key: [runs[s] for s in sorted(runs)] for key, runs in per_seed.items() if len(runs) > 1}

    def rank_value(entry: Entry) -> float:
        runs = seed_runs.get(entry.key)
        if not runs:
            return _error_value(entry)
        values = [_error_value(e) for e in runs]
        return sum(values) / len(values)

    ranked = sorted(latest_complete.values(), key=lambda e: (rank_value(e), e.key))
    not_run = sorted(
        (e for e in latest_any.values() if e.record.status != "complete"),
        key=lambda e: (e.record.status, e.key),
    )
    n_complete = sum(1 for e in current if e.record.status == "complete")
    return Board(
        dataset=dataset,
        fingerprint=reference.fingerprint,
        split=reference.split,
        synthetic=reference.synthetic,
        recipe=reference.recipe,
        n_total=max((e.record.n_total for e in current), default=0),
        ranked=ranked,
        not_run=not_run,
        other_fingerprint=sorted(
            (e for e in full if e.record.dataset.fingerprint != reference.fingerprint),
            key=lambda e: (e.key, _order(e)),
        ),
        limit_runs=len(entries) - len(full),
        superseded=n_complete - len(ranked) - sum(len(runs) - 1 for runs in seed_runs.values()),
        seed_runs=seed_runs,
    )
