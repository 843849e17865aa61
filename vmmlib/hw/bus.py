"""One bus abstraction for both x86 address spaces.

A PC has two address spaces a device can answer in: the 64 K I/O ports (IN/OUT) and the
physical memory space (loads and stores that hit MMIO). A ``Bus`` models either: a device
*claims* a range and then answers ``read(offset, size)`` / ``write(offset, size, value)``
relative to the start of its range, as QEMU's MemoryRegion or rust-vmm's ``vm-device`` Bus do.

On real hardware nobody answers an access to an unclaimed address: the data lines float high,
so a read returns all ones and a write goes nowhere. The bus models exactly that.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import BadAddressError, BadPortError, BadSizeError, ConfigError, OverlapError

PORT_SPACE = 0x10000
PORT_SIZES = (1, 2, 4)
MMIO_SIZES = (1, 2, 4, 8)


def check_port_access(port: int, size: int) -> None:
    """Raise unless an IN/OUT of ``size`` bytes at ``port`` can exist on x86."""
    if port.__class__ is not int or not 0 <= port <= 0xFFFF:
        raise BadPortError(f"port {port!r} is outside the 16-bit I/O space 0x0000-0xFFFF")
    if size.__class__ is not int or size not in PORT_SIZES:
        raise BadSizeError(f"port I/O moves 1, 2 or 4 bytes, not {size!r}")


def elements(data: bytes, size: int) -> list[int]:
    """The little-endian ``size``-byte elements of a string I/O's bytes, in order."""
    return [int.from_bytes(data[i : i + size], "little") for i in range(0, len(data), size)]


class Device(Protocol):
    """Anything that answers accesses relative to the start of its claimed range."""

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Region:
    """One claim: ``length`` addresses from ``base``, answered by ``device``."""

    base: int
    length: int
    device: Device
    name: str
    end: int = field(init=False)  # last address of the range (inclusive)

    def __post_init__(self) -> None:
        object.__setattr__(self, "end", self.base + self.length - 1)

    def __contains__(self, addr: int) -> bool:
        return self.base <= addr <= self.end


