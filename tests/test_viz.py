"""The teaching layer (vmmlib.viz): plots return labelled figures of the right data, each
colour meaning one thing; text renderings (trace logs, wire text, bit fields) read like the
prose. The stepping widget and its state panels are in test_stepper.py.

Headless: matplotlib runs on Agg.
Port facts: Xen leaves ports 0x80 and 0xED un-intercepted (hardware-facts.md §1.1,
vmmlib/iobitmap.py); COM1 answers 0x3F8-0x3FF (§8); the VGA text window is 0xB8000-0xBFFFF
(§10).
"""

import io
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vmmlib import MIB, Machine, Store, Vcpu  # noqa: E402
from vmmlib.cpu.exits import (  # noqa: E402
    PortAccess,
    pf_error_code,
    svm_ioio_exitinfo1,
    vmx_io_qualification,
)
from vmmlib.devices.uart16550 import Uart16550  # noqa: E402
from vmmlib.devices.vga_text import TEXT_BASE, TEXT_SIZE, VgaTextBuffer  # noqa: E402
from vmmlib.errors import ConfigError  # noqa: E402
from vmmlib.guest.pv_console import pv_console_write  # noqa: E402
from vmmlib.guest.uart import LINUX_EARLY_POLLS, serial_hello  # noqa: E402
from vmmlib.guest.vga import vga_puts  # noqa: E402
from vmmlib.hw.pcmap import LEGACY_PORTS  # noqa: E402
from vmmlib.scenarios.intercepts import hello_pv, hello_serial, three_faults, uart_of  # noqa: E402
from vmmlib.viz import exitplots, memorymap, palette, portspace, serial, text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class PostCard:
    """A port-0x80 POST card on the machine's bus: swallows writes, reads float."""

    def __init__(self) -> None:
        self.codes: list[int] = []

    def read(self, offset: int, size: int) -> int:
        return 0xFF

    def write(self, offset: int, size: int, value: int) -> None:
        self.codes.append(value)


# --- scenarios ---------------------------------------------------------------------------------
def serial_vcpu(vendor: str = "vmx") -> Vcpu:
    """Chapter 01's "Hello": COM1 emulated by the hypervisor, a POST card passed through."""
    machine = Machine(ram=512 * MIB)
    dom = machine.add_domain("dom1", 256 * MIB, base=256 * MIB, vendor=vendor)
    com1 = Uart16550(machine.clock, paced=False, out2_gates_irq=False)  # QEMU-like
    dom.emulate_ports(0x3F8, 8, com1, "COM1")
    machine.ports.claim(0x80, 1, PostCard(), "POST")
    dom.assign_ports(0x80, 1)
    return Vcpu(dom, serial_hello())


def vga_vcpu() -> Vcpu:
    """A guest that touches two RAM pages and then writes "Hi" into the VGA text window."""
    machine = Machine(ram=64 * MIB)
    dom = machine.add_domain("dom1", 16 * MIB, base=16 * MIB)
    dom.emulate_mmio(TEXT_BASE, TEXT_SIZE, VgaTextBuffer(), "VGA text")

    def guest():
        yield Store(0x2000, 4, 0x1234)
        yield Store(0x9F000, 4, 0x5678)
        yield from vga_puts("Hi")

    return Vcpu(dom, guest())


def pv_vcpu() -> Vcpu:
    machine = Machine(ram=64 * MIB)
    dom = machine.add_domain("dom1", 16 * MIB, kind="pv")
    return Vcpu(dom, pv_console_write("Hello\n"))


def finished(make) -> Vcpu:
    vcpu = make()
    vcpu.run()
    return vcpu


@pytest.fixture(scope="module")
def traces():
    return {
        "port I/O": finished(serial_vcpu).machine.trace,
        "MMIO": finished(vga_vcpu).machine.trace,
        "PV hypercall": finished(pv_vcpu).machine.trace,
    }


def bar_covers(ax, label: str, port: int) -> bool:
    """Is ``port`` inside one of the rectangles of the collection labelled ``label``?"""
    [coll] = [c for c in ax.collections if c.get_label() == label]
    for path in coll.get_paths():
        x0, x1 = path.vertices[:, 0].min(), path.vertices[:, 0].max()
        if x0 <= port < x1:
            return True
    return False


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


