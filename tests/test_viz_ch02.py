"""Chapter 02's pictures and the scenarios behind them: a recorded run stepped hop by hop (the
ioreq slot's real bytes after every hop), the IDE state diagram drawn from TRANSITIONS, the
cost plots, read-back tables; the VGA window without the buffered ring, the PC with four disks,
the measurements the notebook prints (vmmlib/viz/{device_model,state_diagram,transfers,
readback}.py, vmmlib/scenarios/device_model.py)."""

import matplotlib

matplotlib.use("Agg")

import gc  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vmmlib.cpu.ops import In, Store  # noqa: E402
from vmmlib.devices.ata import TRANSITIONS  # noqa: E402
from vmmlib.devices.readback import uart_readback_table  # noqa: E402
from vmmlib.errors import ConfigError  # noqa: E402
from vmmlib.scenarios import device_model as ch02  # noqa: E402
from vmmlib.scenarios.intercepts import hello_serial, uart_of  # noqa: E402
from vmmlib.viz import Stepper  # noqa: E402
from vmmlib.viz.device_model import (  # noqa: E402
    CYCLE,
    hex_dump,
    ioreq_panel,
    record,
    slot_fields,
    state_line,
)
from vmmlib.viz.readback import readback_table  # noqa: E402
from vmmlib.viz.state_diagram import ide_state_data, plot_ide_states, status_text  # noqa: E402
from vmmlib.viz.transfers import (  # noqa: E402
    plot_backends,
    plot_buffered_ring,
    plot_transfer_styles,
)
from vmmlib.xen.ioreq import decode  # noqa: E402


@pytest.fixture(scope="module")
def hop():
    return record(ch02.dm_machine, ch02.status_read_program, "hop")


@pytest.fixture(scope="module")
def sector_read():
    return record(lambda: ch02.dm_machine("network storage"),
                  lambda: ch02.read_sector_program(1, "insw", irq=True), "read")


