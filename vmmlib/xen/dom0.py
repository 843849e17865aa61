"""Domain 0's kernel, as far as its backends need it: the upcall that wakes them.

dom0 is an ordinary PV domain with privileges (the control domain). The software the course
cares about runs in it: qemu-dm (chapter 02) and the block backend (chapter 03). Each waits for
an event channel. When one fires, dom0's vCPU must be scheduled and its kernel must take the
upcall and wake the process or thread bound to the port — which costs virtual time
(``CostModel.dom0_wakeup_ns``) — then the bound software runs. Several events arriving before
dom0 runs are served by the same upcall.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from ..trace import Schema
from .domain import Domain

UPCALL = Schema("dom0", "upcall", ("ports",))


class Dom0Kernel:
    """The event-channel upcall of ``dom0`` and the software bound to its ports."""

    def __init__(self, dom0: Domain) -> None:
        if not dom0.privileged:
            raise ConfigError(f"{dom0.name} is not privileged: dom0 is the control domain")
        self.domain = dom0
        self._scheduled = False
        dom0.evtchn.on_upcall = self._kicked

    def bind(self, port: int, handler: Callable[[], None]) -> None:
        """Run ``handler`` whenever an event on ``port`` is served."""
        self.domain.evtchn.handlers[port] = handler

    def _kicked(self) -> None:
        if self._scheduled:
            return  # the upcall that is on its way will see this event too
        self._scheduled = True
        machine = self.domain.machine
        machine.clock.call_at(machine.clock.now + machine.costs.dom0_wakeup_ns, self._upcall)

    def _upcall(self) -> None:
        self._scheduled = False
        machine = self.domain.machine
        ports = self.domain.evtchn.shared.take_upcall()
        machine.trace.record((machine.clock.now, UPCALL.id, ports))
        for port in ports:
            handler = self.domain.evtchn.handlers.get(port)
            if handler is not None:
                handler()
