"""The vCPU end to end (vmmlib/vcpu.py with vmmlib/hypervisor.py): guest op -> exit -> handler.

Every exit record the vCPU writes is decoded with the decoders in vmmlib/exits.py, so these
tests tie the running simulator to the layouts pinned in tests/test_exits.py
(hardware-facts.md §1.2-1.3 for VMX, §2.2 for SVM). Intercept decisions: §1.1 and §2.1.
"""

import pytest

from vmmlib.cpu.exits import (
    EXIT_REASON_EXCEPTION_NMI,
    EXIT_REASON_IO_INSTRUCTION,
    EXIT_REASON_VMCALL,
    VMEXIT_EXCEPTION_PF,
    VMEXIT_IOIO,
    VMEXIT_VMMCALL,
    PortAccess,
    decode_svm_ioio_exitinfo1,
    decode_vmx_io_qualification,
    vmx_intr_info,
)
from vmmlib.cpu.iobitmap import SvmIopm, VmxIoBitmaps
from vmmlib.cpu.ops import Cmpxchg, Hypercall, In, Ins, Load, Out, Outs, Store, Xchg
from vmmlib.cpu.paging import PageTable
from vmmlib.cpu.vcpu import INSN_LEN
from vmmlib.devices.vga_text import TEXT_BASE, TEXT_SIZE, VgaTextBuffer
from vmmlib.errors import GuestProgramError, PageFault
from vmmlib.guest.pv_console import pv_console_write
from vmmlib.guest.vga import vga_puts
from vmmlib.hw.memory import MIB
from vmmlib.xen.hypercalls import CONSOLEIO_write, HYPERVISOR_console_io
from vmmlib.xen.machine import Machine
from vmmlib.xen.vcpu import Vcpu

COM1 = 0x3F8  # hardware-facts.md §12


class Recorder:
    """A device that records writes and answers every read with ``answer``."""

    def __init__(self, answer: int = 0) -> None:
        self.answer = answer
        self.writes: list[tuple[int, int, int]] = []
        self.reads: list[tuple[int, int]] = []

    def read(self, offset: int, size: int) -> int:
        self.reads.append((offset, size))
        return self.answer

    def write(self, offset: int, size: int, value: int) -> None:
        self.writes.append((offset, size, value))


def make_domain(vendor: str = "vmx", kind: str = "hvm", privileged: bool = False):
    m = Machine(ram=64 * MIB)
    dom = m.add_domain(
        "guest", 16 * MIB, base=16 * MIB, kind=kind, vendor=vendor, privileged=privileged
    )
    dev = Recorder(answer=0x60)
    dom.emulate_ports(COM1, 8, dev, "uart")
    return m, dom, dev


def run(dom, program) -> Vcpu:
    cpu = Vcpu(dom, program)
    cpu.run()
    return cpu


def decode_io_exit(vendor: str, fields: dict) -> PortAccess:
    """Decode an I/O exit record with the vendor's decoder, checking the exit reason."""
    if vendor == "vmx":
        assert fields["exit_reason"] == EXIT_REASON_IO_INSTRUCTION == 30
        return decode_vmx_io_qualification(fields["exit_qualification"])
    assert fields["exitcode"] == VMEXIT_IOIO == 0x7B
    return decode_svm_ioio_exitinfo1(fields["exitinfo1"])


