"""Chapter 03's ring pictures (vmmlib/viz/ring.py): the ring of slots with its eight indices,
the Stepper's ring panel."""

import matplotlib

matplotlib.use("Agg")


import re  # noqa: E402

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Wedge  # noqa: E402

from vmmlib.errors import ConfigError  # noqa: E402
from vmmlib.scenarios.ring_demo import lost_wakeup, notification_sweep, ring_burst  # noqa: E402
from vmmlib.scenarios.ring_world import SLOT_STATES  # noqa: E402
from vmmlib.viz import Stepper  # noqa: E402
from vmmlib.viz.ring import (  # noqa: E402
    SLOT_COLOURS,
    plot_interleaving,
    plot_notifications,
    plot_ring,
    ring_panel,
    ring_picture,
)
from vmmlib.viz.ring_svg import ring_svg  # noqa: E402


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def run_to(burst, kind: str, actor: str):
    while burst.step():
        events = burst.trace.events(kind, actor)
        if events:
            return burst
    raise AssertionError(f"no {actor} {kind}")


def test_the_ring_picture_shows_every_slot_coloured_by_what_it_holds():
    burst = run_to(ring_burst(), "take", "back")
    state = burst.ring
    fig = plot_ring(state, "after one take")
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "after one take"
    wedges = [p for p in fig.axes[0].patches if isinstance(p, Wedge)]
    assert len(wedges) == 32
    for view, wedge in zip(state.slots, wedges, strict=True):
        want = matplotlib.colors.to_rgb(SLOT_COLOURS[view.state])
        assert matplotlib.colors.to_rgb(wedge.get_facecolor()) == pytest.approx(want)
    assert fig.vmm_data["slots"] == {s: state.count(s) for s in SLOT_STATES}
    assert state.count("serving") == 1 and state.count("request") == 5
    words = texts(fig)
    for view in state.slots:
        if view.label:
            assert view.label in words
    assert [str(k) for k in range(32)] == [w for w in words if w.isdigit()][:32]
    touched = [w for w in wedges if w.get_linewidth() > 2]
    assert len(touched) == 1 and state.touched == state.slot_of(state.req_cons - 1)


def test_every_index_is_labelled_with_its_free_running_value_in_hex():
    start = ring_burst()
    end = ring_burst().run()
    before, after = plot_ring(start.ring, "start"), plot_ring(end.ring, "end")
    assert "req_prod 0xFFFFFFFD" in texts(before) and "req_event 0xFFFFFFFE" in texts(before)
    assert "req_prod 0x00000003" in texts(after) and "rsp_cons 0x00000003" in texts(after)
    drawn = {d["name"]: d for d in after.vmm_data["indices"]}
    assert {n: d["value"] for n, d in drawn.items()} == end.ring.indices()
    assert all(d["slot"] == d["value"] & 31 for d in drawn.values())
    assert {d["owner"] for d in drawn.values()} == {"shared", "front", "back"}
    ys = sorted((d["side"], d["y"]) for d in drawn.values())
    for (s1, y1), (s2, y2) in zip(ys, ys[1:], strict=False):
        assert s1 != s2 or y2 - y1 >= 0.12  # labels never overlap, however the indices lie


def test_plot_ring_draws_on_a_given_axes_and_refuses_bad_input():
    fig = Figure(figsize=(9, 5))
    ax = fig.add_subplot()
    assert plot_ring(ring_burst().ring, "given axes", ax=ax) is fig
    assert ax.get_title() == "given axes"
    with pytest.raises(ConfigError):
        plot_ring(object(), "x")
    with pytest.raises(ConfigError):
        plot_ring(ring_burst().ring, "")
    with pytest.raises(ConfigError):
        ring_panel(object())


def test_the_ring_panel_steps_with_the_burst_and_marks_what_changed():
    stepper = Stepper(ring_burst, render=ring_panel, start="first")
    assert stepper.total == len(list(_steps()))
    assert "did: nothing yet" in stepper.state_text()
    assert "slots in use (0 of 32)" in stepper.state_text()
    stepper.step_button.click()
    text = stepper.state_text()
    assert "did: front put-request" in text
    assert "req_prod_pvt: 0xfffffffe (slot 30)" in text  # started at 2**32 - 3: slot 29 filled
    assert "req_prod: 0xfffffffd (slot 29)" in text  # ... but not yet published
    assert "slot 29  request written (not pushed)" in text
    assert ("front end (private)", "req_prod_pvt") in stepper.changed()
    assert ("shared page", "req_prod") not in stepper.changed()
    stepper.last_button.click()
    text = stepper.state_text()
    assert "did: front sleep" in text
    assert "rsp_cons: 0x00000003 (slot  3)" in text  # six answered: the indices wrapped
    with pytest.raises(ConfigError):
        ring_panel(object())


