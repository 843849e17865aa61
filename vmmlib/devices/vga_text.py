"""The VGA colour text buffer at 0xB8000: the simplest MMIO device there is.

80 × 25 cells, two bytes each: the character (code page 437) at the even address and the
attribute (foreground bits 3:0, background bits 7:4) at the odd one; cell (row, col) is at
0xB8000 + 2 × (80 × row + col). 0x07 is light grey on black. Source: hardware-facts.md §10
(QEMU hw/display/vga.c text renderer; xv6 console.c).
"""

from __future__ import annotations

import numpy as np

from ..errors import BadAddressError, BadSizeError, ConfigError

VGA_WINDOW = (0xA0000, 0xBFFFF)
VGA_WINDOW_BASE = 0xA0000
VGA_WINDOW_SIZE = 0x20000  # 128 KiB, A0000-BFFFF
TEXT_BASE = 0xB8000
TEXT_SIZE = 0x8000  # B8000-BFFFF
COLS, ROWS = 80, 25
ATTR_DEFAULT = 0x07


class VgaTextBuffer:
    """A VGA card in colour text mode, seen through its memory window.

    ``base`` is where the device's claim starts: ``TEXT_BASE`` (default) claims only the
    32 KiB text buffer; ``VGA_WINDOW_BASE`` claims the whole legacy window A0000-BFFFF, as
    a PC's VGA card does. In text mode (graphics register 6, memory map 11) the card only
    decodes B8000-BFFFF: below that, reads float high (0xFF) and writes are dropped.
    """

    def __init__(self, base: int = TEXT_BASE) -> None:
        if not VGA_WINDOW_BASE <= base <= TEXT_BASE:
            raise BadAddressError(f"a VGA claim starts between 0xA0000 and 0xB8000, not {base:#x}")
        self.base = base
        self.size = VGA_WINDOW_BASE + VGA_WINDOW_SIZE - base
        self.vram = np.zeros(TEXT_SIZE, np.uint8)

    def _text_offset(self, offset: int, size: int) -> int:
        if size.__class__ is not int or size not in (1, 2, 4, 8):
            raise BadSizeError(f"a VGA access moves 1, 2, 4 or 8 bytes, not {size!r}")
        if offset.__class__ is not int or not 0 <= offset <= self.size - size:
            raise BadAddressError(f"offset {offset!r} (+{size}) is outside the VGA claim")
        return offset + self.base - TEXT_BASE  # negative: below the text buffer

    def read(self, offset: int, size: int) -> int:
        text = self._text_offset(offset, size)
        if text >= 0:
            return int.from_bytes(self.vram[text : text + size].tobytes(), "little")
        value = 0
        for i in range(size):  # below B8000 nothing is decoded: those bytes float high
            value |= (0xFF if text + i < 0 else int(self.vram[text + i])) << (8 * i)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        text = self._text_offset(offset, size)
        if value.__class__ is not int or not 0 <= value < 1 << (8 * size):
            raise ConfigError(f"value {value!r} does not fit in {size} byte(s)")
        data = value.to_bytes(size, "little")
        for i in range(size):  # an access straddling B7FFF/B8000 writes only its upper bytes
            if text + i >= 0:
                self.vram[text + i] = data[i]

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
