"""A physical PC running Xen: the hardware of ``vmmlib.hw`` plus the domains on it.

``Machine`` is what every scenario builds first. It adds to the physical machine what belongs
to the hypervisor: the list of domains (each with its RAM placed somewhere in machine memory),
Xen's own console, on which ``HYPERVISOR_console_io`` prints, the grant tables (``GrantTables``)
and xenstore. The console keeps the last 16 KiB written, like Xen's console ring
(xen/drivers/char/console.c, ``_CONRING_SIZE``).
``xen_debug=True`` stands for a debug build of Xen (CONFIG_VERBOSE_DEBUG), whose default policy
lets any domain write to that console; a release build lets only the control domain.
"""

from __future__ import annotations

from ..costs import CostModel
from ..errors import ConfigError
from ..hw.machine import PhysicalMachine
from ..hw.memory import MIB
from .domain import Domain
from .grant_ops import GrantTables
from .xenstore import XenStore

#: Xen's console ring: the last this many bytes printed are kept.
CONRING_SIZE = 16384


class Machine(PhysicalMachine):
    """A PC with ``ram`` bytes of machine memory, running Xen."""

    def __init__(
        self, ram: int = 512 * MIB, costs: CostModel | None = None, xen_debug: bool = False
    ) -> None:
        super().__init__(ram, costs)
        if xen_debug.__class__ is not bool:
            raise ConfigError(f"xen_debug is True or False, not {xen_debug!r}")
        self.xen_debug = xen_debug
        self.console = bytearray()  # what the hypervisor printed on its own console
        self.domains: list[Domain] = []
        self.grant_tables = GrantTables(self)  # Xen's side of every domain's grant table
        self.xenstore = XenStore()

    def console_write(self, data: bytes) -> None:
        """Print on Xen's console (the ring keeps the last CONRING_SIZE bytes)."""
        self.console += data
        if len(self.console) > CONRING_SIZE:
            del self.console[: len(self.console) - CONRING_SIZE]

    def add_domain(
        self,
        name: str,
        ram: int,
        base: int | None = None,
        kind: str = "hvm",
        vendor: str = "vmx",
        privileged: bool = False,
    ) -> Domain:
        """Create a domain with ``ram`` bytes placed at machine address ``base``.

        Without ``base`` the RAM goes right after the previous domain's. ``privileged`` makes
        it the control domain (dom0's role: the one domain privileged hypercalls accept).
        """
        if any(d.name == name for d in self.domains):
            raise ConfigError(f"there is already a domain named {name!r}")
        if base is None:
            base = max((d.machine_base + d.ram_size for d in self.domains), default=0)
        dom = Domain(self, name, len(self.domains), ram, base, kind, vendor, privileged)
        self.domains.append(dom)
        return dom
