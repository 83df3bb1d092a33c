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


def test_running_error_ends_at_the_mean_with_its_95_percent_band():
    svg = charts.running_error(_preds([10, -20, 30]), "p", chart_id="r")
    # mean |err| 20; sd 10; half-width 1.96 * 10 / sqrt(3) = 11.32
    assert "p: $20.00 ± $11.32" in svg


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
