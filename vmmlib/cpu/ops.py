"""The operations a guest program yields to its vCPU.

A guest is a generator function. Each ``yield`` hands one operation to the vCPU, which
performs it (directly, or by exiting to the hypervisor) and sends the result back in::

    def hello(port=0x3F8):
        for ch in b"Hi":
            while not (yield In(port + 5, 1)) & 0x20:   # poll LSR.THRE
                pass
            yield Out(port, 1, ch)                      # write THR

Drivers compose with ``yield from``. The operations mirror x86 instructions: IN/OUT,
INS/OUTS with a REP prefix, MOV to/from memory, the atomic XCHG and LOCK CMPXCHG, a block move
(REP MOVSB between a buffer and memory), HLT, INVLPG, and a hypercall (VMCALL, or the PV trap)
whose arguments are register values.

**Plain values only.** An operation is immutable (a tuple) and holds built-in values: every
field is normalised when the operation is built — an ``int`` subclass or a numpy integer
becomes the ``int`` it stands for, read once; bools, floats and anything else are refused
with a clear ``ConfigError``, as is a value the instruction cannot carry (a port above 0xFFFF,
an access of 3 bytes, a value wider than its size, a REP count above the model's limit).
Buffers are read with a bound, never exhausted blindly, so an endless iterator is refused
rather than hanging the simulator. Nothing the guest does to its own objects after the
operation is built can change what the vCPU executes.
"""

from __future__ import annotations

import operator
from collections.abc import Generator, Iterable
from itertools import islice
from typing import Any, NamedTuple

from ..errors import BadPortError, BadSizeError, ConfigError

#: A guest program: a generator that yields operations and receives their results.
Guest = Generator[Any, Any, Any]

PORT_SIZES = (1, 2, 4)
MEMORY_SIZES = (1, 2, 4, 8)
#: The simulator's limit on one REP INS/OUTS (a real RCX can be up to 2**64 - 1; a model
#: that tried would run out of memory rather than fault, so we refuse it up front).
MAX_REP_COUNT = 1 << 16
#: The longest block move (a REP MOVSB the model performs in one operation).
MAX_BLOCK = 1 << 20
#: Virtual addresses a guest may use: the lower canonical half of x86-64 (48-bit linear
#: addresses). An access that runs past the end faults with #GP, as on the real CPU.
ADDRESS_LIMIT = 1 << 47
#: Hypercall arguments travel in 64-bit registers (RDI, RSI, RDX, R10, R8 on x86-64).
MAX_HYPERCALL_ARGS = 5
REGISTER_MASK = (1 << 64) - 1


# -- normalising what a guest hands over ------------------------------------------------------
def plain_int(value: Any, what: str, error: type[ConfigError] = ConfigError) -> int:
    """``value`` as a built-in ``int``, read once; ``error`` for bools, floats, other types."""
    cls = value.__class__
    if cls is int:
        return value
    if cls is bool:
        raise error(f"{what} must be an integer, not the bool {value}")
    if isinstance(value, int):  # an int subclass: its real value, whatever it overrides
        return int.__int__(value)
    if isinstance(value, float):
        raise error(f"{what} must be an integer, not the float {value!r}")
    try:
        result = operator.index(value)  # numpy integers and other exact integer types
    except TypeError:
        raise error(f"{what} must be an integer, not {type(value).__name__}") from None
    if result.__class__ is not int:
        result = int.__int__(result)
    return result


def _port(port: Any, size: Any) -> tuple[int, int]:
    port = plain_int(port, "a port", BadPortError)
    size = plain_int(size, "an access size", BadSizeError)
    if not 0 <= port <= 0xFFFF:
        raise BadPortError(f"port {port:#x} is outside the 16-bit I/O space 0x0000-0xFFFF")
    if size not in PORT_SIZES:
        raise BadSizeError(f"port I/O moves 1, 2 or 4 bytes, not {size}")
    return port, size


