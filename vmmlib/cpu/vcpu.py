"""The virtual CPU: runs a guest program one operation at a time, as VT-x / AMD-V would.

``VirtualCpu.step()`` takes the operation the guest yielded and does what the hardware does,
knowing only its control block (``vmmlib.cpu.vmcs``) and the physical machine:

* port I/O whose bits are clear in the intercept map goes straight to the machine's device
  (the domain owns it); otherwise the CPU **exits**: it writes the exit fields in the vendor's
  real format into the control block, traces the exit record and jumps to the handler's entry
  point (the host RIP), then re-enters the guest;
* a load or store walks the shadow table; a present entry reaches machine memory directly, a
  missing (or read-only, for a store) one makes a #PF exit;
* a hypercall is a VMCALL / VMMCALL exit (HVM), or a trap straight into the hypervisor (PV).

It never imports the hypervisor: Xen fills in the control block from above (``vmmlib.xen``).
Every hop appends one row to the machine's trace and advances the virtual clock. The caller
decides when to step, so a widget can show one operation at a time and a scheduler can
interleave vCPUs.

Speed: a trapped IN/OUT is the simulator's hot path (a real CPU takes 1-2 M exits per second),
so the one loop that runs operations, ``_run``, executes IN and OUT inline: it looks the
intercept decision up in the map's ``exit_lookup``, encodes the exit record with arithmetic
(the same bits as ``exits.vmx_io_qualification`` and ``svm_ioio_exitinfo1``, pinned by tests)
and appends short tuples to the trace. ``step()`` is ``_run(1)`` and ``run()`` is
``_run(max_steps)``: there is no second copy of the exit path.
"""

from __future__ import annotations

from typing import Any

