"""Fit a table to a terminal's width, deciding what gives way first.

Pure: columns and rows of plain text go in, lines of (text, column) segments come
out; the plain renderer joins them, the colour renderer styles them, so the two
differ only in escape codes.

What gives way, in order, until the table fits:

1. columns marked ``drop`` (ID), lowest rank first;
2. cells with a short form (a ``64%/36% CPU/GPU`` split becomes ``36% GPU``);
3. the gap between columns, from three spaces to two;
4. a ``wrap`` column (a reason) wraps onto continuation lines (it starts wrapping
   first, at 30 characters a line, and goes down to 16 here: wrapping loses nothing);
5. the middle of long names (``nomic-emb…text:latest``), never below ``min_width``;
6. a ``wrap`` column once more, down to 8 cells a line, rather than overflow.

Widths are display cells (:mod:`ollama_resident.cells`), not characters: a CJK or
emoji character takes two, so ``qwen中文助手:7b`` lines up with ``llama3.2``, and a
name is never cut inside a wide character.

Headers are never cut, and columns without ``drop``, ``elide`` or ``wrap`` (a
countdown, a size) are never touched: a table that still does not fit overflows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ollama_resident import cells

__all__ = ["Column", "Fitted", "elide_middle", "fit"]

ELLIPSIS = "…"


@dataclass(frozen=True)
class Column:
    header: str
    align: Literal["left", "right"] = "left"
    drop: int | None = None  # rank in which the whole column gives way (lowest first)
    short: Callable[[str], str] | None = None  # a narrower form of a cell
    elide: bool = False  # may lose the middle of long cells
    min_width: int = 16  # with elide: never narrower than this (or the header)
    wrap: bool = False  # free text: wraps at word boundaries when space runs out


@dataclass
class Fitted:
    """Columns kept (indices into the input), their widths, the gap, the cells."""

    keep: list[int]
    widths: list[int]
    gap: int
    rows: list[list[list[str]]] = field(default_factory=list)  # row -> cell -> lines
    columns: Sequence[Column] = ()

    @property
    def width(self) -> int:
        return sum(self.widths) + self.gap * max(0, len(self.widths) - 1)

    def lines(self) -> list[list[tuple[str, int | None, int]]]:
        """Each output line as segments ``(text, column index or None, row index)``.

        Row -1 is the header. Gaps are segments with column None; trailing spaces
        are never produced.
        """
        out: list[list[tuple[str, int | None, int]]] = []
        all_rows = [[[self.columns[i].header] for i in self.keep], *self.rows]
        for r, row_cells in enumerate(all_rows, start=-1):
            height = max(len(c) for c in row_cells) if row_cells else 1
            for k in range(height):
                segs: list[tuple[str, int | None, int]] = []
                for j, (i, width) in enumerate(zip(self.keep, self.widths, strict=True)):
                    text = row_cells[j][k] if k < len(row_cells[j]) else ""
                    if self.columns[i].align == "right":
                        text = cells.rjust(text, width)
                    elif j < len(self.keep) - 1:
                        text = cells.ljust(text, width)
                    if j:
                        segs.append((" " * self.gap, None, r))
                    segs.append((text, i, r))
                # no trailing spaces: trim empty trailing segments and right padding
                while segs and not segs[-1][0].strip():
                    segs.pop()
                if segs:
                    text, col, row = segs[-1]
                    segs[-1] = (text.rstrip(), col, row)
                out.append(segs)
        return out

    def plain(self) -> str:
        return "\n".join("".join(s[0] for s in line) for line in self.lines())


def elide_middle(text: str, width: int) -> str:
    """Keep the start and the end (the tag), drop the middle: at most ``width`` cells,
    and exactly ``width`` unless a wide character would have to be split.

    >>> elide_middle("nomic-embed-text:latest", 16)
    'nomic-em…:latest'
    >>> elide_middle("llama3.2", 16)
    'llama3.2'
    >>> elide_middle("qwen中文助手:7b", 10), elide_middle("qwen中文助手:7b", 9)
    ('qwen中…:7b', 'qwe…手:7b')
    """
    if cells.width(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    room = width - 1
    best = ""
    # The end gets half; when a wide character makes that a cell short, the split nearest
    # to half that fills the width exactly wins (all-wide text in an odd room cannot).
    half = room // 2
    shares = [half + d for n in range(room + 1) for d in ((n, -n) if n else (0,))]
    for share in (s for s in shares if 0 <= s <= room):
        tail = cells.cut_end(text, share)
        head = cells.cut(text, room - cells.width(tail))
        if cells.width(head) + cells.width(tail) > cells.width(best) - 1:
            best = head + ELLIPSIS + tail
        if cells.width(best) == width:
            break
    return best


def _wrap(text: str, width: int) -> list[str]:
    return cells.wrap(text, width)


def fit(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int | None,
    *,
    gap: int = 3,
) -> Fitted:
    """Lay ``rows`` out in at most ``width`` characters (None: as wide as they need)."""
    table = [[str(c) for c in row] for row in rows]
    keep = list(range(len(columns)))
    widths = {i: max([_w(columns[i].header), *(_w(r[i]) for r in table)]) for i in keep}

    def over() -> int:
        return sum(widths[i] for i in keep) + gap * max(0, len(keep) - 1) - (width or 0)

    def done() -> Fitted:
        return _finish(columns, table, keep, [widths[i] for i in keep], gap)

    def squeeze(kind: str, floor_of: Callable[[Column], int]) -> None:
        for i in keep:
            col = columns[i]
            if getattr(col, kind) and over() > 0:
                floor = min(widths[i], max(_w(col.header), floor_of(col)))
                widths[i] = max(floor, widths[i] - over())
                if kind == "elide":
                    for r in table:
                        r[i] = elide_middle(r[i], widths[i])

    if width is None or over() <= 0:
        return done()
    # 0. free text wraps first, while it keeps a comfortable measure
    squeeze("wrap", lambda c: _COMFORTABLE)
    # 1. whole columns, lowest rank first
    for i in sorted(
        (i for i, c in enumerate(columns) if c.drop is not None),
        key=lambda i: (columns[i].drop or 0, i),
    ):
        if over() <= 0:
            return done()
        keep.remove(i)
    # 2. short forms
    for i in keep:
        shorten = columns[i].short
        if shorten is not None and over() > 0:
            for r in table:
                r[i] = shorten(r[i])
            widths[i] = max([_w(columns[i].header), *(_w(r[i]) for r in table)])
    # 3. a narrower gap
    if over() > 0:
        gap = min(gap, 2)
    # 4. free text down to a narrow measure (wrapping loses nothing), 5. long names' middles
    squeeze("wrap", lambda c: _NARROW)
    squeeze("elide", lambda c: c.min_width)
    # 6. free text narrower still: a tall cell beats a line the terminal breaks at column 0
    squeeze("wrap", lambda c: _NARROWEST)
    return done()


_COMFORTABLE = 30  # a wrapped reason keeps at least this many cells a line at first
_NARROW = 16
_NARROWEST = 8


_w = cells.width


def _finish(
    columns: Sequence[Column],
    table: list[list[str]],
    keep: list[int],
    widths: list[int],
    gap: int,
) -> Fitted:
    rows = []
    for r in table:
        row = []
        for i, w in zip(keep, widths, strict=True):
            row.append(_wrap(r[i], w) if columns[i].wrap and _w(r[i]) > w else [r[i]])
        rows.append(row)
    return Fitted(keep=keep, widths=widths, gap=gap, rows=rows, columns=columns)
