"""The VGA card: the whole 128 KiB memory window A0000-BFFFF and the registers that decide what
the CPU sees there and what the screen shows.

Two claims: the card itself (``Vga``) answers the memory window (offsets 0-0x1FFFF from A0000),
and ``vga.ports`` answers the register ports 0x3C0-0x3DF (hardware-facts.md §10, §12).

The memory planes and how the CPU reaches them are in ``vmmlib.devices.vga_memory``; the
register sets behind the ports and the BIOS's mode tables in ``vmmlib.devices.vga_registers``.

**The screen.** Text mode (GR06 bit 0 = 0): cell i of the screen is character plane 0 and
attribute plane 1 at the CRTC start address (CR0C:CR0D) + i; the cursor is at CR0E:CR0F
unless CR0A bit 5 disables it. Colours go attribute index -> attribute-controller palette
register -> DAC entry, with AR10 bit 7 and AR14 supplying the high bits (blinking: AR10 bit 3
makes attribute bit 7 "blink" and leaves 3 background bits; the picture shows the "on" phase).
Mode 13h: 320 x 200 bytes, pixel n at plane n & 3, offset n >> 2, through the DAC (masked
with 3C6). The screen is blank while 3C0's PAS bit (0x20) is clear. **Not modelled:** planar
display modes (0x0D-0x12), 40-column and monochrome modes.

**Reset state** = what the BIOS leaves after setting mode 3 (SeaBIOS ``vgasrc/stdvgamodes.c``,
commit 62a1429e): colour text, GR06 = 0x0E (B8000-BFFFF), the EGA palette in DAC 0-63.
Claimed over the whole window it answers like ``VgaTextBuffer(base=VGA_WINDOW_BASE)``.
"""

from __future__ import annotations

import numpy as np

from .vga_memory import MEMORY_MAPS, PLANE_SIZE, VgaMemory
from .vga_registers import (
    AR10_BLINK,
    AR10_P54S,
    AR_PAS,
    ATTR_DATA,
    ATTR_INDEX,
    CR0A_CURSOR_OFF,
    CR11_PROTECT,
    CRTC_DATA,
    CRTC_INDEX,
    DAC_DATA,
    DAC_MASK,
    DAC_READ_INDEX,
    DAC_WRITE_INDEX,
    FEATURE_READ,
    GC_DATA,
    GC_INDEX,
    GR05_ODD_EVEN,
    GR05_SHIFT256,
    GR06_GRAPHICS,
    GR_MASK,
    INPUT_STATUS_1,
    MISC_COLOUR,
    MISC_READ,
    MISC_WRITE,
    MODE_3,
    MODE_13H,
    N_ATTR,
    N_CRTC,
    N_GC,
    N_SEQ,
    PORTS_BASE,
    PORTS_LENGTH,
    SEQ_DATA,
    SEQ_INDEX,
    SR04_CHAIN4,
    SR04_ODD_EVEN_OFF,
    SR_MASK,
    ST01_TOGGLE,
    VgaPorts,
    VgaRegisterSets,
    dac_to_rgb,
    ega_palette,
)
from .vga_text import COLS, ROWS, VGA_WINDOW_BASE, VGA_WINDOW_SIZE

SCREEN_W, SCREEN_H = 320, 200


