"""vmmlib: a small, faithful model of how a hypervisor virtualizes I/O, for teaching.

The core imports numpy only. Plots and widgets live in ``vmmlib.viz``; exercise building and
grading in ``vmmlib.course``; neither is imported here.
"""

from .bus import Bus, MemoryBus, PortBus
from .clock import Clock
from .costs import CostModel
from .errors import ConfigError, GuestFault, PageFault, VmmError
from .iobitmap import SvmIopm, VmxIoBitmaps
from .machine import Domain, Machine
from .memory import MIB, PAGE_SIZE, MachineMemory
from .ops import Hypercall, In, Ins, Load, Out, Outs, Store
from .paging import FaultKind, PageTable, classify_fault
from .trace import Event, Trace
from .vcpu import Vcpu

__version__ = "0.1.0"

__all__ = [
    "Bus",
    "Clock",
    "ConfigError",
    "CostModel",
    "Domain",
    "Event",
    "FaultKind",
    "GuestFault",
    "Hypercall",
    "In",
    "Ins",
    "Load",
    "MIB",
    "Machine",
    "MachineMemory",
    "MemoryBus",
    "Out",
    "Outs",
    "PAGE_SIZE",
    "PageFault",
    "PageTable",
    "PortBus",
    "Store",
    "SvmIopm",
    "Trace",
    "Vcpu",
    "VmmError",
    "VmxIoBitmaps",
    "classify_fault",
]
