"""The trace: one event per hop of every operation, in virtual time.

Every actor (the guest, the CPU, the hypervisor, a device) appends an ``Event`` when it does
something. Notebooks print it, the stepping widget walks it, plots count it. Appending is the
hot path of the simulator, so events are stored as plain tuples and turned into ``Event``
named tuples only when read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple


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
    if isinstance(v, list):  # the data of a string I/O: show the first few elements
        shown = ", ".join(_fmt(key, x) for x in v[:4])
        return f"[{shown}{', …' if len(v) > 4 else ''}] ({len(v)} values)"
    if isinstance(v, bool) or not isinstance(v, int) or key not in HEX_FIELDS:
        return str(v)
    return f"{v:#x}"


class Trace:
    """An append-only list of events."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []
        self.record = self._rows.append  # record((time, actor, kind, fields)) — the hot path

    def add(self, time: int, actor: str, kind: str, **fields: Any) -> None:
        """Append one event (the convenient, slower form of ``record``)."""
        self._rows.append((time, actor, kind, fields))

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> Event:
        return Event(*self._rows[i])

    def __iter__(self) -> Iterator[Event]:
        return (Event(*row) for row in self._rows)

    def events(self, kind: str | None = None, actor: str | None = None) -> list[Event]:
        """The events of one kind and/or one actor, in order."""
        return [
            Event(*r)
            for r in self._rows
            if (kind is None or r[2] == kind) and (actor is None or r[1] == actor)
        ]

    def count(self, kind: str = "exit", by: str = "reason") -> Counter:
        """How many events of ``kind`` there were, grouped by the field ``by``.

        ``trace.count()`` is the number of exits by exit reason.
        """
        return Counter(r[3].get(by) for r in self._rows if r[2] == kind)

    def lines(self, start: int = 0, stop: int | None = None) -> list[str]:
        """Events ``start`` … ``stop - 1`` formatted one per line."""
        return [str(Event(*r)) for r in self._rows[start:stop]]
