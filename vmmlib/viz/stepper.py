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

    Stepper(hello)

(``vmmlib.scenarios.hello_serial`` is exactly such a factory: ``Stepper(hello_serial)``.)

Every call of the factory must build the same world (vmmlib is deterministic; keep your own
randomness seeded and share no state between calls). Step index *k* means "``step()`` has
been called *k* times on a fresh object": 0 is the start, the last index is the call that
returned False. The Stepper runs one fresh scenario to completion once to learn the number
of steps and how long the trace is after each (at most ``max_steps`` calls, else a
``ConfigError``). Then it keeps one live object: **step** and **last** call ``step()`` on it,
**back** and **first** build a fresh one and replay it to *k - 1* (no snapshots needed). A
replay whose trace length differs from the first run is reported as a non-deterministic
scenario.

Widgets: buttons first / back / step / last, a ``Play`` linked to the ``IntSlider`` (with
``jslink`` in the browser, and on the Python side too so it also works headless), a status
line, the event log (the trace up to the current step, the events of the last step
highlighted) and a state panel drawn by ``render(obj)``, which may return an HTML string, a
matplotlib Figure (shown as a PNG) or any widget. Tests drive it with ``button.click()`` and
read ``index``, ``log_text()`` and ``state_text()``.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from ..errors import ConfigError, VmmError
from ..trace import Trace
from .palette import ROLES

MAX_STEPS = 10_000
_TAG = re.compile(r"<[^>]+>")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_PRE = "font-family:monospace;font-size:11.5px;line-height:1.4;margin:0;white-space:pre-wrap"


# ---------------------------------------------------------------------------------------------
# HTML helpers (also useful on their own in a notebook)
# ---------------------------------------------------------------------------------------------
def html_to_text(markup: str) -> str:
    """The plain text of an HTML fragment: rows and line breaks become newlines."""
    markup = re.sub(r"</(tr|div|p|caption|h\d)>|<br\s*/?>", "\n", markup)
    markup = re.sub(r"</t[dh]>", " ", markup)
    text = html.unescape(_TAG.sub("", markup))
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def _fmt_value(value: Any) -> tuple[str, str]:
    """(hex column, bits column) for one register value."""
    if isinstance(value, bool) or not isinstance(value, int):
        return html.escape(str(value)), ""
    if 0 <= value <= 0xFF:
        bits = f"{value:08b}"
        return f"0x{value:02X}", f"{bits[:4]} {bits[4:]}"
    return f"{value:#x}", ""


def render_registers(
    registers: Mapping[str, Any],
    title: str | None = None,
    head: tuple[str, str] = ("register", "value"),
) -> str:
    """An HTML table of registers: name, value in hex, and the bits of byte-wide values.

    Made for ``Uart16550.registers()`` but takes any mapping of name -> value; values that
    are not integers are shown as text.
    """
    if not isinstance(registers, Mapping):
        raise ConfigError(f"render_registers takes a mapping of name -> value, not {registers!r}")
    cell = "padding:1px 8px;text-align:left;border-bottom:1px solid #eee"
    rows = []
    any_bits = False
    for name, value in registers.items():
        hex_text, bits = _fmt_value(value)
        any_bits = any_bits or bool(bits)
        rows.append((html.escape(str(name)), hex_text, bits))
    head = [*head] + (["bits 7…0"] if any_bits else [])
    out = ['<table style="border-collapse:collapse;font-family:monospace;font-size:12px">']
    if title:
        out.append(
            f'<caption style="text-align:left;font-weight:bold;padding-bottom:2px">'
            f"{html.escape(title)}</caption>"
        )
    out.append("<tr>" + "".join(f'<th style="{cell}">{h}</th>' for h in head) + "</tr>")
    for name, hex_text, bits in rows:
        cols = [name, hex_text] + ([bits] if any_bits else [])
        out.append("<tr>" + "".join(f'<td style="{cell}">{c}</td>' for c in cols) + "</tr>")
    out.append("</table>")
    return "".join(out)


