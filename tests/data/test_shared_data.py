"""The dataset layer on the real records in ../shared/data (skipped when absent)."""

from __future__ import annotations

import json

import pytest

from price_bench.data.catalog import build_dataset
from price_bench.data.curation import ChunkContext, get_recipe, process_chunk
from price_bench.data.dataset import SPLITS
from price_bench.data.pipeline import NEAR_DUP_REASON
from price_bench.data.sources import SourceFile, hub_rows, read_chunks

pytestmark = pytest.mark.shared_data

HPC = "Health_and_Personal_Care.jsonl"


def _all_items(ds):
    return [item for split in SPLITS for item in ds.items(split)]


def test_all_434_priced_health_records_are_read_and_unpriced_rejected(shared_2023):
    ds = build_dataset("real", str(shared_2023))
    by_file = {s["label"].rsplit("/", 1)[-1]: s for s in ds.manifest["sources"]}
    assert by_file[HPC]["records"] == 434 and by_file[HPC]["accepted"] == 434
    assert by_file["Musical_Instruments.jsonl"]["accepted"] == 1  # price "210.46", details a JSON string
    assert by_file["_unpriced_or_bad_sample.jsonl"]["records"] == 300
    assert by_file["_unpriced_or_bad_sample.jsonl"]["accepted"] == 0
    counts = ds.manifest["counts"]
    assert counts["rejections"]["no price"] == 300  # 299 null and one "None"
    assert counts["problems_total"] == 0
    items = _all_items(ds)
    # 435 accepted; two Health records repeat another's text; nothing else may go
    assert counts["rejections"]["duplicate text"] == 2
    assert len(items) == 433 - counts["rejections"].get(NEAR_DUP_REASON, 0)
    assert {i.category for i in items} == {"Health_and_Personal_Care", "Musical_Instruments"}
    assert all(0.5 <= i.price <= 999.49 and len(i.text) >= 100 for i in items)
    fender = next(i for i in items if i.category == "Musical_Instruments")
    assert fender.price == 210.46 and "Best Sellers Rank" in fender.details and "Best Sellers Rank" not in fender.text


def test_2018_format_prices_parsed_and_garbage_rejected(shared_data):
    ds = build_dataset("r2018", str(shared_data / "amazon-2018-raw"))
    formats = {s["format"] for s in ds.manifest["sources"]}
    assert formats == {"raw2018"}
    rejections = ds.manifest["counts"]["rejections"]
    assert rejections["no price"] == 37  # empty strings
    assert rejections["unparseable price"] == 1  # scraped CSS in the price field
    assert ds.manifest["counts"]["read"] == 100
    items = _all_items(ds)
    assert len(items) == 62 - rejections.get("text too short", 0) - rejections.get("duplicate text", 0) - rejections.get(NEAR_DUP_REASON, 0)
    raw = {r["asin"]: r for r in map(json.loads, (shared_data / "amazon-2018-raw" / "Appliances.jsonl").open())}
    for item in items:
        assert f"${item.price:,.2f}" == raw[item.id]["price"]


def test_fingerprint_and_bytes_stable_across_builds(shared_2023, tmp_path):
    a = build_dataset("a", str(shared_2023), home=tmp_path / "one")
    b = build_dataset("b", str(shared_2023), home=tmp_path / "two")
    assert a.fingerprint == b.fingerprint
    for split in SPLITS:
        assert (a.path / f"{split}.parquet").read_bytes() == (b.path / f"{split}.parquet").read_bytes()
    manifest_a = json.loads((a.path / "manifest.json").read_text())
    manifest_b = json.loads((b.path / "manifest.json").read_text())
    assert {k: v for k, v in manifest_a.items() if k != "name"} == {k: v for k, v in manifest_b.items() if k != "name"}


def test_multiprocess_build_gives_the_same_dataset(shared_2023, tmp_path):
    one = build_dataset("one", str(shared_2023), home=tmp_path / "one")
    two = build_dataset("two", str(shared_2023), home=tmp_path / "two", workers=2)
    assert one.fingerprint == two.fingerprint


def test_planted_near_duplicate_across_train_and_test_is_caught(shared_2023, tmp_path):
    records = [json.loads(line) for line in (shared_2023 / HPC).open()]
    test_records, train_records = records[:40], records[40:]
    victim = test_records[7]
    planted = dict(victim, parent_asin="PLANTED001", title=victim["title"] + " (New Version)")
    planted["description"] = [d.replace(" the ", " a ", 2) for d in victim["description"]] or ["Improved formula."]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test_records))
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train_records[:200] + [planted] + train_records[200:]))
    ds = build_dataset("leak", train_source=str(tmp_path / "train.jsonl"), test_source=str(tmp_path / "test.jsonl"))
    seen_ids = {i.id for i in ds.train} | {i.id for i in ds.validation}
    assert "PLANTED001" not in seen_ids
    assert victim["parent_asin"] in {i.id for i in ds.test}
    assert ds.manifest["counts"]["rejections"][NEAR_DUP_REASON] == 1


def test_hub_streaming_path_reads_the_same_records_as_the_local_reader(shared_2023, tmp_path):
    """The Hub code path (datasets JSON builder, streaming) on a local copy of the same format."""
    recipe = get_recipe(None)
    mixed = tmp_path / "meta_Health_and_Personal_Care.jsonl"
    lines = (shared_2023 / HPC).read_bytes().splitlines()[:150] + (shared_2023 / "_unpriced_or_bad_sample.jsonl").read_bytes().splitlines()[:50]
    mixed.write_bytes(b"\n".join(lines) + b"\n")
    ctx = ChunkContext("raw2023", "Health_and_Personal_Care", None, recipe)

    def curated(chunks):
        out = []
        for chunk in chunks:
            result = process_chunk(chunk, ctx)
            assert not result.problems
            out += [(row[0], row[1], row[2], row[5]) for row in result.accepted]
        return out

    local = curated(read_chunks(0, SourceFile(str(mixed))))
    hub = curated(hub_rows(str(mixed), chunk_lines=64))
    assert len(local) == 150
    assert hub == local
