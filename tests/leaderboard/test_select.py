"""Which runs reach the leaderboard, and what is said about the others."""

from __future__ import annotations

from price_bench.leaderboard.select import Entry, group_by_dataset, select_board
from price_bench.results.store import load_records, write_record


def _board(results_dir, name="demo"):
    entries = [Entry(p, r) for p, r in load_records(results_dir)]
    return select_board(name, group_by_dataset(entries)[name])


def test_one_row_per_predictor_and_config_ranked_by_error(results_dir):
    board = _board(results_dir)
    labels = [board.label(e) for e in board.ranked]
    assert sorted(labels) == sorted(["random-forest · n_estimators=300", "random-forest · n_estimators=100",
                                     "frontier · gpt-4o-mini", "linear-regression", "constant-mean"])
    errors = [e.record.metrics["error"].value for e in board.ranked]
    assert errors == sorted(errors)
    assert board.label(board.ranked[-1]) == "constant-mean"


def test_latest_complete_run_wins_and_the_older_is_counted(results_dir):
    board = _board(results_dir)
    linear = [e for e in board.ranked if e.key[0] == "linear-regression"]
    assert [e.record.finished_at for e in linear] == ["2026-11-22T10:00:00+00:00"]
    assert board.superseded == 1


def test_limit_runs_and_other_fingerprints_are_left_out_and_listed(results_dir, kit):
    board = _board(results_dir)
    assert board.fingerprint == kit.FP_NEW
    assert "constant-median" not in {e.key[0] for e in board.ranked}
    assert board.limit_runs == 1
    assert [(e.key[0], e.record.dataset.fingerprint) for e in board.other_fingerprint] == [("constant-median", kit.FP_OLD)]


def test_skipped_and_failed_predictors_keep_their_reason(results_dir):
    board = _board(results_dir)
    assert {(e.key[0], e.record.status, e.record.reason) for e in board.not_run} == {
        ("openai-ft", "skipped", "OPENAI_API_KEY is not set"),
        ("qlora", "failed", "RuntimeError: CUDA out of memory <while loading>"),
    }


def test_board_follows_the_fingerprint_of_the_newest_complete_run(results_dir, kit):
    rec, preds = kit.record("constant-median", preds=kit.predictions("constant"), fingerprint=kit.FP_OLD,
                            finished="2026-11-28T10:00:00+00:00")
    write_record(results_dir, rec, preds)
    board = _board(results_dir)
    assert board.fingerprint == kit.FP_OLD
    assert [e.key[0] for e in board.ranked] == ["constant-median"]
    assert len(board.other_fingerprint) == 8  # every full run on the newer fingerprint, complete or not


def test_a_newer_failure_is_listed_while_the_complete_run_stays_ranked(results_dir, kit):
    rec, _ = kit.record("linear-regression", status="failed", reason="ValueError: boom",
                        finished="2026-11-24T10:00:00+00:00")
    write_record(results_dir, rec)
    board = _board(results_dir)
    assert "linear-regression" in {e.key[0] for e in board.ranked}
    assert ("linear-regression", "failed") in {(e.key[0], e.record.status) for e in board.not_run}


def test_only_limit_runs_give_no_board(tmp_path, kit):
    rec, preds = kit.record("constant-mean", preds=kit.predictions("constant", n=20), limit=20)
    write_record(tmp_path, rec, preds)
    entries = [Entry(p, r) for p, r in load_records(tmp_path)]
    assert select_board("demo", entries) is None


def test_latest_run_is_the_newest_finish_time(results_dir):
    assert _board(results_dir).latest_run == "2026-11-23T10:00:00+00:00"


def test_runs_with_several_seeds_make_one_row_with_mean_and_spread(results_dir, kit, tmp_path):
    from price_bench import leaderboard as lb

    for seed, sigma in ((1, 0.4), (2, 0.5)):
        rec, preds = kit.record("linear-regression", preds=kit.predictions("noisy", sigma, 10 + seed),
                                finished=f"2026-11-2{4 + seed}T10:00:00+00:00")
        write_record(results_dir, rec.model_copy(update={"seed": seed, "run_id": rec.run_id + f"-s{seed}"}), preds)
    board = _board(results_dir)
    key = next(e.key for e in board.ranked if e.key[0] == "linear-regression")
    assert [e.record.seed for e in board.seed_runs[key]] == [0, 1, 2]
    assert sum(1 for e in board.ranked if e.key[0] == "linear-regression") == 1
    md = lb.plan(results_dir, tmp_path / "lb", dataset="demo").files[tmp_path / "lb" / "demo.md"]
    row = next(line for line in md.splitlines() if "| linear-regression |" in line)
    assert "3 seeds, sd \\$" in row
