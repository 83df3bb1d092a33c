"""The curation recipe and the per-record rules it applies.

A :class:`Recipe` is named and versioned (``reference-2023@1``); every knob is
a field, and the whole recipe is written into each dataset's manifest. The
per-record work (decode, price, text assembly, scrubbing, length, hashes) is
:func:`process_chunk`, a pure function of a chunk of raw lines, so it runs the
same in one process or in a pool. Whole-stream steps (de-duplication,
sampling, split, leakage) live in :mod:`price_bench.data.pipeline`.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field

from price_bench.bands import PRICE_BANDS
from price_bench.data.sources import Chunk

# orjson (a required dependency) is about twice as fast as json on these records; the spill and the take-back use it too.
_loads: Callable[[bytes | str], Any] = orjson.loads
_dumps: Callable[[Any], bytes] = orjson.dumps
_DecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)


# ----------------------------------------------------------------------------- recipe


class Recipe(BaseModel):
    """Every knob of a curation run; ``id`` (``name@version``) is what results cite.

    Defaults are the reference pipeline's (ed-donner/llm_engineering
    ``week6/pricer/parser.py``), except ``min_chars``: the reference's 600
    would drop about a third of the real Health & Personal Care records
    (their assembled texts have a median of ~900 characters and a tenth are
    under ~350), so the default keeps texts of 100 characters or more.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "reference-2023"
    version: int = 1
    min_price: float = 0.5
    max_price: float = 999.49
    min_chars: int = 100
    max_chars_each: int = 3000
    max_chars: int = 4000
    drop_detail_keys: tuple[str, ...] = (
        "Part Number",
        "Best Sellers Rank",
        "Batteries Included?",
        "Batteries Required?",
        "Item model number",
    )
    part_number_min_len: int = Field(default=7, description="drop uppercase alphanumeric tokens this long with a digit and a letter; 0 keeps them")
    dedup_on: tuple[str, ...] = ("parent_asin", "text")
    max_items: int | None = Field(default=100_000, description="sample at most this many items (train+validation+test); None keeps all")
    price_bands: tuple[float, ...] = PRICE_BANDS  # the one band definition (price_bench.bands)
    price_balance: float = Field(default=1.0, ge=0, le=1, description="0: sample as found; 1: equal weight per price band")
    category_weights: dict[str, float] = Field(default_factory=dict, description="sampling weight per category (default 1)")
    test_fraction: float = Field(default=0.1, gt=0, lt=1)
    validation_fraction: float = Field(default=0.1, ge=0, lt=1)
    near_dup_jaccard: float = Field(default=0.8, gt=0, le=1, description="word 3-shingle Jaccard at or above which two texts are near-duplicates")
    near_dup_shingle: int = 3
    seed: int = 42

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def band_of(self, price: float) -> int:
        """Index of the price band holding ``price``."""
        bands = self.price_bands
        for i in range(len(bands) - 2, -1, -1):
            if price >= bands[i]:
                return i
        return 0

    def band_label(self, index: int) -> str:
        low, high = self.price_bands[index], self.price_bands[index + 1]
        return f"${low:g}-{high:g}"


RECIPES: dict[str, Recipe] = {
    "reference-2023@1": Recipe(),
    "demo@1": Recipe(name="demo", max_items=None, seed=7),
}


def get_recipe(recipe: str | Recipe | None) -> Recipe:
    """A recipe by id (``reference-2023@1``), or the one given; default reference."""
    if recipe is None:
        return RECIPES["reference-2023@1"]
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        from price_bench.data.dataset import DatasetError

        raise DatasetError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    return RECIPES[recipe]


# ----------------------------------------------------------------------------- price


NO_PRICE = "no price"
UNPARSEABLE_PRICE = "unparseable price"
OUT_OF_WINDOW = "price out of window"
TEXT_CAPPED = "text longer than the recipe's max_chars (cut)"

_PRICE = re.compile(r"^\s*(?:US\s*)?\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*$")
_EMPTY_PRICES = {"", "none", "null", "nan", "n/a", "na", "-"}


