"""A guest kernel's VGA drivers: xv6's text console and a mode-13h drawing program.

``vga_puts`` writes cells straight into the colour text buffer at 0xB8000, one 16-bit store of
character | attribute << 8 per cell (chapter 01). ``cga_putc`` is xv6's ``cgaputc``
(``console.c``): it reads the cursor position from CRTC registers 14 and 15 (index port 0x3D4,
data port 0x3D5), stores the character, handles newline and backspace, scrolls by moving 23 rows
up, then writes the cursor back and puts a blank at it. ``vga_set_mode`` programs every register
of a mode table (``vmmlib.devices.vga``: MODE_3, MODE_13H) through the ports in the order a BIOS
does; ``vga_set_palette`` loads DAC entries with one REP OUTSB to 0x3C9; ``draw_scene`` sets
mode 13h and draws a landscape (sky, sun, hills) with 8-byte stores at 0xA0000.
"""

from __future__ import annotations

import numpy as np

from ..cpu.ops import Guest, In, Load, Out, Outs, Store
from ..devices.vga import (
    ATTR_INDEX,
    CRTC_INDEX,
    DAC_DATA,
    DAC_WRITE_INDEX,
    GC_INDEX,
    INPUT_STATUS_1,
    MISC_WRITE,
    MODE_13H,
    SCREEN_H,
    SCREEN_W,
    SEQ_INDEX,
)
from ..devices.vga_text import ATTR_DEFAULT, COLS, ROWS, TEXT_BASE, VGA_WINDOW_BASE, cell_address
from ..errors import ConfigError

CRTPORT = CRTC_INDEX  # xv6 console.c
BACKSPACE = 0x100  # xv6's code for a backspace


def vga_puts(text: str, row: int = 0, col: int = 0, attr: int = ATTR_DEFAULT) -> Guest:
    """Write ``text`` into the colour text buffer, one 16-bit cell store per character."""
    for i, ch in enumerate(text.encode()):
        yield Store(cell_address(row, col + i), 2, ch | attr << 8)


# -- xv6's text console -------------------------------------------------------------------------
def cga_getpos() -> Guest:
    """The cursor position (80 * row + col) from CRTC registers 14 (high) and 15 (low)."""
    yield Out(CRTPORT, 1, 14)
    pos = (yield In(CRTPORT + 1, 1)) << 8
    yield Out(CRTPORT, 1, 15)
    return pos | (yield In(CRTPORT + 1, 1))


def cga_setpos(pos: int) -> Guest:
    """Move the hardware cursor to cell ``pos``."""
    yield Out(CRTPORT, 1, 14)
    yield Out(CRTPORT + 1, 1, pos >> 8 & 0xFF)
    yield Out(CRTPORT, 1, 15)
    yield Out(CRTPORT + 1, 1, pos & 0xFF)


def cga_putc(c: int, attr: int = ATTR_DEFAULT) -> Guest:
    """xv6 ``cgaputc``: one character (or ``BACKSPACE``) on the console at the cursor."""
    pos = yield from cga_getpos()
    if c == ord("\n"):
        pos += COLS - pos % COLS
    elif c == BACKSPACE:
        pos = max(pos - 1, 0)
    else:
        yield Store(TEXT_BASE + 2 * pos, 2, (c & 0xFF) | attr << 8)
        pos += 1
    if not 0 <= pos <= ROWS * COLS:
        raise ConfigError(f"cursor position {pos} is off the screen")  # xv6 panics here
    if pos // COLS >= ROWS - 1:  # scroll up: rows 1-23 become rows 0-22
        for off in range(0, 2 * (ROWS - 2) * COLS, 8):
            yield Store(TEXT_BASE + off, 8, (yield Load(TEXT_BASE + 2 * COLS + off, 8)))
        pos -= COLS
        for cell in range(pos, (ROWS - 1) * COLS):
            yield Store(TEXT_BASE + 2 * cell, 2, 0)
    yield from cga_setpos(pos)
    yield Store(TEXT_BASE + 2 * pos, 2, ord(" ") | attr << 8)


