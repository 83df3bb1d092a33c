"""The result store's sidecar fast path round-trips awkward raw answers exactly."""

from __future__ import annotations

import json

import pytest

from price_bench.results.schema import DatasetRef, ItemPrediction, PredictorInfo, RunRecord
from price_bench.results.store import load_records, predictions_jsonl, read_predictions, write_record

NASTY = ['},{"id":"x"}', "line one\nline two", 'quote " and backslash \\', "emoji 💸 and ü", None]


def _record() -> RunRecord:
    return RunRecord(
        run_id="20260101T000000Z-abcdef-0001",
        status="complete",
        price_bench_version="0.1.0",
        predictor=PredictorInfo(id="p", config_hash="abc", plugin_distribution="d", plugin_version="1"),
        dataset=DatasetRef(name="ds", fingerprint="sha256:00"),
        n_items=len(NASTY),
        n_total=len(NASTY),
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:00+00:00",
    )


def _rows() -> list[dict]:
    return [
        {"id": f"i{n}", "truth": 10.0, "guess": 12.5, "parsed": None, "raw": raw, "category": None,
         "cost_usd": 0.0, "latency_s": 0.001, "error": None}
        for n, raw in enumerate(NASTY)
    ]


def test_dict_rows_round_trip_through_the_sidecar(tmp_path):
    path = write_record(tmp_path, _record(), _rows())
    rows = read_predictions(path)
    assert [row.raw for row in rows] == NASTY
    assert [row.id for row in rows] == [f"i{n}" for n in range(len(NASTY))]
    sidecar = path.with_name(_record().run_id + ".predictions.jsonl").read_text(encoding="utf-8")
    assert len(sidecar.splitlines()) == len(NASTY)
    [(loaded_path, record)] = load_records(tmp_path)
    assert loaded_path == path and record.predictions_file.endswith(".predictions.jsonl")


def test_fast_path_matches_the_model_encoding():
    fast = [json.loads(line) for line in predictions_jsonl(_rows()).splitlines()]
    slow = [json.loads(line) for line in predictions_jsonl([ItemPrediction(**row) for row in _rows()]).splitlines()]
    assert fast == slow


def test_committed_records_from_before_provenance_still_load():
    from pathlib import Path

    from price_bench.results.store import load_records

    root = Path(__file__).resolve().parents[2] / "results"
    if not root.is_dir():
        pytest.skip("no committed results/")
    records = load_records(root)
    old = [r for _, r in records if r.predictor.code_digest is None]  # written before code digests and provenance
    assert old and all(r.provenance is None for r in old)
    assert all(r.provenance is not None for _, r in records if r.predictor.code_digest is not None)  # newer ones carry both


def test_progress_shows_the_fitting_phase():
    from price_bench.harness.progress import RunProgress

    with RunProgress(enabled=True) as progress:
        progress.start("slow-fit", total=10)
        progress.phase("fitting")
        assert progress._progress.tasks[-1].description == "slow-fit · fitting"
        progress.phase("predicting")
        assert progress._progress.tasks[-1].description == "slow-fit · predicting"
        progress.finish()