def render_trace_tail(
    trace: Trace, stop: int | None = None, n: int = 12, new_from: int | None = None
) -> str:
    """HTML of the trace's events up to ``stop``: the last ``n``, with ``new_from`` … on
    highlighted (all new events are shown, however many)."""
    if not isinstance(trace, Trace):
        raise ConfigError(f"render_trace_tail needs a Trace, not {type(trace).__name__}")
    stop = len(trace) if stop is None else stop
    if not 0 <= stop <= len(trace):
        raise ConfigError(f"stop {stop} is outside the trace (0-{len(trace)})")
    new_from = stop if new_from is None else max(0, min(new_from, stop))
    start = max(0, min(stop - n, new_from))
    lines = trace.lines(start, stop)
    out = [f'<div style="{_PRE}">']
    if start:
        out.append(f'<div style="color:#777">… {start:,} earlier event(s)</div>')
    if not lines:
        out.append('<div style="color:#777">(no events yet)</div>')
    highlight = f"background:{ROLES['highlight']};font-weight:bold"
    for i, line in enumerate(lines, start):
        style = f' style="{highlight}"' if i >= new_from else ""
        out.append(f"<div{style}>{html.escape(line)}</div>")
    out.append("</div>")
    return "".join(out)


def _vcpus_of(obj: Any) -> list[Any]:
    if hasattr(obj, "rip") and hasattr(obj, "domain"):
        return [obj]
    found = getattr(obj, "vcpus", None) or ([obj.vcpu] if hasattr(obj, "vcpu") else [])
    return list(found)


def render_state(obj: Any, first: tuple[str, ...] = ()) -> str:
    """The default state panel: each vCPU's registers and every device that has
    ``registers()`` (on the domains' emulated buses and the machine's port bus), after the
    HTML tables in ``first``."""
    tables = list(first)
    seen: set[int] = set()
    for vcpu in _vcpus_of(obj):
        state = "crashed" if vcpu.crashed else "done" if vcpu.done else "running"
        tables.append(
            render_registers(
                {
                    "RIP": f"{vcpu.rip:#x}",
                    "RAX": f"{vcpu.rax:#x}",
                    "steps": str(vcpu.steps),
                    "state": state,
                },
                title=f"vCPU {vcpu.name}",
            )
        )
        dom = vcpu.domain
        for bus in (dom.ports, dom.mmio, dom.machine.ports):
            for region in bus.regions:
                dev = region.device
                if id(dev) in seen or not callable(getattr(dev, "registers", None)):
                    continue
                seen.add(id(dev))
                table = render_registers(dev.registers(), title=f"{region.name} registers")
                wire = getattr(dev, "output", None)
                if isinstance(wire, bytes):  # a serial port: what reached the wire so far
                    table += (
                        f'<div style="font-family:monospace;font-size:12px">'
                        f"wire: {html.escape(repr(wire))}</div>"
                    )
                tables.append(table)
    if not tables:
        return f"<pre>{html.escape(_ADDRESS.sub('', repr(obj)))}</pre>"
    cells = "".join(f'<div style="margin-right:18px">{t}</div>' for t in tables)
    return f'<div style="display:flex;flex-wrap:wrap;align-items:flex-start">{cells}</div>'