class Vga(VgaMemory, VgaRegisterSets):
    """A VGA card in its BIOS text-mode state; claim it over A0000-BFFFF and ``ports`` over
    0x3C0-0x3DF."""

    base = VGA_WINDOW_BASE
    size = VGA_WINDOW_SIZE

    def __init__(self) -> None:
        self.ports = VgaPorts(self)
        self.reset()

    def __repr__(self) -> str:
        return f"Vga({self.mode})"

    def reset(self) -> None:
        """The card as the BIOS leaves it after mode 3; video memory cleared."""
        self.planes = np.zeros((4, PLANE_SIZE), np.uint8)
        self._reset_registers()

    # -- views for pictures and notebooks ----------------------------------------------------
    @property
    def mode(self) -> str:
        """"text", "mode13h" (chain-4, 256-colour shift) or "graphics" (not rendered)."""
        if not self.gc[6] & GR06_GRAPHICS:
            return "text"
        if self.seq[4] & SR04_CHAIN4 and self.gc[5] & GR05_SHIFT256:
            return "mode13h"
        return "graphics"

    @property
    def display_enabled(self) -> bool:
        """3C0's PAS bit: 0 while the palette is being programmed; the screen is blank."""
        return bool(self.attr_index & AR_PAS)

    def start_address(self) -> int:
        return self.crtc[0x0C] << 8 | self.crtc[0x0D]

    def text_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(characters, attributes), each 25 x 80, from planes 0 and 1 at the start address."""
        idx = (self.start_address() + np.arange(ROWS * COLS)) & 0xFFFF
        return (self.planes[0, idx].reshape(ROWS, COLS).copy(),
                self.planes[1, idx].reshape(ROWS, COLS).copy())

    def screen_text(self) -> list[str]:
        """The 25 rows as text, 80 characters each (code page 437; NUL shows as a space)."""
        chars, _ = self.text_cells()
        return [bytes(row).replace(b"\0", b" ").decode("cp437") for row in chars]

    def row(self, r: int) -> str:
        """Row ``r`` as printable ASCII, right-stripped (the same as ``VgaTextBuffer.row``)."""
        chars = self.text_cells()[0][r]
        return "".join(chr(c) if 32 <= c < 127 else " " for c in chars).rstrip()

    def screen(self) -> list[str]:
        return [self.row(r) for r in range(ROWS)]

    def cursor(self) -> tuple[int, int] | None:
        """(row, column) of the text cursor, None if it is disabled or off the screen."""
        if self.crtc[0x0A] & CR0A_CURSOR_OFF:
            return None
        pos = (self.crtc[0x0E] << 8 | self.crtc[0x0F]) - self.start_address()
        return divmod(pos, COLS) if 0 <= pos < ROWS * COLS else None

    def cursor_scanlines(self) -> tuple[int, int]:
        """(first, last) scan line of the cursor in a character cell (CR0A, CR0B bits 4:0)."""
        return self.crtc[0x0A] & 0x1F, self.crtc[0x0B] & 0x1F

    def blink_enabled(self) -> bool:
        return bool(self.attr[0x10] & AR10_BLINK)

    def colour_index(self, attribute_colour: np.ndarray | int) -> np.ndarray:
        """A 4-bit text colour -> DAC entry, through the attribute controller's palette."""
        c = np.asarray(attribute_colour) & 0x0F
        reg = np.array(self.attr[:16], dtype=np.int64)[c]
        high = (self.attr[0x14] & 0x0C) << 4
        if self.attr[0x10] & AR10_P54S:
            return high | (self.attr[0x14] & 0x03) << 4 | (reg & 0x0F)
        return high | (reg & 0x3F)

    def pixels(self) -> np.ndarray:
        """Mode 13h's 200 x 320 pixel bytes (pixel n at plane n & 3, offset n >> 2)."""
        s = self.start_address()
        idx = (s + np.arange(SCREEN_W * SCREEN_H // 4)) & 0xFFFF
        return np.ascontiguousarray(self.planes[:, idx].T).reshape(SCREEN_H, SCREEN_W)

    def palette(self) -> np.ndarray:
        """The DAC: 256 x 3 levels of 6 bits (0-63)."""
        return self.dac.copy()


__all__ = [
    "AR10_BLINK", "AR10_P54S", "AR_PAS", "ATTR_DATA", "ATTR_INDEX", "CR0A_CURSOR_OFF",
    "CR11_PROTECT", "CRTC_DATA", "CRTC_INDEX", "DAC_DATA", "DAC_MASK", "DAC_READ_INDEX",
    "DAC_WRITE_INDEX", "FEATURE_READ", "GC_DATA", "GC_INDEX", "GR05_ODD_EVEN", "GR05_SHIFT256",
    "GR06_GRAPHICS", "GR_MASK", "INPUT_STATUS_1", "MEMORY_MAPS", "MISC_COLOUR", "MISC_READ",
    "MISC_WRITE", "MODE_3", "MODE_13H", "N_ATTR", "N_CRTC", "N_GC", "N_SEQ", "PLANE_SIZE",
    "PORTS_BASE", "PORTS_LENGTH", "SCREEN_H", "SCREEN_W", "SEQ_DATA", "SEQ_INDEX", "SR04_CHAIN4",
    "SR04_ODD_EVEN_OFF", "SR_MASK", "ST01_TOGGLE", "Vga", "VgaPorts", "dac_to_rgb",
    "ega_palette",
]
