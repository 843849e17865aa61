"""Text the way the course prints it: trace logs that fit a notebook, bytes on a wire with
visible escapes, and bit patterns grouped by field.

* ``trace_log(trace, start, stop)`` — the trace as compact, aligned lines, one per event, short
  enough for a notebook cell or the stepping widget's log (``Trace.lines`` gives the full
  records). An exit shows its reason by name, first, and leaves out the fields every exit of
  its kind carries with the same value (the numeric reason, 30 for an I/O instruction; the
  instruction length of an IN/OUT; the interruption information of a #PF exit): the exit
  record's schema (``vmmlib.trace.Schema.fixed``) says which they are.
* ``wire_text(data)`` — bytes as readable text: ``Hello\\n``, not ``b'Hello\\n'``.
* ``bit_fields(value, layout)`` — a register value as bits grouped by field, under the fields'
  names, so a reader never counts 32 bits; ``VMX_IO_QUALIFICATION``, ``SVM_IOIO_EXITINFO1``,
  ``PF_ERROR_CODE`` are the layouts chapter 01 prints (hardware-facts.md §1.3, §2.2).

Plain Python: importing this module loads neither matplotlib nor ipywidgets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import ConfigError
from ..trace import HEX_FIELDS, SCHEMAS, Event, Trace

_SHAPES: dict[tuple, list] = {}  # (actor, kind, field names) -> the schemas of that shape


# ---------------------------------------------------------------------------------------------
# the trace as a log
# ---------------------------------------------------------------------------------------------
def _field_text(key: str, value: object) -> str:
    if isinstance(value, (list, tuple)):  # the data of a string I/O: the first few values
        shown = ", ".join(_field_text(key, v) for v in value[:4])
        return f"[{shown}{', …' if len(value) > 4 else ''}] ({len(value)} values)"
    if isinstance(value, bool) or not isinstance(value, int) or key not in HEX_FIELDS:
        return str(value)
    return f"{value:#x}"


def fixed_fields(event: Event) -> frozenset[str]:
    """The fields of ``event`` that its schema fixes (the same in every event of its shape)."""
    shape = (event.actor, event.kind, tuple(event.fields))
    schemas = _SHAPES.get(shape)
    if schemas is None or len(schemas) != sum(
        1 for s in SCHEMAS if (s.actor, s.kind, s.fields) == shape
    ):
        schemas = _SHAPES[shape] = [s for s in SCHEMAS if (s.actor, s.kind, s.fields) == shape]
    best: frozenset[str] = frozenset()
    for schema in schemas:
        if len(schema.fixed) > len(best) and all(
            event.fields[k] == v for k, v in schema.fixed.items()
        ):
            best = frozenset(schema.fixed)
    return best


def event_details(event: Event) -> str:
    """An event's fields for the log: ``key=value`` each; an exit's reason first and bare,
    without the fields its record's shape fixes (see the module docstring)."""
    fields = event.fields
    if event.kind != "exit":
        return " ".join(f"{k}={_field_text(k, v)}" for k, v in fields.items())
    skip = fixed_fields(event) | {"reason"}
    parts = [str(fields["reason"])] if "reason" in fields else []
    parts += [f"{k}={_field_text(k, v)}" for k, v in fields.items() if k not in skip]
    return " ".join(parts)


def log_widths(events: Iterable[Event]) -> tuple[int, int, int]:
    """Column widths (time digits with separators, actor, kind) that fit ``events``."""
    time_w, actor_w, kind_w = 1, 1, 1
    for e in events:
        time_w = max(time_w, len(f"{e.time:,}"))
        actor_w = max(actor_w, len(e.actor))
        kind_w = max(kind_w, len(e.kind))
    return time_w, actor_w, kind_w


def log_line(event: Event, widths: tuple[int, int, int]) -> str:
    """One event as one log line, in columns of ``widths`` (see ``log_widths``)."""
    time_w, actor_w, kind_w = widths
    head = f"{event.time:>{time_w},} ns {event.actor:<{actor_w}} {event.kind:<{kind_w}}"
    return f"{head} {event_details(event)}".rstrip()


