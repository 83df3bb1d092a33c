"""The serving log (rotation, concurrent writers) and the monitor (joining, metrics, drift), without a server."""

from __future__ import annotations

import json
import multiprocessing
import random
from pathlib import Path

import numpy as np
import pytest

from price_bench.serve import ServeError
from price_bench.serve.log import EVENTS, EventLog, event_files, read_events
from price_bench.serve.monitor import PSI_DRIFT, category_psi, join, numeric_psi, psi, reference_histogram, summarise


def _prediction(item_id: str, price: float, category: str | None = "Toys", chars: int = 500, ts: float = 0.0) -> dict:
    return {"kind": "prediction", "ts": ts, "id": item_id, "price": price, "fallback": False, "category": category, "text_chars": chars}


def _feedback(item_id: str, price: float, ts: float = 1.0) -> dict:
    return {"kind": "feedback", "ts": ts, "id": item_id, "price": price}


def test_rotation_keeps_every_record_up_to_the_backups(tmp_path):
    log = EventLog(tmp_path, max_bytes=2048, backups=3)
    for i in range(100):  # ~14 KB: more than the current file plus 3 backups hold
        log.write([_prediction(f"id-{i}", 10.0 + i)])
    log.close()
    files = event_files(tmp_path)
    assert files[-1] == tmp_path / EVENTS and len(files) == 4  # events.jsonl plus .3, .2, .1 (oldest first)
    assert [f.name for f in files[:-1]] == [f"{EVENTS}.3", f"{EVENTS}.2", f"{EVENTS}.1"]
    assert all(f.stat().st_size <= 2048 for f in files)
    ids = [r["id"] for r in read_events(tmp_path)]
    assert ids == sorted(ids, key=lambda x: int(x.split("-")[1]))  # oldest first, in order, nothing interleaved
    assert ids[-1] == "id-99" and ids[0] != "id-0"  # the oldest file was dropped


def test_common_fields_are_written_as_if_merged_into_each_record(tmp_path):
    rows = [{"id": "a", "price": 1.5, "error": None, "latency_ms": float("nan")}, {}, {"id": 'q"uote\n', "price": 2.0}]
    common = {"kind": "prediction", "ts": 1764590000.123456, "bundle": "ab12"}
    EventLog(tmp_path / "merged").write([{**common, **row} for row in rows])
    EventLog(tmp_path / "common").write(rows, common=common)
    merged, separate = ((tmp_path / name / EVENTS).read_bytes() for name in ("merged", "common"))
    assert separate == merged and len(separate.splitlines()) == 3
    assert [json.loads(line)["kind"] for line in separate.splitlines()] == ["prediction"] * 3


def _writer(folder: str, worker: int, n: int) -> None:
    log = EventLog(Path(folder), max_bytes=4096, backups=50)
    for i in range(n):
        log.write([_prediction(f"w{worker}-{i}", 1.0 + i)])
    log.close()


def test_concurrent_writers_never_lose_or_tear_a_line(tmp_path):
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_writer, args=(str(tmp_path), w, 150)) for w in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    warnings: list[str] = []
    ids = [r["id"] for r in read_events(tmp_path, warnings)]
    assert warnings == []
    assert sorted(ids) == sorted(f"w{w}-{i}" for w in range(3) for i in range(150))


def test_malformed_lines_are_skipped_with_a_warning(tmp_path):
    (tmp_path / EVENTS).write_text(json.dumps(_prediction("a", 5.0)) + "\n{oops\n" + json.dumps({"kind": "other"}) + "\n")
    warnings: list[str] = []
    assert [r["id"] for r in read_events(tmp_path, warnings)] == ["a"]
    assert warnings == [f"{tmp_path / EVENTS}:2: not a prediction or feedback record; skipped", f"{tmp_path / EVENTS}:3: not a prediction or feedback record; skipped"]


def test_join_takes_the_latest_prediction_and_feedback():
    events = [_prediction("a", 10), _prediction("b", 20), _feedback("a", 12), _prediction("a", 11), _feedback("a", 15), _feedback("z", 3)]
    predictions, joined, counts = join(events)
    assert [p["id"] for p in predictions] == ["b", "a"]
    assert joined == [(predictions[1], 15.0)]
    assert counts == {"predictions": 3, "feedback": 3, "other_bundle_predictions": 0, "unmatched_feedback": 1}


