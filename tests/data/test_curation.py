"""Per-record rules of the curation recipe, and whole-run selection (no shared data needed)."""

from __future__ import annotations

import json

import pytest

from price_bench.data.catalog import build_dataset
from price_bench.data.curation import (
    _NORMALISE_DELETE,
    Recipe,
    assemble_text,
    clean_details,
    details_text,
    get_recipe,
    lower_utf8,
    normalised,
    parse_raw_price,
    scrub_part_numbers,
)
from price_bench.data.dataset import DatasetError, datasets_dir
from price_bench.data.neardup import near_duplicates


@pytest.mark.parametrize(
    "raw, expected",
    [
        (12.5, (12.5, None)),
        (7, (7.0, None)),
        ("210.46", (210.46, None)),
        ("$1,299.99", (1299.99, None)),
        (" $12.34 ", (12.34, None)),
        (None, (None, "no price")),
        ("None", (None, "no price")),
        ("", (None, "no price")),
        ("$10.99 - $15.99", (None, "unparseable price")),
        (".a-box-inner{background-color:#fff}", (None, "unparseable price")),
        ("twelve", (None, "unparseable price")),
        (float("nan"), (None, "unparseable price")),
        (-3.0, (None, "unparseable price")),
        (True, (None, "unparseable price")),
        ([12], (None, "unparseable price")),
    ],
)
def test_parse_raw_price(raw, expected):
    assert parse_raw_price(raw) == expected


def test_scrub_drops_part_numbers_but_keeps_words_and_plain_numbers():
    text = "Filter B07XJ8C8F5 fits WHIRLPOOL models, 1234567 units, model W10295370A and GE"
    assert scrub_part_numbers(text) == "Filter fits WHIRLPOOL models, 1234567 units, model and GE"


def test_assemble_text_scrubs_detail_keys_and_keeps_order():
    recipe = get_recipe(None)
    details = {"Brand": "Acme", "Best Sellers Rank": "#12 in Kitchen", "Item model number": "AC1234567", "Material": "Steel"}
    text = assemble_text("Acme Kettle", ["Boils fast.\n\nQuiet."], ["1.7 L", "Auto off"], details, recipe)
    assert text.splitlines() == ["Acme Kettle", "Boils fast. Quiet.", "1.7 L Auto off", "Brand: Acme; Material: Steel"]


def test_assemble_text_truncates_to_max_chars():
    recipe = Recipe(max_chars=200, max_chars_each=150)
    text = assemble_text("T", "word " * 100, "feat " * 100, {}, recipe)
    assert len(text) <= 200 and text.startswith("T\nword word")


# Characters whose lower case is special: final/medial sigma, dotted capital I (two characters), Kelvin sign
# (lowers to ASCII k), sharp s, titlecase digraphs, a lone surrogate, and ones that do not change.
_CASE_EDGES = "ΣσςİıKßẞÉéАяǅǄǆ\u0345\u0399\u0307\u00ad\u200b\ud800™®’–"


@pytest.mark.parametrize("context", ["{}", "A{}", "{}A", "a{} b", "ΑΣ{}", "x{}Σ y", "{} Σ", "Ab12{}-cd"])
def test_lower_utf8_is_str_lower_encoded(context):
    for char in _CASE_EDGES + "Az09 .-":
        text = context.format(char)
        assert lower_utf8(text) == text.lower().encode("utf-8", "surrogatepass")
        assert normalised(text) == text.lower().encode("utf-8", "surrogatepass").translate(None, _NORMALISE_DELETE)
    mixed = "Premium ÉTUI café ΣΟΦΙΑ İstanbul K ’quoted’ ™ 12 \ud800 end"
    assert lower_utf8(mixed) == mixed.lower().encode("utf-8", "surrogatepass")
    assert lower_utf8(mixed, b" ") == mixed.lower().encode("utf-8", "surrogatepass").replace(b" ", b"")


@pytest.mark.slow
def test_lower_utf8_matches_str_lower_for_every_code_point():
    for code in range(0x110000):
        for text in (chr(code), f"aΣ{chr(code)}"):
            assert lower_utf8(text) == text.lower().encode("utf-8", "surrogatepass"), hex(code)