def _value(value: Any, size: int) -> int:
    value = plain_int(value, "a value")
    if not 0 <= value < 1 << (8 * size):
        raise ConfigError(f"value {value:#x} does not fit in {size} byte(s)")
    return value


def _address(addr: Any, size: Any) -> tuple[int, int]:
    addr = plain_int(addr, "an address")
    size = plain_int(size, "an access size", BadSizeError)
    if not 0 <= addr < ADDRESS_LIMIT:
        raise ConfigError(
            f"address {addr:#x} is not in the canonical range 0-{ADDRESS_LIMIT - 1:#x}"
        )
    if size not in MEMORY_SIZES:
        raise BadSizeError(f"a load or store moves 1, 2, 4 or 8 bytes, not {size}")
    return addr, size


def _flag(value: Any, what: str) -> bool:
    if value.__class__ is not bool:
        raise ConfigError(f"{what} is True or False, not {value!r}")
    return value


def _bounded(items: Iterable[Any], limit: int, what: str) -> list[Any]:
    """At most ``limit`` items of ``items``; ConfigError if there are more (never reads past)."""
    if isinstance(items, (str, dict, set, frozenset)):
        raise ConfigError(f"{what} is a sequence of integers, not a {type(items).__name__}")
    try:
        taken = list(islice(items, limit + 1))
    except TypeError:
        raise ConfigError(f"{what} is a sequence of integers, not {type(items).__name__}") from None
    if len(taken) > limit:
        raise ConfigError(f"{what} holds more than {limit:,} elements")
    return taken


def plain_bytes(data: Any, limit: int, what: str) -> bytes:
    """``data`` as ``bytes`` of at most ``limit`` bytes (bytes-like, or a sequence of bytes)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(memoryview(data).cast("B")) if isinstance(data, memoryview) else bytes(data)
        if len(data) > limit:
            raise ConfigError(f"{what} holds more than {limit:,} bytes")
        return data
    values = [_value(v, 1) for v in _bounded(data, limit, what)]
    return bytes(values)


# -- the operations -------------------------------------------------------------------------
class _Op:
    """What every operation shares: immutable, compared by kind and fields, rebuilt checked."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and tuple.__eq__(self, other)  # type: ignore[arg-type]

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __reduce__(self) -> tuple:
        return type(self), tuple(self)  # type: ignore[arg-type]

    def _replace(self, **changes: Any) -> Any:
        return type(self)(**{**self._asdict(), **changes})  # type: ignore[attr-defined]

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Any:
        return cls(*iterable)


class _InFields(NamedTuple):
    port: int
    size: int


class In(_Op, _InFields):
    """IN: read ``size`` bytes from ``port``; the vCPU sends back the value."""

    __slots__ = ()

    def __new__(cls, port: int, size: int = 1) -> In:
        return tuple.__new__(cls, _port(port, size))


class _OutFields(NamedTuple):
    port: int
    size: int
    value: int


class Out(_Op, _OutFields):
    """OUT: write ``value`` (``size`` bytes) to ``port``."""

    __slots__ = ()

    def __new__(cls, port: int, size: int, value: int) -> Out:
        if port.__class__ is int and size.__class__ is int and value.__class__ is int:
            if 0 <= port <= 0xFFFF and size in PORT_SIZES and 0 <= value < 1 << 8 * size:
                return tuple.__new__(cls, (port, size, value))  # the common case, checked
        port, size = _port(port, size)
        return tuple.__new__(cls, (port, size, _value(value, size)))


def _rep_count(count: Any) -> int:
    count = plain_int(count, "a REP count")
    if not 1 <= count <= MAX_REP_COUNT:
        raise ConfigError(f"a REP string I/O moves 1 to {MAX_REP_COUNT:,} elements, not {count}")
    return count


def _buffer(addr: Any, count: int, size: int) -> int | None:
    if addr is None:
        return None
    addr, _ = _address(addr, 1)
    if addr + count * size > ADDRESS_LIMIT:
        raise ConfigError(
            f"a buffer of {count * size} bytes at {addr:#x} runs past the canonical half"
        )
    return addr


