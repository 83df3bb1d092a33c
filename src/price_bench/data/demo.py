"""``demo``: a deterministic, seeded generator of synthetic products (labelled synthetic).

It writes records in the Amazon Reviews 2023 raw metadata format
(``main_category``, ``title``, ``features``, ``description``, ``price``,
``details``, ``parent_asin``, ...), which then go through the same curation
as real data, so the quick start works offline.

Prices are driven by attributes that appear in the text: the product type,
brand tier, capacity/size/wattage-like levels, material and pack size,
multiplied together, times log-normal noise. So a text model has real signal
to find, and a constant guess is clearly worse. A few records are unpriced or
duplicated on purpose, so curation has something to reject.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

GENERATOR_ID = "demo-generator@1"
DEFAULT_COUNT = 21_000
DEFAULT_SEED = 2024
NOISE_SIGMA = 0.12


@dataclass(frozen=True)
class Attr:
    """One priced attribute: (text shown, price multiplier) options and its details key."""

    key: str
    options: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Product:
    noun: str
    base: float
    attrs: tuple[Attr, ...]
    uses: tuple[str, ...]


def _a(key: str, *options: tuple[str, float]) -> Attr:
    return Attr(key, tuple(options))


MATERIAL_HOME = _a("Material", ("Plastic", 0.75), ("Aluminum", 1.0), ("Glass", 1.1), ("Stainless Steel", 1.35), ("Cast Iron", 1.5))
WATTS = _a("Wattage", ("600W", 0.7), ("900W", 0.9), ("1200W", 1.1), ("1500W", 1.3), ("1800W", 1.55))
PACK = _a("Number of Items", ("Pack of 1", 1.0), ("Pack of 2", 1.8), ("Pack of 4", 3.2), ("Pack of 6", 4.4), ("Pack of 12", 7.5))
WOOD = _a("Material", ("Pine", 0.8), ("Bamboo", 0.95), ("Oak", 1.3), ("Walnut", 1.6), ("Maple", 1.4))
SIZE_SML = _a("Size", ("Small", 0.75), ("Medium", 1.0), ("Large", 1.3), ("X-Large", 1.6))
STORAGE = _a("Storage Capacity", ("64GB", 0.7), ("128GB", 0.9), ("256GB", 1.15), ("512GB", 1.5), ("1TB", 2.0))
SCREEN = _a("Screen Size", ("24 Inch", 0.7), ("27 Inch", 0.9), ("32 Inch", 1.2), ("43 Inch", 1.6), ("55 Inch", 2.2))
VOLTAGE = _a("Voltage", ("12V", 0.7), ("18V", 1.0), ("20V", 1.15), ("40V", 1.6))
CAPACITY_QT = _a("Capacity", ("2 Quart", 0.75), ("4 Quart", 0.95), ("6 Quart", 1.15), ("8 Quart", 1.35))
CAPACITY_CUFT = _a("Capacity", ("1.7 Cubic Feet", 0.6), ("3.1 Cubic Feet", 0.85), ("4.5 Cubic Feet", 1.1), ("10 Cubic Feet", 1.7))
COUNT_SHEETS = _a("Sheet Count", ("100 Sheets", 0.6), ("250 Sheets", 0.85), ("500 Sheets", 1.0), ("2500 Sheets", 3.4))
LENGTH_FT = _a("Length", ("6 ft", 0.7), ("10 ft", 0.9), ("25 ft", 1.3), ("50 ft", 1.9), ("100 ft", 3.0))
PET_WEIGHT = _a("Item Weight", ("4 Pounds", 0.6), ("12 Pounds", 1.0), ("24 Pounds", 1.6), ("40 Pounds", 2.2))
STRINGS = _a("String Material", ("Nylon", 0.85), ("Steel", 1.0), ("Phosphor Bronze", 1.25), ("Coated Nickel", 1.4))
PIECES = _a("Number of Pieces", ("50 Pieces", 0.6), ("250 Pieces", 0.85), ("500 Pieces", 1.0), ("1000 Pieces", 1.3), ("3000 Pieces", 2.0))
COUNT_CAPS = _a("Unit Count", ("30 Count", 0.6), ("60 Count", 0.9), ("120 Count", 1.4), ("240 Count", 2.2))
CONNECT = _a("Connectivity", ("Wired", 0.7), ("Bluetooth", 1.0), ("Wi-Fi", 1.35), ("Wi-Fi 6E", 1.7))

CATEGORIES: dict[str, tuple[tuple[Product, ...], tuple[tuple[str, ...], ...]]] = {
    # category: (products, brands by tier: budget, mid, premium, luxury)
    "Appliances": (
        (
            Product("Blender", 45, (WATTS, MATERIAL_HOME), ("smoothies", "crushing ice", "soups")),
            Product("Air Fryer", 70, (CAPACITY_QT, WATTS), ("crispy fries", "roasting vegetables", "reheating")),
            Product("Compact Refrigerator", 190, (CAPACITY_CUFT, MATERIAL_HOME), ("dorm rooms", "offices", "garages")),
            Product("Microwave Oven", 110, (WATTS, CAPACITY_CUFT), ("defrosting", "reheating", "popcorn")),
            Product("Coffee Maker", 55, (CAPACITY_QT, MATERIAL_HOME), ("morning brews", "iced coffee", "entertaining")),
        ),
        (("Kitchora", "Homvex", "Brewlo"), ("Hamilton Ridge", "Oster Lane"), ("Breville Crest", "KitchenPro"), ("Vitamix Royal", "Smeg Atelier")),
    ),
    "Electronics": (
        (
            Product("Wireless Earbuds", 35, (CONNECT,), ("workouts", "commuting", "calls")),
            Product("Computer Monitor", 160, (SCREEN,), ("gaming", "office work", "photo editing")),
            Product("Portable SSD", 60, (STORAGE, CONNECT), ("backups", "video projects", "travel")),
            Product("Smart Speaker", 50, (CONNECT, SIZE_SML), ("music", "voice control", "smart homes")),
            Product("Tablet", 170, (STORAGE, SCREEN), ("streaming", "reading", "sketching")),
        ),
        (("Voxtel", "Zentrix", "Ampli"), ("Ankerline", "Sonique"), ("Samsora", "Bose Harbor"), ("Bang Olufsen Noir", "Leica Sound")),
    ),
    "Home_and_Kitchen": (
        (
            Product("Cookware Set", 80, (MATERIAL_HOME, PACK), ("searing", "simmering", "everyday cooking")),
            Product("Cutting Board", 18, (WOOD, SIZE_SML), ("meal prep", "serving", "carving")),
            Product("Bath Towel Set", 25, (SIZE_SML, PACK), ("bathrooms", "guest rooms", "spas")),
            Product("Dutch Oven", 60, (CAPACITY_QT, MATERIAL_HOME), ("braising", "bread baking", "stews")),
            Product("Bookshelf", 90, (WOOD, SIZE_SML), ("living rooms", "home offices", "kids rooms")),
        ),
        (("Casa Basics", "Lumi Home", "Nestly"), ("Cuisinart Way", "OXO Grove"), ("Le Creuset Vale", "All-Clad Forge"), ("Staub Heritage", "Mauviel 1830")),
    ),
    "Tools_and_Home_Improvement": (
        (
            Product("Cordless Drill", 65, (VOLTAGE, PACK), ("woodworking", "drywall", "furniture assembly")),
            Product("Extension Cord", 14, (LENGTH_FT, PACK), ("workshops", "outdoor lighting", "garages")),
            Product("Circular Saw", 90, (VOLTAGE, WATTS), ("framing", "plywood", "decking")),
            Product("Tool Chest", 120, (SIZE_SML, MATERIAL_HOME), ("garages", "job sites", "workshops")),
            Product("LED Shop Light", 22, (PACK, LENGTH_FT), ("garages", "basements", "workbenches")),
        ),
        (("Workzone", "Toolvex", "Handyco"), ("Craftline", "Ryobo"), ("DeWalt Pro", "Makita Edge"), ("Festool Elite", "Hilti Prime")),
    ),
    "Sports_and_Outdoors": (
        (
            Product("Camping Tent", 85, (SIZE_SML, MATERIAL_HOME), ("backpacking", "family camping", "festivals")),
            Product("Yoga Mat", 20, (SIZE_SML, PACK), ("yoga", "pilates", "stretching")),
            Product("Adjustable Dumbbells", 110, (PET_WEIGHT, MATERIAL_HOME), ("home gyms", "strength training", "rehab")),
            Product("Insulated Water Bottle", 16, (CAPACITY_QT, PACK), ("hiking", "the gym", "school")),
            Product("Mountain Bike Helmet", 45, (SIZE_SML, CONNECT), ("trail riding", "commuting", "downhill")),
        ),
        (("Trailmate", "Fitora", "Campio"), ("Coleman Ridge", "Gaiam Flow"), ("Yeti Summit", "Osprey Peak"), ("Arcteryx Alpine", "Hilleberg Nord")),
    ),
    "Office_Products": (
        (
            Product("Printer Paper", 9, (COUNT_SHEETS, PACK), ("printing", "copying", "school projects")),
            Product("Office Chair", 120, (MATERIAL_HOME, SIZE_SML), ("long work days", "gaming", "study")),
            Product("Label Maker", 35, (CONNECT, PACK), ("filing", "pantries", "cable management")),
            Product("Standing Desk", 230, (WOOD, SIZE_SML), ("home offices", "studios", "classrooms")),
            Product("Gel Pens", 7, (PACK, SIZE_SML), ("journaling", "note taking", "drawing")),
        ),
        (("Papero", "Officio", "Deskly"), ("Amazon Basics Pro", "Pilot Line"), ("Herman Crest", "Steelcase Arc"), ("Montblanc Atelier", "Vitra Studio")),
    ),
    "Pet_Supplies": (
        (
            Product("Dry Dog Food", 28, (PET_WEIGHT,), ("adult dogs", "puppies", "senior dogs")),
            Product("Cat Litter", 14, (PET_WEIGHT, PACK), ("multi-cat homes", "odor control", "kittens")),
            Product("Dog Bed", 40, (SIZE_SML, MATERIAL_HOME), ("large breeds", "crates", "senior dogs")),
            Product("Aquarium Filter", 30, (SIZE_SML, WATTS), ("freshwater tanks", "reef tanks", "turtle tanks")),
            Product("Cat Tree", 70, (SIZE_SML, WOOD), ("climbing", "scratching", "napping")),
        ),
        (("Pawly", "Petvo", "Furbest"), ("Purina Fields", "Kong Trail"), ("Orijen Wild", "Blue Buffalo Peak"), ("Hermes Pet", "Tuft Paw Luxe")),
    ),
    "Musical_Instruments": (
        (
            Product("Acoustic Guitar", 180, (WOOD, STRINGS), ("beginners", "songwriting", "stage")),
            Product("Guitar Strings", 8, (STRINGS, PACK), ("acoustic guitars", "practice", "recording")),
            Product("Digital Piano", 350, (SIZE_SML, CONNECT), ("lessons", "home studios", "gigs")),
            Product("Studio Microphone", 90, (CONNECT, MATERIAL_HOME), ("podcasts", "vocals", "streaming")),
            Product("Drum Sticks", 10, (WOOD, PACK), ("rock", "jazz", "practice pads")),
        ),
        (("Melodix", "Tunera", "Soundly"), ("Yamaha Grove", "Fender Path"), ("Martin Forge", "Shure Studio"), ("Steinway Salon", "Neumann Reference")),
    ),
    "Toys_and_Games": (
        (
            Product("Jigsaw Puzzle", 15, (PIECES,), ("family nights", "adults", "kids")),
            Product("Building Blocks Set", 35, (PIECES, SIZE_SML), ("creative play", "STEM learning", "gifts")),
            Product("Remote Control Car", 45, (SIZE_SML, VOLTAGE), ("racing", "off-road fun", "kids")),
            Product("Board Game", 28, (SIZE_SML, PACK), ("game nights", "parties", "strategy fans")),
            Product("Plush Toy", 14, (SIZE_SML, PACK), ("toddlers", "collectors", "bedtime")),
        ),
        (("Playzy", "Toyloft", "Kidoo"), ("Hasbro Fun", "Melissa Grove"), ("Lego Studio", "Ravens Classic"), ("Steiff Heritage", "Lego Master")),
    ),
    "Health_and_Personal_Care": (
        (
            Product("Vitamin D3 Supplement", 12, (COUNT_CAPS, PACK), ("immune support", "bone health", "daily wellness")),
            Product("Electric Toothbrush", 45, (CONNECT, PACK), ("plaque removal", "gum care", "travel")),
            Product("Digital Thermometer", 15, (CONNECT, PACK), ("fever checks", "babies", "clinics")),
            Product("Massage Gun", 80, (WATTS, SIZE_SML), ("sore muscles", "recovery", "athletes")),
            Product("Protein Powder", 30, (PET_WEIGHT, PACK), ("muscle recovery", "meal replacement", "shakes")),
        ),
        (("Vitalo", "Healthmark", "Puravia"), ("Nature Made Grove", "Oral Clean"), ("Theragun Pro", "Philips Sonic"), ("Omron Platinum", "Hyperice Elite")),
    ),
}

TIER_MULT = (0.65, 1.0, 1.6, 2.6)
TIER_WORDS = (("Value", "Basic", "Everyday"), ("Classic", "Plus", "Select"), ("Pro", "Premium", "Signature"), ("Reserve", "Atelier", "Luxe"))
COLORS = ("Black", "White", "Gray", "Navy Blue", "Red", "Sage Green", "Beige", "Charcoal")
ADJECTIVES = ("Durable", "Compact", "Lightweight", "Heavy Duty", "Ergonomic", "Modern", "Versatile", "Portable")
SELLING = (
    "Designed for {use}, it is easy to set up and easy to clean.",
    "Ideal for {use} and {use2}; a reliable choice you can count on every day.",
    "Built to last with careful quality checks, great for {use}.",
    "Whether for {use} or {use2}, it delivers consistent results.",
    "A thoughtful gift for anyone into {use}.",
)
FEATURE_TEMPLATES = (
    "{ATTR}: {value} for {use}",
    "EASY TO USE: simple controls, perfect for {use}",
    "QUALITY MATERIALS: {material} construction that resists wear",
    "WHAT YOU GET: {pack}, user manual and friendly customer support",
    "SAFE AND TESTED: meets safety standards; backed by a {warranty} warranty",
    "VERSATILE: great for {use} and {use2}",
)
WARRANTY = (("90-day", 0.95), ("1-year", 1.0), ("2-year", 1.08), ("5-year", 1.2))


def _asin(rng: random.Random) -> str:
    return "D" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(9))


class RawRecord(TypedDict):
    """One generated record in the Amazon Reviews 2023 metadata format (``_category`` is dropped before output)."""

    main_category: str
    title: str
    average_rating: float
    rating_number: int
    features: list[str]
    description: list[str]
    price: float | str | None
    images: list[str]
    videos: list[str]
    store: str
    categories: list[str]
    details: dict[str, str | dict[str, int]]
    parent_asin: str
    bought_together: None
    _category: NotRequired[str]


def _record(rng: random.Random) -> RawRecord:
    category = rng.choice(sorted(CATEGORIES))
    products, brands = CATEGORIES[category]
    product = rng.choice(products)
    tier = rng.choices(range(4), weights=(4, 4, 2, 1))[0]
    brand = rng.choice(brands[tier])
    price = product.base * TIER_MULT[tier]
    chosen: list[tuple[str, str]] = []
    for attr in product.attrs:
        text, mult = rng.choice(attr.options)
        price *= mult
        chosen.append((attr.key, text))
    warranty, w_mult = rng.choice(WARRANTY)
    price *= w_mult * math.exp(rng.gauss(0.0, NOISE_SIGMA))
    uses = list(product.uses)
    rng.shuffle(uses)
    values = [text for _, text in chosen]
    color = rng.choice(COLORS)
    title = f"{brand} {rng.choice(TIER_WORDS[tier])} {rng.choice(ADJECTIVES)} {product.noun}, {', '.join(values)}, {color}"
    material = next((t for k, t in chosen if "Material" in k), rng.choice(("ABS", "Polyester", "Steel")))
    pack = next((t for k, t in chosen if k == "Number of Items"), "1 unit")
    fill = {"use": uses[0], "use2": uses[1], "material": material, "pack": pack, "warranty": warranty}
    features = []
    for key, text in chosen:
        features.append(FEATURE_TEMPLATES[0].format(ATTR=key.upper(), value=text, use=rng.choice(uses)))
    for template in rng.sample(FEATURE_TEMPLATES[1:], k=rng.randint(2, 4)):
        features.append(template.format(**fill))
    description = [
        f"The {brand} {product.noun} brings {TIER_WORDS[tier][0].lower()}-grade quality to {uses[0]}.",
        rng.choice(SELLING).format(**fill),
    ]
    if rng.random() < 0.5:
        description.append(f"Available in {color.lower()}; {', '.join(values).lower()}.")
    details: dict[str, str | dict[str, int]] = {
        "Brand": brand,
        **{key: text for key, text in chosen},
        "Color": color,
        "Warranty": warranty,
        "Item model number": f"{brand[:2].upper()}{rng.randint(1000, 9999)}X{rng.randint(10, 99)}",
        "Best Sellers Rank": {category.replace("_", " "): rng.randint(100, 900_000)},
        "Date First Available": f"{rng.choice(('January', 'March', 'June', 'September', 'November'))} {rng.randint(1, 28)}, {rng.randint(2015, 2023)}",
    }
    return {
        "main_category": category.replace("_and_", " & ").replace("_", " "),
        "title": title,
        "average_rating": round(rng.uniform(3.0, 5.0), 1),
        "rating_number": rng.randint(0, 5000),
        "features": features,
        "description": description,
        "price": round(min(max(price, 0.99), 989.99), 2),
        "images": [],
        "videos": [],
        "store": brand,
        "categories": [category.replace("_", " "), product.noun],
        "details": details,
        "parent_asin": _asin(rng),
        "bought_together": None,
        "_category": category,
    }


def generate(n: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> Iterator[RawRecord]:
    """``n`` raw-2023-format records, identical for the same ``(n, seed)``.

    About 3% are unpriced (``null`` or ``"None"``) and 1% repeat an earlier
    ``parent_asin``, as real dumps do.
    """
    rng = random.Random(f"{GENERATOR_ID}:{seed}")
    previous: list[RawRecord] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.01 and previous:
            record = rng.choice(previous).copy()
        else:
            record = _record(rng)
            if roll < 0.035:
                record["price"] = None if roll < 0.03 else "None"
            if len(previous) < 500:
                previous.append(record)
        record.pop("_category", None)
        yield record


def write_raw(path: Path, n: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> Path:
    """Write :func:`generate` as JSON lines to ``path``."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as fh:
        for record in generate(n, seed):
            fh.write(json.dumps(record, ensure_ascii=False))
            fh.write("\n")
    return path
