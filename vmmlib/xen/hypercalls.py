"""Hypercalls: the paravirtual alternative, where the guest asks instead of being trapped.

The guest puts the hypercall number in RAX and its arguments in registers (``Hypercall`` ops
hold them as 64-bit values); buffers are guest addresses that Xen reads and writes with
copy_from_guest / copy_to_guest, through the guest's page table and the p2m. Xen answers with
0 or a positive result, or a negative errno: -EFAULT for a buffer that is not guest memory,
-EINVAL / -E2BIG for an argument out of range, -EPERM when the policy refuses, -ENOSYS for an
unknown hypercall or command (numbers as in xen/include/public/errno.h, Linux's x86 values).

Implemented: console_io (18, below), sched_op (29) and hvm_op (34) in ``vmmlib.xen.upcall``,
event_channel_op (32) in ``vmmlib.xen.evtchn_op``; any other number answers -ENOSYS.

``HYPERVISOR_console_io`` (number 18) takes (cmd, count, buffer): ``CONSOLEIO_write`` (0) prints
``count`` bytes of the guest's buffer on Xen's console. Xen's default (XSM dummy) policy lets
only the control domain use it, or any domain on a debug build (CONFIG_VERBOSE_DEBUG), or one
configured as console domain (xen/include/xsm/dummy.h ``xsm_console_io``; in 2006,
xen/drivers/char/console.c let only domain 0 in unless built VERBOSE). Sources:
xen/include/public/xen.h (__HYPERVISOR_console_io 18, CONSOLEIO_write 0, CONSOLEIO_read 1),
xen/drivers/char/console.c (``do_console_io``: count > INT_MAX gives -E2BIG, an unknown command
-ENOSYS, a fault in the buffer -EFAULT).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..cpu.operands import REGISTER_MASK
from ..trace import Schema
from .errno import E2BIG, EFAULT, EINVAL, ENOSYS, EPERM  # noqa: F401 - EINVAL re-exported
from .evtchn_op import HYPERVISOR_event_channel_op, event_channel_op
from .upcall import HYPERVISOR_hvm_op, HYPERVISOR_sched_op, hvm_op, sched_op

if TYPE_CHECKING:
    from .vcpu import Vcpu

HYPERVISOR_console_io = 18
CONSOLEIO_write = 0
CONSOLEIO_read = 1
INT_MAX = (1 << 31) - 1
HYPERCALL_NAMES = {
    HYPERVISOR_console_io: "console_io",
    HYPERVISOR_sched_op: "sched_op",
    HYPERVISOR_event_channel_op: "event_channel_op",
    HYPERVISOR_hvm_op: "hvm_op",
}

HYPERCALL = Schema("xen", "hypercall", ("nr", "name", "result"))
CONSOLE = Schema("xen", "hypercall", ("nr", "name", "cmd", "count", "result"),
                 {"nr": HYPERVISOR_console_io, "name": "console_io"})


def dispatch(vcpu: Vcpu) -> int:
    """Serve the hypercall the vCPU is executing; the result goes back in RAX."""
    op = vcpu.instruction
    machine = vcpu.machine
    t = machine.clock.advance(machine.costs.hypercall_ns)
    handler = _HYPERCALLS.get(op.nr)
    if handler is None:
        result = -ENOSYS
        machine.trace.record((t, HYPERCALL.id, op.nr, "unknown", result))
    else:
        result = handler(vcpu, t, op.args)
    vcpu.rax = result & REGISTER_MASK  # RAX holds the long result, two's complement
    return result


def _console_io(vcpu: Vcpu, t: int, args: tuple[int, ...]) -> int:
    cmd, count, buffer = (args + (0, 0, 0))[:3]
    dom, machine = vcpu.domain, vcpu.machine
    name = {CONSOLEIO_write: "write", CONSOLEIO_read: "read"}.get(cmd, f"cmd {cmd}")
    if not (dom.privileged or (machine.xen_debug and cmd == CONSOLEIO_write)):
        result = -EPERM  # the default policy: the control domain only, or a debug build
    elif cmd not in (CONSOLEIO_write, CONSOLEIO_read):
        result = -ENOSYS
    elif count > INT_MAX:
        result = -E2BIG
    elif cmd == CONSOLEIO_write:
        result = _console_write(vcpu, count, buffer)
    else:  # a read of the serial input the model never has: nothing waiting
        result = 0
    machine.trace.record((t, CONSOLE.id, name, count, result))
    return result


def _console_write(vcpu: Vcpu, count: int, buffer: int) -> int:
    """Copy the guest's buffer a page at a time (Xen copies 127-byte chunks) and print it;
    a chunk that is not guest memory stops the write with -EFAULT."""
    dom, machine = vcpu.domain, vcpu.machine
    while count:
        n = min(count, 4096 - (buffer & 4095))
        data = dom.copy_from_guest(buffer, n)
        if data is None:
            return -EFAULT
        machine.console_write(data)
        buffer, count = buffer + n, count - n
    return 0


_HYPERCALLS = {
    HYPERVISOR_console_io: _console_io,
    HYPERVISOR_sched_op: sched_op,
    HYPERVISOR_event_channel_op: event_channel_op,
    HYPERVISOR_hvm_op: hvm_op,
}

__all__ = ["CONSOLEIO_read", "CONSOLEIO_write", "HYPERVISOR_console_io", "dispatch"]
