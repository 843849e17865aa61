"""Reproducers of what hostile guests and careless configurations once did to the core.

The contract (DESIGN.md, "Errors"): misconfiguration raises a clear ``vmmlib.errors`` error at
once; what hardware would turn into a fault is delivered as one (#PF, #GP) or crashes the
guest with a printable reason; ``step()`` never lets a raw exception out, never hangs, and no
guest reaches another domain's memory. One test per reproducer of the issue "A core that no
guest can break".
"""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from vmmlib import MIB, CostModel, Hypercall, In, Load, Machine, Out, Outs, PageTable, Store, Vcpu
from vmmlib.cpu.ops import ADDRESS_LIMIT, Ins, StoreBlock
from vmmlib.devices.uart16550 import Uart16550
from vmmlib.devices.vga_text import VGA_WINDOW_BASE, VgaTextBuffer
from vmmlib.errors import ConfigError, GeneralProtection, PageFault, VmmError
from vmmlib.xen.hypercalls import CONSOLE, EFAULT


def ops(*operations):
    """A guest that yields these (already built) operations, whatever they return."""
    for op in operations:  # noqa: UP028 - yield from would pass results on to the tuple
        yield op


def two_domains():
    m = Machine(64 * MIB, xen_debug=True)
    attacker = m.add_domain("attacker", 8 * MIB)
    bystander = m.add_domain("bystander", 8 * MIB)
    Vcpu(bystander, ops(*[Store(0x1000, 8, 0x1122334455667788)])).run()
    return m, attacker, bystander


def ram_digest(m, dom) -> str:
    first = dom.machine_base >> 12
    pages = [m.memory.pages[f].tobytes() for f in sorted(m.memory.pages)
             if first <= f < first + (dom.ram_size >> 12)]
    return hashlib.sha256(b"".join(pages)).hexdigest()


def run(dom, program, steps=10_000):
    cpu = Vcpu(dom, program)
    cpu.run(steps)
    return cpu


class Shifty(int):
    """An int whose bit operations lie: the page-offset bits differ every time they are read."""

    calls = itertools.count()

    def __and__(self, other):
        return int(self) & other if next(self.calls) % 2 else (int(self) + 0x7FF000) & other

    def __rshift__(self, other):
        return (int(self) + (next(self.calls) << 24)) >> other


def test_an_int_subclass_address_is_read_once_as_the_int_it_is():
    m, attacker, bystander = two_domains()
    before = ram_digest(m, bystander)
    op = Store(Shifty(0x2000), 4, 0xDEADBEEF)
    assert type(op.addr) is int and op.addr == 0x2000
    run(attacker, ops(*[op, Store(Shifty(0x7FFFF8), 8, 2**64 - 1)]))
    assert ram_digest(m, bystander) == before
    assert attacker.read_ram(0x2000, 4) == 0xDEADBEEF


def test_endless_buffers_are_refused_at_once_never_consumed():
    m, attacker, _ = two_domains()
    for build in (lambda: Outs(0x3F8, 1, itertools.count()),
                  lambda: Hypercall(18, itertools.count()),
                  lambda: StoreBlock(0x1000, itertools.repeat(1))):
        with pytest.raises(ConfigError, match="more than"):
            build()

    def guest():
        yield Outs(0x3F8, 1, itertools.cycle(b"x"))  # built inside the guest: the guest dies

    cpu = run(attacker, guest())
    assert cpu.crashed is not None and "more than" in str(cpu.crashed)


def test_a_console_write_of_a_huge_count_is_bounded_by_guest_memory_and_the_ring():
    m, attacker, _ = two_domains()
    cpu = run(attacker, ops(*[Hypercall(18, (0, (1 << 31) - 1, 0))]))
    (row,) = m.trace.events("hypercall")
    assert row.fields["result"] == -EFAULT and cpu.done and cpu.crashed is None
    assert len(m.console) <= 16384  # Xen's console ring
    assert CONSOLE.fields[-1] == "result"


