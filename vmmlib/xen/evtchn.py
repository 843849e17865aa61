"""Event channels, the 2-level ABI: Xen's doorbells between domains.

An event is one bit of information: a **pending** bit that goes 0 → 1. Each domain's
``shared_info`` page holds two bitmaps, ``evtchn_pending`` and ``evtchn_mask`` (64 words of
64 bits: 4096 ports on a 64-bit guest), and each vCPU's ``vcpu_info`` an
``evtchn_upcall_pending`` byte and the ``evtchn_pending_sel`` selector word (bit i: word i of
the pending bitmap may have bits set). Marking port p pending (Xen's ``evtchn_2l_set_pending``):
test-and-set the pending bit — if it was already set, nothing more happens (events coalesce:
an edge, not a counter); if the port is not masked and the selector bit was newly set, the
vCPU's upcall becomes pending and the vCPU is kicked. A masked port keeps the edge in its
pending bit; unmasking delivers it. Sending (EVTCHNOP_send) marks the *remote* end of an
inter-domain channel pending.

Layout (x86-64; derived by compiling xen/include/public/xen.h's structs with gcc): vcpu_info
is 64 bytes (upcall_pending @0, upcall_mask @1, pending_sel @8), shared_info holds 32 of them
from offset 0, then evtchn_pending at 2048 and evtchn_mask at 2560. Sources:
hardware-facts.md §7.1; xen/include/public/event_channel.h (EVTCHNOP_* numbers),
xen/include/public/xen.h, xen/common/event_2l.c.

What the model simplifies: each domain's shared_info lives in the last page of its own RAM
(Xen allocates it from its heap and maps it into the guest); one vCPU per domain receives the
upcalls; "kicking" a vCPU calls the domain's ``on_upcall`` hook (a halted vCPU wakes, a dom0
actor gets scheduled).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from ..hw.memory import PAGE_SHIFT
from ..trace import Schema

if TYPE_CHECKING:
    from .domain import Domain

EVTCHNOP_bind_interdomain = 0
EVTCHNOP_bind_virq = 1
EVTCHNOP_close = 3
EVTCHNOP_send = 4
EVTCHNOP_status = 5
EVTCHNOP_alloc_unbound = 6
EVTCHNOP_unmask = 9

VCPU_INFO_SIZE = 64
UPCALL_PENDING, UPCALL_MASK, PENDING_SEL = 0, 1, 8
PENDING_OFFSET, MASK_OFFSET = 2048, 2560
NR_PORTS = 64 * 64  # 2-level ABI on a 64-bit guest

SEND = Schema("xen", "evtchn", ("op", "domain", "evtchn", "remote", "remote_evtchn", "outcome"),
              {"op": "send"})

#: what ``set_pending`` reports
COALESCED, MASKED, UPCALL, ALREADY_SELECTED = "coalesced", "masked", "upcall", "selected"


class SharedInfo:
    """A domain's shared_info page: the pending and mask bitmaps and vCPU 0's vcpu_info."""

    def __init__(self, page: np.ndarray) -> None:
        self.page = page
        self.pending_words = page[PENDING_OFFSET:MASK_OFFSET].view("<u8")
        self.mask_words = page[MASK_OFFSET : MASK_OFFSET + 512].view("<u8")
        self.selector = page[PENDING_SEL : PENDING_SEL + 8].view("<u8")

    def pending(self, port: int) -> bool:
        return bool(int(self.pending_words[port >> 6]) >> (port & 63) & 1)

    def masked(self, port: int) -> bool:
        return bool(int(self.mask_words[port >> 6]) >> (port & 63) & 1)

    @property
    def upcall_pending(self) -> bool:
        return bool(self.page[UPCALL_PENDING])

    def pending_ports(self) -> list[int]:
        """Every port whose pending bit is set (what an upcall handler would scan)."""
        bits = np.unpackbits(self.page[PENDING_OFFSET:MASK_OFFSET], bitorder="little")
        return np.flatnonzero(bits).tolist()

    def set_pending(self, port: int) -> str:
        """Xen's evtchn_2l_set_pending; returns what happened (see the module docstring)."""
        word, bit = port >> 6, 1 << (port & 63)
        before = int(self.pending_words[word])
        if before & bit:
            return COALESCED  # an edge, not a counter
        self.pending_words[word] = before | bit
        if self.masked(port):
            return MASKED  # remembered in the pending bit; unmasking delivers it
        return self._select(word)

    def _select(self, word: int) -> str:
        sel = int(self.selector[0])
        if sel >> word & 1:
            return ALREADY_SELECTED  # an upcall for this word is already on its way
        self.selector[0] = sel | 1 << word
        self.page[UPCALL_PENDING] = 1
        return UPCALL

    def set_mask(self, port: int, masked: bool) -> None:
        word, bit = port >> 6, 1 << (port & 63)
        value = int(self.mask_words[word])
        self.mask_words[word] = value | bit if masked else value & ~bit

    def unmask(self, port: int) -> str | None:
        """EVTCHNOP_unmask (evtchn_2l_unmask): clear the mask; a remembered edge is delivered."""
        self.set_mask(port, False)
        if self.pending(port):
            return self._select(port >> 6)
        return None

    def clear_pending(self, port: int) -> None:
        word = port >> 6
        self.pending_words[word] = int(self.pending_words[word]) & ~(1 << (port & 63))

    def take_upcall(self) -> list[int]:
        """What a guest's upcall handler does: clear upcall_pending, take the selector, and
        clear and return each pending, unmasked port."""
        self.page[UPCALL_PENDING] = 0
        sel = int(self.selector[0])
        self.selector[0] = 0
        ports = []
        for word in range(64):
            if sel >> word & 1:
                live = int(self.pending_words[word]) & ~int(self.mask_words[word])
                for bit in range(64):
                    if live >> bit & 1:
                        ports.append(word * 64 + bit)
                self.pending_words[word] = int(self.pending_words[word]) & ~live
        return ports