def parse_raw_price(value: Any) -> tuple[float | None, str | None]:
    """A listed price as a float, or ``(None, reason)``.

    Accepts numbers, ``"12.34"``, ``"$1,299.99"``; ``None``/``"None"``/``""``
    give ``"no price"``; ranges, words, NaN, negatives and other text give
    ``"unparseable price"``.
    """
    if value is None:
        return None, NO_PRICE
    if isinstance(value, bool):
        return None, UNPARSEABLE_PRICE
    if isinstance(value, (int, float)):
        price = float(value)
    elif isinstance(value, str):
        if value.strip().lower() in _EMPTY_PRICES:
            return None, NO_PRICE
        match = _PRICE.match(value)
        if match is None:
            return None, UNPARSEABLE_PRICE
        price = float(match.group(1).replace(",", "") + (match.group(2) or ""))
    else:
        return None, UNPARSEABLE_PRICE
    if not math.isfinite(price) or price < 0:
        return None, UNPARSEABLE_PRICE
    return price, None


# ----------------------------------------------------------------------------- text


# No leading \b: a pattern that starts with a character class lets `re` skip ahead fast;
# the left word boundary is checked in _drop_part_number instead.
_PART_NUMBER = re.compile(r"[A-Z0-9]{7,}(?!\w)")
_WS = re.compile(r"\s+")
_NORMALISE_DELETE = b" \t\n\r\x0b\x0c.,;:!?-_'\"()[]{}/\\|*#&+<>=~`^"


def _drop_part_number(match: re.Match[str]) -> str:
    token = match.group(0)
    start = match.start()
    if start and (match.string[start - 1].isalnum() or match.string[start - 1] == "_"):
        return token  # the tail of a longer word, not a token of its own
    return token if token.isdigit() or token.isalpha() else ""


def _flatten(value: Any, limit: int) -> str:
    """A list/str field as one whitespace-collapsed line of at most ``limit`` chars."""
    if not value:
        return ""
    if value.__class__ is str:
        text = value
    elif isinstance(value, (list, tuple)):
        try:
            text = " ".join(value)
        except TypeError:
            text = " ".join(v if isinstance(v, str) else str(v) for v in value if v)
    else:
        text = str(value)
    if "\n" in text or "  " in text or "\t" in text or "\r" in text:
        text = " ".join(text.split())
    return text.strip()[:limit]


def details_text(details: dict[str, str], drop: frozenset[str], limit: int) -> str:
    """``Key: value; Key: value`` of the details a predictor may read (not the keys in ``drop``, no empty values).

    The usual dict (str values, none empty) is joined by C-level calls; the
    same text as formatting each pair.
    """
    if not drop.isdisjoint(details):
        details = details.copy()
        for key in drop.intersection(details):
            del details[key]
    if "" not in details.values():
        try:
            return _flatten("; ".join(map(": ".join, details.items())), limit)
        except TypeError:  # a value that is not a str: formatted below
            pass
    return _flatten("; ".join([f"{k}: {v}" for k, v in details.items() if v]), limit)


def assemble_text(title: str, description: Any, features: Any, details: dict[str, str], recipe: Recipe,
                  drop: frozenset[str] | None = None) -> str:
    """Title, description, features and scrubbed details, one per line, scrubbed."""
    return _assemble(_flatten(title, recipe.max_chars_each), description, features, details, recipe,
                     drop if drop is not None else frozenset(recipe.drop_detail_keys))


def _assemble(flat_title: str, description: Any, features: Any, details: dict[str, str], recipe: Recipe,
              drop: frozenset[str]) -> str:
    """:func:`assemble_text` with the title already flattened."""
    each = recipe.max_chars_each
    parts = [flat_title]
    part = _flatten(description, each)
    if part:
        parts.append(part)
    part = _flatten(features, each)
    if part:
        parts.append(part)
    if details:
        part = details_text(details, drop, each)
        if part:
            parts.append(part)
    text = "\n".join(parts)
    if recipe.part_number_min_len:
        text = scrub_part_numbers(text, recipe.part_number_min_len)
    return cap_text(text, recipe.max_chars)


