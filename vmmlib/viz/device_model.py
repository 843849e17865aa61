"""Chapter 02's stepping: a recorded run replayed one hop at a time, and the ioreq-slot panel.

For the simulator one guest ``IN`` is one step: the exit, Xen's ioreq, the event channel, dom0's
upcall, qemu-dm's emulation and the answer all happen inside it. To watch the ioreq slot walk
its states (NONE → READY → INPROCESS → IORESP_READY → NONE), ``record()`` runs a guest program
on a chapter-02 world once and keeps, next to every trace row, a *snapshot* of what the row's
moment left behind: the 32 bytes of the vCPU's ioreq slot as they stood in the shared page, the
buffered ring's pointers, and the selected drive of each IDE channel (its protocol state and
task file, read from the model's attributes: taking a snapshot changes nothing). A
``Recording`` is immutable; ``Recording.steps()`` makes a fresh ``RecordedSteps``, the scenario
object a ``vmmlib.viz.Stepper`` steps: each ``step()`` reveals the next row. So the widget
steps hop by hop, forwards and backwards, through what really happened::

    hop = record(dm_machine, status_read_program)
    Stepper(hop.steps, render=ioreq_panel, title="One IN, from the guest to qemu-dm and back")

``ioreq_panel`` shows the slot (its state in the state machine, who holds it, its bytes and
their fields), the vCPU (running, out of the guest, blocked on the slot, halted) and the IDE
drive; the Stepper highlights what the last hop changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cpu.ops import Guest
from ..devices.ata import STATE_STATUS
from ..errors import ConfigError
from ..scenarios.device_model import World, vcpu_on
from ..trace import Event, Trace
from ..xen.ioreq import IOREQ_SIZE, STATE_NAMES, decode
from .panels import Panel, key_value, register_table, text_block

#: The slot's states in the order a request walks them.
CYCLE = ("NONE", "READY", "INPROCESS", "IORESP_READY")
HOLDER = {
    "NONE": "free: Xen may send the next request",
    "READY": "Xen filled it and notified qemu-dm, which has not taken it yet",
    "INPROCESS": "qemu-dm took it and is emulating the access",
    "IORESP_READY": "qemu-dm answered and notified Xen, which takes the data",
}


@dataclass(frozen=True)
class DriveSnapshot:
    """The selected drive of one IDE channel, as the model held it."""

    channel: str
    unit: int
    present: bool
    state: str
    regs: tuple[int, ...]
    error: int
    intrq: bool
    devctl: int

    @property
    def status(self) -> int:
        return STATE_STATUS[self.state] if self.present else 0


@dataclass(frozen=True)
class Snapshot:
    """What one trace row's moment left behind."""

    slot: bytes
    ring: tuple[int, int]
    drives: tuple[DriveSnapshot, ...]


def _snapshot(world: World) -> Snapshot:
    server = world.qemu.server
    drives = []
    for ide in world.channels or (world.ide,):
        d = ide.drives[ide.unit]
        drives.append(DriveSnapshot(ide.name, ide.unit, d.present, d.state, tuple(d.regs),
                                    d.error, d.intrq, ide.devctl))
    return Snapshot(server.page.page[:IOREQ_SIZE].tobytes(),
                    (server.buffered.read_pointer, server.buffered.write_pointer),
                    tuple(drives))


@dataclass(frozen=True)
class Recording:
    """A finished run: its trace rows, a snapshot after each, and the run's outcome."""

    title: str
    rows: tuple[tuple, ...]
    snapshots: tuple[Snapshot, ...]
    start: Snapshot
    result: Any
    crashed: str | None
    world: World

    @property
    def trace(self) -> Trace:
        """The whole run's trace (a fresh copy)."""
        trace = Trace()
        for row in self.rows:
            trace.record(row)
        return trace

    def steps(self) -> RecordedSteps:
        """A fresh scenario object for the Stepper: nothing revealed yet."""
        return RecordedSteps(self)

    def __len__(self) -> int:
        return len(self.rows)


