"""`price-bench leaderboard`: write (or check) the leaderboard pages from the result records."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("leaderboard")
@click.option("--results", "results_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Result records folder [default: $PRICE_BENCH_RESULTS or ./results].")
@click.option("--dataset", default=None, help="Only this dataset [default: every dataset with records].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("leaderboards"),
              show_default=True, help="Where <dataset>.md and <dataset>.html go.")
@click.option("--no-product-text/--product-text", "no_product_text", default=None,
              help="Leave out every product text (raw model outputs) for data that must not be redistributed. "
                   "[default: keep each page's current mode; new pages include it]")
@click.option("--readme", type=click.Path(dir_okay=False, path_type=Path), default=Path("README.md"), show_default=True,
              help="Also put each dataset's table between <!-- leaderboard:NAME:start --> and "
                   "<!-- leaderboard:NAME:end --> in this file (untouched when it has no such markers).")
@click.option("--check", is_flag=True, help="Write nothing; fail if the pages in --out differ from what the records give "
              "(tables and text; the SVG charts are not compared byte for byte, since they depend on matplotlib's version).")
def leaderboard(results_dir: Path | None, dataset: str | None, out_dir: Path, no_product_text: bool | None,
                readme: Path, check: bool) -> None:
    """Build leaderboards/<dataset>.md and .html from result records (never reruns a predictor).

    One row per predictor and config: its latest complete run on the dataset's
    current fingerprint. --limit runs and runs on other fingerprints are left
    out (the page says so); skipped and failed predictors are listed with the
    reason. The same records always give byte-identical files.
    """
    from price_bench import leaderboard as lb
    from price_bench.results.store import default_results_dir

    results_dir = results_dir or default_results_dir()
    product_text = None if no_product_text is None else not no_product_text
    # a LeaderboardError, ResultError or OSError (a read-only --out folder) is one line: cli.errors, via the root group
    if check:
        problems = lb.check(results_dir, out_dir, dataset, product_text, readme)
    else:
        plan = lb.write(results_dir, out_dir, dataset, product_text, readme)
    if check:
        if problems:
            for line in problems:
                click.echo(line, err=True)
            raise click.ClickException(
                f"{len(problems)} leaderboard file(s) out of date: run `price-bench leaderboard` and commit the result "
                "(charts are not compared, only the tables and text the records determine)")
        click.echo(f"leaderboards in {out_dir} match the records in {results_dir}")
        return
    for message in plan.messages:
        click.echo(message, err=True)
    for path in plan.files:
        click.echo(f"wrote {path}")


def register(cli: click.Group) -> None:
    """Add ``leaderboard`` to ``cli``."""
    cli.add_command(leaderboard)
