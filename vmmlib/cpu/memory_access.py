"""How the virtual CPU reaches guest memory: through the shadow table, faulting when it must.

The part of ``VirtualCpu`` (``vmmlib.cpu.vcpu``) that performs MOV to and from memory, XCHG and
LOCK CMPXCHG, and block moves (REP MOVSB), as the hardware does under shadow paging:

* the CPU walks the **shadow** table the hypervisor built (virtual page → shadow PTE holding a
  machine frame). A present entry reaches machine memory directly — no exit, only
  ``ram_access_ns``; a missing entry, or a read-only one for a write, is a #PF that exits to the
  hypervisor (a VM exit for HVM, a trap for PV), which fills the entry and retries, emulates the
  access (MMIO), or injects a real page fault into the guest;
* an access that crosses a page boundary is checked on **both** pages before any byte moves
  (``_probe``), so a fault on the second page leaves the first untouched, as on x86;
* an address whose last byte is past the canonical lower half faults with #GP;
* a block move goes a page at a time and can fault part-way, as REP MOVSB does;
* an atomic read-modify-write asks for write access first and lets nothing run between its
  read and its write.
"""

from __future__ import annotations

from typing import Any

from ..errors import GeneralProtection
from ..hw.memory import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE
from ..trace import Schema
from .exits import (
    EXIT_REASON_EXCEPTION_NMI,
    PV_PF_TRAP,
    SVM_PF_EXIT,
    VMEXIT_EXCEPTION_PF,
    VMX_PF_EXIT,
    pf_error_code,
)
from .operands import ADDRESS_LIMIT
from .ops import Cmpxchg, Load, LoadBlock, Store, StoreBlock, Xchg
from .paging import PTE_FRAME_MASK, PTE_WRITABLE
from .vmcs import EMULATED_PAGE, RETRY, Probe

GP_FAULT = Schema("cpu", "fault", ("vector", "name", "addr"), {"vector": 13, "name": "#GP"})
VMX, SVM, PV = 0, 1, 2  # the vCPU's mode (``VirtualCpu._mode``)


class GuestMemoryAccess:
    """The memory-access half of ``VirtualCpu`` (a mixin: it uses the vCPU's control block,
    clock, trace and mode)."""

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
                    self._record((t, self._rows.store, addr, op.value))
                    return None
                value = memory.read(maddr, op.size)
                self._record((t, self._rows.load, addr, value))
                return value
            # no shadow entry, or a read-only one for a store: #PF exit (or trap, PV)
            outcome = self._page_fault(addr, pf_error_code(spte is not None, write))
            if outcome is not RETRY:
                return outcome

    def _page_fault(self, addr: int, error_code: int) -> Any:
        """The #PF on a shadow entry goes to Xen: a VM exit (HVM) or a trap (PV)."""
        control = self.control
        if self._mode == PV:
            t = self._clock.advance(self._exit_ns)
            self._record((t, PV_PF_TRAP.id, addr, error_code))
            outcome = control.trap_entry(self, 14, error_code, addr)
        else:
            if self._mode == VMX:  # the exit qualification is the faulting linear address
                control.exit_reason = EXIT_REASON_EXCEPTION_NMI
                control.exit_qualification = addr
                control.intr_info = VMX_PF_EXIT.fixed["intr_info"]
                control.intr_error_code = error_code
                self._exit((VMX_PF_EXIT.id, addr, error_code))
            else:  # EXITINFO1 = the error code, EXITINFO2 = the faulting address
                control.exitcode = VMEXIT_EXCEPTION_PF
                control.exitinfo1, control.exitinfo2 = error_code, addr
                self._exit((SVM_PF_EXIT.id, error_code, addr))
            outcome = control.host_rip(self)
        self._clock.now += self._entry_ns
        return outcome

    def _probe(self, addr: int, write: bool) -> bool:
        """Make sure the page of ``addr`` can be accessed before any byte of a multi-page
        access moves: True for RAM the shadow now maps, False for an emulated page. A real
        page fault is raised here, so nothing has been written when the guest gets it."""
        shadow = self.control.shadow
        instruction = self.instruction
        try:
            while True:
                spte = shadow.get(addr >> PAGE_SHIFT)
                if spte is not None and (not write or spte & PTE_WRITABLE):
                    return True
                self.instruction = Probe(addr, write)
                outcome = self._page_fault(addr, pf_error_code(spte is not None, write))
                if outcome is EMULATED_PAGE:
                    return False
        finally:
            self.instruction = instruction

    def _check_canonical(self, addr: int, length: int) -> None:
        if addr + length > ADDRESS_LIMIT:  # the last bytes are not canonical: #GP(0)
            t = self._clock.advance(self.machine.costs.inject_ns)
            self._record((t, GP_FAULT.id, addr))
            raise GeneralProtection(addr)

    def _split_access(self, op: Load | Store, write: bool) -> Any:
        """An access that crosses a page boundary: both pages are checked first (a fault on
        either leaves memory untouched, as on x86), then each byte goes through its page."""
        addr, size = op.addr, op.size
        self._check_canonical(addr, size)
        split = PAGE_SIZE - (addr & PAGE_MASK)
        self._probe(addr, write)
        self._probe(addr + split, write)
        value = 0
        for i in range(size):
            if write:
                self._memory(Store(addr + i, 1, (op.value >> (8 * i)) & 0xFF))
            else:
                value |= self._memory(Load(addr + i, 1)) << (8 * i)
        return None if write else value

    def _atomic(self, op: Xchg | Cmpxchg) -> int:
        """XCHG / LOCK CMPXCHG: a read and a write that nothing can come between (alarms only
        fire between operations). The CPU asks for write access first, so a read-only page
        faults before anything is read, even when the compare fails; sends back the old value."""
        addr, size = op.addr, op.size
        self._check_canonical(addr, size)
        self._probe(addr, True)
        if (addr & PAGE_MASK) + size > PAGE_SIZE:  # a split lock: both pages, first
            self._probe(addr + PAGE_SIZE - (addr & PAGE_MASK), True)
        old = self._memory(Load(addr, size))
        if op.__class__ is Xchg or old == op.expected:
            self._memory(Store(addr, size, op.value))
        self.instruction = op
        return old

    def _block(self, op: StoreBlock | LoadBlock) -> Any:
        """REP MOVSB between a buffer and memory, a page at a time. Like the real instruction
        it can fault part-way (the pages before the fault are done)."""
        write = op.__class__ is StoreBlock
        length = len(op.data) if write else op.length
        self._check_canonical(op.addr, length)
        out = bytearray()
        addr, done = op.addr, 0
        while done < length:
            n = min(length - done, PAGE_SIZE - (addr & PAGE_MASK))
            if self._probe(addr, write):  # RAM: one copy for the whole piece
                spte = self.control.shadow[addr >> PAGE_SHIFT]
                maddr = (spte & PTE_FRAME_MASK) | (addr & PAGE_MASK)
                t = self._clock.advance(self.machine.costs.ram_access_ns * n)
                if write:
                    self.machine.memory.write_bytes(maddr, op.data[done : done + n])
                    self._record((t, self._rows.store_block, addr, n))
                else:
                    out += self.machine.memory.read_bytes(maddr, n)
                    self._record((t, self._rows.load_block, addr, n))
            else:  # an emulated page: byte by byte through the MMIO path
                for i in range(n):
                    if write:
                        self._memory(Store(addr + i, 1, op.data[done + i]))
                    else:
                        out.append(self._memory(Load(addr + i, 1)))
            addr, done = addr + n, done + n
        self.instruction = op
        return None if write else bytes(out)

