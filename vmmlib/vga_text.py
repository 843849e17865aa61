"""The VGA colour text buffer at 0xB8000: the simplest MMIO device there is.

80 × 25 cells, two bytes each: the character (code page 437) at the even address and the
attribute (foreground bits 3:0, background bits 7:4) at the odd one; cell (row, col) is at
0xB8000 + 2 × (80 × row + col). 0x07 is light grey on black. Source: hardware-facts.md §10
(QEMU hw/display/vga.c text renderer; xv6 console.c).
"""

from __future__ import annotations

import numpy as np

from .errors import BadAddressError

VGA_WINDOW = (0xA0000, 0xBFFFF)
TEXT_BASE = 0xB8000
TEXT_SIZE = 0x8000  # B8000-BFFFF
COLS, ROWS = 80, 25
ATTR_DEFAULT = 0x07


class VgaTextBuffer:
    """The 32 KiB colour-text window as a bus device (offsets from 0xB8000)."""

    def __init__(self) -> None:
        self.vram = np.zeros(TEXT_SIZE, np.uint8)

    def _check(self, offset: int, size: int) -> None:
        if not 0 <= offset <= TEXT_SIZE - size:
            raise BadAddressError(f"offset {offset:#x} (+{size}) is outside the text window")

    def read(self, offset: int, size: int) -> int:
        self._check(offset, size)
        return int.from_bytes(self.vram[offset : offset + size].tobytes(), "little")

    def write(self, offset: int, size: int, value: int) -> None:
        self._check(offset, size)
        self.vram[offset : offset + size] = np.frombuffer(value.to_bytes(size, "little"), np.uint8)

    def row(self, r: int) -> str:
        """Row ``r`` of the screen as text (non-printable characters shown as spaces)."""
        cells = self.vram[2 * COLS * r : 2 * COLS * (r + 1) : 2]
        return "".join(chr(c) if 32 <= c < 127 else " " for c in cells).rstrip()

    def screen(self) -> list[str]:
        """All 25 rows."""
        return [self.row(r) for r in range(ROWS)]


def cell_address(row: int, col: int) -> int:
    """Guest-physical address of the text cell at (row, col)."""
    return TEXT_BASE + 2 * (COLS * row + col)
