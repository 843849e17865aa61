"""The trace: one event per hop of every operation, in virtual time.

Every actor (the guest, the CPU, the hypervisor, dom0, a device) appends an event when it does
something. Notebooks print it, the stepping widget walks it, plots count it.

Appending is on the simulator's hot path, so a row is one flat tuple of plain values,
``(time, actor, kind, names, *values)``, where ``names`` is the event kind's *field schema*: a
tuple of field names shared by every row of that shape (module constants such as
``cpu.exits.VMX_IO_EXIT``). No dict is built per row: a tuple of ints and strings is not
tracked by the garbage collector, a dict always is, and collecting millions of them cost a
quarter of the exit path. ``Event`` objects, with their ``fields`` dict, are built only when the
trace is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
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
HEX_FIELDS = frozenset(
    {
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
    }
)


def _fmt(key: str, v: Any) -> str:
    if isinstance(v, (list, tuple)):  # the data of a string I/O: show the first few elements
        shown = ", ".join(_fmt(key, x) for x in v[:4])
        return f"[{shown}{', …' if len(v) > 4 else ''}] ({len(v)} values)"
    if isinstance(v, bool) or not isinstance(v, int) or key not in HEX_FIELDS:
        return str(v)
    return f"{v:#x}"


def _event(row: tuple) -> Event:
    return Event(row[0], row[1], row[2], dict(zip(row[3], row[4:], strict=True)))


class Trace:
    """An append-only list of events, stored as flat rows (see the module docstring)."""

    __slots__ = ("_rows", "record")

    def __init__(self) -> None:
        self._rows: list[tuple] = []
        #: ``record((time, actor, kind, names, *values))``: the hot path, a bound list.append
        self.record = self._rows.append

    def add(self, time: int, actor: str, kind: str, **fields: Any) -> None:
        """Append one event given as keyword fields (the convenient, slower form of ``record``)."""
        self._rows.append((time, actor, kind, tuple(fields), *fields.values()))

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
            if (kind is None or r[2] == kind) and (actor is None or r[1] == actor)
        ]

    def count(self, kind: str = "exit", by: str = "reason") -> Counter:
        """How many events of ``kind`` there were, grouped by the field ``by``.

        ``trace.count()`` is the number of exits by exit reason. Rows of that kind without the
        field count under None.
        """
        where: dict[tuple, int | None] = {}  # schema -> index of the field in the row
        counts: Counter = Counter()
        for r in self._rows:
            if r[2] != kind:
                continue
            names = r[3]
            i = where.get(names, -1)
            if i == -1:
                i = where[names] = names.index(by) + 4 if by in names else None
            counts[None if i is None else r[i]] += 1
        return counts

    def lines(self, start: int = 0, stop: int | None = None) -> list[str]:
        """Events ``start`` … ``stop - 1`` formatted one per line."""
        return [str(_event(r)) for r in self._rows[start:stop]]

    def rows(self, start: int = 0, stop: int | None = None) -> list[tuple]:
        """The raw rows (for plots that only need times and kinds)."""
        return self._rows[start:stop]


def schema(*names: str) -> tuple[str, ...]:
    """A field schema: the names of an event kind's values, in the order they are recorded."""
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"a field schema is a tuple of distinct names, not {names!r}")
    return names