def test_psi():
    assert psi([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    reference = reference_histogram(rng.lognormal(4, 1, 5000))
    assert numeric_psi(reference, rng.lognormal(4, 1, 2000)) < 0.05
    assert numeric_psi(reference, rng.lognormal(5, 1, 2000)) > PSI_DRIFT
    counts = {"A": 500, "B": 500}
    assert category_psi(counts, ["A", "B"] * 100) == pytest.approx(0.0, abs=1e-6)
    assert category_psi(counts, ["A"] * 180 + ["C"] * 20) > PSI_DRIFT


def _manifest(error=(30.0, 25.0, 35.0)) -> dict:
    rng = np.random.default_rng(1)
    return {
        "predictor": {"id": "tfidf-ridge"},
        "run": {"run_id": "r1"},
        "dataset": {"name": "demo", "fingerprint": "sha256:x"},
        "metrics": {"error": {"value": error[0], "ci_low": error[1], "ci_high": error[2]}, "rmsle": {"value": 0.4}, "hits": {"value": 80.0}},
        "breakdowns": {"category": {"Toys": {"n": 50, "error": 20.0}, "Tools": {"n": 50, "error": 40.0}}},
        "reference": {
            "category_counts": {"Toys": 50, "Tools": 50},
            "text_length": reference_histogram(rng.normal(600, 50, 1000)),
            "predicted_price": reference_histogram(rng.lognormal(4, 0.8, 1000)),
        },
    }


def _write_log(folder: Path, events: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "bundle.json").write_text(json.dumps(_manifest()))
    return folder


def test_summarise_planted_errors_and_no_drift(tmp_path):
    rng = np.random.default_rng(2)
    events, truths = [], []
    for i in range(200):
        category = "Toys" if i % 2 else "Tools"
        price = float(rng.lognormal(4, 0.8))
        events.append(_prediction(f"i{i}", price, category, chars=int(rng.normal(600, 50))))
        truths.append(price + (20.0 if category == "Toys" else 40.0))  # Toys: $20 off, Tools: $40 off
    events += [_feedback(f"i{i}", t) for i, t in enumerate(truths)]
    report = summarise(_write_log(tmp_path / "log", events), window=1000)
    live = report["overall"]["live"]
    assert live["n"] == 200 and live["error"] == pytest.approx(30.0)
    assert report["categories"]["Toys"]["live"]["error"] == pytest.approx(20.0)
    assert report["categories"]["Tools"]["live"]["error"] == pytest.approx(40.0)
    assert report["categories"]["Tools"]["offline"]["error"] == 40.0
    flags = {c["check"]: c["flag"] for c in report["drift"]}
    assert flags == {"error_outside_ci": False, "category_mix": False, "text_length": False, "predicted_price": False}
    window = summarise(tmp_path / "log", window=10)
    assert window["overall"]["live"]["n"] == 10


def test_summarise_flags_drift(tmp_path):
    events = []
    for i in range(150):
        events.append(_prediction(f"i{i}", 900.0, "Garden", chars=3000))  # new category, long texts, high prices
        events.append(_feedback(f"i{i}", 500.0))
    report = summarise(_write_log(tmp_path / "log", events))
    flags = {c["check"]: c["flag"] for c in report["drift"]}
    assert flags == {"error_outside_ci": True, "category_mix": True, "text_length": True, "predicted_price": True}
    assert "above the offline 95% CI" in report["drift"][0]["detail"]


def test_summarise_with_too_little_data_does_not_guess(tmp_path):
    report = summarise(_write_log(tmp_path / "log", [_prediction("a", 10.0), _feedback("a", 12.0)]))
    assert all(check["flag"] is None and check["detail"].startswith("not checked") for check in report["drift"])


def test_summarise_without_a_log_is_one_clear_error(tmp_path):
    with pytest.raises(ServeError, match="no serving log here"):
        summarise(tmp_path)


def test_monitor_cli_escapes_categories(tmp_path):
    from click.testing import CliRunner

    from price_bench.cli.main import get_cli

    events = [_prediction("a", 10.0, "[bold red]pwn[/]"), _feedback("a", 12.0)]
    log = _write_log(tmp_path / "log", events)
    result = CliRunner().invoke(get_cli(), ["monitor", str(log)])
    assert result.exit_code == 0, result.output
    assert "[bold red]pwn[/]" in result.output
    as_json = CliRunner().invoke(get_cli(), ["monitor", str(log), "--json", "--window", "5"])
    assert json.loads(as_json.output)["overall"]["live"]["error"] == pytest.approx(2.0)
    missing = CliRunner().invoke(get_cli(), ["monitor", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no such log folder" in missing.output


def test_monitor_fail_on_drift_exits_2(tmp_path):
    from click.testing import CliRunner

    from price_bench.cli.main import get_cli

    events = [e for i in range(150) for e in (_prediction(f"i{i}", 900.0, "Garden", 3000), _feedback(f"i{i}", 500.0))]
    result = CliRunner().invoke(get_cli(), ["monitor", str(_write_log(tmp_path / "log", events)), "--fail-on-drift"])
    assert result.exit_code == 2
    assert "DRIFT" in result.output


def test_reference_histogram_shares_sum_to_one():
    values = [random.Random(3).random() for _ in range(1000)]
    hist = reference_histogram(values)
    assert len(hist["proportions"]) == len(hist["edges"]) + 1
    assert sum(hist["proportions"]) == pytest.approx(1.0, abs=1e-4)


def test_serve_without_the_extra_is_one_line(monkeypatch, tmp_path):
    import sys

    from click.testing import CliRunner

    from price_bench.cli.main import get_cli

    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if the serve extra were not installed
    result = CliRunner().invoke(get_cli(), ["serve", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: the serve extra is not installed (fastapi missing): pip install 'price-bench[serve]'"]


def test_log_tail_reads_only_new_lines_and_follows_rotation(tmp_path):
    from price_bench.serve.log import LogTail

    log = EventLog(tmp_path, max_bytes=2048, backups=5)
    tail = LogTail(tmp_path)
    assert tail.read_new() == []
    seen = []
    for i in range(60):
        log.write([_prediction(f"id-{i}", 1.0 + i)])
        if i % 7 == 0:
            seen += [r["id"] for r in tail.read_new()]
    with open(tmp_path / EVENTS, "a") as fh:
        fh.write('{"kind": "feedback", "id": "id-1", "pr')  # a line being written: not read yet
    seen += [r["id"] for r in tail.read_new()]
    assert seen == [f"id-{i}" for i in range(60)]
    assert len(event_files(tmp_path)) > 2  # it did rotate
    with open(tmp_path / EVENTS, "a") as fh:
        fh.write('ice": 3.0}\n')
    assert [r["kind"] for r in tail.read_new()] == ["feedback"]
    log.close()


def test_live_join_matches_the_batch_join_on_a_server_log():
    from price_bench.serve.monitor import LiveJoin, build_report

    rng = random.Random(5)
    events = []
    for i in range(300):
        events.append(_prediction(f"i{i}", 10.0 + rng.random() * 100, rng.choice(["Toys", "Tools"])))
        if i >= 3 and rng.random() < 0.6:
            events.append(_feedback(f"i{rng.randrange(i - 3, i)}", 10.0 + rng.random() * 100))
    live = LiveJoin(window=50)
    for start in range(0, len(events), 37):
        live.add(events[start : start + 37])
    predictions, joined, counts = join(events)
    batch = build_report(predictions[-50:], joined[-50:], {**counts, "joined": len(joined)}, window=50, manifest=_manifest(), log="x")
    incremental = live.report(manifest=_manifest(), log="x")
    assert incremental["overall"]["live"] == pytest.approx(batch["overall"]["live"])
    assert incremental["counts"] == batch["counts"]


def test_predictions_of_another_bundle_are_left_out(tmp_path):
    import hashlib

    log = _write_log(tmp_path / "log", [])
    ours = hashlib.sha256((log / "bundle.json").read_bytes()).hexdigest()[:16]
    events = [
        {**_prediction("old", 100.0), "bundle": "0123456789abcdef"},  # the model served before, same log folder
        _feedback("old", 10.0),
        {**_prediction("new", 20.0), "bundle": ours},
        _feedback("new", 25.0),
    ]
    (log / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events))
    report = summarise(log)
    assert report["overall"]["live"]["n"] == 1 and report["overall"]["live"]["error"] == pytest.approx(5.0)
    assert report["counts"]["other_bundle_predictions"] == 1
    assert "made by another bundle" in report["warnings"][0]
