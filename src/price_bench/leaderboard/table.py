"""A neutral table model, rendered to Markdown and HTML by separate renderers.

After HELM's ``presentation/table.py``: a :class:`Table` has a header of
:class:`HeaderCell` (which knows whether lower is better) and rows of
:class:`Cell` (a raw value for sorting, a display string, and optional extras).
Renderers never compute anything: they only lay out what is here.

Every string in a table is plain text; renderers escape it for their format.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HeaderCell:
    """A column heading.

    ``lower_is_better`` is True, False, or None when the column has no
    direction (names, counts). ``description`` becomes a tooltip/footnote.
    ``secondary_detail``: compact renderers (Markdown) leave out the cells' detail.
    """

    label: str
    lower_is_better: bool | None = None
    description: str = ""
    numeric: bool = True
    secondary_detail: bool = False


@dataclass(frozen=True)
class Cell:
    """One table cell.

    ``value`` is the raw number (or text) used for sorting; ``display`` is
    what a reader sees; ``detail`` is a secondary line (a confidence
    interval, a config hash) shown smaller in HTML and in brackets in
    Markdown; ``best`` marks the best value of its column or row;
    ``heat`` (0 best .. 1 worst) tints the cell in HTML; ``muted`` greys
    out a figure from too few items to compare (marked † in Markdown).
    """

    value: float | str | None
    display: str
    detail: str = ""
    best: bool = False
    heat: float | None = None
    title: str = ""
    muted: bool = False

    @classmethod
    def text(cls, text: str, detail: str = "", title: str = "") -> Cell:
        """A text cell that sorts by its own text."""
        return cls(value=text, display=text, detail=detail, title=title)


@dataclass
class Table:
    """A titled table: header cells and rows of cells of the same length."""

    title: str
    header: list[HeaderCell]
    rows: list[list[Cell]] = field(default_factory=list)
    caption: str = ""
    table_id: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"table {self.title!r}: a row has {len(row)} cells for {len(self.header)} columns")

    def add_row(self, row: list[Cell]) -> None:
        """Append a row, checking its width."""
        if len(row) != len(self.header):
            raise ValueError(f"table {self.title!r}: a row has {len(row)} cells for {len(self.header)} columns")
        self.rows.append(row)
