"""The VGA card's register sets: the sequencer, graphics controller, CRTC, attribute controller
and DAC, reached through the ports 0x3C0-0x3DF (hardware-facts.md §10, §12).

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

Index/data pairs select a register of a set and then read or write it; the attribute
controller has one port for both, with a flip-flop; the DAC auto-increments through R, G, B of
each entry. With MISC bit 0 = 0 (monochrome) the 0x3D4/0x3D5/0x3DA ports stop answering, as on
the card, and nothing answers at 0x3B4. Retrace is not timed: input status 1 toggles its
retrace bits on every read (QEMU's "dumb" retrace).

``MODE_3`` and ``MODE_13H`` are the register values the BIOS programs for the two modes the
model displays.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadPortError, BadSizeError
from ..hw.bus import PORT_SIZES

PORTS_BASE, PORTS_LENGTH = 0x3C0, 0x20  # 0x3C0-0x3DF
ATTR_INDEX, ATTR_DATA, MISC_WRITE, SEQ_INDEX, SEQ_DATA = 0x3C0, 0x3C1, 0x3C2, 0x3C4, 0x3C5
DAC_MASK, DAC_READ_INDEX, DAC_WRITE_INDEX, DAC_DATA = 0x3C6, 0x3C7, 0x3C8, 0x3C9
FEATURE_READ, MISC_READ, GC_INDEX, GC_DATA = 0x3CA, 0x3CC, 0x3CE, 0x3CF
CRTC_INDEX, CRTC_DATA, INPUT_STATUS_1 = 0x3D4, 0x3D5, 0x3DA
N_SEQ, N_GC, N_CRTC, N_ATTR = 5, 9, 25, 21

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

    def __init__(self, vga: VgaRegisterSets) -> None:
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


class VgaRegisterSets:
    """The register half of ``Vga`` (a mixin): the register sets' state, their index/data
    decoding behind ``VgaPorts``, and the mode tables' loader."""

    def _reset_registers(self) -> None:
        """The registers as the BIOS leaves them after mode 3, the EGA palette in the DAC."""
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

