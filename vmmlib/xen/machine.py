"""A physical PC running Xen: the hardware of ``vmmlib.hw`` plus the domains on it.

``Machine`` is what every scenario builds first. It adds to the physical machine what belongs
to the hypervisor: the list of domains (each with its RAM placed somewhere in machine memory)
and Xen's own console, on which ``HYPERVISOR_console_io`` prints.
"""

from __future__ import annotations

from ..costs import CostModel
from ..hw.machine import PhysicalMachine
from ..hw.memory import MIB
from .domain import Domain


class Machine(PhysicalMachine):
    """A PC with ``ram`` bytes of machine memory, running Xen."""

    def __init__(self, ram: int = 512 * MIB, costs: CostModel | None = None) -> None:
        super().__init__(ram, costs)
        self.console = bytearray()  # what the hypervisor printed on its own console
        self.domains: list[Domain] = []

    def add_domain(
        self,
        name: str,
        ram: int,
        base: int | None = None,
        kind: str = "hvm",
        vendor: str = "vmx",
    ) -> Domain:
        """Create a domain with ``ram`` bytes placed at machine address ``base``.

        Without ``base`` the RAM goes right after the previous domain's.
        """
        if base is None:
            base = max((d.machine_base + d.ram_size for d in self.domains), default=0)
        dom = Domain(self, name, len(self.domains), ram, base, kind, vendor)
        self.domains.append(dom)
        return dom
