"""A notebook-style script using only price_bench.evaluate and Results gives the same Error as `price-bench run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

NOTEBOOK = textwrap.dedent(
    """
    import json
    import price_bench

    results = price_bench.evaluate(["keyword-heuristic"], dataset="demo", limit=400)
    row = results.metrics_df().iloc[0]
    items = results.predictions_df()
    print(json.dumps({"status": row.status, "error": float(row.error), "new": int(row.new_items),
                      "fingerprint": row.fingerprint, "mean_item_error": float(items.error.mean()), "record": row.record}))
    """
)


@pytest.mark.slow
def test_evaluate_matches_price_bench_run_on_demo(price_bench_home, tmp_path):
    env = dict(os.environ, PRICE_BENCH_LOAD_PLUGINS="price-bench,price-bench-example")
    script = tmp_path / "notebook.py"
    script.write_text(NOTEBOOK)
    notebook = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert notebook.returncode == 0, notebook.stderr[-3000:]
    from_notebook = json.loads(notebook.stdout.strip().splitlines()[-1])
    assert from_notebook["status"] == "complete" and from_notebook["new"] == 400
    assert from_notebook["record"].startswith(os.environ["PRICE_BENCH_RESULTS"])

    # The CLI computes everything again: no cached answer, no previous fit.
    for path in (price_bench_home / "cache").glob("predictions.sqlite*"):
        path.unlink()
    cli = subprocess.run(
        [sys.executable, "-m", "price_bench", "run", "keyword-heuristic", "--dataset", "demo", "--limit", "400", "--refit", "--json"],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    [outcome] = json.loads(cli.stdout)
    assert outcome["status"] == "complete" and outcome["new_items"] == 400 and outcome["cached_items"] == 0
    record = json.loads(open(outcome["record"]).read())
    assert record["dataset"]["fingerprint"] == from_notebook["fingerprint"]
    assert outcome["metrics"]["error"]["value"] == from_notebook["error"]
    assert from_notebook["mean_item_error"] == pytest.approx(from_notebook["error"], abs=1e-9)
