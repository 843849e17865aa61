"""Fuzzing the real blkback end to end with a hostile front end (hypothesis, seeded, bounded).

Each example connects a PV (or HVM) guest's blkfront to dom0's blkback, next to a bystander
guest whose RAM is hashed, and then runs a guest program of random actions, all through guest
operations: raw requests with any operation, 0 … 15 segments, any sector and grant refs
(forged, reserved, past the table, never granted), pokes of any size at any offset of the
ring page (indices included) and of the grant table, doorbells, honest reads in between, and
busy stretches during which the back end works. The contract on every example:

* the model never fails internally: the guest ends, or dies of something a guest kernel can
  die of (its own driver giving up, waiting forever on a ring it broke), with a printable reason;
* the bystander's RAM and dom0's RAM are untouched (hashed before and after; but for their
  shared_info pages, where Xen marks events), and no byte outside the domains' RAM is written;
* every response blkback wrote echoes an id, and a status of OKAY, ERROR or EOPNOTSUPP;
* the same example gives the same trace twice (determinism).

``make test`` runs a small fixed set (``derandomize``); VMMLIB_FUZZ_EXAMPLES raises it.
"""

from __future__ import annotations

import hashlib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmmlib.cpu.ops import Load, Store, StoreBlock
from vmmlib.guest import blkfront as bf
from vmmlib.guest.xen_events import evtchn_send
from vmmlib.scenarios.split_drivers import BUFFER, add_guest, connect_program, split_machine
from vmmlib.xen.blkif import BLKIF_MAX_SEGMENTS_PER_REQUEST, REQUEST_SIZE
from vmmlib.xen.vcpu import Vcpu

EXAMPLES = int(os.environ.get("VMMLIB_FUZZ_EXAMPLES", "20"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MAX_STEPS = 30_000

u32 = st.integers(0, 2**32 - 1)
segment = st.tuples(st.one_of(st.integers(0, 16), st.integers(500, 520), u32),
                    st.integers(0, 9), st.integers(0, 9))
raw_request = st.tuples(
    st.sampled_from([0, 1, 0, 1, 2, 3, 5, 6, 200]),  # read, write (often), others
    st.integers(0, 15),  # nr_segments, as written (the struct holds 11)
    st.one_of(st.integers(0, 8200), st.integers(2**64 - 16, 2**64 - 1)),
    st.integers(0, 2**64 - 1),  # id
    st.lists(segment, max_size=BLKIF_MAX_SEGMENTS_PER_REQUEST),
)
action = st.one_of(
    st.tuples(st.just("request"), raw_request),
    st.tuples(st.just("poke-ring"), st.integers(0, 4095), st.sampled_from([1, 2, 4, 8]),
              st.integers(0, 2**64 - 1)),
    st.tuples(st.just("poke-grant"), st.integers(0, 40), st.integers(0, 7),
              st.sampled_from([1, 2, 4]), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("grant"), st.integers(0, 300), st.booleans()),
    st.tuples(st.just("send")),
    st.tuples(st.just("read"), st.integers(1, 40)),
    st.tuples(st.just("busy"), st.integers(1, 300)),
)


def digest(machine, dom) -> str:
    """The domain's RAM, except its shared_info page (where Xen marks events pending)."""
    first, n = dom.machine_base >> 12, dom.ram_size >> 12
    shared = dom.gfn_to_mfn(dom.evtchn.shared_info_gfn)
    return hashlib.sha256(b"".join(machine.memory.pages[f].tobytes()
                                   for f in sorted(machine.memory.pages)
                                   if first <= f < first + n and f != shared)).hexdigest()


def outside_digest(machine) -> str:
    inside = set()
    for dom in machine.domains:
        first = dom.machine_base >> 12
        inside.update(range(first, first + (dom.ram_size >> 12)))
    return hashlib.sha256(b"".join(machine.memory.pages[f].tobytes()
                                   for f in sorted(machine.memory.pages)
                                   if f not in inside)).hexdigest()


def encode_raw(op, nseg, sector, rid, segments) -> bytes:
    head = bytes([op, nseg]) + bytes(6) + rid.to_bytes(8, "little") + sector.to_bytes(8, "little")
    body = b"".join(g.to_bytes(4, "little") + bytes([f, last, 0, 0]) for g, f, last in segments)
    return (head + body).ljust(REQUEST_SIZE, b"\0")


def hostile_program(world, actions):
    front = world.front
    yield from connect_program(world.machine, world.guest, front)
    for act in actions:
        kind = act[0]
        if kind == "request":
            yield StoreBlock(front.slot_address(front.req_prod_pvt), encode_raw(*act[1]))
            front.req_prod_pvt = (front.req_prod_pvt + 1) & 0xFFFF_FFFF
            yield from bf._push(front)
        elif kind == "poke-ring":
            _, offset, size, value = act
            offset = min(offset, 4096 - size)
            yield Store(front.ring + offset, size, value & ((1 << (8 * size)) - 1))
        elif kind == "poke-grant":
            _, ref, offset, size, value = act
            at = front.grant_frames[0] + ref * 8 + min(offset, 8 - size)
            yield Store(at, size, value & ((1 << (8 * size)) - 1))
        elif kind == "grant":
            if front.free_refs:
                yield from bf._grant(front, (BUFFER >> 12) + act[1], act[2])
        elif kind == "send":
            yield from evtchn_send(front.port, front.scratch)
        elif kind == "read":
            if not front.broken and not front.shadow:
                yield from bf.blkfront_io(front, "read", 0, act[1], BUFFER)
        else:
            for _ in range(act[1]):
                yield Load(BUFFER, 4)


def run_example(kind, actions):
    world = split_machine(kind)
    other, other_front = add_guest(world.machine, world.blkback, world.disk, "pv", "bystander",
                                   ram=32 << 20)
    cpu = Vcpu(other, connect_program(world.machine, other, other_front))
    cpu.run()
    before = (digest(world.machine, other), digest(world.machine, world.dom0),
              outside_digest(world.machine))
    cpu = Vcpu(world.guest, hostile_program(world, actions))
    steps = 0
    while not cpu.done and steps < MAX_STEPS:
        assert cpu.step() in (True, False)
        steps += 1
    after = (digest(world.machine, other), digest(world.machine, world.dom0),
             outside_digest(world.machine))
    return world, cpu, before, after


@FUZZ
@given(kind=st.sampled_from(["pv", "hvm"]), actions=st.lists(action, max_size=25))
def test_no_front_end_breaks_blkback(kind, actions):
    world, cpu, before, after = run_example(kind, actions)
    crashes = [e.fields["error"] for e in world.machine.trace.events("crash")]
    assert not any("internal error" in c for c in crashes), crashes
    if cpu.crashed is not None:
        assert type(cpu.crashed).__name__ in ("Halted", "GuestKernelError", "ConfigError"), (
            cpu.crashed)
        assert str(cpu.crashed)
    assert after == before  # the bystander, dom0 and everything outside the domains
    for row in world.machine.trace.events("response"):
        if row.actor == "blkback":
            assert row.fields["status"] in (0, -1, -2)
    again = run_example(kind, actions)[0]
    assert list(again.machine.trace.lines()) == list(world.machine.trace.lines())
