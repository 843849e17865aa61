"""The VGA model against hardware-facts.md §10/§12, QEMU hw/display/vga.c and the register
values SeaBIOS's VGA BIOS programs (vgasrc/stdvgamodes.c @ 62a1429e); the guest's text console
(xv6 console.c cgaputc) and mode-13h drawing program run against it."""

from __future__ import annotations

import random

import numpy as np
import pytest
from bench import Bench

from vmmlib import MIB, Machine, Vcpu
from vmmlib.devices import vga as v
from vmmlib.devices.vga import MODE_3, MODE_13H, Vga, dac_to_rgb, ega_palette
from vmmlib.devices.vga_text import VGA_WINDOW_BASE, VgaTextBuffer
from vmmlib.errors import BadAddressError, BadPortError, BadSizeError, ConfigError
from vmmlib.guest import vga as g

B8000 = 0x18000  # window offsets
B0000 = 0x10000


def out(vga, port, value, size=1):
    vga.ports.write(port - v.PORTS_BASE, size, value)


def inp(vga, port, size=1):
    return vga.ports.read(port - v.PORTS_BASE, size)


def set_gc(vga, index, value):
    out(vga, v.GC_INDEX, index | value << 8, 2)


def set_seq(vga, index, value):
    out(vga, v.SEQ_INDEX, index | value << 8, 2)


def bench_with_vga() -> tuple[Bench, Vga]:
    b = Bench()
    vga = Vga()
    b.mmio.claim(VGA_WINDOW_BASE, vga.size, vga, "VGA")
    b.add_ports(v.PORTS_BASE, v.PORTS_LENGTH, vga.ports, "VGA ports")
    return b, vga


# -- facts -----------------------------------------------------------------------------------
def test_ports():
    # §12: 0x3C0-0x3CF and the colour CRTC 0x3D4/0x3D5, input status 1 at 0x3DA
    assert (v.PORTS_BASE, v.PORTS_LENGTH) == (0x3C0, 0x20)
    assert (v.ATTR_INDEX, v.ATTR_DATA, v.MISC_WRITE, v.MISC_READ) == (0x3C0, 0x3C1, 0x3C2, 0x3CC)
    assert (v.SEQ_INDEX, v.SEQ_DATA, v.GC_INDEX, v.GC_DATA) == (0x3C4, 0x3C5, 0x3CE, 0x3CF)
    assert (v.DAC_MASK, v.DAC_READ_INDEX, v.DAC_WRITE_INDEX, v.DAC_DATA) == (
        0x3C6, 0x3C7, 0x3C8, 0x3C9)
    assert (v.CRTC_INDEX, v.CRTC_DATA, v.INPUT_STATUS_1) == (0x3D4, 0x3D5, 0x3DA)


def test_gr06_memory_maps():
    # §10: 00 A0000-BFFFF, 01 A0000-AFFFF, 10 B0000-B7FFF, 11 B8000-BFFFF
    assert v.MEMORY_MAPS == ((0, 0x20000), (0, 0x10000), (0x10000, 0x8000), (0x18000, 0x8000))


def test_register_masks_as_qemu():
    assert v.SR_MASK == (0x03, 0x3D, 0x0F, 0x3F, 0x0E)
    assert v.GR_MASK == (0x0F, 0x0F, 0x0F, 0x1F, 0x03, 0x7B, 0x0F, 0x0F, 0xFF)


def test_mode_tables_as_seabios_programs_them():
    # vgasrc/stdvgamodes.c: mode 3 = sequ_03, 0x67, crtc_03, actl_01, grdc_01
    assert MODE_3["misc"] == 0x67 and MODE_3["seq"][1:] == (0x00, 0x03, 0x00, 0x02)
    assert MODE_3["gc"] == (0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x0F, 0xFF)
    assert MODE_3["crtc"][0x0A:0x0C] == (0x0D, 0x0E) and MODE_3["crtc"][0x11] == 0x8E
    assert MODE_3["attr"][6] == 0x14 and MODE_3["attr"][8:16] == tuple(range(0x38, 0x40))
    assert MODE_3["attr"][0x10:0x14] == (0x0C, 0x00, 0x0F, 0x08)
    # mode 13h = sequ_13, 0x63, crtc_13, actl_13, grdc_13
    assert MODE_13H["misc"] == 0x63 and MODE_13H["seq"][1:] == (0x01, 0x0F, 0x00, 0x0E)
    assert MODE_13H["gc"] == (0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0F, 0xFF)
    assert MODE_13H["crtc"][0x14] == 0x40 and MODE_13H["crtc"][0x09] == 0x41
    assert MODE_13H["attr"][:16] == tuple(range(16)) and MODE_13H["attr"][0x10] == 0x41
    for mode in (MODE_3, MODE_13H):
        assert (len(mode["seq"]), len(mode["gc"]), len(mode["crtc"]), len(mode["attr"])) == (
            5, 9, 25, 21)