# --- port I/O ----------------------------------------------------------------------------------
@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_out_to_intercepted_port_makes_one_exit_that_decodes_back(vendor):
    # hardware-facts.md §1.1/§2.1 (Xen default intercepts COM1), §1.3/§2.2 (record layout)
    m, dom, dev = make_domain(vendor)

    def guest():
        yield Out(COM1 + 3, 1, 0x83)

    cpu = run(dom, guest())
    assert cpu.crashed is None
    exits = m.trace.events("exit")
    assert len(exits) == 1
    assert exits[0].actor == "cpu"
    assert decode_io_exit(vendor, exits[0].fields) == PortAccess(COM1 + 3, 1, is_in=False)
    assert dev.writes == [(3, 1, 0x83)]
    if vendor == "svm":  # hardware-facts.md §2.2: EXITINFO2 = rIP of the next instruction
        assert exits[0].fields["exitinfo2"] == 0x1000 + INSN_LEN[Out] == cpu.rip
    else:  # hardware-facts.md §1.3: instruction length, to add to RIP after emulation
        assert exits[0].fields["instruction_len"] == INSN_LEN[Out]
    assert m.trace.count() == {"IO_INSTRUCTION" if vendor == "vmx" else "IOIO": 1}


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
@pytest.mark.parametrize("size", [1, 2, 4])
def test_in_from_intercepted_port_returns_device_value(vendor, size):
    m, dom, dev = make_domain(vendor)
    dev.answer = 0xA5A5A5A5 & ((1 << (8 * size)) - 1)
    got = []

    def guest():
        got.append((yield In(COM1, size)))

    run(dom, guest())
    assert got == [dev.answer]
    (ev,) = m.trace.events("exit")
    assert decode_io_exit(vendor, ev.fields) == PortAccess(COM1, size, is_in=True)


def test_intercepted_out_costs_one_exit_round_trip():
    # vmmlib/costs.py: exit + decode + emulate (one element) + entry, all in virtual time
    m, dom, _ = make_domain()
    c = m.costs

    def guest():
        yield Out(COM1, 1, 0x41)

    run(dom, guest())
    assert m.clock.now == c.vm_exit_ns + c.decode_ns + c.emulate_ns + c.vm_entry_ns


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_out_to_allowed_port_reaches_machine_device_without_exit(vendor):
    # hardware-facts.md §1.1/§12: Xen lets guests touch port 0x80 directly
    m, dom, _ = make_domain(vendor)
    post = Recorder(answer=0x5A)
    m.ports.claim(0x80, 1, post, "POST")
    dom.assign_ports(0x80, 1)
    emulated = Recorder()
    dom.ports.claim(0x80, 1, emulated, "never used")  # the intercept bit decides, not the bus
    got = []

    def guest():
        yield Out(0x80, 1, 0x42)
        got.append((yield In(0x80, 1)))

    run(dom, guest())
    assert m.trace.events("exit") == []
    assert m.trace.count() == {}
    assert post.writes == [(0, 1, 0x42)]
    assert got == [0x5A]
    assert emulated.writes == [] and emulated.reads == []
    assert [e.fields["port"] for e in m.trace.events("io")] == [0x80, 0x80]
    assert m.clock.now == 2 * m.costs.native_port_io_ns


def test_assign_ports_needs_a_machine_device():
    from vmmlib.errors import ConfigError

    _, dom, _ = make_domain()
    with pytest.raises(ConfigError):
        dom.assign_ports(0x60, 1)


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_two_byte_out_exits_when_only_its_second_port_is_intercepted(vendor):
    # hardware-facts.md §1.1/§2.1: multi-byte rule, through the running vCPU
    m, dom, dev = make_domain(vendor)
    dom.intercepts = VmxIoBitmaps() if vendor == "vmx" else SvmIopm()
    dom.intercepts.intercept(0x3F9)
    m.ports.claim(0x3F7, 1, Recorder(), "machine 0x3F7")

    def guest():
        yield Out(0x3F8, 1, 1)  # bit clear: direct to the machine's (empty) port
        yield Out(0x3F8, 2, 0x0201)  # touches 0x3F9: exits

    run(dom, guest())
    (ev,) = m.trace.events("exit")
    assert decode_io_exit(vendor, ev.fields) == PortAccess(0x3F8, 2, is_in=False)
    assert dev.writes == [(0, 2, 0x0201)]


def test_wrapping_access_exits_on_vmx_but_follows_spill_bits_on_svm():
    # hardware-facts.md §1.1 (VMX: wrap always exits) vs §2.1 (SVM: the 3 extra bits decide)
    results = {}
    for vendor in ("vmx", "svm"):
        m, dom, _ = make_domain(vendor)
        dom.intercepts = VmxIoBitmaps() if vendor == "vmx" else SvmIopm()

        def guest():
            yield In(0xFFFF, 4)

        run(dom, guest())
        results[vendor] = len(m.trace.events("exit"))
    assert results == {"vmx": 1, "svm": 0}


