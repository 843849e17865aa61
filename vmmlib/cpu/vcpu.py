"""The virtual CPU: runs a guest program one operation at a time, as VT-x / AMD-V would.

``VirtualCpu.step()`` takes the operation the guest yielded and does what the hardware does,
knowing only its control block (``vmmlib.cpu.vmcs``) and the physical machine:

* port I/O whose bits are clear in the intercept map goes straight to the machine's device
  (the domain owns it); otherwise the CPU **exits**: it writes the exit record in the vendor's
  real format into the control block and the trace, and jumps to the handler's entry point;
* a load or store walks the shadow table; a present entry reaches machine memory directly, a
  missing (or read-only, for a store) one makes a #PF exit;
* a hypercall is a VMCALL / VMMCALL exit (HVM), or a trap straight into the hypervisor (PV).

It never imports the hypervisor: Xen fills in the control block from above (``vmmlib.xen``).
Every hop appends one row to the machine's trace and advances the virtual clock. The caller
decides when to step, so a widget can show one operation at a time and a scheduler can
interleave vCPUs. ``step()`` is the only path: ``run()`` just calls it in a loop.

Speed: a trapped IN/OUT is the simulator's hot path (issue "exits at silicon speed"), so
``_port_io`` encodes the exit record with inline arithmetic (the same bits as
``exits.vmx_io_qualification``, pinned by tests), looks the intercept decision up in the map's
``exit_lookup`` and appends plain tuples to the trace.
"""

from __future__ import annotations

from typing import Any

from ..errors import GuestFault, GuestProgramError
from ..hw.machine import PhysicalMachine
from ..hw.memory import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE
from .exits import (
    EXIT_REASON_EXCEPTION_NMI,
    EXIT_REASON_IO_INSTRUCTION,
    EXIT_REASON_VMCALL,
    PF_VECTOR,
    SVM_IO_EXIT,
    SVM_PF_EXIT,
    SVM_VMMCALL_EXIT,
    VMEXIT_EXCEPTION_PF,
    VMEXIT_IOIO,
    VMEXIT_VMMCALL,
    VMX_IO_EXIT,
    VMX_PF_EXIT,
    VMX_VMCALL_EXIT,
    PortAccess,
    pf_error_code,
    svm_ioio_exitinfo1,
    vmx_intr_info,
    vmx_io_qualification,
)
from .ops import Guest, Hypercall, In, Ins, Load, Out, Outs, Store
from .paging import PTE_FRAME_MASK, PTE_WRITABLE
from .vmcs import RETRY, ControlBlock

#: Nominal instruction lengths (bytes) for RIP bookkeeping: IN/OUT with DX, REP INS/OUTS,
#: a MOV to or from memory, VMCALL (0F 01 C1).
INSN_LEN = {In: 1, Out: 1, Ins: 2, Outs: 2, Load: 3, Store: 3, Hypercall: 3}

#: How many bytes of a REP INS/OUTS the hypervisor moves per exit: one page of the memory
#: operand (derived from Xen's xen/arch/x86/hvm/emulate.c, which clips the repetitions to
#: what one page holds and retries the instruction when fewer were done than asked).
REP_BYTES_PER_EXIT = PAGE_SIZE

#: The #PF exit's interruption information: valid, hardware exception, error code, vector 14.
PF_INTR_INFO = vmx_intr_info(PF_VECTOR, True)
#: EXITINFO1 bit 9 (A64): the model's instructions use 64-bit addressing.
SVM_A64 = 1 << 9

DIRECT_IO = ("port", "dir", "count")
RAM_ACCESS = ("addr", "value")
CRASH = ("error",)


