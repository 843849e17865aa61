"""The trace: one event per hop of every operation, in virtual time.

Every actor (the guest, the CPU, the hypervisor, dom0, a device) appends an event when it does
something. Notebooks print it, the stepping widget walks it, plots count it.

Appending is on the simulator's hot path, so a row is one short flat tuple of plain values,
``(time, schema id, *values)``. A ``Schema`` is shared by every row of one shape: it names the
actor, the kind, every field in order, and the fields whose value is the same in every such
row (an I/O exit's reason is always 30), which the row then need not carry; the row holds its
small integer ``id``. A VMX I/O exit is ``(t, VMX_IO_EXIT.id, qualification)``: three slots.
A row holds only ints and strings, so the garbage collector stops tracking it (a dict, or any
object such as the schema itself, would keep every row tracked and make each collection walk
the whole trace), and fresh memory, which is what a long trace costs, is a few dozen bytes per
event. ``Event`` objects, with their ``fields`` dict, are built only when the trace is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from .errors import ConfigError


class Event(NamedTuple):
    """Something that happened at virtual time ``time`` (ns), done by ``actor``."""

    time: int
    actor: str
    kind: str
    fields: dict[str, Any]

    def __str__(self) -> str:
        details = " ".join(f"{k}={_fmt(k, v)}" for k, v in self.fields.items())
        return f"{self.time:>10,} ns  {self.actor:<8} {self.kind:<10} {details}".rstrip()


#: Fields that are addresses or bit patterns, printed in hex; other integers print in decimal.
#: Shared-ring indices are free-running 32-bit counters: in hex their wrap past 2**32 reads.
RING_INDICES = ("idx", "req_prod", "req_event", "rsp_prod", "rsp_event", "req_prod_pvt",
                "rsp_cons", "rsp_prod_pvt", "req_cons")
HEX_FIELDS = frozenset(
    {
        *RING_INDICES,
        "port",
        "addr",
        "gpa",
        "value",
        "exit_qualification",
        "exitinfo1",
        "exitinfo2",
        "intr_info",
        "intr_error_code",
        "error_code",
        "data",
    }
)


def _fmt(key: str, v: Any) -> str:
    if isinstance(v, (list, tuple)):  # the data of a string I/O: show the first few elements
        shown = ", ".join(_fmt(key, x) for x in v[:4])
        return f"[{shown}{', …' if len(v) > 4 else ''}] ({len(v)} values)"
    if isinstance(v, bool) or not isinstance(v, int) or key not in HEX_FIELDS:
        return str(v)
    return f"{v:#x}"


class Schema:
    """The shape of one kind of trace row: actor, kind, field names, fixed field values.

    ``fields`` lists every field in the order an event shows them; ``fixed`` gives the
    value of those that never vary for this schema. A row carries the other fields' values,
    in order.
    """

    __slots__ = ("actor", "kind", "fields", "fixed", "varying", "id")

    def __init__(
        self, actor: str, kind: str, fields: tuple[str, ...] = (),
        fixed: Mapping[str, Any] | None = None,
    ) -> None:
        fixed = dict(fixed or {})
        if not (isinstance(actor, str) and actor and isinstance(kind, str) and kind):
            raise ConfigError(f"a trace schema needs an actor and a kind, not {actor!r}, {kind!r}")
        if len(set(fields)) != len(fields) or not all(isinstance(f, str) and f for f in fields):
            raise ConfigError(f"a schema's fields are distinct names, not {fields!r}")
        if not set(fixed) <= set(fields):
            raise ConfigError(f"fixed fields {sorted(set(fixed) - set(fields))} are not fields")
        self.actor, self.kind, self.fields, self.fixed = actor, kind, tuple(fields), fixed
        self.varying = tuple(f for f in fields if f not in fixed)
        key = (actor, kind, self.fields, tuple(sorted(fixed.items(), key=str)))
        known = _BY_KEY.get(key)
        if known is None:
            known = _BY_KEY[key] = len(SCHEMAS)
            SCHEMAS.append(self)
        self.id: int = known  # what a row carries

    def __repr__(self) -> str:
        return f"Schema({self.actor!r}, {self.kind!r}, {self.fields!r})"

    def values(self, row: tuple) -> dict[str, Any]:
        """The fields of ``row`` (one of this schema's rows) as a dict, in order."""
        given = dict(zip(self.varying, row[2:], strict=True))
        return {f: self.fixed[f] if f in self.fixed else given[f] for f in self.fields}

    def value(self, row: tuple, field: str, default: Any = None) -> Any:
        """One field of ``row``; ``default`` if this schema has no such field."""
        if field in self.fixed:
            return self.fixed[field]
        if field in self.varying:
            return row[2 + self.varying.index(field)]
        return default


#: Every schema, by id (a row's second value); equal schemas share one id.
SCHEMAS: list[Schema] = []
_BY_KEY: dict[tuple, int] = {}


def _event(row: tuple) -> Event:
    schema = SCHEMAS[row[1]]
    return Event(row[0], schema.actor, schema.kind, schema.values(row))


class Trace:
    """An append-only list of events, stored as flat rows (see the module docstring)."""

    __slots__ = ("_rows", "record")

    def __init__(self) -> None:
        self._rows: list[tuple] = []
        #: ``record((time, schema.id, *values))``: the hot path, a bound list.append
        self.record = self._rows.append

    def add(self, time: int, actor: str, kind: str, **fields: Any) -> None:
        """Append one event given as keyword fields (the convenient, slower form of ``record``)."""
        self._rows.append((time, Schema(actor, kind, tuple(fields)).id, *fields.values()))

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> Event:
        return _event(self._rows[i])

    def __iter__(self) -> Iterator[Event]:
        return map(_event, self._rows)

    def events(self, kind: str | None = None, actor: str | None = None) -> list[Event]:
        """The events of one kind and/or one actor, in order."""
        return [
            _event(r)
            for r in self._rows
            if (kind is None or SCHEMAS[r[1]].kind == kind)
            and (actor is None or SCHEMAS[r[1]].actor == actor)
        ]

    def count(self, kind: str = "exit", by: str = "reason") -> Counter:
        """How many events of ``kind`` there were, grouped by the field ``by``.

        ``trace.count()`` is the number of exits by exit reason. Events of that kind without
        the field count under None.
        """
        counts: Counter = Counter()
        for r in self._rows:
            schema = SCHEMAS[r[1]]
            if schema.kind == kind:
                counts[schema.value(r, by)] += 1
        return counts

    def lines(self, start: int = 0, stop: int | None = None) -> list[str]:
        """Events ``start`` … ``stop - 1`` formatted one per line."""
        return [str(_event(r)) for r in self._rows[start:stop]]

    def times(self, kind: str | None = None) -> list[int]:
        """The virtual times of the events (of one kind), without building them (for plots)."""
        return [r[0] for r in self._rows if kind is None or SCHEMAS[r[1]].kind == kind]