class _InsFields(NamedTuple):
    port: int
    size: int
    count: int
    rep: bool
    addr: int | None


class Ins(_Op, _InsFields):
    """(REP) INS: read ``count`` elements of ``size`` bytes from ``port``.

    With ``addr`` (the memory operand, ES:RDI) the elements are stored in guest memory from
    that guest-virtual address upwards, as the real instruction does; without it the model
    hands them straight back to the guest program, as a list (a shortcut for a buffer the
    program keeps itself). The vCPU sends back the list either way."""

    __slots__ = ()

    def __new__(cls, port: int, size: int, count: int, rep: bool = True,
                addr: int | None = None) -> Ins:
        port, size = _port(port, size)
        count, rep = _rep_count(count), _flag(rep, "rep")
        if count > 1 and not rep:
            raise ConfigError(f"INS without REP moves one element, not {count}")
        return tuple.__new__(cls, (port, size, count, rep, _buffer(addr, count, size)))


class _OutsFields(NamedTuple):
    port: int
    size: int
    values: tuple[int, ...]
    rep: bool
    addr: int | None
    count: int


class Outs(_Op, _OutsFields):
    """(REP) OUTS: write ``count`` elements of ``size`` bytes to ``port``.

    Either ``values`` (a sequence of integers, or bytes for 1-byte elements) comes from the
    guest program, or ``addr`` and ``count`` name the memory operand (DS:RSI) the elements are
    read from, as the real instruction does."""

    __slots__ = ()

    def __new__(cls, port: int, size: int, values: Iterable[int] | None = None,
                rep: bool = True, addr: int | None = None, count: int | None = None) -> Outs:
        port, size = _port(port, size)
        rep = _flag(rep, "rep")
        if (values is None) == (addr is None):
            raise ConfigError("OUTS takes either values or a memory operand (addr and count)")
        if values is None:
            items: tuple[int, ...] = ()
            count = _rep_count(count)
        elif isinstance(values, (bytes, bytearray, memoryview)) and size == 1:
            items = tuple(plain_bytes(values, MAX_REP_COUNT, "OUTS data"))
            count = len(items)
        else:
            items = tuple(_value(v, size) for v in _bounded(values, MAX_REP_COUNT, "OUTS data"))
            count = len(items)
        if not count:
            raise ConfigError("a REP string I/O moves at least one element")
        if count > 1 and not rep:
            raise ConfigError("OUTS without REP writes one value")
        return tuple.__new__(cls, (port, size, items, rep, _buffer(addr, count, size), count))


class _LoadFields(NamedTuple):
    addr: int
    size: int


class Load(_Op, _LoadFields):
    """MOV from memory: read ``size`` bytes at (guest-virtual) ``addr``; sends back the value."""

    __slots__ = ()

    def __new__(cls, addr: int, size: int = 4) -> Load:
        return tuple.__new__(cls, _address(addr, size))


class _StoreFields(NamedTuple):
    addr: int
    size: int
    value: int


class Store(_Op, _StoreFields):
    """MOV to memory: write ``value`` (``size`` bytes) at (guest-virtual) ``addr``."""

    __slots__ = ()

    def __new__(cls, addr: int, size: int, value: int) -> Store:
        addr, size = _address(addr, size)
        return tuple.__new__(cls, (addr, size, _value(value, size)))


class _XchgFields(NamedTuple):
    addr: int
    size: int
    value: int


class Xchg(_Op, _XchgFields):
    """XCHG with memory (locked by the CPU): write ``value`` at ``addr`` and send back what was
    there, in one indivisible step (Linux takes the event selector with it)."""

    __slots__ = ()

    def __new__(cls, addr: int, size: int, value: int) -> Xchg:
        addr, size = _address(addr, size)
        return tuple.__new__(cls, (addr, size, _value(value, size)))


class _CmpxchgFields(NamedTuple):
    addr: int
    size: int
    expected: int
    value: int


