"""The teaching layer (vmmlib.viz): plots return labelled figures of the right data, and the
stepping widget moves forwards and backwards through a scenario when its buttons are clicked.

Headless: matplotlib runs on Agg and the widget's buttons are pressed with ``click()``.
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

import ipywidgets  # noqa: E402
import pytest  # noqa: E402
from ipywidgets.widgets.widget_link import Link  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vmmlib import MIB, Machine, Store, Vcpu  # noqa: E402
from vmmlib.devices.uart16550 import Uart16550  # noqa: E402
from vmmlib.devices.vga_text import TEXT_BASE, TEXT_SIZE, VgaTextBuffer  # noqa: E402
from vmmlib.errors import ConfigError  # noqa: E402
from vmmlib.guest.pv_console import pv_console_write  # noqa: E402
from vmmlib.guest.uart import serial_hello  # noqa: E402
from vmmlib.guest.vga import vga_puts  # noqa: E402
from vmmlib.hw.pcmap import LEGACY_PORTS  # noqa: E402
from vmmlib.scenarios.intercepts import hello_serial, uart_of  # noqa: E402
from vmmlib.viz import exitplots, memorymap, palette, portspace  # noqa: E402
from vmmlib.viz.stepper import (  # noqa: E402
    Stepper,
    render_registers,
    render_state,
    render_trace_tail,
)

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
    dom.emulate_ports(0x3F8, 8, Uart16550(machine.clock), "COM1")
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


# --- the stepper ---------------------------------------------------------------------------------
class Counting:
    """A scenario factory that counts how often it is called."""

    def __init__(self, make=serial_vcpu) -> None:
        self.make = make
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.make()


@pytest.fixture
def hello():
    """Chapter 01's "Hello" as the course's scenarios module builds it."""
    factory = Counting(hello_serial)
    return factory, Stepper(factory)


def test_stepper_knows_the_number_of_steps(hello):
    _, s = hello
    assert s.total == finished(hello_serial).steps  # one step per guest operation
    assert (s.index, s.slider.max, s.play.max) == (0, s.total, s.total)
    assert s.log_text() == "(no events yet)"


def test_step_advances_without_rerunning_and_back_restores(hello):
    factory, s = hello
    calls = factory.calls
    for _ in range(4):
        s.step_button.click()
    assert factory.calls == calls  # forward steps use the live scenario
    assert s.index == 4 and s.slider.value == 4 and s.play.value == 4
    before = s.log_text()
    reference = hello_serial()  # the same scenario, stepped by hand
    for _ in range(4):
        reference.step()
    assert before.splitlines()[-1] == str(reference.machine.trace[-1])
    s.step_button.click()
    assert s.index == 5 and s.log_text() != before
    s.back_button.click()
    assert factory.calls == calls + 1  # back = one fresh replay
    assert s.index == 4 and s.log_text() == before


def test_newest_events_are_highlighted(hello):
    _, s = hello
    for _ in range(3):
        s.step_button.click()
    new = s.marks[3] - s.marks[2]
    assert new == 2  # an OUT that exits: the exit, then the hypervisor's emulation
    assert s.log.value.count("background:") == new
    assert "2 new events" in s.status.value


def test_first_last_and_slider(hello):
    _, s = hello
    s.last_button.click()
    assert s.index == s.total and s.slider.value == s.total
    assert s.step_button.disabled and not s.back_button.disabled
    assert s.current.done and "halt" in s.log_text().splitlines()[-1]
    s.step_button.click()  # stepping past the end does nothing
    assert s.index == s.total
    s.first_button.click()
    assert s.index == 0 and s.log_text() == "(no events yet)" and s.first_button.disabled
    s.slider.value = 7
    assert s.index == 7
    at_seven = s.log_text()
    s.play.value = 9  # Play drives the same step index (jslinked in the browser)
    assert s.index == 9 and s.slider.value == 9
    s.slider.value = 7
    assert s.log_text() == at_seven


def test_play_is_linked_to_the_slider(hello):
    _, s = hello
    assert isinstance(s.play, ipywidgets.Play)
    assert isinstance(s._link, Link)
    assert s._link.source == (s.play, "value") and s._link.target == (s.slider, "value")
    assert s.play in s.widget.children[0].children


def test_state_panel_changes_after_a_step(hello):
    _, s = hello
    states = [s.state_text()]
    for _ in range(2):  # OUT FCR, OUT LCR (DLAB on)
        s.step_button.click()
        states.append(s.state_text())
    assert "LCR 0x00" in states[1] and "LCR 0x80" in states[2]
    assert states[2] != states[1]
    assert "vCPU hvm" in states[0] and "COM1 registers" in states[0]
    s.last_button.click()
    uart = uart_of(finished(hello_serial))
    assert s.state_text().endswith(f"wire: {uart.output!r}")  # what reached the wire by then


def test_state_panel_can_be_a_figure_or_a_widget():
    def draw(vcpu):
        fig = Figure(figsize=(2, 1.5), dpi=40)
        fig.add_subplot().set_title(f"{len(vcpu.machine.trace.events('exit'))} exits so far")
        return fig

    s = Stepper(vga_vcpu, render=draw)
    s.last_button.click()
    assert isinstance(s.state.children[0], ipywidgets.Image)
    assert bytes(s.state.children[0].value).startswith(b"\x89PNG")
    assert s.state_text() == f"{len(finished(vga_vcpu).machine.trace.events('exit'))} exits so far"
    label = ipywidgets.Label()

    def as_widget(vcpu):
        label.value = f"RIP {vcpu.rip:#x}"
        return label

    s = Stepper(vga_vcpu, render=as_widget)
    s.step_button.click()
    assert s.state.children[0] is label and s.state_text() == "RIP 0x1003"  # one MOV done


def test_stepper_errors():
    def endless():
        vcpu = serial_vcpu()
        vcpu.step = lambda: True
        return vcpu

    with pytest.raises(ConfigError, match="did not finish within 50 steps"):
        Stepper(endless, max_steps=50)
    with pytest.raises(ConfigError, match="factory"):
        Stepper(serial_vcpu())
    with pytest.raises(ConfigError, match="no .step"):
        Stepper(lambda: 42)
    with pytest.raises(ConfigError, match="render must return"):
        Stepper(serial_vcpu, render=lambda v: 42)

    builds = []

    def drifting():  # a scenario that changes from one build to the next
        builds.append(1)
        vcpu = finished(serial_vcpu) if len(builds) > 2 else serial_vcpu()
        return vcpu

    s = Stepper(drifting)
    s.step_button.click()
    with pytest.raises(ConfigError, match="not deterministic"):
        s.back()
    assert s.index == 1  # the failed replay did not move the widget
    s.back_button.click()  # from a button the error is shown where the student looks
    assert "error: the scenario is not deterministic" in s.status.value


def test_stepper_repr_has_no_addresses(hello):
    _, s = hello
    s.step_button.click()
    assert repr(s) == f"Stepper(step 1 of {s.total})"
    bundle = s._repr_mimebundle_()
    assert bundle["text/plain"] == repr(s)
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert " at 0x" not in render_state(object())


def test_render_helpers():
    table = render_registers({"LSR": 0x60, "DLL": 0x0C, "note": "<b>"}, title="COM1")
    assert "<caption" in table and "COM1" in table
    assert "0x60" in table and "0110 0000" in table and "0x0C" in table
    assert "&lt;b&gt;" in table  # values are escaped
    vcpu = finished(vga_vcpu)
    trace = vcpu.machine.trace
    tail = render_trace_tail(trace, stop=len(trace), n=3, new_from=len(trace) - 1)
    assert tail.count('<div style="background:') == 1
    assert "earlier event(s)" in tail
    with pytest.raises(ConfigError):
        render_registers([1, 2])
    with pytest.raises(ConfigError):
        render_trace_tail(trace, stop=len(trace) + 1)


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


def test_render_last_exit_shows_the_current_exit_three_ways():
    from vmmlib.viz import html_to_text, render_last_exit

    vcpu = hello_serial()
    assert "no exit yet" in html_to_text(render_last_exit(vcpu))
    vcpu.step()  # OUT to FCR (0x3FA)
    text = html_to_text(render_last_exit(vcpu))
    assert "Intel VMX exit reason 30, qualification 0x03fa0000" in text
    assert "AMD SVM exit code 0x7b, EXITINFO1 0x03fa0210" in text
    assert "KVM KVM_EXIT_IO direction=1 (OUT)" in text
    assert "COM1 registers" in text