def test_an_operation_cannot_be_changed_after_it_was_built():
    op = Out(0x3F8, 1, 65)
    with pytest.raises(AttributeError):
        op.size = 1 << 60  # type: ignore[misc]
    with pytest.raises(ConfigError):
        op._replace(size=1 << 60)
    with pytest.raises(ConfigError):
        Out._make((0x3F8, 3, 0))


@pytest.mark.parametrize("nr", [[18], None, 1.5, "18", b"18", 1 << 64])
def test_hypercall_numbers_are_register_values(nr):
    with pytest.raises(ConfigError):
        Hypercall(nr)


def test_numpy_and_subclassed_values_become_plain_ints_and_keep_the_uart_plain():
    m = Machine(64 * MIB)
    a, b = m.add_domain("a", 8 * MIB), m.add_domain("b", 8 * MIB)
    uart = Uart16550(m.clock, paced=False)
    a.emulate_ports(0x3F8, 8, uart, "COM1")
    b.emulate_ports(0x3F8, 8, Uart16550(m.clock, paced=False), "COM1")
    op = Out(np.uint16(0x3FB), np.int64(1), np.uint8(0x83))
    assert all(type(v) is int for v in op)
    run(a, ops(*[op, Out(0x3FF, np.int32(1), np.int8(7))]))
    assert all(type(v) is int for v in uart.registers().values())
    assert run(b, ops(*[Out(0x3FF, 1, 1)])).crashed is None


@pytest.mark.parametrize("size", [1.0, True, "1", None, 3])
def test_sizes_are_checked_by_type_not_by_equality(size):
    with pytest.raises(ConfigError):
        In(0x3F8, size)
    with pytest.raises(ConfigError):
        Load(0x1000, size)


def test_the_rep_flag_is_a_bool():
    with pytest.raises(ConfigError):
        Ins(0x3F8, 1, 1, rep=2)


def test_a_store_running_past_the_canonical_half_is_a_gp_and_the_vcpu_ends_cleanly():
    m, attacker, _ = two_domains()
    top = ADDRESS_LIMIT - 4
    caught = []

    def guest():
        try:
            yield Store(top, 8, 1)
        except GeneralProtection as fault:
            caught.append(fault.address)
        yield Store(top, 8, 1)  # not caught this time: the guest dies of it

    cpu = run(attacker, guest())
    assert caught == [top]
    assert cpu.done and isinstance(cpu.crashed, GeneralProtection)
    assert not cpu.step()


def test_a_store_faulting_on_its_second_page_writes_nothing():
    m, attacker, _ = two_domains()
    table = PageTable()
    table.map(0x10000, 0x10000)  # the next page, 0x11000, is not mapped
    attacker.page_table = table

    def guest():
        yield Store(0x10FFC, 4, 0x11111111)  # all in the first page
        try:
            yield Store(0x10FFE, 4, 0x22222222)  # two bytes in, two bytes out
        except PageFault as fault:
            return fault.address
        return None

    cpu = run(attacker, guest())
    assert cpu.result == 0x11000
    assert attacker.read_ram(0x10FFC, 4) == 0x11111111  # untouched by the faulting store


def test_a_sub_page_mmio_claim_is_never_bypassed_by_ram_elsewhere_in_its_page():
    m, attacker, _ = two_domains()
    seen = []

    class Probe:
        def read(self, offset, size):
            return 0

        def write(self, offset, size, value):
            seen.append((offset, value))

    attacker.emulate_mmio(0x40000, 0x100, Probe(), "small MMIO")
    run(attacker, ops(*[Store(0x40800, 4, 1), Store(0x40000, 4, 2), Load(0x40800, 4)]))
    assert seen == [(0, 2)]  # the RAM-looking store went to the emulator (no device: dropped)
    assert attacker.shadow == {}  # and the page never got a shadow entry


