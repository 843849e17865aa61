"""qemu-dm: the device-model process in dom0 that emulates an HVM guest's PC hardware.

It holds the emulated devices (here the IDE controller and the VGA card), tells Xen which
ports and MMIO ranges they answer, and sleeps on its event channels. Woken by dom0's kernel
(``Dom0Kernel``), it does what QEMU's Xen glue does (hw/xen/xen-hvm-common.c,
``cpu_get_ioreq_from_shared_memory`` / ``handle_ioreq``): re-check that the vCPU's slot is
READY, set INPROCESS, perform the access on the device — each of ``count`` elements, reading
or writing the guest buffer through its mapping of guest memory when ``data_is_ptr`` — store a
read's result, set IORESP_READY and notify Xen. From the buffered ring it takes writes until it
is empty. An interrupt a device raises goes to Xen's virtual PIC with a hypercall
(XEN_DMOP_set_isa_irq_level). Disk accesses of the IDE model show in the trace as the "disk"
actor's rows, with the backend's latency.

A request no device can take — a size not 1/2/4/8, a count of 0, an unknown type, a buffer
outside guest RAM — is not emulated: the device model reports it and Xen crashes the domain,
with the reason in the trace (QEMU would abort with hw_error).
"""

from __future__ import annotations

from typing import Any

from ..devices.ide import IdeController
from ..hw.bus import Bus, MemoryBus, PortBus
from ..trace import Schema
from .disk_rows import record_disk_access
from .dom0 import Dom0Kernel
from .domain import Domain
from .ioreq import (
    IOREQ_BUFFER_SLOT_NUM,
    IOREQ_READ,
    IOREQ_TYPE_COPY,
    IOREQ_TYPE_PIO,
    STATE_IOREQ_INPROCESS,
    STATE_IOREQ_READY,
    STATE_IORESP_READY,
    Ioreq,
    problem,
)
from .ioreq_server import IoreqServer

ACTOR = "qemu-dm"
HANDLE = Schema(ACTOR, "emulate", ("device", "type", "addr", "size", "count", "dir", "data",
                                 "state"), {"state": "IORESP_READY"})
TAKE = Schema(ACTOR, "take", ("slot", "state"), {"state": "INPROCESS"})
BUF_HANDLE = Schema(ACTOR, "bufioreq", ("device", "addr", "size", "data"))
BAD = Schema(ACTOR, "bad-ioreq", ("reason",))
IRQ = Schema(ACTOR, "set-irq", ("irq", "level"))


