"""A vCPU as Xen creates it for a domain: the CPU's control block filled in from the domain.

``Vcpu(domain, program)`` is what scenarios and notebooks use. Xen allocates the vCPU's
VMCS/VMCB and points it at the domain's intercept map and shadow table, and at its own exit
handler (the "host RIP"); a PV vCPU gets no VMCS, only the hypercall trap. From then on the
CPU (``vmmlib.cpu.vcpu``) runs the guest on its own and comes back only through those entries.
"""

from __future__ import annotations

from ..cpu.ops import Guest
from ..cpu.vcpu import VirtualCpu
from ..cpu.vmcs import ControlBlock
from . import hypervisor
from .domain import Domain


class Vcpu(VirtualCpu):
    """One virtual CPU of ``domain``, running the guest generator ``program``."""

    def __init__(self, domain: Domain, program: Guest, name: str | None = None) -> None:
        control = ControlBlock(
            domain.vendor,
            domain.intercepts,
            domain.shadow_table.entries,
            host_rip=hypervisor.exit_handler(domain.vendor),
            hypercall_entry=hypervisor.pv_hypercall,
            trap_entry=hypervisor.pv_trap,
            paravirtual=domain.kind == "pv",
        )
        super().__init__(domain.machine, control, program, name or domain.name)
        self.domain = domain
