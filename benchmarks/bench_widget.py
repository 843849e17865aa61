"""Time of one widget step (budget 50 ms, DESIGN.md): pressing **step**, headless.

Chapter 01's stepper: step through the whole "Hello" scenario from its first step, the mean and
the worst press, plus one **back** from the end (which replays a fresh scenario). Each press
really runs a guest operation and redraws the log and chapter 01's state panel (which is drawn
for the step before too, to highlight what changed); the index is checked afterwards.
Chapter 03's ring stepper: the same for the burst of requests, each press redrawing the ring
picture (SVG).
"""

from __future__ import annotations

import time

from vmmlib.scenarios.intercepts import hello_serial
from vmmlib.scenarios.ring_demo import ring_burst
from vmmlib.viz import Stepper, serial_panel
from vmmlib.viz.ring import ring_picture


def presses(stepper: Stepper) -> list[float]:
    """Press step from the first step to the last; each press's wall time."""
    times = []
    for _ in range(stepper.total):
        t0 = time.perf_counter()
        stepper.step_button.click()
        times.append(time.perf_counter() - t0)
    assert stepper.index == stepper.total
    return times


def main() -> None:
    stepper = Stepper(hello_serial, render=serial_panel, start="first")
    times = presses(stepper)
    t0 = time.perf_counter()
    stepper.back_button.click()
    back = time.perf_counter() - t0
    assert stepper.index == stepper.total - 1
    print(f"widget_step_mean: {1000 * sum(times) / len(times):.1f} ms")
    print(f"widget_step_max: {1000 * max(times):.1f} ms")
    print(f"widget_back_from_end: {1000 * back:.1f} ms")
    ring = presses(Stepper(ring_burst, render=ring_picture, stacked=True, log_lines=5,
                           start="first"))
    print(f"widget_step_ring_mean: {1000 * sum(ring) / len(ring):.1f} ms")
    print(f"widget_step_ring_max: {1000 * max(ring):.1f} ms")


if __name__ == "__main__":
    main()
