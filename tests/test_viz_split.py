"""Chapter 03's pictures (vmmlib/viz/split_costs.py): the three paths side by side per MiB,
and one request's journey on the swimlanes with each step named."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from vmmlib import viz  # noqa: E402
from vmmlib.errors import ConfigError  # noqa: E402
from vmmlib.scenarios.split_drivers import PATHS, PathCost, compare_paths, split_read  # noqa: E402
from vmmlib.trace import Trace  # noqa: E402
from vmmlib.viz import split_costs  # noqa: E402
from vmmlib.viz.palette import GREY, GUEST_COLOURS, event_colour  # noqa: E402
from vmmlib.viz.split_costs import (  # noqa: E402
    DOM0_KERNEL,
    journey_steps,
    paths_data,
    plot_journey,
    plot_paths,
)


@pytest.fixture(scope="module")
def costs():
    return compare_paths(64)


def test_plot_paths_draws_four_titled_log_panels_with_one_bar_per_path(costs):
    fig = plot_paths(costs, title="three paths")
    assert "three paths" in fig._suptitle.get_text()
    assert len(fig.axes) == 4
    for ax, (key, name, ylabel, scale, _) in zip(fig.axes, split_costs.PANELS, strict=True):
        assert ax.get_title() == name and ax.get_ylabel().startswith(ylabel)
        assert ax.get_yscale() == "log"
        assert [t.get_text().replace("\n", " ") for t in ax.get_xticklabels()] == list(PATHS)
        heights = [bar.get_height() for bar in ax.patches]
        want = [c.per_mib(getattr(c, key)) * scale for c in costs]
        assert heights == pytest.approx(want)
        assert [to_hex(bar.get_facecolor()) for bar in ax.patches] == [
            c.lower() for c in GUEST_COLOURS[:3]]
        assert len(ax.texts) == 3  # the numbers, zeros included


def test_the_numbers_on_the_bars_are_the_per_mib_values(costs):
    fig = plot_paths(costs)
    ide = costs[0]
    exits = [t.get_text() for t in fig.axes[0].texts]
    assert exits[0] == f"{ide.per_mib(ide.exits):,.0f}"
    assert exits[1] == "0"  # a PV guest makes no VM exits
    times = [t.get_text() for t in fig.axes[3].texts]
    assert all(t.endswith(" ms") for t in times)
    assert float(times[1].split()[0]) == pytest.approx(costs[1].per_mib(costs[1].virtual_ns)
                                                       / 1e6, rel=5e-3)
    assert fig.vmm_data == paths_data(costs)
    assert fig.vmm_data[PATHS[2]]["exits"] > fig.vmm_data[PATHS[1]]["exits"] == 0


def test_bad_paths_are_a_clear_error(costs):
    for bad in ([], [object()], "abc", [costs[0], costs[0]]):
        with pytest.raises(ConfigError):
            plot_paths(bad)


def test_paths_scale_to_a_mib():
    one = PathCost("x", 512 * 1024, exits=10, hypercalls=0, events=4, ioreqs=0, virtual_ns=100)
    assert paths_data([one])["x"] == {"exits": 20, "hypercalls": 0, "events": 8,
                                      "virtual_ns": 200}


JOURNEY = ["grant (domid, frame, flags)", "request in ring slot 0", "publish req_prod",
           "event {guest} → dom0", "dom0's upcall", "copy request", "map grant", "disk read",
           "response", "event dom0 → {guest}", "upcall", "completion (blkfront)"]


@pytest.mark.parametrize("kind", ["pv", "hvm"])
def test_the_journey_names_each_step_in_order(kind):
    vcpu = split_read(kind, 0, 8)
    vcpu.run()
    fig = plot_journey(vcpu.machine.trace, title="journey")
    labels = [label for *_, label in fig.vmm_steps]
    guest = vcpu.domain.name
    want = [s.format(guest=guest) for s in JOURNEY]
    found = [next(i for i, lab in enumerate(labels) if lab.startswith(w)) for w in want]
    assert found == sorted(found)  # every step, in the order a request travels
    times = [t for t, *_ in fig.vmm_steps]
    assert times == sorted(times)
    ax = fig.axes[0]
    assert ax.get_title() == "journey" and "µs" in ax.get_xlabel()
    assert sorted(t.get_text() for t in ax.texts) == sorted(labels)  # only the step names
    lanes = [t.get_text() for t in ax.get_yticklabels()]
    assert DOM0_KERNEL in lanes and "dom0 / blkback" in lanes and "disk backend" in lanes
    assert "dom0 / qemu-dm" not in lanes
    if kind == "hvm":  # hypercalls are VMCALL exits, the wait an HLT, the event a vector
        assert {"VMCALL", "HLT"} <= set(labels) and "CPU" in lanes
        assert any(lab.startswith("upcall (vector") for lab in labels)
    else:
        assert "CPU" not in lanes and "upcall (callback)" in labels


def test_the_journey_of_a_later_request_is_its_own():
    vcpu = split_read("pv", 0, 200)  # 100 KiB: three requests of up to 11 pages
    vcpu.run()
    trace = vcpu.machine.trace
    start, stop, steps = journey_steps(trace, 1)
    assert [e.fields["id"] for e in list(trace)[start:stop]
            if e.actor == "blkfront" and e.kind == "request"][0] == 1
    ids = {s.event.fields["id"] for s in steps if "id" in s.event.fields}
    assert ids == {1}
    assert steps[0].label.startswith("grant") and steps[-1].label.startswith("completion")
    with pytest.raises(ConfigError, match="no request 3"):
        journey_steps(trace, 3)


def test_a_journey_needs_a_completed_request_in_a_trace():
    with pytest.raises(ConfigError):
        plot_journey([])
    trace = Trace()
    trace.add(0, "g", "store", addr=0x10040, length=112)
    trace.add(1, "blkfront", "request", id=0, op=0, sector=0, segments=1, slot=0)
    with pytest.raises(ConfigError, match="never completed"):
        journey_steps(trace)
    with pytest.raises(ConfigError, match="0 blkfront requests"):
        journey_steps(Trace())


def test_the_journeys_kinds_have_colours_and_the_names_load_lazily():
    for kind in ("request", "push", "grant-map", "response", "evtchn", "upcall", "take",
                 "access"):
        assert event_colour(kind) != GREY
    assert viz.plot_paths is plot_paths and viz.plot_journey is plot_journey
