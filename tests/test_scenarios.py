"""The chapter scenarios do what the notebooks say they do, on both vendors."""

import pytest

from vmmlib import Vcpu
from vmmlib.devices.uart16550 import COM1_BASE
from vmmlib.errors import PageFault
from vmmlib.guest.uart import LINUX_EARLY_POLLS, uart_init, uart_intr
from vmmlib.scenarios.intercepts import (
    GUEST_BASE,
    UNMAPPED,
    hello_pv,
    hello_serial,
    hello_vga,
    hvm_machine,
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


def test_the_guest_programs_xv6s_9600_baud():
    vcpu = hello_serial("Hi\n")
    vcpu.run()
    uart = uart_of(vcpu)
    assert (uart.divisor, uart.lcr, uart.mcr, uart.ier, uart.fcr) == (12, 0x03, 0, 0x01, 0)
    assert uart.baud == 9600


def test_xv6s_bounded_poll_loses_characters_on_a_paced_uart():
    # xv6 uartputc: at most 128 LSR polls, then THR is written anyway (microdelay is empty).
    # A trapped poll costs 800 ns of virtual time, a 9600-baud frame 1.04 ms: after 'H' goes
    # to the shift register and 'e' into THR, every later character overwrites the one
    # waiting in THR; only the last reaches the wire after 'H'.
    paced = hello_serial("Hello\n", paced=True)
    paced.run()
    uart = uart_of(paced)
    assert uart.output == b"H\n" and uart.tx_lost == 4
    polls = [len(group) for group in _lsr_polls_per_write(paced.machine.trace)]
    assert polls == [1, 1, 128, 128, 128, 128]
    fast = hello_serial("Hello\n")
    fast.run()
    exits = sum(paced.machine.trace.count().values())
    assert exits > 100 * sum(fast.machine.trace.count().values())


def test_linux_early_console_bound_waits_long_enough():
    vcpu = hello_serial("Hello\n", paced=True, max_polls=LINUX_EARLY_POLLS)
    vcpu.run()
    assert uart_of(vcpu).output == b"Hello\n" and uart_of(vcpu).tx_lost == 0


def _lsr_polls_per_write(trace):
    """LSR reads before each THR write (after the init, whose last OUT is IER)."""
    emulated = [e.fields for e in trace.events("emulate")][7 + 3 :]  # xv6 init: 7 OUT, 3 IN
    polls = []
    for f in emulated:
        if f["port"] == COM1_BASE + 5:
            polls.append(f)
        elif f["port"] == COM1_BASE and f["dir"] == "out":
            yield polls
            polls = []


def test_xv6_console_input_works_on_the_emulated_com1():
    # The emulated COM1 is QEMU-like: IRQ 4 follows INTR even though xv6 leaves MCR.OUT2 = 0.
    init = Vcpu(hvm_machine().domains[0], uart_init())
    init.run()
    uart = uart_of(init)
    levels = []
    uart.on_irq = levels.append
    uart.receive(b"k")
    uart.catch_up()
    assert uart.mcr == 0 and levels == [True]
    handler = Vcpu(init.domain, uart_intr())  # xv6's uartintr on IRQ 4
    handler.run()
    assert handler.result == b"k" and levels == [True, False]
    ports = [(e.fields["port"], e.fields["dir"]) for e in handler.machine.trace.events("emulate")]
    assert ports[-3:] == [(0x3FD, "in"), (0x3F8, "in"), (0x3FD, "in")]  # LSR, RBR, LSR


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
