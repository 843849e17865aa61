"""Machine memory: sparse, page-granular RAM.

A 512 MiB machine would cost 512 MiB of host memory if modelled as one array. Real RAM is
mostly untouched in a lesson, so ``MachineMemory`` allocates a 4 KiB numpy page the first
time it is written; a read of a page never written returns zeros (as freshly scrubbed RAM
would) without allocating it.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadAddressError, BadSizeError

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1
MIB = 1 << 20


class MachineMemory:
    """Host-physical RAM of ``size`` bytes (a multiple of 4 KiB), allocated on first touch."""

    def __init__(self, size: int) -> None:
        if size <= 0 or size % PAGE_SIZE:
            raise BadAddressError(f"memory size {size!r} is not a positive multiple of 4 KiB")
        self.size = size
        self.pages: dict[int, np.ndarray] = {}

    @property
    def frames(self) -> int:
        """Number of 4 KiB machine frames."""
        return self.size >> PAGE_SHIFT

    def page(self, frame: int) -> np.ndarray:
        """The 4096 bytes of machine frame ``frame`` as a writable numpy array (allocated,
        zeroed, on first use): how a structure shared in a page (a ring, a grant table,
        shared_info) is read and written in place by every party that maps that frame."""
        if frame.__class__ is not int or not 0 <= frame < self.frames:
            raise BadAddressError(
                f"machine frame {frame!r} is outside RAM (0-{self.frames - 1:#x})"
            )
        page = self.pages.get(frame)
        if page is None:
            page = self.pages[frame] = np.zeros(PAGE_SIZE, np.uint8)
        return page

    def touched_frames(self) -> list[int]:
        """Machine frame numbers that hold data (sorted)."""
        return sorted(self.pages)

    def _check(self, addr: int, length: int) -> None:
        if not isinstance(addr, int) or addr < 0 or addr + length > self.size:
            raise BadAddressError(
                f"machine address {addr!r} (+{length}) is outside RAM 0x0-{self.size - 1:#x}"
            )

    def read_bytes(self, addr: int, length: int) -> bytes:
        """``length`` bytes from machine address ``addr`` (may cross pages)."""
        self._check(addr, length)
        out = bytearray()
        while length:
            frame, off = addr >> PAGE_SHIFT, addr & PAGE_MASK
            n = min(length, PAGE_SIZE - off)
            page = self.pages.get(frame)
            out += bytes(n) if page is None else page[off : off + n].tobytes()
            addr, length = addr + n, length - n
        return bytes(out)

    def write_bytes(self, addr: int, data: bytes) -> None:
        """Store ``data`` at machine address ``addr`` (may cross pages)."""
        self._check(addr, len(data))
        view = memoryview(bytes(data))
        while view:
            frame, off = addr >> PAGE_SHIFT, addr & PAGE_MASK
            n = min(len(view), PAGE_SIZE - off)
            page = self.pages.get(frame)
            if page is None:
                page = self.pages[frame] = np.zeros(PAGE_SIZE, np.uint8)
            page[off : off + n] = np.frombuffer(view[:n], np.uint8)
            addr, view = addr + n, view[n:]

    def read(self, addr: int, size: int) -> int:
        """A little-endian integer of ``size`` (1, 2, 4, 8) bytes."""
        if size not in (1, 2, 4, 8):
            raise BadSizeError(f"a memory access moves 1, 2, 4 or 8 bytes, not {size!r}")
        return int.from_bytes(self.read_bytes(addr, size), "little")

    def write(self, addr: int, size: int, value: int) -> None:
        """Store ``value`` as ``size`` little-endian bytes."""
        if size not in (1, 2, 4, 8):
            raise BadSizeError(f"a memory access moves 1, 2, 4 or 8 bytes, not {size!r}")
        self.write_bytes(addr, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))
