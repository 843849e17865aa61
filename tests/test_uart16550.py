"""The 16550A UART model: registers and bits against hardware-facts.md §8, paced transmission,
FIFOs, interrupts, and real driver sequences (xv6 uart.c, Linux 8250 autoconfig) replayed."""

from __future__ import annotations

import pytest

from vmmlib.clock import Clock
from vmmlib.devices import uart16550 as u
from vmmlib.devices.uart16550 import Frame, Uart16550, frame_bits, frame_time_ns
from vmmlib.errors import BadPortError, BadSizeError, ConfigError
from vmmlib.hw.bus import PortBus

FRAME_9600_8N1 = 1_041_667  # 10 bits / 9600 baud = 1,041,666.67 ns, rounded to nearest
FRAME_115200_8N1 = 86_806  # 10 bits / 115200 baud = 86,805.56 ns


class Recorder:
    """Collects on_irq calls with the virtual time they happened at."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, level: bool) -> None:
        self.calls.append((self.clock.now, level))


def program(uart: Uart16550, divisor: int, lcr: int) -> None:
    """Set the line speed and format the way every driver does: DLAB on, DLL, DLM, DLAB off."""
    uart.write(u.LCR, 1, u.LCR_DLAB)
    uart.write(u.DLL, 1, divisor & 0xFF)
    uart.write(u.DLM, 1, divisor >> 8)
    uart.write(u.LCR, 1, lcr)


def make(*, raw: bool = False, **kw) -> tuple[Clock, Uart16550]:
    """A UART on a fresh clock: as after reset (raw) or programmed to 9600 8N1 (the default;
    the reset LCR of 0 means 5-bit words)."""
    clock = Clock()
    uart = Uart16550(clock, **kw)
    if not raw:
        program(uart, 12, u.LCR_WLEN8)
    return clock, uart


def run_until_idle(clock: Clock, uart: Uart16550) -> None:
    """A scheduler: jump from event to event until nothing is left to happen."""
    while (t := uart.next_event_time()) is not None:
        clock.advance_to(t)
    uart.catch_up()


# -- constants against the fact sheet ------------------------------------------------------
def test_port_map_constants():
    # hardware-facts.md §12: COM1 0x3F8 IRQ 4, COM2 0x2F8 IRQ 3, COM3 0x3E8 IRQ 4, COM4 0x2E8 IRQ 3
    assert (u.COM1_BASE, u.COM1_IRQ) == (0x3F8, 4)
    assert (u.COM2_BASE, u.COM2_IRQ) == (0x2F8, 3)
    assert (u.COM3_BASE, u.COM3_IRQ) == (0x3E8, 4)
    assert (u.COM4_BASE, u.COM4_IRQ) == (0x2E8, 3)
    assert u.UART_PORTS == 8  # 0x3F8-0x3FF


def test_register_offsets():
    # hardware-facts.md §8.1
    assert u.RBR == u.THR == u.DLL == 0
    assert u.IER == u.DLM == 1
    assert u.IIR == u.FCR == 2
    assert (u.LCR, u.MCR, u.LSR, u.MSR, u.SCR) == (3, 4, 5, 6, 7)


@pytest.mark.parametrize(
    "name, value",
    [
        # hardware-facts.md §8.2, LCR: 1:0 word length, 2 stop, 3 parity, 4 even, 5 stick,
        # 6 break, 7 DLAB
        ("LCR_WLEN_MASK", 0x03), ("LCR_WLEN5", 0x00), ("LCR_WLEN8", 0x03),
        ("LCR_STOP", 0x04), ("LCR_PARITY", 0x08), ("LCR_EPAR", 0x10), ("LCR_SPAR", 0x20),
        ("LCR_SBC", 0x40), ("LCR_DLAB", 0x80),
        # IER: 0 received data, 1 THR empty, 2 line status, 3 modem status
        ("IER_RDI", 0x01), ("IER_THRI", 0x02), ("IER_RLSI", 0x04), ("IER_MSI", 0x08),
        # FCR: 0 enable, 1 clear RX, 2 clear TX, 3 DMA mode, 7:6 trigger
        ("FCR_ENABLE_FIFO", 0x01), ("FCR_CLEAR_RCVR", 0x02), ("FCR_CLEAR_XMIT", 0x04),
        ("FCR_DMA_SELECT", 0x08), ("FCR_TRIGGER_MASK", 0xC0), ("FCR_TRIGGER_1", 0x00),
        ("FCR_TRIGGER_4", 0x40), ("FCR_TRIGGER_8", 0x80), ("FCR_TRIGGER_14", 0xC0),
        ("FIFO_DEPTH", 16),
        # IIR: 0x01 none; 0x06 line status, 0x04 data, 0x0C timeout, 0x02 THRE, 0x00 modem;
        # 0xC0 FIFOs enabled
        ("IIR_NO_INT", 0x01), ("IIR_RLSI", 0x06), ("IIR_RDI", 0x04), ("IIR_TIMEOUT", 0x0C),
        ("IIR_THRI", 0x02), ("IIR_MSI", 0x00), ("IIR_FIFO_ENABLED", 0xC0), ("IIR_ID_MASK", 0x0E),
        # MCR: 0 DTR, 1 RTS, 2 OUT1, 3 OUT2, 4 LOOP
        ("MCR_DTR", 0x01), ("MCR_RTS", 0x02), ("MCR_OUT1", 0x04), ("MCR_OUT2", 0x08),
        ("MCR_LOOP", 0x10),
        # LSR: 0 DR, 1 OE, 2 PE, 3 FE, 4 BI, 5 THRE, 6 TEMT, 7 RX FIFO error
        ("LSR_DR", 0x01), ("LSR_OE", 0x02), ("LSR_PE", 0x04), ("LSR_FE", 0x08),
        ("LSR_BI", 0x10), ("LSR_THRE", 0x20), ("LSR_TEMT", 0x40), ("LSR_FIFOE", 0x80),
        # MSR: 0 dCTS, 1 dDSR, 2 TERI, 3 dDCD, 4 CTS, 5 DSR, 6 RI, 7 DCD
        ("MSR_DCTS", 0x01), ("MSR_DDSR", 0x02), ("MSR_TERI", 0x04), ("MSR_DDCD", 0x08),
        ("MSR_CTS", 0x10), ("MSR_DSR", 0x20), ("MSR_RI", 0x40), ("MSR_DCD", 0x80),
        # divisor = 115200 / baud; reset divisor 0x0C = 9600 baud (QEMU)
        ("BAUD_BASE", 115200), ("RESET_DIVISOR", 0x0C),
    ],
)
def test_bit_constants(name, value):
    assert getattr(u, name) == value


def test_rx_trigger_levels():
    # hardware-facts.md §8.2: FCR 7:6 = 00 -> 1, 01 -> 4, 10 -> 8, 11 -> 14 bytes
    assert u.RX_TRIGGER_LEVELS == {0x00: 1, 0x40: 4, 0x80: 8, 0xC0: 14}


# -- reset state ---------------------------------------------------------------------------
def test_reset_state_via_registers():
    _, uart = make(raw=True)
    assert uart.registers() == {
        "RBR": 0, "THR": 0, "IER": 0, "IIR": 0x01, "FCR": 0, "LCR": 0, "MCR": 0,
        "LSR": 0x60, "MSR": 0xB0, "SCR": 0, "DLL": 0x0C, "DLM": 0,
    }
    assert list(uart.registers()) == [
        "RBR", "THR", "IER", "IIR", "FCR", "LCR", "MCR", "LSR", "MSR", "SCR", "DLL", "DLM",
    ]


def test_reset_state_via_ports():
    _, uart = make(raw=True)
    assert [uart.read(off, 1) for off in (1, 2, 3, 4, 5, 6, 7)] == [
        0x00, 0x01, 0x00, 0x00, 0x60, 0xB0, 0x00,
    ]
    assert uart.baud == 9600 and uart.irq is False and uart.intr is False


def test_reset_method_restores_power_on_values():
    clock, uart = make()
    program(uart, 1, 0x1B)
    uart.write(u.IER, 1, 0x0F)
    uart.write(u.MCR, 1, 0x1F)
    uart.write(u.SCR, 1, 0x55)
    uart.write(u.FCR, 1, 0xC7)
    uart.write(u.THR, 1, ord("x"))
    uart.reset()
    assert uart.registers()["LSR"] == 0x60 and uart.registers()["IIR"] == 0x01
    assert (uart.ier, uart.lcr, uart.mcr, uart.scr, uart.fcr, uart.divisor) == (0, 0, 0, 0, 0, 12)
    clock.advance(10 * FRAME_9600_8N1)
    assert uart.output == b""  # the frame in the shift register was cut


# -- DLAB and write-only FCR ---------------------------------------------------------------
def test_dlab_switches_offsets_0_and_1_to_the_divisor_latch():
    clock, uart = make()
    uart.write(u.IER, 1, 0x05)
    uart.write(u.LCR, 1, u.LCR_DLAB | 0x03)
    assert uart.read(u.DLL, 1) == 0x0C and uart.read(u.DLM, 1) == 0x00
    uart.write(u.DLL, 1, 0x34)
    uart.write(u.DLM, 1, 0x12)
    assert uart.divisor == 0x1234
    assert uart.read(0, 1) == 0x34 and uart.read(1, 1) == 0x12
    assert uart.ier == 0x05  # IER untouched while DLAB = 1
    assert uart.tx_fifo == b"" and uart.registers()["LSR"] == 0x60  # nothing transmitted
    uart.write(u.LCR, 1, 0x03)
    assert uart.read(u.IER, 1) == 0x05  # offset 1 is IER again
    uart.write(u.THR, 1, 0x41)  # offset 0 is THR again
    assert uart.registers()["THR"] == 0x41 and uart.read(u.LSR, 1) & u.LSR_TEMT == 0
    assert uart.divisor == 0x1234
    assert uart.baud == pytest.approx(115200 / 0x1234)


def test_ier_upper_bits_read_as_zero():
    _, uart = make()
    uart.write(u.IER, 1, 0xFF)
    assert uart.read(u.IER, 1) == 0x0F


def test_fcr_is_write_only_offset_2_reads_iir():
    _, uart = make()
    uart.write(u.FCR, 1, u.FCR_ENABLE_FIFO | u.FCR_TRIGGER_8)  # 0x81
    assert uart.read(u.IIR, 1) == 0xC1  # FIFO-enabled bits + "no interrupt", not 0x81
    assert uart.fifo_enabled and uart.registers()["FCR"] == 0x81
    uart.write(u.FCR, 1, 0x00)
    assert uart.read(u.IIR, 1) == 0x01 and not uart.fifo_enabled


def test_fcr_clear_bits_are_self_clearing_and_empty_the_fifos():
    clock, uart = make()
    program(uart, 1, 0x03)
    uart.write(u.FCR, 1, 0x01)
    uart.receive(b"abc")
    clock.advance(3 * FRAME_115200_8N1)
    for ch in b"123":
        uart.write(u.THR, 1, ch)
    assert uart.rx_fifo == b"abc" and uart.tx_fifo == b"23"
    uart.write(u.FCR, 1, u.FCR_ENABLE_FIFO | u.FCR_CLEAR_RCVR)
    assert uart.rx_fifo == b"" and uart.tx_fifo == b"23"
    uart.write(u.FCR, 1, u.FCR_ENABLE_FIFO | u.FCR_CLEAR_XMIT)
    assert uart.tx_fifo == b"" and uart.registers()["FCR"] == 0x01
    assert uart.read(u.LSR, 1) == u.LSR_THRE  # TX FIFO empty, shift register still busy
    run_until_idle(clock, uart)
    assert uart.output == b"1"  # the byte already in the shift register still went out


def test_toggling_fifo_enable_empties_both_fifos():
    clock, uart = make()
    uart.write(u.FCR, 1, 0x01)
    uart.receive(b"xy")
    clock.advance(2 * FRAME_9600_8N1)
    assert uart.rx_fifo == b"xy"
    uart.write(u.FCR, 1, 0x00)
    assert uart.rx_fifo == b"" and uart.read(u.LSR, 1) & u.LSR_DR == 0


# -- frame timing --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lcr, divisor, bits, ns",
    [
        (0x03, 12, 10, FRAME_9600_8N1),  # 8N1 at 9600
        (0x03, 1, 10, FRAME_115200_8N1),  # 8N1 at 115200
        (0x1E, 12, 11, 1_145_833),  # 7E2 at 9600: 1+7+1+2 bits = 1,145,833.33 ns
        (0x09, 3, 9, 234_375),  # 6O1 at 38400: 1+6+1+1 bits, exact
        (0x04, 12, 7.5, 781_250),  # 5N1.5 at 9600: 1.5 stop bits with 5-bit words
        (0x04, 3, 7.5, 195_313),  # 5N1.5 at 38400 = 195,312.5 ns: halves round up
        (0x07, 12, 11, 1_145_833),  # 8N2
        (0x0F, 12, 12, 1_250_000),  # 8O2
        (0x03, 0, 10, 5_688_888_889),  # divisor 0 counts as 65536 (our documented choice)
    ],
)
def test_frame_time(lcr, divisor, bits, ns):
    assert frame_bits(lcr) == bits
    assert frame_time_ns(lcr, divisor) == ns


def test_frame_time_rejects_bad_arguments():
    with pytest.raises(ConfigError):
        frame_time_ns(0x100, 1)
    with pytest.raises(ConfigError):
        frame_time_ns(0x03, 0x10000)
    with pytest.raises(ConfigError):
        frame_bits(-1)


@pytest.mark.parametrize("divisor, frame", [(12, FRAME_9600_8N1), (1, FRAME_115200_8N1)])
def test_thre_and_temt_timing_8n1(divisor, frame):
    clock, uart = make()
    program(uart, divisor, 0x03)
    assert uart.frame_ns == frame
    uart.write(u.THR, 1, ord("A"))
    # A went straight into the idle shift register: THR is free again, the line is busy
    assert uart.read(u.LSR, 1) == u.LSR_THRE
    uart.write(u.THR, 1, ord("B"))
    assert uart.read(u.LSR, 1) == 0  # B waits in THR
    clock.advance(frame - 1)
    assert uart.read(u.LSR, 1) == 0
    clock.advance(1)  # A's stop bit ends, B moves into the shift register
    assert uart.read(u.LSR, 1) == u.LSR_THRE
    assert uart.tx_log == [(0, frame, ord("A"))]
    clock.advance(frame - 1)
    assert uart.read(u.LSR, 1) == u.LSR_THRE
    clock.advance(1)
    assert uart.read(u.LSR, 1) == u.LSR_THRE | u.LSR_TEMT
    assert uart.tx_log == [Frame(0, frame, 65), Frame(frame, 2 * frame, 66)]
    assert uart.output == b"AB"


def test_7e2_frames_are_longer_than_8n1():
    clock, uart = make()
    program(uart, 12, u.LCR_WLEN7 | u.LCR_STOP | u.LCR_PARITY | u.LCR_EPAR)
    uart.write(u.THR, 1, ord("x"))
    clock.advance(FRAME_9600_8N1)  # an 8N1 frame time is not enough for 11 bits
    assert uart.read(u.LSR, 1) & u.LSR_TEMT == 0
    clock.advance(1_145_833 - FRAME_9600_8N1)
    assert uart.read(u.LSR, 1) & u.LSR_TEMT
    assert uart.tx_log == [(0, 1_145_833, ord("x"))]


def test_short_words_carry_only_their_low_bits():
    # hardware-facts.md §8.2: LCR 1:0 = 00 means 5 data bits; reset LCR is 0
    clock, uart = make(raw=True)
    assert uart.frame_ns == frame_time_ns(0x00, 12) == 729_167  # 5N1 = 7 bits at 9600
    uart.write(u.THR, 1, 0xFF)
    uart.write(u.MCR, 1, 0)
    clock.advance(729_167)
    assert uart.output == bytes([0x1F])
    uart.write(u.LCR, 1, u.LCR_WLEN7)
    uart.receive(bytes([0xC1]))
    clock.advance(uart.frame_ns)
    assert uart.read(u.RBR, 1) == 0x41


def test_polling_driver_waits_one_frame_per_byte():
    # xv6 uartputc: poll LSR bit 5 (0x20) with microdelay(10), then write THR
    clock, uart = make()
    program(uart, 12, 0x03)
    polls = 0
    for ch in b"hello":
        while not uart.read(u.LSR, 1) & 0x20:
            clock.advance(10_000)
            polls += 1
        uart.write(u.THR, 1, ch)
    run_until_idle(clock, uart)
    assert uart.output == b"hello" and uart.tx_lost == 0
    # no byte waited twice: frames are back to back except where polling granularity shows
    ends = [f.end for f in uart.tx_log]
    assert all(f.end - f.start == FRAME_9600_8N1 for f in uart.tx_log)
    assert all(b.start >= a.end for a, b in zip(uart.tx_log, uart.tx_log[1:], strict=False))
    assert ends[-1] < 5 * FRAME_9600_8N1 + 4 * 10_000
    assert polls >= 3 * (FRAME_9600_8N1 // 10_000)  # bytes 3..5 each waited ~one frame


# -- overwrites and losses -----------------------------------------------------------------
def test_thr_overwrite_without_fifo_loses_the_waiting_byte():
    clock, uart = make()
    for ch in b"ABC":
        uart.write(u.THR, 1, ch)
    assert uart.tx_lost == 1
    run_until_idle(clock, uart)
    assert uart.output == b"AC"


def test_tx_fifo_holds_16_and_drops_the_new_byte_when_full():
    clock, uart = make()
    program(uart, 1, 0x03)
    uart.write(u.FCR, 1, 0x07)
    data = bytes(range(0x40, 0x40 + 18))
    for ch in data:
        uart.write(u.THR, 1, ch)
    # one byte in the shift register + 16 in the FIFO; the 18th is dropped
    assert uart.tx_fifo == data[1:17] and uart.tx_lost == 1
    run_until_idle(clock, uart)
    assert uart.output == data[:17]
    assert uart.tx_log[-1].end == 17 * FRAME_115200_8N1


def test_thre_in_fifo_mode_waits_for_the_fifo_to_drain():
    clock, uart = make()
    uart.write(u.FCR, 1, 0x01)
    for ch in b"abc":
        uart.write(u.THR, 1, ch)
    clock.advance(2 * FRAME_9600_8N1 - 1)
    assert uart.read(u.LSR, 1) & u.LSR_THRE == 0
    clock.advance(1)
    assert uart.read(u.LSR, 1) & (u.LSR_THRE | u.LSR_TEMT) == u.LSR_THRE


# -- receive -------------------------------------------------------------------------------
def test_received_bytes_arrive_paced():
    clock, uart = make()
    uart.receive(b"hi")
    clock.advance(FRAME_9600_8N1 - 1)
    assert uart.read(u.LSR, 1) & u.LSR_DR == 0
    clock.advance(1)
    assert uart.read(u.LSR, 1) & u.LSR_DR
    assert uart.read(u.RBR, 1) == ord("h")
    assert uart.read(u.LSR, 1) & u.LSR_DR == 0  # reading RBR cleared DR
    clock.advance(FRAME_9600_8N1)
    assert uart.read(u.RBR, 1) == ord("i")
    assert uart.read(u.RBR, 1) == ord("i")  # empty RBR keeps its last byte


def test_rx_overrun_without_fifo_overwrites_rbr_and_sets_oe():
    clock, uart = make()
    uart.receive(b"ab")
    clock.advance(2 * FRAME_9600_8N1)
    assert uart.read(u.LSR, 1) == u.LSR_DR | u.LSR_OE | u.LSR_THRE | u.LSR_TEMT
    assert uart.read(u.LSR, 1) == u.LSR_DR | u.LSR_THRE | u.LSR_TEMT  # LSR read cleared OE
    assert uart.read(u.RBR, 1) == ord("b") and uart.rx_lost == 1


def test_rx_overrun_with_fifo_drops_the_arriving_byte():
    clock, uart = make()
    program(uart, 1, 0x03)
    uart.write(u.FCR, 1, 0x01)
    data = bytes(range(17))
    uart.receive(data)
    clock.advance(17 * FRAME_115200_8N1)
    assert uart.read(u.LSR, 1) & u.LSR_OE and uart.rx_lost == 1
    assert bytes(uart.read(u.RBR, 1) for _ in range(16)) == data[:16]


def test_receive_rejects_non_bytes():
    _, uart = make()
    with pytest.raises(ConfigError):
        uart.receive("text")
    with pytest.raises(ConfigError):
        uart.receive(3)


# -- loopback ------------------------------------------------------------------------------
def test_loopback_sends_to_the_receiver_not_the_wire():
    clock, uart = make()
    uart.write(u.MCR, 1, u.MCR_LOOP)
    uart.write(u.THR, 1, ord("X"))
    clock.advance(FRAME_9600_8N1)
    assert uart.read(u.LSR, 1) & u.LSR_DR
    assert uart.read(u.RBR, 1) == ord("X")
    assert uart.tx_log == [] and uart.output == b""


def test_loopback_disconnects_the_cable():
    clock, uart = make()
    uart.write(u.MCR, 1, u.MCR_LOOP)
    uart.receive(b"z")
    clock.advance(FRAME_9600_8N1)
    assert uart.read(u.LSR, 1) & u.LSR_DR == 0 and uart.rx_lost == 1


@pytest.mark.parametrize(
    "mcr, msr_high",
    # hardware-facts.md §8.2: in loopback CTS <- RTS, DSR <- DTR, RI <- OUT1, DCD <- OUT2
    [(u.MCR_RTS, u.MSR_CTS), (u.MCR_DTR, u.MSR_DSR), (u.MCR_OUT1, u.MSR_RI),
     (u.MCR_OUT2, u.MSR_DCD), (0x0F, 0xF0), (0x00, 0x00)],
)
def test_loopback_modem_inputs_follow_outputs(mcr, msr_high):
    _, uart = make()
    uart.write(u.MCR, 1, u.MCR_LOOP | mcr)
    assert uart.read(u.MSR, 1) & 0xF0 == msr_high


def test_msr_delta_bits_latch_and_clear_on_read():
    _, uart = make(raw=True)
    assert uart.read(u.MSR, 1) == 0xB0  # cable: CTS, DSR, DCD asserted, no changes yet
    uart.write(u.MCR, 1, u.MCR_LOOP)  # inputs now 0: CTS, DSR, DCD dropped
    assert uart.read(u.MSR, 1) == u.MSR_DCTS | u.MSR_DDSR | u.MSR_DDCD
    assert uart.read(u.MSR, 1) == 0x00  # the read cleared the deltas
    uart.write(u.MCR, 1, u.MCR_LOOP | u.MCR_OUT1)  # RI rises: no TERI (trailing edge only)
    assert uart.read(u.MSR, 1) == u.MSR_RI
    uart.write(u.MCR, 1, u.MCR_LOOP)  # RI falls
    assert uart.read(u.MSR, 1) == u.MSR_TERI


def test_lsr_and_msr_writes_are_ignored():
    _, uart = make(raw=True)
    uart.write(u.LSR, 1, 0x00)
    uart.write(u.MSR, 1, 0x00)
    assert uart.read(u.LSR, 1) == 0x60 and uart.read(u.MSR, 1) == 0xB0


# -- interrupts ----------------------------------------------------------------------------
def test_iir_priority_order():
    # hardware-facts.md §8.2: line status > received data > THRE > modem status
    clock, uart = make()
    uart.write(u.MCR, 1, u.MCR_LOOP)
    uart.read(u.MSR, 1)  # clear the deltas of entering loopback
    uart.write(u.IER, 1, 0x0F)
    uart.write(u.THR, 1, ord("1"))
    uart.write(u.THR, 1, ord("2"))
    clock.advance(2 * FRAME_9600_8N1)  # "2" overwrites "1" in RBR: overrun
    uart.write(u.MCR, 1, u.MCR_LOOP | u.MCR_RTS)  # a modem status change
    assert uart.read(u.IIR, 1) == u.IIR_RLSI
    uart.read(u.LSR, 1)
    assert uart.read(u.IIR, 1) == u.IIR_RDI
    assert uart.read(u.RBR, 1) == ord("2")
    assert uart.read(u.IIR, 1) == u.IIR_THRI  # this read acknowledges THRE ...
    assert uart.read(u.IIR, 1) == u.IIR_MSI  # ... so the modem status shows next
    assert uart.read(u.MSR, 1) & u.MSR_DCTS
    assert uart.read(u.IIR, 1) == u.IIR_NO_INT


def test_ier_gates_each_source():
    clock, uart = make()
    uart.receive(b"q")
    clock.advance(FRAME_9600_8N1)
    assert uart.read(u.IIR, 1) == u.IIR_NO_INT  # data waiting, but IER = 0
    uart.write(u.IER, 1, u.IER_RDI)
    assert uart.read(u.IIR, 1) == u.IIR_RDI


def test_thre_interrupt_on_enable_and_on_thr_write():
    clock, uart = make()
    uart.write(u.IER, 1, u.IER_THRI)  # enabling while THR is empty interrupts at once
    assert uart.read(u.IIR, 1) == u.IIR_THRI
    assert uart.read(u.IIR, 1) == u.IIR_NO_INT  # acknowledged by that read
    uart.write(u.THR, 1, ord("a"))  # goes straight to the shift register: THR empty again
    uart.write(u.THR, 1, ord("b"))  # waits: the THR write cleared the interrupt
    assert uart.read(u.IIR, 1) == u.IIR_NO_INT
    clock.advance(FRAME_9600_8N1)
    assert uart.read(u.IIR, 1) == u.IIR_THRI


def test_character_timeout_in_fifo_mode():
    clock, uart = make()
    uart.write(u.FCR, 1, u.FCR_ENABLE_FIFO | u.FCR_TRIGGER_4)
    uart.write(u.IER, 1, u.IER_RDI)
    uart.receive(b"ab")
    clock.advance(2 * FRAME_9600_8N1)
    assert uart.read(u.IIR, 1) == 0xC1  # 2 bytes < trigger 4, no timeout yet
    assert uart.next_event_time() == 6 * FRAME_9600_8N1  # last arrival + 4 frames
    clock.advance(4 * FRAME_9600_8N1 - 1)
    assert uart.read(u.IIR, 1) == 0xC1
    clock.advance(1)
    assert uart.read(u.IIR, 1) == 0xC0 | u.IIR_TIMEOUT
    assert uart.read(u.RBR, 1) == ord("a")  # reading restarts the timer
    assert uart.read(u.IIR, 1) == 0xC1
    uart.receive(b"cde")
    clock.advance(3 * FRAME_9600_8N1)
    assert uart.read(u.IIR, 1) == 0xC0 | u.IIR_RDI  # 4 bytes reached the trigger level


def test_irq_line_needs_out2_and_calls_back_on_changes():
    clock = Clock()
    rec = Recorder(clock)
    uart = Uart16550(clock, on_irq=rec)
    program(uart, 12, u.LCR_WLEN8)
    uart.write(u.IER, 1, u.IER_RDI)
    uart.receive(b"k")
    clock.advance(FRAME_9600_8N1)
    uart.catch_up()
    assert uart.intr and not uart.irq and rec.calls == []  # MCR.OUT2 = 0: gated off (PC)
    clock.advance(5)
    uart.write(u.MCR, 1, u.MCR_OUT2)
    assert rec.calls == [(FRAME_9600_8N1 + 5, True)]
    uart.read(u.RBR, 1)
    assert rec.calls[-1] == (FRAME_9600_8N1 + 5, False) and not uart.intr


def test_loopback_cuts_the_irq_line_on_a_pc():
    clock, uart = make()
    uart.write(u.MCR, 1, u.MCR_LOOP | u.MCR_OUT2)
    uart.write(u.IER, 1, u.IER_RDI)
    uart.write(u.THR, 1, 0x55)
    clock.advance(FRAME_9600_8N1)
    uart.catch_up()
    assert uart.intr and not uart.irq  # OUT2 pin forced inactive in loopback
    uart.write(u.MCR, 1, u.MCR_OUT2)
    assert uart.irq


def test_scheduler_delivers_thre_interrupts_at_frame_ends():
    clock = Clock()
    rec = Recorder(clock)
    uart = Uart16550(clock, on_irq=rec)
    program(uart, 12, u.LCR_WLEN8)
    uart.write(u.MCR, 1, u.MCR_OUT2)
    uart.write(u.IER, 1, u.IER_THRI)
    assert rec.calls == [(0, True)]
    uart.read(u.IIR, 1)
    uart.write(u.THR, 1, ord("a"))  # interrupt again: THR emptied into the shift register
    uart.read(u.IIR, 1)
    uart.write(u.THR, 1, ord("b"))
    assert uart.next_event_time() == FRAME_9600_8N1
    clock.advance_to(uart.next_event_time())
    uart.catch_up()
    assert rec.calls[-1] == (FRAME_9600_8N1, True)
    uart.read(u.IIR, 1)
    assert uart.next_event_time() == 2 * FRAME_9600_8N1
    clock.advance_to(2 * FRAME_9600_8N1)
    assert uart.next_event_time() is None and uart.output == b"ab"


# -- access widths and bad input -----------------------------------------------------------
def test_wide_accesses_are_successive_byte_cycles():
    clock, uart = make()
    uart.write(u.LCR, 1, u.LCR_DLAB)
    uart.write(u.DLL, 2, 0x0180)  # DLL = 0x80, DLM = 0x01 in one 16-bit OUT
    assert uart.divisor == 0x0180 and uart.read(u.DLL, 2) == 0x0180
    uart.write(u.LCR, 1, 0x03)
    uart.write(u.SCR, 1, 0x5A)
    assert uart.read(u.MCR, 4) == 0x5A_B0_60_00  # MCR, LSR, MSR, SCR, low byte first
    uart.write(u.IER, 1, 0x01)
    uart.receive(b"r")
    clock.advance(uart.frame_ns)
    assert uart.read(u.RBR, 2) == 0x01_00 | ord("r")  # RBR (popped) then IER
    assert uart.read(u.LSR, 1) & u.LSR_DR == 0


def test_through_a_port_bus():
    clock = Clock()
    bus = PortBus()
    uart = Uart16550(clock)
    bus.claim(u.COM1_BASE, u.UART_PORTS, uart, "COM1")
    assert bus.read(u.COM1_BASE + u.LSR, 1) == 0x60
    assert bus.read(u.COM1_BASE + u.SCR, 2) == 0xFF00  # 0x400 is unclaimed: floats high
    bus.write(u.COM1_BASE + u.LCR, 1, u.LCR_WLEN8)  # reset LCR is 5N1: make it 8N1
    bus.write(u.COM1_BASE + u.THR, 1, ord("!"))
    clock.advance(FRAME_9600_8N1)
    assert uart.output == b"!"


@pytest.mark.parametrize("offset, size", [(8, 1), (-1, 1), (7, 2), (5, 4), ("0", 1)])
def test_bad_offset(offset, size):
    _, uart = make()
    with pytest.raises(BadPortError):
        uart.read(offset, size)
    with pytest.raises(BadPortError):
        uart.write(offset, size, 0)


@pytest.mark.parametrize("size", [0, 3, 8])
def test_bad_size(size):
    _, uart = make()
    with pytest.raises(BadSizeError):
        uart.read(0, size)
    with pytest.raises(BadSizeError):
        uart.write(0, size, 0)


def test_registers_has_no_side_effects():
    clock, uart = make()
    uart.write(u.IER, 1, 0x0F)
    uart.receive(b"ab")
    clock.advance(2 * FRAME_9600_8N1)  # overrun
    uart.write(u.MCR, 1, u.MCR_DTR)  # not loopback: no modem change
    first = uart.registers()
    assert first == uart.registers()
    assert first["IIR"] == u.IIR_RLSI and first["LSR"] & u.LSR_OE and first["RBR"] == ord("b")
    assert uart.read(u.LSR, 1) & u.LSR_OE  # still there for the guest
    assert uart.read(u.RBR, 1) == ord("b")


def test_repr_has_no_address():
    _, uart = make(name="COM2")
    assert repr(uart) == "Uart16550('COM2')"


# -- real driver sequences -----------------------------------------------------------------
def replay(uart: Uart16550, steps: list[tuple[str, int, int | None]]) -> list[int]:
    """Run ("w", offset, value) / ("r", offset, None) steps; return the values read."""
    reads = []
    for op, offset, value in steps:
        if op == "w":
            uart.write(offset, 1, value)
        else:
            reads.append(uart.read(offset, 1))
    return reads


# xv6 uart.c uartinit (mit-pdos/xv6-public): FIFO off, 9600 8N1, MCR 0, receive interrupts on,
# "if status is 0xFF, no serial port", then read IIR and RBR to acknowledge old conditions.
XV6_UARTINIT = [
    ("w", 2, 0x00),
    ("w", 3, 0x80),
    ("w", 0, 115200 // 9600),
    ("w", 1, 0x00),
    ("w", 3, 0x03),
    ("w", 4, 0x00),
    ("w", 1, 0x01),
    ("r", 5, None),
    ("r", 2, None),
    ("r", 0, None),
]


def test_xv6_uartinit():
    _, uart = make(raw=True)
    lsr, iir, rbr = replay(uart, XV6_UARTINIT)
    assert lsr != 0xFF and lsr == 0x60  # a UART is present, transmitter idle
    assert iir == 0x01 and rbr == 0x00
    assert (uart.divisor, uart.lcr, uart.mcr, uart.ier, uart.fcr) == (12, 0x03, 0, 0x01, 0)
    assert uart.baud == 9600 and uart.frame_ns == FRAME_9600_8N1


def test_xv6_uartputc_polls_thre():
    clock, uart = make(raw=True)
    replay(uart, XV6_UARTINIT)
    message = b"xv6...\n"
    for ch in message:
        for _ in range(128):  # for(i = 0; i < 128 && !(inb(COM1+5) & 0x20); i++) microdelay(10)
            if uart.read(5, 1) & 0x20:
                break
            clock.advance(10_000)
        else:
            pytest.fail("THRE never came back within xv6's 1.28 ms budget")
        uart.write(0, 1, ch)
    run_until_idle(clock, uart)
    assert uart.output == message and uart.tx_lost == 0


def test_xv6_gets_no_interrupt_on_a_real_pc_because_mcr_is_0():
    # hardware-facts.md §8.3: QEMU interrupts regardless of OUT2; a real PC needs OUT2
    clock = Clock()
    rec = Recorder(clock)
    uart = Uart16550(clock, on_irq=rec)
    replay(uart, XV6_UARTINIT)
    uart.receive(b"k")
    clock.advance(FRAME_9600_8N1)
    assert uart.read(2, 1) == u.IIR_RDI  # the chip wants attention ...
    assert not uart.irq and rec.calls == []  # ... but OUT2 = 0 keeps IRQ 4 quiet


# Linux drivers/tty/serial/8250/8250_port.c autoconfig() (torvalds/linux):
# - IER test: write 0 then 0x0F to IER, read back (masked with 0x0F) as 0 and 0x0F;
# - loopback test: MCR = UART_MCR_LOOP | 0x0A (OUT2|RTS), MSR & 0xF0 must be 0x90
#   (later written UART_MSR_DCD | UART_MSR_CTS): DCD <- OUT2, CTS <- RTS, hardware-facts §8.2;
# - LCR = 0xBF (UART_LCR_CONF_MODE_B), write 0 to offset 2 (EFR on a 16650, FCR here), LCR = 0;
# - FCR = UART_FCR_ENABLE_FIFO, then IIR >> 6 == 3 means a 16550A (2 = 16550, 0 = 8250/16450);
# - autoconfig_8250(): SCR written 0xA5 then 0x5A and read back tells a 16450 from an 8250.
def test_linux_ier_test():
    _, uart = make(raw=True)
    saved, zero, ones = replay(
        uart, [("r", 1, None), ("w", 1, 0x00), ("r", 1, None), ("w", 1, 0x0F), ("r", 1, None)]
    )
    uart.write(1, 1, saved)
    assert zero & 0x0F == 0 and ones & 0x0F == 0x0F and uart.ier == saved


def test_linux_loopback_test():
    _, uart = make(raw=True)
    save_mcr = uart.read(u.MCR, 1)
    uart.write(u.MCR, 1, u.MCR_LOOP | 0x0A)
    status1 = uart.read(u.MSR, 1) & 0xF0
    uart.write(u.MCR, 1, save_mcr)
    assert status1 == 0x90 == u.MSR_DCD | u.MSR_CTS
    assert uart.mcr == save_mcr


def test_linux_fifo_detection_finds_a_16550a():
    _, uart = make(raw=True)
    save_lcr = uart.read(u.LCR, 1)
    replay(uart, [("w", 3, 0xBF), ("w", 2, 0x00), ("w", 3, 0x00), ("w", 2, 0x01)])
    assert uart.read(u.IIR, 1) >> 6 == 3
    uart.write(u.LCR, 1, save_lcr)


def test_linux_scratch_register_test():
    _, uart = make(raw=True)
    scratch = uart.read(u.SCR, 1)
    steps = [("w", 7, 0xA5), ("r", 7, None), ("w", 7, 0x5A), ("r", 7, None)]
    status1, status2 = replay(uart, steps)
    uart.write(u.SCR, 1, scratch)
    assert (status1, status2) == (0xA5, 0x5A) and uart.scr == scratch


def test_an_absent_uart_would_read_0xff():
    # the other half of xv6's probe: with nothing claiming the ports the bus floats high
    assert PortBus().read(u.COM1_BASE + u.LSR, 1) == 0xFF


def test_unpaced_uart_sends_at_once_like_qemu():
    LCR, LSR, THR, LSR_THRE, LSR_TEMT = u.LCR, u.LSR, u.THR, u.LSR_THRE, u.LSR_TEMT
    # hardware-facts.md §8.3: QEMU's serial.c transmits synchronously; THRE never stays clear.
    clock = Clock()
    uart = Uart16550(clock, paced=False)
    uart.write(LCR, 1, 0x03)
    for ch in b"AB":
        assert uart.read(LSR, 1) & LSR_THRE
        uart.write(THR, 1, ch)
    assert uart.read(LSR, 1) & (LSR_THRE | LSR_TEMT) == LSR_THRE | LSR_TEMT
    assert uart.output == b"AB"
    assert clock.now == 0


# -- the IRQ line: QEMU's emulated UART versus the real PC's wiring --------------------------
# hardware-facts.md §8.2/§8.3: on a PC, MCR.OUT2 gates INTR to the PIC; QEMU's serial.c
# (serial_update_irq at a0def59) raises the IRQ from IIR alone. xv6 leaves MCR = 0 (uart.c
# uartinit at mit-pdos/xv6-public eeb7b41), so it gets receive interrupts only under QEMU.
@pytest.mark.parametrize("out2_gates_irq, irq", [(False, True), (True, False)])
def test_xv6_receive_interrupt_depends_on_out2_wiring(out2_gates_irq, irq):
    clock = Clock()
    rec = Recorder(clock)
    uart = Uart16550(clock, on_irq=rec, out2_gates_irq=out2_gates_irq)
    replay(uart, XV6_UARTINIT)
    assert uart.mcr == 0 and uart.ier == u.IER_RDI
    uart.receive(b"k")
    clock.advance(FRAME_9600_8N1)
    uart.catch_up()
    assert uart.intr  # the chip wants attention either way ...
    assert uart.irq is irq  # ... but only the QEMU-like model raises IRQ 4 with OUT2 = 0
    assert rec.calls == ([(FRAME_9600_8N1, True)] if irq else [])
    # xv6's uartintr: while LSR.DR, read RBR; the line drops once RBR is empty
    got = []
    while uart.read(u.LSR, 1) & u.LSR_DR:
        got.append(uart.read(u.RBR, 1))
    assert got == [ord("k")] and not uart.intr and not uart.irq
    assert rec.calls == ([(FRAME_9600_8N1, True), (FRAME_9600_8N1, False)] if irq else [])


def test_qemu_like_irq_still_follows_ier_and_loopback_does_not_cut_it():
    clock, uart = make(out2_gates_irq=False)
    uart.receive(b"x")
    clock.advance(FRAME_9600_8N1)
    assert not uart.intr and not uart.irq  # IER = 0: nothing enabled, nothing raised
    uart.write(u.IER, 1, u.IER_RDI)
    assert uart.irq
    uart.write(u.MCR, 1, u.MCR_LOOP | u.MCR_OUT2)  # the PC's gate does not exist here
    assert uart.irq


def test_out2_wiring_must_be_a_bool():
    with pytest.raises(ConfigError):
        Uart16550(Clock(), out2_gates_irq=1)
