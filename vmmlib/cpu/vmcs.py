"""The control structure the hypervisor fills in for each vCPU: Intel's VMCS, AMD's VMCB.

A CPU running a guest in VMX non-root mode (or under SVM) knows only what this structure tells
it, and the CPU layer of vmmlib knows no more:

* which port accesses exit: the I/O bitmaps A and B (VMX) or the I/O permissions map (SVM),
  ``io_intercepts``;
* the page table the CPU walks for the guest's memory accesses: here the **shadow** table the
  hypervisor builds, virtual page → shadow PTE holding a *machine* frame (``shadow``);
* where to go on an exit: the handler's entry point, the VMCS *host RIP* (``host_rip``).
  A paravirtualized guest has no VMCS at all: it runs deprivileged and Xen owns the interrupt
  table, so its faults (#GP for an I/O instruction it may not execute, #PF) trap to
  ``trap_entry`` and its hypercalls to ``hypercall_entry``; ``paravirtual`` says which.

On an exit the CPU writes the exit fields below (the real field names: VMX exit reason, exit
qualification, VM-exit instruction length, interruption information and error code; SVM
EXITCODE, EXITINFO1, EXITINFO2), then calls ``host_rip(vcpu)``. The handler reads them back,
as Xen's ``vmx_vmexit_handler`` does with VMREAD, and returns what the emulated instruction
produced (or ``RETRY`` to run the instruction again).
Sources: hardware-facts.md §1.2-1.3 (VMX), §2.2-2.3 (SVM); Intel SDM vol. 3C "VM-Exit
Information Fields"; AMD64 APM vol. 2 §15.10 and appendix C.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..errors import ConfigError
from .iobitmap import SvmIopm, VmxIoBitmaps

VENDORS = ("vmx", "svm")

#: What an exit handler returns when the instruction must run again (the hypervisor fixed the
#: cause of the exit, e.g. filled a shadow entry, and the guest never notices).
RETRY = object()
#: What the #PF handler returns for a ``Probe`` of a page that is emulated (MMIO).
EMULATED_PAGE = object()


class Probe(NamedTuple):
    """The instruction the CPU reports while it checks one page of an access that crosses a
    page boundary, or of a block move, before it moves any byte: the handler resolves the
    fault (fills the shadow, or injects a #PF) but emulates nothing, answering
    ``EMULATED_PAGE`` for an MMIO page."""

    addr: int
    write: bool


class ControlBlock:
    """One vCPU's VMCS (``vendor="vmx"``) or VMCB (``"svm"``), or a PV vCPU's trap table."""

    __slots__ = (
        "vendor",
        "paravirtual",
        "io_intercepts",
        "shadow",
        "host_rip",
        "hypercall_entry",
        "trap_entry",
        # VMX exit information fields
        "exit_reason",
        "exit_qualification",
        "instruction_len",
        "intr_info",
        "intr_error_code",
        # SVM exit information fields
        "exitcode",
        "exitinfo1",
        "exitinfo2",
    )

    def __init__(
        self,
        vendor: str,
        io_intercepts: VmxIoBitmaps | SvmIopm,
        shadow: dict[int, int],
        host_rip: Callable[[Any], Any],
        hypercall_entry: Callable[[Any], Any],
        trap_entry: Callable[..., Any] | None = None,
        paravirtual: bool = False,
    ) -> None:
        if vendor not in VENDORS:
            raise ConfigError(f"vendor {vendor!r} is not one of {VENDORS}")
        wanted = VmxIoBitmaps if vendor == "vmx" else SvmIopm
        if not isinstance(io_intercepts, wanted):
            raise ConfigError(f"a {vendor} control block needs {wanted.__name__} intercepts")
        self.vendor = vendor
        self.paravirtual = paravirtual
        self.io_intercepts = io_intercepts
        self.shadow = shadow
        self.host_rip = host_rip
        self.hypercall_entry = hypercall_entry
        self.trap_entry = trap_entry
        self.exit_reason = self.exit_qualification = self.instruction_len = 0
        self.intr_info = self.intr_error_code = 0
        self.exitcode = self.exitinfo1 = self.exitinfo2 = 0
