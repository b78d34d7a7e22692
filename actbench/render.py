"""Rendering of compare's tables: terminal table, CSV, Markdown, JSON. Computes nothing."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("table", "csv", "markdown", "json")


@dataclass
class Brief:
    """One column of the narrow terminal view: a header and a pattern over table columns,
    e.g. Brief("final %", "{} ± {}", ("final_acc_mean", "final_acc_std"))."""

    header: str
    pattern: str
    columns: tuple[str, ...]
    wrap: bool = False  # may break over lines (at " [" or spaces) to fit NARROW
    number: str = ".2f"  # format spec for float values (accuracies: hundredths of a point)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)
    brief: list[Brief] = field(default_factory=list)  # narrow terminal view; [] = every column


def cell(value: Any, empty: str) -> str:
    """One table cell as text, identical in every format."""
    if value is None:
        return empty
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.3e}"
    return str(value)


def render(tables: list[Table], fmt: str, color: bool | None = None, wide: bool = False) -> str:
    """The tables as text in one of FORMATS; every format carries the same numbers (the
    terminal table shows a table's brief view, rounded, unless wide)."""
    if fmt == "json":
        return (
            json.dumps(
                [
                    {
                        "title": t.title,
                        "notes": t.notes,
                        "rows": [dict(zip(t.columns, row, strict=True)) for row in t.rows],
                    }
                    for t in tables
                ],
                indent=2,
            )
            + "\n"
        )
    out = io.StringIO()
    for i, t in enumerate(tables):
        if i:
            out.write("\n")
        if fmt == "csv":
            out.write(f"# {t.title}\n")
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(t.columns)
            writer.writerows([[cell(v, "") for v in row] for row in t.rows])
        elif fmt == "markdown":
            out.write(f"### {t.title}\n\n| {' | '.join(t.columns)} |\n")
            out.write("|" + "|".join("---" for _ in t.columns) + "|\n")
            for row in t.rows:
                out.write("| " + " | ".join(cell(v, "-") for v in row) + " |\n")
            for note in t.notes:
                out.write(f"\n_{note}_\n")
        elif t.brief and not wide:
            out.write(_narrow_table(t.title, *_brief(t), t.notes, [b.wrap for b in t.brief]))
        else:
            out.write(_rich_table(t.title, *_merged(t), t.notes, color))
    return out.getvalue()


NARROW = 100  # terminal columns the brief view fits


def _narrow_table(
    title: str, columns: list[str], rows: list[list[str]], notes: list[str], wraps: list[bool]
) -> str:
    """Plain-text table within NARROW columns: cells of the widest columns wrap at spaces
    (e.g. 'not distinguishable' over two lines) until the table fits."""
    import textwrap

    gap = 2
    cells = [[c.split("\n") for c in row] for row in rows]
    heads = [[h] for h in columns]

    def width(i: int) -> int:
        return max(len(line) for cell in [heads[i], *(r[i] for r in cells)] for line in cell)

    for _ in range(len(columns) * 4):
        widths = [width(i) for i in range(len(columns))]
        if sum(widths) + gap * (len(columns) - 1) <= NARROW:
            break
        wrappable = [
            i
            for i in range(len(columns))
            if wraps[i] and any(len(r[i]) == 1 and " " in r[i][0] for r in cells)
        ]
        if not wrappable:
            break
        i = max(wrappable, key=lambda j: widths[j])
        target = max(len(w) for r in cells for w in r[i][0].split()) if cells else widths[i]
        for r in cells:
            text = r[i][0]
            if len(r[i]) == 1 and " [" in text:  # a value and its interval: one per line
                r[i] = [text[: text.index(" [")], text[text.index(" [") + 1 :]]
            elif len(r[i]) == 1:
                r[i] = textwrap.wrap(text, max(target, widths[i] // 2)) or [""]
    widths = [width(i) for i in range(len(columns))]
    if sum(widths) + gap * (len(columns) - 1) > NARROW:
        gap = 1  # nothing left to wrap: closer columns before a line longer than NARROW

    def line(parts: list[str]) -> str:
        return (" " * gap).join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip()

    out = [title, "", line(columns), line(["─" * w for w in widths])]
    for row in cells:
        height = max(len(c) for c in row)
        for k in range(height):
            out.append(line([c[k] if k < len(c) else "" for c in row]))
    out.append("")
    for note in notes:
        out += textwrap.wrap(note, NARROW, initial_indent="  ", subsequent_indent="    ")
    return "\n".join(out) + "\n"


def _short(value: Any, number: str) -> str:
    return format(value, number) if isinstance(value, float) else cell(value, "-")


def _brief(t: Table) -> tuple[list[str], list[list[str]]]:
    """Columns and cells of the narrow view: each Brief's pattern filled, '-' if all empty."""
    index = {c: i for i, c in enumerate(t.columns)}
    rows = []
    for row in t.rows:
        cells = []
        for b in t.brief:
            values = [row[index[c]] for c in b.columns]
            if values[0] is None:
                cells.append("-")
            elif None in values[1:]:  # e.g. n = 1: a mean without a std
                cells.append(_short(values[0], b.number))
            else:
                cells.append(b.pattern.format(*(_short(v, b.number) for v in values)))
        rows.append(cells)
    return [b.header for b in t.brief], rows


# Adjacent column pairs shown as one cell in the terminal table: suffixes and cell format.
_PAIRS = (
    ("_mean", "_std", "{} ± {}", ""),
    ("_low", "_high", "[{}, {}]", ""),
    ("_min", "_max", "{} – {}", "_range"),
)


def _merged(t: Table) -> tuple[list[str], list[list[str]]]:
    """Columns and cells for the terminal, with mean/std, CI and min/max pairs merged."""
    columns, picks = [], []
    i = 0
    while i < len(t.columns):
        col, nxt = t.columns[i], t.columns[i + 1] if i + 1 < len(t.columns) else ""
        pair = next(
            (p for p in _PAIRS if col.endswith(p[0]) and nxt == col[: -len(p[0])] + p[1]), None
        )
        if pair:
            columns.append(col[: -len(pair[0])] + pair[3])
            picks.append((i, i + 1, pair[2]))
            i += 2
        else:
            columns.append(col)
            picks.append((i, None, "{}"))
            i += 1
    rows = []
    for row in t.rows:
        cells = []
        for a, b, fmt in picks:
            if b is None or row[b] is None:
                cells.append(cell(row[a], "-"))
            else:
                cells.append(fmt.format(cell(row[a], "-"), cell(row[b], "-")))
        rows.append(cells)
    return columns, rows


def _rich_table(
    title: str,
    columns: list[str],
    rows: list[list[str]],
    notes: list[str],
    color: bool | None,
    width: int | None = None,
) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    narrow = width is not None
    table = RichTable(
        title=title,
        box=box.SIMPLE_HEAD if narrow else box.SIMPLE_HEAVY,
        title_justify="left",
        padding=(0, 1),
        pad_edge=not narrow,
    )
    for i, col in enumerate(columns):
        # narrow: the first column (group labels) keeps up to 30 characters, then wraps
        longest = max((len(r[i]) for r in rows), default=0)
        first = narrow and i == 0
        table.add_column(col, no_wrap=not first, min_width=min(30, longest) if first else None)
    for row in rows:
        table.add_row(*row)
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, width=width or 1000)
    console.print(table, crop=False)
    for note in notes:
        console.print(f"  {note}", style="dim", soft_wrap=not narrow)
    out = [line.rstrip() for line in buf.getvalue().splitlines()]
    return "\n".join(out) + "\n"
