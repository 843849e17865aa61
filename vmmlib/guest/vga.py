"""A guest kernel's VGA text console, as xv6's ``console.c`` writes it: one 16-bit store of
character | attribute << 8 per cell of the colour text buffer at 0xB8000."""

from __future__ import annotations

from ..cpu.ops import Guest, Store
from ..devices.vga_text import ATTR_DEFAULT, cell_address


def vga_puts(text: str, row: int = 0, col: int = 0, attr: int = ATTR_DEFAULT) -> Guest:
    """Write ``text`` into the colour text buffer, one 16-bit cell store per character."""
    for i, ch in enumerate(text.encode()):
        yield Store(cell_address(row, col + i), 2, ch | attr << 8)
