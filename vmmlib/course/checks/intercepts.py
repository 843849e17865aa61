"""Checks for chapter 01, "Intercepts" (solutions/01-intercepts-exercises.ipynb).

Each case list covers the boundaries of its rule, not only the rule: port 0 and address 0,
the first port or address after a region, regions that are not page-aligned or smaller than a
page, non-zero page offsets, flag bits set in page-table entries, the A/B bitmap boundary and
the end of the port space; answers are compared type-strictly (``True`` is not ``1``). Every
input is one real hardware can produce: no size field 2, no reserved bits, an immediate port
only for IN/OUT (never INS/OUTS) and only up to 0xFF, and a REP prefix only on a string
instruction (the SDM reserves REP on a plain IN/OUT, and what bit 5 then says is unconfirmed,
so students are not tested on it; OUTSB, a string instruction without REP, still catches
answers that mix up bits 4 and 5). A seeded random part on top catches answers tuned to the
listed cases. Expected answers come from the core's reference implementation, which its unit
tests pin to the Intel SDM and AMD APM (shared/reference/hardware-facts.md sections 1-2).
"""

from __future__ import annotations

import functools
import random

from vmmlib import MemoryBus, PageTable, SvmIopm, VmxIoBitmaps, classify_fault

# The one place naming a core module: names `import vmmlib` does not export.
from vmmlib.cpu.exits import PortAccess, decode_vmx_io_qualification, vmx_io_qualification

from . import Case, Chapter, Question

SEED = 2006  # the random cases: the same on every run and on both sides of the grader

# --- q1: does this access exit? -------------------------------------------------------------
ANY_PORT = "an access of s bytes touches ports p ... p+s-1; it exits if ANY of their bits is 1"
WRAP = ("an access that runs past port 0xFFFF (p + s - 1 > 0xFFFF) always exits on VMX, "
        "whatever the bits say; one that ends at 0xFFFF does not wrap")
B_OFFSET = "bitmap B starts at port 0x8000: port p is bit (p - 0x8000) % 8 of byte " \
           "(p - 0x8000) // 8 of B"
BIT_ORDER = "port p is bit p % 8 (counting from the least significant bit) of byte p // 8"
PASS = "a clear bit means the guest reaches the port directly: no exit"
AFTER = "the region ends at its last port: the next port's bit is its own (here clear)"

#: Bitmap worlds: which ports are intercepted (ranges, inclusive), or Xen's default map.
WORLDS: dict[str, tuple[tuple[int, int], ...] | str] = {
    "port 0x0000 only": ((0x0000, 0x0000),),
    "COM1 0x3F8-0x3FF": ((0x3F8, 0x3FF),),
    "port 0x61 only": ((0x61, 0x61),),
    "port 0x1F1 only": ((0x1F1, 0x1F1),),
    "port 0x7FFF only": ((0x7FFF, 0x7FFF),),
    "port 0x8000 only": ((0x8000, 0x8000),),
    "port 0xFFF1 only": ((0xFFF1, 0xFFF1),),
    "nothing": (),
    "Xen's default": "xen",
    "random": "random",
}

