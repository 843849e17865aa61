"""Property-based fuzzing of the core with hostile guests (hypothesis, seeded and bounded).

Each example builds a random machine (vendor, HVM or PV, guest paging on or off with a random
page table, an emulated UART, VGA, an IDE disk, a sub-page MMIO device, a passthrough port)
and a *bystander* domain whose RAM is hashed, then runs a guest that builds operations from
random and hostile values — int subclasses, floats, bools, numpy scalars, huge ints, strings,
endless iterables — and yields them, or yields garbage. The contract asserted on every example:

* ``step()`` always returns (a bool); the guest ends within its bound;
* a guest that dies has a printable reason and the model never failed internally;
* the bystander's RAM is untouched, and no byte is written outside the domains' RAM;
* the same example gives the same trace twice (determinism).

``make test`` runs a small, fixed set of examples (``derandomize``: the same every run);
``make fuzz`` runs a long campaign (VMMLIB_FUZZ_EXAMPLES, default 4000 there). Chapters add
their hostile inputs (rings, grants, ioreqs, DMA descriptors) to ``OPERATIONS``.
"""

from __future__ import annotations

import hashlib
import itertools
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmmlib import MIB, Machine, PageTable, Vcpu
from vmmlib.cpu import ops
from vmmlib.devices.disk import RamDisk
from vmmlib.devices.ide import IdeController
from vmmlib.devices.uart16550 import Uart16550
from vmmlib.devices.vga import Vga

