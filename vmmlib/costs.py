"""How much virtual time each hop costs.

The simulator never reads a wall clock: every actor advances the virtual clock by one of
these constants. They are round numbers of the right order of magnitude, chosen so the
course's comparisons (a trapped access vs a direct one vs a hypercall) come out in the
proportions measured on real machines. ``SOURCES`` says where each figure comes from. Every
figure is an **estimate**: where a source gives a number, the source's number is quoted
(with where to find it) and the step from it to ours is said; the others give their
reasoning. Students should not be tested on the exact values.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, fields

from .errors import ConfigError


@dataclass(frozen=True)
class CostModel:
    """Virtual-time costs in nanoseconds."""

    ram_access_ns: int = 1
    native_port_io_ns: int = 1_000
    vm_exit_ns: int = 250
    vm_entry_ns: int = 250
    decode_ns: int = 100
    emulate_ns: int = 200
    shadow_walk_ns: int = 300
    hypercall_ns: int = 300
    inject_ns: int = 100
    # the device model in dom0 (chapter 02)
    ioreq_send_ns: int = 300
    dom0_wakeup_ns: int = 8_000
    qemu_ioreq_ns: int = 1_500
    vcpu_wakeup_ns: int = 2_000
    # split drivers (chapter 03)
    blkback_request_ns: int = 1_000
    grant_map_ns: int = 500
    grant_unmap_ns: int = 700

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value.__class__ is not int or value < 0:
                raise ConfigError(
                    f"cost {f.name} is a whole number of nanoseconds >= 0, not {value!r} "
                    "(virtual time never goes backwards)"
                )

    @property
    def exit_round_trip_ns(self) -> int:
        """A VM exit plus the VM entry back into the guest."""
        return self.vm_exit_ns + self.vm_entry_ns

    def table(self, chapter: int | None = None) -> list[tuple[str, int, str]]:
        """(name, ns, source) for every constant (or those chapter ``chapter`` adds)."""
        return [(f.name, getattr(self, f.name), SOURCES[f.name]) for f in fields(self)
                if chapter is None or CHAPTERS[f.name] == chapter]

    def report(self, width: int = 96, chapter: int | None = None) -> str:
        """The table as text for a notebook: name, value, and the source wrapped to ``width``;
        only the constants chapter ``chapter`` adds, if given."""
        lines = []
        for name, ns, source in self.table(chapter):
            head = f"{name:<18} {ns:>6,} ns  "
            body = textwrap.wrap(source, max(20, width - len(head)))
            lines.append(head + body[0])
            lines += [" " * len(head) + more for more in body[1:]]
        return "\n".join(lines)


#: The chapter that adds each constant (what its notebook prints).
CHAPTERS = {
    **dict.fromkeys(("ram_access_ns", "native_port_io_ns", "vm_exit_ns", "vm_entry_ns",
                     "decode_ns", "emulate_ns", "shadow_walk_ns", "hypercall_ns", "inject_ns"),
                    1),
    **dict.fromkeys(("ioreq_send_ns", "dom0_wakeup_ns", "qemu_ioreq_ns", "vcpu_wakeup_ns"), 2),
    **dict.fromkeys(("blkback_request_ns", "grant_map_ns", "grant_unmap_ns"), 3),
}

SOURCES = {
    "ram_access_ns": (
        "estimate: a cached load or store takes a few CPU cycles, about 1 ns at a few GHz"
    ),
    "native_port_io_ns": (
        "estimate under a quoted bound: Linux's I/O-delay code says '2 usecs is an upper-bound "
        "for the outb delay' (a write to port 0x80, arch/x86/kernel/io_delay.c, "
        "native_io_delay); we take 1 us for one port access on the legacy bus"
    ),
    "vm_exit_ns": (
        "estimate from a measurement in cycles: 1,344-1,376 cycles from just before VMRUN "
        "to just after it on an AMD host (LKML, Dec 2020, thread on KVM: SVM saving host state "
        "with VMLOAD/VMSAVE, lkml.iu.edu/hypermail/linux/kernel/2012.2/00527.html); the source "
        "gives no clock rate: at an assumed 2.7 GHz that is 500 ns for exit plus entry, "
        "split evenly"
    ),
    "vm_entry_ns": "estimate: the other half of the same round trip (see vm_exit_ns)",
    "decode_ns": "estimate: reading the exit fields and dispatching on the exit reason",
    "emulate_ns": "estimate: updating the state of a simple emulated register",
    "shadow_walk_ns": "estimate: walking the guest page table on a shadow #PF",
    "hypercall_ns": (
        "estimate: a trap into the hypervisor and back, of the order of an exit round trip"
    ),
    "inject_ns": "estimate: queueing an exception for the next VM entry",
    "ioreq_send_ns": (
        "estimate: Xen fills the 32-byte ioreq slot and sets an event-channel bit"
    ),
    "dom0_wakeup_ns": (
        "estimate: from the event channel firing to qemu-dm running in dom0 - dom0's vCPU is "
        "scheduled, its kernel takes the upcall and wakes the process blocked in select(): a "
        "context switch into another domain plus one into a user process, each a few "
        "microseconds on 2006 hardware; the Xen 3.3 release notes name this scheduling delay "
        "as why an HVM guest's I/O performance was uneven with qemu-dm in dom0"
    ),
    "qemu_ioreq_ns": (
        "estimate: qemu-dm reads the slot, dispatches to the emulated device and answers: "
        "a few thousand instructions of user-space code"
    ),
    "vcpu_wakeup_ns": (
        "estimate: Xen sees the response, unblocks the HVM vCPU and schedules it again"
    ),
    "blkback_request_ns": (
        "estimate: blkback copies a request out of the ring, checks it and builds the bio "
        "for the disk: a few thousand instructions in dom0's kernel"
    ),
    "grant_map_ns": (
        "estimate, per segment: Xen checks the grant entry, pins it and writes a PTE in dom0's "
        "page table (one GNTTABOP_map_grant_ref hypercall maps a request's segments in a batch)"
    ),
    "grant_unmap_ns": (
        "estimate, per segment: the PTE is cleared and the TLB flushed, which makes an unmap "
        "dearer than a map (the reason Linux blkback added persistent grants in 3.8)"
    ),
}