class Cmpxchg(_Op, _CmpxchgFields):
    """LOCK CMPXCHG: if the ``size`` bytes at ``addr`` hold ``expected``, write ``value``; in one
    indivisible step. Sends back the old contents (equal to ``expected``: it was swapped)."""

    __slots__ = ()

    def __new__(cls, addr: int, size: int, expected: int, value: int) -> Cmpxchg:
        addr, size = _address(addr, size)
        return tuple.__new__(cls, (addr, size, _value(expected, size), _value(value, size)))


class _StoreBlockFields(NamedTuple):
    addr: int
    data: bytes


class StoreBlock(_Op, _StoreBlockFields):
    """REP MOVSB from a buffer to memory: write ``data`` at (guest-virtual) ``addr``."""

    __slots__ = ()

    def __new__(cls, addr: int, data: bytes) -> StoreBlock:
        addr, _ = _address(addr, 1)
        data = plain_bytes(data, MAX_BLOCK, "a block of data")
        if not data:
            raise ConfigError("a block move writes at least one byte")
        return tuple.__new__(cls, (addr, data))


class _LoadBlockFields(NamedTuple):
    addr: int
    length: int


class LoadBlock(_Op, _LoadBlockFields):
    """REP MOVSB from memory to a buffer: read ``length`` bytes at ``addr``; sends back bytes."""

    __slots__ = ()

    def __new__(cls, addr: int, length: int) -> LoadBlock:
        addr, _ = _address(addr, 1)
        length = plain_int(length, "a block length")
        if not 1 <= length <= MAX_BLOCK:
            raise ConfigError(f"a block move reads 1 to {MAX_BLOCK:,} bytes, not {length}")
        return tuple.__new__(cls, (addr, length))


class _InvlpgFields(NamedTuple):
    addr: int


class Invlpg(_Op, _InvlpgFields):
    """INVLPG: the guest changed the page-table entry of ``addr`` and drops its TLB entry."""

    __slots__ = ()

    def __new__(cls, addr: int) -> Invlpg:
        return tuple.__new__(cls, (_address(addr, 1)[0],))


class Hlt(_Op, tuple):
    """STI; HLT: wait for an interrupt; the vCPU sends back the vector that woke it.

    The model's guests run with interrupts off except while halted, as a simple kernel's idle
    loop does: an interrupt raised while the guest runs waits for its next HLT."""

    __slots__ = ()
    _fields = ()

    def __new__(cls) -> Hlt:
        return tuple.__new__(cls, ())

    def _asdict(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return "Hlt()"


class _HypercallFields(NamedTuple):
    nr: int
    args: tuple[int, ...]


class Hypercall(_Op, _HypercallFields):
    """A call into the hypervisor by number, as a paravirtualized guest makes it.

    ``nr`` goes in RAX, ``args`` in RDI, RSI, RDX, R10, R8: register values, so integers
    (a negative one is stored in two's complement, as in a register). A buffer is passed as a
    guest address, which the hypervisor reads from guest memory.
    """

    __slots__ = ()

    def __new__(cls, nr: int, args: Iterable[int] = ()) -> Hypercall:
        nr = _register(nr, "a hypercall number")
        values = _bounded(args, MAX_HYPERCALL_ARGS, "hypercall arguments")
        regs = tuple(_register(v, "a hypercall argument") for v in values)
        return tuple.__new__(cls, (nr, regs))


def _register(value: Any, what: str) -> int:
    if isinstance(value, (bytes, bytearray, memoryview, str)):
        raise ConfigError(f"{what} is a register value: pass a buffer by its guest address")
    value = plain_int(value, what)
    if not -(1 << 63) <= value <= REGISTER_MASK:
        raise ConfigError(f"{what} {value:#x} does not fit in a 64-bit register")
    return value & REGISTER_MASK


Operation = (
    In | Out | Ins | Outs | Load | Store | StoreBlock | LoadBlock | Invlpg | Hlt | Hypercall
)
