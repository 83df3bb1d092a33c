"""The matplotlib SVG charts: Hits bands, the running-error band, escaping, determinism."""

from __future__ import annotations

import re

import pytest

from price_bench.leaderboard import charts
from price_bench.results.schema import ItemPrediction


@pytest.mark.parametrize("truth, guess, band", [
    (100.0, 139.9, "green"),    # $39.90 off
    (1000.0, 1199.0, "green"),  # 19.9% off
    (100.0, 179.0, "orange"),   # $79 off
    (1000.0, 1399.0, "orange"),  # 39.9% off
    (100.0, 181.0, "red"),
    (1000.0, 600.0, "red"),
    (0.0, 50.0, "orange"),      # no relative band for a zero truth
])
def test_hits_bands(truth, guess, band):
    assert charts.hits_band(truth, guess) == band


def _preds(errors):
    return [ItemPrediction(id=str(i), truth=100.0, guess=100.0 + e, parsed=100.0 + e) for i, e in enumerate(errors)]


def test_running_error_ends_at_the_mean_with_the_records_bootstrap_ci():
    svg = charts.running_error(_preds([10, -20, 30]), "p", chart_id="r", ci=(11.5, 28.0))
    assert "p: $20.00 ($11.50–$28.00)" in svg and "95% bootstrap band" in svg
    ks, low, high = charts.running_band(__import__("numpy").array([10.0, 20.0, 30.0] * 50))
    assert ks[-1] == 150 and low[-1] < 20.0 < high[-1]


def test_error_chart_clips_an_outlier_and_survives_non_finite_values():
    svg = charts.error_bars(["a", "b", "huge", "inf"], [60.0, 65.0, 900.0, float("inf")],
                            [(55.0, 66.0), (60.0, 71.0), (100.0, 1e308), (None, None)], chart_id="e", tiers=[1, 1, 2, None])
    assert "$900.00 ▶" in svg and "off the scale" in svg and "inf" not in svg.replace("info", "")
    low, limit = charts.error_scale([60.0, 900.0], [66.0, 1e308], [55.0, 100.0])
    assert limit < 300 and low < 55.0


def test_pareto_front_and_frontier_chart():
    assert charts.pareto_front([(1.0, 100.0), (2.0, 80.0), (3.0, 90.0), (4.0, 60.0)]) == [0, 1, 3]
    svg = charts.cost_frontier([("a", 1e-5, 100.0, 1), ("b", 1e-3, 60.0, 1), ("c", 0.0, 50.0, 1)], "time", chart_id="f")
    assert "Pareto front" in svg and "nothing to plot" not in svg  # c (free: no place on a log axis) is left out
    assert "nothing to plot" in charts.cost_frontier([("c", 0.0, 50.0, 1)], "time", chart_id="g")


def test_calibration_chart_draws_one_line_per_row():
    preds = [ItemPrediction(id=str(i), truth=float(t), guess=float(t) * 0.5, parsed=1.0) for i, t in enumerate(range(5, 900, 5))]
    svg = charts.band_calibration([("half", 1, preds), ("empty", 2, [])], chart_id="c")
    assert "half" in svg and "×0.5" in svg


def test_scatter_counts_each_band_in_its_legend():
    preds = [ItemPrediction(id="a", truth=100, guess=110, parsed=110), ItemPrediction(id="b", truth=100, guess=170, parsed=170),
             ItemPrediction(id="c", truth=100, guess=400, parsed=400), ItemPrediction(id="d", truth=100, guess=-5, parsed=-5)]
    svg = charts.truth_vs_guess(preds, "p", chart_id="s")
    assert "within $40 or 20%: 25%" in svg and "within $80 or 40%: 25%" in svg and "further: 50%" in svg


def test_svg_text_is_escaped_and_output_is_byte_stable():
    args = (["<script>alert(1)</script> & co", "b"], [50.0, 70.0], [(45.0, 55.0), (None, None)])
    first = charts.error_bars(*args, chart_id="e")
    assert first == charts.error_bars(*args, chart_id="e")
    assert "<script>" not in first and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in first
    assert "dc:date" not in first.lower() and first.startswith("<svg ")


def test_ids_are_namespaced_per_chart():
    svg = charts.truth_vs_guess(_preds([1, 2, 50, 300]), "p", chart_id="one")
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert ids and all(i.startswith("one-") for i in ids)
    refs = re.findall(r'(?:url\(#|href="#)([^)"]+)', svg)
    assert all(r.startswith("one-") for r in refs)


def test_dollar_signs_are_not_math():
    svg = charts.error_bars(["a"], [12.5], [(10.0, 15.0)], chart_id="e")
    assert "$12.50" in svg


def test_many_points_are_one_embedded_image_and_still_byte_stable():
    preds = [ItemPrediction(id=str(i), truth=10.0 + i, guess=12.0 + i * 1.1, parsed=1.0) for i in range(charts.RASTERIZE_ABOVE + 1)]
    first = charts.truth_vs_guess(preds, "p", chart_id="big")
    assert first.count("<image") == 1 and 'xlink:href="data:image/png;base64,' in first
    assert first == charts.truth_vs_guess(preds, "p", chart_id="big")


def test_page_css_colours_tiers_like_the_charts():
    from importlib import resources

    css = resources.files("price_bench.leaderboard").joinpath("style.css").read_text()
    for tier, colour in enumerate(charts.TIER_COLOURS, 1):
        assert f".tier-{tier} {{ --tier: {colour}; }}" in css
    assert f".tier-more {{ --tier: {charts.MORE_TIERS}; }}" in css
    assert charts.tier_colour(len(charts.TIER_COLOURS) + 1) == charts.MORE_TIERS
