"""The one definition of price bands (USD): curation balances its sample over them, scores are broken down by them.

:data:`PRICE_BANDS` lists the band edges, lowest first; band ``i`` holds the
prices from edge ``i`` (inclusive) to edge ``i + 1`` (exclusive). A price
below the first edge counts in the first band and one at or above the last
edge in the last band, so every price has a band: the cut points between
bands are :func:`inner_edges`.

Curation (:class:`price_bench.data.curation.Recipe`) names a band by its two
edges (``$0.5-10``, ..., ``$500-1000``): its items lie between its minimum and
maximum price. A breakdown of scores (:mod:`price_bench.metrics.breakdown`)
may see any price, so it names the outer bands open-ended (``<$10``, ...,
``$500+``): the same bands, honest labels.

Pure Python (no numpy), so any module may import it.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Band edges in USD, lowest first. Part of every curation recipe (and so of
#: its manifests): changing them changes curated datasets.
PRICE_BANDS: tuple[float, ...] = (0.5, 10, 25, 50, 100, 200, 500, 1000)


def inner_edges(edges: Sequence[float] = PRICE_BANDS) -> tuple[float, ...]:
    """The cut points between the bands (every edge but the outer two)."""
    if len(edges) < 2:
        raise ValueError(f"price bands need at least two edges, got {list(edges)}")
    return tuple(edges[1:-1])


def band_index(price: float, edges: Sequence[float] = PRICE_BANDS) -> int:
    """Index of the band holding ``price`` (0 .. ``len(edges) - 2``; outside prices count in the outer bands)."""
    index = 0
    for cut in inner_edges(edges):
        if price >= cut:
            index += 1
    return index


def closed_label(index: int, edges: Sequence[float] = PRICE_BANDS) -> str:
    """A band named by its two edges, e.g. ``$25-50`` (curation's labels)."""
    return f"${edges[index]:g}-{edges[index + 1]:g}"


def open_labels(cuts: Sequence[float]) -> list[str]:
    """Labels of the bands between ``cuts``, outer bands open-ended: ``['<$10', '$10-25', ..., '$500+']``."""
    if not cuts:
        return ["any price"]
    labels = [f"<${cuts[0]:g}"]
    labels += [f"${low:g}-{high:g}" for low, high in zip(cuts[:-1], cuts[1:], strict=True)]
    labels.append(f"${cuts[-1]:g}+")
    return labels