@dataclass
class Channel:
    """One end of an event channel, in Xen's per-domain port table."""

    port: int
    state: str  # "unbound" (waiting for a remote to bind) or "interdomain"
    remote_domid: int
    remote_port: int | None = None


class EventChannels:
    """Xen's event-channel state of one domain: its port table and its shared_info."""

    def __init__(self, domain: Domain, on_upcall: Callable[[], None] | None = None) -> None:
        self.domain = domain
        self.shared_info_gfn = (domain.ram_size >> PAGE_SHIFT) - 1  # see the module docstring
        self._shared: SharedInfo | None = None
        self.ports: dict[int, Channel] = {}
        self.on_upcall = on_upcall
        self.handlers: dict[int, Callable[[], None]] = {}  # port -> the software bound to it
        # ports whose events Xen consumes itself (an ioreq server's): no guest-visible bit
        self.consumers: dict[int, Callable[[], None]] = {}

    @property
    def shared(self) -> SharedInfo:
        """The domain's shared_info page (touched only once event channels are used)."""
        if self._shared is None:
            mfn = self.domain.gfn_to_mfn(self.shared_info_gfn)
            self._shared = SharedInfo(self.domain.machine.memory.page(mfn))
        return self._shared

    def _new_port(self) -> int:
        port = 1  # port 0 is never used
        while port in self.ports:
            port += 1
        if port >= NR_PORTS:
            raise ConfigError(f"{self.domain.name}: all {NR_PORTS} event channels are in use")
        return port

    def alloc_unbound(self, remote_domid: int) -> int:
        """EVTCHNOP_alloc_unbound: a port that ``remote_domid`` may bind to."""
        port = self._new_port()
        self.ports[port] = Channel(port, "unbound", remote_domid)
        return port

    def may_bind(self, remote: EventChannels, remote_port: int) -> bool:
        """Is ``remote_port`` of ``remote`` unbound and offered to this domain?"""
        theirs = remote.ports.get(remote_port)
        return (theirs is not None and theirs.state == "unbound"
                and theirs.remote_domid == self.domain.domid)

    def bind_interdomain(self, remote: EventChannels, remote_port: int) -> int:
        """EVTCHNOP_bind_interdomain: connect a new local port to the remote's unbound one."""
        if not self.may_bind(remote, remote_port):
            raise ConfigError(
                f"{self.domain.name}: {remote.domain.name}'s port {remote_port} is not "
                "waiting for this domain"
            )
        port = self._new_port()
        self.ports[port] = Channel(port, "interdomain", remote.domain.domid, remote_port)
        theirs = remote.ports[remote_port]
        theirs.state, theirs.remote_port = "interdomain", port
        return port

    def send(self, port: int, domains: dict[int, Domain]) -> str:
        """EVTCHNOP_send: mark the remote end pending; returns what happened there, or
        "dropped" (a port still unbound: Xen drops the event silently) or "bad port"."""
        chan = self.ports.get(port) if port.__class__ is int else None
        remote, rport = None, None
        if chan is None:
            outcome = "bad port"
        elif chan.state != "interdomain":
            outcome = "dropped"
        else:
            remote, rport = domains[chan.remote_domid], chan.remote_port
            outcome = remote.evtchn.deliver(rport)
        clock = self.domain.machine.clock
        self.domain.machine.trace.record(
            (clock.now, SEND.id, self.domain.name, port,
             remote.name if remote else "", rport if rport is not None else -1, outcome)
        )
        return outcome

    def deliver(self, port: int) -> str:
        """A remote end sent on ``port``: set it pending, and kick the vCPU on an upcall."""
        consumer = self.consumers.get(port)
        if consumer is not None:
            consumer()
            return "to Xen"
        outcome = self.shared.set_pending(port)
        if outcome == UPCALL and self.on_upcall is not None:
            self.on_upcall()
        return outcome

    def unmask(self, port: int) -> str | None:
        """EVTCHNOP_unmask: a remembered edge is delivered (and kicks the vCPU)."""
        outcome = self.shared.unmask(port)
        if outcome == UPCALL and self.on_upcall is not None:
            self.on_upcall()
        return outcome