def record(world_factory: Callable[[], World], program_factory: Callable[[], Guest],
           title: str = "", max_steps: int = 100_000) -> Recording:
    """Run ``program_factory()`` on a fresh ``world_factory()`` world, snapshotting after every
    trace row. The hook sits where rows enter the trace (the trace's and each domain's
    ``record``, set before the vCPU is made, which copies it); a row that bypassed it would
    leave the snapshots short, which is reported as an error rather than shown wrong."""
    world = world_factory()
    if not isinstance(world, World):
        raise ConfigError(f"record() needs a factory of chapter-02 worlds, not {world!r}")
    trace = world.machine.trace
    append = trace.record
    rows: list[tuple] = []
    snapshots: list[Snapshot] = []
    start = _snapshot(world)

    def hook(row: tuple) -> None:
        append(row)
        rows.append(row)
        snapshots.append(_snapshot(world))

    before = len(trace)
    trace.record = hook
    for dom in world.machine.domains:
        dom.record = hook
    try:
        vcpu = vcpu_on(world, program_factory())
        vcpu.run(max_steps)
    finally:
        trace.record = append
        for dom in world.machine.domains:
            dom.record = append
    if len(trace) - before != len(rows):
        raise ConfigError(f"{len(trace) - before - len(rows)} trace rows bypassed the recorder")
    return Recording(title, tuple(rows), tuple(snapshots), start, vcpu.result, vcpu.crashed,
                     world)


class _Clock:
    def __init__(self) -> None:
        self.now = 0


