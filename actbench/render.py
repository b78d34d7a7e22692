"""Rendering of compare's tables: terminal table, CSV, Markdown, JSON. Computes nothing."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("table", "csv", "markdown", "json")


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)


def cell(value: Any, empty: str) -> str:
    """One table cell as text, identical in every format."""
    if value is None:
        return empty
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.3e}"
    return str(value)


def render(tables: list[Table], fmt: str, color: bool | None = None) -> str:
    """The tables as text in one of FORMATS; every format carries the same numbers."""
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
        else:
            out.write(_rich_table(t, color))
    return out.getvalue()


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


def _rich_table(t: Table, color: bool | None) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    columns, rows = _merged(t)
    table = RichTable(title=t.title, box=box.SIMPLE_HEAVY, title_justify="left")
    for col in columns:
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, width=1000)
    console.print(table, crop=False)
    for note in t.notes:
        console.print(f"  {note}", style="dim", soft_wrap=True)
    out = [line.rstrip() for line in buf.getvalue().splitlines()]
    return "\n".join(out) + "\n"