def _steps():
    burst = ring_burst()
    while burst.step():
        yield burst
    yield burst


def test_the_interleaving_picture_marks_the_fatal_moment():
    lost, saved = lost_wakeup(False).run(), lost_wakeup(True).run()
    fig = plot_interleaving(lost, saved, "The lost wake-up")
    assert fig.get_suptitle() == "The lost wake-up" and len(fig.axes) == 2
    left, right = fig.axes
    assert "without" in left.get_title() and "FINAL_CHECK" in right.get_title()
    assert left.get_xlabel().startswith("1 request stuck")
    assert right.get_xlabel().startswith("0 requests stuck")
    words = [t.get_text() for t in left.texts]
    assert any("lost wake-up" in w for w in words)
    assert any("re-check finds" in t.get_text() for t in right.texts)
    for ax, run in ((left, lost), (right, saved)):
        shown = [t.get_text() for t in ax.texts]
        assert all(what in shown for _, _, what in run.rows)
    assert fig.vmm_data[0]["fatal"] == lost.fatal and fig.vmm_data[1]["rescue"] == saved.rescue
    one = plot_interleaving(lost, title="one run")
    assert len(one.axes) == 1
    with pytest.raises(ConfigError):
        plot_interleaving(object(), title="x")


def test_the_notification_plot_has_both_panels_labelled():
    rows = notification_sweep(depths=(1, 2, 4), requests=16)
    fig = plot_notifications(rows, "Batching")
    assert fig.get_suptitle() == "Batching" and len(fig.axes) == 2
    left, right = fig.axes
    assert left.get_xscale() == "log" and "queue depth" in left.get_xlabel()
    assert "per request" in left.get_ylabel() and "virtual time" in right.get_ylabel()
    totals = [line for line in left.lines if line.get_label() == "both ways"][0]
    assert list(totals.get_ydata()) == [r["per_request"] for r in rows]
    heights = [p.get_height() + p.get_y() for p in right.patches[len(rows):]]
    assert heights == pytest.approx([r["ns_per_request"] / 1000 for r in rows])
    with pytest.raises(ConfigError):
        plot_notifications([{"depth": 1}], "x")
    with pytest.raises(ConfigError):
        plot_notifications(rows, "")


def test_the_ring_picture_steps_with_the_burst_and_names_the_last_step():
    stepper = Stepper(ring_burst, render=ring_picture, stacked=True, log_lines=5, start="first")
    assert "after the last step: nothing yet" in stepper.state_text()
    stepper.step_button.click()
    first = stepper.state.children[0].value
    assert first.startswith("<svg") and first.count("<path") == 32  # a wedge per slot
    text = stepper.state_text()
    assert "after the last step: front put-request" in text
    assert "req_prod_pvt 0xFFFFFFFE" in text and "rd #0 s0" in text
    stepper.step_button.click()
    assert stepper.state.children[0].value != first  # the picture follows the ring
    assert "req_prod_pvt 0xFFFFFFFF" in stepper.state_text()
    with pytest.raises(ConfigError):
        ring_picture(object())


def test_the_svg_and_the_matplotlib_picture_place_the_same_labels():
    burst = ring_burst()
    for _ in range(13):
        burst.step()
    svg = ring_svg(burst.ring, "step 13")
    fig = plot_ring(burst.ring, "step 13")
    drawn = [t for t in texts(fig) if " 0x" in t]
    assert sorted(drawn) == sorted(re.findall(r">(\w+ 0x[0-9A-F]{8})<", svg))
    assert len(drawn) == 8
    for view in burst.ring.slots:  # every occupied slot's message, in both
        if view.label:
            assert f">{view.label}<" in svg and view.label in texts(fig)
    with pytest.raises(ConfigError):
        ring_svg(object(), "x")
    with pytest.raises(ConfigError):
        ring_svg(burst.ring, "")