class QemuDm:
    """The device model of ``guest``, running in ``kernel``'s domain (dom0)."""

    def __init__(self, kernel: Dom0Kernel, guest: Domain) -> None:
        self.kernel = kernel
        self.dom0 = kernel.domain
        self.guest = guest
        self.machine = guest.machine
        self.server = IoreqServer(guest, self.dom0)
        guest.ioreq_server = self.server
        self.ports = PortBus(f"qemu-dm ports of {guest.name}")
        self.mmio = MemoryBus(f"qemu-dm MMIO of {guest.name}")
        evtchn = self.dom0.evtchn
        self.port = evtchn.bind_interdomain(guest.evtchn, self.server.port)
        self.buf_port = evtchn.bind_interdomain(guest.evtchn, self.server.buf_port)
        kernel.bind(self.port, self.serve)
        kernel.bind(self.buf_port, self.drain_buffered)
        self._timed: list[Any] = []  # devices that change by themselves as time passes
        self.failed: str | None = None

    # -- the devices -------------------------------------------------------------------------
    def attach_ports(self, base: int, length: int, device: Any, name: str) -> None:
        """Emulate ``device`` on guest ports ``base`` …: Xen intercepts and forwards them."""
        self.ports.claim(base, length, device, name)
        self.server.map_ports(base, base + length - 1, name)
        self.guest.intercepts.intercept(base, base + length - 1)

    def attach_mmio(self, base: int, length: int, device: Any, name: str,
                    buffered: bool = False) -> None:
        """Emulate ``device`` at guest-physical ``base`` …; ``buffered``: Xen may send single
        writes there through the buffered ring (the VGA window)."""
        self.mmio.claim(base, length, device, name)
        self.server.map_mmio(base, base + length - 1, name, buffered)
        self.guest.forget_shadows_of_mmio(base, length)

    def attach_ide(self, ide: IdeController, irq: int = 14) -> None:
        """An IDE channel: its two port blocks, its interrupt line, its disk accesses."""
        for base, length, device, name in ide.port_claims():
            self.attach_ports(base, length, device, name)
        ide.on_irq = lambda level: self.set_irq(irq, level)
        ide.on_backend = self._disk_row
        self._timed.append(ide)

    def attach_vga(self, vga: Any, buffered: bool = True) -> None:
        """A VGA card: the memory window (single writes through the buffered ring, unless
        ``buffered=False``: then each one is a synchronous ioreq) and its register ports."""
        self.attach_mmio(0xA0000, 0x20000, vga, "VGA", buffered=buffered)
        self.attach_ports(0x3C0, 0x20, vga.ports, "VGA registers")

    # -- serving ioreqs ------------------------------------------------------------------------
    def serve(self) -> None:
        """Woken on the vCPU's event channel: answer the request in its slot."""
        page = self.server.page
        if page.state(0) != STATE_IOREQ_READY:
            return  # a spurious wake-up: nothing to do (QEMU re-checks the state too)
        req = page.read(0)
        page.set_state(0, STATE_IOREQ_INPROCESS)  # (after the read barrier)
        machine = self.machine
        clock = machine.clock
        machine.trace.record((clock.now, TAKE.id, 0))
        clock.advance(machine.costs.qemu_ioreq_ns)
        reason = problem(req, self.guest.ram_size)
        if reason is not None:
            self.fail(reason)
            return
        bus = self.mmio if req.type == IOREQ_TYPE_COPY else self.ports
        data = self._perform(bus, req)
        if req.dir == IOREQ_READ and not req.data_is_ptr:
            page.write(0, req._replace(data=data, state=STATE_IOREQ_INPROCESS))
        page.set_state(0, STATE_IORESP_READY)  # (after the write barrier)
        region = bus.find(req.addr)
        machine.trace.record((clock.now, HANDLE.id, region.name if region else "(none)",
                              "COPY" if req.type == IOREQ_TYPE_COPY else "PIO", req.addr,
                              req.size, req.count, "read" if req.dir == IOREQ_READ else "write",
                              data))
        self._schedule_devices()
        self.dom0.evtchn.send(self.port, {d.domid: d for d in machine.domains})

    def _perform(self, bus: Bus, req: Ioreq) -> int:
        """Do the request's ``count`` accesses; the data of a single read, else the request's."""
        if not req.data_is_ptr:
            if req.dir == IOREQ_READ:
                return bus.read(req.addr, req.size)
            bus.write(req.addr, req.size, req.data & ((1 << (8 * req.size)) - 1))
            return req.data
        size, count = req.size, req.count
        low = req.data - (count - 1) * size if req.df else req.data  # DF=1: the buffer grows down
        if req.dir == IOREQ_READ:  # device → guest memory, through dom0's map of it
            data = bus.read_string(req.addr, size, count)
            if req.df:  # the first element read lands at the highest address
                data = b"".join(data[i : i + size] for i in range(len(data) - size, -1, -size))
            self.guest.write_bytes(low, data)
        else:
            data = self.guest.read_bytes(low, count * size)
            order = range(count - 1, -1, -1) if req.df else range(count)
            for i in order:
                bus.write(req.addr, size, int.from_bytes(data[i * size : (i + 1) * size], "little"))
        return req.data

    def drain_buffered(self) -> None:
        """Woken on the buffered channel: perform every queued write (at most a ring's worth:
        the pointers live in guest memory, and a guest may have scribbled on them)."""
        machine = self.machine
        ring = self.server.buffered
        if (ring.write_pointer - ring.read_pointer) & 0xFFFFFFFF > IOREQ_BUFFER_SLOT_NUM:
            self.fail("the buffered ioreq ring's pointers are bogus")
            return
        for _ in range(IOREQ_BUFFER_SLOT_NUM):
            write = ring.pop()
            if write is None:
                break
            if write.type not in (IOREQ_TYPE_PIO, IOREQ_TYPE_COPY) or (
                    write.type == IOREQ_TYPE_PIO and write.addr > 0xFFFF):
                self.fail(f"a buffered write of type {write.type} at {write.addr:#x}")
                return
            bus = self.mmio if write.type == IOREQ_TYPE_COPY else self.ports
            bus.write(write.addr, write.size, write.data & ((1 << (8 * write.size)) - 1))
            region = bus.find(write.addr)
            machine.trace.record((machine.clock.now, BUF_HANDLE.id,
                                  region.name if region else "(none)", write.addr, write.size,
                                  write.data))

    def fail(self, reason: str) -> None:
        """A request no device can take: report it and give no answer; Xen crashes the
        domain (its wait for the answer ends on the failure)."""
        self.failed = reason
        self.server.failure = reason
        machine = self.machine
        machine.trace.record((machine.clock.now, BAD.id, reason))

    # -- interrupts and time ---------------------------------------------------------------------
    def set_irq(self, irq: int, level: bool) -> None:
        """XEN_DMOP_set_isa_irq_level: the device's interrupt line, to Xen's virtual PIC."""
        machine = self.machine
        machine.trace.record((machine.clock.now, IRQ.id, irq, int(level)))
        if self.guest.vpic is not None:
            self.guest.vpic.set_irq(irq, level)

    def _disk_row(self, event: dict) -> None:
        """The IDE model asked its backend for sectors: a row now, and one when it is done."""
        record_disk_access(self.machine, event.get("backend", "?"), event.get("op", "?"),
                           event.get("lba", -1), event.get("count", 0),
                           event.get("latency_ns", 0))

    def _schedule_devices(self) -> None:
        """Set an alarm for when a device next changes by itself (a transfer ends, an
        interrupt is due), so that time passing while the guest waits brings it about."""
        clock = self.machine.clock
        for device in self._timed:
            t = device.next_event_time()
            if t is not None:
                clock.call_at(t, self._catch_up(device))

    def _catch_up(self, device: Any):
        def catch_up() -> None:
            device.catch_up()
            self._schedule_devices_after(device)

        return catch_up

    def _schedule_devices_after(self, device: Any) -> None:
        t = device.next_event_time()
        if t is not None and t > self.machine.clock.now:
            self.machine.clock.call_at(t, self._catch_up(device))
