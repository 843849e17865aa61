"""Exits per second of the trapped port-I/O path, tracing on.

A guest writes the 16550's scratch register (an intercepted port) in a loop; every write
is a real VM exit through the whole path: bitmap check, exit record, trace, hypervisor
decode, bus dispatch, device write, clock. Two figures:

* ``exit_path``: the guest yields prebuilt ``Out`` operations, so only the exit path is timed;
* ``exit_path_with_guest``: the guest builds a new ``Out`` each time, as real guest code does.

The trace is checked afterwards, so the loop cannot be skipping work.
"""

from __future__ import annotations

import time

from vmmlib import MIB, Machine, Out, Vcpu
from vmmlib.devices.uart16550 import Uart16550

N = 200_000
COM1_SCR = 0x3F8 + 7


def scenario():
    m = Machine(64 * MIB)
    dom = m.add_domain("guest", 16 * MIB)
    dom.emulate_ports(0x3F8, 8, Uart16550(m.clock), "COM1")
    return m, dom


def prebuilt(n):
    ops = [Out(COM1_SCR, 1, i) for i in range(256)]
    for i in range(n):
        yield ops[i & 0xFF]


def building(n):
    for i in range(n):
        yield Out(COM1_SCR, 1, i & 0xFF)


def measure(guest) -> float:
    best = 0.0
    for _ in range(3):
        m, dom = scenario()
        vcpu = Vcpu(dom, guest(N))
        t0 = time.perf_counter()
        vcpu.run(N + 2)
        dt = time.perf_counter() - t0
        exits = m.trace.count()["IO_INSTRUCTION"]
        assert exits == N, exits
        assert dom.ports.read(COM1_SCR, 1) == (N - 1) & 0xFF
        best = max(best, exits / dt)
    return best


if __name__ == "__main__":
    print(f"exit_path: {measure(prebuilt) / 1e6:.2f} M exits/s")
    print(f"exit_path_with_guest: {measure(building) / 1e6:.2f} M exits/s")
