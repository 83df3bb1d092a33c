"""Time `price-bench leaderboard` per dataset of a results folder (issue 14: tiers, labels, new charts).

    python bench/leaderboard_build.py [--results results]

Prints, per dataset: wall seconds of the whole render (records, sidecars, pairwise tie tests,
charts), of the tie tests alone, the rows, tiers and page sizes. Run it from a quiet machine for
targets; under load compare two versions side by side instead.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args()

    from price_bench import leaderboard as lb
    from price_bench.leaderboard.build import _load_predictions, rank_board
    from price_bench.leaderboard.select import Entry, group_by_dataset, select_board
    from price_bench.results.store import load_records

    groups = group_by_dataset([Entry(p, r) for p, r in load_records(args.results)])
    print("| dataset | rows | tiers | pairs tested | tie tests s | whole page s | .md bytes | .html bytes |")
    print("|---|---|---|---|---|---|---|---|")
    for name, group in groups.items():
        board = select_board(name, group)
        if board is None:
            continue
        predictions = [_load_predictions(e)[0] for e in board.ranked]
        started = time.perf_counter()
        ranking, _ = rank_board(board, predictions)
        ties = time.perf_counter() - started
        started = time.perf_counter()
        plan = lb.plan(args.results, Path("/nonexistent-out"), dataset=name)
        whole = time.perf_counter() - started
        sizes = {p.suffix: len(text.encode()) for p, text in plan.files.items()}
        tiers = max(ranking.tiers) if ranking else 0
        print(f"| {name} | {len(board.ranked)} | {tiers} | {ranking.n_pairs if ranking else 0} | {ties:.2f} | {whole:.1f} "
              f"| {sizes.get('.md', 0):,} | {sizes.get('.html', 0):,} |")


if __name__ == "__main__":
    main()
