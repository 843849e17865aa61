"""The stepping widget (vmmlib.viz.stepper) and its state panels (vmmlib.viz.panels, and
chapter 01's in vmmlib.viz.intercepts): it moves forwards and backwards when its buttons are
clicked, opens at the end of the run, highlights what the last step changed (also after a
replay), and each chapter-01 panel shows what its scenario is about.

Headless: the widget's buttons are pressed with ``click()``.
"""

import ipywidgets
import pytest
from ipywidgets.widgets.widget_link import Link
from matplotlib.figure import Figure

from vmmlib import MIB, Machine, Vcpu
from vmmlib.devices.uart16550 import Uart16550
from vmmlib.errors import ConfigError
from vmmlib.guest.uart import serial_hello
from vmmlib.scenarios.intercepts import GUEST_BASE, hello_serial, three_faults
from vmmlib.viz import mmio_panel, serial_panel
from vmmlib.viz.panels import Panel, key_value, register_table, text_block
from vmmlib.viz.stepper import Stepper, render_registers, render_state, render_trace_tail


def finished(make):
    vcpu = make()
    vcpu.run()
    return vcpu


class Counting:
    """A scenario factory that counts how often it is called."""

    def __init__(self, make=hello_serial) -> None:
        self.make = make
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.make()


@pytest.fixture
def hello():
    """Chapter 01's "Hello\\n" on COM1, opened at its first step."""
    factory = Counting()
    return factory, Stepper(factory, start="first")


# --- moving ---------------------------------------------------------------------------------
def test_stepper_opens_at_the_end_of_the_run_by_default():
    s = Stepper(hello_serial)
    assert s.total == finished(hello_serial).steps  # one step per guest operation
    assert s.index == s.total and s.current.done
    assert "finished" in s.status.value and "halt" in s.log_text().splitlines()[-1]
    assert "state: done" in s.state_text().splitlines()
    assert Stepper(hello_serial, start=3).index == 3
    with pytest.raises(ConfigError, match="start"):
        Stepper(hello_serial, start="middle")


def test_first_step_shows_an_instruction_not_an_empty_log(hello):
    _, s = hello
    assert (s.index, s.slider.max, s.play.max) == (0, s.total, s.total)
    assert s.log_text() == "(nothing has run yet: press step)"


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
    last = before.splitlines()[-1].split()
    event = reference.machine.trace[-1]
    assert last[:5] == [f"{event.time:,}", "ns", "xen", "emulate", "device=COM1"]
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


def test_log_records_never_wrap():
    s = Stepper(three_faults)
    assert "white-space:pre" in s.log.value
    lines = s.log_text().splitlines()
    assert len({len(line) for line in lines if "exit" in line}) >= 1
    widths = {line.index(" ns ") for line in lines}  # the time column is aligned
    assert len(widths) == 1


def test_first_last_and_slider(hello):
    _, s = hello
    s.last_button.click()
    assert s.index == s.total and s.slider.value == s.total
    assert s.step_button.disabled and not s.back_button.disabled
    assert s.current.done and "halt" in s.log_text().splitlines()[-1]
    s.step_button.click()  # stepping past the end does nothing
    assert s.index == s.total
    s.first_button.click()
    assert s.index == 0 and s.first_button.disabled
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
    controls = s.widget.children[1]
    assert s.play in controls.children and s.step_button in controls.children


# --- the state panel and its highlights --------------------------------------------------------
def test_default_state_panel_highlights_what_the_step_changed(hello):
    _, s = hello
    s.step_button.click()  # OUT FCR = 0: nothing of COM1's visible state changes
    assert ("COM1 registers", "LCR") not in s.changed()
    s.step_button.click()  # OUT LCR = 0x80 (DLAB on)
    assert "LCR 0x80 1000 0000" in s.state_text()
    changed = s.changed()
    assert ("COM1 registers", "LCR") in changed and ("vCPU hvm", "RIP") in changed
    assert ("COM1 registers", "THR") not in changed
    marked = s._state_html.value.split("background:")[1:]  # each highlighted value
    assert len(marked) == sum(2 if section == "COM1 registers" else 1 for section, _ in changed)
    assert any(m.split(">", 1)[1].startswith("0x80<") for m in marked)  # LCR's new value
    s.step_button.click()  # OUT DLL = 12: equal to QEMU's reset divisor, so no change
    assert ("COM1 registers", "DLL") not in s.changed()


