"""The control structure the hypervisor fills in for each vCPU: Intel's VMCS, AMD's VMCB.

A CPU running a guest in VMX non-root mode (or under SVM) knows only what this structure tells
it, and the CPU layer of vmmlib knows no more:

* which port accesses exit: the I/O bitmaps A and B (VMX) or the I/O permissions map (SVM),
  ``io_intercepts``;
* the page table the CPU walks for the guest's memory accesses: here the **shadow** table the
  hypervisor builds, virtual page → shadow PTE holding a *machine* frame (``shadow``);
* where to go on an exit: the handler's entry point, the VMCS *host RIP* (``host_rip``);
  a paravirtualized guest has no VMCS, but its hypercalls trap to ``hypercall_entry``.

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
from typing import Any

from ..errors import ConfigError
from .iobitmap import SvmIopm, VmxIoBitmaps

VENDORS = ("vmx", "svm")

#: What an exit handler returns when the instruction must run again (the hypervisor fixed the
#: cause of the exit, e.g. filled a shadow entry, and the guest never notices).
RETRY = object()


class ControlBlock:
    """One vCPU's VMCS (``vendor="vmx"``) or VMCB (``"svm"``), or a PV vCPU's trap table."""

    __slots__ = (
        "vendor",
        "paravirtual",
        "io_intercepts",
        "shadow",
        "host_rip",
        "hypercall_entry",
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
        self.exit_reason = self.exit_qualification = self.instruction_len = 0
        self.intr_info = self.intr_error_code = 0
        self.exitcode = self.exitinfo1 = self.exitinfo2 = 0
