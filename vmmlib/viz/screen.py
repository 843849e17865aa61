"""A picture of the screen as the guest would see it on a VGA monitor.

``plot_screen(vga)`` draws what the card (``vmmlib.devices.vga.Vga``) would put on the wire:

* **text mode**: 80 x 25 cells of 9 x 16 pixels, each character drawn with a monospace font
  (DejaVu Sans Mono, which ships with matplotlib) in its foreground colour on its background
  colour, both taken through the card's attribute controller and DAC (so a guest that
  reprograms the palette sees it here); code page 437's graphic characters, blinking cells in
  their "on" phase, the cursor as an underline on its scan lines;
* **mode 13h**: the 320 x 200 pixel bytes through the programmed palette;
* a blank screen while the attribute controller's PAS bit is clear, a grey one with a note for
  the planar graphics modes the model does not render.

Both are stretched to the 4:3 shape of the monitor. ``screen_data(vga)`` computes the same
without drawing: the RGB image, the mode, the text and the cursor; the figure carries it as
``fig.vmm_data``.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from ..devices.vga import SCREEN_H, SCREEN_W, Vga, dac_to_rgb
from ..devices.vga_text import COLS, ROWS
from .figure import _figure

CELL_W, CELL_H = 9, 16  # mode 3: 9-dot characters, 16 scan lines
TEXT_W, TEXT_H = COLS * CELL_W, ROWS * CELL_H  # 720 x 400
FONT = "DejaVu Sans Mono"
#: Its size in pixels, the baseline's scan line and its advance width (1233/2048 em): a full
#: block (0xDB) then fills scan lines 0-15 and descenders stay inside the cell.
FONT_PX, BASELINE, ADVANCE = 12.8, 12.6, 0.602
#: Code page 437's pictures for the codes 0-31 and 127 (Python's cp437 codec gives control
#: characters there; the VGA font draws these symbols).
CP437_LOW = (" ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼")


def cp437(code: int) -> str:
    """The character the VGA font shows for byte ``code``."""
    if code < 32:
        return CP437_LOW[code]
    return "⌂" if code == 127 else bytes([code]).decode("cp437")


@lru_cache(maxsize=1)
def glyph_atlas() -> np.ndarray:
    """256 x 16 x 9 glyph coverages (0-255), rasterised once with matplotlib's Agg."""
    fig = Figure(figsize=(16 * CELL_W / 72, 16 * CELL_H / 72), dpi=72)
    fig.patch.set_facecolor("black")
    canvas = FigureCanvasAgg(fig)
    font = FontProperties(family=FONT, size=FONT_PX)  # 1 pt = 1 px at 72 dpi
    width, height = 16 * CELL_W, 16 * CELL_H
    left = (CELL_W - ADVANCE * FONT_PX) / 2  # centre the glyph in its 9 columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a glyph the font lacks is simply blank
        for code in range(256):
            row, col = divmod(code, 16)
            fig.text((col * CELL_W + left) / width, 1 - (row * CELL_H + BASELINE) / height,
                     cp437(code), color="white", fontproperties=font, ha="left", va="baseline")
        canvas.draw()
    coverage = np.asarray(canvas.buffer_rgba())[:, :, 0]
    return coverage.reshape(16, CELL_H, 16, CELL_W).transpose(0, 2, 1, 3).reshape(
        256, CELL_H, CELL_W).copy()


def _text_image(vga: Vga) -> tuple[np.ndarray, dict[str, Any]]:
    chars, attrs = vga.text_cells()
    rgb = dac_to_rgb(vga.palette()).astype(np.float32)
    blink = vga.blink_enabled()
    fg = rgb[vga.colour_index(attrs & 0x0F)]  # 25 x 80 x 3
    bg = rgb[vga.colour_index((attrs >> 4) & (0x07 if blink else 0x0F))]
    cover = glyph_atlas()[chars].astype(np.float32) / 255  # 25 x 80 x 16 x 9
    cursor = vga.cursor()
    if cursor is not None:
        first, last = vga.cursor_scanlines()
        if first <= last:
            cover[cursor[0], cursor[1], first : min(last, CELL_H - 1) + 1, :] = 1.0
    c = cover[..., None]
    cells = c * fg[:, :, None, None, :] + (1 - c) * bg[:, :, None, None, :]
    image = cells.transpose(0, 2, 1, 3, 4).reshape(TEXT_H, TEXT_W, 3)
    info = {
        "text": vga.screen_text(),
        "cursor": cursor,
        "blinking_cells": int(np.count_nonzero(attrs & 0x80)) if blink else 0,
    }
    return np.rint(image).astype(np.uint8), info


def screen_data(vga: Vga) -> dict[str, Any]:
    """What ``plot_screen`` shows: mode, title, the RGB image, and for text mode the rows
    and the cursor."""
    mode = vga.mode
    if not vga.display_enabled:
        overscan = dac_to_rgb(vga.palette())[vga.attr[0x11]]
        h, w = (TEXT_H, TEXT_W) if mode == "text" else (SCREEN_H, SCREEN_W)
        image = np.broadcast_to(overscan, (h, w, 3)).copy()
        return {"mode": mode, "blank": True, "image": image, "text": None, "cursor": None,
                "title": "VGA: screen blank (attribute controller PAS = 0)"}
    if mode == "text":
        image, info = _text_image(vga)
        return {"mode": mode, "blank": False, "image": image, **info,
                "title": f"VGA text mode, {COLS} x {ROWS} at B8000"}
    if mode == "mode13h":
        rgb = dac_to_rgb(vga.palette())
        image = rgb[vga.pixels() & vga.dac_mask]
        return {"mode": mode, "blank": False, "image": image, "text": None, "cursor": None,
                "title": f"VGA mode 13h, {SCREEN_W} x {SCREEN_H} x 256 at A0000"}
    image = np.full((SCREEN_H, SCREEN_W, 3), 128, np.uint8)
    return {"mode": mode, "blank": False, "image": image, "text": None, "cursor": None,
            "title": "VGA planar graphics mode (not rendered by the model)"}


def plot_screen(vga: Vga, title: str | None = None) -> Figure:
    """The guest's screen as a monitor would show it (4:3), labelled in cells or pixels."""
    data = screen_data(vga)
    image = data["image"]
    h, w = image.shape[:2]
    fig = _figure(8.0, 6.4)
    ax = fig.add_subplot()
    ax.imshow(image, interpolation="nearest", aspect=(3 / h) / (4 / w))
    ax.set_title(title or data["title"])
    if data["mode"] == "text" and not data["blank"]:
        ax.set_xticks(np.arange(0, COLS + 1, 10) * CELL_W - 0.5, [str(c) for c in
                                                                 range(0, COLS + 1, 10)])
        ax.set_yticks(np.arange(0, ROWS + 1, 5) * CELL_H - 0.5, [str(r) for r in
                                                                range(0, ROWS + 1, 5)])
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        if data["cursor"] is not None:
            row, col = data["cursor"]
            ax.annotate(f"cursor ({row}, {col})", xy=(1, 0), xycoords="axes fraction",
                        xytext=(0, -28), textcoords="offset points", ha="right", fontsize=8)
    else:
        ax.set_xlabel("x (pixel)")
        ax.set_ylabel("y (pixel)")
        if data["mode"] == "graphics" and not data["blank"]:
            ax.text(w / 2, h / 2, "planar mode: not modelled", ha="center", va="center")
    fig.vmm_data = data
    return fig
