"""The virtual CPU: runs a guest program one operation at a time, as VT-x / AMD-V would.

``VirtualCpu.step()`` takes the operation the guest yielded and does what the hardware does,
knowing only its control block (``vmmlib.cpu.vmcs``) and the physical machine:

* port I/O whose bits are clear in the intercept map goes straight to the machine's device
  (the domain owns it); otherwise the CPU **exits**: it writes the exit fields in the vendor's
  real format into the control block, traces the exit record and jumps to the handler's entry
  point (the host RIP), then re-enters the guest; REP INS/OUTS exit once per page of their
  memory operand (``vmmlib.cpu.port_io``);
* a load or store walks the shadow table; a present entry reaches machine memory directly, a
  missing (or read-only, for a store) one makes a #PF exit; an access that crosses a page is
  checked on both pages before any byte moves, as x86 does (``vmmlib.cpu.memory_access``);
* INVLPG exits (Xen runs HVM guests on shadow tables, so it must see TLB flushes);
* a hypercall is a VMCALL / VMMCALL exit (HVM), or a trap straight into the hypervisor (PV).
  A paravirtualized guest has no VMCS: its port I/O and page faults *trap* into Xen (#GP,
  #PF) instead of exiting.

It never imports the hypervisor: Xen fills in the control block from above (``vmmlib.xen``).
Every hop appends one row to the machine's trace and advances the virtual clock.

**Never a raw exception.** Whatever a guest does, ``step()`` returns: a fault the hardware
would raise is delivered into the guest (which may catch it, as a kernel's handler would); a
guest that dies of an exception it does not handle is marked crashed, with a reason that can
always be printed and holds no memory address. A Ctrl-C from the user (KeyboardInterrupt)
still stops the simulator; a guest's own SystemExit is a crash.

**Speed.** A trapped IN/OUT is the simulator's hot path (a real CPU takes 1-2 M exits per
second), so the one loop that runs operations, ``_run``, executes IN and OUT inline: it looks
the intercept decision up in the map's ``exit_lookup``, encodes the exit record with
arithmetic (the same bits as ``exits.vmx_io_qualification`` and ``svm_ioio_exitinfo1``, pinned
by tests) and appends short tuples to the trace. ``step()`` is ``_run(1)``, ``run()`` calls
``_run`` in chunks: there is no second copy of the exit path.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import (
    ConfigError,
    DomainCrash,
    GuestFault,
    GuestProgramError,
)
from ..hw.machine import PhysicalMachine
from ..trace import Schema
from .exits import (
    EXIT_REASON_HLT,
    EXIT_REASON_INVLPG,
    EXIT_REASON_VMCALL,
    HYPERCALL_ENTRY,
    INTERRUPT_ENTRY,
    PV_GP_TRAP,
    SVM_HLT_EXIT,
    SVM_INVLPG_EXIT,
    SVM_IO_EXIT,
    SVM_VMMCALL_EXIT,
    VMEXIT_HLT,
    VMEXIT_INVLPG,
    VMEXIT_IOIO,
    VMEXIT_VMMCALL,
    VMX_HLT_EXIT,
    VMX_INVLPG_EXIT,
    VMX_IO_EXIT,
    VMX_VMCALL_EXIT,
)
from .memory_access import PV, SVM, VMX, GuestMemoryAccess
from .ops import (
    Cmpxchg,
    Guest,
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
from .port_io import INSN_LEN, GuestPortIo
from .vmcs import ControlBlock

#: Operations ``run()`` executes per call of the loop (see ``run``).
RUN_CHUNK = 1024

#: EXITINFO1 bit 9 (A64): the model's instructions use 64-bit addressing.
SVM_A64 = 1 << 9

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}>")


def describe(thing: Any, limit: int = 300) -> str:
    """A repr of anything a guest hands over that never raises, is short, and holds no memory
    address (so crash reasons are the same on every run)."""
    try:
        if isinstance(thing, int) and not isinstance(thing, bool) and abs(thing) >> 256:
            return f"an integer of {abs(thing).bit_length()} bits"
        text = repr(thing)
    except Exception:
        text = f"a {type(thing).__name__} (whose repr fails)"
    text = _ADDRESS.sub("…>", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_error(exc: BaseException) -> str:
    """``Type: message`` for an exception, which never raises and holds no memory address."""
    try:
        name = type(exc).__name__
    except Exception:
        name = "an exception"
    try:
        message = str(exc)
    except Exception:
        message = "(its message cannot be printed)"
    return describe(f"{name}: {message}" if message else name, 400).strip("'\"")


class GuestRows:
    """The schema ids of a guest's own rows in the trace (the actor is the vCPU), kept in one
    object so that the vCPU stays within CPython's 29 fast attributes (see
    tests/test_exit_path_equivalence.py)."""

    __slots__ = ("io_in", "io_out", "load", "store", "load_block", "store_block", "halted",
                 "crashed")

    def __init__(self, actor: str) -> None:
        self.io_in = Schema(actor, "io", ("port", "dir", "count"), {"dir": "in"}).id
        self.io_out = Schema(actor, "io", ("port", "dir", "count"), {"dir": "out"}).id
        self.load = Schema(actor, "load", ("addr", "value")).id
        self.store = Schema(actor, "store", ("addr", "value")).id
        self.load_block = Schema(actor, "load", ("addr", "length")).id
        self.store_block = Schema(actor, "store", ("addr", "length")).id
        self.halted = Schema(actor, "halt").id
        self.crashed = Schema(actor, "crash", ("error",)).id


class VirtualCpu(GuestPortIo, GuestMemoryAccess):
    """One virtual CPU running the guest generator ``program`` under ``control``."""

    def __init__(
        self, machine: PhysicalMachine, control: ControlBlock, program: Guest, name: str
    ) -> None:
        if not all(callable(getattr(program, m, None)) for m in ("send", "throw")):
            raise ConfigError(
                f"a guest program is a generator (call a function that yields operations), "
                f"not {describe(program)}"
            )
        self.machine = machine
        self.control = control
        self.name = name
        self.program = program
        self.rip = 0x1000
        self.rax = 0
        # the instruction the emulator decodes: a memory access, string I/O, hypercall or a
        # PV guest's trapped instruction (for a VM exit on IN/OUT the handler decodes the exit
        # qualification instead)
        self.instruction: Any = None
        self.string_buffer: list[int] = []  # INS/OUTS elements the program itself keeps
        self.string_count = 0  # RCX for REP INS/OUTS (this exit's part)
        self.string_address: int | None = None  # RDI/RSI: the memory operand, if any
        self.done = False
        self.crashed: BaseException | None = None
        self.result: Any = None
        self.steps = 0
        self._pending: Any = None  # the operation the guest yielded and is waiting on
        self._started = False
        self._mode = PV if control.paravirtual else VMX if control.vendor == "vmx" else SVM
        self._clock = machine.clock
        self._record = machine.trace.record
        costs = machine.costs
        self._exit_ns, self._entry_ns = costs.vm_exit_ns, costs.vm_entry_ns
        self._rows = GuestRows(name)

    def __repr__(self) -> str:
        state = "crashed" if self.crashed else "done" if self.done else "running"
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
        mode, exit_ns, entry_ns = self._mode, self._exit_ns, self._entry_ns
        vmx_io, svm_io = VMX_IO_EXIT.id, SVM_IO_EXIT.id
        alarms = clock.alarms
        op = self._pending
        ok = 0
        try:
            while ok < limit:
                cls = op.__class__
                try:
                    if cls is Out or cls is In:
                        self.rip += 1
                        if cls is Out:
                            port, size, value = op
                            is_in = False
                        else:
                            port, size = op
                            is_in = True
                        if not intercepts.exit_lookup[size][port]:
                            result = self._direct_io(op, is_in, False)
                        elif mode == VMX:  # exit qualification: size-1 | IN << 3 | port << 16
                            q = (size - 1) | (8 if is_in else 0) | port << 16
                            clock.now += exit_ns
                            control.exit_reason, control.exit_qualification = 30, q
                            control.instruction_len = 1
                            record((clock.now, vmx_io, q))
                            if not is_in:
                                self.rax = value  # what the hypervisor finds in guest state
                            result = host_rip(self)
                            clock.now += entry_ns
                        elif mode == SVM:  # EXITINFO1: TYPE | one-hot SZ | A64 | port << 16
                            info1 = (1 if is_in else 0) | size << 4 | SVM_A64 | port << 16
                            clock.now += exit_ns
                            control.exitcode, control.exitinfo1 = VMEXIT_IOIO, info1
                            control.exitinfo2 = self.rip  # the next instruction's rIP
                            record((clock.now, svm_io, info1, self.rip))
                            if not is_in:
                                self.rax = value
                            result = host_rip(self)
                            clock.now += entry_ns
                        else:
                            result = self._pv_trap_io(op, is_in)
                        if not is_in:
                            result = None
                    else:
                        if alarms and alarms[0][0] <= clock.now:  # an alarm's time has come
                            clock.fire_due()  # (an IN/OUT that has to wait runs them itself)
                        execute = _EXECUTE.get(cls)
                        if execute is None:
                            self._crash(GuestProgramError(
                                f"guest yielded {describe(op)}, not an operation"))
                            return ok
                        self.rip += INSN_LEN[cls]
                        self.instruction = op
                        result = execute(self, op)
                except DomainCrash as crash:  # Xen stopped the whole domain: nothing to deliver
                    self._crash(crash)
                    return ok
                except GuestFault as fault:  # delivered into the guest, as the CPU would
                    ok += 1
                    if not self._resume(fault, throw=True):
                        return ok - 1
                    op = self._pending
                    continue
                except Exception as exc:  # a bug of the model, never the guest's way out
                    self._crash(exc, internal=True)
                    return ok
                ok += 1
                try:
                    op = send(result)
                except StopIteration as stop:
                    self._halt(stop.value)
                    return ok - 1
                except (Exception, SystemExit) as exc:  # the guest died of something it
                    self._crash(exc)  # did not handle
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
        except (Exception, SystemExit) as exc:  # the guest died of something it did not handle
            return self._crash(exc)
        return True

    def _halt(self, value: Any) -> bool:
        self.done = True
        self.result = value  # what the guest program returned
        self._record((self._clock.now, self._rows.halted))
        return False

    def _crash(self, exc: BaseException, internal: bool = False) -> bool:
        self.done = True
        self.crashed = exc
        reason = describe_error(exc)
        if internal:
            reason = f"internal error of the model: {reason}"
        self._record((self._clock.now, self._rows.crashed, reason))
        return False

    # -- exits -------------------------------------------------------------------------------
    def _exit(self, row: tuple) -> None:
        """Leave the guest: the clock moves on by the exit cost and the record is traced as
        ``(time, schema id, *values)``; the caller has written the exit fields into the
        control block."""
        t = self._clock.advance(self._exit_ns)
        self._record((t, *row))

    def _invlpg(self, op: Invlpg) -> None:
        """INVLPG exits on a shadow-paging hypervisor, which drops its entry for the page."""
        control = self.control
        if self._mode == PV:  # a privileged instruction: #GP into Xen, which emulates it
            t = self._clock.advance(self._exit_ns)
            self._record((t, PV_GP_TRAP.id, self.rip))
            control.trap_entry(self, 13, 0, 0)
        elif self._mode == VMX:
            control.exit_reason, control.exit_qualification = EXIT_REASON_INVLPG, op.addr
            self._exit((VMX_INVLPG_EXIT.id, op.addr))
            control.host_rip(self)
        else:
            control.exitcode, control.exitinfo1 = VMEXIT_INVLPG, op.addr
            self._exit((SVM_INVLPG_EXIT.id, op.addr))
            control.host_rip(self)
        self._clock.now += self._entry_ns

    # -- halting ------------------------------------------------------------------------------
    def _hlt(self, op: Hlt) -> int:
        """HLT exits (Xen blocks the vCPU until an interrupt is pending); at the VM entry that
        ends it the interrupt is delivered, and the guest gets its vector."""
        control = self.control
        if self._mode == PV:  # a privileged instruction: #GP into Xen, which blocks the vCPU
            t = self._clock.advance(self._exit_ns)
            self._record((t, PV_GP_TRAP.id, self.rip))
            vector = control.trap_entry(self, 13, 0, 0)
        else:
            if self._mode == VMX:
                control.exit_reason, control.instruction_len = EXIT_REASON_HLT, 1
                self._exit((VMX_HLT_EXIT.id,))
            else:
                control.exitcode = VMEXIT_HLT
                self._exit((SVM_HLT_EXIT.id,))
            vector = control.host_rip(self)
        t = self._clock.advance(self._entry_ns)
        self._record((t, INTERRUPT_ENTRY.id, vector))
        return vector

    # -- hypercalls -----------------------------------------------------------------------------
    def _hypercall(self, op: Hypercall) -> Any:
        control = self.control
        if self._mode == PV:  # a PV guest traps straight into the hypervisor
            return control.hypercall_entry(self)
        if self._mode == VMX:
            control.exit_reason = EXIT_REASON_VMCALL
            self._exit((VMX_VMCALL_EXIT.id,))
        else:
            control.exitcode = VMEXIT_VMMCALL
            self._exit((SVM_VMMCALL_EXIT.id,))
        result = control.host_rip(self)
        t = self._clock.advance(self._entry_ns)
        self._record((t, HYPERCALL_ENTRY.id, result))
        return result


_EXECUTE = {  # IN and OUT are executed inline by VirtualCpu._run
    Ins: VirtualCpu._string_io,
    Outs: VirtualCpu._string_io,
    Load: VirtualCpu._memory,
    Store: VirtualCpu._memory,
    Xchg: VirtualCpu._atomic,
    Cmpxchg: VirtualCpu._atomic,
    StoreBlock: VirtualCpu._block,
    LoadBlock: VirtualCpu._block,
    Invlpg: VirtualCpu._invlpg,
    Hlt: VirtualCpu._hlt,
    Hypercall: VirtualCpu._hypercall,
}