def test_no_exit_when_vmx_io_controls_are_both_clear():
    # hardware-facts.md §1.1: neither control set -> the instruction executes normally
    m, dom, dev = make_domain("vmx")
    dom.intercepts.procbased_ctls = 0
    machine_uart = Recorder()
    m.ports.claim(COM1, 8, machine_uart, "real COM1")

    def guest():
        yield Out(COM1, 1, 0x41)

    run(dom, guest())
    assert m.trace.events("exit") == []
    assert machine_uart.writes == [(0, 1, 0x41)] and dev.writes == []


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_rep_outs_is_one_exit_for_count_elements(vendor):
    # hardware-facts.md §1.1 (string forms use the same check), §1.3/§2.2 (string + REP bits)
    m, dom, dev = make_domain(vendor)
    text = b"hello"

    def guest():
        yield Outs(COM1, 1, text)

    run(dom, guest())
    (ev,) = m.trace.events("exit")
    acc = decode_io_exit(vendor, ev.fields)
    assert acc == PortAccess(COM1, 1, is_in=False, string=True, rep=True)
    assert dev.writes == [(0, 1, ch) for ch in text]
    (emu,) = m.trace.events("emulate")
    assert list(emu.fields["value"]) == list(text)
    c = m.costs
    assert m.clock.now == c.vm_exit_ns + c.decode_ns + len(text) * c.emulate_ns + c.vm_entry_ns


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_rep_ins_returns_count_elements_from_one_exit(vendor):
    m, dom, dev = make_domain(vendor)
    dev.answer = 0xBEEF
    got = []

    def guest():
        got.append((yield Ins(COM1, 2, 3)))

    run(dom, guest())
    assert got == [[0xBEEF] * 3]
    (ev,) = m.trace.events("exit")
    assert decode_io_exit(vendor, ev.fields) == PortAccess(COM1, 2, True, string=True, rep=True)
    assert dev.reads == [(0, 2)] * 3


def test_direct_rep_outs_costs_one_bus_cycle_per_element():
    m, dom, _ = make_domain()
    post = Recorder()
    m.ports.claim(0x80, 1, post, "POST")

    def guest():
        yield Outs(0x80, 1, (1, 2, 3))

    run(dom, guest())
    assert post.writes == [(0, 1, 1), (0, 1, 2), (0, 1, 3)]
    assert m.trace.events("io")[0].fields["count"] == 3
    assert m.clock.now == 3 * m.costs.native_port_io_ns


# --- page faults ---------------------------------------------------------------------------------
@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_page_fault_is_injected_into_the_guest(vendor):
    m, dom, _ = make_domain(vendor)
    dom.page_table = PageTable()  # paging on, nothing mapped
    caught = []

    def guest():
        try:
            yield Load(0x5004, 4)
        except PageFault as f:
            caught.append((f.address, f.error_code))
        yield Out(COM1, 1, 0x21)  # the guest carries on after handling it

    cpu = run(dom, guest())
    assert cpu.crashed is None and cpu.done
    assert caught == [(0x5004, 0)]  # not-present read
    pf_exit = m.trace.events("exit")[0]
    if vendor == "vmx":  # SDM: exception exit, reason 0, #PF interruption info 0x80000B0E
        assert pf_exit.fields["exit_reason"] == EXIT_REASON_EXCEPTION_NMI == 0
        assert pf_exit.fields["intr_info"] == vmx_intr_info(14, True) == 0x8000_0B0E
        assert pf_exit.fields["exit_qualification"] == 0x5004
        assert pf_exit.fields["intr_error_code"] == 0
    else:  # APM: #VMEXIT(EXCP14) 0x4E, EXITINFO1 = error code, EXITINFO2 = address
        assert pf_exit.fields["exitcode"] == VMEXIT_EXCEPTION_PF == 0x4E
        assert (pf_exit.fields["exitinfo1"], pf_exit.fields["exitinfo2"]) == (0, 0x5004)
    (inj,) = m.trace.events("inject")
    assert inj.fields == {"vector": 14, "addr": 0x5004, "error_code": 0}
    assert m.trace[-1].kind == "halt"