def test_ega_palette_as_seabios_pal_ega():
    pal = ega_palette()
    assert pal.shape == (64, 3) and pal.max() == 0x3F
    for index, rgb in {0x00: (0, 0, 0), 0x01: (0, 0, 0x2A), 0x07: (0x2A, 0x2A, 0x2A),
                       0x14: (0x2A, 0x15, 0x00), 0x38: (0x15, 0x15, 0x15),
                       0x3C: (0x3F, 0x15, 0x15), 0x3F: (0x3F, 0x3F, 0x3F)}.items():
        assert tuple(pal[index]) == rgb
    assert dac_to_rgb(np.array([0, 0x15, 0x2A, 0x3F])).tolist() == [0, 0x55, 0xAA, 0xFF]


# -- the reset state answers like chapter 01's text buffer --------------------------------------
def test_reset_state_is_colour_text_at_b8000():
    vga = Vga()
    assert vga.mode == "text" and vga.gc[6] == 0x0E and vga.display_enabled
    assert vga.read(0, 2) == 0xFFFF  # A0000 floats
    vga.write(0, 2, 0x4141)
    vga.write(B8000, 2, 0x1F48)  # 'H', white on blue
    assert vga.read(B8000, 1) == ord("H") and vga.read(B8000 + 1, 1) == 0x1F
    assert vga.row(0) == "H" and vga.screen_text()[0].startswith("H ")
    assert vga.cursor() == (0, 0)
    assert vga.text_memory()[:2] == b"H\x1f" and len(vga.text_memory()) == 0x8000


def test_reset_state_matches_vga_text_buffer_access_for_access():
    vga, ref = Vga(), VgaTextBuffer(base=VGA_WINDOW_BASE)
    rnd = random.Random(2006)
    for _ in range(3000):
        size = rnd.choice((1, 2, 4, 8))
        off = rnd.choice((rnd.randrange(0, B8000 - 8), B8000 + rnd.randrange(0, 0x8000 - 8)))
        value = rnd.getrandbits(8 * size)
        vga.write(off, size, value)
        ref.write(off, size, value)
        probe = rnd.choice((rnd.randrange(0, B8000 - 8), B8000 + rnd.randrange(0, 0x8000 - 8)))
        assert vga.read(probe, size) == ref.read(probe, size)
    assert vga.text_memory() == ref.vram.tobytes()
    assert vga.screen() == ref.screen()
    with pytest.raises(BadAddressError):
        vga.read(0x1FFFF, 2)
    with pytest.raises(BadAddressError):
        ref.read(0x1FFFF, 2)


def test_an_access_across_b8000_is_decoded_byte_by_byte():
    # the card decodes each byte lane; VgaTextBuffer (chapter 01) treats an access that starts
    # below B8000 as wholly undecoded: the one place the two differ
    vga = Vga()
    vga.write(B8000 - 2, 4, 0x07410741)
    assert vga.read(B8000 - 2, 4) == 0x0741FFFF and vga.row(0) == "A"


# -- GR06 and the memory modes ----------------------------------------------------------------
@pytest.mark.parametrize("mm, decoded", [(0, (0, 0xFFFF, B0000, 0x1FFFF)), (1, (0, 0xFFFF)),
                                         (2, (B0000, 0x17FFF)), (3, (B8000, 0x1FFFF))])
def test_the_four_memory_maps(mm, decoded):
    vga = Vga()
    set_seq(vga, 4, 0x06)  # planar: odd/even off, so a byte stays a byte
    set_gc(vga, 5, 0x00)
    set_gc(vga, 6, mm << 2 | 1)
    for off in (0, 0xFFFF, B0000, 0x17FFF, B8000, 0x1FFFF):
        vga.write(off, 1, 0x5A)
        expect = 0x5A if off in decoded or (mm == 0) else 0xFF
        assert vga.read(off, 1) == expect, (mm, hex(off))


