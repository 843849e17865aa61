"""What an x86 instruction's operands can hold: the checks every guest operation's fields pass.

An operation (``vmmlib.cpu.ops``) stands for one instruction, and its fields for what the
instruction encodes or finds in registers: a 16-bit port in DX, an access size of 1, 2 or 4
bytes, a value no wider than that size, a count in RCX, a linear address in the canonical
lower half, 64-bit register arguments.

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
from collections.abc import Iterable
from itertools import islice
from typing import Any

from ..errors import BadPortError, BadSizeError, ConfigError
from ..hw.bus import PORT_SIZES

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


def port_operand(port: Any, size: Any) -> tuple[int, int]:
    """(port, size) of an IN/OUT/INS/OUTS: a port of the 16-bit I/O space, 1, 2 or 4 bytes."""
    port = plain_int(port, "a port", BadPortError)
    size = plain_int(size, "an access size", BadSizeError)
    if not 0 <= port <= 0xFFFF:
        raise BadPortError(f"port {port:#x} is outside the 16-bit I/O space 0x0000-0xFFFF")
    if size not in PORT_SIZES:
        raise BadSizeError(f"port I/O moves 1, 2 or 4 bytes, not {size}")
    return port, size


def value_operand(value: Any, size: int) -> int:
    """A value of ``size`` bytes (unsigned)."""
    value = plain_int(value, "a value")
    if not 0 <= value < 1 << (8 * size):
        raise ConfigError(f"value {value:#x} does not fit in {size} byte(s)")
    return value


def address_operand(addr: Any, size: Any) -> tuple[int, int]:
    """(address, size) of a memory access: a canonical lower-half address, 1, 2, 4 or 8 bytes."""
    addr = plain_int(addr, "an address")
    size = plain_int(size, "an access size", BadSizeError)
    if not 0 <= addr < ADDRESS_LIMIT:
        raise ConfigError(
            f"address {addr:#x} is not in the canonical range 0-{ADDRESS_LIMIT - 1:#x}"
        )
    if size not in MEMORY_SIZES:
        raise BadSizeError(f"a load or store moves 1, 2, 4 or 8 bytes, not {size}")
    return addr, size


def flag_operand(value: Any, what: str) -> bool:
    """A prefix or flag: exactly True or False."""
    if value.__class__ is not bool:
        raise ConfigError(f"{what} is True or False, not {value!r}")
    return value


def bounded(items: Iterable[Any], limit: int, what: str) -> list[Any]:
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
    values = [value_operand(v, 1) for v in bounded(data, limit, what)]
    return bytes(values)


def rep_count(count: Any) -> int:
    """The element count (RCX) of a REP INS/OUTS: 1 to ``MAX_REP_COUNT``."""
    count = plain_int(count, "a REP count")
    if not 1 <= count <= MAX_REP_COUNT:
        raise ConfigError(f"a REP string I/O moves 1 to {MAX_REP_COUNT:,} elements, not {count}")
    return count


def buffer_operand(addr: Any, count: int, size: int) -> int | None:
    """The memory operand of a string I/O (None: none), whose whole buffer is canonical."""
    if addr is None:
        return None
    addr, _ = address_operand(addr, 1)
    if addr + count * size > ADDRESS_LIMIT:
        raise ConfigError(
            f"a buffer of {count * size} bytes at {addr:#x} runs past the canonical half"
        )
    return addr


def register_operand(value: Any, what: str) -> int:
    """A 64-bit register value; a negative one is stored in two's complement."""
    if isinstance(value, (bytes, bytearray, memoryview, str)):
        raise ConfigError(f"{what} is a register value: pass a buffer by its guest address")
    value = plain_int(value, what)
    if not -(1 << 63) <= value <= REGISTER_MASK:
        raise ConfigError(f"{what} {value:#x} does not fit in a 64-bit register")
    return value & REGISTER_MASK
