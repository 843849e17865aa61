"""A long, mixed, seeded workload: the equivalence test's yardstick for the exit path.

Two machines (one per vendor), each with an HVM domain (emulated COM1, paced and unpaced,
and the VGA window; guest paging on) and a PV domain, run random port I/O (every size, REP
string forms, trapped and direct), RAM and MMIO loads and stores, caught page faults and
console hypercalls, interleaved by the round-robin scheduler. ``fingerprint()`` reduces what
happened to the trace (one line per event), the clock, the vCPUs' registers and every
device's state. tests/data/exit_path_reference.json holds what the code produced before the
exit path was rewritten for speed (issue 7); test_exit_path_equivalence.py compares.

Page-crossing accesses are left out on purpose: their semantics were changed deliberately
(an access that faults on its second page writes nothing, as on x86).
Only names exported by ``vmmlib`` (and the UART and VGA modules, found either at their
original or at their layered home) are used, so the workload runs on both versions.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random

import vmmlib
from vmmlib import (
    MIB,
    Hypercall,
    In,
    Ins,
    Load,
    Machine,
    Out,
    Outs,
    PageFault,
    PageTable,
    Store,
    Vcpu,
)


def _module(*names: str):
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(names)


uart = _module("vmmlib.devices.uart16550", "vmmlib.uart16550")
vga = _module("vmmlib.devices.vga_text", "vmmlib.vga_text")
sched = _module("vmmlib.xen.scheduler", "vmmlib.scheduler")

COM1, COM2 = 0x3F8, 0x2F8
VGA_PAGE_V = 0x7000_0000  # guest-virtual page mapped to the text buffer
RAM_V = 0x4000_0000  # guest-virtual RAM pages
UNMAPPED_V = 0x5000_0000


def _hvm_guest(rng: random.Random, n: int):
    for _ in range(n):
        r = rng.random()
        if r < 0.30:  # single IN/OUT to an emulated UART, any size that fits its 8 ports
            base = rng.choice((COM1, COM2))
            size = rng.choice((1, 1, 1, 2, 4))
            port = base + rng.randrange(0, 9 - size)
            if rng.random() < 0.5:
                yield In(port, size)
            else:
                yield Out(port, size, rng.randrange(1 << (8 * size)))
        elif r < 0.36:  # REP string I/O
            size = rng.choice((1, 2))
            port = rng.choice((COM1 + 7, COM2 + 7, COM1)) if size == 1 else COM1 + 6
            count = rng.randrange(1, 40)
            if rng.random() < 0.5:
                yield Ins(port, size, count)
            else:
                yield Outs(port, size, [rng.randrange(1 << (8 * size)) for _ in range(count)])
        elif r < 0.42:  # direct port I/O (I/O delay ports) and an unclaimed trapped port
            port = rng.choice((0x80, 0xED, 0x1234))
            if rng.random() < 0.5:
                yield Out(port, 1, rng.randrange(256))
            else:
                yield In(port, 1)
        elif r < 0.62:  # RAM, through the guest's page table
            size = rng.choice((1, 2, 4, 8))
            addr = RAM_V + rng.randrange(4) * 0x1000 + rng.randrange(0, 4097 - size)
            if rng.random() < 0.5:
                yield Store(addr, size, rng.randrange(1 << (8 * size)))
            else:
                yield Load(addr, size)
        elif r < 0.80:  # MMIO to the VGA text buffer
            size = rng.choice((1, 2, 4))
            addr = VGA_PAGE_V + rng.randrange(0, 4097 - size)
            if rng.random() < 0.6:
                yield Store(addr, size, rng.randrange(1 << (8 * size)))
            else:
                yield Load(addr, size)
        elif r < 0.85:  # a page fault the guest handles
            try:
                yield Load(UNMAPPED_V + rng.randrange(0x1000), 4)
            except PageFault:
                pass
        else:  # a hypercall from an HVM guest (console write)
            yield Hypercall(18, (0, bytes(rng.randrange(256) for _ in range(rng.randrange(8)))))


def _pv_guest(rng: random.Random, n: int):
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            text = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(12)))
            yield Hypercall(18, (0, text))
        elif r < 0.6:
            yield Hypercall(rng.choice((18, 99)), (7,))  # unknown command / hypercall
        else:
            size = rng.choice((1, 2, 4, 8))
            addr = 0x2000 + rng.randrange(0, 4097 - size)
            if rng.random() < 0.5:
                yield Store(addr, size, rng.randrange(1 << (8 * size)))
            else:
                yield Load(addr, size)


def build(vendor: str, seed: int, n: int):
    rng = random.Random(seed)
    machine = Machine(64 * MIB)
    hvm = machine.add_domain("hvm", 16 * MIB, base=16 * MIB, vendor=vendor)
    com1 = uart.Uart16550(machine.clock, "COM1", paced=False)
    com2 = uart.Uart16550(machine.clock, "COM2", paced=True)
    hvm.emulate_ports(COM1, 8, com1, "COM1")
    hvm.emulate_ports(COM2, 8, com2, "COM2")
    hvm.emulate_mmio(vga.VGA_WINDOW_BASE, vga.VGA_WINDOW_SIZE,
                     vga.VgaTextBuffer(base=vga.VGA_WINDOW_BASE), "VGA")
    table = PageTable()
    table.map(VGA_PAGE_V, 0xB8000)
    for i in range(4):
        table.map(RAM_V + i * 0x1000, 0x100000 + i * 0x3000)
    hvm.page_table = table
    pv = machine.add_domain("pv", 8 * MIB, kind="pv", vendor=vendor)
    vcpus = [Vcpu(hvm, _hvm_guest(random.Random(rng.random()), n)),
             Vcpu(pv, _pv_guest(random.Random(rng.random()), n // 4))]
    scheduler = sched.RoundRobin(vcpus, quantum=7)
    return machine, vcpus, scheduler, (com1, com2)


def _state(machine, vcpus, uarts) -> dict:
    pages = {str(frame): hashlib.sha256(page.tobytes()).hexdigest()[:16]
             for frame, page in sorted(machine.memory.pages.items())}
    vga_dev = machine.domains[0].mmio.find(0xB8000).device
    return {
        "clock": machine.clock.now,
        "events": len(machine.trace),
        "console": bytes(machine.console).hex(),
        "vcpus": [(v.rip, v.rax, v.steps, v.done, v.crashed is None) for v in vcpus],
        "uarts": [(u.registers(), u.output.hex(), u.tx_lost, u.rx_lost) for u in uarts],
        "vga": hashlib.sha256(bytes(vga_dev.vram)).hexdigest(),
        "ram": pages,
    }


def trace_lines(machine) -> list[str]:
    return [str(event) for event in machine.trace]


def fingerprint(seed: int = 2006, n: int = 6000) -> dict:
    """Run the workload on both vendors; the digest of each run's trace, and its state."""
    out = {}
    for vendor in ("vmx", "svm"):
        machine, vcpus, scheduler, uarts = build(vendor, seed, n)
        scheduler.run(max_steps=10 * n)
        lines = trace_lines(machine)
        out[vendor] = {
            "trace_sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
            "state": _state(machine, vcpus, uarts),
        }
    return out


if __name__ == "__main__":
    print(json.dumps(fingerprint(), indent=1, sort_keys=True))
    print(vmmlib.__file__)