def cap_text(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters (at a space when one is in the second half)."""
    if len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars)
        text = text[: cut if cut > max_chars // 2 else max_chars]
    return text.strip()


def scrub_part_numbers(text: str, min_len: int = 7) -> str:
    """Remove tokens like ``B07XJ8C8F5``: ``min_len``+ uppercase letters/digits with both kinds.

    A token is a maximal run of ``[A-Z0-9]`` not followed by a word character
    and not preceded by a letter, digit or ``_`` (the rule of the regex
    ``[A-Z0-9]{7,}(?!\\w)`` with :func:`_drop_part_number`). Texts without such
    a run (found with one ``bytes.translate`` and a substring test) come back
    unchanged; the others are cut on the byte-class mask of their UTF-8
    bytes, looking at the neighbouring character only where it is not ASCII.
    """
    data = text.encode("utf-8", "surrogatepass")
    mask = data.translate(_RUN_MASK)
    if _RUN_BYTE * min_len not in mask:
        return text
    scrubbed = _scrub_masked(text, data, mask, min_len)
    if len(scrubbed) == len(text):
        return text
    return "\n".join(" ".join(line.split()) for line in scrubbed.split("\n"))


# Byte classes for the scrub: "A" = [A-Z0-9], "w" = other ASCII word characters, "?" = non-ASCII, " " = the rest.
_RUN_BYTE = b"A"
_RUN_MASK = bytes(
    0x41 if (48 <= i <= 57 or 65 <= i <= 90) else 0x77 if (97 <= i <= 122 or i == 95) else 0x3F if i >= 0x80 else 0x20
    for i in range(256)
)
_RUN_END = re.compile(rb"A*")


def _is_word_char(data: bytes, start: int, end: int) -> bool:
    """Whether the UTF-8 character ``data[start:end]`` is a word character (``\\w``: alphanumeric or ``_``)."""
    return data[start:end].decode("utf-8", "surrogatepass").isalnum()


def _scrub_masked(text: str, data: bytes, mask: bytes, min_len: int) -> str:
    """The regex scrub done on the byte-class mask of ``text``'s UTF-8 ``data`` (same result).

    Runs are found with ``bytes.find`` of ``min_len`` run bytes (much faster
    than a regex scan of a mask that is mostly run bytes) and extended to
    their end with one anchored match.
    """
    seed = _RUN_BYTE * min_len
    pieces: list[bytes] = []
    kept = 0
    size = len(mask)
    start = mask.find(seed)
    while start != -1:
        end = _RUN_END.match(mask, start + min_len).end()  # type: ignore[union-attr]
        following = mask.find(seed, end)
        if end < size:
            after = mask[end]
            if after == 0x77:
                start = following
                continue  # followed by a word character: part of a longer word
            if after == 0x3F:
                lead = data[end]
                width = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
                if _is_word_char(data, end, end + width):
                    start = following
                    continue
        if start:
            before = mask[start - 1]
            if before == 0x77:
                start = following
                continue  # the tail of a longer word
            if before == 0x3F:
                lead_at = start - 1
                while data[lead_at] & 0xC0 == 0x80:
                    lead_at -= 1
                if _is_word_char(data, lead_at, start):
                    start = following
                    continue
        token = data[start:end]
        if not (token.isdigit() or token.isalpha()):
            pieces.append(data[kept:start])
            kept = end
        start = following
    if not pieces:
        return text
    pieces.append(data[kept:])
    return b"".join(pieces).decode("utf-8", "surrogatepass")


_LOWER_ASCII = bytes.maketrans(bytes(range(65, 91)), bytes(range(97, 123)))
_ASCII_BYTES = bytes(range(128))


def lower_utf8(text: str, delete: bytes = b"") -> bytes:
    """``text.lower().encode("utf-8", "surrogatepass")`` with the bytes in ``delete`` removed.

    ``delete`` holds ASCII bytes that are not letters (on the fast paths they
    are removed before the lowering, which is then the same).

    ``str.lower`` looks every character up in the Unicode tables; ASCII
    letters only need a byte table. The real lowering is needed only when a
    non-ASCII character changes, and that is decided on the non-ASCII
    characters alone (the UTF-8 bytes >= 0x80 are exactly their encoding):
    a character's lower case does not depend on its neighbours except for
    the capital sigma, which always changes, so the check is exact.
    """
    if text.isascii():
        return text.encode("ascii").translate(_LOWER_ASCII, delete)
    data = text.encode("utf-8", "surrogatepass")
    rest = data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")
    if rest.lower() == rest:
        return data.translate(_LOWER_ASCII, delete)
    return text.lower().encode("utf-8", "surrogatepass").translate(None, delete)


def normalised(text: str) -> bytes:
    """Text for duplicate detection: lower case, no whitespace or punctuation."""
    return lower_utf8(text, _NORMALISE_DELETE)


def key_hash(data: bytes) -> int:
    """Stable signed 64-bit hash (0 is reserved for "no key")."""
    value = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)
    return value or 1


# ----------------------------------------------------------------------------- records


def clean_details(value: Any, tidy_keys: bool = False) -> tuple[dict[str, str], bool]:
    """``details`` as a str->str dict, and whether it was readable.

    Accepts a dict or a JSON string holding an object; nested values become
    compact JSON; ``None`` values (keys the Arrow JSON reader filled in) are
    dropped; ``tidy_keys`` collapses whitespace and a trailing colon in keys
    (the 2018 format has keys like ``"\n  Item Weight: "``). Anything else is
    unreadable (an empty dict comes back).
    """
    if not value:
        return {}, True
    if isinstance(value, str):
        try:
            value = _loads(value)
        except _DecodeError:
            return {}, False
    if not isinstance(value, dict):
        return {}, False
    if not tidy_keys and value.__class__ is dict:
        for key, val in value.items():
            if val.__class__ is not str or key.__class__ is not str:
                break
        else:
            return value, True  # already str -> str (the usual case): the same keys, values and order
    out: dict[str, str] = {}
    for key, val in value.items():
        if val is None:
            continue
        if tidy_keys or not isinstance(key, str):
            key = " ".join(str(key).split()).rstrip(":").strip()
            if not key:
                continue
        if val.__class__ is str:
            out[key] = val
        elif isinstance(val, (dict, list)):
            out[key] = json.dumps(val, ensure_ascii=False, sort_keys=True)
        else:
            out[key] = str(val)
    return out, True


def normalise_category(name: Any) -> str | None:
    """``"Health & Personal Care"`` -> ``"Health_and_Personal_Care"``; None for empty."""
    if not isinstance(name, str) or not name.strip():
        return None
    text = html.unescape(name).strip().replace("&", " and ").replace(",", " ").replace("/", " ")
    return "_".join(text.split())


_category_cache: dict[Any, str | None] = {}


def _category_of(name: Any) -> str | None:
    try:
        return _category_cache[name]
    except (KeyError, TypeError):
        value = normalise_category(name)
        if isinstance(name, str) and len(_category_cache) < 10_000:
            _category_cache[name] = value
        return value


@dataclass(frozen=True)
class RawFormat:
    """Where one raw metadata format keeps the fields curation reads, and how it writes them."""

    category: str
    """Key of the store's main category."""
    asin: str
    """Key of the product id (the de-duplication key)."""
    features: str
    """Key of the feature bullet list."""
    unescape_title: bool
    """Titles hold HTML entities (``&amp;``) to unescape."""
    tidy_detail_keys: bool
    """Detail keys carry whitespace and a trailing colon (``"\\n  Item Weight: "``)."""


#: The per-format field table of the raw formats (``items`` rows are already curated).
RAW_FORMATS: dict[str, RawFormat] = {
    "raw2023": RawFormat(category="main_category", asin="parent_asin", features="features",
                         unescape_title=False, tidy_detail_keys=False),
    "raw2018": RawFormat(category="main_cat", asin="asin", features="feature",
                         unescape_title=True, tidy_detail_keys=True),
}


class AcceptedRow(NamedTuple):
    """One accepted record: the item's fields and its two de-duplication key hashes."""

    id: str
    text: str
    price: float
    category: str | None
    title: str | None
    details_json: bytes | None
    """Compact JSON of the details (None when there are none), made while the record is still in the CPU cache."""
    asin_hash: int
    """:func:`key_hash` of the product id (0: none; the item id for ``items`` rows)."""
    text_hash: int
    """:func:`key_hash` of the :func:`normalised` text."""


@dataclass
class ChunkResult:
    """What :func:`process_chunk` returns for one chunk."""

    source_index: int
    records: int = 0
    accepted: list[AcceptedRow] = field(default_factory=list)
    rejections: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    categories_seen: Counter[str | None] = field(default_factory=Counter)
    problems: list[tuple[int, str]] = field(default_factory=list)
    """(line, reason) of bad input (malformed lines, missing title, unreadable details...)."""
    stopped: bool = False
    """True when ``should_stop`` ended the chunk before its last record."""
    accepted_at: list[int] = field(default_factory=list)
    """Position in the chunk (index into its lines or rows) of each accepted row, in order."""

    def problem(self, line: int, reason: str, message: str | None = None) -> None:
        """Count a rejection and record its line (``message`` defaults to the reason)."""
        self.rejections[reason] += 1
        self.problems.append((line, message or reason))


@dataclass(frozen=True)
class ChunkContext:
    """What a worker needs to know about the file a chunk came from."""

    fmt: str
    category: str | None
    categories: frozenset[str] | None
    recipe: Recipe


def _decode(line: bytes) -> tuple[Any, str | None]:
    try:
        return _loads(line), None
    except _DecodeError as exc:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return None, f"not UTF-8 (byte 0x{line[uexc.start]:02x} at column {uexc.start + 1})"
        return None, f"malformed JSON ({str(exc).splitlines()[0][:80]})"


def process_chunk(chunk: Chunk, ctx: ChunkContext, *, strict: bool = False,
                  should_stop: Callable[[], bool] | None = None) -> ChunkResult:
    """Decode and curate every record of a chunk (pure; safe in a worker process).

    With ``strict`` it returns at the first problem (the caller raises);
    ``should_stop`` is polled every 256 records and ends the chunk early when
    it says so (``result.stopped``), e.g. once another worker hit a bad record.
    """
    result = ChunkResult(chunk.source_index)
    curate = _record_curator(ctx, result)
    accepted, accepted_at = result.accepted, result.accepted_at
    rows: list[Any] = chunk.rows if chunk.rows is not None else chunk.lines or []
    decoded = chunk.rows is None
    problems = result.problems
    numbers = chunk.line_numbers
    first = chunk.first_line
    records = 0
    for offset, raw in enumerate(rows):
        if strict and problems:
            break
        if should_stop is not None and not offset & 255 and should_stop():
            result.stopped = True
            break
        if decoded:
            if raw[:1] != b"{" and not raw.strip():
                continue
            try:
                record = _loads(raw)
            except _DecodeError:
                records += 1
                error = _decode(raw)[1] or "malformed JSON"
                result.problem(first + offset, error.split(" (")[0], error)
                continue
        else:
            record = raw
        records += 1
        line = numbers[offset] if numbers is not None else first + offset
        if not isinstance(record, dict):
            result.problem(line, "not a JSON object", f"not a JSON object (got {type(record).__name__})")
            continue
        before = len(accepted)
        curate(record, line)
        if len(accepted) != before:
            accepted_at.append(offset)
    result.records = records
    return result


def _record_curator(ctx: ChunkContext, result: ChunkResult) -> Callable[[dict[str, Any], int], None]:
    """The per-record step for ``ctx``'s format, bound to ``result``."""
    if ctx.fmt == "items":
        return lambda record, line: _curate_item_row(record, line, ctx, result)
    fields = RAW_FORMATS[ctx.fmt]
    drop = frozenset(ctx.recipe.drop_detail_keys)
    return lambda record, line: _curate_raw(record, line, ctx, fields, drop, result)


def _category_selected(category: str | None, ctx: ChunkContext, result: ChunkResult) -> bool:
    """Count ``category`` as seen; False (and a rejection) when the run does not want it."""
    result.categories_seen[category] += 1
    if ctx.categories is not None and category not in ctx.categories:
        result.rejections["category not selected"] += 1
        return False
    return True


def _price_of(value: Any) -> tuple[float | None, str | None]:
    """:func:`parse_raw_price` with a fast path for plain numbers."""
    cls = value.__class__
    if cls is float or cls is int:
        price = float(value)
        if math.isfinite(price) and price >= 0:
            return price, None
        return None, UNPARSEABLE_PRICE
    return parse_raw_price(value)


def _curate_raw(record: dict[str, Any], line: int, ctx: ChunkContext, fields: RawFormat, drop: frozenset[str],
                result: ChunkResult) -> None:
    """One raw (2023 or 2018) record: category, price window, title, text, length, keys."""
    recipe = ctx.recipe
    get = record.get
    category = ctx.category or _category_of(get(fields.category))
    if not _category_selected(category, ctx, result):
        return
    price, reason = _price_of(get("price"))
    if reason is None and not recipe.min_price <= price <= recipe.max_price:  # type: ignore[operator]
        reason = OUT_OF_WINDOW
    if reason:
        result.rejections[reason] += 1
        return
    title = get("title")
    if title.__class__ is not str or not title.strip():
        result.problem(line, "missing title")
        return
    if fields.unescape_title:
        title = html.unescape(title)
    details, readable = clean_details(get("details"), tidy_keys=fields.tidy_detail_keys)
    if not readable:
        result.warnings["unreadable details"] += 1
        result.problems.append((line, f"unreadable details (not an object: {str(get('details'))[:40]!r}); details ignored"))
    each = recipe.max_chars_each
    flat_title = _flatten(title, each)
    text = _assemble(flat_title, get("description"), get(fields.features), details, recipe, drop)
    if len(text) < recipe.min_chars:
        result.rejections["text too short"] += 1
        return
    asin = get(fields.asin)
    asin = asin if asin.__class__ is str and asin else None
    text_hash = key_hash(normalised(text))
    item_id = asin or f"t{text_hash & 0xFFFFFFFFFFFF:012x}"
    asin_hash = key_hash(asin.encode()) if asin else 0
    result.accepted.append(AcceptedRow(item_id, text, round(price, 2), category, flat_title,  # type: ignore[arg-type]
                                       _dumps(details) if details else None, asin_hash, text_hash))


def _curate_item_row(record: dict[str, Any], line: int, ctx: ChunkContext, result: ChunkResult) -> None:
    """An already-curated row: text and price are taken as they are (bad ones are bad input)."""
    recipe = ctx.recipe
    category = record.get("category") or ctx.category
    category = category if isinstance(category, str) and category else None
    if not _category_selected(category, ctx, result):
        return
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        result.problem(line, "missing text")
        return
    price, reason = parse_raw_price(record.get("price"))
    if reason:
        result.problem(line, reason, f"{reason} ({str(record.get('price'))[:30]!r})")
        return
    if not recipe.min_price <= price <= recipe.max_price:  # type: ignore[operator]
        result.rejections[OUT_OF_WINDOW] += 1
        return
    text = text.strip()
    if len(text) > recipe.max_chars:
        text = cap_text(text, recipe.max_chars)
        result.warnings[TEXT_CAPPED] += 1
    text_hash = key_hash(normalised(text))
    raw_id = record.get("id")
    item_id = str(raw_id) if raw_id not in (None, "") else f"t{text_hash & 0xFFFFFFFFFFFF:012x}"
    raw_title = record.get("title")
    title = (_flatten(raw_title, recipe.max_chars_each) or None) if isinstance(raw_title, str) else None
    details, _ = clean_details(record.get("details"))
    result.accepted.append(AcceptedRow(item_id, text, round(price, 2), category, title,  # type: ignore[arg-type]
                                       _dumps(details) if details else None, key_hash(item_id.encode()), text_hash))