def trace_log(trace: Trace, start: int = 0, stop: int | None = None,
              kinds: Iterable[str] | None = None) -> str:
    """Events ``start`` … ``stop - 1`` of ``trace`` as aligned log lines (see the module);
    with ``kinds``, only the events of those kinds."""
    if not isinstance(trace, Trace):
        raise ConfigError(f"trace_log needs a Trace, not {type(trace).__name__}")
    events = [trace[i] for i in range(*slice(start, stop).indices(len(trace)))]
    if kinds is not None:
        wanted = {kinds} if isinstance(kinds, str) else set(kinds)
        events = [e for e in events if e.kind in wanted]
    widths = log_widths(events)
    return "\n".join(log_line(e, widths) for e in events)


# ---------------------------------------------------------------------------------------------
# bytes on a wire
# ---------------------------------------------------------------------------------------------
_ESCAPES = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x5C: "\\\\", 0x00: "\\0"}


def wire_text(data: bytes | bytearray | memoryview) -> str:
    """Bytes as text with visible escapes: printable ASCII as it is, ``\\n``, ``\\r``, ``\\t``,
    ``\\\\``, ``\\0``, anything else as ``\\xNN``. ``wire_text(b"Hello\\n") == "Hello\\\\n"``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ConfigError(f"wire_text takes bytes, not {type(data).__name__}")
    out = []
    for b in bytes(data):
        if b in _ESCAPES:
            out.append(_ESCAPES[b])
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# bit fields
# ---------------------------------------------------------------------------------------------
#: A layout: (high bit, low bit, name) per field, from the most significant down.
Layout = Sequence[tuple[int, int, str]]

#: Intel exit qualification of an I/O instruction (hardware-facts.md §1.3), bits 31:0.
VMX_IO_QUALIFICATION: Layout = (
    (31, 16, "port"),
    (15, 7, "reserved"),
    (6, 6, "imm"),
    (5, 5, "rep"),
    (4, 4, "str"),
    (3, 3, "in"),
    (2, 0, "size-1"),
)
#: AMD EXITINFO1 of #VMEXIT(IOIO) (hardware-facts.md §2.2), bits 31:0.
SVM_IOIO_EXITINFO1: Layout = (
    (31, 16, "PORT"),
    (15, 13, "res"),
    (12, 10, "SEG"),
    (9, 9, "A64"),
    (8, 8, "A32"),
    (7, 7, "A16"),
    (6, 6, "SZ32"),
    (5, 5, "SZ16"),
    (4, 4, "SZ8"),
    (3, 3, "REP"),
    (2, 2, "STR"),
    (1, 1, "res"),
    (0, 0, "IN"),
)
#: The x86 #PF error code, bits 4:0.
PF_ERROR_CODE: Layout = (
    (4, 4, "I/D"),
    (3, 3, "RSVD"),
    (2, 2, "U/S"),
    (1, 1, "W/R"),
    (0, 0, "P"),
)


def _check_layout(layout: Layout) -> int:
    """The layout's width in bits; fields must be contiguous from the top bit down to 0."""
    if not layout:
        raise ConfigError("a bit layout needs at least one field")
    expected = layout[0][0]
    for hi, lo, name in layout:
        if hi != expected or lo > hi or not isinstance(name, str):
            raise ConfigError(f"bit layout field {(hi, lo, name)!r} should start at bit {expected}")
        expected = lo - 1
    if expected != -1:
        raise ConfigError("a bit layout must end at bit 0")
    return layout[0][0] + 1


def bit_fields(value: int, layout: Layout) -> str:
    """Two lines: the fields' names, and under each its bits (most significant first)."""
    width = _check_layout(layout)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << width:
        raise ConfigError(f"{value!r} is not a {width}-bit value")
    names, bits = [], []
    for hi, lo, name in layout:
        n = hi - lo + 1
        field = f"{(value >> lo) & ((1 << n) - 1):0{n}b}"
        column = max(len(name), n)
        names.append(name.ljust(column))
        bits.append(field.ljust(column))
    return " ".join(names).rstrip() + "\n" + " ".join(bits).rstrip()


__all__ = [
    "PF_ERROR_CODE",
    "SVM_IOIO_EXITINFO1",
    "VMX_IO_QUALIFICATION",
    "bit_fields",
    "event_details",
    "fixed_fields",
    "log_line",
    "log_widths",
    "trace_log",
    "wire_text",
]
