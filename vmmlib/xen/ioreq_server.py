"""Xen's side of a device model: an *ioreq server* and the round trip of one request.

A device model registers with Xen the port and MMIO ranges it emulates (XEN_DMOP_map_io_range_
to_ioreq_server). When a trapped access falls into one, Xen (``ioreq_send``) checks that the
vCPU's slot is free (NONE), copies the request in, sets READY and notifies the device model over
the vCPU's event channel; the vCPU is **blocked** until the device model has answered
(IORESP_READY) and notified back, then Xen takes the data, frees the slot (NONE) and completes
the guest's instruction. A write into the VGA window that needs no answer goes into the
**buffered** ring instead, and the vCPU goes on at once. Xen crashes the domain when the
protocol breaks (a slot in the wrong state) or the device model never answers.

Pages: the 2006 design put the ioreq pages in the guest's own physical memory at reserved
frames that the device model maps; the model does the same (the frames just below the page that
holds shared_info, at the top of the guest's RAM). Sources: hardware-facts.md §4.2-4.3;
xen/common/ioreq.c (``ioreq_send``, ``ioreq_send_buffered``, ``wait_for_io``);
xen/arch/x86/hvm/stdvga.c (VGA-window writes sent buffered).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DomainCrash
from ..hw.memory import PAGE_SHIFT
from ..trace import Schema
from .ioreq import (
    IOREQ_READ,
    IOREQ_TYPE_COPY,
    IOREQ_TYPE_PIO,
    IOREQ_WRITE,
    STATE_IOREQ_NONE,
    STATE_IOREQ_READY,
    STATE_IORESP_READY,
    TYPE_NAMES,
    BufferedIoreqPage,
    Ioreq,
    IoreqPage,
    ProtocolError,
)

if TYPE_CHECKING:
    from .domain import Domain
    from .vcpu import Vcpu

IOREQ_PAGE, BUFIOREQ_PAGE = 1, 2  # frames below the top of guest RAM (0 is shared_info)
SEND = Schema("xen", "ioreq", ("slot", "type", "addr", "size", "count", "dir", "data_is_ptr",
                               "data", "state"), {"state": "READY"})
DONE = Schema("xen", "ioreq-done", ("slot", "data", "state"), {"state": "NONE"})
BUFFERED = Schema("xen", "bufioreq", ("type", "addr", "size", "data", "slot"))
CRASH = Schema("xen", "domain-crash", ("domain", "reason"))


def special_gfn(domain: Domain, index: int) -> int:
    """The guest frame of special page ``index`` (0 = shared_info) at the top of its RAM."""
    return (domain.ram_size >> PAGE_SHIFT) - 1 - index


class IoreqServer:
    """Xen's record of one device model: its pages, its event channels, its ranges."""

    def __init__(self, guest: Domain, dm_domain: Domain) -> None:
        self.guest = guest
        memory = guest.machine.memory
        self.page = IoreqPage(memory.page(guest.gfn_to_mfn(special_gfn(guest, IOREQ_PAGE))))
        self.buffered = BufferedIoreqPage(
            memory.page(guest.gfn_to_mfn(special_gfn(guest, BUFIOREQ_PAGE))))
        # the event channels: Xen's end in the guest domain, for the device model to bind
        self.port = guest.evtchn.alloc_unbound(dm_domain.domid)
        self.buf_port = guest.evtchn.alloc_unbound(dm_domain.domid)
        guest.evtchn.consumers[self.port] = self._answered  # Xen consumes it, not the guest
        self.port_ranges: list[tuple[int, int, str]] = []
        self.mmio_ranges: list[tuple[int, int, str, bool]] = []  # ..., buffered writes?
        self._woken = False
        self.failure: str | None = None  # the device model refused a request

    # -- ranges ------------------------------------------------------------------------------
    def map_ports(self, first: int, last: int, name: str) -> None:
        self.port_ranges.append((first, last, name))

    def map_mmio(self, first: int, last: int, name: str, buffered: bool = False) -> None:
        self.mmio_ranges.append((first, last, name, buffered))

    def serves_port(self, port: int) -> str | None:
        for first, last, name in self.port_ranges:
            if first <= port <= last:
                return name
        return None

    def serves_mmio(self, gpa: int) -> tuple[str, bool] | None:
        for first, last, name, buffered in self.mmio_ranges:
            if first <= gpa <= last:
                return name, buffered
        return None

    # -- the round trip ------------------------------------------------------------------------
    def send(self, vcpu: Vcpu, req: Ioreq) -> Ioreq:
        """ioreq_send + wait_for_io: returns the answered request; DomainCrash if the protocol
        breaks or the device model never answers."""
        machine = self.guest.machine
        clock = machine.clock
        try:
            if self.page.state(0) != STATE_IOREQ_NONE:
                raise ProtocolError(f"the slot is busy ({self.page.state(0)}) on a new request")
            self.page.write(0, req._replace(state=STATE_IOREQ_NONE, vp_eport=self.port))
            self.page.set_state(0, STATE_IOREQ_READY)  # (after the write barrier)
        except ProtocolError as error:
            self.crash(str(error))
        t = clock.advance(machine.costs.ioreq_send_ns)
        machine.trace.record((t, SEND.id, 0, TYPE_NAMES.get(req.type, req.type), req.addr,
                              req.size, req.count,
                              "read" if req.dir == IOREQ_READ else "write", req.data_is_ptr,
                              req.data))
        self._woken = False
        self.guest.evtchn.send(self.port, {d.domid: d for d in machine.domains})
        answered = clock.run_until(lambda: self._woken or self.failure is not None)
        if self.failure is not None:
            self.crash(f"the device model refused the ioreq: {self.failure}")
        if not answered:
            self.crash("the device model never answered the ioreq")
        try:
            answer = self.page.read(0)
            self.page.advance(0, STATE_IORESP_READY, STATE_IOREQ_NONE)
        except ProtocolError as error:
            self.crash(str(error))
        machine.trace.record((clock.now, DONE.id, 0, answer.data))
        return answer

    def _answered(self) -> None:
        """The device model notified us: the vCPU is runnable again after a scheduling delay."""
        clock, costs = self.guest.machine.clock, self.guest.machine.costs
        clock.call_at(clock.now + costs.vcpu_wakeup_ns, self._wake)

    def _wake(self) -> None:
        self._woken = True

    def send_buffered(self, kind: int, addr: int, size: int, data: int) -> bool:
        """ioreq_send_buffered: False if the write must go synchronously after all."""
        if self.failure is not None or not self.buffered.push(kind, addr, size, data):
            return False
        machine = self.guest.machine
        t = machine.clock.advance(machine.costs.ioreq_send_ns)
        machine.trace.record((t, BUFFERED.id, TYPE_NAMES.get(kind, kind), addr, size, data,
                              self.buffered.write_pointer))
        self.guest.evtchn.send(self.buf_port, {d.domid: d for d in machine.domains})
        return True

    def crash(self, reason: str) -> None:
        machine = self.guest.machine
        machine.trace.record((machine.clock.now, CRASH.id, self.guest.name, reason))
        raise DomainCrash(f"{self.guest.name}: {reason}")

    # -- helpers for the exit handlers -------------------------------------------------------
    def pio(self, vcpu: Vcpu, port: int, size: int, is_in: bool, value: int = 0,
            count: int = 1, gpa: int | None = None) -> int:
        """One port access (or ``count`` of them through the guest buffer at ``gpa``)."""
        req = Ioreq(port, gpa if gpa is not None else (0 if is_in else value), count, size,
                    0, STATE_IOREQ_NONE, gpa is not None,
                    IOREQ_READ if is_in else IOREQ_WRITE, False, IOREQ_TYPE_PIO)
        return self.send(vcpu, req).data

    def mmio(self, vcpu: Vcpu, gpa: int, size: int, write: bool, value: int = 0) -> int:
        req = Ioreq(gpa, value if write else 0, 1, size, 0, STATE_IOREQ_NONE, False,
                    IOREQ_WRITE if write else IOREQ_READ, False, IOREQ_TYPE_COPY)
        return self.send(vcpu, req).data
