"""The cost model: every constant is a whole number of ns, cites where it comes from (or says
it is an estimate), and belongs to the chapter whose notebook prints it."""

from dataclasses import fields

import pytest

from vmmlib.costs import CHAPTERS, SOURCES, CostModel
from vmmlib.errors import ConfigError


def test_every_constant_has_a_source_and_a_chapter():
    names = {f.name for f in fields(CostModel)}
    assert set(SOURCES) == names == set(CHAPTERS)
    assert all(s.startswith("estimate") for s in SOURCES.values())
    assert set(CHAPTERS.values()) == {1, 2, 3}


def test_a_chapters_report_prints_only_its_constants():
    report = CostModel().report(chapter=3)
    assert "grant_map_ns" in report and "vm_exit_ns" not in report
    assert [name for name, _, _ in CostModel().table(chapter=2)] == [
        "ioreq_send_ns", "dom0_wakeup_ns", "qemu_ioreq_ns", "vcpu_wakeup_ns"]
    assert len(CostModel().table()) == len(SOURCES)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_a_cost_is_a_whole_number_of_ns(bad):
    with pytest.raises(ConfigError):
        CostModel(vm_exit_ns=bad)
