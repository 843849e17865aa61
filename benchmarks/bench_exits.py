"""The trapped port-I/O path, tracing on: how many VM exits per second the simulator takes.

Figures (DESIGN.md budget: the exit path >= 1 M exits/s, a real CPU's rate):

* ``exit_path``: a guest writes COM1's THR (an intercepted port) in a loop; every write is a
  real VM exit through the whole path — intercept lookup, exit record, trace row, Xen's handler
  decoding the qualification, per-port dispatch, the emulated (QEMU-like, unpaced) UART putting
  the byte on its wire, the emulate row, the clock. The guest yields prebuilt ``Out``s, so only
  the exit path is timed.
* ``exit_path_with_guest``: the same, but the guest builds a new ``Out`` for each byte.
* ``rep_outsb_4k``: one REP OUTSB of 4 KiB to THR (one exit per page, 4096 byte writes).
* ``guest_op_build``: constructing one ``Out`` (validation included).
* ``unicorn_out_loop`` and ``unicorn_ratio``: the same OUT loop as real x86 machine code run by
  Unicorn's C CPU core, with a Python hook doing the same exit work for each OUT (exit record,
  trace row, Xen's handler, the same UART model) — the rate a Python emulator gets from a C
  CPU — and vmmlib's ``exit_path`` rate divided by it.

Each figure is the best of several runs after a warm-up run (first-touch memory is expensive
on some virtual machines); each run checks afterwards that the work was really done (exit
counts, bytes on the wire).
"""

from __future__ import annotations

import time

from vmmlib import MIB, Machine, Out, Outs, Vcpu
from vmmlib.cpu.exits import VMX_IO_EXIT
from vmmlib.devices.uart16550 import LCR, LCR_WLEN8, THR, Uart16550

N = 200_000
COM1_THR = 0x3F8 + THR
RUNS = 5


def scenario():
    m = Machine(64 * MIB)
    dom = m.add_domain("guest", 16 * MIB)
    uart = Uart16550(m.clock, paced=False, out2_gates_irq=False)
    uart.write(LCR, 1, LCR_WLEN8)  # 8 data bits (the reset value, 0, means 5)
    dom.emulate_ports(0x3F8, 8, uart, "COM1")
    return m, dom, uart


def prebuilt(n):
    ops = [Out(COM1_THR, 1, i) for i in range(256)]
    for i in range(n):
        yield ops[i & 0xFF]


def building(n):
    for i in range(n):
        yield Out(COM1_THR, 1, i & 0xFF)


def best(measure) -> float:
    measure()  # warm-up
    return max(measure() for _ in range(RUNS))


def exits_per_second(guest) -> float:
    def measure() -> float:
        m, dom, uart = scenario()
        vcpu = Vcpu(dom, guest(N))
        t0 = time.perf_counter()
        vcpu.run(N + 2)
        dt = time.perf_counter() - t0
        exits = m.trace.count()["IO_INSTRUCTION"]
        assert exits == N, exits
        assert uart.output == bytes(i & 0xFF for i in range(N))
        return exits / dt

    return best(measure)


def rep_outsb_mb_per_second(size: int = 4096, reps: int = 20) -> float:
    data = bytes(i & 0xFF for i in range(size))

    def measure() -> float:
        m, dom, uart = scenario()
        ops = [Outs(COM1_THR, 1, data) for _ in range(reps)]

        def guest():
            yield from ops

        vcpu = Vcpu(dom, guest())
        t0 = time.perf_counter()
        vcpu.run()
        dt = time.perf_counter() - t0
        assert uart.output == data * reps
        return size * reps / dt / 1e6

    return best(measure)


def op_build_ns(n: int = 200_000) -> float:
    def measure() -> float:
        t0 = time.perf_counter()
        for i in range(n):
            Out(COM1_THR, 1, i & 0xFF)
        return n / (time.perf_counter() - t0)

    return 1e9 / best(measure)


def unicorn_exits_per_second() -> float | None:
    """The OUT loop as x86 code under Unicorn's C CPU; each OUT's Python hook does what
    vmmlib's CPU does on a trapped OUT (exit record into the control block and the trace, Xen's
    handler, the re-entry), so both sides do the same modelled work per exit."""
    try:
        from unicorn import UC_ARCH_X86, UC_HOOK_INSN, UC_MODE_32, Uc
        from unicorn.x86_const import UC_X86_INS_OUT, UC_X86_REG_ECX
    except ImportError:
        return None
    # mov dx, 0x3F8; xor eax, eax; loop: out dx, al; inc eax; dec ecx; jnz loop; hlt
    code = bytes.fromhex("66baf803" "31c0" "ee" "40" "49" "75fb" "f4")
    base = 0x1000

    def measure() -> float:
        m, dom, uart = scenario()
        vcpu = Vcpu(dom, (op for op in ()))  # its control block and state; Unicorn runs the code
        control, clock, record = vcpu.control, m.clock, m.trace.record
        exit_ns, entry_ns, exit_id = m.costs.vm_exit_ns, m.costs.vm_entry_ns, VMX_IO_EXIT.id
        handler = control.host_rip
        uc = Uc(UC_ARCH_X86, UC_MODE_32)
        uc.mem_map(base, 0x1000)
        uc.mem_write(base, code)
        uc.reg_write(UC_X86_REG_ECX, N)

        def on_out(uc, port, size, value, user_data):
            clock.now += exit_ns
            q = (size - 1) | port << 16
            control.exit_reason, control.exit_qualification = 30, q
            control.instruction_len = 1
            record((clock.now, exit_id, q))
            vcpu.rax = value
            handler(vcpu)
            clock.now += entry_ns

        uc.hook_add(UC_HOOK_INSN, on_out, None, 1, 0, UC_X86_INS_OUT)
        t0 = time.perf_counter()
        uc.emu_start(base, base + len(code))
        dt = time.perf_counter() - t0
        assert m.trace.count()["IO_INSTRUCTION"] == N
        assert uart.output == bytes(i & 0xFF for i in range(N))
        return N / dt

    return best(measure)


if __name__ == "__main__":
    ours = exits_per_second(prebuilt)
    print(f"exit_path: {ours / 1e6:.2f} M exits/s")
    print(f"exit_path_with_guest: {exits_per_second(building) / 1e6:.2f} M exits/s")
    print(f"rep_outsb_4k: {rep_outsb_mb_per_second():.2f} MB/s")
    print(f"guest_op_build: {op_build_ns():.0f} ns")
    theirs = unicorn_exits_per_second()
    if theirs is None:
        print("unicorn_out_loop: n/a (pip install unicorn)")
    else:
        print(f"unicorn_out_loop: {theirs / 1e6:.2f} M OUTs/s")
        print(f"unicorn_ratio: {ours / theirs:.2f} x (vmmlib / Unicorn with a Python hook)")
