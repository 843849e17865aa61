"""The 16550A's registers: where each sits among the UART's eight ports, its bits, and what
reading or writing it does. Several registers share a port, and which one you reach depends on
the direction of the access and on LCR.DLAB (hardware-facts.md §8.1):

====== ============================== ==============================
offset read                           write
====== ============================== ==============================
0      RBR receive buffer (DLAB=0)     THR transmit holding (DLAB=0)
0      DLL divisor latch low (DLAB=1)  DLL
1      IER interrupt enable (DLAB=0)   IER
1      DLM divisor latch high (DLAB=1) DLM
2      IIR interrupt identification    FCR FIFO control (write-only)
3..7   LCR, MCR, LSR, MSR, SCR         LCR, MCR, (ignored), (ignored), SCR
====== ============================== ==============================

Decisions where hardware leaves a choice (each one is pinned by a test):

* **Interrupt line.** The chip's INTR output is "some enabled interrupt is pending"
  (``intr``). On a PC it reaches the PIC only through a gate driven by MCR.OUT2 ("Most PC
  uarts need OUT2 raised to enable interrupts", hardware-facts.md §8.2), and in loopback
  mode the OUT2 pin is forced inactive, so IRQ = INTR and OUT2 and not LOOP (``irq``).
  QEMU ignores OUT2, which is why xv6 (MCR = 0) gets interrupts under QEMU but would not on
  a real PC. The loopback part is *derived*: 16550-compatible manuals (Microchip MMUART
  MCR.Loop, NXP LPC17xx UART1 MCR) say the modem output pins go inactive in loopback.
* **Modem inputs.** The far end is a terminal that is on: CTS, DSR and DCD asserted, as
  QEMU's reset value of MSR (0xB0).
* **FCR.** Changing FCR bit 0 empties both FIFOs (QEMU ``serial_ioport_write``). Bits 1
  and 2 clear a FIFO and read back as 0 in ``registers()``; the shift register is untouched.
* **THRE interrupt.** It is latched when THR/TX FIFO becomes empty while IER.THRI is set,
  and when IER.THRI goes 0 -> 1 while THR is empty (QEMU and Bochs do this; Windows relies
  on it). Reading IIR while it is the reported source, or writing THR, clears it.
* **Character timeout** (IIR 0x0C, FIFO mode): pending while the RX FIFO holds data and
  nothing entered or left it for 4 frame times.

Sources: hardware-facts.md §8 and §12; Linux ``include/uapi/linux/serial_reg.h`` (names);
QEMU ``hw/char/serial.c``.
"""

from __future__ import annotations

# -- the four PC serial ports (hardware-facts.md §12; QEMU hw/char/serial-isa.c) -----------
COM1_BASE, COM1_IRQ = 0x3F8, 4
COM2_BASE, COM2_IRQ = 0x2F8, 3
COM3_BASE, COM3_IRQ = 0x3E8, 4
COM4_BASE, COM4_IRQ = 0x2E8, 3
UART_PORTS = 8  # a UART answers 8 consecutive ports

# -- register offsets (hardware-facts.md §8.1) ----------------------------------------------
RBR = THR = DLL = 0
IER = DLM = 1
IIR = FCR = 2
LCR, MCR, LSR, MSR, SCR = 3, 4, 5, 6, 7

# -- bits (hardware-facts.md §8.2) ----------------------------------------------------------
IER_RDI, IER_THRI, IER_RLSI, IER_MSI = 0x01, 0x02, 0x04, 0x08

IIR_NO_INT = 0x01  # bit 0 = 1: nothing pending
IIR_ID_MASK = 0x0E
IIR_MSI, IIR_THRI, IIR_RDI, IIR_RLSI, IIR_TIMEOUT = 0x00, 0x02, 0x04, 0x06, 0x0C
IIR_FIFO_ENABLED = 0xC0