def test_write_to_read_only_page_injects_protection_fault():
    # SDM "Page-Fault Exceptions": P = 1 (protection), W/R = 1 (write)
    m, dom, _ = make_domain()
    dom.page_table = PageTable()
    dom.page_table.map(0x40_0000, 0x10_0000, writable=False)
    caught = []

    def guest():
        value = yield Load(0x40_0010, 4)  # reading is fine: fills the shadow, no fault
        try:
            yield Store(0x40_0010, 4, value + 1)
        except PageFault as f:
            caught.append(f.error_code)

    cpu = run(dom, guest())
    assert cpu.crashed is None
    assert caught == [0b011]
    assert m.trace.events("inject")[0].fields["error_code"] == 3
    # the CPU's own exit reported P = 1: the shadow maps the page, read-only
    assert m.trace.events("exit")[-1].fields["intr_error_code"] == 3


def test_uncaught_page_fault_crashes_the_vcpu_cleanly():
    m, dom, _ = make_domain()
    dom.page_table = PageTable()

    def guest():
        yield Store(0xDEAD000, 4, 1)
        yield Out(COM1, 1, 0x41)  # never reached

    cpu = Vcpu(dom, guest())
    results = [cpu.step() for _ in range(5)]  # no exception escapes step()
    assert results == [False] * 5  # the first step performs the store and crashes
    assert cpu.done
    assert isinstance(cpu.crashed, PageFault)
    assert cpu.crashed.error_code == 0b010
    last = m.trace[-1]
    assert (last.actor, last.kind) == ("guest", "crash")
    assert last.fields["error"].startswith("PageFault: #PF at 0xdead000")
    assert m.trace.count("exit") == {"EXCEPTION_NMI": 1}


@pytest.mark.parametrize("bad", [42, None, "OUT 0x3f8", Out])
def test_yielding_a_non_operation_crashes_with_guest_program_error(bad):
    m, dom, dev = make_domain()

    def guest():
        yield bad
        yield Out(COM1, 1, 0x41)

    cpu = Vcpu(dom, guest())
    assert cpu.run() == 0  # the first step finds no operation and crashes
    assert isinstance(cpu.crashed, GuestProgramError)
    assert m.trace[-1].kind == "crash"
    assert "GuestProgramError" in m.trace[-1].fields["error"]
    assert dev.writes == []
    assert cpu.step() is False


def test_guest_exception_crashes_the_vcpu():
    m, dom, _ = make_domain()

    def guest():
        yield Out(COM1, 1, 0x41)
        raise RuntimeError("guest bug")

    cpu = run(dom, guest())
    assert isinstance(cpu.crashed, RuntimeError)
    assert m.trace[-1].fields == {"error": "RuntimeError: guest bug"}


# --- memory and MMIO -----------------------------------------------------------------------------
@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_vga_store_is_emulated_mmio(vendor):
    # hardware-facts.md §10: cell (row, col) at 0xB8000 + 2 * (80 * row + col), char at the
    # even byte, attribute at the odd byte, 0x07 = light grey on black
    m, dom, _ = make_domain(vendor)
    vga = VgaTextBuffer()
    dom.emulate_mmio(TEXT_BASE, TEXT_SIZE, vga, "vga")
    cpu = run(dom, vga_puts("Hi Xen"))
    assert cpu.crashed is None
    assert vga.row(0) == "Hi Xen"
    assert bytes(vga.vram[:4]) == b"H\x07i\x07"
    reason = "EXCEPTION_NMI" if vendor == "vmx" else "EXCP_PF"
    assert m.trace.count() == {reason: 6}  # every store to MMIO exits; the shadow stays empty
    assert dom.shadow == {}
    assert [e.fields["addr"] for e in m.trace.events("emulate")] == [
        0xB8000 + 2 * i for i in range(6)
    ]
    assert m.memory.touched_frames() == []  # nothing went to RAM


def test_vga_store_through_guest_page_table():
    m, dom, _ = make_domain()
    vga = VgaTextBuffer()
    dom.emulate_mmio(TEXT_BASE, TEXT_SIZE, vga, "vga")
    dom.page_table = PageTable()
    dom.page_table.map(0xC00B_8000, 0xB8000)

    def guest():
        yield Store(0xC00B_8000 + 2 * 80, 2, 0x0741)  # row 1, col 0

    run(dom, guest())
    assert vga.row(1) == "A" and vga.row(0) == ""


