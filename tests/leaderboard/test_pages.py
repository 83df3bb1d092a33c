"""`price-bench leaderboard`: the Markdown and HTML pages, determinism, --check, escaping, product text."""

from __future__ import annotations

import re
import shutil

import pytest

from price_bench import leaderboard as lb


@pytest.fixture
def pages(shared_site):
    """Pages written from the demo records: {name: text}."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((shared_site / "leaderboards").iterdir())}


def test_cli_writes_and_names_the_files(results_dir, tmp_path, cli, shared_site):
    out = tmp_path / "leaderboards"
    result = cli("leaderboard", "--results", results_dir, "--out", out, "--dataset", "amazon-course")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"wrote {out / 'amazon-course.md'}", f"wrote {out / 'amazon-course.html'}"]
    assert (out / "amazon-course.html").read_bytes() == (shared_site / "leaderboards" / "amazon-course.html").read_bytes()


def test_one_md_and_one_html_per_dataset(pages):
    assert sorted(pages) == ["amazon-course.html", "amazon-course.md", "demo.html", "demo.md"]


def test_markdown_table_rows_and_header(pages, kit):
    md = pages["demo.md"]
    rows = [line for line in md.splitlines() if re.match(r"\| \d+ \| [\d-]+ \| ", line)]
    assert [row.split(" | ")[2] for row in rows][-1] == "constant-mean"
    assert len(rows) == 5
    assert "# Leaderboard: demo (synthetic)" in md
    assert kit.FP_NEW in md
    assert "demo-synthetic@1" in md
    assert "Latest run: 2026-11-23 10:00 UTC" in md
    assert (r"| Tier | Rank | Predictor | Error \$ ↓ | vs above | vs best | RMSLE ↓ | Hits % ↑ | R² ↑ | Coverage ↑ | Cost \$ ↓ "
            r"| Fit time ↓ | Time / item ↓ | n |") in md
    frontier = next(r for r in rows if "| frontier · gpt-4o-mini |" in r)
    assert "| 98.0% |" in frontier and r"| \$0.12 |" in frontier and "| — |" in frontier  # coverage, cost, no fit
    assert "$" not in md.replace(r"\$", "")  # GitHub would read $...$ as math


def test_left_out_runs_and_not_run_predictors_are_explained(pages, kit):
    for page in (pages["demo.md"], pages["demo.html"]):
        assert "1 run on another version of this dataset left out: constant-median (fingerprint " + kit.FP_OLD[:12] in page
        assert "1 --limit run (a subset of the items) left out." in page
        assert "OPENAI\\_API\\_KEY is not set" in page or "OPENAI_API_KEY is not set" in page
        assert "CUDA out of memory &lt;while loading&gt;" in page


def test_real_dataset_is_not_labelled_synthetic(pages):
    assert "(synthetic)" not in pages["amazon-course.md"]
    assert "badge synthetic" not in pages["amazon-course.html"] and "badge real" in pages["amazon-course.html"]
    assert "badge synthetic" in pages["demo.html"]


def test_breakdowns_by_category_and_price_band(pages):
    md = pages["demo.md"]
    assert "## Error by category" in md and "## Error by price band" in md
    assert "| Office\\_Products | 60 |" in md
    band = md.index("## Error by price band")
    assert md.index(r"&lt;\$10", band) < md.index(r"\$10-25", band) < md.index(r"\$200-500", band) < md.index(r"\$500+", band)


def test_same_records_give_byte_identical_files(shared_site, tmp_path):
    copy = tmp_path / "elsewhere" / "results"
    shutil.copytree(shared_site / "results", copy)
    second = lb.write(copy, tmp_path / "b")
    assert len(second.files) == 4
    for path in second.files:
        assert path.read_bytes() == (shared_site / "leaderboards" / path.name).read_bytes(), path.name


def test_html_is_self_contained(pages):
    html = pages["demo.html"]
    assert "<link" not in html and " src=" not in html and "@import" not in html and "url(http" not in html
    external = set(re.findall(r"""(?:href|src)\s*=\s*["']([^"'#][^"']*)""", html))
    assert external == set(), external
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert html.count("<svg") >= 1 + 2 * 5
    assert html.count("<script>") == 1  # the sort script only


def test_svg_ids_are_unique_on_the_page(pages):
    ids = re.findall(r'\bid="([^"]+)"', pages["demo.html"])
    assert len(ids) == len(set(ids))
    refs = set(re.findall(r'url\(#([^)]+)\)', pages["demo.html"]))
    assert refs and refs <= set(ids)


def test_record_strings_are_escaped(pages, kit):
    html = pages["demo.html"]
    assert kit.INJECTION not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<b>bold" not in html
    assert kit.INJECTION not in pages["demo.md"] and "&lt;while loading&gt;" in pages["demo.md"]


def test_no_product_text_leaves_out_raw_outputs_and_is_kept(results_dir, tmp_path, cli):
    out = tmp_path / "lb"
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--dataset", "demo", "--no-product-text").exit_code == 0
    html = (out / "demo.html").read_text()
    assert "Price is $" not in html and "alert(1)" not in html and "cannot tell" not in html
    assert "Raw output" not in html and "Product text omitted" in html
    assert "Worst misses (titles and raw outputs omitted)" in html and "Title<" not in html
    assert "product-text: omitted" in (out / "demo.md").read_text().splitlines()[0]
    # Regenerating without the flag keeps the page's mode; --product-text switches it back.
    before = html
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--dataset", "demo").exit_code == 0
    assert (out / "demo.html").read_text() == before
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--dataset", "demo", "--check").exit_code == 0
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--dataset", "demo", "--product-text").exit_code == 0
    assert "Price is $" in (out / "demo.html").read_text()


@pytest.mark.slow
def test_check_passes_then_fails_on_edit_missing_and_stale(results_dir, tmp_path, cli, kit):
    out = tmp_path / "lb"
    assert cli("leaderboard", "--results", results_dir, "--out", out).exit_code == 0
    ok = cli("leaderboard", "--results", results_dir, "--out", out, "--check")
    assert ok.exit_code == 0 and "match" in ok.output

    # Chart bytes (matplotlib-version dependent) are not compared; the tables around them are.
    html = out / "demo.html"
    original = html.read_text()
    assert "<svg" in original
    html.write_text(original.replace("<svg", "<svg data-other-matplotlib='1'", 1))
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--check").exit_code == 0
    html.write_text(original.replace("constant-mean", "constant-mean*", 1))
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--check").exit_code == 1
    html.write_text(original)

    page = out / "demo.md"
    page.write_text(page.read_text().replace("constant-mean", "constant-mean*"))
    bad = cli("leaderboard", "--results", results_dir, "--out", out, "--check")
    assert bad.exit_code == 1
    assert f"{page}: differs from the records (first at line" in bad.output
    assert "out of date" in bad.output

    page.unlink()
    assert f"{page}: missing" in cli("leaderboard", "--results", results_dir, "--out", out, "--check").output

    # A new record changes the page: the committed one is then out of date.
    assert cli("leaderboard", "--results", results_dir, "--out", out).exit_code == 0
    rec, preds = kit.record("constant-median", preds=kit.predictions("constant"), finished="2026-11-25T10:00:00+00:00")
    from price_bench.results.store import write_record

    write_record(results_dir, rec, preds)
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--check").exit_code == 1

    shutil.rmtree(results_dir / "amazon-course")
    assert cli("leaderboard", "--results", results_dir, "--out", out).exit_code == 0
    stale = cli("leaderboard", "--results", results_dir, "--out", out, "--check")
    assert stale.exit_code == 1 and "amazon-course.md: no result records for it any more (stale)" in stale.output


def test_check_ignores_hand_written_files(results_dir, tmp_path, cli):
    out = tmp_path / "lb"
    out.mkdir()
    (out / "README.md").write_text("# Leaderboards\n\nMade by price-bench leaderboard.\n")
    assert cli("leaderboard", "--results", results_dir, "--out", out).exit_code == 0
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--check").exit_code == 0


def test_unknown_dataset_is_a_one_line_error(results_dir, tmp_path, cli):
    result = cli("leaderboard", "--results", results_dir, "--out", tmp_path, "--dataset", "nope")
    assert result.exit_code == 1
    assert "no result records for dataset 'nope'" in result.output and "amazon-course, demo" in result.output
    assert "Traceback" not in result.output


def test_bad_record_is_skipped_with_a_line_naming_the_file(results_dir, tmp_path, cli):
    broken = next((results_dir / "demo" / "frontier").glob("*.json"))
    broken.write_text('{"run_id": "x"')
    result = cli("leaderboard", "--results", results_dir, "--out", tmp_path)
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert any(line.startswith("warning: skipped") and str(broken) in line for line in result.output.splitlines())


def test_bad_sidecar_line_is_a_one_line_error(results_dir, tmp_path, cli):
    sidecar = next((results_dir / "demo" / "frontier").glob("*.predictions.jsonl"))
    sidecar.write_text(sidecar.read_text() + "not json\n")
    result = cli("leaderboard", "--results", results_dir, "--out", tmp_path)
    assert result.exit_code == 1 and f"{sidecar}:301: bad prediction row" in result.output


def test_dataset_name_unusable_as_a_file_name_is_refused(tmp_path, kit, cli):
    from price_bench.results.store import ResultError, write_record

    rec, preds = kit.record("constant-mean", preds=kit.predictions("constant", n=20), dataset="bad name")
    with pytest.raises(ResultError, match="invalid dataset name 'bad name'"):
        write_record(tmp_path / "results", rec, preds)
    planted = tmp_path / "results" / "x" / "constant-mean" / f"{rec.run_id}.json"
    planted.parent.mkdir(parents=True)
    planted.write_text(rec.model_dump_json())
    result = cli("leaderboard", "--results", tmp_path / "results", "--out", tmp_path / "out")
    assert result.exit_code == 0 and "invalid dataset name 'bad name'" in result.output and str(planted) in result.output
    assert not (tmp_path / "out").exists()


def test_missing_sidecar_is_said_on_the_page(results_dir, tmp_path):
    sidecar = next((results_dir / "demo" / "constant-mean").glob("*.predictions.jsonl"))
    sidecar.unlink()
    plan = lb.plan(results_dir, tmp_path)
    html = plan.files[tmp_path / "demo.html"]
    assert f"Per-item predictions file {sidecar.name} is not present." in html
    assert html.count("<svg") == 1 + 1 + 2 * 4  # Error, calibration, two per predictor with predictions
    assert "constant-mean" in html.split("id=\"leaderboard\"")[1].split("</table>")[0]  # still ranked, untested


def test_only_limit_runs_write_nothing_and_say_so(tmp_path, kit, cli):
    from price_bench.results.store import write_record

    rec, preds = kit.record("constant-mean", preds=kit.predictions("constant", n=20), limit=20)
    write_record(tmp_path / "results", rec, preds)
    result = cli("leaderboard", "--results", tmp_path / "results", "--out", tmp_path / "out")
    assert result.exit_code == 0 and "demo: only --limit runs, no leaderboard written" in result.output
    assert not (tmp_path / "out").exists()


def test_no_results_folder(tmp_path, cli):
    result = cli("leaderboard", "--results", tmp_path / "none", "--out", tmp_path / "out", "--check")
    assert result.exit_code == 0


def test_results_default_to_the_environment(results_dir, tmp_path, cli, monkeypatch):
    monkeypatch.setenv("PRICE_BENCH_RESULTS", str(results_dir))
    result = cli("leaderboard", "--out", tmp_path / "out", "--dataset", "amazon-course")
    assert result.exit_code == 0 and (tmp_path / "out" / "amazon-course.html").exists()


def test_readme_table_between_markers_is_written_and_checked(results_dir, tmp_path, cli):
    readme = tmp_path / "README.md"
    start, end = lb.readme_markers("demo")
    readme.write_text(f"# price-bench\n\nIntro.\n\n{start}\nold table\n{end}\n\nMore text.\n")
    out = tmp_path / "leaderboards"
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--readme", readme).exit_code == 0
    text = readme.read_text()
    assert text.startswith("# price-bench\n\nIntro.\n\n" + start + "\n| Tier | Rank | Predictor |")
    assert text.endswith(end + "\n\nMore text.\n") and "old table" not in text
    assert "[leaderboards/demo.md](leaderboards/demo.md)" in text and "[leaderboards/demo.html](leaderboards/demo.html)" in text
    row = next(line for line in text.splitlines() if "| constant-mean |" in line)
    assert re.match(r"\| \d \| [\d-]+ \| constant-mean \|", row)
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--readme", readme, "--check").exit_code == 0
    readme.write_text(text.replace("| constant-mean |", "| constant-mean (edited) |"))
    bad = cli("leaderboard", "--results", results_dir, "--out", out, "--readme", readme, "--check")
    assert bad.exit_code == 1 and f"{readme}: differs from the records" in bad.output


def test_readme_without_markers_is_left_alone(results_dir, tmp_path, cli):
    readme = tmp_path / "README.md"
    readme.write_text("# Hello\n")
    result = cli("leaderboard", "--results", results_dir, "--out", tmp_path / "lb", "--readme", readme, "--dataset", "amazon-course")
    assert result.exit_code == 0 and readme.read_text() == "# Hello\n" and "README" not in result.output


@pytest.mark.slow
def test_another_process_with_another_hash_seed_writes_the_same_bytes(shared_site, tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = tmp_path / "lb"
    subprocess.run([sys.executable, "-m", "price_bench", "leaderboard", "--results", str(shared_site / "results"),
                    "--out", str(out), "--readme", str(tmp_path / "none.md")], check=True, env=env, capture_output=True)
    for page in sorted((shared_site / "leaderboards").iterdir()):
        assert (out / page.name).read_bytes() == page.read_bytes(), page.name


def test_best_values_are_marked_only_where_they_differ(shared_site):
    from price_bench.leaderboard.build import main_table
    from price_bench.leaderboard.select import Entry, group_by_dataset, select_board
    from price_bench.results.store import load_records

    entries = [Entry(p, r) for p, r in load_records(shared_site / "results")]
    table = main_table(select_board("demo", group_by_dataset(entries)["demo"]))
    column = {h.label: i for i, h in enumerate(table.header)}
    best = lambda label: [row[2].display for row in table.rows if row[column[label]].best]  # noqa: E731
    assert best("Error $") == ["random-forest · n_estimators=300"]
    assert best("Hits %") == ["frontier · gpt-4o-mini"]
    assert best("Time / item") == []  # every run took the same time per item: nothing to single out
    assert sorted(best("Cost $")) == sorted(["random-forest · n_estimators=300", "random-forest · n_estimators=100",
                                             "linear-regression", "constant-mean"])


def test_markdown_renders_to_the_intended_text(pages, kit):
    """Through a CommonMark renderer with tables (markdown-it, as rich ships it): every escape lands as plain text."""
    from html.parser import HTMLParser

    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").enable("table").render(pages["demo.md"])

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.tags = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.rows[-1].append("")

        def handle_data(self, data):
            if self.rows and self.rows[-1]:
                self.rows[-1][-1] += data

    parser = Cells()
    parser.feed(rendered)
    parser.rows = [[cell.strip() for cell in row] for row in parser.rows]
    assert parser.rows[0][:4] == ["Tier", "Rank", "Predictor", "Error $ ↓"]
    assert parser.rows[1][:3] == ["1", parser.rows[1][1], "random-forest · n_estimators=300"]
    assert parser.rows[1][3].startswith("$") and "–$" in parser.rows[1][3]
    assert all(len(row) == 14 for row in parser.rows[:6])
    assert "script" not in parser.tags and "OPENAI_API_KEY is not set" in rendered
    assert "RuntimeError: CUDA out of memory &lt;while loading&gt;" in rendered
    assert "Office_Products" in rendered and "<em>" not in rendered


def test_a_dataset_with_no_complete_run_still_gets_a_page(tmp_path, kit):
    from price_bench.results.store import write_record

    for pid, status, reason in (("frontier", "skipped", "OPENAI_API_KEY is not set"), ("qlora", "failed", "boom")):
        rec, _ = kit.record(pid, status=status, reason=reason)
        write_record(tmp_path / "results", rec)
    plan = lb.plan(tmp_path / "results", tmp_path / "lb")
    md, html = plan.files[tmp_path / "lb" / "demo.md"], plan.files[tmp_path / "lb" / "demo.html"]
    assert "No complete run yet." in md and "- **frontier** — skipped: OPENAI\\_API\\_KEY is not set" in md
    assert "No complete run yet." in html and "<svg" not in html and "boom" in html


def test_worst_misses_show_titles_from_a_local_dataset_and_filter_by_category(results_dir, tmp_path, kit, price_bench_home):
    """With a local copy of the dataset (same fingerprint), misses carry titles; every category has its own worst rows."""
    import json

    from price_bench.data.dataset import write_dataset
    from price_bench.items import Item

    test = [Item(id=i, text=f"<b>Product</b> {i}\nmore text", price=t, category=c, title=f"Title <b>{i}</b>")
            for i, t, c in kit.items()]
    ds = write_dataset("demo", {"train": test[:5], "validation": test[:2], "test": test}, {"recipe": {"name": "t", "version": 1}})
    for path in (results_dir / "demo").rglob("*.json"):  # the records name this dataset's fingerprint
        data = json.loads(path.read_text())
        data["dataset"]["fingerprint"] = ds.fingerprint
        path.write_text(json.dumps(data))
    html = lb.plan(results_dir, tmp_path / "lb", dataset="demo").files[tmp_path / "lb" / "demo.html"]
    assert ">Title</th>" in html and "Title &lt;b&gt;B00000" in html and "<b>B0" not in html
    assert 'id="category-filter"' in html and '<option value="Office_Products">' in html
    assert 'data-extra="1" hidden' in html  # per-category rows wait for the filter
    omitted = lb.plan(results_dir, tmp_path / "lb2", dataset="demo", product_text=False).files[tmp_path / "lb2" / "demo.html"]
    assert "Title &lt;b&gt;" not in omitted


def test_check_does_not_depend_on_a_local_dataset_copy(results_dir, tmp_path, kit, price_bench_home, cli):
    """Titles come from the machine, not the records: a page written without a local copy checks clean where one exists, and back."""
    import json

    from price_bench.data.dataset import write_dataset
    from price_bench.items import Item

    out = tmp_path / "lb"
    assert cli("leaderboard", "--results", results_dir, "--out", out).exit_code == 0  # no local copy: no titles
    assert ">Title</th>" not in (out / "demo.html").read_text()
    test = [Item(id=i, text=f"Product {i}", price=t, category=c, title=f"Title {i}") for i, t, c in kit.items()]
    ds = write_dataset("demo", {"train": test[:5], "validation": test[:2], "test": test}, {"recipe": {"name": "t", "version": 1}})
    for path in (results_dir / "demo").rglob("*.json"):
        data = json.loads(path.read_text())
        data["dataset"]["fingerprint"] = ds.fingerprint
        path.write_text(json.dumps(data))
    assert cli("leaderboard", "--results", results_dir, "--out", out).exit_code == 0  # now the local copy gives titles
    with_titles = (out / "demo.html").read_text()
    assert ">Title</th>" in with_titles
    plain = lb.plan(results_dir, out, home=tmp_path / "empty-home").files[out / "demo.html"]
    assert ">Title</th>" not in plain
    (out / "demo.html").write_text(plain)  # as a machine without the dataset wrote it
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--check").exit_code == 0
    (out / "demo.html").write_text(with_titles)
    assert lb.check(results_dir, out) == []  # written with the local copy's titles: up to date too
    (out / "demo.html").write_text(plain.replace("constant-mean", "constant-mean*", 1))  # a real difference still fails
    assert cli("leaderboard", "--results", results_dir, "--out", out, "--check").exit_code == 1


def test_a_run_of_unknown_cost_is_left_off_the_cost_frontier(tmp_path, kit):
    """One priced run and one whose model no price list knows (cost None): the page builds, the chart plots the priced ones."""
    from price_bench.results.store import write_record

    runs = [kit.record("frontier", preds=kit.predictions("llm", 0.3, 6), config={"model": "gpt-4o-mini"}, cost=0.12),
            kit.record("openai-ft", preds=kit.predictions("llm", 0.4, 7), config={"model": "unlisted"}, cost=None),
            kit.record("random-forest", preds=kit.predictions("noisy", 0.5, 8), cost=0.01)]
    for rec, preds in runs:
        write_record(tmp_path / "results", rec, preds)
    html = lb.plan(tmp_path / "results", tmp_path / "out").files[tmp_path / "out" / "demo.html"]
    assert "Error against Cost per 1,000 items ($) with the Pareto front" in html
    assert "unknown" in html.split('id="leaderboard"')[1].split("</table>")[0]  # the table says so; the chart leaves it out
