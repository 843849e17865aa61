"""Chapter 03's hostile-front-end table: each attack gets the answer Linux blkback gives, the
victim (another guest on the same blkback) is untouched and still served, and the attacker
sees statuses, never a Python exception.

What Linux does, from torvalds/linux drivers/block/xen-blkback/blkback.c:
``__do_block_io_op`` halts the ring on RING_REQUEST_PROD_OVERFLOW ("Frontend provided bogus
ring requests", -EACCES; xen_blkif_schedule then only waits for shutdown);
``dispatch_rw_block_io`` answers BLKIF_RSP_ERROR (fail_response) for nr_segments 0 or > 11,
last_sect >= 8 or last_sect < first_sect, a range past the disk (xen_vbd_translate) and a
grant that does not map (xen_blkbk_map); the request is copied out of the ring (memcpy, then
barrier()) before any of that is looked at.
"""


import pytest

from vmmlib.errors import ConfigError, Halted
from vmmlib.scenarios.device_model import disk_content
from vmmlib.scenarios.split_attacks import (
    ATTACKS,
    HEADER,
    AttackResult,
    arena,
    attack_rows,
    attack_table,
    attack_text,
    intact_hash,
    run_attack,
)
from vmmlib.scenarios.split_drivers import BUFFER
from vmmlib.xen.blkif import BLKIF_OP_READ, decode_request

ERROR, OKAY = -1, 0  # BLKIF_RSP_ERROR, BLKIF_RSP_OKAY (blkif.h)
#: attack → (status of its response, None: none; does the ring stop; the reason blkback logs)
LINUX = {
    "bogus req_prod": (None, True, "bogus ring requests"),
    "rewritten after the copy": (OKAY, False, None),
    "nr_segments 0": (ERROR, False, "number of segments: 0"),
    "nr_segments 12": (ERROR, False, "number of segments: 12"),
    "first_sect > last_sect": (ERROR, False, "first_sect 3 > last_sect 2"),
    "last_sect 8": (ERROR, False, "last_sect 8"),
    "bad grant ref": (ERROR, False, "grant ref 9999: bad grant ref"),  # GNTST_bad_gntref
    "sector beyond the disk": (ERROR, False, "beyond the disk"),
}


@pytest.fixture(scope="module")
def table():
    return attack_table()


def test_the_table_covers_the_issues_attacks_in_order(table):
    results = table
    assert set(LINUX) == set(ATTACKS)
    assert [r.name for r in results] == list(ATTACKS)
    assert all(r.what and "\n" not in r.what for r in results)


@pytest.mark.parametrize("name", list(LINUX))
def test_each_attack_gets_linux_blkbacks_answer(table, name):
    r = {r.name: r for r in table}[name]
    status, stops, reason = LINUX[name]
    assert r.status == status
    assert r.answer.startswith("ring stopped: ") == stops
    if status is not None:
        assert r.answer.startswith({OKAY: "BLKIF_RSP_OKAY", ERROR: "BLKIF_RSP_ERROR"}[status])
    assert "blkback" in r.logged and "domain=attacker" in r.logged
    if reason is not None:
        assert reason in r.logged
        assert ("bogus-ring" if stops else "refused") in r.logged
    assert r.attacker_served_after == (not stops)  # a stopped ring answers nothing more


@pytest.mark.parametrize("name", list(LINUX))
def test_the_victim_is_untouched_and_served_and_the_attacker_never_raises(table, name):
    r = {r.name: r for r in table}[name]
    assert r.victim_intact and r.victim_served and r.attacker_ok


def test_a_bogus_producer_leaves_the_attacker_asleep_and_nothing_dispatched():
    a = arena()
    result = run_attack("bogus req_prod", a)
    assert a.vbd.halted and "40 > 32" in a.vbd.halted
    assert a.vbd.requests == 0  # not one of its "requests" reached dispatch
    assert result.status is None and result.attacker_ok
    # the victim's vbd is another ring: served after the attack
    assert not a.blkback.vbds[a.victim.domid].halted