def test_ram_access_fills_the_shadow_once():
    # the first touch of a RAM page is a "hidden" fault (fill and retry); later ones do not exit
    m, dom, _ = make_domain()
    got = []

    def guest():
        yield Store(0x7C00, 2, 0xAA55)
        got.append((yield Load(0x7C00, 2)))
        yield Store(0x7C04, 4, 0x12345678)

    run(dom, guest())
    assert got == [0xAA55]
    assert len(m.trace.events("exit")) == 1
    assert len(m.trace.events("shadow-fill")) == 1
    assert dom.shadow == {0x7: 0x7000}
    assert m.memory.read(16 * MIB + 0x7C00, 2) == 0xAA55  # through the p2m (base 16 MiB)


# --- hypercalls ---------------------------------------------------------------------------------
def test_pv_console_write_is_one_hypercall_with_no_exit():
    # xen/include/public/xen.h: HYPERVISOR_console_io = 18, CONSOLEIO_write = 0; the
    # buffer is in guest memory, passed by address (do_console_io(cmd, count, buffer))
    assert (HYPERVISOR_console_io, CONSOLEIO_write) == (18, 0)
    m, dom, _ = make_domain(kind="pv", privileged=True)
    got = []

    def guest():
        got.append((yield from pv_console_write("hello, xen\n")))

    run(dom, guest())
    assert got == [0]
    assert m.console == b"hello, xen\n"
    assert m.trace.events("exit") == [] and m.trace.events("trap") == []
    assert m.trace.count() == {}
    (hc,) = m.trace.events("hypercall")
    assert hc.fields == {
        "nr": 18, "name": "console_io", "cmd": "write", "count": 11, "result": 0
    }


def test_an_ordinary_domu_may_not_write_on_xens_console_unless_xen_is_a_debug_build():
    # xen/include/xsm/dummy.h xsm_console_io: the control domain, or CONFIG_VERBOSE_DEBUG
    for debug, expected in ((False, -1), (True, 0)):
        m = Machine(64 * MIB, xen_debug=debug)
        dom = m.add_domain("domU", 16 * MIB, kind="pv")
        cpu = run(dom, pv_console_write("hi"))
        assert cpu.result == expected  # -EPERM = -1
        assert m.console == (b"hi" if debug else b"")


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_hvm_hypercall_exits_and_reenters_with_the_result_in_rax(vendor):
    # hardware-facts.md §1.2: VMCALL = exit reason 18; APM: VMMCALL = exit code 0x81
    m, dom, _ = make_domain(vendor, privileged=True)
    cpu = run(dom, pv_console_write("hi"))
    assert m.console == b"hi" and cpu.result == 0
    ev = m.trace.events("exit")[-1]  # after the #PF exit that filled the buffer's shadow
    if vendor == "vmx":
        assert ev.fields == {"reason": "VMCALL", "exit_reason": EXIT_REASON_VMCALL}
        assert EXIT_REASON_VMCALL == 18
    else:
        assert ev.fields == {"reason": "VMMCALL", "exitcode": VMEXIT_VMMCALL}
        assert VMEXIT_VMMCALL == 0x81
    kinds = [e.kind for e in m.trace]
    assert kinds[-3:] == ["hypercall", "entry", "halt"]
    assert m.trace.events("entry")[0].fields == {"rax": 0}


@pytest.mark.parametrize("kind", ["pv", "hvm"])
def test_unknown_hypercall_returns_minus_enosys(kind):
    # Xen returns -ENOSYS (-38) for a hypercall number it does not implement
    m, dom, _ = make_domain(kind=kind)
    got = []

    def guest():
        got.append((yield Hypercall(999)))
        got.append((yield Hypercall(HYPERVISOR_console_io, (7, 1, 0))))  # unknown command

    dom.privileged = True  # otherwise the policy refuses console_io first (-EPERM)
    run(dom, guest())
    assert got == [-38, -38]
    assert m.console == b""
    assert m.trace.events("hypercall")[0].fields == {"nr": 999, "name": "unknown", "result": -38}


