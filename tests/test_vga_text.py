"""The VGA text buffer: cell layout and the legacy window (hardware-facts.md §10)."""

import pytest

from vmmlib.devices.vga_text import (
    ATTR_DEFAULT,
    COLS,
    ROWS,
    TEXT_BASE,
    VGA_WINDOW_BASE,
    VGA_WINDOW_SIZE,
    VgaTextBuffer,
    cell_address,
)
from vmmlib.errors import BadAddressError


def test_window_and_text_buffer_addresses():
    # §10: the legacy window is A0000-BFFFF; colour text is 80 x 25 cells at B8000.
    assert (VGA_WINDOW_BASE, VGA_WINDOW_SIZE) == (0xA0000, 0x20000)
    assert (TEXT_BASE, COLS, ROWS) == (0xB8000, 80, 25)
    assert ATTR_DEFAULT == 0x07  # light grey on black


def test_cell_address_is_two_bytes_per_cell_row_major():
    assert cell_address(0, 0) == 0xB8000
    assert cell_address(0, 1) == 0xB8002
    assert cell_address(1, 0) == 0xB8000 + 160
    assert cell_address(24, 79) == 0xB8000 + 3998


def test_character_at_even_address_attribute_at_odd():
    vga = VgaTextBuffer()
    vga.write(0, 2, ord("H") | 0x1F << 8)  # one little-endian 16-bit cell store
    assert vga.read(0, 1) == ord("H")
    assert vga.read(1, 1) == 0x1F
    assert vga.row(0) == "H"


def test_whole_window_claim_decodes_only_the_text_part():
    vga = VgaTextBuffer(base=VGA_WINDOW_BASE)
    vga.write(0x0000, 2, 0x4141)  # A0000: not decoded in text mode
    assert vga.read(0x0000, 2) == 0xFFFF
    vga.write(TEXT_BASE - VGA_WINDOW_BASE, 2, 0x0741)
    assert vga.row(0) == "A"
    with pytest.raises(BadAddressError):
        vga.read(VGA_WINDOW_SIZE - 1, 2)
