"""The operations a guest program yields to its vCPU.

A guest is a generator function. Each ``yield`` hands one operation to the vCPU, which
performs it (directly, or by exiting to the hypervisor) and sends the result back in::

    def hello(port=0x3F8):
        for ch in b"Hi":
            while not (yield In(port + 5, 1)) & 0x20:   # poll LSR.THRE
                pass
            yield Out(port, 1, ch)                      # write THR

Drivers compose with ``yield from``. The operations mirror x86 instructions: IN/OUT,
INS/OUTS with a REP prefix, MOV to/from memory, and a hypercall (VMCALL, or the PV trap).
The constructors validate their arguments, so a misconfigured guest fails at once with a
clear ``ConfigError`` instead of deep inside the simulator.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from ..errors import BadSizeError, ConfigError
from ..hw.bus import MMIO_SIZES, check_port_access

#: The simulator's limit on one REP INS/OUTS (a real RCX can be up to 2**64 - 1; a model
#: that tried would run out of memory rather than fault, so we refuse it up front).
MAX_REP_COUNT = 1 << 16


def _check_count(count: int) -> None:
    if not isinstance(count, int) or not 1 <= count <= MAX_REP_COUNT:
        raise ConfigError(f"a REP string I/O moves 1 to {MAX_REP_COUNT:,} elements, not {count!r}")


#: Virtual addresses a guest may use: the lower canonical half of x86-64 (48-bit linear
#: addresses). Anything else would be a #GP on real hardware; the model refuses it.
ADDRESS_LIMIT = 1 << 47


def _check_address(addr: int) -> None:
    if not isinstance(addr, int) or not 0 <= addr < ADDRESS_LIMIT:
        raise ConfigError(
            f"address {addr!r} is not in the canonical range 0-{ADDRESS_LIMIT - 1:#x}"
        )


def _check_value(value: int, size: int) -> None:
    if not isinstance(value, int) or not 0 <= value < 1 << (8 * size):
        raise ConfigError(f"value {value!r} does not fit in {size} byte(s)")


@dataclass(slots=True)
class In:
    """IN: read ``size`` bytes from ``port``; the vCPU sends back the value."""

    port: int
    size: int = 1

    def __post_init__(self) -> None:
        check_port_access(self.port, self.size)


@dataclass(slots=True)
class Out:
    """OUT: write ``value`` (``size`` bytes) to ``port``."""

    port: int
    size: int
    value: int

    def __post_init__(self) -> None:
        check_port_access(self.port, self.size)
        _check_value(self.value, self.size)


@dataclass(slots=True)
class Ins:
    """(REP) INS: read ``count`` elements of ``size`` bytes from ``port``; sends back a list."""

    port: int
    size: int
    count: int
    rep: bool = True

    def __post_init__(self) -> None:
        check_port_access(self.port, self.size)
        _check_count(self.count)
        if self.count > 1 and not self.rep:
            raise ConfigError(f"INS without REP moves one element, not {self.count}")


@dataclass(slots=True)
class Outs:
    """(REP) OUTS: write each element of ``values`` (``size`` bytes each) to ``port``."""

    port: int
    size: int
    values: tuple[int, ...]
    rep: bool = True

    def __post_init__(self) -> None:
        check_port_access(self.port, self.size)
        self.values = tuple(self.values)
        _check_count(len(self.values))
        if len(self.values) > 1 and not self.rep:
            raise ConfigError("OUTS without REP writes one value")
        for v in self.values:
            _check_value(v, self.size)

    @property
    def count(self) -> int:
        return len(self.values)


@dataclass(slots=True)
class Load:
    """MOV from memory: read ``size`` bytes at (guest-virtual) ``addr``; sends back the value."""

    addr: int
    size: int = 4

    def __post_init__(self) -> None:
        if self.size not in MMIO_SIZES:
            raise BadSizeError(f"a load moves 1, 2, 4 or 8 bytes, not {self.size!r}")
        _check_address(self.addr)


@dataclass(slots=True)
class Store:
    """MOV to memory: write ``value`` (``size`` bytes) at (guest-virtual) ``addr``."""

    addr: int
    size: int
    value: int

    def __post_init__(self) -> None:
        if self.size not in MMIO_SIZES:
            raise BadSizeError(f"a store moves 1, 2, 4 or 8 bytes, not {self.size!r}")
        _check_address(self.addr)
        _check_value(self.value, self.size)


@dataclass(slots=True)
class Hypercall:
    """A call into the hypervisor by number, as a paravirtualized guest makes it."""

    nr: int
    args: tuple = ()

    def __post_init__(self) -> None:
        self.args = tuple(self.args)


Operation = In | Out | Ins | Outs | Load | Store | Hypercall

#: A guest program: a generator that yields operations and receives their results.
Guest = Generator[Any, Any, Any]