def test_text_mode_puts_characters_in_plane_0_and_attributes_in_plane_1():
    vga = Vga()
    vga.write(B8000 + 2 * 81, 2, 0x4E41)  # cell (1, 1): 'A', yellow on red
    assert vga.planes[0, 81] == ord("A") and vga.planes[1, 81] == 0x4E
    chars, attrs = vga.text_cells()
    assert chars[1, 1] == ord("A") and attrs[1, 1] == 0x4E


def test_chain4_addresses_a_plane_per_byte():
    vga = Vga()
    vga.load_mode(MODE_13H)
    assert vga.mode == "mode13h" and vga.read(B8000, 1) == 0xFF  # only A0000-AFFFF decoded
    vga.write(0, 8, 0x0706050403020100)
    assert [int(vga.planes[p, 0]) for p in range(4)] == [0, 1, 2, 3]
    assert [int(vga.planes[p, 1]) for p in range(4)] == [4, 5, 6, 7]
    vga.write(320 * 199 + 319, 1, 42)  # the last pixel
    assert vga.pixels()[199, 319] == 42 and vga.pixels()[0, :8].tolist() == list(range(8))
    assert vga.read(5, 1) == 5


def test_planar_writes_follow_the_map_mask_and_reads_the_read_map():
    vga = Vga()
    set_seq(vga, 4, 0x06)
    set_gc(vga, 5, 0x00)
    set_gc(vga, 6, 0x05)
    set_seq(vga, 2, 0b0101)  # planes 0 and 2
    vga.write(10, 1, 0x99)
    assert [int(vga.planes[p, 10]) for p in range(4)] == [0x99, 0, 0x99, 0]
    set_gc(vga, 4, 2)
    assert vga.read(10, 1) == 0x99
    set_gc(vga, 4, 1)
    assert vga.read(10, 1) == 0


# -- registers ------------------------------------------------------------------------------------
def test_index_data_pairs_and_16_bit_outs():
    vga = Vga()
    out(vga, v.SEQ_INDEX, 0x0F02, 2)  # outw: index 2, value 0x0F
    assert vga.seq[2] == 0x0F and inp(vga, v.SEQ_INDEX) == 2 and inp(vga, v.SEQ_DATA) == 0x0F
    set_gc(vga, 5, 0xFF)
    assert vga.gc[5] == 0x7B  # reserved bits read 0
    out(vga, v.CRTC_INDEX, 0x0E)
    out(vga, v.CRTC_DATA, 0x01)
    assert inp(vga, v.CRTC_DATA) == 0x01 and inp(vga, v.CRTC_INDEX) == 0x0E
    out(vga, v.GC_INDEX, 0x0B)  # no such register
    assert inp(vga, v.GC_DATA) == 0
    assert inp(vga, 0x3C3) == 0xFF and inp(vga, 0x3D0) == 0xFF  # no register at all


def test_cursor_location_and_shape():
    vga = Vga()
    out(vga, v.CRTC_INDEX, 0x0E | (0x07 << 8), 2)  # 0x07D0 = 2000 ... off screen
    out(vga, v.CRTC_INDEX, 0x0F | (0xD0 << 8), 2)
    assert vga.cursor() is None
    out(vga, v.CRTC_INDEX, 0x0E | (0x00 << 8), 2)
    out(vga, v.CRTC_INDEX, 0x0F | (0xA5 << 8), 2)  # 165 = row 2, col 5
    assert vga.cursor() == (2, 5) and vga.cursor_scanlines() == (13, 14)
    out(vga, v.CRTC_INDEX, 0x0A | (0x2D << 8), 2)  # bit 5: cursor off
    assert vga.cursor() is None


def test_crtc_write_protection():
    vga = Vga()
    assert vga.crtc[0x11] & 0x80  # mode 3 leaves CR0-CR7 protected
    out(vga, v.CRTC_INDEX, 0x00 | 0x12 << 8, 2)
    assert vga.crtc[0] == 0x5F
    out(vga, v.CRTC_INDEX, 0x07 | 0xFF << 8, 2)
    assert vga.crtc[7] == 0x1F | 0x10  # only bit 4 (line compare bit 8) changes
    out(vga, v.CRTC_INDEX, 0x11 | 0x0E << 8, 2)
    out(vga, v.CRTC_INDEX, 0x00 | 0x12 << 8, 2)
    assert vga.crtc[0] == 0x12


