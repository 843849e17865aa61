"""Chapter 01's scenarios: the machines the intercepts notebook steps through.

Each function builds a fresh machine, a domain, its devices and a vCPU running a guest
program, and returns the vCPU (``vcpu.machine``, ``vcpu.domain`` reach the rest). Calling it
twice gives two identical worlds, which is what the stepping widget relies on to step back.
"""

from __future__ import annotations

from ..cpu.ops import Guest, Load, Store
from ..cpu.paging import PageTable
from ..devices.uart16550 import COM1_BASE, UART_PORTS, Uart16550
from ..devices.vga_text import TEXT_BASE, VGA_WINDOW_BASE, VGA_WINDOW_SIZE, VgaTextBuffer
from ..errors import PageFault
from ..guest.pv_console import pv_console_write
from ..guest.uart import XV6_POLLS, serial_hello
from ..guest.vga import vga_puts
from ..hw.memory import MIB
from ..xen.machine import Machine
from ..xen.vcpu import Vcpu

GUEST_RAM = 256 * MIB
GUEST_BASE = 256 * MIB  # the thread's example: guest RAM 0-256 MiB lives at 256-512 MiB


def hvm_machine(vendor: str = "vmx", paced: bool = False) -> Machine:
    """A 512 MiB machine with one HVM domain ("hvm") whose COM1 and VGA text are emulated.

    COM1 behaves like QEMU's emulated 16550: its IRQ line follows the chip's INTR whatever
    MCR.OUT2 says (``out2_gates_irq=False``), which is why xv6, which leaves MCR = 0, gets
    its receive interrupts. ``paced=False`` makes it send at once, as QEMU's does;
    ``paced=True`` makes it take its real frame time on the wire.
    """
    machine = Machine(512 * MIB)
    dom = machine.add_domain("hvm", GUEST_RAM, base=GUEST_BASE, vendor=vendor)
    com1 = Uart16550(machine.clock, paced=paced, out2_gates_irq=False)
    dom.emulate_ports(COM1_BASE, UART_PORTS, com1, "COM1")
    vga = VgaTextBuffer(base=VGA_WINDOW_BASE)
    dom.emulate_mmio(VGA_WINDOW_BASE, VGA_WINDOW_SIZE, vga, "VGA")
    return machine


def hello_serial(
    text: str = "Hello\n",
    vendor: str = "vmx",
    paced: bool = False,
    max_polls: int | None = XV6_POLLS,
) -> Vcpu:
    """An HVM guest initialises COM1 as xv6 does (9600 baud) and prints ``text`` on it with
    xv6's ``uartputc`` (at most ``max_polls`` LSR polls a character): trapped port I/O."""
    dom = hvm_machine(vendor, paced).domains[0]
    return Vcpu(dom, serial_hello(text, max_polls=max_polls))


def hello_vga(text: str = "Hello", vendor: str = "vmx") -> Vcpu:
    """An HVM guest writes ``text`` into the VGA text buffer: MMIO through not-present pages."""
    dom = hvm_machine(vendor).domains[0]
    return Vcpu(dom, vga_puts(text))


def hello_pv(text: str = "Hello\n", privileged: bool = True) -> Vcpu:
    """A paravirtualized guest asks Xen to print ``text``: the text goes into its memory, then
    one hypercall, no trap. Xen's default policy lets only the control domain print on its
    console, so the guest is dom0 (``privileged=False``: an ordinary domU, refused -EPERM)."""
    machine = Machine(512 * MIB)
    name = "dom0" if privileged else "pv"
    dom = machine.add_domain(name, GUEST_RAM, base=GUEST_BASE, kind="pv", privileged=privileged)
    return Vcpu(dom, pv_console_write(text))


#: Kernel virtual addresses of the three-faults guest.
KERNEL_VGA, KERNEL_RAM, UNMAPPED = 0xC00B8000, 0xC0100000, 0xC0200000


def kernel_page_table() -> PageTable:
    """A guest kernel's page table: the text buffer and a page of RAM mapped, nothing else."""
    table = PageTable()
    table.map(KERNEL_VGA, 0xB8000)  # the kernel's mapping of the VGA text buffer
    table.map(KERNEL_RAM, 0x100000)  # a page of ordinary RAM
    return table  # UNMAPPED stays unmapped


def three_accesses() -> Guest:
    """A store to MMIO, a store to RAM and a load from an unmapped page, whose #PF the
    guest's own handler catches (and reports through its return value)."""
    yield Store(KERNEL_VGA, 2, 0x0748)  # 'H', light grey on black
    yield Store(KERNEL_RAM, 4, 42)
    try:
        yield Load(UNMAPPED, 4)
    except PageFault as fault:
        return fault
    return None


def three_faults(vendor: str = "vmx") -> Vcpu:
    """An HVM guest with paging on makes the three kinds of shadow #PF: MMIO (emulated),
    not-yet-shadowed RAM (filled and retried) and a real page fault (injected)."""
    dom = hvm_machine(vendor).domains[0]
    dom.page_table = kernel_page_table()
    return Vcpu(dom, three_accesses())


def uart_of(vcpu: Vcpu) -> Uart16550:
    """The emulated COM1 of a scenario's domain."""
    return vcpu.domain.ports.find(COM1_BASE).device  # type: ignore[union-attr,return-value]


def vga_of(vcpu: Vcpu) -> VgaTextBuffer:
    """The emulated VGA text buffer of a scenario's domain."""
    return vcpu.domain.mmio.find(TEXT_BASE).device  # type: ignore[union-attr,return-value]
