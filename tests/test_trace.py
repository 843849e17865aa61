"""The event trace (vmmlib/trace.py) and the virtual clock (vmmlib/clock.py).

STANDARDS.md: outputs are deterministic (virtual time only) and carry no host addresses.
"""

import pytest

from vmmlib.clock import Clock
from vmmlib.errors import ConfigError
from vmmlib.trace import Event, Trace, schema

IO_EXIT = schema("reason", "exit_qualification")
VMCALL_EXIT = schema("reason", "exit_reason")


def make_trace() -> Trace:
    t = Trace()
    t.record((250, "cpu", "exit", IO_EXIT, "IO_INSTRUCTION", 0x3F80000))
    t.add(450, "xen", "emulate", device="uart", port=0x3F8, dir="out", value=0x41)
    t.record((1700, "cpu", "exit", IO_EXIT, "IO_INSTRUCTION", 0x3F80000))
    t.record((2000, "cpu", "exit", VMCALL_EXIT, "VMCALL", 18))
    t.add(2300, "guest", "halt")
    return t


def test_rows_are_flat_tuples_of_plain_values_not_dicts():
    # the hot path stores no dict per row (a dict is always tracked by the garbage collector)
    t = make_trace()
    for row in t.rows():
        assert type(row) is tuple
        assert not any(isinstance(v, dict) for v in row)
    assert t.rows(0, 1) == [(250, "cpu", "exit", IO_EXIT, "IO_INSTRUCTION", 0x3F80000)]


def test_a_schema_names_distinct_fields():
    with pytest.raises(ConfigError):
        schema("port", "port")
    with pytest.raises(ConfigError):
        schema("")


def test_events_are_named_tuples_in_order():
    t = make_trace()
    assert len(t) == 5
    assert t[1] == Event(
        450, "xen", "emulate", {"device": "uart", "port": 0x3F8, "dir": "out", "value": 0x41}
    )
    assert [e.time for e in t] == [250, 450, 1700, 2000, 2300]
    assert t[-1].kind == "halt"


def test_events_filter_by_kind_and_actor():
    t = make_trace()
    assert [e.time for e in t.events("exit")] == [250, 1700, 2000]
    assert [e.kind for e in t.events(actor="xen")] == ["emulate"]
    assert t.events("exit", actor="xen") == []


def test_count_is_exits_by_reason():
    t = make_trace()
    assert t.count() == {"IO_INSTRUCTION": 2, "VMCALL": 1}
    assert t.count("emulate", by="device") == {"uart": 1}
    assert t.count("exit", by="exit_reason") == {None: 2, 18: 1}


def test_event_formatting_hex_for_addresses_decimal_otherwise():
    line = str(make_trace()[1])
    assert line == "       450 ns  xen      emulate    device=uart port=0x3f8 dir=out value=0x41"
    exit_line = str(Event(2000, "cpu", "exit", {"exit_reason": 18, "exit_qualification": 0}))
    assert exit_line.endswith("exit_reason=18 exit_qualification=0x0")
    assert str(Event(1_234_567, "cpu", "x", {"value": True})).startswith(" 1,234,567 ns")
    assert str(Event(0, "cpu", "x", {"value": True})).endswith("value=True")


def test_lines_slice():
    t = make_trace()
    assert t.lines() == [str(e) for e in t]
    assert t.lines(1, 3) == [str(t[1]), str(t[2])]


def test_clock_moves_forward_only():
    c = Clock()
    assert c.advance(250) == 250
    assert c.advance(0) == 250
    assert c.advance_to(100) == 250
    assert c.advance_to(1000) == 1000
    with pytest.raises(ValueError):
        c.advance(-1)
    assert c.now == 1000
