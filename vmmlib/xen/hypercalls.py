"""Hypercalls: the paravirtual alternative, where the guest asks instead of being trapped.

``HYPERVISOR_console_io`` (number 18, ``CONSOLEIO_write`` = 0) prints a whole buffer on the
hypervisor's console in one call (xen/include/public/xen.h). Unknown hypercalls return -ENOSYS,
as Xen does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..trace import Schema

if TYPE_CHECKING:
    from .vcpu import Vcpu

HYPERVISOR_console_io = 18
CONSOLEIO_write = 0
CONSOLEIO_read = 1
ENOSYS = 38
HYPERCALL_NAMES = {HYPERVISOR_console_io: "console_io"}

HYPERCALL = Schema("xen", "hypercall", ("nr", "name"))
CONSOLE_WRITE = Schema(
    "xen", "hypercall", ("nr", "name", "cmd", "count"),
    {"nr": HYPERVISOR_console_io, "name": "console_io", "cmd": "write"},
)


def dispatch(vcpu: Vcpu) -> int:
    """Serve the hypercall the vCPU is executing; the result goes back in RAX."""
    op = vcpu.instruction
    machine = vcpu.machine
    t = machine.clock.advance(machine.costs.hypercall_ns)
    name = HYPERCALL_NAMES.get(op.nr, "unknown")
    if op.nr == HYPERVISOR_console_io and op.args and op.args[0] == CONSOLEIO_write:
        data = bytes(op.args[1])
        machine.console += data
        machine.trace.record((t, CONSOLE_WRITE.id, len(data)))
        result = 0
    else:
        machine.trace.record((t, HYPERCALL.id, op.nr, name))
        result = -ENOSYS
    return result


__all__ = ["CONSOLEIO_write", "HYPERVISOR_console_io", "dispatch"]