class Bus:
    """An address space of ``size`` addresses on which devices claim ranges."""

    sizes: tuple[int, ...] = MMIO_SIZES
    address_error: type[ConfigError] = BadAddressError
    unit = "address"

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self.regions: list[Region] = []
        self._bases: list[int] = []

    # -- configuration -------------------------------------------------------------------
    def claim(self, base: int, length: int, device: Device, name: str | None = None) -> Region:
        """Give ``device`` the addresses ``base`` … ``base + length - 1``."""
        if length.__class__ is not int or base.__class__ is not int:
            raise ConfigError(f"{self.name}: a claim's base and length are integers, not "
                              f"{base!r} and {length!r}")
        if length <= 0:
            raise ConfigError(f"{self.name}: a claim needs a positive length, got {length}")
        self.check_address(base)
        self.check_address(base + length - 1)
        label = name or type(device).__name__
        for r in self.regions:
            if base <= r.end and r.base <= base + length - 1:
                raise OverlapError(
                    f"{self.name}: {label} at {base:#x}-{base + length - 1:#x} overlaps "
                    f"{r.name} at {r.base:#x}-{r.end:#x}"
                )
        region = Region(base, length, device, label)
        i = bisect.bisect(self._bases, base)
        self._bases.insert(i, base)
        self.regions.insert(i, region)
        self._claimed(region)
        return region

    def _claimed(self, region: Region) -> None:
        """Hook for a bus that precomputes its dispatch when a device claims a range."""

    def check_address(self, addr: int) -> None:
        if not isinstance(addr, int) or not 0 <= addr < self.size:
            raise self.address_error(
                f"{self.name}: {self.unit} {addr!r} is outside 0x0-{self.size - 1:#x}"
            )

    def check_size(self, size: int) -> None:
        if size.__class__ is not int or size not in self.sizes:
            allowed = ", ".join(map(str, self.sizes))
            raise BadSizeError(f"{self.name}: access size {size!r} is not one of {allowed} bytes")

    def check(self, addr: int, size: int) -> None:
        """Raise a ``ConfigError`` unless ``size`` bytes at ``addr`` is a valid access."""
        self.check_size(size)
        self.check_address(addr)

    # -- lookup ----------------------------------------------------------------------------
    def overlaps(self, first: int, last: int) -> bool:
        """Does any claimed region touch an address in ``first`` … ``last``?"""
        i = bisect.bisect(self._bases, last) - 1  # the last region starting at or before it
        return i >= 0 and self.regions[i].end >= first

    def find(self, addr: int) -> Region | None:
        """The region that claims ``addr``, or None."""
        i = bisect.bisect(self._bases, addr) - 1
        if i >= 0 and addr <= self.regions[i].end:
            return self.regions[i]
        return None

    # -- accesses --------------------------------------------------------------------------
    def read(self, addr: int, size: int) -> int:
        """Read ``size`` bytes at ``addr`` (little-endian); unclaimed bytes read as 0xFF."""
        if (size.__class__ is not int or size not in self.sizes or addr.__class__ is not int
                or not 0 <= addr < self.size):
            self.check(addr, size)
        r = self.find(addr)
        if r is not None and addr + size - 1 <= r.end:
            return r.device.read(addr - r.base, size) & ((1 << (8 * size)) - 1)
        value = 0
        for i in range(size):  # straddles regions or unclaimed: decode byte lane by lane
            value |= self._read_byte((addr + i) % self.size) << (8 * i)
        return value

    def read_string(self, addr: int, size: int, count: int) -> bytes:
        """``count`` reads of ``size`` bytes at ``addr``, their bytes in order: what a REP INS
        (or a device model serving one ioreq with ``count`` elements) reads. A device with a
        ``read_string(offset, size, count)`` of its own answers in one call (it must give
        exactly what ``count`` reads would); any other is read ``count`` times."""
        if count.__class__ is not int or count < 0:
            raise ConfigError(f"{self.name}: a string read has a count >= 0, not {count!r}")
        self.check(addr, size)
        r = self.find(addr)
        if r is not None and addr + size - 1 <= r.end:
            bulk = getattr(r.device, "read_string", None)
            if bulk is not None:
                return bulk(addr - r.base, size, count)
        return b"".join(self.read(addr, size).to_bytes(size, "little") for _ in range(count))

    def write(self, addr: int, size: int, value: int) -> None:
        """Write ``size`` bytes of ``value`` at ``addr``; unclaimed bytes are dropped."""
        if (size.__class__ is not int or size not in self.sizes or addr.__class__ is not int
                or not 0 <= addr < self.size):
            self.check(addr, size)
        if value.__class__ is not int:
            raise ConfigError(f"{self.name}: a value written is an integer, not {value!r}")
        value &= (1 << (8 * size)) - 1
        r = self.find(addr)
        if r is not None and addr + size - 1 <= r.end:
            r.device.write(addr - r.base, size, value)
            return
        for i in range(size):
            a = (addr + i) % self.size
            r = self.find(a)
            if r is not None:
                r.device.write(a - r.base, 1, (value >> (8 * i)) & 0xFF)

    def _read_byte(self, addr: int) -> int:
        r = self.find(addr)
        return 0xFF if r is None else r.device.read(addr - r.base, 1) & 0xFF


class PortBus(Bus):
    """The x86 I/O port space: 64 K byte-wide ports, accessed 1, 2 or 4 bytes at a time.

    Claims are small (a UART answers 8 ports), so the bus keeps a table port → region, filled
    when a device claims its range: finding the device behind a port is one dictionary lookup
    on every trapped IN/OUT.
    """

    sizes = PORT_SIZES
    address_error = BadPortError
    unit = "port"

    def __init__(self, name: str = "ports") -> None:
        super().__init__(name, PORT_SPACE)
        #: port -> the region claiming it (the exit handlers' per-port dispatch table)
        self.by_port: dict[int, Region] = {}

    def _claimed(self, region: Region) -> None:
        for port in range(region.base, region.end + 1):
            self.by_port[port] = region

    def find(self, addr: int) -> Region | None:
        """The region that claims port ``addr``, or None."""
        return self.by_port.get(addr)


class MemoryBus(Bus):
    """A physical address space in which devices claim MMIO ranges (accesses of 1-8 bytes)."""

    def __init__(self, name: str = "mmio", size: int = 1 << 52) -> None:
        super().__init__(name, size)
