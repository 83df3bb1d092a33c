"""Bad input: one-line messages naming file, line and reason; counted; --strict stops at the first."""

from __future__ import annotations

import gzip
import json

import pytest

from price_bench.data.catalog import build_dataset
from price_bench.data.dataset import DatasetError, datasets_dir
from price_bench.data.pipeline import CurationError


def _messy_file(tmp_path, raw_records, write_jsonl):
    records = raw_records(40)
    no_title = dict(records[5], title="")
    string_details = dict(records[6], details=json.dumps(records[6]["details"]))
    garbage_details = dict(records[7], details="<table>not json</table>")
    lines = records[:5] + [
        "{not json",          # line 6
        no_title,             # line 7
        string_details,       # line 8 (fine)
        garbage_details,      # line 9 (kept, details ignored, warned)
        "[1, 2, 3]",          # line 10
    ] + records[8:]
    path = write_jsonl(tmp_path / "messy.jsonl", lines)
    with path.open("ab") as fh:
        fh.write(b'{"title": "caf\xe9 latte", "price": 3.5}\n')  # last line: Latin-1 byte
    return path, len(lines) + 1


def test_problems_are_one_line_with_file_line_reason_and_counted(tmp_path, raw_records, write_jsonl):
    path, last = _messy_file(tmp_path, raw_records, write_jsonl)
    messages: list[str] = []
    ds = build_dataset("messy", str(path), on_problem=messages.append)
    assert all("\n" not in m for m in messages)
    assert messages[0].startswith(f"{path}:6: malformed JSON")
    assert messages[1] == f"{path}:7: missing title"
    assert messages[2].startswith(f"{path}:9: unreadable details")
    assert messages[3].startswith(f"{path}:10: not a JSON object")
    assert messages[4].startswith(f"{path}:{last}: not UTF-8 (byte 0xe9")
    counts = ds.manifest["counts"]
    assert counts["rejections"]["malformed JSON"] == 1
    assert counts["rejections"]["missing title"] == 1
    assert counts["rejections"]["not a JSON object"] == 1
    assert counts["rejections"]["not UTF-8"] == 1
    assert counts["warnings"] == {"unreadable details": 1}
    assert counts["problems_total"] == 5
    ids = {i.id for s in ("train", "validation", "test") for i in ds.items(s)}
    assert len(ids) == 39  # 40 good records, one lost its title; the garbage-details one is kept


def test_strict_fails_at_the_first_problem_and_leaves_nothing(tmp_path, raw_records, write_jsonl):
    path, _ = _messy_file(tmp_path, raw_records, write_jsonl)
    with pytest.raises(CurationError) as info:
        build_dataset("messy", str(path), strict=True)
    assert str(info.value).startswith(f"{path}:6: malformed JSON")
    root = datasets_dir()
    assert not root.exists() or list(root.iterdir()) == []


def test_empty_file_is_reported_and_counted(tmp_path, raw_records, write_jsonl):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a_empty.jsonl").write_bytes(b"")
    write_jsonl(folder / "b.jsonl", raw_records(30))
    messages: list[str] = []
    ds = build_dataset("e", str(folder), on_problem=messages.append)
    assert messages == [f"{folder / 'a_empty.jsonl'}: empty file"]
    assert ds.manifest["counts"]["rejections"]["empty file"] == 1
    with pytest.raises(CurationError, match="a_empty.jsonl: empty file"):
        build_dataset("e2", str(folder), strict=True)


def test_only_bad_sources_is_an_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match="no usable records"):
        build_dataset("x", str(empty))


def test_folder_without_data_and_missing_path(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="folder has no data files"):
        build_dataset("x", str(tmp_path))
    with pytest.raises(DatasetError, match="no such file or folder"):
        build_dataset("x", str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="unsupported file type"):
        build_dataset("x", str(tmp_path / "notes.txt"))


def test_gzip_and_parquet_raw_files(tmp_path, raw_records):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = raw_records(40)
    gz = tmp_path / "meta_Appliances.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    a = build_dataset("gz", str(gz))
    assert a.manifest["sources"][0]["format"] == "raw2023"
    assert {i.category for i in a.test} == {"Appliances"}  # the file name names the category
    flat = [dict(r, details=json.dumps(r["details"])) for r in records]  # parquet rows with details as JSON text
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "raw.parquet")
    b = build_dataset("pq", str(tmp_path / "raw.parquet"))
    assert sum(b.manifest["sizes"].values()) == 40


def test_items_file_with_bad_prices_names_the_line(tmp_path):
    path = tmp_path / "items.jsonl"
    rows = [{"text": f"Good product {n} with plenty of descriptive words", "price": 10 + n} for n in range(20)]
    rows.insert(3, {"text": "A product with no price at all but long text", "price": None})
    rows.insert(4, {"text": "", "price": 3})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    messages: list[str] = []
    ds = build_dataset("items", str(path), on_problem=messages.append)
    assert messages == [f"{path}:4: no price ('None')", f"{path}:5: missing text"]
    assert sum(ds.manifest["sizes"].values()) == 20


def test_hub_sources_resolve_to_category_files_and_fail_in_one_line_offline(monkeypatch):
    from price_bench.data.sources import SourceError, resolve

    files = resolve("hf", ["Appliances", "Software"])
    assert [f.location for f in files] == [
        "hf://datasets/McAuley-Lab/Amazon-Reviews-2023/raw/meta_categories/meta_Appliances.jsonl",
        "hf://datasets/McAuley-Lab/Amazon-Reviews-2023/raw/meta_categories/meta_Software.jsonl",
    ]
    assert [f.category for f in files] == ["Appliances", "Software"]
    with pytest.raises(SourceError, match="needs --categories"):
        resolve("hf")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetError) as info:
        build_dataset("hub", "hf", categories=["Appliances"])
    assert "meta_Appliances.jsonl: cannot stream through datasets" in str(info.value)
    assert "\n" not in str(info.value)
