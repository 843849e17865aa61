"""The disk's two trace rows, for whichever dom0 software asks it (qemu-dm, blkback).

``access`` when a disk backend is asked for sectors (with how long it will take), ``done``
when that time has passed: the "disk backend" lane of a swimlane diagram.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..trace import Schema

if TYPE_CHECKING:
    from .machine import Machine

DISK = Schema("disk", "access", ("backend", "op", "lba", "count", "latency_ns"))
DISK_DONE = Schema("disk", "done", ("backend", "op", "lba", "count"))


def record_disk_access(machine: Machine, backend: str, op: str, lba: int, count: int,
                       latency: int, start: int | None = None) -> int:
    """Trace a request to a disk backend starting at ``start`` (default: now) and its end
    ``latency`` ns later; returns the time it is done."""
    start = machine.clock.now if start is None else start
    machine.trace.record((start, DISK.id, backend, op, lba, count, latency))
    done = start + latency
    if latency:
        machine.clock.call_at(done, lambda: machine.trace.record(
            (done, DISK_DONE.id, backend, op, lba, count)))
    return done