class _Shown:
    """What the Stepper's status line reads: ``machine.clock.now`` (time of the last row)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.clock = _Clock()


class RecordedSteps:
    """A recording, revealed one trace row per ``step()`` (the Stepper's scenario protocol)."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.trace = Trace()
        self.machine = _Shown(self.trace)
        self.shown = 0

    def step(self) -> bool:
        """Reveal the next row; False once the last one is shown."""
        rows = self.recording.rows
        if self.shown < len(rows):
            row = rows[self.shown]
            self.trace.record(row)
            self.machine.clock.now = row[0]
            self.shown += 1
        return self.shown < len(rows)

    @property
    def snapshot(self) -> Snapshot:
        """The state after the last row shown (before the first: the world as built)."""
        if not self.shown:
            return self.recording.start
        return self.recording.snapshots[self.shown - 1]

    @property
    def done(self) -> bool:
        return self.shown == len(self.recording.rows)

    def events(self) -> list[Event]:
        return list(self.trace)

    def __repr__(self) -> str:
        return f"RecordedSteps({self.recording.title!r}, {self.shown}/{len(self.recording)})"


# -- the panel -------------------------------------------------------------------------------
def state_line(state: str) -> str:
    """The slot's cycle with the current state in brackets."""
    return " → ".join(f"[{s}]" if s == state else s for s in CYCLE) + " → NONE"


def hex_dump(raw: bytes, width: int = 16) -> str:
    """Bytes as offset: hex lines, ``width`` bytes a line, a gap every 8."""
    lines = []
    for at in range(0, len(raw), width):
        chunk = raw[at : at + width]
        halves = [" ".join(f"{b:02x}" for b in chunk[i : i + 8]) for i in range(0, len(chunk), 8)]
        lines.append(f"{at:02x}: " + "  ".join(halves))
    return "\n".join(lines)


def slot_fields(raw: bytes) -> dict[str, str]:
    """The fields of a slot's 32 bytes as the panel shows them."""
    fields = decode(raw).describe()
    shown = {}
    for name, value in fields.items():
        if name in ("addr", "data") and isinstance(value, int):
            shown[name] = f"{value:#x}"
        else:
            shown[name] = str(value)
    return shown


def _access_text(req: dict[str, Any], answer: int | None) -> str:
    kind = ("IN" if req["dir"] == "read" else "OUT") if req["type"] == "PIO" else (
        f"MMIO {req['dir']}")
    size = f"{req['size']} byte{'s' if req['size'] > 1 else ''}"
    if req["count"] > 1:
        size += f" x {req['count']}, buffer at {req['data']:#x}"
    text = f"{kind} {req['addr']:#x} ({size})"
    if req["data_is_ptr"]:
        return text
    if req["dir"] == "write":
        text += f" ← {req['data']:#x}"
    elif answer is not None:
        text += f" → {answer:#x}"
    return text


def vcpu_status(events: list[Event]) -> tuple[str, str]:
    """(what the vCPU is doing, its last access that went to qemu-dm) after ``events``."""
    doing, access = "running in the guest", "none yet"
    request: dict[str, Any] | None = None
    for e in events:
        f = e.fields
        if e.kind == "exit":
            doing = f"out of the guest: {f.get('reason', 'exit')} exit, Xen decodes it"
        elif e.kind == "ioreq":
            doing = "blocked on its ioreq slot (waiting for qemu-dm)"
            request = f
            access = _access_text(request, None)
        elif e.kind == "ioreq-done" and request is not None:
            doing = "runnable again: Xen completes the instruction"
            access = _access_text(request, f["data"])
        elif e.kind == "bufioreq" and e.actor == "xen":
            doing = "running: the write went into the buffered ring, no wait"
            access = f"MMIO write {f['addr']:#x} ({f['size']} bytes), buffered"
        elif e.kind == "emulate" and e.actor == "xen":
            doing = "resumed: Xen emulated it itself"
            arrow = "→" if f.get("dir") == "in" else "←"
            access = (f"{'IN' if f.get('dir') == 'in' else 'OUT'} {f.get('port', 0):#x} "
                      f"{arrow} {f.get('value', 0):#x} ({f.get('device', '?')})")
        elif e.kind == "block":
            doing = "halted (HLT): waiting for an interrupt"
        elif e.kind == "inject":
            doing = f"Xen injects interrupt vector {f.get('vector')} (IRQ {f.get('irq')})"
        elif e.kind in ("entry", "io", "load", "store"):
            doing = "running in the guest"
        elif e.kind == "halt":
            doing = "done: the guest program returned"
    return doing, access


def ioreq_panel(steps: RecordedSteps) -> Panel:
    """The ioreq slot, the vCPU and the IDE drive after the hops shown so far."""
    if not isinstance(steps, RecordedSteps):
        raise ConfigError(f"ioreq_panel shows a RecordedSteps, not {type(steps).__name__}")
    snap = steps.snapshot
    state = STATE_NAMES.get(snap.slot[30] & 0xF, f"unknown ({snap.slot[30] & 0xF})")
    doing, access = vcpu_status(steps.events())
    sections = [
        key_value("ioreq slot 0, in the shared page",
                  {"state": state_line(state), "held": HOLDER.get(state, "?")}),
        text_block("its 32 bytes", hex_dump(snap.slot)),
        register_table("decoded", slot_fields(snap.slot), columns=2),
        key_value("the vCPU", {"now": doing, "access": access}),
    ]
    for drive in snap.drives[:1] if len(snap.drives) == 1 else snap.drives:
        if not drive.present:
            continue
        r = drive.regs
        sections.append(register_table(
            f"{drive.channel}, drive {drive.unit}: {drive.state}",
            {"status": drive.status, "error": drive.error, "count": r[2], "LBA low": r[3],
             "LBA mid": r[4], "LBA high": r[5], "device": r[6],
             "IRQ pending": "yes" if drive.intrq else "no"}, columns=1))
    if snap.ring != steps.recording.start.ring:
        read, write = snap.ring
        sections.append(key_value("buffered ring", {"read pointer": read, "write pointer": write,
                                                    "queued": write - read}))
    return Panel(*sections)


def panel_text(steps: RecordedSteps) -> str:
    """The panel as plain text (what a notebook prints beside a widget)."""
    return ioreq_panel(steps).text()


__all__ = [
    "CYCLE",
    "DriveSnapshot",
    "RecordedSteps",
    "Recording",
    "Snapshot",
    "hex_dump",
    "ioreq_panel",
    "panel_text",
    "record",
    "slot_fields",
    "state_line",
    "vcpu_status",
]