@pytest.mark.parametrize("details", [
    {"Brand": "Acme", "Color": "Red"},
    {"Brand": "Acme", "Part Number": "X1", "Color": "", "Size": "L"},
    {"Brand": "", "Item model number": "Y", "Best Sellers Rank": "#1"},
    {"Brand": "Acme", "Count": 3, "Weight": None, "Flag": False, "Ratio": 1.5},
    {"Note": " two\n lines  here ", "Brand": "Acme"},
    {},
])
def test_details_text_formats_each_kept_pair_in_order(details):
    drop = frozenset(get_recipe(None).drop_detail_keys)
    expected = "; ".join(f"{k}: {v}" for k, v in details.items() if k not in drop and v)
    assert details_text(details, drop, 3000) == " ".join(expected.split())
    assert details_text(details, drop, 12) == " ".join(expected.split())[:12].strip()


def test_clean_details_accepts_dict_and_json_string_and_flags_garbage():
    assert clean_details({"A": "1", "B": None, "C": {"x": 1}}) == ({"A": "1", "C": '{"x": 1}'}, True)
    assert clean_details('{"Brand": "Fender"}') == ({"Brand": "Fender"}, True)
    assert clean_details("not json at all") == ({}, False)
    assert clean_details([1, 2]) == ({}, False)
    assert clean_details({"\n  Item Weight: ": "2 lb"}, tidy_keys=True) == ({"Item Weight": "2 lb"}, True)


def test_near_duplicates_finds_small_edits_not_different_products():
    base = "Acme stainless steel kettle with 1.7 litre capacity, auto shut off, boil dry protection and a cordless base " * 3
    edited = base.replace("cordless", "wireless", 1).replace("Acme", "ACME", 1)
    other = "Heavy duty garden hose 50 ft with brass fittings, kink resistant and UV protected for outdoor use " * 3
    found = near_duplicates([other, edited], [base])
    assert found == {1: 0}


def test_build_dedups_by_parent_asin_and_text(tmp_path, raw_records, write_jsonl):
    records = raw_records(60)
    same_asin = dict(records[1], title="Another title entirely for the same parent asin")
    same_text = dict(records[2], parent_asin="ZZZ0000001")
    path = write_jsonl(tmp_path / "raw.jsonl", records + [same_asin, same_text])
    ds = build_dataset("d", str(path))
    rejections = ds.manifest["counts"]["rejections"]
    assert rejections["duplicate parent_asin"] == 1
    assert rejections["duplicate text"] == 1
    assert sum(ds.manifest["sizes"].values()) == 60
    ids = [i.id for split in ("train", "validation", "test") for i in ds.items(split)]
    assert len(set(ids)) == 60 and "ZZZ0000001" not in ids


def test_split_sizes_and_sampling_are_seeded(tmp_path, raw_records, write_jsonl):
    path = write_jsonl(tmp_path / "raw.jsonl", raw_records(300))
    recipe = Recipe(name="small", max_items=200, seed=3)
    a = build_dataset("a", str(path), recipe=recipe)
    b = build_dataset("b", str(path), recipe=recipe)
    c = build_dataset("c", str(path), recipe=Recipe(name="small", max_items=200, seed=4))
    assert a.manifest["sizes"] == {"train": 160, "validation": 20, "test": 20}
    assert a.manifest["counts"]["rejections"]["not sampled"] == 100
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert [i.id for i in a.test] == [i.id for i in b.test]


def test_price_balance_flattens_the_bands(tmp_path, raw_records, write_jsonl):
    records = raw_records(600)
    path = write_jsonl(tmp_path / "raw.jsonl", records)
    bands = (0.5, 50, 1000)
    flat = build_dataset("flat", str(path), recipe=Recipe(name="f", max_items=200, price_bands=bands, price_balance=1.0))
    asis = build_dataset("asis", str(path), recipe=Recipe(name="a", max_items=200, price_bands=bands, price_balance=0.0))

    def cheap_share(ds):
        prices = [i.price for s in ("train", "validation", "test") for i in ds.items(s)]
        return sum(p < 50 for p in prices) / len(prices)

    population = sum(r["price"] < 50 for r in records) / len(records)
    assert abs(cheap_share(flat) - 0.5) < 0.1
    assert abs(cheap_share(asis) - population) < 0.1


