"""The virtual CPU: runs a guest program one operation at a time.

``Vcpu.step()`` takes the operation the guest yielded and does what the hardware would:

* port I/O whose bits are clear in the intercept bitmap goes straight to the machine's device
  (the domain owns it); otherwise the CPU **exits**, writing an exit record in the vendor's
  real format, and the hypervisor (``vmmlib.hypervisor``) decodes and emulates it;
* a load or store walks the shadow page table; an entry that is not present (an MMIO page,
  a page the guest itself has not mapped, or one the shadow has not filled yet) makes a #PF
  exit, which the hypervisor classifies;
* a hypercall goes to the hypervisor directly (PV) or as a VMCALL/VMMCALL exit (HVM).

Every hop appends one event to the machine's trace and advances the virtual clock. The
caller decides when to step, so a widget can show one operation at a time and a scheduler
can interleave vCPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from . import hypervisor
from .errors import GuestFault, GuestProgramError
from .exits import (
    EXIT_REASON_EXCEPTION_NMI,
    EXIT_REASON_IO_INSTRUCTION,
    EXIT_REASON_VMCALL,
    PF_VECTOR,
    VMEXIT_EXCEPTION_PF,
    VMEXIT_IOIO,
    VMEXIT_VMMCALL,
    PortAccess,
    svm_ioio_exitinfo1,
    vmx_intr_info,
    vmx_io_qualification,
)
from .machine import Domain
from .memory import PAGE_MASK, PAGE_SHIFT
from .ops import Hypercall, In, Ins, Load, Out, Outs, Store

#: Nominal instruction lengths (bytes) for RIP bookkeeping: IN/OUT with DX, REP INS/OUTS,
#: a MOV to or from memory, VMCALL (0F 01 C1).
INSN_LEN = {In: 1, Out: 1, Ins: 2, Outs: 2, Load: 3, Store: 3, Hypercall: 3}

Program = Generator[Any, Any, Any]

#: How many bytes of a REP INS/OUTS the hypervisor moves per exit: one page of the memory
#: operand (derived from Xen's xen/arch/x86/hvm/emulate.c, which clips the repetitions to
#: what one page holds and retries the instruction when fewer were done than asked).
REP_BYTES_PER_EXIT = PAGE_MASK + 1


class Vcpu:
    """One virtual CPU of ``domain``, running the guest generator ``program``."""

    def __init__(self, domain: Domain, program: Program, name: str | None = None) -> None:
        self.domain = domain
        self.machine = domain.machine
        self.name = name or domain.name
        self.program = program
        self.rip = 0x1000
        self.rax = 0
        self.string_buffer: list[int] = []  # the memory operand of INS/OUTS
        self.string_count = 0  # RCX for REP INS/OUTS
        self.done = False
        self.crashed: BaseException | None = None
        self.result: Any = None
        self.steps = 0
        self._pending: Any = None  # the operation the guest yielded and is waiting on
        self._started = False
        self._dispatch: dict[type, Callable[[Any], Any]] = {
            In: self._port_io,
            Out: self._port_io,
            Ins: self._port_io,
            Outs: self._port_io,
            Load: self._memory,
            Store: self._memory,
            Hypercall: self._hypercall,
        }

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"Vcpu({self.name!r}, {self.steps} steps, {state})"

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
        handler = self._dispatch.get(type(op))
        if handler is None:
            return self._crash(GuestProgramError(f"guest yielded {op!r}, not an operation"))
        self.steps += 1
        self.rip += INSN_LEN[type(op)]
        try:
            result = handler(op)
        except GuestFault as fault:  # delivered into the guest, as the CPU would
            return self._resume(fault, throw=True)
        return self._resume(result)

    def run(self, max_steps: int = 1_000_000) -> int:
        """Step until the guest finishes (or ``max_steps``); returns the number of steps."""
        n = 0
        while n < max_steps and self.step():
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
            self.done = True
            self.result = stop.value  # what the guest program returned
            self.machine.trace.record((self.machine.clock.now, self.name, "halt", {}))
            return False
        except Exception as exc:  # the guest died of something it did not handle
            return self._crash(exc)
        return True

    def _crash(self, exc: BaseException) -> bool:
        self.done = True
        self.crashed = exc
        self.machine.trace.record(
            (self.machine.clock.now, self.name, "crash", {"error": f"{type(exc).__name__}: {exc}"})
        )
        return False

    # -- port I/O ----------------------------------------------------------------------------
    def _port_io(self, op: In | Out | Ins | Outs) -> Any:
        cls = type(op)
        string = cls is Ins or cls is Outs
        is_in = cls is In or cls is Ins
        if not self.domain.intercepts.exits(op.port, op.size):
            return self._direct_io(op, is_in, string)
        # the operation checked its port and size when the guest built it
        acc = PortAccess.unchecked(op.port, op.size, is_in, string, string and op.rep)
        if self.domain.vendor == "vmx":
            fields = {
                "reason": "IO_INSTRUCTION",
                "exit_reason": EXIT_REASON_IO_INSTRUCTION,
                "exit_qualification": vmx_io_qualification(acc),
                "instruction_len": INSN_LEN[cls],
            }
        else:
            fields = {
                "reason": "IOIO",
                "exitcode": VMEXIT_IOIO,
                "exitinfo1": svm_ioio_exitinfo1(acc),
                "exitinfo2": self.rip,  # rIP of the next instruction
            }
        if string:
            return self._string_io(op, is_in, fields)
        if not is_in:
            self.rax = op.value  # what the hypervisor finds in guest state
        self._trapped_io(fields)
        return self.rax if is_in else None

    def _trapped_io(self, fields: dict[str, Any]) -> None:
        """One exit for port I/O: the CPU leaves, the hypervisor emulates, the CPU re-enters."""
        clock = self.machine.clock
        clock.now += self.machine.costs.vm_exit_ns
        self.machine.trace.record((clock.now, "cpu", "exit", fields))
        hypervisor.handle_port_io(self, fields)
        clock.now += self.machine.costs.vm_entry_ns

    def _string_io(self, op: Ins | Outs, is_in: bool, fields: dict[str, Any]) -> Any:
        """(REP) INS/OUTS: the hypervisor emulates at most one page of elements per exit
        (as Xen's emulator clips the repetitions to the memory operand's page and re-runs the
        instruction for the rest), so a long REP takes several exits, never an unbounded one."""
        per_exit = REP_BYTES_PER_EXIT // op.size
        values = None if is_in else list(op.values)
        done: list[int] = []
        for first in range(0, op.count, per_exit):
            self.string_count = min(per_exit, op.count - first)
            if not is_in:
                self.string_buffer = values[first : first + self.string_count]
            self._trapped_io(dict(fields))
            if is_in:
                done += self.string_buffer
        return done if is_in else None

    def _direct_io(self, op: Any, is_in: bool, string: bool) -> Any:
        bus = self.machine.ports
        clock = self.machine.clock
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
        self.machine.trace.record(
            (t, self.name, "io", {"port": op.port, "dir": "in" if is_in else "out", "count": n})
        )
        return result

    # -- exits and entries --------------------------------------------------------------------
    def _exit(self, fields: dict[str, Any]) -> None:
        t = self.machine.clock.advance(self.machine.costs.vm_exit_ns)
        self.machine.trace.record((t, "cpu", "exit", fields))

    def _entry(self) -> None:
        self.machine.clock.advance(self.machine.costs.vm_entry_ns)

    # -- memory -------------------------------------------------------------------------------
    def _memory(self, op: Load | Store) -> Any:
        write = type(op) is Store
        if (op.addr & PAGE_MASK) + op.size > PAGE_MASK + 1:
            return self._split_access(op, write)
        dom = self.domain
        while True:
            gpa_page = dom.shadow.get(op.addr >> PAGE_SHIFT)
            if gpa_page is not None:  # the shadow maps it: plain RAM, no exit
                gpa = gpa_page | (op.addr & PAGE_MASK)
                pte_ok = dom.page_table is None or dom.page_table.translate(op.addr, write)
                if pte_ok is not None:
                    t = self.machine.clock.advance(self.machine.costs.ram_access_ns)
                    if write:
                        dom.write_ram(gpa, op.size, op.value)
                        self.machine.trace.record(
                            (t, self.name, "store", {"addr": op.addr, "value": op.value})
                        )
                        return None
                    value = dom.read_ram(gpa, op.size)
                    self.machine.trace.record(
                        (t, self.name, "load", {"addr": op.addr, "value": value})
                    )
                    return value
            # shadow entry not present: #PF exit
            error_code = hypervisor.pf_error_code_for(dom, op.addr, write)
            self._exit(self._pf_exit_record(op.addr, error_code))
            outcome = hypervisor.handle_page_fault(self, op, error_code)
            self._entry()
            if outcome is not hypervisor.RETRY:
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

    def _pf_exit_record(self, addr: int, error_code: int) -> dict[str, Any]:
        if self.domain.vendor == "vmx":
            return {
                "reason": "EXCEPTION_NMI",
                "exit_reason": EXIT_REASON_EXCEPTION_NMI,
                "exit_qualification": addr,  # for #PF: the faulting linear address
                "intr_info": vmx_intr_info(PF_VECTOR, True),
                "intr_error_code": error_code,
            }
        return {
            "reason": "EXCP_PF",
            "exitcode": VMEXIT_EXCEPTION_PF,
            "exitinfo1": error_code,
            "exitinfo2": addr,
        }

    # -- hypercalls -----------------------------------------------------------------------------
    def _hypercall(self, op: Hypercall) -> Any:
        if self.domain.kind == "hvm":
            if self.domain.vendor == "vmx":
                fields = {"reason": "VMCALL", "exit_reason": EXIT_REASON_VMCALL}
            else:
                fields = {"reason": "VMMCALL", "exitcode": VMEXIT_VMMCALL}
            self._exit(fields)
            result = hypervisor.handle_hypercall(self, op)
            self._entry()
            return result
        return hypervisor.handle_hypercall(self, op)