from ..errors import GuestFault, GuestProgramError
from ..hw.machine import PhysicalMachine
from ..hw.memory import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE
from ..trace import Schema
from .exits import (
    EXIT_REASON_EXCEPTION_NMI,
    EXIT_REASON_IO_INSTRUCTION,
    EXIT_REASON_VMCALL,
    SVM_IO_EXIT,
    SVM_PF_EXIT,
    SVM_VMMCALL_EXIT,
    VMEXIT_EXCEPTION_PF,
    VMEXIT_IOIO,
    VMEXIT_VMMCALL,
    VMX_IO_EXIT,
    VMX_PF_EXIT,
    VMX_STRING_IO_EXIT,
    VMX_VMCALL_EXIT,
    PortAccess,
    pf_error_code,
    svm_ioio_exitinfo1,
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

#: Operations ``run()`` executes per call of the loop (see ``run``).
RUN_CHUNK = 1024

#: EXITINFO1 bit 9 (A64): the model's instructions use 64-bit addressing.
SVM_A64 = 1 << 9


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
        # the instruction the emulator decodes: a memory access, string I/O or hypercall (for
        # IN/OUT the handler decodes the exit qualification instead)
        self.instruction: Any = None
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
        # the schema ids of the guest's own rows in the trace: the actor is this vCPU
        self._io_in = Schema(name, "io", ("port", "dir", "count"), {"dir": "in"}).id
        self._io_out = Schema(name, "io", ("port", "dir", "count"), {"dir": "out"}).id
        self._load = Schema(name, "load", ("addr", "value")).id
        self._store = Schema(name, "store", ("addr", "value")).id
        self._halted = Schema(name, "halt").id
        self._crashed = Schema(name, "crash", ("error",)).id

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"{type(self).__name__}({self.name!r}, {self.steps} steps, {state})"

    # -- driving the guest ------------------------------------------------------------------
    def step(self) -> bool:
        """Perform one guest operation. Returns False once the guest has finished."""
        return self._run(1) == 1

    def run(self, max_steps: int = 1_000_000) -> int:
        """Step until the guest finishes (or ``max_steps`` steps); returns how many steps
        returned True (the step that finishes the guest is not counted)."""
        done = 0
        while done < max_steps and not self.done:
            # in chunks: CPython 3.11 specializes a function's bytecode only when it is
            # entered, so one endless call of _run would run unspecialized throughout
            done += self._run(min(max_steps - done, RUN_CHUNK))
        return done

    def _run(self, limit: int) -> int:
        """The one loop that executes guest operations, at most ``limit`` of them.

        Returns the number after which the guest was still running. IN and OUT, the hot
        path, are executed inline; everything else goes through ``_EXECUTE``.
        """
        if self.done:
            return 0
        if not self._started:  # run the guest up to its first operation, then do it
            self._started = True
            if not self._resume(None, first=True):
                return 0
        clock, record, control = self._clock, self._record, self.control
        intercepts, host_rip, send = control.io_intercepts, control.host_rip, self.program.send
        vmx, exit_ns, entry_ns = self._vmx, self._exit_ns, self._entry_ns
        vmx_io, svm_io = VMX_IO_EXIT.id, SVM_IO_EXIT.id
        op = self._pending
        ok = 0
        try:
            while ok < limit:
                cls = op.__class__
                if cls is Out or cls is In:
                    self.rip += 1
                    port, size = op.port, op.size
                    is_in = cls is In
                    if intercepts.exit_lookup[size][port]:  # a VM exit
                        clock.now += exit_ns
                        if vmx:  # exit qualification: size-1 | IN << 3 | port << 16
                            q = (size - 1) | (8 if is_in else 0) | port << 16
                            control.exit_reason, control.exit_qualification = 30, q
                            control.instruction_len = 1
                            record((clock.now, vmx_io, q))
                        else:  # EXITINFO1: TYPE | one-hot SZ | A64 | port << 16; EXITINFO2: rIP
                            info1 = (1 if is_in else 0) | size << 4 | SVM_A64 | port << 16
                            control.exitcode, control.exitinfo1 = VMEXIT_IOIO, info1
                            control.exitinfo2 = self.rip
                            record((clock.now, svm_io, info1, self.rip))
                        if is_in:
                            result = host_rip(self)
                        else:
                            self.rax = op.value  # what the hypervisor finds in guest state
                            host_rip(self)
                            result = None
                        clock.now += entry_ns
                    else:
                        result = self._direct_io(op, is_in, False)
                else:
                    execute = _EXECUTE.get(cls)
                    if execute is None:
                        self._crash(GuestProgramError(f"guest yielded {op!r}, not an operation"))
                        return ok
                    self.rip += INSN_LEN[cls]
                    self.instruction = op
                    try:
                        result = execute(self, op)
                    except GuestFault as fault:  # delivered into the guest, as the CPU would
                        ok += 1
                        if not self._resume(fault, throw=True):
                            return ok - 1
                        op = self._pending
                        continue
                ok += 1
                try:
                    op = send(result)
                except StopIteration as stop:
                    self._halt(stop.value)
                    return ok - 1
                except Exception as exc:  # the guest died of something it did not handle
                    self._crash(exc)
                    return ok - 1
            return ok
        finally:  # the loop keeps its counters in locals; write them back however it ends
            self._pending = op
            self.steps += ok

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
        self._record((self._clock.now, self._halted))
        return False

    def _crash(self, exc: BaseException) -> bool:
        self.done = True
        self.crashed = exc
        self._record((self._clock.now, self._crashed, f"{type(exc).__name__}: {exc}"))
        return False

    # -- port I/O ----------------------------------------------------------------------------
    def _string_io(self, op: Ins | Outs) -> Any:
        """(REP) INS/OUTS: the hypervisor emulates at most one page of elements per exit
        (as Xen's emulator clips the repetitions to the memory operand's page and re-runs the
        instruction for the rest), so a long REP takes several exits, never an unbounded one."""
        is_in = op.__class__ is Ins
        if not self.control.io_intercepts.exit_lookup[op.size][op.port]:
            return self._direct_io(op, is_in, True)
        acc = PortAccess.unchecked(op.port, op.size, is_in, True, op.rep)
        control = self.control
        per_exit = REP_BYTES_PER_EXIT // op.size
        values = None if is_in else list(op.values)
        done: list[int] = []
        for first in range(0, op.count, per_exit):
            self.string_count = min(per_exit, op.count - first)
            if not is_in:
                self.string_buffer = values[first : first + self.string_count]
            if self._vmx:
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
        return done if is_in else None

    def _direct_io(self, op: Any, is_in: bool, string: bool) -> Any:
        bus = self.machine.ports
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
        t = self._clock.advance(n * self.machine.costs.native_port_io_ns)
        self._record((t, self._io_in if is_in else self._io_out, op.port, n))
        return result

    # -- exits -------------------------------------------------------------------------------
    def _exit(self, row: tuple) -> None:
        """Leave the guest: the clock moves on by the exit cost and the record is traced as
        ``(time, schema id, *values)``; the caller has written the exit fields into the
        control block."""
        t = self._clock.advance(self._exit_ns)
        self._record((t, *row))

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
                    self._record((t, self._store, addr, op.value))
                    return None
                value = memory.read(maddr, op.size)
                self._record((t, self._load, addr, value))
                return value
            # no shadow entry, or a read-only one for a store: #PF exit
            self._pf_exit(addr, pf_error_code(spte is not None, write))
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

    def _pf_exit(self, addr: int, error_code: int) -> None:
        control = self.control
        if self._vmx:  # for #PF the exit qualification is the faulting linear address
            control.exit_reason = EXIT_REASON_EXCEPTION_NMI
            control.exit_qualification = addr
            control.intr_info = VMX_PF_EXIT.fixed["intr_info"]
            control.intr_error_code = error_code
            self._exit((VMX_PF_EXIT.id, addr, error_code))
        else:  # EXITINFO1 = the error code, EXITINFO2 = the faulting address
            control.exitcode = VMEXIT_EXCEPTION_PF
            control.exitinfo1, control.exitinfo2 = error_code, addr
            self._exit((SVM_PF_EXIT.id, error_code, addr))

    # -- hypercalls -----------------------------------------------------------------------------
    def _hypercall(self, op: Hypercall) -> Any:
        control = self.control
        if control.paravirtual:  # a PV guest traps straight into the hypervisor
            return control.hypercall_entry(self)
        if self._vmx:
            control.exit_reason = EXIT_REASON_VMCALL
            self._exit((VMX_VMCALL_EXIT.id,))
        else:
            control.exitcode = VMEXIT_VMMCALL
            self._exit((SVM_VMMCALL_EXIT.id,))
        result = control.host_rip(self)
        self._clock.now += self._entry_ns
        return result


_EXECUTE = {  # IN and OUT are executed inline by VirtualCpu._run
    Ins: VirtualCpu._string_io,
    Outs: VirtualCpu._string_io,
    Load: VirtualCpu._memory,
    Store: VirtualCpu._memory,
    Hypercall: VirtualCpu._hypercall,
}