def test_mono_emulation_turns_the_colour_crtc_ports_off():
    vga = Vga()
    out(vga, v.MISC_WRITE, 0x66)
    assert inp(vga, v.MISC_READ) == 0x66
    out(vga, v.CRTC_INDEX, 0x0F)
    assert inp(vga, v.CRTC_INDEX) == 0xFF and inp(vga, v.INPUT_STATUS_1) == 0xFF
    out(vga, v.MISC_WRITE, 0x67)
    assert inp(vga, v.CRTC_INDEX) == 0x00  # the write above went nowhere


def test_attribute_flip_flop_and_pas():
    vga = Vga()
    inp(vga, v.INPUT_STATUS_1)  # reset: the next write is an index
    out(vga, v.ATTR_INDEX, 0x06)  # index 6, PAS = 0: the screen goes blank
    assert not vga.display_enabled and inp(vga, v.ATTR_INDEX) == 0x06
    out(vga, v.ATTR_INDEX, 0x3F)  # data
    assert vga.attr[6] == 0x3F and inp(vga, v.ATTR_DATA) == 0x3F
    out(vga, v.ATTR_INDEX, 0x20)  # index again (flip-flop), PAS on
    assert vga.display_enabled
    out(vga, v.ATTR_INDEX, 0x07)  # this is data for index 0: the flip-flop says so
    assert vga.attr[0] == 0x07
    inp(vga, v.INPUT_STATUS_1)
    out(vga, v.ATTR_INDEX, 0x30)
    out(vga, v.ATTR_INDEX, 0xFF)  # AR10
    assert vga.attr[0x10] == 0xFF


def test_input_status_1_toggles_retrace():
    vga = Vga()
    seen = {inp(vga, v.INPUT_STATUS_1) & 0x08 for _ in range(4)}
    assert seen == {0, 0x08}  # a program waiting for retrace terminates


def test_dac_write_read_auto_increment():
    vga = Vga()
    out(vga, v.DAC_WRITE_INDEX, 254)
    assert inp(vga, v.DAC_READ_INDEX) == 0  # DAC state: writing
    for c in (1, 2, 3, 0x7F, 0x40, 0x3F, 9, 9, 9):  # entries 254, 255, then 0 (wraps)
        out(vga, v.DAC_DATA, c)
    assert vga.palette()[254].tolist() == [1, 2, 3]
    assert vga.palette()[255].tolist() == [0x3F, 0x00, 0x3F]  # 6 bits kept
    assert vga.palette()[0].tolist() == [9, 9, 9] and inp(vga, v.DAC_WRITE_INDEX) == 1
    out(vga, v.DAC_READ_INDEX, 255)
    assert inp(vga, v.DAC_READ_INDEX) == 3  # DAC state: reading
    assert [inp(vga, v.DAC_DATA) for _ in range(6)] == [0x3F, 0, 0x3F, 9, 9, 9]


def test_dac_entry_changes_only_after_its_third_component():
    vga = Vga()
    out(vga, v.DAC_WRITE_INDEX, 7)
    out(vga, v.DAC_DATA, 0)
    out(vga, v.DAC_DATA, 0)
    assert vga.palette()[7].tolist() == [0x2A, 0x2A, 0x2A]  # still light grey
    out(vga, v.DAC_DATA, 0)
    assert vga.palette()[7].tolist() == [0, 0, 0]


def test_text_colours_go_through_the_attribute_controller():
    vga = Vga()
    assert vga.colour_index(6) == 0x14  # brown -> EGA entry 0x14
    assert vga.colour_index(14) == 0x3E and vga.colour_index(np.array([0, 7])).tolist() == [0, 7]
    assert vga.blink_enabled()  # AR10 = 0x0C: bit 3


def test_registers_view_has_no_side_effects():
    vga = Vga()
    out(vga, v.DAC_READ_INDEX, 5)
    out(vga, v.ATTR_INDEX, 0x26)
    regs = vga.registers()
    assert regs == vga.registers()
    assert regs["AR_FLIPFLOP"] == 1 and regs["DAC_READ_INDEX"] == 5 and regs["GR06"] == 0x0E
    assert regs["CR0E"] == 0 and regs["MISC"] == 0x67
    assert vga.attr_flip and vga.dac_read == 5 and vga.dac_sub == 0


