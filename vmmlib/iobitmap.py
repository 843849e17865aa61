"""Port-I/O intercepts in their real form: Intel VMX I/O bitmaps and the AMD SVM IOPM.

Both are plain bitmaps in memory, one bit per port, **1 = intercept (VM exit)**:

* VMX: two 4 KiB pages, bitmap A for ports 0x0000-0x7FFF and bitmap B for 0x8000-0xFFFF,
  used only when the VM-execution control "use I/O bitmaps" (bit 25) is set; otherwise
  "unconditional I/O exiting" (bit 24) decides for every port at once. An access of s bytes
  exits if the bit of *any* port p … p+s-1 is set, and always exits if it wraps past 0xFFFF.
* SVM: one 12 KiB map of 64 K + 3 meaningful bits, consulted when the IOIO_PROT intercept
  is on. Multi-byte accesses check every byte's bit; the three bits past 0xFFFF decide a
  wrapping access (there is no hard-wired wrap rule).

Sources: Intel SDM vol. 3C "I/O-Bitmap Addresses" and "Instructions That Cause VM Exits
Conditionally"; AMD64 APM vol. 2 §15.10.1 "I/O Permissions Map"; Xen's shared 3-page map
(xen/arch/x86/hvm/hvm.c). See shared/reference/hardware-facts.md §1.1 and §2.1.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from .bus import check_port_access
from .errors import BadPortError, ConfigError

PAGE = 4096
#: Primary processor-based VM-execution controls (Intel SDM; xen vmx/vmcs.h).
CPU_BASED_UNCOND_IO_EXITING = 1 << 24
CPU_BASED_ACTIVATE_IO_BITMAP = 1 << 25
#: VMCS field encodings of the two bitmap addresses.
VMCS_IO_BITMAP_A = 0x2000
VMCS_IO_BITMAP_B = 0x2002
#: SVM: the IOPM size and where the VMCB keeps its physical address.
SVM_IOPM_SIZE = 3 * PAGE
SVM_IOPM_BITS = 0x10000 + 3
VMCB_IOPM_BASE_PA = 0x040
#: Ports Xen lets every HVM guest touch directly (I/O-delay ports; xen/arch/x86/hvm/hvm.c).
XEN_PASSTHROUGH_PORTS = (0x80, 0xED)


_B = TypeVar("_B", bound="_Bitmap")


class _Bitmap:
    """Shared bit manipulation over a ``bytearray`` (bit n = bit n % 8 of byte n // 8)."""

    nbits: int

    def __init__(self, nbytes: int, intercept_all: bool) -> None:
        self.bits = bytearray(b"\xff" * nbytes if intercept_all else nbytes)

    def _check_bit(self, n: int) -> None:
        if not isinstance(n, int) or not 0 <= n < self.nbits:
            raise BadPortError(f"bit {n!r} is outside this map (0-{self.nbits - 1:#x})")

    def bit(self, n: int) -> int:
        """The bit for port (or IOPM index) ``n``: 1 = intercept."""
        self._check_bit(n)
        return (self.bits[n >> 3] >> (n & 7)) & 1

    def _set(self, first: int, last: int, value: int) -> None:
        if last < first:
            raise ConfigError(f"empty port range {first:#x}-{last:#x}")
        self._check_bit(first)
        self._check_bit(last)
        for n in range(first, last + 1):
            if value:
                self.bits[n >> 3] |= 1 << (n & 7)
            else:
                self.bits[n >> 3] &= ~(1 << (n & 7)) & 0xFF

    def intercept(self, first: int, last: int | None = None) -> None:
        """Set the bits of ports ``first`` … ``last``: accesses there exit."""
        self._set(first, first if last is None else last, 1)

    def allow(self, first: int, last: int | None = None) -> None:
        """Clear the bits of ports ``first`` … ``last``: the guest reaches them directly."""
        self._set(first, first if last is None else last, 0)

    @classmethod
    def xen_default(cls: type[_B]) -> _B:
        """What Xen gives a new HVM domain: intercept everything (on SVM the 3 spill bits
        included) except the I/O-delay ports 0x80 and 0xED."""
        bm = cls(intercept_all=True)
        for port in XEN_PASSTHROUGH_PORTS:
            bm.allow(port)
        return bm

    def as_array(self) -> np.ndarray:
        """The map as a numpy array of 0/1, one entry per bit (for plots and exercises)."""
        return np.unpackbits(np.frombuffer(bytes(self.bits), np.uint8), bitorder="little")[
            : self.nbits
        ]


class VmxIoBitmaps(_Bitmap):
    """Intel VMX I/O bitmaps A and B plus the two I/O-related execution controls.

    ``a`` and ``b`` are the two 4 KiB pages (views into one 8 KiB buffer, laid end to end as
    Xen lays them out, so bit p of the buffer is port p).
    """

    nbits = 0x10000

    def __init__(
        self,
        intercept_all: bool = False,
        use_io_bitmaps: bool = True,
        unconditional_io_exiting: bool = False,
    ) -> None:
        super().__init__(2 * PAGE, intercept_all)
        self.procbased_ctls = (CPU_BASED_ACTIVATE_IO_BITMAP if use_io_bitmaps else 0) | (
            CPU_BASED_UNCOND_IO_EXITING if unconditional_io_exiting else 0
        )

    @property
    def a(self) -> memoryview:
        """I/O bitmap A: ports 0x0000-0x7FFF."""
        return memoryview(self.bits)[:PAGE]

    @property
    def b(self) -> memoryview:
        """I/O bitmap B: ports 0x8000-0xFFFF."""
        return memoryview(self.bits)[PAGE:]

    @property
    def use_io_bitmaps(self) -> bool:
        return bool(self.procbased_ctls & CPU_BASED_ACTIVATE_IO_BITMAP)

    @property
    def unconditional_io_exiting(self) -> bool:
        return bool(self.procbased_ctls & CPU_BASED_UNCOND_IO_EXITING)

    def exits(self, port: int, size: int) -> bool:
        """Does an IN/OUT/INS/OUTS of ``size`` bytes at ``port`` cause a VM exit?"""
        ctls = self.procbased_ctls
        if size == 1 and ctls & CPU_BASED_ACTIVATE_IO_BITMAP and port.__class__ is int:
            if 0 <= port <= 0xFFFF:  # the common case, on every simulated IN/OUT
                return (self.bits[port >> 3] >> (port & 7)) & 1 == 1
        check_port_access(port, size)
        if not ctls & CPU_BASED_ACTIVATE_IO_BITMAP:
            return bool(ctls & CPU_BASED_UNCOND_IO_EXITING)
        if port + size > 0x10000:  # the access wraps around the port space: always exits
            return True
        bits = self.bits
        for p in range(port, port + size):
            if (bits[p >> 3] >> (p & 7)) & 1:
                return True
        return False


class SvmIopm(_Bitmap):
    """AMD SVM I/O permissions map: 12 KiB, bit n = port n, 64 K + 3 bits meaningful."""

    nbits = SVM_IOPM_BITS

    def __init__(self, intercept_all: bool = False, ioio_prot: bool = True) -> None:
        super().__init__(SVM_IOPM_SIZE, intercept_all)
        self.ioio_prot = ioio_prot

    def exits(self, port: int, size: int) -> bool:
        """Does an IN/OUT of ``size`` bytes at ``port`` cause #VMEXIT(IOIO)?"""
        check_port_access(port, size)
        if not self.ioio_prot:
            return False
        bits = self.bits
        for n in range(port, port + size):  # may run into the 3 bits past 0xFFFF
            if (bits[n >> 3] >> (n & 7)) & 1:
                return True
        return False
