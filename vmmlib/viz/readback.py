"""The read-back problem as a table a notebook shows: one row per register address.

``readback_table(rows, title)`` renders the rows of ``IdeController.readback_table()`` or
``vmmlib.devices.readback.uart_readback_table()`` (``ReadbackRow``): the port, what a read
there returns and what a write there sets, the value a read gives now next to the value the
guest last wrote, whether a read gives back what was written, and what the device model must
keep in a shadow copy because the guest never can read it. The result shows as an HTML table
in a notebook (rows the guest cannot read back tinted) and as aligned plain text anywhere
else (``str()``, ``print``, nbval). Plain Python: no matplotlib, no ipywidgets.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence

from ..devices.readback import ReadbackRow
from ..errors import ConfigError
from .palette import ROLES

HEADINGS = ("port", "a read returns", "a write sets", "read now", "last written",
            "read back?", "the model must keep")
_CELL = "padding:1px 8px;text-align:left;vertical-align:top;font-size:12px"


def _value(value: int | None) -> str:
    return "-" if value is None else f"0x{value:02X}"


def _cells(row: ReadbackRow) -> tuple[str, ...]:
    if row.port is None:  # internal state: no address, no register value (a count, if any)
        now = "-" if row.read_value is None else str(row.read_value)
        return ("(none)", row.read, row.write, now, _value(row.written), "-", row.shadow or "-")
    return (f"0x{row.port:03X}", row.read, row.write, _value(row.read_value),
            _value(row.written), "yes" if row.readable else "no", row.shadow or "-")


class ReadbackTable:
    """A rendered read-back table (see the module docstring)."""

    def __init__(self, rows: Sequence[ReadbackRow], title: str = "") -> None:
        rows = list(rows)
        if not rows or not all(isinstance(r, ReadbackRow) for r in rows):
            raise ConfigError("readback_table takes the ReadbackRow list of a device's "
                              "readback_table() or uart_readback_table()")
        self.rows = rows
        self.title = title

    def cells(self) -> list[tuple[str, ...]]:
        return [_cells(r) for r in self.rows]

    def text(self, shadow_width: int = 46) -> str:
        """Aligned columns; the last one wrapped at ``shadow_width`` characters."""
        cells = [tuple(HEADINGS)] + self.cells()
        widths = [max(len(c[i]) for c in cells) for i in range(len(HEADINGS) - 1)]
        indent = sum(widths) + 2 * len(widths)
        lines = [self.title] if self.title else []
        for c in cells:
            head = "  ".join(c[i].ljust(widths[i]) for i in range(len(widths)))
            shadow = textwrap.wrap(c[-1], shadow_width) or [""]
            lines.append(f"{head}  {shadow[0]}".rstrip())
            lines += [" " * indent + more for more in shadow[1:]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_html_(self) -> str:
        tint = ROLES["highlight"]
        head = "".join(f'<th style="{_CELL}">{html.escape(h)}</th>' for h in HEADINGS)
        body = []
        for row, cells in zip(self.rows, self.cells(), strict=True):
            style = f' style="background:{tint}"' if row.shadow else ""
            tds = "".join(f'<td style="{_CELL}">{html.escape(c)}</td>' for c in cells)
            body.append(f"<tr{style}>{tds}</tr>")
        caption = (f'<caption style="text-align:left;font-weight:bold">{html.escape(self.title)}'
                   "</caption>" if self.title else "")
        return (f'<table style="border-collapse:collapse">{caption}<thead><tr>{head}</tr>'
                f"</thead><tbody>{''.join(body)}</tbody></table>")


def readback_table(rows: Sequence[ReadbackRow], title: str = "") -> ReadbackTable:
    """The table of ``rows`` (see the module docstring)."""
    return ReadbackTable(rows, title)


__all__ = ["HEADINGS", "ReadbackTable", "readback_table"]