def test_category_weights_shift_the_sample(tmp_path, raw_records, write_jsonl):
    path = write_jsonl(tmp_path / "raw.jsonl", raw_records(600))
    ds = build_dataset("w", str(path), recipe=Recipe(name="w", max_items=200, price_balance=0, category_weights={"Appliances": 0.02}))
    items = [i for s in ("train", "validation", "test") for i in ds.items(s)]
    unweighted = build_dataset("u", str(path), recipe=Recipe(name="u", max_items=200, price_balance=0))
    share = sum(i.category == "Appliances" for i in items)
    baseline = sum(i.category == "Appliances" for s in ("train", "validation", "test") for i in unweighted.items(s))
    assert baseline >= 12 and share <= 4


def test_categories_filter_and_unknown_category(tmp_path, raw_records, write_jsonl):
    path = write_jsonl(tmp_path / "raw.jsonl", raw_records(300))
    ds = build_dataset("c", str(path), categories=["Appliances", "Electronics"])
    cats = {i.category for s in ("train", "validation", "test") for i in ds.items(s)}
    assert cats == {"Appliances", "Electronics"}
    assert ds.manifest["counts"]["rejections"]["category not selected"] > 100
    with pytest.raises(DatasetError, match="unknown category 'Kitchen_Sinks'"):
        build_dataset("c2", str(path), categories=["Kitchen_Sinks"])
    with pytest.raises(DatasetError, match="unknown category 'Software'.*no record"):
        build_dataset("c3", str(path), categories=["Software"])


def test_test_source_is_the_test_split_and_wins_duplicates(tmp_path, raw_records, write_jsonl):
    records = raw_records(120)
    test_path = write_jsonl(tmp_path / "mine.jsonl", records[:20])
    train_path = write_jsonl(tmp_path / "train.jsonl", records[15:])  # 5 overlap with the test file
    ds = build_dataset("t", train_source=str(train_path), test_source=str(test_path))
    assert [i.id for i in ds.test] and {i.id for i in ds.test} == {r["parent_asin"] for r in records[:20]}
    train_ids = {i.id for i in ds.train} | {i.id for i in ds.validation}
    assert not train_ids & {i.id for i in ds.test}
    assert len(train_ids) == 100
    assert ds.manifest["counts"]["rejections"]["duplicate parent_asin"] == 5
    roles = {s["label"]: s["role"] for s in ds.manifest["sources"]}
    assert roles == {str(test_path): "test", str(train_path): "train"}


def test_curated_items_in_jsonl_csv_and_parquet(tmp_path):
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"id": f"i{n}", "text": f"Product number {n} with a long enough description of features", "price": 5 + n, "category": "Toys_and_Games"}
        for n in range(30)
    ]
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with (tmp_path / "items.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "text", "price", "category"])
        writer.writeheader()
        writer.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "items.parquet")
    fingerprints = set()
    for name in ("items.jsonl", "items.csv", "items.parquet"):
        ds = build_dataset(name.replace(".", "-"), str(tmp_path / name))
        assert ds.manifest["sources"][0]["format"] == "items"
        assert sum(ds.manifest["sizes"].values()) == 30
        fingerprints.add(ds.fingerprint)
    assert len(fingerprints) == 1  # same items whatever the container


def test_recipe_is_recorded_in_full():
    recipe = get_recipe("reference-2023@1")
    assert recipe.id == "reference-2023@1"
    assert recipe.min_price == 0.5 and recipe.max_price == 999.49
    with pytest.raises(DatasetError, match="unknown recipe"):
        get_recipe("nope@9")


def test_manifest_carries_recipe_sources_counts(tmp_path, raw_records, write_jsonl):
    path = write_jsonl(tmp_path / "raw.jsonl", raw_records(50))
    ds = build_dataset("m", str(path))
    manifest = json.loads((datasets_dir() / "m" / "manifest.json").read_text())
    assert manifest["recipe"]["id"] == "reference-2023@1"
    assert manifest["recipe"]["drop_detail_keys"][1] == "Best Sellers Rank"
    assert manifest["sources"][0]["sha256"].startswith("sha256:")
    assert manifest["counts"]["read"] == 50
    assert set(manifest["counts"]["price_bands"]["test"]) == {"$0.5-10", "$10-25", "$25-50", "$50-100", "$100-200", "$200-500", "$500-1000"}
    assert manifest["fingerprint"] == ds.fingerprint and manifest["synthetic"] is False
    item = ds.train[0]
    assert item.title and "Best Sellers Rank" in item.details and "Best Sellers Rank" not in item.text