def _figure_text(fig: Any) -> str:
    """The words of a figure: its titles, axis labels and texts (not the tick labels)."""
    texts = [fig.get_suptitle(), *(t.get_text() for t in fig.texts)]
    for ax in fig.axes:
        texts += [ax.get_title(loc) for loc in ("left", "center", "right")]
        texts += [ax.get_xlabel(), ax.get_ylabel(), *(t.get_text() for t in ax.texts)]
    return "\n".join(t for t in texts if t)


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
        log_lines: int = 12,
        play_interval_ms: int = 400,
        title: str | None = None,
    ) -> None:
        if not callable(scenario):
            raise ConfigError(
                "Stepper needs a scenario factory: a function that returns a fresh object "
                f"with .step(), not {type(scenario).__name__}"
            )
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigError(f"max_steps must be a positive integer, not {max_steps!r}")
        self._factory = scenario
        self._render = render or render_state
        self.max_steps = max_steps
        self.log_lines = log_lines
        self.title = title
        self.marks = self._discover()  # marks[k]: trace length after k steps
        self.total = len(self.marks) - 1
        self.current, self._trace = self._fresh()
        self.index = 0
        self._live_ok = True  # False if a step of the live object failed half-way
        self._state_plain = ""
        self._build(play_interval_ms)
        self._show()

    # -- the scenario ------------------------------------------------------------------------
    def _fresh(self) -> tuple[Any, Trace]:
        obj = self._factory()
        if not callable(getattr(obj, "step", None)):
            raise ConfigError(
                f"the scenario factory returned {type(obj).__name__}, which has no .step()"
            )
        return obj, _trace_of(obj)

    def _discover(self) -> list[int]:
        obj, trace = self._fresh()
        marks = [len(trace)]
        while True:
            more = obj.step()
            marks.append(len(trace))
            if not more:
                return marks
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

    # -- moving ------------------------------------------------------------------------------
    def goto(self, k: int) -> None:
        """Show step ``k`` (clamped to 0 … total): forwards by stepping, backwards by replay."""
        k = max(0, min(int(k), self.total))
        if k < self.index or not self._live_ok:
            obj, trace = self._fresh()
            at = 0
            self._check(trace, 0)
        else:
            obj, trace, at = self.current, self._trace, self.index
        if obj is self.current:
            self._live_ok = False  # until the live object has safely reached step k
        while at < k:
            obj.step()
            at += 1
            self._check(trace, at)
        self.current, self._trace, self.index = obj, trace, k
        self._live_ok = True
        self._show()

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
                description=label, icon=icon, tooltip=tip, layout=widgets.Layout(width="88px")
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
            value=0, min=0, max=self.total, description="step", continuous_update=False
        )
        self._link = widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(self._on_value, names="value")
        self.play.observe(self._on_value, names="value")
        self.status = widgets.HTML()
        self.log = widgets.HTML(layout=widgets.Layout(flex="3 1 560px", overflow="auto"))
        self._state_html = widgets.HTML()
        self._state_image = widgets.Image(format="png")
        self.state = widgets.Box(
            [self._state_html], layout=widgets.Layout(flex="2 1 300px", overflow="auto")
        )
        header = [widgets.HTML(f"<b>{html.escape(self.title)}</b>")] if self.title else []
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
        panels = widgets.HBox(
            [self.log, self.state],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"),
        )
        self.widget = widgets.VBox([*header, controls, self.status, panels])
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

    def _show(self) -> None:
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
        end = " · finished" if k == self.total else ""
        self.status.value = (
            f"step {k} of {self.total} · {fresh} new event{'s' if fresh != 1 else ''}{when}{end}"
        )
        self.log.value = render_trace_tail(self._trace, stop, self.log_lines, new_from)
        self._show_state()

    def _show_state(self) -> None:
        out = self._render(self.current)
        if isinstance(out, str):
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
                "render must return an HTML string, a matplotlib Figure or a widget, "
                f"not {type(out).__name__}"
            )

    # -- reading it back (tests, notebooks) --------------------------------------------------
    def log_text(self) -> str:
        """The event-log panel as plain text."""
        return html_to_text(self.log.value)

    def state_text(self) -> str:
        """The state panel as plain text (for a figure: its titles, labels and texts)."""
        return self._state_plain

    def __repr__(self) -> str:
        return f"Stepper(step {self.index} of {self.total})"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle


__all__ = [
    "MAX_STEPS",
    "Stepper",
    "html_to_text",
    "render_registers",
    "render_state",
    "render_trace_tail",
]


def render_last_exit(obj: Any) -> str:
    """The state panel for chapter 01: the most recent VM exit in its Intel, AMD and KVM
    encodings, above the default state (vCPU and device registers)."""
    from ..cpu.exits import exit_forms

    events = list(_trace_of(obj))
    last = max((i for i, e in enumerate(events) if e.kind == "exit"), default=None)
    if last is None:
        forms = {"": "no exit yet"}
    else:
        after = events[last + 1] if last + 1 < len(events) else None
        emulated = after.fields if after is not None and after.kind == "emulate" else None
        forms = exit_forms(events[last].fields, emulated)
    table = render_registers(forms, "the last exit, three ways", head=("interface", "exit record"))
    return render_state(obj, first=(table,))
