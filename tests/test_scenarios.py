"""The chapter scenarios do what the notebooks say they do, on both vendors."""

import pytest

from vmmlib.errors import PageFault
from vmmlib.scenarios.intercepts import (
    GUEST_BASE,
    UNMAPPED,
    hello_pv,
    hello_serial,
    hello_vga,
    three_faults,
    uart_of,
    vga_of,
)


@pytest.mark.parametrize("vendor, reason", [("vmx", "IO_INSTRUCTION"), ("svm", "IOIO")])
def test_hello_serial_prints_through_trapped_port_io(vendor, reason):
    vcpu = hello_serial("Hi\n", vendor=vendor)
    vcpu.run()
    assert uart_of(vcpu).output == b"Hi\n"
    exits = vcpu.machine.trace.count()
    # 7 OUTs + 3 INs of xv6's init, then per character one LSR poll and one THR write,
    # then one LSR poll until the transmitter is empty
    assert exits == {reason: 7 + 3 + 2 * 3 + 1}
    assert vcpu.domain.gpa_to_maddr(0) == GUEST_BASE


def test_paced_uart_makes_the_driver_spin():
    fast, paced = hello_serial("Hi\n"), hello_serial("Hi\n", paced=True)
    fast.run()
    paced.run()
    assert uart_of(paced).output == b"Hi\n"
    assert sum(paced.machine.trace.count().values()) > 10 * sum(fast.machine.trace.count().values())


def test_hello_vga_is_one_pf_exit_per_character():
    vcpu = hello_vga("Hello")
    vcpu.run()
    assert vga_of(vcpu).row(0) == "Hello"
    assert vcpu.machine.trace.count() == {"EXCEPTION_NMI": 5}


def test_hello_pv_is_one_hypercall_and_no_exit():
    vcpu = hello_pv("Hello\n")
    vcpu.run()
    assert bytes(vcpu.machine.console) == b"Hello\n"
    assert vcpu.machine.trace.count() == {}
    assert [e.kind for e in vcpu.machine.trace] == ["store", "hypercall", "halt"]
    assert vcpu.result == 0
    domu = hello_pv("Hello\n", privileged=False)
    domu.run()
    assert domu.result == -1 and domu.machine.console == b""  # -EPERM


@pytest.mark.parametrize("vendor", ["vmx", "svm"])
def test_three_faults_are_emulated_filled_and_injected(vendor):
    vcpu = three_faults(vendor)
    vcpu.run()
    xen = [e.kind for e in vcpu.machine.trace if e.actor == "xen"]
    assert xen == ["emulate", "shadow-fill", "inject"]
    assert isinstance(vcpu.result, PageFault) and vcpu.result.address == UNMAPPED
    assert vcpu.crashed is None