def titled(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    assert fig.get_suptitle() or any(ax.get_title() for ax in fig.axes)
    for ax in fig.axes:
        if ax.axison:
            assert ax.get_xlabel() or ax.get_xticklabels(), "unlabelled x axis"
            assert ax.get_ylabel() or [t.get_text() for t in ax.get_yticklabels()]


# --- recording ---------------------------------------------------------------------------------

def test_a_recording_keeps_the_slot_after_every_hop(hop):
    assert hop.result == 0x50 and hop.crashed is None
    assert len(hop.snapshots) == len(hop.rows) == len(hop.trace) == 9
    states = [slot_fields(s.slot)["state"] for s in hop.snapshots]
    assert states == ["NONE", "READY", "READY", "READY", "INPROCESS", "IORESP_READY",
                      "IORESP_READY", "NONE", "NONE"]
    kinds = [e.kind for e in hop.trace]
    assert kinds[states.index("READY")] == "ioreq" and kinds[states.index("INPROCESS")] == "take"
    final = decode(hop.snapshots[-1].slot)
    live = hop.world.qemu.server.page.read(0)
    assert final == live and final.data == 0x50  # the last snapshot is the page as it is


def test_a_recording_is_deterministic_and_its_rows_are_the_core_s(hop):
    again = record(ch02.dm_machine, ch02.status_read_program, "hop")
    assert again.rows == hop.rows and again.snapshots == hop.snapshots
    plain = ch02.status_read()
    plain.run()
    assert [str(e) for e in plain.machine.trace] == [str(e) for e in hop.trace]


def test_a_row_that_bypasses_the_recorder_is_reported():
    stash = {}

    def world():
        w = ch02.dm_machine()
        stash["append"] = w.machine.trace.record  # a cached append, as a component might keep
        return w

    def sneaky():
        stash["append"]((0, 0))
        yield In(0x1F7, 1)

    with pytest.raises(ConfigError, match="bypassed the recorder"):
        record(world, sneaky)
    with pytest.raises(ConfigError, match="chapter-02 worlds"):
        record(lambda: object(), ch02.status_read_program)


def test_recorded_steps_reveal_one_row_per_step(hop):
    steps = hop.steps()
    assert len(steps.trace) == 0 and steps.snapshot == hop.start
    results = [steps.step() for _ in range(len(hop))]
    assert results == [True] * (len(hop) - 1) + [False]
    assert steps.done and [str(e) for e in steps.trace] == [str(e) for e in hop.trace]
    assert steps.machine.clock.now == hop.trace[len(hop) - 1].time
    assert not steps.step() and len(steps.trace) == len(hop)  # past the end: nothing more


def test_the_stepper_walks_the_slot_through_its_states(hop):
    stepper = Stepper(hop.steps, render=ioreq_panel, start="first")
    assert stepper.total == len(hop)
    seen = []
    for _ in range(stepper.total):
        stepper.step_button.click()
        line = next(x for x in stepper.state_text().splitlines() if x.startswith("state: "))
        seen.append(line.split("[")[1].split("]")[0])
    assert seen[1] == "READY" and seen[4] == "INPROCESS" and seen[5] == "IORESP_READY"
    assert seen[-1] == "NONE"
    stepper.goto(2)
    assert ("ioreq slot 0, in the shared page", "state") in stepper.changed()
    assert "blocked on its ioreq slot" in stepper.state_text()
    stepper.back_button.click()
    assert "Xen decodes it" in stepper.state_text()
    stepper.last_button.click()
    assert "IN 0x1f7 (1 byte) → 0x50" in stepper.state_text()


def test_the_panel_shows_the_drive_and_a_rep_insw_request(sector_read):
    steps = sector_read.steps()
    while steps.step():
        if steps.events()[-1].kind == "ioreq" and steps.events()[-1].fields["count"] > 1:
            break
    text = ioreq_panel(steps).text()
    assert "IN 0x1f0 (2 bytes x 256, buffer at 0x100000)" in text
    assert "data_is_ptr True" in text and "IDE primary, drive 0: drq_in" in text
    with pytest.raises(ConfigError):
        ioreq_panel(object())  # type: ignore[arg-type]


def test_the_panel_shows_the_buffered_ring_when_it_moves():
    def two_stores():
        yield Store(0xB8000, 2, 0x0748)
        yield Store(0xB8002, 2, 0x0769)

    recording = record(ch02.dm_machine, two_stores)
    steps = recording.steps()
    while steps.step():
        pass
    text = ioreq_panel(steps).text()
    assert "buffered ring" in text and "write pointer: 2" in text
    assert "buffered" in text.split("access: ")[1]


def test_text_helpers():
    assert state_line("READY") == "NONE → [READY] → INPROCESS → IORESP_READY → NONE"
    assert CYCLE[0] == "NONE"
    assert hex_dump(bytes(range(20))).splitlines() == [
        "00: 00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f", "10: 10 11 12 13"]


def test_importing_the_stepping_helpers_loads_no_plotting():
    code = ("import sys, vmmlib.viz.device_model, vmmlib.viz.readback\n"
            "print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"], done.stderr


# --- the state diagram -------------------------------------------------------------------------

def test_the_diagram_draws_every_transition_of_the_table_and_nothing_else(sector_read):
    fig = plot_ide_states(history=sector_read.world.ide.history)
    drawn = {(e.state, event, e.next) for e in fig.vmm_data for event in e.events}
    assert drawn == {(t.state, t.event, t.next) for t in TRANSITIONS}
    taken = {(e.state, e.next): e.taken for e in fig.vmm_data if e.taken}
    assert taken == {("idle", "busy"): 1, ("busy", "drq_in"): 1, ("drq_in", "idle"): 1}
    titled(fig)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"idle", "busy", "drq_in", "drq_out", "error", "reset", "every state"} <= texts
    assert "0x58 DRDY DSC DRQ" in texts and "0xc0 BSY DRDY" in texts


def test_the_diagram_follows_a_changed_table():
    from vmmlib.devices.ata import Transition

    table = (*TRANSITIONS, Transition("drq_out", "aborted by host", "idle", "test"))
    edges = ide_state_data(table)
    assert any(e.events == ("aborted by host",) for e in edges)
    plot_ide_states(table)
    with pytest.raises(ConfigError, match="does not place"):
        ide_state_data((Transition("idle", "x", "sleeping", ""),))
    assert status_text(0x41) == "0x41 DRDY ERR"


# --- cost plots --------------------------------------------------------------------------------

def test_reading_in_each_style_costs_what_section_2_says():
    styles = ch02.read_styles(lba=3)
    assert {s: (r["exits"], r["ioreqs"], r["right"]) for s, r in styles.items()} == {
        "insl": (10, 10, 1), "insw": (10, 10, 1), "inl": (137, 137, 1), "inw": (265, 265, 1)}
    fig = plot_transfer_styles(styles)
    titled(fig)
    assert fig.vmm_data["inw"]["exits"] == 265
    with pytest.raises(ConfigError):
        plot_transfer_styles({"insw": {"exits": 1}})


def test_reading_through_each_backend_and_the_per_mib_estimate():
    found = ch02.read_backends(sectors=8)
    assert list(found) == list(ch02.BACKENDS)
    assert found["memory"] == found["file"]  # the page cache hides behind the round trip
    assert found["local disk"]["first_ns"] > 10 * found["memory"]["first_ns"]  # seek, rotation
    assert found["network storage"]["steady_ns"] > 5 * found["memory"]["steady_ns"]
    for row in found.values():
        assert row["per_mib_ns"] == row["first_ns"] + 2047 * row["steady_ns"]
    # the 1 MiB read of bench_device_model gives 50.9, 50.9, 55.1, 457.3 ms
    assert [round(r["per_mib_ns"] / 1e6, 1) for r in found.values()] == [50.9, 50.9, 55.1, 457.2]
    titled(plot_backends(found))
    with pytest.raises(ConfigError):
        ch02.read_backends(sectors=1)


