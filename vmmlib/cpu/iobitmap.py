"""Port-I/O intercepts in their real form: Intel VMX I/O bitmaps and the AMD SVM IOPM.

Both are plain bitmaps in memory, one bit per port, **1 = intercept (VM exit)**:

* VMX: two 4 KiB pages, bitmap A for ports 0x0000-0x7FFF and bitmap B for 0x8000-0xFFFF,
  used only when the VM-execution control "use I/O bitmaps" (bit 25) is set; otherwise
  "unconditional I/O exiting" (bit 24) decides for every port at once. An access of s bytes
  exits if the bit of *any* port p … p+s-1 is set, and always exits if it wraps past 0xFFFF.
* SVM: one 12 KiB map of 64 K + 3 meaningful bits, consulted when the IOIO_PROT intercept
  is on. Multi-byte accesses check every byte's bit; the three bits past 0xFFFF decide a
  wrapping access (there is no hard-wired wrap rule).

**The lookup the CPU uses.** Every simulated IN/OUT asks "does this exit?", so each map also
keeps ``exit_lookup``: for each size 1, 2, 4 a 64 K-entry table of 0/1 answers, recomputed from
the bits (with numpy) whenever a bit or a control changes, and never written any other way.
The bitmaps stay the source of truth and what the notebooks show; ``exits()`` applies the
rules bit by bit, and a test checks that both agree on every port and size.

Sources: Intel SDM vol. 3C "I/O-Bitmap Addresses" and "Instructions That Cause VM Exits
Conditionally"; AMD64 APM vol. 2 §15.10.1 "I/O Permissions Map"; Xen's shared 3-page map
(xen/arch/x86/hvm/hvm.c). See shared/reference/hardware-facts.md §1.1 and §2.1.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from ..errors import BadPortError, ConfigError
from ..hw.bus import PORT_SIZES, check_port_access

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


class BitmapPage:
    """One 4 KiB page of a bitmap, as the VMM sees it in memory: bytes it can read and write.

    Writing a byte (``page[i] = value``) changes the map itself, so the CPU's lookup is
    recomputed, exactly as real hardware reads whatever the VMM stored in the page.
    """

    __slots__ = ("_map", "_start")

    def __init__(self, owner: _Bitmap, start: int) -> None:
        self._map = owner
        self._start = start

    def __len__(self) -> int:
        return PAGE

    def __getitem__(self, i: int | slice) -> int | bytes:
        return bytes(self)[i]

    def __iter__(self):
        return iter(bytes(self))

    def __bytes__(self) -> bytes:
        return bytes(self._map._bits[self._start : self._start + PAGE])

    def __setitem__(self, i: int, value: int) -> None:
        if i.__class__ is not int or not -PAGE <= i < PAGE:
            raise ConfigError(f"byte {i!r} is outside a 4 KiB bitmap page")
        if value.__class__ is not int or not 0 <= value <= 0xFF:
            raise ConfigError(f"a bitmap byte is 0-255, not {value!r}")
        self._map._bits[self._start + i % PAGE] = value
        self._map._rebuild()


class _Bitmap:
    """Shared bit manipulation over a ``bytearray`` (bit n = bit n % 8 of byte n // 8)."""

    nbits: int

    def __init__(self, nbytes: int, intercept_all: bool) -> None:
        self._bits = bytearray(b"\xff" * nbytes if intercept_all else nbytes)
        self.exit_lookup: tuple[bytes, ...] = ()

    @property
    def bits(self) -> memoryview:
        """The whole map, read-only (change it with ``intercept`` / ``allow``)."""
        return memoryview(self._bits).toreadonly()

    def _check_bit(self, n: int) -> None:
        if n.__class__ is not int or not 0 <= n < self.nbits:
            raise BadPortError(f"bit {n!r} is outside this map (0-{self.nbits - 1:#x})")

    def bit(self, n: int) -> int:
        """The bit for port (or IOPM index) ``n``: 1 = intercept."""
        self._check_bit(n)
        return (self._bits[n >> 3] >> (n & 7)) & 1

    def _set(self, first: int, last: int, value: int) -> None:
        self._check_bit(first)
        self._check_bit(last)
        if last < first:
            raise ConfigError(f"empty port range {first:#x}-{last:#x}")
        bits = self._bits
        for n in range(first, last + 1):
            if value:
                bits[n >> 3] |= 1 << (n & 7)
            else:
                bits[n >> 3] &= ~(1 << (n & 7)) & 0xFF
        self._rebuild()

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
        return np.unpackbits(np.frombuffer(bytes(self._bits), np.uint8), bitorder="little")[
            : self.nbits
        ]

    # -- the CPU's lookup ------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Recompute ``exit_lookup`` from the bits and controls (see the module docstring)."""
        raise NotImplementedError

    @staticmethod
    def _any_of(bits: np.ndarray, size: int, ports: int) -> np.ndarray:
        """For each port p < ``ports``: is any of bits p … p+size-1 set (bits past the end 0)?"""
        padded = np.concatenate((bits, np.zeros(size, np.uint8)))
        hit = np.zeros(ports, np.uint8)
        for i in range(size):
            hit |= padded[i : i + ports]
        return hit


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
        self._ctls = (CPU_BASED_ACTIVATE_IO_BITMAP if use_io_bitmaps else 0) | (
            CPU_BASED_UNCOND_IO_EXITING if unconditional_io_exiting else 0
        )
        self._rebuild()

    @property
    def procbased_ctls(self) -> int:
        """The primary processor-based VM-execution controls (only bits 24 and 25 modelled)."""
        return self._ctls

    @procbased_ctls.setter
    def procbased_ctls(self, value: int) -> None:
        if value.__class__ is not int or not 0 <= value < 1 << 32:
            raise ConfigError(f"the execution controls are a 32-bit value, not {value!r}")
        self._ctls = value
        self._rebuild()

    @property
    def a(self) -> BitmapPage:
        """I/O bitmap A: ports 0x0000-0x7FFF."""
        return BitmapPage(self, 0)

    @property
    def b(self) -> BitmapPage:
        """I/O bitmap B: ports 0x8000-0xFFFF."""
        return BitmapPage(self, PAGE)

    @property
    def use_io_bitmaps(self) -> bool:
        return bool(self.procbased_ctls & CPU_BASED_ACTIVATE_IO_BITMAP)

    @property
    def unconditional_io_exiting(self) -> bool:
        return bool(self.procbased_ctls & CPU_BASED_UNCOND_IO_EXITING)

    def exits(self, port: int, size: int) -> bool:
        """Does an IN/OUT/INS/OUTS of ``size`` bytes at ``port`` cause a VM exit?"""
        check_port_access(port, size)
        ctls = self._ctls
        if not ctls & CPU_BASED_ACTIVATE_IO_BITMAP:
            return bool(ctls & CPU_BASED_UNCOND_IO_EXITING)
        if port + size > 0x10000:  # the access wraps around the port space: always exits
            return True
        bits = self._bits
        for p in range(port, port + size):
            if (bits[p >> 3] >> (p & 7)) & 1:
                return True
        return False

    def _rebuild(self) -> None:
        if not self._ctls & CPU_BASED_ACTIVATE_IO_BITMAP:
            every = bytes([1 if self._ctls & CPU_BASED_UNCOND_IO_EXITING else 0]) * 0x10000
            self.exit_lookup = (b"", every, every, b"", every)
            return
        bits = self.as_array()
        tables = {}
        for size in PORT_SIZES:
            hit = self._any_of(bits, size, 0x10000)
            hit[0x10000 - size + 1 :] = 1  # an access that wraps past 0xFFFF always exits
            tables[size] = hit.tobytes()
        self.exit_lookup = (b"", tables[1], tables[2], b"", tables[4])


class SvmIopm(_Bitmap):
    """AMD SVM I/O permissions map: 12 KiB, bit n = port n, 64 K + 3 bits meaningful."""

    nbits = SVM_IOPM_BITS

    def __init__(self, intercept_all: bool = False, ioio_prot: bool = True) -> None:
        super().__init__(SVM_IOPM_SIZE, intercept_all)
        self._ioio_prot = bool(ioio_prot)
        self._rebuild()

    @property
    def ioio_prot(self) -> bool:
        """The VMCB's IOIO_PROT intercept: the map is consulted only when it is on."""
        return self._ioio_prot

    @ioio_prot.setter
    def ioio_prot(self, value: bool) -> None:
        if value.__class__ is not bool:
            raise ConfigError(f"IOIO_PROT is on or off (True/False), not {value!r}")
        self._ioio_prot = value
        self._rebuild()

    def exits(self, port: int, size: int) -> bool:
        """Does an IN/OUT of ``size`` bytes at ``port`` cause #VMEXIT(IOIO)?"""
        check_port_access(port, size)
        if not self.ioio_prot:
            return False
        bits = self._bits
        for n in range(port, port + size):  # may run into the 3 bits past 0xFFFF
            if (bits[n >> 3] >> (n & 7)) & 1:
                return True
        return False

    def _rebuild(self) -> None:
        if not self._ioio_prot:
            none = bytes(0x10000)
            self.exit_lookup = (b"", none, none, b"", none)
            return
        bits = self.as_array()  # 64 K + 3 bits: a wrapping access reads the spill bits
        tables = {size: self._any_of(bits, size, 0x10000).tobytes() for size in PORT_SIZES}
        self.exit_lookup = (b"", tables[1], tables[2], b"", tables[4])