def test_remapping_a_pte_is_noticed_and_invlpg_drops_the_entry():
    m, attacker, _ = two_domains()
    table = PageTable()
    table.map(0x20000, 0x30000)
    attacker.page_table = table

    def guest():
        yield Store(0x20000, 4, 0xAAAA)
        table.map(0x20000, 0x31000)  # the guest rewrites its PTE ...
        yield Store(0x20000, 4, 0xBBBB)  # ... and the shadow follows
        return (yield Load(0x20000, 4))

    cpu = run(attacker, guest())
    assert cpu.result == 0xBBBB
    assert attacker.read_ram(0x30000, 4) == 0xAAAA and attacker.read_ram(0x31000, 4) == 0xBBBB
    with pytest.raises(ConfigError):
        table.map(0x20000, 1 << 52)


@pytest.mark.parametrize(
    "thing", [10**5000, object(), "not an op", (0x3F8, 1)], ids=["huge", "object", "str", "tuple"]
)
def test_yielding_garbage_crashes_the_guest_with_a_printable_reason(thing):
    m, attacker, _ = two_domains()
    cpu = run(attacker, ops(*[thing]))
    (crash,) = m.trace.events("crash")
    assert cpu.crashed is not None and " at 0x" not in crash.fields["error"]
    assert len(crash.fields["error"]) < 600


def test_a_crash_path_that_cannot_format_still_records_the_crash():
    class Hostile(Exception):
        def __str__(self):
            raise RuntimeError("no message for you")

    class BadRepr:
        def __repr__(self):
            raise RuntimeError("no repr either")

    m, attacker, _ = two_domains()

    def guest():
        yield Out(0x80, 1, 0)
        raise Hostile()

    run(attacker, guest())
    run(attacker, ops(*[BadRepr()]))
    errors = [e.fields["error"] for e in m.trace.events("crash")]
    assert errors[0].startswith("Hostile") and "cannot be printed" in errors[0]
    assert "BadRepr" in errors[1]


def test_a_guests_systemexit_is_a_crash_but_a_keyboard_interrupt_stops_the_simulator():
    m, attacker, _ = two_domains()

    def exits():
        yield Out(0x80, 1, 0)
        raise SystemExit(3)

    assert isinstance(run(attacker, exits()).crashed, SystemExit)

    def interrupted():
        yield Out(0x80, 1, 0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(attacker, interrupted())


def test_configuration_errors_are_clear_and_immediate():
    with pytest.raises(ConfigError):
        Machine(None)  # type: ignore[arg-type]
    m = Machine(64 * MIB)
    with pytest.raises(ConfigError):
        m.add_domain("a", 1.5 * MIB)  # type: ignore[arg-type]
    dom = m.add_domain("a", 8 * MIB)
    with pytest.raises(ConfigError):
        m.add_domain("a", 8 * MIB)  # two domains of one name
    with pytest.raises(ConfigError):
        CostModel(vm_exit_ns=-1)  # virtual time would go backwards
    with pytest.raises(ConfigError):
        dom.emulate_ports(0x3F8, 8, None, "COM1")  # type: ignore[arg-type]
    uart = Uart16550(m.clock)
    dom.emulate_ports(0x3F8, 8, uart, "COM1")
    other = m.add_domain("b", 8 * MIB)
    with pytest.raises(ConfigError, match="already answers"):
        other.emulate_ports(0x2F8, 8, uart, "COM2")  # one chip cannot serve two domains
    vga = VgaTextBuffer(base=VGA_WINDOW_BASE)
    for size, value in ((3, 0), (2.0, 0), (2, 1 << 16), (2, np.uint16(1))):
        with pytest.raises(VmmError):
            vga.write(0x18000, size, value)  # type: ignore[arg-type]


def test_an_access_straddling_the_start_of_the_text_buffer_keeps_its_upper_byte():
    vga = VgaTextBuffer(base=VGA_WINDOW_BASE)
    vga.write(0x17FFF, 2, 0x4148)  # B7FFF (undecoded) and B8000
    assert vga.read(0x18000, 1) == 0x41 and vga.read(0x17FFF, 2) == 0x41FF


def test_same_seed_same_trace_even_when_a_guest_crashes_with_an_object_in_its_message():
    def world():
        m, attacker, _ = two_domains()
        run(attacker, ops(*[Out(0x80, 1, 0), object()]))
        return m.trace.lines()

    assert world() == world()