FCR_ENABLE_FIFO, FCR_CLEAR_RCVR, FCR_CLEAR_XMIT, FCR_DMA_SELECT = 0x01, 0x02, 0x04, 0x08
FCR_TRIGGER_MASK = 0xC0
FCR_TRIGGER_1, FCR_TRIGGER_4, FCR_TRIGGER_8, FCR_TRIGGER_14 = 0x00, 0x40, 0x80, 0xC0
RX_TRIGGER_LEVELS = {FCR_TRIGGER_1: 1, FCR_TRIGGER_4: 4, FCR_TRIGGER_8: 8, FCR_TRIGGER_14: 14}
FIFO_DEPTH = 16

LCR_WLEN_MASK = 0x03  # 00 = 5 ... 11 = 8 data bits
LCR_WLEN5, LCR_WLEN6, LCR_WLEN7, LCR_WLEN8 = 0x00, 0x01, 0x02, 0x03
LCR_STOP, LCR_PARITY, LCR_EPAR, LCR_SPAR, LCR_SBC, LCR_DLAB = 0x04, 0x08, 0x10, 0x20, 0x40, 0x80

MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10

LSR_DR, LSR_OE, LSR_PE, LSR_FE, LSR_BI = 0x01, 0x02, 0x04, 0x08, 0x10
LSR_THRE, LSR_TEMT, LSR_FIFOE = 0x20, 0x40, 0x80

MSR_DCTS, MSR_DDSR, MSR_TERI, MSR_DDCD = 0x01, 0x02, 0x04, 0x08
MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = 0x10, 0x20, 0x40, 0x80

BAUD_BASE = 115200  # 1.8432 MHz / 16: divisor = 115200 / baud
RESET_DIVISOR = 0x0C  # 9600 baud, QEMU's reset value