def test_the_copy_is_what_is_served_not_the_rewritten_slot():
    a = arena()
    result = run_attack("rewritten after the copy", a)
    trace = a.machine.trace
    (rewrite,) = trace.events("rewrite", actor="attacker")
    slot = a.front.slot_address(rewrite.fields["slot"])
    now_in_slot = decode_request(a.attacker.read_bytes(slot, 112))
    assert now_in_slot.sector_number == 4000  # the rewrite landed (the 16-byte response
    # has since overwritten the slot's first bytes, operation and id included)
    mapped = [e for e in trace.events("grant-map") if e.fields["domain"] == "attacker"
              and e.fields["id"] == 7]
    assert mapped and rewrite.time < mapped[0].time  # rewritten before blkback used it
    served = [e for e in trace.events("request") if e.actor == "blkback"
              and e.fields["domain"] == "attacker" and e.fields["id"] == 7]
    assert [(e.fields["op"], e.fields["sector"]) for e in served] == [(BLKIF_OP_READ, 0)]
    assert a.attacker.read_bytes(BUFFER, 4096) == disk_content()[:4096]
    assert a.disk.read(4000, 8)[0] == disk_content()[4000 * 512:4008 * 512]
    assert result.status == OKAY and result.answer == "BLKIF_RSP_OKAY: the copy was served"


def test_a_per_request_error_answers_that_request_only():
    a = arena()
    run_attack("nr_segments 12", a)
    refused = [e for e in a.machine.trace.events("refused")]
    assert [(e.fields["domain"], e.fields["id"], e.fields["status"]) for e in refused] == [
        ("attacker", 11, ERROR)]
    assert not a.vbd.halted and a.vbd.errors == 1


def test_the_intact_hash_sees_a_change_to_the_victim_dom0_or_a_disk():
    a = arena()
    before = intact_hash(a)
    assert intact_hash(a) == before  # stable
    a.victim.write_bytes(0x200000, b"\x01")
    after_victim = intact_hash(a)
    assert after_victim[0] != before[0] and after_victim[1:] == before[1:]
    a.machine.memory.write_bytes(0x300000, b"\x02")  # dom0's RAM (machine 0-256 MiB)
    assert intact_hash(a)[1] != before[1]
    a.disk.write(5, b"\x03" * 512)
    assert intact_hash(a)[3] != before[3]


def test_runs_are_deterministic():
    assert run_attack("bad grant ref") == run_attack("bad grant ref")


def test_an_unknown_attack_or_arena_is_a_config_error():
    with pytest.raises(ConfigError, match="attacks are"):
        run_attack("rowhammer")
    with pytest.raises(ConfigError, match="Arena"):
        run_attack("nr_segments 0", object())


def test_rows_and_text():
    ok = AttackResult("a", "what a", "BLKIF_RSP_ERROR", "row a", True, True, True, True, -1)
    bad = AttackResult("b", "what b", "ring stopped: x" * 10, "row b", False, False, False,
                       False)
    rows = attack_rows([ok, bad])
    assert rows[0] == HEADER
    assert rows[1] == ("a", "BLKIF_RSP_ERROR", "yes", "yes", "yes", "served")
    assert rows[2][2:] == ("NO", "NO", "NO", "never answered")
    text = attack_text([ok, bad], width=20)
    lines = text.splitlines()
    assert len(lines) == 2 + 2 * 3
    assert "attack: what b" in text and "logged: row b" in text
    assert max(len(c) for c in text.split("  ")) <= 60
    assert "…" in lines[5]
    with pytest.raises(ConfigError):
        attack_text([ok], width=3)


def test_a_halted_attacker_is_a_halted_guest_not_an_exception():
    from vmmlib.scenarios.split_attacks import _bogus_req_prod
    from vmmlib.xen.vcpu import Vcpu

    a = arena()
    cpu = Vcpu(a.attacker, _bogus_req_prod(a))
    cpu.run()
    assert isinstance(cpu.crashed, Halted)