def test_four_disks_one_per_backend():
    world = ch02.backends_machine(sectors=64)
    kinds = [d.backend.name for ide in world.channels for d in ide.drives]
    assert kinds == ["memory", "file", "local disk", "network storage"]
    assert [ide.name for ide in world.channels] == ["IDE primary", "IDE secondary"]
    assert world.guest.ioreq_server.serves_port(0x170) == "IDE secondary"


def test_the_buffered_ring_saves_the_wait_not_the_exit():
    rows = ("x" * 80, "y" * 40)
    with_ring, without = ch02.vga_fill(rows), ch02.vga_fill(rows, buffered=False)
    with_ring.run()
    without.run()
    a, b = ch02.costs(with_ring), ch02.costs(without)
    assert a["exits"] == b["exits"] == 120
    assert (a["ioreqs"], a["buffered"], a["stall_ns"]) == (0, 120, 0)
    assert b["ioreqs"] == 120 and b["buffered"] == 0 and b["stall_ns"] > 100 * 10_000
    assert b["stall_ns"] == sum(ch02.ioreq_waits(without.machine.trace))
    assert ch02.world_of(without).vga.row(1) == "y" * 40
    fig = plot_buffered_ring({"with": a, "without": b})
    titled(fig)
    with pytest.raises(ConfigError):
        plot_buffered_ring({})


def test_settle_lets_qemu_dm_drain_the_ring_after_the_guest_finished():
    picture = ch02.vga_mode13h()
    picture.run()
    ring = ch02.world_of(picture).qemu.server.buffered
    assert ring.write_pointer - ring.read_pointer > 0  # the last writes still wait
    assert ch02.settle(picture) > 0
    assert ring.write_pointer == ring.read_pointer
    assert (ch02.world_of(picture).vga.pixels() != 0).all()
    assert ch02.settle(picture) == 0


def test_who_answers_port_0x80_xen_and_qemu_dm():
    world = ch02.dm_machine()
    vcpu = ch02.vcpu_on(world, ch02.who_answers_program())
    vcpu.run()
    assert vcpu.result == (0xFF, 0x50)
    kinds = [(e.actor, e.kind) for e in world.machine.trace]
    assert kinds[0] == ("hvm", "io")  # 0x80: no exit
    assert kinds[1:3] == [("cpu", "exit"), ("xen", "emulate")]  # the PIC: Xen itself
    assert ("xen", "ioreq") in kinds[3:]  # the IDE: qemu-dm


# --- read-back ---------------------------------------------------------------------------------

def test_the_live_read_back_demo_and_its_table():
    world = ch02.dm_machine()
    vcpu = ch02.vcpu_on(world, ch02.readback_program(lba=5, features=0x03))
    vcpu.run()
    assert vcpu.result == {"error (features written)": 0, "sector count": 1, "LBA low": 5,
                           "status (command written)": 0x58}
    table = readback_table(world.ide.readback_table(), "IDE")
    text = str(table)
    assert text.splitlines()[0] == "IDE"
    command = next(line for line in text.splitlines() if line.startswith("0x1F7"))
    assert "status" in command and "0x58" in command and "0x20" in command and " no " in command
    html = table._repr_html_()
    assert html.count("<tr") == len(world.ide.readback_table()) + 1
    assert "object at" not in text + html
    with pytest.raises(ConfigError):
        readback_table([])


def test_the_uart_table_wraps_long_notes():
    serial = hello_serial("Hi\n")
    serial.run()
    text = readback_table(uart_readback_table(uart_of(serial))).text(shadow_width=30)
    assert max(len(line) for line in text.splitlines()) < 130
    assert "THR (DLAB=0)" in text and "(none)" in text


# --- scenario hygiene ----------------------------------------------------------------------------

def test_a_private_disk_image_is_removed_with_its_backend():
    backend = ch02.make_backend("file", sectors=16)
    folder = Path(backend.path).parent
    assert folder.exists()
    del backend
    gc.collect()
    assert not folder.exists()


def test_the_existing_scenarios_keep_their_behaviour():
    vcpu = ch02.vga_text()
    vcpu.run()
    assert ch02.world_of(vcpu).vga.row(0).startswith("Hello from the HVM guest")
    world = ch02.dm_machine()
    assert world.channels == (world.ide,) and world.disk is world.ide.drives[0].backend
