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

Every field is normalised and checked when the operation is built (``vmmlib.cpu.operands``):
an operation is an immutable tuple of plain built-in values.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any, NamedTuple

from ..errors import ConfigError
from .operands import (
    ADDRESS_LIMIT,
    MAX_BLOCK,
    MAX_HYPERCALL_ARGS,
    MAX_REP_COUNT,
    MEMORY_SIZES,
    PORT_SIZES,
    REGISTER_MASK,
    address_operand,
    bounded,
    buffer_operand,
    flag_operand,
    plain_bytes,
    plain_int,
    port_operand,
    register_operand,
    rep_count,
    value_operand,
)

#: A guest program: a generator that yields operations and receives their results.
Guest = Generator[Any, Any, Any]


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
        return tuple.__new__(cls, port_operand(port, size))


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
        port, size = port_operand(port, size)
        return tuple.__new__(cls, (port, size, value_operand(value, size)))


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
        port, size = port_operand(port, size)
        count, rep = rep_count(count), flag_operand(rep, "rep")
        if count > 1 and not rep:
            raise ConfigError(f"INS without REP moves one element, not {count}")
        return tuple.__new__(cls, (port, size, count, rep, buffer_operand(addr, count, size)))


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
        port, size = port_operand(port, size)
        rep = flag_operand(rep, "rep")
        if (values is None) == (addr is None):
            raise ConfigError("OUTS takes either values or a memory operand (addr and count)")
        if values is None:
            items: tuple[int, ...] = ()
            count = rep_count(count)
        elif isinstance(values, (bytes, bytearray, memoryview)) and size == 1:
            items = tuple(plain_bytes(values, MAX_REP_COUNT, "OUTS data"))
            count = len(items)
        else:
            values = bounded(values, MAX_REP_COUNT, "OUTS data")
            items = tuple(value_operand(v, size) for v in values)
            count = len(items)
        if not count:
            raise ConfigError("a REP string I/O moves at least one element")
        if count > 1 and not rep:
            raise ConfigError("OUTS without REP writes one value")
        addr = buffer_operand(addr, count, size)
        return tuple.__new__(cls, (port, size, items, rep, addr, count))


class _LoadFields(NamedTuple):
    addr: int
    size: int


class Load(_Op, _LoadFields):
    """MOV from memory: read ``size`` bytes at (guest-virtual) ``addr``; sends back the value."""

    __slots__ = ()

    def __new__(cls, addr: int, size: int = 4) -> Load:
        return tuple.__new__(cls, address_operand(addr, size))


class _StoreFields(NamedTuple):
    addr: int
    size: int
    value: int


class Store(_Op, _StoreFields):
    """MOV to memory: write ``value`` (``size`` bytes) at (guest-virtual) ``addr``."""

    __slots__ = ()

    def __new__(cls, addr: int, size: int, value: int) -> Store:
        addr, size = address_operand(addr, size)
        return tuple.__new__(cls, (addr, size, value_operand(value, size)))


class _XchgFields(NamedTuple):
    addr: int
    size: int
    value: int


class Xchg(_Op, _XchgFields):
    """XCHG with memory (locked by the CPU): write ``value`` at ``addr`` and send back what was
    there, in one indivisible step (Linux takes the event selector with it)."""

    __slots__ = ()

    def __new__(cls, addr: int, size: int, value: int) -> Xchg:
        addr, size = address_operand(addr, size)
        return tuple.__new__(cls, (addr, size, value_operand(value, size)))


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
        addr, size = address_operand(addr, size)
        expected, value = value_operand(expected, size), value_operand(value, size)
        return tuple.__new__(cls, (addr, size, expected, value))


class _StoreBlockFields(NamedTuple):
    addr: int
    data: bytes


class StoreBlock(_Op, _StoreBlockFields):
    """REP MOVSB from a buffer to memory: write ``data`` at (guest-virtual) ``addr``."""

    __slots__ = ()

    def __new__(cls, addr: int, data: bytes) -> StoreBlock:
        addr, _ = address_operand(addr, 1)
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
        addr, _ = address_operand(addr, 1)
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
        return tuple.__new__(cls, (address_operand(addr, 1)[0],))


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
        nr = register_operand(nr, "a hypercall number")
        values = bounded(args, MAX_HYPERCALL_ARGS, "hypercall arguments")
        regs = tuple(register_operand(v, "a hypercall argument") for v in values)
        return tuple.__new__(cls, (nr, regs))


Operation = (
    In | Out | Ins | Outs | Load | Store | StoreBlock | LoadBlock | Invlpg | Hlt | Hypercall
)

__all__ = [
    "ADDRESS_LIMIT", "MAX_BLOCK", "MAX_HYPERCALL_ARGS", "MAX_REP_COUNT", "MEMORY_SIZES",
    "PORT_SIZES", "REGISTER_MASK", "Cmpxchg", "Guest", "Hlt", "Hypercall", "In", "Ins",
    "Invlpg", "Load", "LoadBlock", "Operation", "Out", "Outs", "Store", "StoreBlock", "Xchg",
    "plain_bytes", "plain_int",
]
