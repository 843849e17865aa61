"""A widget that steps a scenario one operation at a time, forwards and backwards.

**The scenario protocol.** ``Stepper(scenario)`` takes a *factory*: a zero-argument callable
that builds a fresh world and returns an object ``obj`` with

* ``obj.step() -> bool`` — perform one step; return False once the scenario has finished
  (that last call may still record events, as a vCPU records its ``halt``);
* a trace, found as ``obj.trace`` or else ``obj.machine.trace`` (a ``vmmlib.Trace``).

A ``vmmlib.Vcpu`` fits as it is::

    def hello():
        machine = Machine()
        dom = machine.add_domain("dom1", 256 * MIB)
        dom.emulate_ports(0x3F8, 8, Uart16550(machine.clock), "COM1")
        return Vcpu(dom, serial_hello())

    Stepper(hello, render=my_panel, title="...")

(``vmmlib.scenarios.intercepts.hello_serial`` is exactly such a factory.)

Every call of the factory must build the same world (vmmlib is deterministic; keep your own
randomness seeded and share no state between calls). Step index *k* means "``step()`` has
been called *k* times on a fresh object": 0 is the start, the last index is the call that
returned False. The Stepper runs one fresh scenario to completion once to learn the number
of steps and how long the trace is after each (at most ``max_steps`` calls, else a
``ConfigError``). Then it keeps one live object: **step** and **last** call ``step()`` on it,
**back** and **first** build a fresh one and replay it to *k - 1* (no snapshots needed). A
replay whose trace length differs from the first run is reported as a non-deterministic
scenario. It opens at ``start``: by default the **last** step, so that the whole run is in
view (and a notebook stored with its outputs shows the finished run, not an empty log);
**first** and **step** then replay it.

**The state panel** is drawn by ``render(obj)``. Return a ``vmmlib.viz.panels.Panel`` (built
from ``register_table``, ``key_value`` and ``text_block``) and the Stepper highlights every
value the last step changed; an HTML string, a matplotlib Figure (shown as a PNG) or any
widget are shown as they are. The default, ``render_state``, shows each vCPU and every device
with ``registers()``; chapters give their scenarios panels of their own
(``vmmlib.viz.intercepts``).

**Layout**, made for a 1366x768 laptop: a title and status line, one row of buttons first /
back / step / last, a ``Play`` linked to the step slider (``jslink`` in the browser, and on
the Python side too so it also works headless), then the event log beside the state panel.
A scenario whose panel is a wide picture passes ``stacked=True`` (and a short ``log_lines``): the
log sits above the picture instead of beside it. The log shows the trace up to the current step
in compact lines (``vmmlib.viz.text``) that
never wrap (a record too long for its box scrolls sideways); the last step's events are
highlighted. Tests drive it with ``button.click()`` and read ``index``, ``log_text()`` and
``state_text()``.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..errors import ConfigError, VmmError
from ..trace import Trace
from .palette import ROLES
from .panels import Panel, render_registers, render_state
from .stepper_html import _figure_text, html_to_text, render_trace_tail
from .text import log_widths

MAX_STEPS = 10_000


# ---------------------------------------------------------------------------------------------
# the widget
# ---------------------------------------------------------------------------------------------
def _trace_of(obj: Any) -> Trace:
    trace = getattr(obj, "trace", None)
    if trace is None:
        trace = getattr(getattr(obj, "machine", None), "trace", None)
    if not isinstance(trace, Trace):
        raise ConfigError(
            f"the scenario object {type(obj).__name__} has no trace: give it .trace or "
            ".machine.trace (a vmmlib.Trace)"
        )
    return trace


class Stepper:
    """Step a scenario forwards and backwards in a notebook (see the module docstring)."""

    def __init__(
        self,
        scenario: Callable[[], Any],
        render: Callable[[Any], Any] | None = None,
        *,
        max_steps: int = MAX_STEPS,
        log_lines: int = 14,
        play_interval_ms: int = 400,
        title: str | None = None,
        start: int | str = "last",
        stacked: bool = False,
    ) -> None:
        if not callable(scenario):
            raise ConfigError(
                "Stepper needs a scenario factory: a function that returns a fresh object "
                f"with .step(), not {type(scenario).__name__}"
            )
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigError(f"max_steps must be a positive integer, not {max_steps!r}")
        if not (start in ("first", "last") or (isinstance(start, int) and start >= 0)):
            raise ConfigError(f"start is 'first', 'last' or a step number, not {start!r}")
        self._factory = scenario
        self._render = render or render_state
        self.max_steps = max_steps
        self.log_lines = log_lines
        self.stacked = stacked
        self.title = title
        self.marks, self._widths = self._discover()  # marks[k]: trace length after k steps
        self.total = len(self.marks) - 1
        self.current, self._trace = self._fresh()
        self.index = 0
        self._live_ok = True  # False if a step of the live object failed half-way
        self._panel: Panel | None = None  # the panel on show, to compare the next one with
        self._state_plain = ""
        self._build(play_interval_ms)
        target = {"first": 0, "last": self.total}.get(start, start)  # type: ignore[arg-type]
        if target:
            self.goto(target)
        else:
            self._show(None)

    # -- the scenario ------------------------------------------------------------------------
    def _fresh(self) -> tuple[Any, Trace]:
        obj = self._factory()
        if not callable(getattr(obj, "step", None)):
            raise ConfigError(
                f"the scenario factory returned {type(obj).__name__}, which has no .step()"
            )
        return obj, _trace_of(obj)

    def _discover(self) -> tuple[list[int], tuple[int, int, int]]:
        obj, trace = self._fresh()
        marks = [len(trace)]
        while True:
            more = obj.step()
            marks.append(len(trace))
            if not more:
                return marks, log_widths(trace)  # log columns that fit the whole run
            if len(marks) > self.max_steps:
                raise ConfigError(
                    f"the scenario did not finish within {self.max_steps:,} steps; pass a "
                    "larger max_steps= or make the scenario end (step() must return False)"
                )

    def _check(self, trace: Trace, k: int) -> None:
        if len(trace) != self.marks[k]:
            raise ConfigError(
                f"the scenario is not deterministic: after {k} steps its trace has "
                f"{len(trace)} events, the first run had {self.marks[k]}"
            )

    def _panel_of(self, obj: Any) -> Panel | None:
        out = self._render(obj)
        return out if isinstance(out, Panel) else None

    # -- moving ------------------------------------------------------------------------------
    def goto(self, k: int) -> None:
        """Show step ``k`` (clamped to 0 … total): forwards by stepping, backwards by replay.

        The state panel at step ``k - 1`` is drawn too, so that what the last step changed
        can be highlighted, whichever way the widget got there."""
        k = max(0, min(int(k), self.total))
        if k == self.index and self._live_ok:
            return
        if k < self.index or not self._live_ok:
            obj, trace = self._fresh()
            at = 0
            self._check(trace, 0)
        else:
            obj, trace, at = self.current, self._trace, self.index
        before = self._panel if obj is self.current and at == k - 1 else None
        if obj is self.current:
            self._live_ok = False  # until the live object has safely reached step k
        while at < k:
            if at == k - 1 and before is None:
                before = self._panel_of(obj)  # the state just before the last step
            obj.step()
            at += 1
            self._check(trace, at)
        self.current, self._trace, self.index = obj, trace, k
        self._live_ok = True
        self._show(before)

    def step(self) -> None:
        """One step forward (on the live scenario)."""
        self.goto(self.index + 1)

    def back(self) -> None:
        """One step back: a fresh scenario replayed to the previous step."""
        self.goto(self.index - 1)

    def first(self) -> None:
        """Back to the start (a fresh scenario)."""
        self.goto(0)

    def last(self) -> None:
        """Forward to the end."""
        self.goto(self.total)

    # -- widgets -----------------------------------------------------------------------------
    def _build(self, play_interval_ms: int) -> None:
        def button(label: str, icon: str, tip: str, action: Callable[[], None]) -> Any:
            b = widgets.Button(
                description=label, icon=icon, tooltip=tip, layout=widgets.Layout(width="auto")
            )
            b.on_click(lambda _b: self._guarded(action))
            return b

        self.first_button = button("first", "fast-backward", "back to the start", self.first)
        self.back_button = button(
            "back", "step-backward", "one step back (replays a fresh scenario)", self.back
        )
        self.step_button = button("step", "step-forward", "one step forward", self.step)
        self.last_button = button("last", "fast-forward", "run to the end", self.last)
        self.play = widgets.Play(
            value=0, min=0, max=self.total, step=1, interval=play_interval_ms, description="play"
        )
        self.slider = widgets.IntSlider(
            value=0,
            min=0,
            max=self.total,
            description="step",
            continuous_update=False,
            layout=widgets.Layout(width="260px"),
            style={"description_width": "34px"},
        )
        self._link = widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(self._on_value, names="value")
        self.play.observe(self._on_value, names="value")
        self.status = widgets.HTML(layout=widgets.Layout(margin="0 0 0 4px"))
        self.log = widgets.HTML(
            layout=widgets.Layout(flex="0 1 auto", max_width="100%", overflow="auto")
        )
        self.log.add_class("vmm-stepper-log")
        self._state_html = widgets.HTML()
        self._state_image = widgets.Image(format="png")
        self.state = widgets.Box(
            [self._state_html],
            layout=widgets.Layout(flex="1 1 300px", min_width="280px", overflow="auto"),
        )
        self.state.add_class("vmm-stepper-state")
        title = f"<b>{html.escape(self.title)}</b>" if self.title else ""
        self._title = widgets.HTML(title)
        controls = widgets.HBox(
            [
                self.first_button,
                self.back_button,
                self.step_button,
                self.last_button,
                self.play,
                self.slider,
            ],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        controls.add_class("vmm-stepper-controls")
        if self.stacked:  # a wide picture: the log above it, both the cell's full width
            self.state.layout.flex = "0 0 auto"  # as tall as the picture (a column's basis)
            panels = widgets.VBox([self.log, self.state])
        else:
            panels = widgets.HBox(
                [self.log, self.state],
                layout=widgets.Layout(
                    flex_flow="row wrap", align_items="flex-start", grid_gap="0 18px"
                ),
            )
        self.widget = widgets.VBox([self._title, controls, self.status, panels])
        self.widget.add_class("vmm-stepper")  # a stable hook for browser tests and styling

    def _on_value(self, change: dict) -> None:
        if change["new"] != self.index:
            self._guarded(lambda: self.goto(change["new"]))

    def _guarded(self, action: Callable[[], None]) -> None:
        """Run a button's action; a vmmlib error is shown in the status line, then raised
        (ipywidgets only logs exceptions from callbacks, where a student would not look)."""
        try:
            action()
        except VmmError as exc:
            colour = ROLES["intercepted"]
            self.status.value = f'<b style="color:{colour}">error: {html.escape(str(exc))}</b>'
            raise

    def _show(self, before: Panel | None) -> None:
        k = self.index
        # keep both value widgets on the current step (jslink does it only in a browser)
        self.slider.value = k
        self.play.value = k
        self.first_button.disabled = self.back_button.disabled = k == 0
        self.step_button.disabled = self.last_button.disabled = k == self.total
        stop = self.marks[k]
        new_from = self.marks[k - 1] if k else stop
        fresh = stop - new_from
        clock = getattr(getattr(self.current, "machine", None), "clock", None)
        when = f" · virtual time {clock.now:,} ns" if clock is not None else ""
        if k == self.total:
            end = " · finished (first, then step, replays it)" if k else " · finished"
        else:
            end = ""
        self.log.value = render_trace_tail(
            self._trace, stop, self.log_lines, new_from, self._widths
        )
        self._show_state(before)
        # the status goes last: once a browser shows "step k", the log and panel show step k too
        self.status.value = (
            f"step {k} of {self.total} · {fresh} new event{'s' if fresh != 1 else ''}{when}{end}"
        )

    def _show_state(self, before: Panel | None) -> None:
        out = self._render(self.current)
        self._panel = out if isinstance(out, Panel) else None
        self._before = before
        if isinstance(out, Panel):
            self._state_html.value = out.html(before)
            self.state.children = [self._state_html]
            self._state_plain = out.text()
        elif isinstance(out, str):
            self._state_html.value = out
            self.state.children = [self._state_html]
            self._state_plain = html_to_text(out)
        elif hasattr(out, "savefig"):  # a matplotlib Figure
            buf = io.BytesIO()
            out.savefig(buf, format="png")
            self._state_image.value = buf.getvalue()
            self.state.children = [self._state_image]
            self._state_plain = _figure_text(out)
        elif isinstance(out, widgets.Widget):
            self.state.children = [out]
            value = getattr(out, "value", None)
            self._state_plain = (
                html_to_text(value) if isinstance(value, str) else type(out).__name__
            )
        else:
            raise ConfigError(
                "render must return a Panel, an HTML string, a matplotlib Figure or a widget, "
                f"not {type(out).__name__}"
            )

    # -- reading it back (tests, notebooks) --------------------------------------------------
    def log_text(self) -> str:
        """The event-log panel as plain text."""
        return html_to_text(self.log.value)

    def state_text(self) -> str:
        """The state panel as plain text (for a figure: its titles, labels and texts)."""
        return self._state_plain

    def changed(self) -> list[tuple[str, str]]:
        """The (section, name) pairs of the state panel the last step changed (highlighted)."""
        return [] if self._panel is None else self._panel.changed(self._before)

    def __repr__(self) -> str:
        return f"Stepper(step {self.index} of {self.total})"

    def instructions(self) -> str:
        """What a notebook shows where the widget cannot be drawn (no kernel, a text view)."""
        what = f": {self.title}" if self.title else ""
        return (
            f"Run this cell to step through the scenario{what} ({self.total} steps). "
            "The stepping widget needs a running kernel."
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = self.instructions()
        return bundle


def render_last_exit(obj: Any) -> Panel:
    """Chapter 01's serial panel (``vmmlib.viz.intercepts.serial_panel``), kept under its
    first name."""
    from .intercepts import serial_panel

    return serial_panel(obj)


__all__ = [
    "MAX_STEPS",
    "Stepper",
    "html_to_text",
    "render_last_exit",
    "render_registers",
    "render_state",
    "render_trace_tail",
]