Q1_PLAN: tuple[tuple[str, int, int, str], ...] = (
    ("port 0x0000 only", 0x0000, 1, BIT_ORDER),
    ("port 0x0000 only", 0x0001, 1, PASS),
    ("COM1 0x3F8-0x3FF", 0x3F8, 1, BIT_ORDER),
    ("COM1 0x3F8-0x3FF", 0x3FF, 1, BIT_ORDER),
    ("COM1 0x3F8-0x3FF", 0x400, 1, AFTER),
    ("COM1 0x3F8-0x3FF", 0x3F7, 1, PASS),
    ("port 0x61 only", 0x61, 1, BIT_ORDER),
    ("port 0x61 only", 0x66, 1, BIT_ORDER),
    ("port 0x1F1 only", 0x1F0, 1, PASS),
    ("nothing", 0xFFFF, 1, WRAP),
    ("port 0x7FFF only", 0x7FFF, 1, BIT_ORDER),
    ("port 0x7FFF only", 0x8000, 1, B_OFFSET),
    ("port 0x7FFF only", 0xFFFF, 1, B_OFFSET),
    ("port 0x8000 only", 0x8000, 1, B_OFFSET),
    ("port 0x8000 only", 0x0000, 1, B_OFFSET),
    ("port 0x8000 only", 0x7FFF, 1, PASS),
    ("port 0x8000 only", 0x8001, 1, B_OFFSET),
    ("port 0xFFF1 only", 0xFFF1, 1, B_OFFSET),
    ("port 0xFFF1 only", 0xFFF0, 1, BIT_ORDER),
    ("port 0xFFF1 only", 0x7FF1, 1, B_OFFSET),
    ("Xen's default", 0x80, 1, PASS),
    ("Xen's default", 0xED, 1, PASS),
    ("Xen's default", 0x3F8, 1, BIT_ORDER),
    ("port 0x0000 only", 0x0000, 2, ANY_PORT),
    ("COM1 0x3F8-0x3FF", 0x3F6, 2, ANY_PORT),
    ("COM1 0x3F8-0x3FF", 0x3F7, 2, ANY_PORT),
    ("COM1 0x3F8-0x3FF", 0x3FF, 2, ANY_PORT),
    ("COM1 0x3F8-0x3FF", 0x3F4, 4, ANY_PORT),
    ("COM1 0x3F8-0x3FF", 0x3F5, 4, ANY_PORT),
    ("COM1 0x3F8-0x3FF", 0x400, 4, AFTER),
    ("port 0x61 only", 0x60, 2, ANY_PORT),
    ("port 0x61 only", 0x62, 2, ANY_PORT),
    ("port 0x1F1 only", 0x1F0, 4, ANY_PORT),
    ("port 0x1F1 only", 0x1F2, 2, ANY_PORT),
    ("port 0x7FFF only", 0x7FFE, 2, ANY_PORT),
    ("port 0x8000 only", 0x7FFE, 2, ANY_PORT),
    ("port 0x8000 only", 0x7FFF, 2, ANY_PORT),
    ("port 0x8000 only", 0x7FFE, 4, ANY_PORT),
    ("port 0xFFF1 only", 0xFFEE, 4, ANY_PORT),
    ("Xen's default", 0x80, 2, ANY_PORT),
    ("Xen's default", 0x7F, 2, ANY_PORT),
    ("nothing", 0x0000, 4, PASS),
    ("nothing", 0xFFFE, 2, WRAP),
    ("nothing", 0xFFFC, 4, WRAP),
    ("nothing", 0xFFFF, 2, WRAP),
    ("nothing", 0xFFFD, 4, WRAP),
    ("port 0x0000 only", 0xFFFF, 4, WRAP),
)


def _random_ports() -> tuple[int, ...]:
    rng = random.Random(SEED)
    return tuple(sorted(rng.sample(range(0x10000), 1200)))