def console_puts(text: str, attr: int = ATTR_DEFAULT) -> Guest:
    """Print ``text`` on the console, character by character (``\\b`` is a backspace)."""
    for ch in text.encode("cp437"):
        yield from cga_putc(BACKSPACE if ch == 8 else ch, attr)


# -- mode setting and mode 13h ----------------------------------------------------------------
def vga_set_mode(mode: dict = MODE_13H) -> Guest:
    """Program a mode table through the ports: attribute registers (input status 1 resets the
    flip-flop, then index and value to 0x3C0; the screen is blank meanwhile), sequencer and
    graphics registers with 16-bit OUTs (index | value << 8), CRTC after clearing CR11's write
    protection, the miscellaneous output, and finally PAS (0x20) to 0x3C0: video on."""
    yield In(INPUT_STATUS_1, 1)
    for i, v in enumerate(mode["attr"]):
        yield Out(ATTR_INDEX, 1, i)
        yield Out(ATTR_INDEX, 1, v)
    for i, v in enumerate(mode["seq"]):
        yield Out(SEQ_INDEX, 2, i | v << 8)
    for i, v in enumerate(mode["gc"]):
        yield Out(GC_INDEX, 2, i | v << 8)
    yield Out(CRTC_INDEX, 2, 0x11)  # CR11 = 0: CR0-CR7 writable
    for i, v in enumerate(mode["crtc"]):
        yield Out(CRTC_INDEX, 2, i | v << 8)
    yield Out(MISC_WRITE, 1, mode["misc"])
    yield In(INPUT_STATUS_1, 1)
    yield Out(ATTR_INDEX, 1, 0x20)


def vga_set_palette(colours, first: int = 0) -> Guest:
    """Load DAC entries from ``first``: (R, G, B) of 6 bits each, with one REP OUTSB."""
    values = [c for rgb in colours for c in rgb]
    if not values or first + len(values) // 3 > 256 or any(not 0 <= v < 64 for v in values):
        raise ConfigError("a palette is 1-256 (R, G, B) entries of 0-63 that fit after `first`")
    yield Out(DAC_WRITE_INDEX, 1, first)
    yield Outs(DAC_DATA, 1, values)


SKY, SUN, HILLS = 1, 96, 64  # palette entries: sky 1-63, hills 64-95, sun 96


def scene() -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The landscape ``draw_scene`` draws: (200 x 320 pixel bytes, its 97-entry palette)."""
    palette = [(0, 0, 0)]
    palette += [(4 + 36 * i // 62, 8 + 44 * i // 62, 24 + 39 * i // 62) for i in range(63)]
    palette += [(4 + i // 2, 20 + i, 4 + i // 4) for i in range(32)]  # dark to light green
    palette.append((63, 56, 12))  # the sun
    y, x = np.mgrid[0:SCREEN_H, 0:SCREEN_W]
    img = (SKY + y * 62 // (SCREEN_H - 1)).astype(np.uint8)
    sun = (5 * (x - 250)) ** 2 + (6 * (y - 45)) ** 2 <= (5 * 22) ** 2  # round on a 4:3 screen
    img[sun] = SUN
    far = 130 + (18 * np.sin(x / 37.0)).astype(int)
    near = 160 + (14 * np.cos(x / 23.0 + 1)).astype(int)
    img[y >= far] = HILLS + 8
    img[y >= near] = HILLS + 20 + (y[y >= near] - 160) // 8
    return img, palette


def draw_scene() -> Guest:
    """Set mode 13h through the ports, load the palette through the DAC, draw ``scene()`` with
    8000 stores of 8 pixels at 0xA0000. Returns the number of pixels drawn."""
    img, palette = scene()
    yield from vga_set_mode(MODE_13H)
    yield from vga_set_palette(palette)
    flat = img.reshape(-1).view("<u8")  # 8 pixels per store
    for i, value in enumerate(flat.tolist()):
        yield Store(VGA_WINDOW_BASE + 8 * i, 8, value)
    return img.size