EXAMPLES = int(os.environ.get("VMMLIB_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples on every run: a test that can fail, never flakes
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_STEPS = 400
RAM = 4 * MIB


class Sly(int):
    """An int subclass that lies about its bits."""

    def __and__(self, other):
        return (int(self) ^ 0xFFF) & other

    def __index__(self):
        return 7


def hostile_scalars():
    return st.one_of(
        st.integers(-(2**70), 2**70),
        st.sampled_from([0, 1, 2, 4, 8, 0x3F8, 0x3FD, 0x1F0, 0x1F7, 0xB8000, 0xFFFF, 0x10000,
                         2**47 - 4, 2**47, 2**64 - 1, 10**400]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.text(max_size=3),
        st.binary(max_size=6),
        st.integers(0, 2**16 - 1).map(np.uint16),
        st.integers(-(2**31), 2**31).map(np.int64),
        st.integers(0, 2**20).map(Sly),
    )


def hostile_buffers():
    return st.one_of(
        st.binary(max_size=40),
        st.lists(hostile_scalars(), max_size=6),
        st.sampled_from(["count", "cycle", "text"]).map(
            lambda k: {"count": itertools.count(), "cycle": itertools.cycle(b"ab"),
                       "text": "not bytes"}[k]),
    )


#: (operation, argument strategies) a hostile guest may try to build.
OPERATIONS = {
    ops.In: (hostile_scalars(), hostile_scalars()),
    ops.Out: (hostile_scalars(), hostile_scalars(), hostile_scalars()),
    ops.Ins: (hostile_scalars(), hostile_scalars(), hostile_scalars(), st.booleans()),
    ops.Outs: (hostile_scalars(), hostile_scalars(), hostile_buffers()),
    ops.Load: (hostile_scalars(), hostile_scalars()),
    ops.Store: (hostile_scalars(), hostile_scalars(), hostile_scalars()),
    ops.Xchg: (hostile_scalars(), hostile_scalars(), hostile_scalars()),
    ops.Cmpxchg: (hostile_scalars(), hostile_scalars(), hostile_scalars(), hostile_scalars()),
    ops.StoreBlock: (hostile_scalars(), hostile_buffers()),
    ops.LoadBlock: (hostile_scalars(), hostile_scalars()),
    ops.Invlpg: (hostile_scalars(),),
    ops.Hypercall: (hostile_scalars(), hostile_buffers()),
}


@st.composite
def plausible(draw):
    """A mostly well-formed operation aimed at the interesting addresses and ports."""
    port = draw(st.sampled_from([0x3F8, 0x3FD, 0x3FF, 0x1F0, 0x1F2, 0x1F7, 0x3F6, 0x3D4,
                                 0x3D5, 0x80, 0x1234, 0xFFFE]))
    addr = draw(st.sampled_from([0, 0x1000, 0xFFE, 0x3FFFFC, RAM - 2, RAM, 0xB8000, 0xB7FFF,
                                 0xA0000, 0x50000, 0x50FF0, 0x7000_0000, 0x7000_0FFD,
                                 2**47 - 3]))
    size = draw(st.sampled_from([1, 2, 4]))
    wide = draw(st.sampled_from([1, 2, 4, 8]))
    value = draw(st.integers(0, (1 << (8 * size)) - 1))
    count = draw(st.integers(1, 300))
    length = draw(st.integers(1, 5000))
    nr = draw(st.sampled_from([18, 0, 20, 29, 32, 34, 99, 2**64 - 1]))
    args = draw(st.lists(st.sampled_from([0, 1, 7, 0x1000, RAM - 4, 2**31, 2**64 - 1]),
                         max_size=3))
    return draw(st.sampled_from([
        lambda: ops.In(port, size),
        lambda: ops.Out(port, size, value),
        lambda: ops.Ins(port, size, count),
        lambda: ops.Outs(port, 1, bytes(count)),
        lambda: ops.Load(addr, wide),
        lambda: ops.Store(addr, size, value),
        lambda: ops.Xchg(addr, size, value),
        lambda: ops.Cmpxchg(addr, size, value, 0),
        lambda: ops.StoreBlock(addr, b"\xAA" * length),
        lambda: ops.LoadBlock(addr, length),
        lambda: ops.Invlpg(addr),
        lambda: ops.Hypercall(nr, args),
    ]))


@st.composite
def hostile_op(draw):
    cls = draw(st.sampled_from(sorted(OPERATIONS, key=lambda c: c.__name__)))
    args = [draw(s) for s in OPERATIONS[cls]]
    return lambda: cls(*args)


@st.composite
def garbage(draw):
    thing = draw(st.one_of(hostile_scalars(), st.just(object()), st.just((0x3F8, 1))))
    return lambda: thing


@st.composite
def worlds(draw):
    """A machine description: vendor, kind, paging, page-table entries, extra devices."""
    entries = draw(st.lists(
        st.tuples(st.sampled_from([0x1000, 0x7000_0000, 0x7000_1000, 0x50000]),
                  st.sampled_from([0x2000, 0xB8000, 0x50000, RAM - 0x1000, RAM, 0xA0000]),
                  st.booleans(), st.booleans()),
        max_size=5))
    return {
        "vendor": draw(st.sampled_from(["vmx", "svm"])),
        "kind": draw(st.sampled_from(["hvm", "hvm", "pv"])),
        "paging": draw(st.booleans()),
        "entries": entries,
        "paced": draw(st.booleans()),
        "remaps": draw(st.booleans()),
    }


def build(world, recipe):
    m = Machine(16 * MIB, xen_debug=True)
    dom = m.add_domain("attacker", RAM, kind=world["kind"], vendor=world["vendor"])
    bystander = m.add_domain("bystander", RAM)
    Vcpu(bystander, _fill()).run()
    dom.emulate_ports(0x3F8, 8, Uart16550(m.clock, paced=world["paced"]), "COM1")
    ide = IdeController(m.clock, RamDisk(64))
    for base, length, device, name in ide.port_claims():
        dom.emulate_ports(base, length, device, name)
    vga = Vga()
    dom.emulate_mmio(0xA0000, 0x20000, vga, "VGA")
    dom.emulate_ports(0x3C0, 0x20, vga.ports, "VGA registers")
    dom.emulate_mmio(0x50000, 0x10, _Sink(), "small MMIO")  # a claim smaller than a page
    if world["paging"]:
        table = PageTable()
        for vaddr, gpa, present, writable in world["entries"]:
            table.map(vaddr, gpa, present, writable)
        dom.page_table = table
    vcpu = Vcpu(dom, _guest(recipe, dom, world["remaps"]))
    return m, vcpu, bystander


class _Sink:
    def read(self, offset, size):
        return 0x5A

    def write(self, offset, size, value):
        pass


def _fill():
    for i in range(0, 0x4000, 8):
        yield ops.Store(i, 8, 0x0123456789ABCDEF ^ i)


def _guest(recipe, dom, remaps):
    for n, make in enumerate(recipe):
        try:
            op = make()
        except Exception as exc:  # a refused operation: the guest notes it and goes on
            assert type(exc).__module__.startswith("vmmlib"), exc
            continue
        if remaps and n % 5 == 4 and dom.page_table is not None:
            dom.page_table.map(0x1000, 0x3000 if n % 10 == 4 else 0x2000)
        try:
            yield op
        except Exception:
            pass  # the guest's fault handler shrugs


def _outside_ram_pages(m) -> list[int]:
    ranges = [(d.machine_base >> 12, (d.machine_base + d.ram_size) >> 12) for d in m.domains]
    return [f for f in m.memory.pages if not any(a <= f < b for a, b in ranges)]


def _digest(m, dom) -> str:
    first, last = dom.machine_base >> 12, (dom.machine_base + dom.ram_size) >> 12
    pages = [m.memory.pages[f].tobytes() for f in sorted(m.memory.pages) if first <= f < last]
    return hashlib.sha256(b"".join(pages)).hexdigest()


def run_world(world, recipe):
    m, vcpu, bystander = build(world, recipe)
    before = _digest(m, bystander)
    for _ in range(MAX_STEPS):
        more = vcpu.step()
        assert more is True or more is False
        if not more:
            break
    assert vcpu.done, "the guest did not finish within its bound"
    crashes = [e.fields["error"] for e in m.trace.events("crash")]
    assert not any("internal error" in c for c in crashes), crashes
    assert _digest(m, bystander) == before
    assert _outside_ram_pages(m) == []
    return m.trace.lines()


@FUZZ
@given(world=worlds(),
       recipe=st.lists(st.one_of(plausible(), plausible(), hostile_op(), garbage()),
                       max_size=25))
def test_no_guest_breaks_the_core(world, recipe):
    first = run_world(world, recipe)
    assert run_world(world, recipe) == first  # deterministic
