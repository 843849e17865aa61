"""vmmlib: a small, faithful model of how a hypervisor virtualizes I/O, for teaching.

The core imports numpy only and is laid out in layers, each importing only from itself and the
layers below (bottom to top): the ground modules ``errors``, ``clock``, ``trace``, ``costs``;
``hw`` (the physical PC); ``devices`` (device models); ``cpu`` (what VT-x / AMD-V do); ``xen``
(the hypervisor and dom0's software); ``guest`` (guest kernels' drivers); ``scenarios`` (the
chapters' ready-made worlds). Plots and widgets live in ``vmmlib.viz``; exercise building and
grading in ``vmmlib.course``; neither is imported here.

The names below are the ones the notebooks use most, re-exported from their homes.
"""

from .clock import Clock
from .costs import CostModel
from .cpu.iobitmap import SvmIopm, VmxIoBitmaps
from .cpu.ops import Hypercall, In, Ins, Load, Out, Outs, Store
from .cpu.paging import PageTable
from .errors import ConfigError, GuestFault, PageFault, VmmError
from .hw.bus import Bus, MemoryBus, PortBus
from .hw.memory import MIB, PAGE_SIZE, MachineMemory
from .trace import Event, Trace
from .xen.domain import Domain
from .xen.machine import Machine
from .xen.shadow import FaultKind, classify_fault
from .xen.vcpu import Vcpu

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
