"""viz.screen: the picture of the guest's screen is what the VGA model holds, through its
attribute controller and DAC (text: a monospace font on 9 x 16 cells; mode 13h: the palette)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from bench import Bench  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vmmlib.devices.vga import PORTS_BASE, PORTS_LENGTH, Vga, dac_to_rgb  # noqa: E402
from vmmlib.devices.vga_text import VGA_WINDOW_BASE  # noqa: E402
from vmmlib.guest import vga as g  # noqa: E402
from vmmlib.viz import screen  # noqa: E402


def machine() -> tuple[Bench, Vga]:
    b = Bench()
    vga = Vga()
    b.mmio.claim(VGA_WINDOW_BASE, vga.size, vga, "VGA")
    b.add_ports(PORTS_BASE, PORTS_LENGTH, vga.ports, "VGA ports")
    return b, vga


def cell(image: np.ndarray, row: int, col: int) -> np.ndarray:
    return image[row * 16 : (row + 1) * 16, col * 9 : (col + 1) * 9]


def test_text_screen_colours_and_glyphs():
    b, vga = machine()
    b.run(g.vga_puts("A", 0, 0, attr=0x1E))  # yellow on blue
    data = screen.screen_data(vga)
    image = data["image"]
    assert image.shape == (400, 720, 3) and data["mode"] == "text"
    rgb = dac_to_rgb(vga.palette())
    a = cell(image, 0, 0).reshape(-1, 3)
    yellow, blue = rgb[0x3E].tolist(), rgb[0x01].tolist()  # through AR14 -> 0x3E, AR1 -> 0x01
    colours = {tuple(p) for p in a.tolist()}
    assert tuple(blue) in colours and tuple(yellow) in colours  # background and glyph
    assert {tuple(p) for p in cell(image, 0, 1).reshape(-1, 3).tolist()} <= {(0, 0, 0)} | {
        tuple(rgb[7])}  # an empty cell: black, the cursor there is light grey
    assert data["text"][0].startswith("A") and data["cursor"] == (0, 0)


def test_glyphs_differ_and_space_is_empty():
    atlas = screen.glyph_atlas()
    assert atlas.shape == (256, 16, 9)
    assert atlas[ord(" ")].max() == 0 and atlas[0].max() == 0
    assert atlas[ord("A")].max() > 200 and not np.array_equal(atlas[ord("A")], atlas[ord("B")])
    assert atlas[0xDB].mean() > 200 and atlas[0xDB][[0, 15]].min() > 0  # the full block
    assert screen.cp437(1) == "☺" and screen.cp437(0xB0) == "░" and screen.cp437(127) == "⌂"


def test_cursor_is_drawn_on_its_scan_lines():
    b, vga = machine()
    b.run(g.console_puts("hi"))
    data = screen.screen_data(vga)
    assert data["cursor"] == (0, 2)
    under = cell(data["image"], 0, 2)
    assert under[13:15].min() > 0 and under[:13].max() == 0  # scan lines 13-14, light grey
    vga.crtc[0x0A] |= 0x20
    assert screen.screen_data(vga)["cursor"] is None


def test_palette_changes_show_in_text_mode():
    b, vga = machine()
    b.run(g.vga_puts("X", 0, 0, attr=0x07))
    before = cell(screen.screen_data(vga)["image"], 0, 0).max()
    b.run(g.vga_set_palette([(63, 0, 0)], first=7))  # light grey becomes red
    after = cell(screen.screen_data(vga)["image"], 0, 0)
    assert before > 0 and after[..., 1].max() == 0 and after[..., 0].max() == 255


def test_blinking_cells_use_three_background_bits():
    b, vga = machine()
    b.run(g.vga_puts("B", 0, 0, attr=0xC7))  # blink + red background
    data = screen.screen_data(vga)
    rgb = dac_to_rgb(vga.palette())
    corner = cell(data["image"], 0, 0)[0, 0].tolist()
    assert corner == rgb[vga.colour_index(4)].tolist() and data["blinking_cells"] == 1


def test_mode_13h_picture_through_the_palette():
    b, vga = machine()
    b.run(g.draw_scene())
    fig = screen.plot_screen(vga)
    assert isinstance(fig, Figure)
    data = fig.vmm_data
    img, palette = g.scene()
    expected = dac_to_rgb(np.array(palette, np.uint8))[img]
    assert data["mode"] == "mode13h" and np.array_equal(data["image"], expected)
    ax = fig.axes[0]
    assert "13h" in ax.get_title() and ax.get_xlabel() == "x (pixel)"
    assert ax.images[0].get_array().shape == (200, 320, 3)


def test_text_figure_is_labelled_in_cells_and_renders():
    b, vga = machine()
    b.run(g.console_puts("Hello from the guest\n"))
    fig = screen.plot_screen(vga, title="guest console")
    ax = fig.axes[0]
    assert ax.get_title() == "guest console" and ax.get_xlabel() == "column"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "5", "10", "15", "20", "25"]
    assert fig.vmm_data["text"][0].startswith("Hello from the guest")
    assert "cursor (1, 0)" in [t.get_text() for t in ax.texts]


def test_blank_screen_while_pas_is_clear():
    b, vga = machine()
    b.run(g.vga_puts("hidden"))
    vga.ports.write(0x1A, 1, 0)  # 0x3DA: reset the flip-flop
    vga.ports.write(0, 1, 0x00)  # index 0 with PAS = 0
    data = screen.screen_data(vga)
    assert data["blank"] and data["image"].max() == 0 and data["text"] is None


def test_planar_modes_are_not_rendered():
    vga = Vga()
    vga.gc[6] = 0x05  # graphics, but not chain-4 256-colour
    data = screen.screen_data(vga)
    assert data["mode"] == "graphics" and "not rendered" in data["title"]
    assert "not modelled" in [t.get_text() for t in screen.plot_screen(vga).axes[0].texts][0]


def test_deterministic():
    b, vga = machine()
    b.run(g.console_puts("same\n"))
    assert np.array_equal(screen.screen_data(vga)["image"], screen.screen_data(vga)["image"])


@pytest.mark.parametrize("name", ["plot_screen", "screen_data"])
def test_lazy_names(name):
    import vmmlib.viz as viz

    assert name in viz.__all__ and callable(getattr(viz, name))
