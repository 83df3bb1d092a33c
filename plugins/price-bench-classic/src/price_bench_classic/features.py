"""Engineered features: item weight, best-sellers rank, brand, text length, category.

Raw-curated items keep the original detail key/values in ``Item.details``
("Item Weight", "Best Sellers Rank", "Brand", "Manufacturer", ...); those are
read first. Items curated elsewhere (e.g. ``amazon-course/items.jsonl``) only
have ``text``, where the details were flattened into prose such as
``"Brand Motorcraft, Weight 5 pounds, ... Rank Automotive Fan Clutches 583"``;
the same facts are then parsed from the text.

Pure Python and numpy only, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from price_bench import Item

#: The seed's list of "top electronics brands" (lower case).
TOP_BRANDS = frozenset({"hp", "dell", "lenovo", "samsung", "asus", "sony", "canon", "apple", "intel"})

_POUNDS_PER_UNIT = {
    "pound": 1.0,
    "pounds": 1.0,
    "lb": 1.0,
    "lbs": 1.0,
    "ounce": 1 / 16,
    "ounces": 1 / 16,
    "oz": 1 / 16,
    "gram": 1 / 453.592,
    "grams": 1 / 453.592,
    "g": 1 / 453.592,
    "kilogram": 1 / 0.453592,
    "kilograms": 1 / 0.453592,
    "kg": 1 / 0.453592,
    "milligram": 1 / 453592,
    "milligrams": 1 / 453592,
    "mg": 1 / 453592,
    "hundredths pounds": 1 / 100,
}
_UNIT = r"(hundredths\s+pounds|pounds?|lbs?|ounces?|oz|grams?|g|kilograms?|kg|milligrams?|mg)\b"
_AMOUNT_UNIT = re.compile(r"(\d+(?:[.,]\d+)?)\s*" + _UNIT, re.IGNORECASE)
_TEXT_WEIGHT = re.compile(r"weight\s*:?\s*(\d+(?:[.,]\d+)?)\s*" + _UNIT, re.IGNORECASE)
_TEXT_RANK = re.compile(r"\bRank\b\s*:?\s*(?:#\s*)?([^\d,]{0,120}?)(\d[\d,]*)\b")
_TEXT_BRAND = re.compile(r"\b(?:Brand|Manufacturer)\s*:?\s+([^,;\n]{1,40})")
_RANK_NUMBER = re.compile(r"#?\s*(\d[\d,]*)")
# Words that start the next flattened detail when a "Brand" value was empty.
_NOT_A_BRAND = re.compile(
    r"^(?:weight|dimensions|model|part|rank|manufacturer|brand|item|package|country|available|is\s)", re.IGNORECASE
)


@dataclass(frozen=True)
class RawFeatures:
    """Per-item facts before imputation (None when unknown)."""

    weight_lb: float | None
    rank: float | None
    brand: str | None
    text_length: int
    category: str | None


def _to_number(token: str) -> float | None:
    try:
        value = float(token.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def weight_to_pounds(text: str) -> float | None:
    """``"1.2 Ounces"`` → 0.075; the first amount-with-unit in ``text``, or None."""
    match = _AMOUNT_UNIT.search(text)
    if not match:
        return None
    amount = _to_number(match.group(1).replace(",", "."))
    unit = re.sub(r"\s+", " ", match.group(2).lower())
    if amount is None or amount <= 0:
        return None
    return amount * _POUNDS_PER_UNIT[unit]


def _detail(details: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = details.get(key)
        if value not in (None, "", {}, []):
            return value
    return None


def _weight_from_details(details: dict[str, Any]) -> float | None:
    value = _detail(details, "Item Weight")
    if value is not None:
        return weight_to_pounds(str(value))
    # "Package Dimensions": "6.86 x 5.04 x 4.96 inches; 1.81 Pounds"
    for key in ("Package Dimensions", "Product Dimensions", "Item Package Dimensions L x W x H"):
        value = details.get(key)
        if isinstance(value, str) and ";" in value:
            weight = weight_to_pounds(value.split(";", 1)[1])
            if weight is not None:
                return weight
    return None


def _rank_from_value(value: Any) -> float | None:
    """Mean of the ranks in a "Best Sellers Rank" value (dict, list, JSON or prose)."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in "{[":
            try:
                return _rank_from_value(json.loads(stripped))
            except json.JSONDecodeError:
                pass
        numbers = [_to_number(m) for m in _RANK_NUMBER.findall(stripped)]
        numbers = [n for n in numbers if n is not None and n > 0]
        return sum(numbers) / len(numbers) if numbers else None
    if isinstance(value, dict):
        numbers = [_to_number(str(v)) for v in value.values()]
    elif isinstance(value, (list, tuple)):
        numbers = [_rank_from_value(v) for v in value]
    elif isinstance(value, (int, float)):
        numbers = [float(value)]
    else:
        return None
    numbers = [n for n in numbers if n is not None and n > 0]
    return sum(numbers) / len(numbers) if numbers else None


def _brand_from_text(text: str) -> str | None:
    for match in _TEXT_BRAND.finditer(text):
        candidate = match.group(1).strip().rstrip(".")
        if candidate and not _NOT_A_BRAND.match(candidate):
            return candidate
    return None


def raw_features(item: Item) -> RawFeatures:
    """Weight (pounds), rank, brand, text length and category of one item."""
    details = item.details or {}
    text = item.text or ""
    weight = _weight_from_details(details) if details else None
    if weight is None:
        match = _TEXT_WEIGHT.search(text)
        if match:
            weight = weight_to_pounds(f"{match.group(1)} {match.group(2)}")
    rank = _rank_from_value(details["Best Sellers Rank"]) if details.get("Best Sellers Rank") else None
    if rank is None:
        match = _TEXT_RANK.search(text)
        rank = _to_number(match.group(2)) if match else None
    brand = _detail(details, "Brand", "Manufacturer")
    brand = str(brand).strip() if brand is not None else _brand_from_text(text)
    return RawFeatures(weight, rank, brand or None, len(text), item.category)


class FeatureEncoder:
    """Turns items into a numeric matrix; imputation values and categories are learned on train.

    Columns: weight (lb), log weight, rank, log rank, text length, log text
    length, top-brand flag, has-brand, has-weight, has-rank, then one column per
    train category (plus "unknown"). Missing weights and ranks get the train
    mean (as the seed did), with the has-* flags telling the model so.
    """

    numeric_names = (
        "weight_lb",
        "log_weight",
        "rank",
        "log_rank",
        "text_length",
        "log_text_length",
        "top_brand",
        "has_brand",
        "has_weight",
        "has_rank",
    )

    def fit(self, items: Sequence[Item]) -> FeatureEncoder:
        raws = [raw_features(item) for item in items]
        weights = [r.weight_lb for r in raws if r.weight_lb is not None]
        ranks = [r.rank for r in raws if r.rank is not None]
        self.mean_weight = float(np.mean(weights)) if weights else 1.0
        self.mean_rank = float(np.mean(ranks)) if ranks else 100_000.0
        self.categories = sorted({r.category for r in raws if r.category})
        return self

    @property
    def names(self) -> list[str]:
        """Column names of :meth:`transform`'s output."""
        return list(self.numeric_names) + [f"category={c}" for c in self.categories] + ["category=unknown"]

    def transform(self, items: Sequence[Item]) -> np.ndarray:
        """A float matrix, one row per item."""
        index = {c: i for i, c in enumerate(self.categories)}
        width = len(self.numeric_names) + len(self.categories) + 1
        out = np.zeros((len(items), width), dtype=np.float64)
        for row, item in enumerate(items):
            raw = raw_features(item)
            weight = raw.weight_lb if raw.weight_lb is not None else self.mean_weight
            weight = min(weight, 2000.0)  # a typo'd "5000 pounds" must not dominate a linear model
            rank = raw.rank if raw.rank is not None else self.mean_rank
            out[row, :10] = (
                weight,
                math.log1p(weight),
                rank,
                math.log1p(rank),
                raw.text_length,
                math.log1p(raw.text_length),
                float(bool(raw.brand) and raw.brand.lower() in TOP_BRANDS),
                float(raw.brand is not None),
                float(raw.weight_lb is not None),
                float(raw.rank is not None),
            )
            out[row, len(self.numeric_names) + index.get(raw.category or "", len(self.categories))] = 1.0
        return out


# -- parsed quantities ------------------------------------------------------------------

_NUMBER = r"(\d+(?:\.\d+)?)"
_PACK = re.compile(
    r"\b(?:pack|set|case|box|bundle|lot)\s+of\s+(\d{1,4})\b"
    r"|\b(\d{1,4})\s*-?\s*(?:pack|pk|count|ct|pcs|pieces|piece|pairs?)\b"
    r"|\bpackage\s+quantity\s*:?\s*(\d{1,4})\b",
    re.IGNORECASE,
)
_WATTS = re.compile(_NUMBER + r"\s*-?\s*(kw|w|watts?|kilowatts?)\b", re.IGNORECASE)
_VOLTS = re.compile(_NUMBER + r"\s*-?\s*(v|volts?|vac|vdc)\b", re.IGNORECASE)
_AMP_HOURS = re.compile(_NUMBER + r"\s*-?\s*(mah|ah)\b", re.IGNORECASE)
_STORAGE = re.compile(_NUMBER + r"\s*-?\s*(tb|gb|mb)\b", re.IGNORECASE)
_VOLUME = re.compile(
    _NUMBER + r"\s*-?\s*(ml|milliliters?|l|liters?|litres?|gallons?|gal|quarts?|qt|fl\.?\s*oz|cups?|cu\.?\s*ft|cubic\s+feet)\b",
    re.IGNORECASE,
)
_DIMENSIONS = re.compile(
    _NUMBER + r"\s*(?:\"|''|in|inches|cms?|mm|ft|feet)?\s*(?:\([lwhd]\))?\s*[x×]\s*"
    + _NUMBER + r"\s*(?:\"|''|in|inches|cms?|mm|ft|feet)?\s*(?:\([lwhd]\))?"
    + r"(?:\s*[x×]\s*" + _NUMBER + r")?\s*(\"|''|in\b|inches|cms?\b|mm\b|ft\b|feet)",
    re.IGNORECASE,
)
_INCHES_PER_UNIT = {"in": 1.0, "inches": 1.0, '"': 1.0, "''": 1.0, "cm": 1 / 2.54, "cms": 1 / 2.54, "mm": 1 / 25.4, "ft": 12.0, "feet": 12.0}
_LITRES_PER_UNIT = {
    "ml": 1e-3, "milliliter": 1e-3, "l": 1.0, "liter": 1.0, "litre": 1.0, "gallon": 3.785, "gal": 3.785,
    "quart": 0.946, "qt": 0.946, "floz": 0.0296, "cup": 0.2366, "cuft": 28.317, "cubicfeet": 28.317,
}
_GB_PER_UNIT = {"tb": 1000.0, "gb": 1.0, "mb": 1e-3}

#: Names of the quantities :func:`parse_quantities` may return.
QUANTITY_NAMES = ("pack", "watts", "volts", "amp_hours", "storage_gb", "volume_l", "longest_in", "box_in3", "weight_lb", "rank")


def _largest(pattern: re.Pattern, text: str, scale) -> float | None:
    """The largest positive amount matched by ``pattern`` (group 1 = amount, 2 = unit), scaled by unit."""
    best = None
    for match in pattern.finditer(text):
        amount = _to_number(match.group(1))
        factor = scale(match.group(2).lower())
        if amount and amount > 0 and factor:
            best = max(best or 0.0, amount * factor)
    return best


def _unit_key(unit: str) -> str:
    key = re.sub(r"[\s.]", "", unit.lower())
    return key[:-1] if key.endswith("s") and key not in ("cms",) else key


def parse_quantities(item: Item, raw: RawFeatures | None = None) -> dict[str, float]:
    """Numeric facts stated in an item's text: pack size, power, capacity, size, weight, rank.

    Only what is found is returned (a missing key means "not stated"). Each
    value is the largest mention in the text (a "2-pack of 1500 W heaters"
    gives pack 2 and watts 1500); sizes are in inches, volumes in litres,
    storage in gigabytes, weight in pounds (as :func:`raw_features`, whose
    result ``raw`` may be passed when the caller has it already).
    """
    text = item.text or ""
    found: dict[str, float] = {}
    packs = [int(next(g for g in m.groups() if g)) for m in _PACK.finditer(text)]
    packs = [p for p in packs if 0 < p <= 5000]
    if packs:
        found["pack"] = float(max(packs))
    power = _largest(_WATTS, text, lambda u: 1000.0 if u.startswith("k") else 1.0)
    if power is not None and power <= 100_000:
        found["watts"] = power
    volts = _largest(_VOLTS, text, lambda u: 1.0)
    if volts is not None and volts <= 100_000:
        found["volts"] = volts
    charge = _largest(_AMP_HOURS, text, lambda u: 1.0 if u == "mah" else 1000.0)
    if charge is not None:
        found["amp_hours"] = charge
    storage = _largest(_STORAGE, text, lambda u: _GB_PER_UNIT.get(u))
    if storage is not None:
        found["storage_gb"] = storage
    volume = _largest(_VOLUME, text, lambda u: _LITRES_PER_UNIT.get(_unit_key(u)))
    if volume is not None:
        found["volume_l"] = volume
    boxes = []
    for match in _DIMENSIONS.finditer(text):
        factor = _INCHES_PER_UNIT.get(match.group(4).lower(), 1.0)
        sides = [_to_number(g) for g in match.groups()[:3] if g]
        sides = [s * factor for s in sides if s and s > 0]
        if len(sides) >= 2:
            boxes.append(sides)
    if boxes:
        found["longest_in"] = max(max(b) for b in boxes)
        found["box_in3"] = max(math.prod(b) for b in boxes if len(b) == 3) if any(len(b) == 3 for b in boxes) else found["longest_in"] ** 2
    raw = raw if raw is not None else raw_features(item)
    if raw.weight_lb is not None:
        found["weight_lb"] = raw.weight_lb
    if raw.rank is not None:
        found["rank"] = raw.rank
    return found


def quantity_tokens(quantities: dict[str, float]) -> list[str]:
    """One token per stated quantity, its value bucketed to half an octave: ``"q_watts_21"``.

    Sparse, model-agnostic encoding of magnitudes: a linear model or an MLP
    learns a price effect per bucket without assuming a functional form.
    """
    return [f"q_{name}_{round(2 * math.log2(value + 1))}" for name, value in sorted(quantities.items())]