# --- the trace ---------------------------------------------------------------------------------
def test_trace_counts_exits_by_reason():
    m, dom, _ = make_domain()
    vga = VgaTextBuffer()
    dom.emulate_mmio(TEXT_BASE, TEXT_SIZE, vga, "vga")
    post = Recorder()
    m.ports.claim(0x80, 1, post, "POST")

    def guest():
        for ch in b"abc":
            yield Out(COM1, 1, ch)
        yield Out(0x80, 1, 0)  # direct: no exit
        yield Store(TEXT_BASE, 2, 0x0741)
        yield Hypercall(HYPERVISOR_console_io, (CONSOLEIO_write, 0, 0))

    run(dom, guest())
    assert m.trace.count() == {"IO_INSTRUCTION": 3, "EXCEPTION_NMI": 1, "VMCALL": 1}
    assert m.trace.count(by="exit_reason") == {30: 3, 0: 1, 18: 1}
    assert m.trace.count("io", by="port") == {0x80: 1}


def scenario() -> list[str]:
    m, dom, _ = make_domain()
    vga = VgaTextBuffer()
    dom.emulate_mmio(TEXT_BASE, TEXT_SIZE, vga, "vga")
    m.ports.claim(0x80, 1, Recorder(), "POST")

    def guest():
        yield Out(0x80, 1, 0x11)
        yield from vga_puts("ok")
        yield Outs(COM1, 1, b"abc")
        yield Store(0x2000, 4, 7)
        yield Load(0x2000, 4)
        yield from pv_console_write("done")

    run(dom, guest())
    return m.trace.lines()


def test_virtual_time_is_deterministic():
    first, second = scenario(), scenario()
    assert first == second
    assert len(first) > 10
    times = [int(line.split("ns")[0].replace(",", "")) for line in first]
    assert times == sorted(times) and times[-1] > 0
    assert not any("0x7f" in line for line in first)  # no host memory addresses


def test_access_crossing_into_mmio_page_is_split_by_page():
    # A 4-byte store at 0xB7FFE covers two RAM bytes and two VGA bytes: the CPU splits a
    # page-crossing access, so the second half must reach the device, not RAM.
    _, dom, _ = make_domain()
    vga = VgaTextBuffer()
    dom.emulate_mmio(TEXT_BASE, TEXT_SIZE, vga, "VGA text")

    def guest():
        yield Store(TEXT_BASE - 2, 4, 0x0748_0000 | 0x1234)
        return (yield Load(TEXT_BASE - 2, 4))

    vcpu = Vcpu(dom, guest())
    vcpu.run()
    assert not vcpu.crashed
    assert vga.read(0, 2) == 0x0748
    assert dom.read_ram(TEXT_BASE - 2, 2) == 0x1234


def test_access_past_the_end_of_guest_ram_reads_all_ones_and_never_escapes():
    _, dom, _ = make_domain()
    end = dom.ram_size

    def guest():
        yield Store(end - 2, 4, 0xAABBCCDD)
        value = yield Load(end - 2, 4)
        assert value == 0xFFFFCCDD

    vcpu = Vcpu(dom, guest())
    vcpu.run()
    assert vcpu.done and vcpu.crashed is None


def test_negative_domain_base_is_rejected():
    from vmmlib.errors import ConfigError

    with pytest.raises(ConfigError):
        Machine(64 * MIB).add_domain("bad", 4 * MIB, base=-4096)


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_long_rep_outs_takes_one_exit_per_page_of_data(vendor):
    # Xen's emulator clips a REP string I/O to one page of its memory operand and re-runs the
    # instruction for the rest (xen/arch/x86/hvm/emulate.c): 3000 words = 6000 bytes = 2 exits
    m, dom, dev = make_domain(vendor)
    words = [i & 0xFFFF for i in range(3000)]

    def guest():
        yield Outs(COM1, 2, words)

    run(dom, guest())
    assert sum(m.trace.count().values()) == 2
    assert [v for (_, _, v) in dev.writes] == words
    assert [e.fields["value"] for e in m.trace.events("emulate")] == [words[:2048], words[2048:]]


