"""A test bench: a PC with no hypervisor, on which guest programs and recorded driver sequences
run straight against device models.

``Bench.run(program)`` executes the operations a guest generator yields (``vmmlib.cpu.ops``) on
a port bus, an MMIO bus and a little sparse RAM. Every operation costs ``op_ns`` of virtual
time; when the guest polls (the same IN twice in a row with the same answer) the clock jumps to
the next time a device changes state by itself, as a CPU spinning on a status register would
get there, only without spinning through millions of iterations.

``replay(bench, steps)`` runs a driver's port sequence described as data:

* ``("out", port, size, value)``
* ``("in", port, size, mask, expected)``: the read, masked, must equal ``expected``
* ``("poll", port, mask, expected)``: read until (value & mask) == expected (bounded)
* ``("ins", port, size, count)`` / ``("outs", port, size, data)``: REP INS / OUTS; the data
  read is collected in ``bench.data``
* ``("until_nonzero", port, limit, found)``: read up to ``limit`` times until the value is not
  0; whether that happened must equal ``found``
* ``("delay", ns)``: the driver waits ``ns`` without touching a port (udelay, msleep)
* ``("wait_irq",)``: the driver sleeps until the device raises its IRQ line
* ``("irq", level)``: the device's IRQ line must be at ``level`` now
"""

from __future__ import annotations

from vmmlib.clock import Clock
from vmmlib.cpu.ops import In, Ins, Load, Out, Outs, Store
from vmmlib.hw.bus import MemoryBus, PortBus

POLL_LIMIT = 100_000


class Bench:
    def __init__(self, op_ns: int = 1_000) -> None:
        self.clock = Clock()
        self.ports = PortBus("bench ports")
        self.mmio = MemoryBus("bench mmio", size=1 << 32)
        self.ram: dict[int, int] = {}
        self.op_ns = op_ns
        self.timed: list = []  # devices with next_event_time()
        self.irq_lines: dict[str, list[tuple[int, bool]]] = {}
        self.data = bytearray()
        self.ops = 0
        self._last_in: tuple[int, int] | None = None

    def irq_recorder(self, name: str):
        calls = self.irq_lines.setdefault(name, [])
        return lambda level: calls.append((self.clock.now, level))

    def add_ports(self, base: int, length: int, device, name: str) -> None:
        self.ports.claim(base, length, device, name)

    def add_timed(self, device) -> None:
        self.timed.append(device)

    # -- time -----------------------------------------------------------------------------
    def next_event(self) -> int | None:
        times = [t for d in self.timed if (t := d.next_event_time()) is not None]
        return min(times, default=None)

    def settle(self) -> None:
        """Let every device finish what it is doing."""
        while (t := self.next_event()) is not None:
            self.clock.advance_to(t)
        for d in self.timed:
            d.catch_up()

    def _poll_step(self, port: int, value: int) -> None:
        if self._last_in == (port, value):
            t = self.next_event()
            if t is not None and t > self.clock.now:
                self.clock.advance_to(t)
        self._last_in = (port, value)

    # -- one operation ----------------------------------------------------------------------
    def execute(self, op):
        self.ops += 1
        self.clock.advance(self.op_ns)
        if isinstance(op, In):
            value = self.ports.read(op.port, op.size)
            self._poll_step(op.port, value)
            return value
        self._last_in = None
        if isinstance(op, Out):
            self.ports.write(op.port, op.size, op.value)
        elif isinstance(op, Ins):
            return [self.ports.read(op.port, op.size) for _ in range(op.count)]
        elif isinstance(op, Outs):
            for v in op.values:
                self.ports.write(op.port, op.size, v)
        elif isinstance(op, Load):
            if self.mmio.find(op.addr) is not None:
                return self.mmio.read(op.addr, op.size)
            return int.from_bytes(bytes(self.ram.get(op.addr + i, 0) for i in range(op.size)),
                                  "little")
        elif isinstance(op, Store):
            if self.mmio.find(op.addr) is not None:
                self.mmio.write(op.addr, op.size, op.value)
            else:
                for i, b in enumerate(op.value.to_bytes(op.size, "little")):
                    self.ram[op.addr + i] = b
        else:
            raise TypeError(f"the bench does not run {op!r}")
        return None

    def run(self, program, max_ops: int = 2_000_000):
        """Run a guest generator to its end; returns its return value."""
        value = None
        try:
            op = program.send(None)
            while True:
                if self.ops >= max_ops:
                    raise AssertionError(f"guest still running after {max_ops} operations")
                value = self.execute(op)
                op = program.send(value)
        except StopIteration as stop:
            return stop.value


def replay(bench: Bench, steps, irq=None) -> list[int]:
    """Run a driver's port sequence (see the module docstring); returns every value read."""
    reads = []
    for step in steps:
        kind = step[0]
        if kind == "out":
            bench.execute(Out(step[1], step[2], step[3]))
        elif kind == "in":
            _, port, size, mask, expected = step
            value = bench.execute(In(port, size))
            reads.append(value)
            assert value & mask == expected, (
                f"{step}: read {value:#x}, the driver needs {expected:#x} under mask {mask:#x}"
            )
        elif kind == "poll":
            _, port, mask, expected = step
            for _ in range(POLL_LIMIT):
                value = bench.execute(In(port, 1))
                if value & mask == expected:
                    break
            else:
                raise AssertionError(f"{step}: polled {POLL_LIMIT} times, last {value:#x}")
            reads.append(value)
        elif kind == "ins":
            _, port, size, count = step
            for v in bench.execute(Ins(port, size, count)):
                bench.data += v.to_bytes(size, "little")
        elif kind == "outs":
            _, port, size, data = step
            values = [int.from_bytes(data[i : i + size], "little")
                      for i in range(0, len(data), size)]
            bench.execute(Outs(port, size, values))
        elif kind == "until_nonzero":
            _, port, limit, found = step
            for _ in range(limit):
                value = bench.execute(In(port, 1))
                if value != 0:
                    break
            reads.append(value)
            assert (value != 0) == found, f"{step}: last read {value:#x}"
        elif kind == "delay":
            bench.clock.advance(step[1])
        elif kind == "wait_irq":
            while not irq.irq_level:
                t = bench.next_event()
                assert t is not None, f"{step}: no interrupt will ever come"
                bench.clock.advance_to(t)
                irq.catch_up()
        elif kind == "irq":
            assert irq is not None and irq.irq_level == step[1], f"{step}: IRQ line is wrong"
        else:
            raise ValueError(f"unknown step {step!r}")
    return reads