def test_highlights_are_the_same_after_a_replay(hello):
    _, s = hello
    s.slider.value = 2
    forward = s.changed()
    s.slider.value = 6
    s.slider.value = 2  # backwards: a fresh scenario replayed to step 1, rendered, then one step
    assert s.changed() == forward and forward


def test_the_wire_grows_and_only_its_new_tail_is_marked():
    s = Stepper(hello_serial, render=serial_panel)
    assert s.state_text().count("Hello\\n") == 1  # the wire as text, not b'Hello\n'
    assert "b'" not in s.state_text()
    s.slider.value = 14  # the OUT of the 'e' (10 init steps, then poll and write per byte)
    assert ("COM1's wire", "") in s.changed()
    wire = s._state_html.value.split("COM1&#x27;s wire")[1]
    assert "H<span" in wire and ">e</span>" in wire  # only the new byte is marked
    block = text_block("wire", "Hello")
    old = text_block("wire", "Hel")
    html = Panel(block).html(Panel(old))
    assert "Hel<span" in html and ">lo</span>" in html


def test_state_panel_can_be_a_figure_or_a_widget():
    def draw(vcpu):
        fig = Figure(figsize=(2, 1.5), dpi=40)
        fig.add_subplot().set_title(f"{len(vcpu.machine.trace.events('exit'))} exits so far")
        return fig

    s = Stepper(three_faults, render=draw, start="first")
    s.last_button.click()
    assert isinstance(s.state.children[0], ipywidgets.Image)
    assert bytes(s.state.children[0].value).startswith(b"\x89PNG")
    assert s.state_text() == "3 exits so far" and s.changed() == []
    label = ipywidgets.Label()

    def as_widget(vcpu):
        label.value = f"RIP {vcpu.rip:#x}"
        return label

    s = Stepper(three_faults, render=as_widget, start="first")
    s.step_button.click()
    assert s.state.children[0] is label and s.state_text() == "RIP 0x1003"  # one store done


def test_a_stacked_stepper_puts_its_log_above_the_panel():
    beside, stacked = Stepper(three_faults), Stepper(three_faults, stacked=True, log_lines=4)
    for s, box in ((beside, ipywidgets.HBox), (stacked, ipywidgets.VBox)):
        panels = s.widget.children[-1]
        assert type(panels) is box and panels.children == (s.log, s.state)
    assert len(stacked.log_text().splitlines()) <= 5  # four lines and "… earlier events"
    assert stacked.state.layout.flex == "0 0 auto"  # as tall as its picture, never clipped


def _emulated_hello(vendor: str = "vmx") -> Vcpu:
    machine = Machine(ram=64 * MIB)
    dom = machine.add_domain("dom1", 16 * MIB, vendor=vendor)
    dom.emulate_ports(0x3F8, 8, Uart16550(machine.clock, paced=False), "COM1")
    return Vcpu(dom, serial_hello("Hi"))


def test_stepper_errors():
    def endless():
        vcpu = _emulated_hello()
        vcpu.step = lambda: True
        return vcpu

    with pytest.raises(ConfigError, match="did not finish within 50 steps"):
        Stepper(endless, max_steps=50)
    with pytest.raises(ConfigError, match="factory"):
        Stepper(_emulated_hello())
    with pytest.raises(ConfigError, match="no .step"):
        Stepper(lambda: 42)
    with pytest.raises(ConfigError, match="render must return"):
        Stepper(_emulated_hello, render=lambda v: 42)

    builds = []

    def drifting():  # a scenario that changes from one build to the next
        builds.append(1)
        return finished(_emulated_hello) if len(builds) > 2 else _emulated_hello()

    s = Stepper(drifting, start="first")
    s.step_button.click()
    with pytest.raises(ConfigError, match="not deterministic"):
        s.back()
    assert s.index == 1  # the failed replay did not move the widget
    s.back_button.click()  # from a button the error is shown where the student looks
    assert "error: the scenario is not deterministic" in s.status.value


def test_stored_output_reads_as_an_instruction(hello):
    _, s = hello
    s.step_button.click()
    assert repr(s) == f"Stepper(step 1 of {s.total})"
    bundle = s._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Run this cell to step through the scenario")
    assert f"({s.total} steps)" in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert " at 0x" not in render_state(object())