class UartRegisters:
    """The register half of ``Uart16550`` (a mixin: it uses the chip's FIFOs and line state):
    the register decode behind the eight ports, the status registers, the interrupt sources."""

    __slots__ = ()  # the state is declared once, in Uart16550.__slots__

    def _read_reg(self, reg: int) -> int:
        dlab = self.lcr & LCR_DLAB
        if reg == RBR:
            return self.divisor & 0xFF if dlab else self._pop_rx()
        if reg == IER:
            return self.divisor >> 8 if dlab else self.ier
        if reg == IIR:
            iid = self._interrupt_id()
            if iid == IIR_THRI:  # reading IIR acknowledges a THRE interrupt
                self._thri_pending = False
            return iid | self._fifo_bits()
        if reg == LSR:
            value = self._lsr()
            self._overrun = False  # OE (and BI, never set here) clear on read
            return value
        if reg == MSR:
            value = self._msr()
            self._msr_delta = 0
            return value
        return {LCR: self.lcr, MCR: self.mcr, SCR: self.scr}[reg]

    def _write_reg(self, reg: int, value: int) -> None:
        dlab = self.lcr & LCR_DLAB
        if reg == THR:
            if dlab:
                self.divisor = (self.divisor & 0xFF00) | value
                self._line_changed()
            else:
                self._write_thr(value)
        elif reg == IER:
            if dlab:
                self.divisor = (self.divisor & 0x00FF) | value << 8
                self._line_changed()
            else:
                self._write_ier(value)
        elif reg == FCR:
            self._write_fcr(value)
            self._line_changed()
        elif reg == LCR:
            self.lcr = value
            self._line_changed()
        elif reg == MCR:
            before = self._modem_inputs()
            self.mcr = value & 0x1F  # bits 7:5 read as 0 on a 16550A
            self._latch_msr_deltas(before)
        elif reg == SCR:
            self.scr = value

    def _write_ier(self, value: int) -> None:
        value &= 0x0F  # bits 7:4 are always 0
        if value & IER_THRI and not self.ier & IER_THRI and not self._tx:
            self._thri_pending = True  # enabling THRI while THR is empty interrupts at once
        if not value & IER_THRI:
            self._thri_pending = False
        self.ier = value

    def _write_fcr(self, value: int) -> None:
        if (value ^ self.fcr) & FCR_ENABLE_FIFO:
            value |= FCR_CLEAR_RCVR | FCR_CLEAR_XMIT  # switching mode empties both FIFOs
        if value & FCR_CLEAR_RCVR:
            self._rx.clear()
        if value & FCR_CLEAR_XMIT and self._tx:
            self._tx.clear()
            if self.ier & IER_THRI:
                self._thri_pending = True
        self.fcr = value & (FCR_ENABLE_FIFO | FCR_DMA_SELECT | FCR_TRIGGER_MASK)

    # -- status registers ------------------------------------------------------------------
    def _lsr(self) -> int:
        value = LSR_DR if self._rx else 0
        if self._overrun:
            value |= LSR_OE
        if not self._tx:
            value |= LSR_THRE
            if self._shift is None:
                value |= LSR_TEMT
        return value

    def _modem_inputs(self) -> int:
        """MSR bits 7:4: the cable's lines, or in loopback our own MCR outputs."""
        if not self.mcr & MCR_LOOP:
            return self._cable_inputs
        m = self.mcr
        return (
            (MSR_CTS if m & MCR_RTS else 0)
            | (MSR_DSR if m & MCR_DTR else 0)
            | (MSR_RI if m & MCR_OUT1 else 0)
            | (MSR_DCD if m & MCR_OUT2 else 0)
        )

    def _latch_msr_deltas(self, before: int) -> None:
        after = self._modem_inputs()
        delta = ((before ^ after) >> 4) & (MSR_DCTS | MSR_DDSR | MSR_DDCD)
        if before & MSR_RI and not after & MSR_RI:
            delta |= MSR_TERI  # trailing edge of RI only
        self._msr_delta |= delta

    def _msr(self) -> int:
        return self._modem_inputs() | self._msr_delta

    def _fifo_bits(self) -> int:
        return IIR_FIFO_ENABLED if self.fifo_enabled else 0

    # -- interrupts ------------------------------------------------------------------------
    def _interrupt_id(self) -> int:
        """IIR bits 3:0: the highest-priority enabled interrupt pending, or IIR_NO_INT."""
        ier = self.ier
        if ier & IER_RLSI and self._overrun:
            return IIR_RLSI
        if ier & IER_RDI:
            trigger = RX_TRIGGER_LEVELS[self.fcr & FCR_TRIGGER_MASK] if self.fifo_enabled else 1
            if len(self._rx) >= trigger:
                return IIR_RDI
            t = self._timeout_at()
            if t is not None and t <= self.clock.now:
                return IIR_TIMEOUT
        if ier & IER_THRI and self._thri_pending:
            return IIR_THRI
        if ier & IER_MSI and self._msr_delta:
            return IIR_MSI
        return IIR_NO_INT

    @property
    def intr(self) -> bool:
        """The chip's INTR pin: an enabled interrupt is pending (IIR bit 0 reads 0)."""
        return self._interrupt_id() != IIR_NO_INT

    @property
    def irq(self) -> bool:
        """The IRQ line at the PIC: on a PC, INTR gated by MCR.OUT2 and cut in loopback;
        with ``out2_gates_irq=False`` (QEMU's model), INTR itself."""
        if not self.out2_gates_irq:
            return self.intr
        return self.intr and self.mcr & (MCR_OUT2 | MCR_LOOP) == MCR_OUT2

    def _update_irq(self) -> None:
        level = self.irq
        if level != self._irq_level:
            self._irq_level = level
            if self.on_irq is not None:
                self.on_irq(level)

    # -- views for notebooks ---------------------------------------------------------------
    def registers(self) -> dict[str, int]:
        """Every register by name, for a state panel, read WITHOUT the guest's side effects.

        It catches up with the clock first (time passing is not a side effect of reading).
        THR is the last byte written; FCR is the model's copy of a write-only register.
        """
        self.catch_up()
        return {
            "RBR": self._rx[0] if self._rx else self._rbr,
            "THR": self._thr,
            "IER": self.ier,
            "IIR": self._interrupt_id() | self._fifo_bits(),
            "FCR": self.fcr,
            "LCR": self.lcr,
            "MCR": self.mcr,
            "LSR": self._lsr(),
            "MSR": self._msr(),
            "SCR": self.scr,
            "DLL": self.divisor & 0xFF,
            "DLM": self.divisor >> 8,
        }