def test_long_rep_ins_returns_every_element():
    m, dom, dev = make_domain()

    def guest():
        data = yield Ins(COM1, 1, 5000)
        assert data == [0x60] * 5000

    cpu = run(dom, guest())
    assert cpu.crashed is None
    assert sum(m.trace.count().values()) == 2  # 4096 + 904 bytes
    assert "(4096 values)" in str(m.trace.events("emulate")[0])


def test_rep_count_beyond_the_simulator_limit_is_a_clear_error():
    from vmmlib.cpu.ops import MAX_REP_COUNT
    from vmmlib.errors import ConfigError

    with pytest.raises(ConfigError, match="REP string I/O moves 1 to"):
        Ins(COM1, 1, MAX_REP_COUNT + 1)
    m, dom, dev = make_domain()

    def guest():
        yield Ins(COM1, 1, 10**12)  # a hostile RCX: refused, the guest crashes cleanly

    cpu = run(dom, guest())
    assert isinstance(cpu.crashed, ConfigError) and dev.reads == []


def test_non_canonical_address_is_refused_and_the_guest_crashes_cleanly():
    from vmmlib.errors import ConfigError

    with pytest.raises(ConfigError, match="canonical"):
        Load(1 << 60, 4)
    m, dom, _ = make_domain()

    def guest():
        yield Load(1 << 60, 4)

    cpu = run(dom, guest())
    assert isinstance(cpu.crashed, ConfigError)


def test_load_far_beyond_guest_ram_reads_all_ones():
    m, dom, _ = make_domain()

    def guest():
        return (yield Load(0x7FFF_FFFF_F000, 4))

    cpu = run(dom, guest())
    assert cpu.crashed is None and cpu.result == 0xFFFF_FFFF


# --- atomic read-modify-write ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["hvm", "pv"])
def test_xchg_writes_and_returns_the_old_value(kind):
    m, dom, _ = make_domain(kind=kind)
    got = []

    def guest():
        yield Store(0x2000, 8, 0xF0)
        got.append((yield Xchg(0x2000, 8, 0)))
        got.append((yield Load(0x2000, 8)))

    cpu = run(dom, guest())
    assert cpu.crashed is None and got == [0xF0, 0]


def test_cmpxchg_swaps_only_when_memory_holds_the_expected_value():
    m, dom, _ = make_domain()
    got = []

    def guest():
        yield Store(0x3000, 2, 0x0005)
        got.append((yield Cmpxchg(0x3000, 2, 0x0001, 0)))  # compare fails: unchanged
        got.append((yield Load(0x3000, 2)))
        got.append((yield Cmpxchg(0x3000, 2, 0x0005, 0)))  # compare holds: swapped
        got.append((yield Load(0x3000, 2)))

    cpu = run(dom, guest())
    assert cpu.crashed is None and got == [5, 5, 5, 0]


def test_cmpxchg_on_a_read_only_page_faults_as_a_write_even_when_the_compare_fails():
    # SDM (CMPXCHG): "the destination operand is written back if the comparison fails", so
    # the access is a write: a read-only page gives #PF with W/R = 1 and nothing changes
    m, dom, _ = make_domain()
    dom.page_table = PageTable()
    dom.page_table.map(0x40_0000, 0x10_0000, writable=False)
    caught = []

    def guest():
        try:
            yield Cmpxchg(0x40_0000, 4, 1, 2)
        except PageFault as f:
            caught.append(f.error_code & 0b010)

    cpu = run(dom, guest())
    assert cpu.crashed is None and caught == [0b010]


def test_nothing_runs_between_the_read_and_the_write_of_an_xchg():
    # an alarm due during the XCHG (dom0 setting a bit in shared memory) fires before or after
    # it, never between its read and its write: the bit is either swapped out or kept
    m, dom, _ = make_domain()
    gpa = 0x5000
    maddr = dom.gpa_to_maddr(gpa)
    m.clock.call_at(1, lambda: m.memory.write(maddr, 8, m.memory.read(maddr, 8) | 2))
    got = []

    def guest():
        got.append((yield Xchg(gpa, 8, 0)))
        got.append((yield Load(gpa, 8)))

    run(dom, guest())
    assert got[0] | got[1] == 2 and got[0] & got[1] == 0
