"""The unit of every dataset: one product with its text and its true price."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Item:
    """One curated product.

    ``text`` is what a predictor may read (title, description, features and
    scrubbed details, assembled by the curation recipe). ``price`` is the
    truth in USD; predictors must never look at it for test items.
    ``title`` and ``details`` are optional structured extras kept by the
    curation of raw records (``details`` holds the raw detail key/values,
    including keys that were scrubbed from ``text``, e.g. "Best Sellers Rank").
    """

    id: str
    text: str
    price: float
    category: str | None = None
    title: str | None = None
    details: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
