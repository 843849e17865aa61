"""Time of one widget step: pressing **step** on the chapter-01 stepper, headless.

Presses step through the whole "Hello" scenario from its first step and reports the mean and
the worst press, plus one **back** from the end (which replays a fresh scenario). Each press
really runs a guest operation and redraws the log and chapter 01's state panel (which is drawn
for the step before too, to highlight what changed); the index is checked afterwards.
"""

from __future__ import annotations

import time

from vmmlib.scenarios.intercepts import hello_serial
from vmmlib.viz import Stepper, serial_panel


def main() -> None:
    stepper = Stepper(hello_serial, render=serial_panel, start="first")
    times = []
    for _ in range(stepper.total):
        t0 = time.perf_counter()
        stepper.step_button.click()
        times.append(time.perf_counter() - t0)
    assert stepper.index == stepper.total
    t0 = time.perf_counter()
    stepper.back_button.click()
    back = time.perf_counter() - t0
    assert stepper.index == stepper.total - 1
    print(f"widget_step_mean: {1000 * sum(times) / len(times):.1f} ms")
    print(f"widget_step_max: {1000 * max(times):.1f} ms")
    print(f"widget_back_from_end: {1000 * back:.1f} ms")


if __name__ == "__main__":
    main()
