"""Engineered features from raw details and from flattened text."""

from __future__ import annotations

import math

import numpy as np
import pytest
from price_bench_classic.features import FeatureEncoder, raw_features, weight_to_pounds

from price_bench import Item


@pytest.mark.parametrize(
    "text, pounds",
    [
        ("1.5 pounds", 1.5),
        ("8 Ounces", 0.5),
        ("453.592 grams", 1.0),
        ("2 Kilograms", 2 / 0.453592),
        ("250 hundredths pounds", 2.5),
        ("no weight here", None),
    ],
)
def test_weight_to_pounds(text, pounds):
    result = weight_to_pounds(text)
    assert (result is None) if pounds is None else math.isclose(result, pounds, rel_tol=1e-9)


def test_details_win_over_text():
    item = Item(
        id="a",
        text="Widget. Weight 9 pounds, Brand Other",
        price=10.0,
        category="Electronics",
        details={"Item Weight": "8 ounces", "Best Sellers Rank": '{"Electronics": 300, "Cables": 100}', "Brand": "Sony"},
    )
    raw = raw_features(item)
    assert raw.weight_lb == 0.5
    assert raw.rank == 200.0
    assert raw.brand == "Sony"
    assert raw.category == "Electronics"


def test_package_dimensions_weight_and_dict_rank():
    item = Item(
        id="b",
        text="x",
        price=1.0,
        details={"Package Dimensions": "6.86 x 5.04 x 4.96 inches; 1.81 Pounds", "Best Sellers Rank": {"Our Brands": 1887, "Multivitamins": 307}},  # type: ignore[dict-item]
    )
    raw = raw_features(item)
    assert raw.weight_lb == pytest.approx(1.81)
    assert raw.rank == pytest.approx((1887 + 307) / 2)


def test_facts_parsed_from_flattened_text():
    text = (
        "Motorcraft YB3125 Fan Clutch\nPackage Quantity 1 Manufacturer Motorcraft, Brand Motorcraft, Model Fan Clutch, "
        "Weight 5 pounds, Dimensions 10 x 7.63 x 6.25 inches, Rank Automotive Replacement Engine Fan Clutches 583, Available 2007"
    )
    raw = raw_features(Item(id="c", text=text, price=1.0))
    assert raw.weight_lb == 5.0
    assert raw.rank == 583.0
    assert raw.brand == "Motorcraft"
    assert raw.text_length == len(text)


def test_empty_brand_value_is_not_the_next_key():
    raw = raw_features(Item(id="d", text="Thing, Brand Weight 4.9 ounces, Dimensions 8 x 8 inches", price=1.0))
    assert raw.brand is None
    assert raw.weight_lb == pytest.approx(4.9 / 16)


def test_encoder_imputes_train_means_and_flags_missing():
    train = [
        Item(id="1", text="a, Weight 2 pounds", price=1.0, category="Toys"),
        Item(id="2", text="b, Weight 4 pounds", price=2.0, category="Toys"),
        Item(id="3", text="c, Brand HP", price=3.0, category="Electronics"),
    ]
    encoder = FeatureEncoder().fit(train)
    rows = encoder.transform([Item(id="4", text="no facts", price=0.0, category="Unseen")] + train[2:])
    names = encoder.names
    assert rows.shape == (2, len(names))
    col = {n: i for i, n in enumerate(names)}
    assert rows[0, col["weight_lb"]] == 3.0 and rows[0, col["has_weight"]] == 0.0
    assert rows[0, col["category=unknown"]] == 1.0
    assert rows[1, col["top_brand"]] == 1.0 and rows[1, col["category=Electronics"]] == 1.0
    assert np.isfinite(rows).all()


def test_parse_quantities_reads_pack_power_capacity_size_and_weight():
    from price_bench_classic.features import parse_quantities

    text = (
        "Heater 2-Pack, 1500W 120V Space Heater with 64GB Storage and 2.5 Gallon Tank\n"
        "Package Quantity 1, Weight 5 pounds, Dimensions 10 x 7.5 x 6 inches, Battery 3000mAh"
    )
    q = parse_quantities(Item(id="q", text=text, price=1.0))
    assert q["pack"] == 2.0
    assert q["watts"] == 1500.0 and q["volts"] == 120.0
    assert q["storage_gb"] == 64.0
    assert q["volume_l"] == pytest.approx(2.5 * 3.785)
    assert q["longest_in"] == 10.0 and q["box_in3"] == pytest.approx(450.0)
    assert q["weight_lb"] == 5.0 and q["amp_hours"] == 3000.0


def test_parse_quantities_converts_units_and_ignores_absent_facts():
    from price_bench_classic.features import parse_quantities, quantity_tokens

    q = parse_quantities(Item(id="r", text="Cable, 1TB drive, 2 kW motor, Package Dimensions 25.4 cms (L) x 12.7 cms (W) x 2.54 cms (H)", price=1.0))
    assert q["storage_gb"] == 1000.0 and q["watts"] == 2000.0
    assert q["longest_in"] == pytest.approx(10.0) and q["box_in3"] == pytest.approx(50.0)
    assert "pack" not in q and "volts" not in q
    assert parse_quantities(Item(id="s", text="A plain widget", price=1.0)) == {}
    assert quantity_tokens({"watts": 1500.0, "pack": 2.0}) == ["q_pack_3", "q_watts_21"]
