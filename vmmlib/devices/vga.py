"""The VGA card: the whole 128 KiB memory window A0000-BFFFF and the registers that decide what
the CPU sees there and what the screen shows.

Two claims: the card itself (``Vga``) answers the memory window (offsets 0-0x1FFFF from A0000),
and ``vga.ports`` answers the register ports 0x3C0-0x3DF (hardware-facts.md §10, §12):

===== ============================== ==========================================
port  read                           write
===== ============================== ==========================================
3C0   attribute index                attribute index, then data (flip-flop)
3C1   attribute data                 -
3C2   input status 0                 miscellaneous output
3C4/5 sequencer index / data         sequencer index / data (SR0-SR4)
3C6   DAC pixel mask                 DAC pixel mask
3C7   DAC state (0 write, 3 read)    DAC read index
3C8   DAC write index                DAC write index
3C9   DAC data (R, G, B, auto-incr.) DAC data (R, G, B of 6 bits, auto-increment)
3CA   feature control                -
3CC   miscellaneous output           -
3CE/F graphics index / data          graphics index / data (GR0-GR8)
3D4/5 CRTC index / data              CRTC index / data (CR0-CR18; 0x0E/0x0F cursor)
3DA   input status 1 (resets 3C0's   feature control
      flip-flop to "index")
===== ============================== ==========================================

**Memory.** Four 64 KiB planes. GR06 bits 3:2 select the window the card decodes: 00 =
A0000-BFFFF, 01 = A0000-AFFFF, 10 = B0000-B7FFF, 11 = B8000-BFFFF; outside it reads float to
0xFF and writes are dropped (QEMU ``vga_update_memory_access``). Inside, the sequencer's memory
mode picks the planes: chain-4 (SR04 bit 3, mode 13h) sends address a to plane a & 3 at a >> 2;
odd/even (SR04 bit 2 = 0 for writes, GR05 bit 4 for reads, text mode) sends even addresses to
plane 0 (and 2), odd ones to plane 1 (and 3), at a >> 1; otherwise a write goes to every plane
SR02 enables and a read comes from the plane GR04 selects. The shifts fold the CRTC's
doubleword/word addressing into the CPU side, as QEMU does. **Not modelled:** write modes 1-3,
set/reset, data rotate, the bit mask and the latches (write mode 0 with all bits written),
read mode 1, planar display modes (0x0D-0x12), 40-column and monochrome modes (with MISC bit 0
= 0 the 0x3D4/0x3D5/0x3DA ports stop answering, as on the card, and nothing answers at 0x3B4).

**The screen.** Text mode (GR06 bit 0 = 0): cell i of the screen is character plane 0 and
attribute plane 1 at the CRTC start address (CR0C:CR0D) + i; the cursor is at CR0E:CR0F
unless CR0A bit 5 disables it. Colours go attribute index -> attribute-controller palette
register -> DAC entry, with AR10 bit 7 and AR14 supplying the high bits (blinking: AR10 bit 3
makes attribute bit 7 "blink" and leaves 3 background bits; the picture shows the "on" phase).
Mode 13h: 320 x 200 bytes, pixel n at plane n & 3, offset n >> 2, through the DAC (masked
with 3C6). The screen is blank while 3C0's PAS bit (0x20) is clear. Retrace is not timed:
input status 1 toggles its retrace bits on every read (QEMU's "dumb" retrace).

**Reset state** = what the BIOS leaves after setting mode 3 (SeaBIOS ``vgasrc/stdvgamodes.c``,
commit 62a1429e): colour text, GR06 = 0x0E (B8000-BFFFF), the EGA palette in DAC 0-63.
Claimed over the whole window it answers like ``VgaTextBuffer(base=VGA_WINDOW_BASE)``.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadAddressError, BadPortError, BadSizeError
from ..hw.bus import MMIO_SIZES, PORT_SIZES
from .vga_text import COLS, ROWS, TEXT_BASE, TEXT_SIZE, VGA_WINDOW_BASE, VGA_WINDOW_SIZE

PORTS_BASE, PORTS_LENGTH = 0x3C0, 0x20  # 0x3C0-0x3DF
ATTR_INDEX, ATTR_DATA, MISC_WRITE, SEQ_INDEX, SEQ_DATA = 0x3C0, 0x3C1, 0x3C2, 0x3C4, 0x3C5
DAC_MASK, DAC_READ_INDEX, DAC_WRITE_INDEX, DAC_DATA = 0x3C6, 0x3C7, 0x3C8, 0x3C9
FEATURE_READ, MISC_READ, GC_INDEX, GC_DATA = 0x3CA, 0x3CC, 0x3CE, 0x3CF
CRTC_INDEX, CRTC_DATA, INPUT_STATUS_1 = 0x3D4, 0x3D5, 0x3DA
N_SEQ, N_GC, N_CRTC, N_ATTR = 5, 9, 25, 21
PLANE_SIZE = 0x10000
#: GR06 bits 3:2 -> (offset in the window, length) the card decodes: A0000-BFFFF, A0000-AFFFF,
#: B0000-B7FFF, B8000-BFFFF (hardware-facts.md §10; QEMU vga_update_memory_access)
MEMORY_MAPS = ((0, 0x20000), (0, 0x10000), (0x10000, 0x8000), (0x18000, 0x8000))
SCREEN_W, SCREEN_H = 320, 200

# register bits used by the model
SR04_CHAIN4, SR04_ODD_EVEN_OFF = 0x08, 0x04
GR05_ODD_EVEN, GR05_SHIFT256, GR06_GRAPHICS = 0x10, 0x40, 0x01
CR0A_CURSOR_OFF, CR11_PROTECT, AR_PAS = 0x20, 0x80, 0x20
AR10_BLINK, AR10_P54S, MISC_COLOUR = 0x08, 0x80, 0x01
ST01_TOGGLE = 0x09  # input status 1: vertical retrace (bit 3) and display disabled (bit 0)

#: Bits that exist in each sequencer / graphics register (the others read 0): QEMU
#: hw/display/vga.c sr_mask and gr_mask (the same tables in Xen's arch/x86/hvm/stdvga.c).
SR_MASK = (0x03, 0x3D, 0x0F, 0x3F, 0x0E)
GR_MASK = (0x0F, 0x0F, 0x0F, 0x1F, 0x03, 0x7B, 0x0F, 0x0F, 0xFF)

# -- the two modes, as the BIOS programs them (SeaBIOS vgasrc/stdvgamodes.c @ 62a1429e) -------
#: Mode 3, 80 x 25 colour text: misc 0x67 (colour CRTC at 3D4, 28 MHz clock); sequencer 9-dot
#: characters, planes 0-1 written, odd/even; graphics odd/even, text, memory map B8000; CRTC
#: 80 columns, 400 lines, cursor on scan lines 13-14; attributes: the 16 colours mapped to EGA
#: palette entries (brown = 0x14, bright colours 0x38-0x3F), blink on.
MODE_3 = {
    "misc": 0x67,
    "seq": (0x03, 0x00, 0x03, 0x00, 0x02),
    "crtc": (0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F, 0x00, 0x4F, 0x0D, 0x0E, 0x00, 0x00,
             0x00, 0x00, 0x9C, 0x8E, 0x8F, 0x28, 0x1F, 0x96, 0xB9, 0xA3, 0xFF),
    "gc": (0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x0F, 0xFF),
    "attr": (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D,
             0x3E, 0x3F, 0x0C, 0x00, 0x0F, 0x08, 0x00),
}
#: Mode 13h, 320 x 200 x 256: misc 0x63 (25 MHz clock); sequencer 8-dot, all planes, chain-4;
#: graphics 256-colour shift, graphics mode, memory map A0000-AFFFF; CRTC doubleword mode
#: (CR14 = 0x40), 200 lines doubled to 400; attributes identity, 8-bit colour (AR10 = 0x41).
MODE_13H = {
    "misc": 0x63,
    "seq": (0x03, 0x01, 0x0F, 0x00, 0x0E),
    "crtc": (0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00,
             0x00, 0x00, 0x9C, 0x8E, 0x8F, 0x28, 0x40, 0x96, 0xB9, 0xA3, 0xFF),
    "gc": (0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0F, 0xFF),
    "attr": (*range(16), 0x41, 0x00, 0x0F, 0x00, 0x00),
}


def ega_palette() -> np.ndarray:
    """The 64-entry EGA palette the BIOS loads for text modes (6-bit R, G, B): index bits 2/1/0
    add 2/3 of full red/green/blue (0x2A), bits 5/4/3 add 1/3 (0x15)."""
    i = np.arange(64)
    rgb = [0x2A * (i >> b & 1) + 0x15 * (i >> (b + 3) & 1) for b in (2, 1, 0)]
    return np.stack(rgb, axis=1).astype(np.uint8)


def dac_to_rgb(values: np.ndarray) -> np.ndarray:
    """6-bit DAC levels to 8-bit colour (QEMU's c6_to_8: v << 2 | v >> 4)."""
    v = np.asarray(values, dtype=np.uint8)
    return (v << 2) | (v >> 4)


class VgaPorts:
    """The register ports 0x3C0-0x3DF of a ``Vga``, as one claimable device."""

    def __init__(self, vga: Vga) -> None:
        self.vga = vga

    def __repr__(self) -> str:
        return "VgaPorts()"

    def _check(self, offset: int, size: int) -> None:
        if size not in PORT_SIZES:
            raise BadSizeError(f"VGA ports: access size {size!r} is not 1, 2 or 4")
        if not isinstance(offset, int) or offset < 0 or offset + size > PORTS_LENGTH:
            raise BadPortError(f"VGA ports: {size}-byte access at offset {offset!r} is outside "
                               f"0x3C0-0x3DF")

    def read(self, offset: int, size: int) -> int:
        """IN: one byte cycle per byte, low byte first (an 8-bit ISA device)."""
        self._check(offset, size)
        return sum(self.vga._read_port(PORTS_BASE + offset + i) << (8 * i) for i in range(size))

    def write(self, offset: int, size: int, value: int) -> None:
        """OUT: byte cycles, so ``outw(index | value << 8, 0x3C4)`` sets a register at once."""
        self._check(offset, size)
        for i in range(size):
            self.vga._write_port(PORTS_BASE + offset + i, value >> (8 * i) & 0xFF)


class Vga:
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
        self.dac = np.zeros((256, 3), np.uint8)
        self.dac[:64] = ega_palette()
        self.dac_mask = 0xFF
        self.dac_read = self.dac_write = self.dac_sub = self.dac_state = 0
        self._dac_cache = [0, 0, 0]
        self.seq_index = self.gc_index = self.crtc_index = 0
        self.attr_index = AR_PAS  # video on
        self.attr_flip = False  # False: the next write to 3C0 is an index
        self.st01 = 0
        self.feature = 0
        self.load_mode(MODE_3)

    def load_mode(self, mode: dict) -> None:
        """Set every register from a mode table (what the BIOS would program; no memory
        cleared, no palette loaded)."""
        self.misc = mode["misc"]
        self.seq = [v & m for v, m in zip(mode["seq"], SR_MASK, strict=True)]
        self.gc = [v & m for v, m in zip(mode["gc"], GR_MASK, strict=True)]
        self.crtc = list(mode["crtc"])
        self.attr = list(mode["attr"])

    # -- the memory window ------------------------------------------------------------------
    def _map(self, offset: int) -> int | None:
        """Window offset -> address inside the selected memory map, or None (not decoded)."""
        start, length = MEMORY_MAPS[self.gc[6] >> 2 & 3]
        a = offset - start
        return a if 0 <= a < length else None

    def _locate_read(self, a: int) -> tuple[int, int]:
        if self.seq[4] & SR04_CHAIN4:
            return a & 3, a >> 2 & 0xFFFF
        if self.gc[5] & GR05_ODD_EVEN:
            return (self.gc[4] & 2) | (a & 1), a >> 1 & 0xFFFF
        return self.gc[4] & 3, a & 0xFFFF

    def _write_byte(self, a: int, v: int) -> None:
        mask = self.seq[2]
        if self.seq[4] & SR04_CHAIN4:
            planes, offset = (a & 3,), a >> 2 & 0xFFFF
        elif not self.seq[4] & SR04_ODD_EVEN_OFF:
            planes, offset = (a & 1, (a & 1) | 2), a >> 1 & 0xFFFF
        else:
            planes, offset = (0, 1, 2, 3), a & 0xFFFF
        for p in planes:
            if mask >> p & 1:
                self.planes[p, offset] = v

    def _check(self, offset: int, size: int) -> None:
        if size not in MMIO_SIZES:
            raise BadSizeError(f"VGA memory: access size {size!r} is not 1, 2, 4 or 8")
        if not isinstance(offset, int) or not 0 <= offset <= self.size - size:
            raise BadAddressError(f"offset {offset:#x} (+{size}) is outside the VGA claim")

    def read(self, offset: int, size: int) -> int:
        """A CPU load from the window (little-endian); undecoded bytes read 0xFF."""
        self._check(offset, size)
        value = 0
        for i in range(size):
            a = self._map(offset + i)
            if a is None:
                byte = 0xFF
            else:
                plane, off = self._locate_read(a)
                byte = int(self.planes[plane, off])
            value |= byte << (8 * i)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        """A CPU store into the window; undecoded bytes go nowhere."""
        self._check(offset, size)
        for i in range(size):
            a = self._map(offset + i)
            if a is not None:
                self._write_byte(a, value >> (8 * i) & 0xFF)

    # -- the register ports -------------------------------------------------------------------
    def _crtc_port_dead(self, port: int) -> bool:
        return port in (CRTC_INDEX, CRTC_DATA, INPUT_STATUS_1) and not self.misc & MISC_COLOUR

    def _read_port(self, port: int) -> int:
        if self._crtc_port_dead(port):
            return 0xFF
        if port == ATTR_INDEX:
            return self.attr_index
        if port == ATTR_DATA:
            i = self.attr_index & 0x1F
            return self.attr[i] if i < N_ATTR else 0
        if port == MISC_WRITE:
            return 0  # input status 0
        if port == SEQ_INDEX:
            return self.seq_index
        if port == SEQ_DATA:
            return self.seq[self.seq_index] if self.seq_index < N_SEQ else 0
        if port == DAC_MASK:
            return self.dac_mask
        if port == DAC_READ_INDEX:
            return self.dac_state
        if port == DAC_WRITE_INDEX:
            return self.dac_write
        if port == DAC_DATA:
            value = int(self.dac[self.dac_read, self.dac_sub])
            self.dac_sub += 1
            if self.dac_sub == 3:
                self.dac_sub, self.dac_read = 0, (self.dac_read + 1) & 0xFF
            return value
        if port == FEATURE_READ:
            return self.feature
        if port == MISC_READ:
            return self.misc
        if port == GC_INDEX:
            return self.gc_index
        if port == GC_DATA:
            return self.gc[self.gc_index] if self.gc_index < N_GC else 0
        if port == CRTC_INDEX:
            return self.crtc_index
        if port == CRTC_DATA:
            return self.crtc[self.crtc_index] if self.crtc_index < N_CRTC else 0
        if port == INPUT_STATUS_1:
            self.attr_flip = False  # the next write to 3C0 is an index
            self.st01 ^= ST01_TOGGLE
            return self.st01
        return 0xFF  # no register here

    def _write_port(self, port: int, v: int) -> None:
        if self._crtc_port_dead(port):
            return
        if port == ATTR_INDEX:
            if not self.attr_flip:
                self.attr_index = v & 0x3F
            else:
                i = self.attr_index & 0x1F
                if i < 16:
                    self.attr[i] = v & 0x3F
                elif i < N_ATTR:
                    self.attr[i] = v & (0x0F if i == 0x14 else 0xFF)
            self.attr_flip = not self.attr_flip
        elif port == MISC_WRITE:
            self.misc = v
        elif port == SEQ_INDEX:
            self.seq_index = v & 0x07
        elif port == SEQ_DATA:
            if self.seq_index < N_SEQ:
                self.seq[self.seq_index] = v & SR_MASK[self.seq_index]
        elif port == DAC_MASK:
            self.dac_mask = v
        elif port == DAC_READ_INDEX:
            self.dac_read, self.dac_sub, self.dac_state = v, 0, 3
        elif port == DAC_WRITE_INDEX:
            self.dac_write, self.dac_sub, self.dac_state = v, 0, 0
        elif port == DAC_DATA:
            self._dac_cache[self.dac_sub] = v & 0x3F  # the DAC keeps 6 bits per colour
            self.dac_sub += 1
            if self.dac_sub == 3:
                self.dac[self.dac_write] = self._dac_cache
                self.dac_sub, self.dac_write = 0, (self.dac_write + 1) & 0xFF
        elif port == GC_INDEX:
            self.gc_index = v & 0x0F
        elif port == GC_DATA:
            if self.gc_index < N_GC:
                self.gc[self.gc_index] = v & GR_MASK[self.gc_index]
        elif port == CRTC_INDEX:
            self.crtc_index = v
        elif port == CRTC_DATA:
            i = self.crtc_index
            if self.crtc[0x11] & CR11_PROTECT and i <= 7:
                if i == 7:  # only the line-compare bit 8 stays writable
                    self.crtc[7] = (self.crtc[7] & ~0x10) | (v & 0x10)
            elif i < N_CRTC:
                self.crtc[i] = v
        elif port == INPUT_STATUS_1:
            self.feature = v

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

    def text_memory(self) -> bytes:
        """The 32 KiB at B8000 as the CPU sees it now (0xFF where the card does not decode)."""
        return self.cpu_view(TEXT_BASE - VGA_WINDOW_BASE, TEXT_SIZE)

    def cpu_view(self, start: int, length: int) -> bytes:
        """What CPU loads of ``length`` bytes from window offset ``start`` would return (the
        same decoding as ``read``, for a whole range at once and without side effects)."""
        first, size = MEMORY_MAPS[self.gc[6] >> 2 & 3]
        a = np.arange(start, start + length) - first
        valid = (a >= 0) & (a < size)
        if self.seq[4] & SR04_CHAIN4:
            plane, off = a & 3, a >> 2
        elif self.gc[5] & GR05_ODD_EVEN:
            plane, off = (self.gc[4] & 2) | (a & 1), a >> 1
        else:
            plane, off = np.full_like(a, self.gc[4] & 3), a
        out = np.full(length, 0xFF, np.uint8)
        out[valid] = self.planes[plane[valid], off[valid] & 0xFFFF]
        return out.tobytes()

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

    def registers(self) -> dict[str, int]:
        """Every register by name, read WITHOUT side effects (no flip-flop reset, no DAC
        auto-increment)."""
        regs = {"MISC": self.misc, "ST01": self.st01, "FEATURE": self.feature,
                "AR_INDEX": self.attr_index, "AR_FLIPFLOP": int(self.attr_flip),
                "SR_INDEX": self.seq_index, "GR_INDEX": self.gc_index,
                "CR_INDEX": self.crtc_index, "DAC_MASK": self.dac_mask,
                "DAC_READ_INDEX": self.dac_read, "DAC_WRITE_INDEX": self.dac_write,
                "DAC_SUB": self.dac_sub, "DAC_STATE": self.dac_state}
        regs.update({f"SR{i:02X}": v for i, v in enumerate(self.seq)})
        regs.update({f"GR{i:02X}": v for i, v in enumerate(self.gc)})
        regs.update({f"CR{i:02X}": v for i, v in enumerate(self.crtc)})
        regs.update({f"AR{i:02X}": v for i, v in enumerate(self.attr)})
        return regs