@functools.cache
def bitmap_bytes(world: str) -> tuple[bytes, bytes]:
    """I/O bitmaps A and B of ``world``, built from the rule in the exercise (bit p % 8 of
    byte p // 8 of the linear 8 KiB map); a unit test pins them to the core's layout."""
    spec = WORLDS[world]
    bits = bytearray(b"\xff" * 0x2000 if spec == "xen" else 0x2000)
    if spec == "xen":
        for port in (0x80, 0xED):  # the I/O-delay ports Xen lets every HVM guest use
            bits[port // 8] &= ~(1 << port % 8) & 0xFF
    ports = _random_ports() if spec == "random" else [
        p for first, last in (() if spec == "xen" else spec) for p in range(first, last + 1)]
    for port in ports:
        bits[port // 8] |= 1 << port % 8
    return bytes(bits[:0x1000]), bytes(bits[0x1000:])


def vmx_exit_cases() -> list[Case]:
    """q1's cases: single ports first, then multi-byte accesses, then the wrap rule, then the
    seeded random part, so that the first case an answer gets wrong names the rule it breaks."""
    cases = [Case(f"{world} intercepted, {size}-byte access at {port:#06x}",
                  (world, port, size), rule) for world, port, size, rule in Q1_PLAN]
    rng = random.Random(SEED + 1)
    ports = _random_ports()
    for n in range(16):
        size = rng.choice((1, 2, 4))
        if n % 2:  # one of the ports it touches may be intercepted
            port = max(0, rng.choice(ports) - rng.randrange(size))
        else:
            port = rng.randrange(0x10000 - size + 1)
        cases.append(Case(f"a random map (seed {SEED}), {size}-byte access at {port:#06x}",
                          ("random", port, size), ANY_PORT))
    return cases


def bitmap_arguments(world: str, port: int, size: int) -> tuple[bytes, bytes, int, int]:
    a, b = bitmap_bytes(world)
    return a, b, port, size


@functools.lru_cache(maxsize=64)
def _core_bitmaps(a: bytes, b: bytes) -> VmxIoBitmaps:
    """The core's VmxIoBitmaps with exactly these bits set (through its public API)."""
    bitmaps = VmxIoBitmaps()
    bits = a + b
    port = 0
    while port < 0x10000:
        if bits[port // 8] >> port % 8 & 1:
            last = port
            while last + 1 < 0x10000 and bits[(last + 1) // 8] >> (last + 1) % 8 & 1:
                last += 1
            bitmaps.intercept(port, last)
            port = last
        port += 1
    return bitmaps


def reference_exits(a: bytes, b: bytes, port: int, size: int) -> bool:
    return _core_bitmaps(a, b).exits(port, size)


Q1 = Question(
    label="q1", function="vmx_exits", cases=vmx_exit_cases, build=bitmap_arguments,
    reference=reference_exits,
    # exits() answers q1, and so do the exit lookup tables the bitmaps keep equal to their bits
    withholds=(VmxIoBitmaps.exits, SvmIopm.exits, VmxIoBitmaps._rebuild, SvmIopm._rebuild,
               VmxIoBitmaps._any_of),
)

# --- q2: decode an exit qualification ---------------------------------------------------------
QUALIFICATION_HINTS = {
    "port": "the port is bits 31:16 (16 bits): (q >> 16) & 0xFFFF",
    "size": "bits 2:0 hold the size MINUS ONE (0 = 1 byte, 1 = 2 bytes, 3 = 4 bytes)",
    "direction": 'bit 3 is 1 for IN ("in"), 0 for OUT ("out")',
    "string": "bit 4 = string instruction (INS/OUTS), bit 5 = REP prefix; each is a bool",
    "rep": "bit 4 = string instruction (INS/OUTS), bit 5 = REP prefix; each is a bool",
}
KEYS = ("port", "size", "direction", "string", "rep")
DECODE = "decode each field from its own bits, as the table in the question shows"

#: (port, size, is_in, string, rep, imm, what the instruction is)
Q2_ACCESSES = (
    (0x0000, 1, False, False, False, False, "OUT DX, AL to port 0 (DMA channel 0)"),
    (0x03F8, 1, False, False, False, False, "OUT DX, AL to COM1's data register"),
    (0x03FD, 1, True, False, False, False, "IN AL, DX from COM1's line status"),
    (0x0060, 1, True, False, False, True, "IN AL, 0x60 (keyboard data, immediate port)"),
    (0x0080, 1, False, False, False, True, "OUT 0x80, AL (POST code, immediate port)"),
    (0x00FF, 1, True, False, False, True, "IN AL, 0xFF (the largest immediate port)"),
    (0x0040, 4, True, False, False, True, "IN EAX, 0x40 (immediate port, 4 bytes)"),
    (0x01F0, 2, True, False, False, False, "IN AX, DX from the IDE data register"),
    (0x01CE, 2, False, False, False, False, "OUT DX, AX to the Bochs VBE index port"),
    (0x0CF8, 4, False, False, False, False, "OUT DX, EAX to PCI CONFIG_ADDRESS"),
    (0x0CFC, 4, True, False, False, False, "IN EAX, DX from PCI CONFIG_DATA"),
    (0x8000, 2, False, False, False, False, "OUT DX, AX to port 0x8000 (bit 31 of q set)"),
    (0xFFFF, 4, True, False, False, False, "IN EAX, DX at port 0xFFFF (wraps, so it exits)"),
    (0x03F8, 1, False, True, False, False, "OUTSB to COM1: string, no REP"),
    (0x03F8, 1, True, True, False, False, "INSB from COM1: string, no REP"),
    (0x01F0, 2, True, True, True, False, "REP INSW from the IDE data register"),
    (0x01F0, 2, False, True, True, False, "REP OUTSW to the IDE data register"),
    (0xC000, 4, True, True, True, False, "REP INSD from a PCI I/O BAR at 0xC000"),
)


def _random_accesses() -> list[tuple[int, int, bool, bool, bool, bool, str]]:
    rng = random.Random(SEED + 2)
    found = []
    for _ in range(12):
        string = rng.random() < 0.4
        rep = string and rng.random() < 0.6  # REP only on INS/OUTS
        imm = not string and rng.random() < 0.3  # an immediate port is 8 bits, never INS/OUTS
        port = rng.randrange(0x100) if imm else rng.randrange(0x10000)
        found.append((port, rng.choice((1, 2, 4)), rng.random() < 0.5, string, rep, imm,
                      "a random instruction"))
    return found


def qualification_cases() -> list[Case]:
    cases = []
    for port, size, is_in, string, rep, imm, what in Q2_ACCESSES + tuple(_random_accesses()):
        q = vmx_io_qualification(PortAccess(port, size, is_in, string, rep, imm))
        cases.append(Case(f"qualification {q:#x} ({what})", (q,), DECODE))
    return cases


def reference_decode(q: int) -> dict:
    access = decode_vmx_io_qualification(q)
    return {"port": access.port, "size": access.size,
            "direction": "in" if access.is_in else "out",
            "string": access.string, "rep": access.rep}


def qualification_hint(case: Case, expected: object, got: object) -> str | None:
    """Name the first field the answer got wrong."""
    if not isinstance(got, dict) or sorted(got) != sorted(KEYS):
        return f"return a dict with exactly the keys {list(KEYS)}"
    assert isinstance(expected, dict)
    for key in KEYS:
        if got[key] != expected[key]:
            return QUALIFICATION_HINTS[key]
        if type(got[key]) is not type(expected[key]):
            return (f"{key!r} must be a {type(expected[key]).__name__} "
                    f"({expected[key]!r}), not {got[key]!r}")
    return None


Q2 = Question(
    label="q2", function="decode_qualification", cases=qualification_cases,
    reference=reference_decode, withholds=(decode_vmx_io_qualification,),
    hint=qualification_hint,
)

# --- q3: MMIO, page fault, or neither? --------------------------------------------------------
VGA = (0xB8000, 0x8000)  # the VGA text buffer: page-aligned, eight pages
HPET = (0xFED00000, 0x400)  # an HPET-like block: 1 KiB, smaller than a page
BAR = (0xFEBF0100, 0x100)  # a 256-byte PCI memory BAR: not page-aligned
PTE_ACCESSED, PTE_DIRTY, PTE_NX = 1 << 5, 1 << 6, 1 << 63

PAGE_FAULT = "the guest's own entry is not present: a real #PF for the guest to handle"
TRANSLATE = "translate with the guest's table first, then look up the guest-physical address"
RAM = "RAM that the shadow had not mapped yet is neither MMIO nor a #PF: fill it and retry"
PHYS = "with paging off the address IS guest-physical: look it up on the MMIO bus"
EDGE = ("a region covers base ... base + length - 1, whatever its size or alignment: the next "
        "address is outside it, even in the same page")
OFFSET = "the guest-physical address keeps the page offset: frame address + (vaddr & 0xFFF)"
WRITE = "the guest's table forbids the write: the guest gets the #PF before any emulation"
READ_ONLY = "reading through a read-only entry is allowed: this is MMIO"
VIRTUAL = "classify by the GUEST-PHYSICAL address the guest's table gives, not the virtual one"
FLAGS = ("an entry's flag bits (accessed, dirty, NX in bit 63) are not part of the frame "
         "address: the frame is bits 51:12")
PRESENT = ("a not-present entry may still hold old frame bits: without the P bit it maps "
           "nothing, so this is a #PF")


class _Silent:
    """A device that ignores accesses (the check only asks who claims an address)."""

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        pass


def guest_world(paging: bool) -> tuple[PageTable | None, MemoryBus]:
    """A fresh guest: its page table (None with paging off) and its emulated MMIO ranges."""
    mmio = MemoryBus("guest MMIO")
    for (base, length), name in ((VGA, "VGA text"), (HPET, "HPET"), (BAR, "PCI BAR")):
        mmio.claim(base, length, _Silent(), name)
    if not paging:
        return None, mmio
    table = PageTable()
    table.map(0x400000, VGA[0])  # a kernel mapping of the text buffer
    table.map(0x401000, 0x200000)  # ordinary RAM
    table.map(0x402000, VGA[0] + 0x1000, writable=False)
    table.map(VGA[0], 0x300000)  # a virtual address that LOOKS like MMIO, mapped to RAM
    table.map(0x403000, VGA[0], present=False)  # not present, old frame bits still there
    table.map(0x404000, HPET[0])
    table.map(0x405000, BAR[0] & ~0xFFF)
    table.map(0x406000, 0x201000, user=True)
    table.map(0x407000, VGA[0] + 0x2000)
    for vaddr in (0x406000, 0x407000):  # flag bits a real walk leaves in an entry
        table.entries[vaddr >> 12] |= PTE_ACCESSED | PTE_DIRTY | PTE_NX
    return table, mmio


#: (paging, vaddr, write, label, rule)
Q3_PLAN = (
    (False, 0x0, False, "paging off, load from address 0 (RAM)", RAM),
    (False, 0xB8000, True, "paging off, store to the first byte of the text buffer", PHYS),
    (False, 0xBFFFF, False, "paging off, load from the last byte of the text buffer", PHYS),
    (False, 0xC0000, False, "paging off, load from the first address after it", EDGE),
    (False, 0xB7FFF, True, "paging off, store just below the text buffer", EDGE),
    (False, 0x200000, False, "paging off, load from RAM", RAM),
    (False, 0xFED003FF, False, "paging off, load from the last byte of the 1 KiB HPET", PHYS),
    (False, 0xFED00400, False, "paging off, load from the first address after the HPET",
     EDGE),
    (False, 0xFEBF0100, True, "paging off, store to a BAR that starts at page offset 0x100",
     PHYS),
    (False, 0xFEBF00FF, True, "paging off, store just below that BAR", EDGE),
    (True, 0x0, False, "load from virtual address 0 (unmapped)", PAGE_FAULT),
    (True, 0x400010, True, "store through a mapping of the text buffer, offset 0x10", TRANSLATE),
    (True, 0x400FFF, False, "load from the last byte of that page", OFFSET),
    (True, 0x401000, False, "load from mapped RAM", RAM),
    (True, 0x500000, False, "load from a page with no entry", PAGE_FAULT),
    (True, 0x403000, False, "load through a not-present entry with frame bits set", PRESENT),
    (True, 0x402000, True, "store through a read-only mapping of MMIO", WRITE),
    (True, 0x402008, False, "load through a read-only mapping of MMIO", READ_ONLY),
    (True, 0xB8000, True, "store to virtual 0xB8000, mapped to RAM", VIRTUAL),
    (True, 0x4043FC, False, "load at offset 0x3FC of the HPET's page (inside the HPET)",
     OFFSET),
    (True, 0x404400, False, "load at offset 0x400 of the HPET's page (past the HPET)", EDGE),
    (True, 0x4050FF, True, "store at offset 0xFF of the BAR's page (below the BAR)", EDGE),
    (True, 0x405100, True, "store at offset 0x100 of the BAR's page (the BAR's first byte)",
     OFFSET),
    (True, 0x4051FF, False, "load from the BAR's last byte", OFFSET),
    (True, 0x405200, False, "load from the first address after the BAR", EDGE),
    (True, 0x406008, True, "store to RAM through an entry with A, D, U and NX set", FLAGS),
    (True, 0x407ABC, False, "load from MMIO through an entry with A, D and NX set", FLAGS),
)


def fault_cases() -> list[Case]:
    return [Case(label, (paging, vaddr, write), rule)
            for paging, vaddr, write, label, rule in Q3_PLAN]


def fault_arguments(paging: bool, vaddr: int, write: bool) -> tuple:
    table, mmio = guest_world(paging)
    return table, mmio, vaddr, write


def fault_hint(case: Case, expected: object, got: object) -> str | None:
    """A #PF answered with paging off: there is no guest table to forbid anything."""
    paging = case.inputs[0]
    if not paging and got == "page-fault":
        return ("with paging off there is no guest page table, so no #PF: " + PHYS)
    return None


def reference_classify(table: PageTable | None, mmio: MemoryBus, vaddr: int, write: bool) -> str:
    return classify_fault(table, mmio, vaddr, write).value


Q3 = Question(
    label="q3", function="classify", cases=fault_cases, build=fault_arguments,
    reference=reference_classify, withholds=(classify_fault,), hint=fault_hint,
)

CHAPTER = Chapter(__name__, (Q1, Q2, Q3))

check_vmx_exits = Q1.check
check_decode_qualification = Q2.check
check_classify = Q3.check