class VirtualCpu:
    """One virtual CPU running the guest generator ``program`` under ``control``."""

    def __init__(
        self, machine: PhysicalMachine, control: ControlBlock, program: Guest, name: str
    ) -> None:
        self.machine = machine
        self.control = control
        self.name = name
        self.program = program
        self.rip = 0x1000
        self.rax = 0
        self.instruction: Any = None  # the operation being executed (what an emulator decodes)
        self.string_buffer: list[int] = []  # the memory operand of INS/OUTS
        self.string_count = 0  # RCX for REP INS/OUTS
        self.done = False
        self.crashed: BaseException | None = None
        self.result: Any = None
        self.steps = 0
        self._pending: Any = None  # the operation the guest yielded and is waiting on
        self._started = False
        self._vmx = control.vendor == "vmx"
        self._clock = machine.clock
        self._record = machine.trace.record
        costs = machine.costs
        self._exit_ns, self._entry_ns = costs.vm_exit_ns, costs.vm_entry_ns

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"{type(self).__name__}({self.name!r}, {self.steps} steps, {state})"

    # -- driving the guest ------------------------------------------------------------------
    def step(self) -> bool:
        """Perform one guest operation. Returns False once the guest has finished."""
        if self.done:
            return False
        if not self._started:  # run the guest up to its first operation, then do it
            self._started = True
            if not self._resume(None, first=True):
                return False
        op = self._pending
        cls = op.__class__
        execute = _EXECUTE.get(cls)
        if execute is None:
            return self._crash(GuestProgramError(f"guest yielded {op!r}, not an operation"))
        self.steps += 1
        self.rip += INSN_LEN[cls]
        self.instruction = op
        try:
            result = execute(self, op)
        except GuestFault as fault:  # delivered into the guest, as the CPU would
            return self._resume(fault, throw=True)
        try:
            self._pending = self.program.send(result)
        except StopIteration as stop:
            return self._halt(stop.value)
        except Exception as exc:  # the guest died of something it did not handle
            return self._crash(exc)
        return True

    def run(self, max_steps: int = 1_000_000) -> int:
        """Step until the guest finishes (or ``max_steps``); returns the number of steps."""
        n = 0
        step = self.step
        while n < max_steps and step():
            n += 1
        return n

    def _resume(self, value: Any, first: bool = False, throw: bool = False) -> bool:
        try:
            if first:
                self._pending = next(self.program)
            elif throw:
                self._pending = self.program.throw(value)
            else:
                self._pending = self.program.send(value)
        except StopIteration as stop:
            return self._halt(stop.value)
        except Exception as exc:  # the guest died of something it did not handle
            return self._crash(exc)
        return True

    def _halt(self, value: Any) -> bool:
        self.done = True
        self.result = value  # what the guest program returned
        self._record((self._clock.now, self.name, "halt", ()))
        return False

    def _crash(self, exc: BaseException) -> bool:
        self.done = True
        self.crashed = exc
        self._record((self._clock.now, self.name, "crash", CRASH, f"{type(exc).__name__}: {exc}"))
        return False

    # -- port I/O ----------------------------------------------------------------------------
    def _port_io(self, op: In | Out) -> Any:
        """IN / OUT: straight to the device, or one exit through the handler."""
        port = op.port
        size = op.size
        is_in = op.__class__ is In
        if not self.control.io_intercepts.exit_lookup[size][port]:
            return self._direct_io(op, is_in, False)
        clock = self._clock
        control = self.control
        clock.now += self._exit_ns
        if self._vmx:  # exits.vmx_io_qualification, inline: size-1 | IN << 3 | port << 16
            q = (size - 1) | (8 if is_in else 0) | port << 16
            control.exit_reason, control.exit_qualification = EXIT_REASON_IO_INSTRUCTION, q
            control.instruction_len = 1
            self._record((clock.now, "cpu", "exit", VMX_IO_EXIT, "IO_INSTRUCTION", 30, q, 1))
        else:  # exits.svm_ioio_exitinfo1, inline: TYPE | one-hot SZ | A64 | port << 16
            info1 = (1 if is_in else 0) | size << 4 | SVM_A64 | port << 16
            control.exitcode, control.exitinfo1, control.exitinfo2 = VMEXIT_IOIO, info1, self.rip
            self._record((clock.now, "cpu", "exit", SVM_IO_EXIT, "IOIO", 0x7B, info1, self.rip))
        if not is_in:
            self.rax = op.value  # what the hypervisor finds in guest state
        control.host_rip(self)
        clock.now += self._entry_ns
        return self.rax if is_in else None

    def _string_io(self, op: Ins | Outs) -> Any:
        """(REP) INS/OUTS: the hypervisor emulates at most one page of elements per exit
        (as Xen's emulator clips the repetitions to the memory operand's page and re-runs the
        instruction for the rest), so a long REP takes several exits, never an unbounded one."""
        is_in = op.__class__ is Ins
        if not self.control.io_intercepts.exit_lookup[op.size][op.port]:
            return self._direct_io(op, is_in, True)
        acc = PortAccess.unchecked(op.port, op.size, is_in, True, op.rep)
        if self._vmx:
            record = (VMX_IO_EXIT, "IO_INSTRUCTION", EXIT_REASON_IO_INSTRUCTION,
                      vmx_io_qualification(acc), INSN_LEN[op.__class__])
        else:
            record = (SVM_IO_EXIT, "IOIO", VMEXIT_IOIO, svm_ioio_exitinfo1(acc), self.rip)
        per_exit = REP_BYTES_PER_EXIT // op.size
        values = None if is_in else list(op.values)
        done: list[int] = []
        for first in range(0, op.count, per_exit):
            self.string_count = min(per_exit, op.count - first)
            if not is_in:
                self.string_buffer = values[first : first + self.string_count]
            self._exit(record)
            self.control.host_rip(self)
            self._clock.now += self._entry_ns
            if is_in:
                done += self.string_buffer
        return done if is_in else None

    def _direct_io(self, op: Any, is_in: bool, string: bool) -> Any:
        bus = self.machine.ports
        clock = self._clock
        if string:
            n = op.count
            if is_in:
                result: Any = [bus.read(op.port, op.size) for _ in range(n)]
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
        t = clock.advance(n * self.machine.costs.native_port_io_ns)
        self._record((t, self.name, "io", DIRECT_IO, op.port, "in" if is_in else "out", n))
        return result

    # -- exits -------------------------------------------------------------------------------
    def _exit(self, record: tuple) -> None:
        """Leave the guest: write the exit fields into the control block, trace the record.

        ``record`` is (schema, reason name, exit reason or code, then the vendor's fields)."""
        control = self.control
        if record[0] is VMX_IO_EXIT or record[0] is VMX_PF_EXIT or record[0] is VMX_VMCALL_EXIT:
            control.exit_reason = record[2]
            if len(record) > 3:
                control.exit_qualification = record[3]
            if record[0] is VMX_IO_EXIT:
                control.instruction_len = record[4]
            elif record[0] is VMX_PF_EXIT:
                control.intr_info, control.intr_error_code = record[4], record[5]
        else:
            control.exitcode = record[2]
            if len(record) > 3:
                control.exitinfo1, control.exitinfo2 = record[3], record[4]
        t = self._clock.advance(self._exit_ns)
        self._record((t, "cpu", "exit", *record))

    # -- memory -------------------------------------------------------------------------------
    def _memory(self, op: Load | Store) -> Any:
        write = op.__class__ is Store
        addr = op.addr
        self.instruction = op  # a split access emulates each piece as its own instruction
        if (addr & PAGE_MASK) + op.size > PAGE_SIZE:
            return self._split_access(op, write)
        shadow = self.control.shadow
        while True:
            spte = shadow.get(addr >> PAGE_SHIFT)
            if spte is not None and (not write or spte & PTE_WRITABLE):  # no exit: plain RAM
                maddr = (spte & PTE_FRAME_MASK) | (addr & PAGE_MASK)
                t = self._clock.advance(self.machine.costs.ram_access_ns)
                memory = self.machine.memory
                if write:
                    memory.write(maddr, op.size, op.value)
                    self._record((t, self.name, "store", RAM_ACCESS, addr, op.value))
                    return None
                value = memory.read(maddr, op.size)
                self._record((t, self.name, "load", RAM_ACCESS, addr, value))
                return value
            # no shadow entry, or a read-only one for a store: #PF exit
            self._exit(self._pf_record(addr, pf_error_code(spte is not None, write)))
            outcome = self.control.host_rip(self)
            self._clock.now += self._entry_ns
            if outcome is not RETRY:
                return outcome

    def _split_access(self, op: Load | Store, write: bool) -> Any:
        """An access that crosses a page boundary is done as one access per byte, each
        translated on its own page (as the CPU splits it); a load returns the bytes joined."""
        value = 0
        for i in range(op.size):
            if write:
                self._memory(Store(op.addr + i, 1, (op.value >> (8 * i)) & 0xFF))
            else:
                value |= self._memory(Load(op.addr + i, 1)) << (8 * i)
        return None if write else value

    def _pf_record(self, addr: int, error_code: int) -> tuple:
        if self._vmx:  # for #PF the exit qualification is the faulting linear address
            return (VMX_PF_EXIT, "EXCEPTION_NMI", EXIT_REASON_EXCEPTION_NMI, addr, PF_INTR_INFO,
                    error_code)
        return (SVM_PF_EXIT, "EXCP_PF", VMEXIT_EXCEPTION_PF, error_code, addr)

    # -- hypercalls -----------------------------------------------------------------------------
    def _hypercall(self, op: Hypercall) -> Any:
        if self.control.paravirtual:  # a PV guest traps straight into the hypervisor
            return self.control.hypercall_entry(self)
        if self._vmx:
            self._exit((VMX_VMCALL_EXIT, "VMCALL", EXIT_REASON_VMCALL))
        else:
            self._exit((SVM_VMMCALL_EXIT, "VMMCALL", VMEXIT_VMMCALL))
        result = self.control.host_rip(self)
        self._clock.now += self._entry_ns
        return result


_EXECUTE = {
    In: VirtualCpu._port_io,
    Out: VirtualCpu._port_io,
    Ins: VirtualCpu._string_io,
    Outs: VirtualCpu._string_io,
    Load: VirtualCpu._memory,
    Store: VirtualCpu._memory,
    Hypercall: VirtualCpu._hypercall,
}
