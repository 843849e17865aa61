"""The swimlane picture (vmmlib/viz/swimlane.py): lanes from the trace, in request order."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from vmmlib.errors import ConfigError  # noqa: E402
from vmmlib.scenarios.device_model import read_sector, status_read  # noqa: E402
from vmmlib.trace import Trace  # noqa: E402
from vmmlib.viz.swimlane import plot_swimlanes, swimlane_data  # noqa: E402


def test_a_trapped_in_goes_down_the_lanes_to_qemu_dm_and_back_up():
    vcpu = status_read()
    vcpu.run()
    data = swimlane_data(vcpu.machine.trace)
    assert data.lanes == ["guest vCPU", "CPU", "Xen", "dom0 / qemu-dm"]
    path = [data.lanes[lane] for _, lane, _ in data.points]
    assert path[0] == "CPU" and path[-1] == "guest vCPU" and "dom0 / qemu-dm" in path
    times = [t for t, _, _ in data.points]
    assert times == sorted(times)


def test_the_disk_lane_shows_when_the_backend_was_asked_and_when_it_was_done():
    vcpu = read_sector(backend="local disk")
    vcpu.run()
    trace = vcpu.machine.trace
    (asked,), (done,) = trace.events("access"), trace.events("done")
    assert done.time - asked.time == asked.fields["latency_ns"]
    fig = plot_swimlanes(trace)
    assert "disk backend" in fig.vmm_data.lanes
    assert fig.axes[0].get_title() and fig.axes[0].get_xlabel()


def test_nothing_to_draw_is_a_clear_error():
    with pytest.raises(ConfigError):
        plot_swimlanes(Trace())
    with pytest.raises(ConfigError):
        swimlane_data([])  # type: ignore[arg-type]
