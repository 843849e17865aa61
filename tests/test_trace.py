"""The event trace (vmmlib/trace.py) and the virtual clock (vmmlib/clock.py).

STANDARDS.md: outputs are deterministic (virtual time only) and carry no host addresses.
"""

import gc

import pytest

from vmmlib.clock import Clock
from vmmlib.errors import ConfigError
from vmmlib.trace import SCHEMAS, Event, Schema, Trace

IO_EXIT = Schema("cpu", "exit", ("reason", "exit_qualification"), {"reason": "IO_INSTRUCTION"})
VMCALL_EXIT = Schema("cpu", "exit", ("reason", "exit_reason"), {"reason": "VMCALL"})


def make_trace() -> Trace:
    t = Trace()
    t.record((250, IO_EXIT.id, 0x3F80000))
    t.add(450, "xen", "emulate", device="uart", port=0x3F8, dir="out", value=0x41)
    t.record((1700, IO_EXIT.id, 0x3F80000))
    t.record((2000, VMCALL_EXIT.id, 18))
    t.add(2300, "guest", "halt")
    return t


def test_rows_are_short_tuples_the_garbage_collector_stops_tracking():
    # no dict and no object per row: a tuple of ints and strings is untracked after one
    # collection, so a long trace costs the collector nothing
    t = make_trace()
    gc.collect()
    assert not any(gc.is_tracked(row) for row in t._rows)
    assert t._rows[0] == (250, IO_EXIT.id, 0x3F80000)  # the fixed reason is not stored
    assert t[0].fields == {"reason": "IO_INSTRUCTION", "exit_qualification": 0x3F80000}


def test_equal_schemas_share_one_id_and_bad_ones_are_refused():
    again = Schema("cpu", "exit", ("reason", "exit_qualification"), {"reason": "IO_INSTRUCTION"})
    assert again.id == IO_EXIT.id and SCHEMAS[IO_EXIT.id] is IO_EXIT
    with pytest.raises(ConfigError):
        Schema("cpu", "exit", ("port", "port"))
    with pytest.raises(ConfigError):
        Schema("", "exit")
    with pytest.raises(ConfigError):
        Schema("cpu", "exit", ("port",), {"size": 1})


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


def test_ring_indices_print_in_hex_so_their_wrap_reads():
    trace = Trace()
    trace.add(1, "front", "push", req_prod=2**32 - 1, req_event=0, count=3)
    line = str(trace[0])
    assert "req_prod=0xffffffff" in line and "req_event=0x0" in line and "count=3" in line
