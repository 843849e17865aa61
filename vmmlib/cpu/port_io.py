"""How the virtual CPU performs port I/O that is not its one-instruction fast path.

The part of ``VirtualCpu`` (``vmmlib.cpu.vcpu``) that executes (REP) INS/OUTS, port I/O on
ports the domain owns (no exit: the CPU reaches the device itself), and a PV guest's IN/OUT,
which traps into Xen with #GP. A trapped string instruction exits once per page of its memory
operand (Xen's emulator clips the repetitions to what one page holds and retries the
instruction for the rest), with the exit record in the vendor's format: the VMX I/O exit
qualification with its string and REP bits, or AMD's IOIO EXITINFO1 (hardware-facts.md §1, §2).
The single IN and OUT that exit are ``VirtualCpu._run``'s, inline.
"""

from __future__ import annotations

from typing import Any

from ..hw.bus import elements
from ..hw.memory import PAGE_MASK, PAGE_SIZE
from .exits import (
    EXIT_REASON_IO_INSTRUCTION,
    PV_GP_TRAP,
    SVM_IO_EXIT,
    VMEXIT_IOIO,
    VMX_STRING_IO_EXIT,
    PortAccess,
    svm_ioio_exitinfo1,
    vmx_io_qualification,
)
from .memory_access import PV, VMX
from .ops import (
    Cmpxchg,
    Hlt,
    Hypercall,
    In,
    Ins,
    Invlpg,
    Load,
    LoadBlock,
    Out,
    Outs,
    Store,
    StoreBlock,
    Xchg,
)

#: Nominal instruction lengths (bytes) for RIP bookkeeping: IN/OUT with DX, REP INS/OUTS,
#: a MOV to or from memory, XCHG, LOCK CMPXCHG, REP MOVSB, INVLPG (0F 01 /7), VMCALL (0F 01 C1).
INSN_LEN = {
    In: 1, Out: 1, Ins: 2, Outs: 2, Load: 3, Store: 3, Xchg: 3, Cmpxchg: 4, StoreBlock: 2,
    LoadBlock: 2, Invlpg: 3, Hlt: 1, Hypercall: 3,
}

#: How many bytes of a REP INS/OUTS the hypervisor moves per exit: one page of the memory
#: operand (derived from Xen's xen/arch/x86/hvm/emulate.c, which clips the repetitions to
#: what one page holds and retries the instruction when fewer were done than asked).
REP_BYTES_PER_EXIT = PAGE_SIZE


class GuestPortIo:
    """String and direct port I/O of a ``VirtualCpu`` (a mixin: it uses the vCPU's control
    block, clock, trace and memory access)."""

    # -- port I/O ----------------------------------------------------------------------------
    def _string_io(self, op: Ins | Outs) -> Any:
        """(REP) INS/OUTS. The hypervisor emulates at most one page of the memory operand per
        exit (as Xen's emulator clips the repetitions to the page and re-runs the instruction
        for the rest), so a long REP takes several exits, never an unbounded one."""
        is_in = op.__class__ is Ins
        if not self.control.io_intercepts.exit_lookup[op.size][op.port]:
            return self._direct_string_io(op, is_in)
        if self._mode == PV:
            return self._pv_trap_io(op, is_in)
        acc = PortAccess.unchecked(op.port, op.size, is_in, True, op.rep)
        control = self.control
        values = None if is_in or op.addr is not None else list(op.values)
        done: list[int] = []
        first = 0
        while first < op.count:
            if op.addr is None:
                n = min(REP_BYTES_PER_EXIT // op.size, op.count - first)
            else:  # up to the end of the memory operand's page (at least one element)
                at = op.addr + first * op.size
                n = max(1, min((PAGE_SIZE - (at & PAGE_MASK)) // op.size, op.count - first))
            self.string_count = n
            self.string_address = None if op.addr is None else op.addr + first * op.size
            if values is not None:
                self.string_buffer = values[first : first + n]
            if self._mode == VMX:
                control.exit_reason = EXIT_REASON_IO_INSTRUCTION
                control.exit_qualification = q = vmx_io_qualification(acc)
                control.instruction_len = INSN_LEN[op.__class__]
                self._exit((VMX_STRING_IO_EXIT.id, q))
            else:
                control.exitcode, control.exitinfo2 = VMEXIT_IOIO, self.rip
                control.exitinfo1 = info1 = svm_ioio_exitinfo1(acc)
                self._exit((SVM_IO_EXIT.id, info1, self.rip))
            control.host_rip(self)
            self._clock.now += self._entry_ns
            if is_in:
                done += self.string_buffer
            first += n
        return done if is_in else None

    def _direct_string_io(self, op: Ins | Outs, is_in: bool) -> Any:
        """A REP INS/OUTS on a port the domain owns: no exit; with a memory operand the CPU
        moves the bytes through its own page tables, as a block move does."""
        if op.addr is None:
            return self._direct_io(op, is_in, True)
        size = op.size
        if is_in:
            values = self._direct_io(Ins(op.port, size, op.count), True, True)
            data = b"".join(v.to_bytes(size, "little") for v in values)
            self._block(StoreBlock(op.addr, data))
            return values
        data = self._block(LoadBlock(op.addr, op.count * size))
        values = elements(data, size)
        self._direct_io(Outs(op.port, size, values), False, True)
        return None

    def _pv_trap_io(self, op: Any, is_in: bool) -> Any:
        """A PV guest may not execute IN/OUT on a port Xen has not granted it: #GP, which
        traps into Xen (it owns the IDT); Xen decodes and emulates the instruction."""
        self.instruction = op
        if op.__class__ in (Ins, Outs):
            self.string_count = op.count
            self.string_address = op.addr
            self.string_buffer = [] if is_in or op.addr is not None else list(op.values)
        elif not is_in:
            self.rax = op.value
        t = self._clock.advance(self._exit_ns)
        self._record((t, PV_GP_TRAP.id, self.rip))
        result = self.control.trap_entry(self, 13, 0, 0)
        self._clock.now += self._entry_ns
        if op.__class__ is Ins:
            return self.string_buffer
        return result

    def _direct_io(self, op: Any, is_in: bool, string: bool) -> Any:
        bus = self.machine.ports
        if string:
            n = op.count
            if is_in:
                result: Any = elements(bus.read_string(op.port, op.size, n), op.size)
            else:
                for v in op.values:
                    bus.write(op.port, op.size, v)
                result = None
        else:
            n = 1
            if is_in:
                result = bus.read(op.port, op.size)
            else:
                bus.write(op.port, op.size, op.value)
                result = None
        t = self._clock.advance(n * self.machine.costs.native_port_io_ns)
        self._record((t, self._rows.io_in if is_in else self._rows.io_out, op.port, n))
        return result
