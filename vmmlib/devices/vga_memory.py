"""The VGA card's video memory: four 64 KiB planes behind the CPU's window A0000-BFFFF.

GR06 bits 3:2 select the window the card decodes: 00 = A0000-BFFFF, 01 = A0000-AFFFF, 10 =
B0000-B7FFF, 11 = B8000-BFFFF; outside it reads float to 0xFF and writes are dropped (QEMU
``vga_update_memory_access``). Inside, the sequencer's memory mode picks the planes: chain-4
(SR04 bit 3, mode 13h) sends address a to plane a & 3 at a >> 2; odd/even (SR04 bit 2 = 0 for
writes, GR05 bit 4 for reads, text mode) sends even addresses to plane 0 (and 2), odd ones to
plane 1 (and 3), at a >> 1; otherwise a write goes to every plane SR02 enables and a read comes
from the plane GR04 selects. The shifts fold the CRTC's doubleword/word addressing into the CPU
side, as QEMU does. **Not modelled:** write modes 1-3, set/reset, data rotate, the bit mask and
the latches (write mode 0 with all bits written), read mode 1.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadAddressError, BadSizeError
from ..hw.bus import MMIO_SIZES
from .vga_registers import GR05_ODD_EVEN, SR04_CHAIN4, SR04_ODD_EVEN_OFF
from .vga_text import TEXT_BASE, TEXT_SIZE, VGA_WINDOW_BASE

PLANE_SIZE = 0x10000
#: GR06 bits 3:2 -> (offset in the window, length) the card decodes: A0000-BFFFF, A0000-AFFFF,
#: B0000-B7FFF, B8000-BFFFF (hardware-facts.md §10; QEMU vga_update_memory_access)
MEMORY_MAPS = ((0, 0x20000), (0, 0x10000), (0x10000, 0x8000), (0x18000, 0x8000))


class VgaMemory:
    """The memory half of ``Vga`` (a mixin: the planes, and the registers that decide how CPU
    addresses reach them)."""

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
