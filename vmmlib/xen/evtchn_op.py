"""HYPERVISOR_event_channel_op: how a guest drives its event channels (hypercall 32).

The guest passes a command in the first argument and the address of the command's structure in
the second; Xen copies the structure in (copy_from_guest), acts, and copies the OUT fields back.
Structures (xen/include/public/event_channel.h, offsets derived for x86-64; ``domid_t`` is
u16, ``evtchn_port_t`` u32, each field naturally aligned):

========================  ====  ======================================================
command                   size  fields (offset)
========================  ====  ======================================================
EVTCHNOP_alloc_unbound 6    8   dom u16 (0), remote_dom u16 (2), OUT port u32 (4)
EVTCHNOP_bind_interdomain 0 12  remote_dom u16 (0), remote_port u32 (4), OUT local_port u32 (8)
EVTCHNOP_send 4             4   port u32 (0)
EVTCHNOP_unmask 9           4   port u32 (0)
========================  ====  ======================================================

What Xen answers (xen/common/event_channel.c): ``DOMID_SELF`` (0x7FF0) names the caller; an
unprivileged caller may allocate only in its own domain (-EPERM); a domain that does not exist
is -ESRCH; binding to a port that is not unbound, or not offered to the caller, is -EINVAL;
sending on a port that does not exist, or on one whose events Xen consumes, is -EINVAL, while a
send on a port still unbound is silently dropped (0); an unknown command is -ENOSYS. The model
implements these four commands (the ones split drivers use); the others answer -ENOSYS.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ..trace import Schema
from .errno import EFAULT, EINVAL, ENOSPC, ENOSYS, EPERM, ESRCH
from .evtchn import (
    NR_PORTS,
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_bind_interdomain,
    EVTCHNOP_send,
    EVTCHNOP_unmask,
)

if TYPE_CHECKING:
    from .domain import Domain
    from .vcpu import Vcpu

HYPERVISOR_event_channel_op = 32
DOMID_SELF = 0x7FF0
COMMAND_NAMES = {
    EVTCHNOP_bind_interdomain: "bind_interdomain",
    EVTCHNOP_send: "send",
    EVTCHNOP_alloc_unbound: "alloc_unbound",
    EVTCHNOP_unmask: "unmask",
}
#: (struct size, struct format) of each command's argument
LAYOUTS = {
    EVTCHNOP_alloc_unbound: (8, "<HHI"),
    EVTCHNOP_bind_interdomain: (12, "<HxxII"),
    EVTCHNOP_send: (4, "<I"),
    EVTCHNOP_unmask: (4, "<I"),
}

EVTCHN_OP = Schema("xen", "hypercall", ("nr", "name", "cmd", "port", "result"),
                   {"nr": HYPERVISOR_event_channel_op, "name": "event_channel_op"})


def event_channel_op(vcpu: Vcpu, t: int, args: tuple[int, ...]) -> int:
    """do_event_channel_op(cmd, arg): copy the structure in, act, copy the OUT field back."""
    cmd, arg = (args + (0, 0))[:2]
    name = COMMAND_NAMES.get(cmd, f"cmd {cmd}")
    port = -1
    layout = LAYOUTS.get(cmd)
    if layout is None:
        result = -ENOSYS
    else:
        raw = vcpu.domain.copy_from_guest(arg, layout[0])
        if raw is None:
            result = -EFAULT
        else:
            fields = struct.unpack(layout[1], raw)
            result, port = _COMMANDS[cmd](vcpu.domain, arg, *fields)
    vcpu.machine.trace.record((t, EVTCHN_OP.id, name, port, result))
    return result


def _domain(caller: Domain, domid: int) -> Domain | None:
    if domid == DOMID_SELF:
        return caller
    domains = caller.machine.domains
    return domains[domid] if domid < len(domains) else None


def _alloc_unbound(caller: Domain, arg: int, dom: int, remote_dom: int, _out: int
                   ) -> tuple[int, int]:
    target, remote = _domain(caller, dom), _domain(caller, remote_dom)
    if target is None or remote is None:
        return -ESRCH, -1
    if target is not caller and not caller.privileged:
        return -EPERM, -1  # only the control domain allocates in another domain
    if len(target.evtchn.ports) >= NR_PORTS - 1:
        return -ENOSPC, -1
    port = target.evtchn.alloc_unbound(remote.domid)
    if not caller.copy_to_guest(arg + 4, port.to_bytes(4, "little")):
        return -EFAULT, port
    return 0, port


def _bind_interdomain(caller: Domain, arg: int, remote_dom: int, remote_port: int, _out: int
                      ) -> tuple[int, int]:
    remote = _domain(caller, remote_dom)
    if remote is None:
        return -ESRCH, -1
    if not caller.evtchn.may_bind(remote.evtchn, remote_port):
        return -EINVAL, -1
    port = caller.evtchn.bind_interdomain(remote.evtchn, remote_port)
    if not caller.copy_to_guest(arg + 8, port.to_bytes(4, "little")):
        return -EFAULT, port
    return 0, port


def _send(caller: Domain, _arg: int, port: int) -> tuple[int, int]:
    chan = caller.evtchn.ports.get(port)
    if chan is None or port in caller.evtchn.consumers:
        return -EINVAL, port  # no such port, or one only Xen may signal
    outcome = caller.evtchn.send(port, dict(enumerate(caller.machine.domains)))
    return (-EINVAL if outcome == "bad port" else 0), port


def _unmask(caller: Domain, _arg: int, port: int) -> tuple[int, int]:
    if port not in caller.evtchn.ports:
        return -EINVAL, port
    caller.evtchn.unmask(port)
    return 0, port


_COMMANDS = {
    EVTCHNOP_alloc_unbound: _alloc_unbound,
    EVTCHNOP_bind_interdomain: _bind_interdomain,
    EVTCHNOP_send: _send,
    EVTCHNOP_unmask: _unmask,
}

__all__ = ["DOMID_SELF", "HYPERVISOR_event_channel_op", "LAYOUTS", "event_channel_op"]
