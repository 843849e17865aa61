"""The physical PC: machine memory, its real port bus, the virtual clock and the trace.

This is the hardware every layer above stands on: what the CPU reaches when an access does
not trap (a device the domain owns outright), the RAM behind every domain's guest frames, and
the two records of what happened — the clock and the trace — that every actor writes to. The
hypervisor's view of the same machine (domains, its console) is ``vmmlib.xen.machine``.
"""

from __future__ import annotations

from ..clock import Clock
from ..costs import CostModel
from ..errors import ConfigError
from ..trace import Trace
from .bus import PortBus
from .memory import MIB, MachineMemory


class PhysicalMachine:
    """A PC with ``ram`` bytes of machine memory (a multiple of 4 KiB)."""

    def __init__(self, ram: int = 512 * MIB, costs: CostModel | None = None) -> None:
        if ram.__class__ is not int:
            raise ConfigError(f"machine memory is a whole number of bytes, not {ram!r}")
        if costs is not None and not isinstance(costs, CostModel):
            raise ConfigError(f"costs is a CostModel, not {costs!r}")
        self.clock = Clock()
        self.trace = Trace()
        self.costs = costs or CostModel()
        self.memory = MachineMemory(ram)
        self.ports = PortBus("machine ports")