@pytest.mark.parametrize("size", [0, 3, 5, 16])
def test_bad_sizes(size):
    vga = Vga()
    with pytest.raises(BadSizeError):
        vga.read(0, size)
    with pytest.raises(BadSizeError):
        vga.ports.write(0, size, 0)


def test_bad_offsets():
    vga = Vga()
    with pytest.raises(BadPortError):
        vga.ports.read(0x20, 1)
    with pytest.raises(BadPortError):
        vga.ports.write(0x1F, 2, 0)
    with pytest.raises(BadAddressError):
        vga.write(-1, 1, 0)


def test_repr_has_no_address():
    assert repr(Vga()) == "Vga(text)" and repr(Vga().ports) == "VgaPorts()"


# -- guest programs ---------------------------------------------------------------------------
def test_console_prints_moves_the_cursor_and_handles_newline_and_backspace():
    b, vga = bench_with_vga()
    b.run(g.console_puts("xv6\nhello, vgx\bA"))
    assert vga.screen()[:2] == ["xv6", "hello, vgA"] and vga.cursor() == (1, 10)
    chars, attrs = vga.text_cells()
    assert attrs[0, 0] == 0x07 and chars[1, 10] == ord(" ")  # cgaputc blanks the cursor cell


def test_console_scrolls_at_row_24():
    b, vga = bench_with_vga()
    b.run(g.console_puts("".join(f"line {i}\n" for i in range(30))))
    rows = vga.screen()
    assert rows[0] == "line 7" and rows[22] == "line 29" and rows[23] == ""
    assert vga.cursor() == (23, 0)


def test_console_attribute_and_code_page_437():
    b, vga = bench_with_vga()
    b.run(g.console_puts("░ ok", attr=0x1E))
    chars, attrs = vga.text_cells()
    assert chars[0, 0] == 0xB0 and attrs[0, 0] == 0x1E  # code page 437's light shade
    assert vga.screen_text()[0].startswith("░ ok") and vga.row(0) == "  ok"


def test_cga_putc_off_the_screen_is_a_config_error():
    b, vga = bench_with_vga()
    vga.crtc[0x0E], vga.crtc[0x0F] = 0x08, 0x00  # cursor at 2048: below the screen
    with pytest.raises(ConfigError):
        b.run(g.console_puts("x"))


def test_draw_scene_sets_mode_13h_through_the_ports_and_draws_the_picture():
    b, vga = bench_with_vga()
    assert b.run(g.draw_scene()) == 64000
    img, palette = g.scene()
    assert vga.mode == "mode13h" and vga.display_enabled
    assert vga.registers()["SR04"] == 0x0E and vga.gc[6] == 0x05 and vga.misc == 0x63
    assert np.array_equal(vga.pixels(), img)
    assert vga.palette()[: len(palette)].tolist() == [list(c) for c in palette]
    assert vga.pixels()[45, 250] == g.SUN and vga.pixels()[0, 0] == g.SKY
    assert vga.pixels()[199, 0] >= g.HILLS
    assert b.ops < 8200  # mode set + one REP OUTSB + 8000 stores of 8 pixels


def test_back_to_text_mode():
    b, vga = bench_with_vga()
    b.run(g.vga_set_mode(MODE_13H))
    assert vga.mode == "mode13h"
    b.run(g.vga_set_mode(MODE_3))
    assert vga.mode == "text" and vga.read(0, 1) == 0xFF
    b.run(g.vga_puts("again", 0, 0))
    assert vga.row(0) == "again"


def test_bad_palettes():
    with pytest.raises(ConfigError):
        next(g.vga_set_palette([(64, 0, 0)]))
    with pytest.raises(ConfigError):
        next(g.vga_set_palette([(0, 0, 0)] * 2, first=255))


def test_console_on_an_hvm_domain():
    machine = Machine(64 * MIB)
    dom = machine.add_domain("hvm", 16 * MIB)
    vga = Vga()
    dom.emulate_mmio(VGA_WINDOW_BASE, vga.size, vga, "VGA")
    dom.emulate_ports(v.PORTS_BASE, v.PORTS_LENGTH, vga.ports, "VGA ports")
    vcpu = Vcpu(dom, g.console_puts("Hi\n"))
    vcpu.run()
    assert vcpu.crashed is None and vga.row(0) == "Hi" and vga.cursor() == (1, 0)