# --- every plot: a figure with a title and labelled axes ----------------------------------------
def check_labelled(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    assert fig.get_suptitle().strip()
    for ax in fig.axes:
        has_y = ax.get_ylabel() or any(t.get_text() for t in ax.get_yticklabels())
        assert has_y, f"axes {ax.get_title()!r} has no y label"
        siblings = ax.get_shared_x_axes().get_siblings(ax)
        assert any(a.get_xlabel() for a in siblings), f"axes {ax.get_title()!r} has no x label"


def test_every_plot_is_a_titled_labelled_figure(traces):
    vcpu = finished(serial_vcpu)
    check_labelled(portspace.plot_port_space(vcpu.domain))
    check_labelled(portspace.plot_port_space(vcpu.domain.intercepts, devices=LEGACY_PORTS))
    check_labelled(memorymap.plot_memory_map(finished(vga_vcpu).domain))
    check_labelled(exitplots.plot_exits_over_time(traces["port I/O"]))
    check_labelled(exitplots.plot_exits_over_time(traces["MMIO"], events=()))
    check_labelled(exitplots.plot_exit_counts(traces))


def test_plots_are_deterministic():
    def png() -> bytes:  # a fresh scenario each time, as a notebook re-run would
        buf = io.BytesIO()
        fig = exitplots.plot_exits_over_time(finished(vga_vcpu).machine.trace)
        fig.savefig(buf, format="png", dpi=40)
        return buf.getvalue()

    first = png()
    assert first.startswith(b"\x89PNG") and first == png()


# --- the port space -----------------------------------------------------------------------------
def test_port_space_marks_com1_intercepted_and_0x80_direct():
    dom = serial_vcpu().domain
    fig = portspace.plot_port_space(dom)
    data = fig.vmm_data
    assert data.exits(0x3F8) and data.exits(0x3FF)
    assert not data.exits(0x80) and not data.exits(0xED)
    assert [(s.name, s.owner) for s in data.owner_of(0x3F8)] == [("COM1", "emulated")]
    assert [(s.name, s.owner) for s in data.owner_of(0x80)] == [("POST", "passthrough")]
    ax_full, ax_zoom = fig.axes
    for ax in (ax_full, ax_zoom):  # what is drawn, not only what was computed
        assert bar_covers(ax, "intercepted (exits)", 0x3F8)
        assert not bar_covers(ax, "direct (no exit)", 0x3F8)
        assert bar_covers(ax, "direct (no exit)", 0x80)
        assert not bar_covers(ax, "intercepted (exits)", 0x80)
    assert "COM1 0x3F8–0x3FF" in texts(ax_zoom)
    assert "POST 0x80 (direct)" in texts(ax_zoom)
    assert {"0x80 direct", "0xED direct"} <= set(texts(ax_zoom))
    assert any("I/O bitmap B" in t for t in texts(ax_full))  # the two VMX bitmaps are labelled
    assert any("I/O bitmap A" in t for t in texts(ax_full))


def test_port_space_follows_the_bitmap_not_a_fixed_picture():
    dom = serial_vcpu().domain
    dom.intercepts.allow(0x3F8, 0x3FF)  # hand COM1's ports to the guest
    dom.intercepts.intercept(0x80)
    fig = portspace.plot_port_space(dom)
    ax_zoom = fig.axes[1]
    assert bar_covers(ax_zoom, "direct (no exit)", 0x3F8)
    assert bar_covers(ax_zoom, "intercepted (exits)", 0x80)
    assert [s.owner for s in fig.vmm_data.owner_of(0x80)] == ["machine"]
    assert "POST 0x80 (trapped)" in texts(ax_zoom)
    # direct now: COM1's 8 ports and 0xED (0x80 is intercepted again)
    assert fig.get_suptitle().endswith("65,527 ports intercepted, 9 direct")


def test_port_space_svm_and_bare_bitmaps():
    svm = serial_vcpu("svm").domain
    fig = portspace.plot_port_space(svm)
    assert fig.vmm_data.vendor == "svm"
    assert any("IOPM" in t for t in texts(fig.axes[0]))
    assert bar_covers(fig.axes[1], "intercepted (exits)", 0x3F8)
    fig = portspace.plot_port_space(svm.intercepts, devices=LEGACY_PORTS)
    assert "COM1 0x3F8–0x3FF" in texts(fig.axes[1])
    assert "PCI CONFIG_ADDRESS 0xCF8–0xCFB" in texts(
        fig.axes[0]
    )  # outside the zoom: labelled above
    with pytest.raises(ConfigError, match="Domain, VmxIoBitmaps or SvmIopm"):
        portspace.plot_port_space(object())
    with pytest.raises(ConfigError, match="zoom"):
        portspace.plot_port_space(svm, zoom=(0x400, 0x100))


# --- the memory map -----------------------------------------------------------------------------
def test_memory_map_shows_ram_mmio_and_present_pages():
    dom = finished(vga_vcpu).domain
    fig = memorymap.plot_memory_map(dom)
    data = fig.vmm_data
    assert data.kind_at(0x1000) == "ram"
    assert data.kind_at(TEXT_BASE) == data.kind_at(TEXT_BASE + TEXT_SIZE - 1) == "mmio"
    assert data.kind_at(TEXT_BASE + TEXT_SIZE) == "ram"
    assert data.page_present(0x2000) and data.page_present(0x9F000)  # filled by the stores
    assert not data.page_present(0x1000)  # never touched
    assert not data.page_present(TEXT_BASE)  # MMIO never gets a shadow entry
    assert data.machine_base == 16 * MIB
    ax_whole, ax_zoom = fig.axes
    assert any(t.startswith("VGA text 0xB8000–0xBFFFF") for t in texts(ax_zoom))
    assert "2 of 256" in ax_zoom.get_yticklabels()[0].get_text()
    assert "machine memory 16–32 MiB" in ax_whole.get_title(loc="left")


def test_memory_map_shows_holes_and_validates():
    machine = Machine(ram=64 * MIB)
    dom = machine.add_domain("small", 16 * MIB)
    dom.emulate_mmio(0xFEC00000, 0x1000, VgaTextBuffer(), "I/O APIC")
    data = memorymap.plot_memory_map(dom).vmm_data
    assert data.kind_at(32 * MIB) == "hole"
    assert data.kind_at(0xFEC00000) == "mmio"
    assert data.end == 0xFEC01000
    with pytest.raises(ConfigError, match="page-aligned"):
        memorymap.plot_memory_map(dom, window=(0, 100))


# --- exits ---------------------------------------------------------------------------------------
def test_exits_over_time_stacks_every_exit(traces):
    trace = traces["MMIO"]
    fig = exitplots.plot_exits_over_time(trace)
    ax = fig.axes[0]
    drawn = sum(rect.get_height() for bars in ax.containers for rect in bars)
    # two hidden #PFs that fill the shadow for the RAM stores, two MMIO stores to VGA
    assert drawn == len(trace.events("exit")) == 4
    assert "µs" in fig.axes[-1].get_xlabel()
    hist = fig.vmm_data
    assert dict(trace.count("exit")) == {r: int(c.sum()) for r, c in hist.counts.items()}
    kinds = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert kinds == ["emulate (2)", "shadow-fill (2)"]


def test_exits_over_time_bins_and_empty_trace(traces):
    hist = exitplots.exit_histogram(traces["port I/O"], bin_ns=5_000)
    assert hist.bin_ns == 5_000
    assert int(sum(c.sum() for c in hist.counts.values())) == len(traces["port I/O"].events("exit"))
    fig = exitplots.plot_exits_over_time(traces["PV hypercall"])  # a PV guest never exits
    assert "no exits in this trace" in texts(fig.axes[0])
    with pytest.raises(ConfigError, match="bin_ns"):
        exitplots.plot_exits_over_time(traces["MMIO"], bin_ns=0)


def test_exit_counts_compares_scenarios(traces):
    fig = exitplots.plot_exit_counts(traces)
    data = fig.vmm_data
    for name, trace in traces.items():
        assert data.total(name) == sum(trace.count("exit").values())
        assert data.time_ns[name] == trace[len(trace) - 1].time
    assert data.total("PV hypercall") == 0 and data.hypercalls["PV hypercall"] == 1
    ax_n = fig.axes[0]
    heights = [0.0] * 3
    for bars in ax_n.containers:
        for i, rect in enumerate(bars):
            heights[i] += rect.get_height()
    assert heights == [data.total(n) for n in traces]
    assert [t.get_text() for t in ax_n.get_xticklabels()] == list(traces)
    with pytest.raises(ConfigError):
        exitplots.plot_exit_counts({})


def test_palette_is_okabe_ito_and_stable():
    assert len(set(palette.OKABE_ITO.values())) == 8
    assert palette.ROLES["intercepted"] != palette.ROLES["direct"]
    assert palette.exit_colour("IO_INSTRUCTION") == palette.exit_colour("IOIO")
    assert palette.device_colour("some new device") == palette.device_colour("some new device")
    assert palette.device_colour("some new device") in palette.OKABE_ITO.values()


# --- one colour, one meaning -------------------------------------------------------------------
def _hex_colour(rgba) -> str:
    return matplotlib.colors.to_hex(rgba).upper()


def test_port_space_colours_each_mean_one_thing_and_are_all_in_the_legend():
    dom = serial_vcpu().domain
    fig = portspace.plot_port_space(dom, devices=LEGACY_PORTS)
    legend = {_hex_colour(h.get_facecolor()): h.get_label() for h in fig.legends[0].legend_handles}
    assert len(legend) == len(fig.legends[0].legend_handles)  # no colour twice in the legend
    drawn = {
        _hex_colour(c)
        for ax in fig.axes
        for coll in ax.collections
        for c in coll.get_facecolors()
    }
    assert drawn <= set(legend), f"colours drawn but not explained: {drawn - set(legend)}"
    assert legend[palette.ROLES["emulated"].upper()] == "device emulated by the hypervisor"
    # IDE secondary is a PC device like any other: not the colour of "direct: no exit"
    [ide] = [s for s in fig.vmm_data.spans if s.name == "IDE secondary"]
    assert portspace._span_colour(ide) == palette.ROLES["pc_device"] != palette.ROLES["direct"]


# --- text ----------------------------------------------------------------------------------------
def test_wire_text_shows_escapes_not_bytes_reprs():
    assert text.wire_text(b"Hello\n") == "Hello\\n"
    assert text.wire_text(b"a\r\n\t\\\x00\x1b\xff") == "a\\r\\n\\t\\\\\\0\\x1b\\xff"
    assert text.wire_text(b"") == ""
    with pytest.raises(ConfigError):
        text.wire_text("Hello")


def _fields(bits: str) -> dict[str, int]:
    names, values = bits.splitlines()
    return dict(zip(names.split(), (int(v, 2) for v in values.split()), strict=True))


def test_bit_fields_match_the_encoders():
    # hardware-facts.md §1.3 and §2.2, as encoded by vmmlib.cpu.exits
    acc = PortAccess(0x3F8, 4, True, True, True, True)
    vmx = _fields(text.bit_fields(vmx_io_qualification(acc), text.VMX_IO_QUALIFICATION))
    assert vmx == {"port": 0x3F8, "reserved": 0, "imm": 1, "rep": 1, "str": 1, "in": 1,
                   "size-1": 3}
    out = PortAccess(0x2F8, 2, False, True, False)
    info1 = svm_ioio_exitinfo1(out, address_size=32, segment="ES")
    svm = text.bit_fields(info1, text.SVM_IOIO_EXITINFO1)
    names, values = svm.splitlines()
    got = list(zip(names.split(), values.split(), strict=True))
    assert got[0] == ("PORT", f"{0x2F8:016b}") and ("SEG", "000") in got
    assert [n for n, v in got if v == "1"] == ["A32", "SZ16", "STR"]
    pf = _fields(text.bit_fields(pf_error_code(True, True, user=True), text.PF_ERROR_CODE))
    assert pf == {"I/D": 0, "RSVD": 0, "U/S": 1, "W/R": 1, "P": 1}
    with pytest.raises(ConfigError):
        text.bit_fields(1 << 32, text.VMX_IO_QUALIFICATION)
    with pytest.raises(ConfigError):
        text.bit_fields(1, [(3, 1, "x")])  # does not reach bit 0


def test_trace_log_fits_a_notebook_and_drops_what_the_exit_kind_fixes():
    for make in (hello_serial, three_faults, lambda: hello_serial(vendor="svm"), hello_pv):
        vcpu = finished(make)
        lines = text.trace_log(vcpu.machine.trace).splitlines()
        assert len(lines) == len(vcpu.machine.trace)
        assert max(map(len, lines)) <= 100  # a notebook cell at 1366 px shows ~118 characters
    serial = text.trace_log(finished(hello_serial).machine.trace, 0, 2).splitlines()
    assert serial[0].split() == ["250", "ns", "cpu", "exit", "IO_INSTRUCTION",
                                 "exit_qualification=0x3fa0000"]
    assert serial[1].endswith("emulate device=COM1 port=0x3fa dir=out value=0x0")
    pf = text.trace_log(finished(three_faults).machine.trace, 0, 1)
    assert "intr_info" not in pf and "exit_reason" not in pf and "intr_error_code=0x2" in pf
    inject = text.trace_log(finished(three_faults).machine.trace, 6, 7)
    assert "vector=14" in inject  # only exits lose their fixed fields


def test_trace_log_keeps_only_the_kinds_asked_for():
    trace = finished(hello_serial).machine.trace
    emulate = text.trace_log(trace, kinds=("emulate",)).splitlines()
    assert len(emulate) == len(trace.events("emulate")) > 0
    assert all(" emulate " in line for line in emulate)
    assert text.trace_log(trace, kinds="exit").splitlines() == text.trace_log(
        trace, kinds=["exit"]).splitlines()
    assert text.trace_log(trace, kinds=()) == ""


# --- serial: polls per character ----------------------------------------------------------------
def test_uart_polls_reads_xv6s_give_up_and_the_lost_bytes_from_the_trace():
    xv6 = finished(lambda: hello_serial("Hello\n", paced=True))
    data = serial.uart_polls(xv6.machine.trace)
    assert data.chars == list(b"Hello\n")
    assert data.polls == [1, 1, 128, 128, 128, 128]
    assert data.gave_up == [False, False, True, True, True, True]
    assert data.lost == [False, True, True, True, True, False]
    assert data.sent == uart_of(xv6).output == b"H\n"
    assert data.final_polls > 1000  # the wait for TEMT: two frames of 1.04 ms
    linux = finished(lambda: hello_serial("Hello\n", paced=True, max_polls=LINUX_EARLY_POLLS))
    data = serial.uart_polls(linux.machine.trace)
    assert data.sent == uart_of(linux).output == b"Hello\n" and not any(data.lost)
    fast = serial.uart_polls(finished(hello_serial).machine.trace)
    assert fast.polls == [1] * 6 and fast.final_polls == 1  # QEMU-like: THR always empty


def test_polls_per_character_plot_draws_the_polls():
    runs = {
        "xv6": finished(lambda: hello_serial("Hello\n", paced=True)).machine.trace,
        "fast": finished(hello_serial).machine.trace,
    }
    fig = serial.plot_polls_per_character(runs, bound=(128, "xv6 gives up"))
    check_labelled(fig)
    ax = fig.axes[0]
    heights = [round(r.get_height()) for r in ax.patches if r.get_width() < 1]
    assert heights[:6] == [1, 1, 128, 128, 128, 128]
    hatched = [r.get_hatch() for r in ax.patches[:6]]
    assert hatched == [None, "///", "///", "///", "///", None]
    assert [t.get_text() for t in ax.get_xticklabels()][-2:] == ["\\n", "wait for\nTEMT"]
    assert "H\\n (xv6)" in ax.get_title(loc="left")
    with pytest.raises(ConfigError):
        serial.plot_polls_per_character({})


# --- the core stays light -------------------------------------------------------------------------
def test_import_vmmlib_does_not_load_matplotlib_or_ipywidgets():
    code = (
        "import sys, vmmlib, vmmlib.viz, vmmlib.viz.palette\n"
        "vmmlib.viz.ROLES\n"
        "heavy = sorted(m for m in ('matplotlib', 'ipywidgets') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