# --- the sections ------------------------------------------------------------------------------
def test_panel_sections_escape_and_mark():
    regs = register_table("COM1", {"LSR": 0x60, "DLL": 0x0C, "note": "<b>", "wide": 0x1234})
    assert regs.items == {"LSR": "0x60", "DLL": "0x0C", "note": "<b>", "wide": "0x1234"}
    assert regs.bits["LSR"] == "0110 0000" and "wide" not in regs.bits
    html = regs.html({("COM1", "LSR"): "0x20", ("COM1", "DLL"): "0x0C"})
    assert "&lt;b&gt;" in html and "<b>" not in html  # values are escaped
    assert html.count("background:") == 2 + 2 + 2  # LSR (hex, bits); note and wide are new
    kv = key_value("facts", {"kind": "MMIO", "": "a line without a key"})
    assert kv.text() == "facts\nkind: MMIO\na line without a key"
    assert Panel(kv).changed(Panel(key_value("facts", {"kind": "RAM"}))) == [
        ("facts", "kind"), ("facts", "")
    ]
    with pytest.raises(ConfigError):
        register_table("x", [1, 2])
    with pytest.raises(ConfigError):
        Panel("<table>")
    with pytest.raises(ConfigError):
        text_block("wire", b"bytes")


def test_render_helpers():
    table = render_registers({"LSR": 0x60, "DLL": 0x0C}, title="COM1")
    assert "COM1" in table and "0x60" in table and "0110 0000" in table
    vcpu = finished(three_faults)
    trace = vcpu.machine.trace
    tail = render_trace_tail(trace, stop=len(trace), n=3, new_from=len(trace) - 1)
    assert tail.count('<div style="background:') == 1
    assert "earlier event(s)" in tail
    with pytest.raises(ConfigError):
        render_trace_tail(trace, stop=len(trace) + 1)


# --- chapter 01's panels -----------------------------------------------------------------------
def test_serial_panel_shows_the_exit_three_ways_com1_and_the_wire():
    vcpu = hello_serial()
    text = serial_panel(vcpu).text()
    assert "none yet" in text
    vcpu.step()  # OUT to FCR (0x3FA)
    text = serial_panel(vcpu).text()
    assert "guest: OUT port 0x03fa, 1 byte(s) ← 0x00" in text
    assert "Intel VMX: exit reason 30, qualification 0x03fa0000" in text
    assert "AMD SVM: exit code 0x7b, EXITINFO1 0x03fa0210" in text
    assert "KVM: KVM_EXIT_IO direction=1 (OUT)" in text
    assert "COM1 registers" in text and "COM1's wire" in text
    vcpu.run()
    lines = serial_panel(vcpu).text().splitlines()
    assert lines[lines.index("COM1's wire") + 1] == "Hello\\n"
    assert "guest: IN port 0x03fd, 1 byte(s) → 0x60" in lines[1]


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_mmio_panel_shows_the_walk_the_shadow_entry_and_the_vga_text(vendor):
    vcpu = three_faults(vendor)
    texts = []
    while vcpu.step():
        texts.append(mmio_panel(vcpu).text())
    texts.append(mmio_panel(vcpu).text())
    mmio, ram, real = texts
    assert "verdict: MMIO: emulate it" in mmio and "gpa is: VGA (emulated)" in mmio
    assert "KVM: KVM_EXIT_MMIO phys_addr=0xb8000 len=2 is_write=1" in mmio
    assert "shadow entry: none" in mmio and "VGA row 0: 'H'" in mmio
    assert "verdict: RAM: fill the shadow entry, retry" in ram
    assert f"shadow entry: maddr {GUEST_BASE + 0x100000:#x}, writable" in ram
    assert "verdict: a real #PF: inject it into the guest" in real
    assert "guest PTE: not present" in real and "guest's #PF: #PF at 0xc0200000" in real
    for t in texts:
        assert "COM1" not in t  # the MMIO panel is about memory, not the serial port


def test_chapter_01_logs_are_short_enough_to_sit_beside_their_panels():
    # at 11px monospace a character is about 6.6 px; a notebook output at 1366x768 is ~930 px
    # wide, and a panel needs ~320 px: a log line may take ~90 characters (the browser test
    # measures the real layout)
    for make, render in ((hello_serial, serial_panel), (three_faults, mmio_panel)):
        s = Stepper(make, render=render)
        assert max(map(len, s.log_text().splitlines())) <= 90
