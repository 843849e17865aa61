"""Round-robin interleaving of guests on one machine."""

import pytest

from vmmlib import MIB, Machine, Out, Vcpu
from vmmlib.errors import ConfigError
from vmmlib.xen.scheduler import RoundRobin


class Log:
    """One domain's device; the domains' devices append to one shared list of writes."""

    def __init__(self, writes):
        self.writes = writes

    def read(self, offset, size):
        return 0

    def write(self, offset, size, value):
        self.writes.append(value)


def two_guests(n_a=4, n_b=4):
    m = Machine(64 * MIB)
    log = Log([])
    vcpus = []
    for name, n, mark in (("a", n_a, 0xA0), ("b", n_b, 0xB0)):
        dom = m.add_domain(name, 8 * MIB)
        dom.emulate_ports(0x3F8, 8, Log(log.writes), "log")

        def guest(n=n, mark=mark):
            for i in range(n):
                yield Out(0x3F8, 1, mark + i)

        vcpus.append(Vcpu(dom, guest()))
    return m, log, vcpus


@pytest.mark.parametrize(
    "quantum, expected",
    [
        (1, [0xA0, 0xB0, 0xA1, 0xB1, 0xA2, 0xB2, 0xA3, 0xB3]),
        (2, [0xA0, 0xA1, 0xB0, 0xB1, 0xA2, 0xA3, 0xB2, 0xB3]),
        (8, [0xA0, 0xA1, 0xA2, 0xA3, 0xB0, 0xB1, 0xB2, 0xB3]),
    ],
)
def test_quantum_decides_the_interleaving(quantum, expected):
    _, log, vcpus = two_guests()
    sched = RoundRobin(vcpus, quantum)
    sched.run()
    assert log.writes == expected
    assert sched.done and all(v.done for v in vcpus)


def test_a_finished_guest_drops_out():
    _, log, vcpus = two_guests(n_a=1, n_b=3)
    RoundRobin(vcpus, 1).run()
    assert log.writes == [0xA0, 0xB0, 0xB1, 0xB2]


def test_bad_configuration_is_rejected():
    _, _, vcpus = two_guests()
    with pytest.raises(ConfigError):
        RoundRobin([], 1)
    with pytest.raises(ConfigError):
        RoundRobin(vcpus, 0)
    other = Vcpu(Machine(16 * MIB).add_domain("x", 4 * MIB), (op for op in ()))
    with pytest.raises(ConfigError):
        RoundRobin([vcpus[0], other], 1)
