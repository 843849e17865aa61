"""The IDE controller model against hardware-facts.md §9 and QEMU hw/ide/core.c (commit 9740b907):
registers and bits, device select, status vs alternate status, nIEN and SRST, IDENTIFY, PIO reads
and writes in LBA28/LBA48/CHS, timing through a backend, errors, the state table, read-back."""

from __future__ import annotations

import pytest

from vmmlib.clock import Clock
from vmmlib.devices import ata
from vmmlib.devices import ide as ide_mod
from vmmlib.devices.disk import ImageFile, LocalDisk, NetworkStorage, RamDisk
from vmmlib.devices.ide import IdeController
from vmmlib.devices.readback import uart_readback_table
from vmmlib.devices.uart16550 import Uart16550
from vmmlib.errors import BadPortError, BadSizeError, ConfigError
from vmmlib.hw.bus import PortBus

DATA, ERR, NSECT, LBAL, LBAM, LBAH, DEV, STATUS = range(8)
CMD = STATUS


class Irq:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, level: bool) -> None:
        self.calls.append((self.clock.now, level))


def sector(n: int) -> bytes:
    return n.to_bytes(4, "little") * 128


def disk(sectors: int = 64) -> RamDisk:
    d = RamDisk(sectors)
    for n in range(min(sectors, 64)):
        d.write(n, sector(n))
    return d


def make(master=None, slave=None, **kw):
    clock = Clock()
    irq = Irq(clock)
    ide = IdeController(clock, master if master is not None else disk(), slave, on_irq=irq, **kw)
    return clock, ide, irq


def wr(ide, off, value, size=1):
    ide.command_block.write(off, size, value)


def rd(ide, off, size=1):
    return ide.command_block.read(off, size)


def task(ide, lba, count, cmd, dev=0, lba48=False):
    """The task-file writes every driver makes (LBA48: high-order bytes first)."""
    if lba48:
        wr(ide, NSECT, count >> 8 & 0xFF)
        wr(ide, LBAL, lba >> 24 & 0xFF)
        wr(ide, LBAM, lba >> 32 & 0xFF)
        wr(ide, LBAH, lba >> 40 & 0xFF)
        wr(ide, NSECT, count & 0xFF)
        wr(ide, LBAL, lba & 0xFF)
        wr(ide, LBAM, lba >> 8 & 0xFF)
        wr(ide, LBAH, lba >> 16 & 0xFF)
        wr(ide, DEV, 0x40 | dev << 4)
    else:
        wr(ide, NSECT, count & 0xFF)
        wr(ide, LBAL, lba & 0xFF)
        wr(ide, LBAM, lba >> 8 & 0xFF)
        wr(ide, LBAH, lba >> 16 & 0xFF)
        wr(ide, DEV, 0xE0 | dev << 4 | (lba >> 24 & 0x0F))
    wr(ide, CMD, cmd)


def read_block(ide, size=2) -> bytes:
    return b"".join(rd(ide, DATA, size).to_bytes(size, "little") for _ in range(512 // size))


def write_block(ide, data: bytes, size=2) -> None:
    for i in range(0, 512, size):
        wr(ide, DATA, int.from_bytes(data[i : i + size], "little"), size)


def settle(clock, ide):
    while (t := ide.next_event_time()) is not None:
        clock.advance_to(t)


def identify(ide) -> list[int]:
    wr(ide, CMD, ata.CMD_IDENTIFY)
    assert rd(ide, STATUS) & ata.ST_DRQ
    return [rd(ide, DATA, 2) for _ in range(256)]


# -- facts ----------------------------------------------------------------------------------
def test_ports_and_irqs():
    # §9.1/§12: primary 0x1F0-0x1F7 + 0x3F6, IRQ 14; secondary 0x170-0x177 + 0x376, IRQ 15
    assert ata.PRIMARY == (0x1F0, 0x3F6, 14) and ata.SECONDARY == (0x170, 0x376, 15)
    assert (ata.COMMAND_BLOCK_PORTS, ata.CONTROL_BLOCK_PORTS) == (8, 1)
    _, sec, _ = make(channel="secondary")
    assert (sec.cmd_base, sec.ctrl_base, sec.irq, sec.name) == (0x170, 0x376, 15, "IDE secondary")
    claims = make()[1].port_claims()
    assert [(b, n, name) for b, n, _, name in claims] == [
        (0x1F0, 8, "IDE primary"), (0x3F6, 1, "IDE primary ctl")]


@pytest.mark.parametrize("name, value", [
    # §9.1 status: BSY 0x80, DRDY 0x40, DF 0x20, DSC/SRV 0x10, DRQ 0x08, CORR 0x04, IDX 0x02,
    # ERR 0x01 (QEMU include/hw/ide/internal.h)
    ("ST_BSY", 0x80), ("ST_DRDY", 0x40), ("ST_DF", 0x20), ("ST_DSC", 0x10), ("ST_DRQ", 0x08),
    ("ST_CORR", 0x04), ("ST_IDX", 0x02), ("ST_ERR", 0x01),
    # error: AMNF, TK0NF, ABRT, MCR, IDNF, MC, UNC, BBK
    ("ER_AMNF", 0x01), ("ER_TK0NF", 0x02), ("ER_ABRT", 0x04), ("ER_MCR", 0x08),
    ("ER_IDNF", 0x10), ("ER_MC", 0x20), ("ER_UNC", 0x40), ("ER_BBK", 0x80),
    # device control: nIEN bit 1, SRST bit 2, HOB bit 7; device: LBA bit 6, DEV bit 4
    ("CTL_NIEN", 0x02), ("CTL_SRST", 0x04), ("CTL_HOB", 0x80), ("DEV_LBA", 0x40),
    ("DEV_DEV1", 0x10), ("DEV_OBSOLETE", 0xA0),
    # commands
    ("CMD_READ_SECTORS", 0x20), ("CMD_READ_SECTORS_EXT", 0x24), ("CMD_WRITE_SECTORS", 0x30),
    ("CMD_WRITE_SECTORS_EXT", 0x34), ("CMD_FLUSH_CACHE", 0xE7), ("CMD_FLUSH_CACHE_EXT", 0xEA),
    ("CMD_IDENTIFY", 0xEC), ("CMD_IDENTIFY_PACKET", 0xA1), ("CMD_PACKET", 0xA0),
    ("CMD_READ_DMA", 0xC8), ("CMD_WRITE_DMA", 0xCA), ("CMD_READ_MULTIPLE", 0xC4),
    ("SECTOR_SIZE", 512),
])
def test_bit_and_command_constants(name, value):
    assert getattr(ata, name) == value


def test_status_of_each_state():
    assert ata.STATE_STATUS == {"idle": 0x50, "busy": 0xC0, "drq_in": 0x58, "drq_out": 0x58,
                                "error": 0x41, "reset": 0x80}


# -- reset state and the task file ----------------------------------------------------------
def test_power_on_state_has_the_ata_signature():
    _, ide, irq = make()
    assert [rd(ide, r) for r in range(1, 8)] == [0x01, 0x01, 0x01, 0x00, 0x00, 0xA0, 0x50]
    assert ide.control_block.read(0, 1) == 0x50 and ide.state == "idle" and irq.calls == []


def test_task_file_reads_back_and_device_head_forces_bits_7_and_5():
    _, ide, _ = make()
    for off, v in [(NSECT, 0x12), (LBAL, 0x34), (LBAM, 0x56), (LBAH, 0x78)]:
        wr(ide, off, v)
        assert rd(ide, off) == v
    wr(ide, DEV, 0x4F)
    assert rd(ide, DEV) == 0xEF


def test_features_are_write_only_reads_give_error():
    _, ide, _ = make()
    wr(ide, ERR, 0x55)
    assert rd(ide, ERR) == 0x01 and ide.registers()["features"] == 0x55


def test_lba48_registers_hold_two_bytes_and_hob_reads_the_first():
    _, ide, _ = make()
    for off, (hi, lo) in {NSECT: (0x01, 0x02), LBAL: (0x03, 0x04), LBAM: (0x05, 0x06),
                          LBAH: (0x07, 0x08)}.items():
        wr(ide, off, hi)
        wr(ide, off, lo)
    assert [rd(ide, r) for r in (NSECT, LBAL, LBAM, LBAH)] == [0x02, 0x04, 0x06, 0x08]
    ide.control_block.write(0, 1, ata.CTL_HOB)
    assert [rd(ide, r) for r in (NSECT, LBAL, LBAM, LBAH)] == [0x01, 0x03, 0x05, 0x07]
    wr(ide, LBAL, 0x99)  # any command-block write clears HOB
    assert rd(ide, LBAH) == 0x08 and rd(ide, LBAL) == 0x99


# -- device select ----------------------------------------------------------------------------
def test_absent_slave_reads_zero_status_and_the_shared_task_file():
    _, ide, _ = make()
    wr(ide, DEV, 0xB0)
    wr(ide, NSECT, 0x55)
    wr(ide, LBAL, 0xAA)
    assert (rd(ide, STATUS), ide.control_block.read(0, 1), rd(ide, ERR)) == (0, 0, 0)
    assert (rd(ide, NSECT), rd(ide, LBAL), rd(ide, DEV)) == (0x55, 0xAA, 0xB0)
    wr(ide, CMD, ata.CMD_IDENTIFY)  # ignored: nobody is there
    assert rd(ide, STATUS) == 0 and ide.state == "absent" and rd(ide, DATA, 2) == 0
    wr(ide, DEV, 0xA0)
    assert rd(ide, STATUS) == 0x50 and rd(ide, NSECT) == 0x55  # the master latched it too


def test_present_slave_answers_with_its_own_disk():
    clock, ide, _ = make(disk(), RamDisk(8, data=b"slave"))
    task(ide, 0, 1, ata.CMD_READ_SECTORS, dev=1)
    assert read_block(ide)[:5] == b"slave"
    task(ide, 0, 1, ata.CMD_READ_SECTORS, dev=0)
    assert read_block(ide) == sector(0)


# -- status, interrupts, nIEN ---------------------------------------------------------------------
def test_status_read_acknowledges_alternate_status_does_not():
    clock, ide, irq = make()
    task(ide, 1, 1, ata.CMD_READ_SECTORS)
    assert irq.calls == [(0, True)] and ide.irq_level
    assert ide.control_block.read(0, 1) == 0x58 and ide.irq_level  # 0x3F6: no acknowledge
    assert rd(ide, STATUS) == 0x58 and not ide.irq_level  # 0x1F7: lowers the line
    assert irq.calls == [(0, True), (0, False)]


def test_nien_masks_the_line_while_the_interrupt_stays_pending():
    _, ide, irq = make()
    ide.control_block.write(0, 1, ata.CTL_NIEN)
    task(ide, 1, 1, ata.CMD_READ_SECTORS)
    assert not ide.irq_level and irq.calls == []
    ide.control_block.write(0, 1, 0)  # nIEN off: the pending interrupt shows
    assert irq.calls == [(0, True)]


def test_writing_a_command_clears_a_pending_interrupt():
    clock = Clock()
    ide = IdeController(clock, LocalDisk(disk(), sectors=64))
    wr(ide, CMD, 0xFF)  # unknown: aborted with an interrupt
    assert ide.irq_level
    task(ide, 1, 1, ata.CMD_READ_SECTORS)
    assert not ide.irq_level and rd(ide, STATUS) == 0xC0  # cleared; the disk is seeking
    settle(clock, ide)
    assert ide.irq_level


def test_deselected_device_does_not_drive_the_line():
    _, ide, _ = make(disk(), disk())
    task(ide, 1, 1, ata.CMD_READ_SECTORS, dev=0)
    assert ide.irq_level
    wr(ide, DEV, 0xF0)  # ignored: device 0 holds DRQ
    assert ide.irq_level
    read_block(ide)
    wr(ide, DEV, 0xF0)
    assert not ide.irq_level  # device 1 selected, device 0's interrupt is not on the wire
    wr(ide, DEV, 0xE0)
    assert ide.irq_level


# -- SRST ------------------------------------------------------------------------------------------
def test_srst_holds_bsy_then_the_signature_comes_back():
    clock, ide, irq = make()
    task(ide, 5, 1, ata.CMD_READ_SECTORS)
    assert irq.calls == [(0, True)]  # sector 5 is ready
    ide.control_block.write(0, 1, ata.CTL_SRST | ata.CTL_NIEN)
    assert rd(ide, STATUS) == 0x80 and ide.state == "reset"
    clock.advance(1_000_000)
    assert rd(ide, STATUS) == 0x80  # BSY as long as SRST is asserted
    ide.control_block.write(0, 1, ata.CTL_NIEN)
    assert rd(ide, STATUS) == 0x80
    assert ide.next_event_time() == clock.now + ide_mod.RESET_NS
    clock.advance(ide_mod.RESET_NS)
    assert [rd(ide, r) for r in range(1, 8)] == [0x01, 0x01, 0x01, 0x00, 0x00, 0xA0, 0x50]
    assert rd(ide, DATA, 2) == 0  # the read in progress was dropped
    assert irq.calls == [(0, True), (0, False)]  # SRST dropped it; no interrupt from a reset


def test_srst_selects_device_0_and_ignores_writes_while_busy():
    clock, ide, _ = make(disk(), disk())
    wr(ide, DEV, 0xB0)
    ide.control_block.write(0, 1, ata.CTL_SRST)
    wr(ide, NSECT, 0x77)  # ignored: BSY
    ide.control_block.write(0, 1, 0)
    clock.advance(ide_mod.RESET_NS)
    assert rd(ide, NSECT) == 1 and ide.unit == 0


# -- IDENTIFY --------------------------------------------------------------------------------------
def swap(words: list[int]) -> str:
    return b"".join(w.to_bytes(2, "big") for w in words).decode()


def test_identify_device_words():
    _, ide, _ = make(RamDisk(20_000))
    w = identify(ide)
    assert len(w) == 256 and rd(ide, STATUS) == 0x50  # 256 words, then DRQ drops
    assert w[0] == 0x0040  # QEMU: fixed disk
    assert swap(w[27:47]) == "VMMLIB HARDDISK".ljust(40)  # model, bytes of each word swapped
    assert w[27] == ord("V") << 8 | ord("M")
    assert swap(w[10:20]) == "VM00001".ljust(20) and swap(w[23:27]) == "1.0".ljust(8)
    assert w[49] & 1 << 9  # LBA supported
    assert w[48] == 1  # dword I/O
    assert w[60] | w[61] << 16 == 20_000  # LBA28 capacity
    assert w[83] & 1 << 10 and w[86] & 1 << 10  # LBA48 supported and enabled
    assert w[83] & 1 << 12 and w[83] & 1 << 13  # FLUSH CACHE and FLUSH CACHE EXT
    assert w[83] >> 14 == 1 and w[84] >> 14 == 1 and w[87] >> 14 == 1  # words valid
    assert sum(w[100 + i] << (16 * i) for i in range(4)) == 20_000  # LBA48 capacity
    assert (w[1], w[3], w[6]) == (19, 16, 63)  # CHS: 20000 // (16 * 63) cylinders
    assert w[93] == 0x6001  # hardware reset result, as QEMU


def test_identify_of_a_disk_beyond_lba28():
    big = 1 << 29  # 256 GiB, sparse
    w = identify(make(RamDisk(big))[1])
    assert w[60] | w[61] << 16 == (1 << 28) - 1  # saturated (QEMU ide_identify_size)
    assert sum(w[100 + i] << (16 * i) for i in range(4)) == big
    assert w[1] == 16383  # cylinders saturate too


def test_identify_reports_the_backend():
    w = identify(make(LocalDisk(sectors=100))[1])
    assert w[217] == 7200 and not w[85] & 1 << 5  # rotation rate; write-through
    w = identify(make(NetworkStorage(sectors=100))[1])
    assert w[217] == 0 and w[85] & 1 << 5 and w[82] & 1 << 5  # a write cache to flush


def test_identify_packet_on_an_ata_disk_aborts():
    _, ide, irq = make()
    wr(ide, CMD, ata.CMD_IDENTIFY_PACKET)
    assert rd(ide, STATUS) == 0x41 and rd(ide, ERR) == ata.ER_ABRT
    assert (rd(ide, LBAM), rd(ide, LBAH)) == (0x00, 0x00)  # the ATA signature stays
    assert irq.calls[0] == (0, True)


@pytest.mark.parametrize("code", [0x00, 0x08, 0x50, 0xC4, 0xC5, 0xC8, 0xCA, 0x25, 0x35, 0xA0,
                                  0xEF, 0xFF])
def test_commands_not_modelled_abort(code):
    _, ide, _ = make()
    wr(ide, CMD, code)
    assert (rd(ide, STATUS), rd(ide, ERR)) == (0x41, ata.ER_ABRT)
    task(ide, 2, 1, ata.CMD_READ_SECTORS)  # the error state accepts the next command
    assert read_block(ide) == sector(2) and rd(ide, ERR) == 0


# -- reading and writing -------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 4])
def test_read_sectors_16_and_32_bit(size):
    _, ide, _ = make()
    task(ide, 3, 1, ata.CMD_READ_SECTORS)
    if size == 1:  # a byte read consumes a whole word and returns its low byte (QEMU)
        got = bytes(rd(ide, DATA, 1) for _ in range(256))
        assert got == sector(3)[0::2]
    else:
        assert read_block(ide, size) == sector(3)
    assert rd(ide, STATUS) == 0x50


def test_multi_sector_read_has_bsy_between_sectors_and_an_irq_per_sector():
    clock = Clock()
    irq = Irq(clock)
    local = LocalDisk(disk(), sectors=64)
    ide = IdeController(clock, local, on_irq=irq)
    task(ide, 10, 3, ata.CMD_READ_SECTORS)
    first = ide.next_event_time()
    assert rd(ide, STATUS) == 0xC0 and first > clock.now  # BSY: the disk is seeking
    got = []
    for n in range(3):
        settle(clock, ide)
        assert rd(ide, STATUS) == 0x58  # DRQ, and this read acknowledged the interrupt
        got.append(read_block(ide, 4))
        if n < 2:
            assert rd(ide, STATUS) == 0xC0  # BSY while the next sector is fetched
    assert got == [sector(10), sector(11), sector(12)] and rd(ide, STATUS) == 0x50
    assert [lvl for _, lvl in irq.calls] == [True, False] * 3
    assert irq.calls[0][0] == first  # the interrupt came when the seek ended
    # the task file counted down to the next address
    assert (rd(ide, NSECT), rd(ide, LBAL)) == (0, 13)


def test_write_sectors_drq_per_sector_and_irq_after_each():
    clock, ide, irq = make()
    task(ide, 20, 2, ata.CMD_WRITE_SECTORS)
    assert rd(ide, STATUS) == 0x58 and irq.calls == []  # DRQ at once, no interrupt yet
    write_block(ide, sector(200), 4)
    assert rd(ide, STATUS) == 0x58  # stored (no latency), DRQ for the next
    write_block(ide, sector(201), 2)
    assert rd(ide, STATUS) == 0x50
    assert [lvl for _, lvl in irq.calls] == [True, False, True, False]
    assert ide.drives[0].backend.read(20, 2)[0] == sector(200) + sector(201)


def test_write_waits_for_the_backend():
    clock = Clock()
    net = NetworkStorage(sectors=8)
    ide = IdeController(clock, net)
    task(ide, 1, 1, ata.CMD_WRITE_SECTORS)
    write_block(ide, sector(9))
    assert rd(ide, STATUS) == 0xC0
    assert ide.next_event_time() - clock.now == net.rtt_ns + -(-512 * 10**9 // net.bandwidth)
    settle(clock, ide)
    assert rd(ide, STATUS) == 0x50


def test_count_zero_means_256_and_lba48_count_zero_means_65536():
    _, ide, _ = make(RamDisk(1 << 20))
    task(ide, 0, 0, ata.CMD_READ_SECTORS)
    read_block(ide)
    assert ide.drives[0].remaining == 255 and rd(ide, NSECT) == 0xFF
    ide.control_block.write(0, 1, ata.CTL_SRST)  # abandon it
    ide.control_block.write(0, 1, 0)
    ide.clock.advance(ide_mod.RESET_NS)
    task(ide, 0, 0, ata.CMD_READ_SECTORS_EXT, lba48=True)
    read_block(ide)
    assert ide.drives[0].remaining == 65535
    ide.control_block.write(0, 1, ata.CTL_HOB)
    assert (rd(ide, NSECT), ide.command_block.read(NSECT, 1)) == (0xFF, 0xFF)


def test_lba48_read_above_lba28():
    big = RamDisk(1 << 30)
    lba = (1 << 28) + 12345
    big.write(lba, sector(lba))
    _, ide, _ = make(big)
    task(ide, lba, 1, ata.CMD_READ_SECTORS_EXT, lba48=True)
    assert read_block(ide) == sector(lba)
    task(ide, lba + 1, 1, ata.CMD_WRITE_SECTORS_EXT, lba48=True)
    write_block(ide, sector(7))
    assert big.read(lba + 1, 1)[0] == sector(7)


def test_chs_addressing():
    _, ide, _ = make(RamDisk(20_000))
    ide.drives[0].backend.write(16 * 63 + 5, sector(99))  # cylinder 1, head 0, sector 6
    wr(ide, NSECT, 1)
    wr(ide, LBAL, 6)  # sector number (1-based)
    wr(ide, LBAM, 1)  # cylinder low
    wr(ide, LBAH, 0)
    wr(ide, DEV, 0xA0)  # LBA bit clear: CHS
    wr(ide, CMD, ata.CMD_READ_SECTORS)
    assert read_block(ide) == sector(99)
    wr(ide, LBAL, 0)  # sector 0 does not exist in CHS
    wr(ide, CMD, ata.CMD_READ_SECTORS)
    assert (rd(ide, STATUS), rd(ide, ERR)) == (0x41, ata.ER_IDNF)


# -- errors ----------------------------------------------------------------------------------------
def test_read_beyond_the_disk_is_idnf():
    _, ide, irq = make(disk(64))
    task(ide, 64, 1, ata.CMD_READ_SECTORS)
    assert (rd(ide, STATUS), rd(ide, ERR)) == (0x41, ata.ER_IDNF)
    assert irq.calls[0] == (0, True)


def test_read_across_the_end_transfers_then_idnf():
    _, ide, _ = make(disk(64))
    task(ide, 63, 2, ata.CMD_READ_SECTORS)
    assert read_block(ide) == sector(63)
    assert (rd(ide, STATUS), rd(ide, ERR)) == (0x41, ata.ER_IDNF)


def test_write_beyond_the_disk_is_idnf_and_writes_nothing():
    _, ide, _ = make(disk(64))
    task(ide, 70, 1, ata.CMD_WRITE_SECTORS)
    write_block(ide, sector(1))
    assert (rd(ide, STATUS), rd(ide, ERR)) == (0x41, ata.ER_IDNF)


def test_data_port_without_drq_reads_zero_and_swallows_writes():
    _, ide, _ = make()
    assert rd(ide, DATA, 2) == 0 and rd(ide, DATA, 4) == 0
    wr(ide, DATA, 0x1234, 2)
    task(ide, 4, 1, ata.CMD_WRITE_SECTORS)
    assert rd(ide, DATA, 2) == 0  # wrong direction: 0, no data consumed
    wr(ide, DATA, 0xAB, 1)  # a byte write is ignored
    write_block(ide, sector(44))
    assert ide.drives[0].backend.read(4, 1)[0] == sector(44)


def test_busy_device_ignores_commands_and_task_file_writes():
    clock = Clock()
    ide = IdeController(clock, LocalDisk(disk(), sectors=64))
    task(ide, 1, 1, ata.CMD_READ_SECTORS)
    assert rd(ide, STATUS) == 0xC0
    wr(ide, LBAL, 0x42)
    wr(ide, CMD, ata.CMD_IDENTIFY)
    settle(clock, ide)
    assert read_block(ide) == sector(1)  # the read, not IDENTIFY
    assert rd(ide, LBAL) == 2  # the next LBA, not 0x42


class FailingDisk(RamDisk):
    def _load(self, lba, count):
        raise OSError(5, "Input/output error")

    def _store(self, lba, data):
        raise OSError(28, "No space left on device")

    def _sync(self):
        raise OSError(5, "Input/output error")


@pytest.mark.parametrize("cmd, error", [(ata.CMD_READ_SECTORS, ata.ER_UNC),
                                        (ata.CMD_WRITE_SECTORS, ata.ER_ABRT),
                                        (ata.CMD_FLUSH_CACHE, ata.ER_ABRT)])
def test_a_failing_host_gives_a_media_error(cmd, error):
    _, ide, _ = make(FailingDisk(8))
    task(ide, 1, 1, cmd)
    if cmd == ata.CMD_WRITE_SECTORS:
        write_block(ide, sector(1))
    assert (rd(ide, STATUS), rd(ide, ERR)) == (0x41, error)


@pytest.mark.parametrize("size", [0, 3, 8, -1])
def test_bad_sizes(size):
    _, ide, _ = make()
    with pytest.raises(BadSizeError):
        rd(ide, STATUS, size)
    with pytest.raises(BadSizeError):
        ide.control_block.write(0, size, 0)


@pytest.mark.parametrize("offset, size", [(8, 1), (7, 2), (5, 4), (-1, 1)])
def test_bad_offsets(offset, size):
    _, ide, _ = make()
    with pytest.raises(BadPortError):
        rd(ide, offset, size)
    with pytest.raises(BadPortError):
        ide.control_block.read(1, 1)


def test_bad_configuration():
    with pytest.raises(ConfigError):
        IdeController(Clock(), None)
    with pytest.raises(ConfigError):
        IdeController(Clock(), disk(), slave="disk.img")
    with pytest.raises(ConfigError):
        IdeController(Clock(), disk(), channel="tertiary")


def test_wide_accesses_on_the_bus_never_raise():
    _, ide, _ = make()
    bus = PortBus()
    for base, n, dev, name in ide.port_claims():
        bus.claim(base, n, dev, name)
    assert bus.read(0x3F6, 2) == 0xFF50  # 0x3F7 is not ours: it floats
    bus.write(0x1F6, 2, 0xECE0)  # outw: device/head, then the command
    assert bus.read(0x1F7, 1) == 0x58
    assert bus.read(0x1F2, 4) == 0x00000101  # four byte registers at once: count 1, LBA 1


# -- time, the backend hook ----------------------------------------------------------------------
def test_backend_accesses_are_reported(tmp_path):
    events = []
    clock = Clock()
    image = ImageFile.create(tmp_path / "disk.img", 16)
    ide = IdeController(clock, LocalDisk(image), on_backend=events.append)
    task(ide, 3, 2, ata.CMD_READ_SECTORS)
    settle(clock, ide)
    read_block(ide)
    settle(clock, ide)
    read_block(ide)
    wr(ide, CMD, ata.CMD_FLUSH_CACHE)
    settle(clock, ide)
    assert [(e["op"], e["lba"], e["count"], e["device"], e["backend"]) for e in events] == [
        ("read", 3, 1, 0, "local disk"), ("read", 4, 1, 0, "local disk"),
        ("flush", 0, 0, 0, "local disk")]
    assert events[1]["latency_ns"] < events[0]["latency_ns"]  # sequential: no seek
    assert ide.last_backend_access == events[-1] and rd(ide, STATUS) == 0x50


def test_flush_cache_syncs_the_image_file(tmp_path, monkeypatch):
    import os

    synced = []
    monkeypatch.setattr(os, "fsync", synced.append)
    clock = Clock()
    ide = IdeController(clock, ImageFile.create(tmp_path / "d.img", 8))
    for code in (ata.CMD_FLUSH_CACHE, ata.CMD_FLUSH_CACHE_EXT):
        wr(ide, CMD, code)
        assert rd(ide, STATUS) == 0xC0  # BSY while fsync's write-back takes its time
        settle(clock, ide)
        assert rd(ide, STATUS) == 0x50
    assert len(synced) == 2


def test_deterministic_history():
    def run():
        clock = Clock()
        ide = IdeController(clock, LocalDisk(disk(), sectors=64))
        for lba in (5, 40, 41):
            task(ide, lba, 2, ata.CMD_READ_SECTORS)
            for _ in range(2):
                settle(clock, ide)
                read_block(ide)
        return list(ide.history), clock.now

    assert run() == run()


def test_registers_view_has_no_side_effects():
    _, ide, _ = make()
    task(ide, 7, 1, ata.CMD_READ_SECTORS)
    first = ide.registers()
    assert first == ide.registers() and ide.irq_level
    assert first["status"] == 0x58 and first["data"] == 7 and first["command"] == 0x20
    assert read_block(ide) == sector(7)  # nothing was consumed


def test_repr_has_no_address():
    _, ide, _ = make()
    assert repr(ide) == "IdeController('IDE primary')"
    assert repr(ide.command_block) == "CommandBlock('IDE primary')"
    assert repr(ide.control_block) == "ControlBlock('IDE primary')"


# -- the transition table -------------------------------------------------------------------------
def test_the_table_is_well_formed():
    table = IdeController.TRANSITIONS
    assert {t.state for t in table} | {t.next for t in table} <= set(ata.STATES)
    assert len({(t.state, t.event) for t in table}) == len(table)  # deterministic
    assert all(t.action for t in table)


def walk_every_path() -> set[tuple[str, str, str]]:
    """Drive the model through every kind of command, success and failure."""
    seen = set()

    def note(ide):
        seen.update((s, e, n) for _, _, s, e, n in ide.history)

    for state_first in ("idle", "error"):
        clock = Clock()
        ide = IdeController(clock, LocalDisk(disk(), sectors=64))
        if state_first == "error":
            wr(ide, CMD, 0xFF)
        task(ide, 1, 2, ata.CMD_READ_SECTORS)
        for _ in range(2):
            settle(clock, ide)
            read_block(ide)
        wr(ide, CMD, 0xFF)  # idle -> error
        task(ide, 1, 2, ata.CMD_WRITE_SECTORS)  # error -> drq_out
        for _ in range(2):
            write_block(ide, sector(3))
            settle(clock, ide)
        wr(ide, CMD, 0xFF)
        wr(ide, CMD, ata.CMD_FLUSH_CACHE)  # error -> busy
        settle(clock, ide)
        wr(ide, CMD, ata.CMD_FLUSH_CACHE)  # idle -> busy
        settle(clock, ide)
        wr(ide, CMD, 0xFF)
        wr(ide, CMD, 0xFF)  # error -> error
        task(ide, 70, 1, ata.CMD_READ_SECTORS)  # not found
        task(ide, 1, 1, ata.CMD_WRITE_SECTORS)
        if state_first == "idle":
            ide.control_block.write(0, 1, ata.CTL_SRST)  # drq_out -> reset
        note(ide)
    for setup in ("idle", "busy", "drq_in", "error"):
        clock = Clock()
        ide = IdeController(clock, LocalDisk(disk(), sectors=64) if setup == "busy" else disk())
        if setup in ("busy", "drq_in"):
            task(ide, 1, 1, ata.CMD_READ_SECTORS)
        elif setup == "error":
            wr(ide, CMD, 0xFF)
        ide.control_block.write(0, 1, ata.CTL_SRST)
        ide.control_block.write(0, 1, 0)
        ide.control_block.write(0, 1, ata.CTL_SRST)  # again before the reset is done
        ide.control_block.write(0, 1, 0)
        settle(clock, ide)
        note(ide)
    for cmd in (ata.CMD_READ_SECTORS, ata.CMD_WRITE_SECTORS):
        _, ide, _ = make(FailingDisk(8))
        task(ide, 1, 1, cmd)
        if cmd == ata.CMD_WRITE_SECTORS:
            write_block(ide, sector(1))
        note(ide)
    _, ide, _ = make()
    identify(ide)
    note(ide)
    return seen


def test_every_transition_made_is_in_the_table_and_every_entry_is_reached():
    table = {(t.state, t.event, t.next) for t in IdeController.TRANSITIONS}
    seen = walk_every_path()
    assert seen <= table
    assert table - seen == set()


def test_an_edge_missing_from_the_table_is_a_model_error(monkeypatch):
    _, ide, _ = make()
    monkeypatch.setattr(ide_mod, "NEXT_STATE", {})
    with pytest.raises(AssertionError, match="no transition"):
        task(ide, 1, 1, ata.CMD_READ_SECTORS)


# -- the read-back problem ---------------------------------------------------------------------
def test_a_read_at_the_command_register_gives_the_status():
    _, ide, _ = make()
    wr(ide, CMD, ata.CMD_IDENTIFY)
    assert rd(ide, CMD) == 0x58 != 0xEC  # you cannot read back the command you wrote
    rows = {row.port: row for row in ide.readback_table() if row.port is not None}
    assert rows[0x1F7].written == 0xEC and rows[0x1F7].read_value == 0x58
    assert not rows[0x1F7].readable and "command" in rows[0x1F7].shadow
    ide.control_block.write(0, 1, ata.CTL_NIEN)
    rows = {row.port: row for row in ide.readback_table() if row.port is not None}
    assert rows[0x3F6].written == 0x02 and rows[0x3F6].read_value == 0x58
    assert [p for p, r in rows.items() if not r.readable] == [0x1F0, 0x1F1, 0x1F7, 0x3F6]
    assert all(r.shadow for r in rows.values() if not r.readable)


def test_uart_readback_table():
    uart = Uart16550(Clock())
    uart.write(2, 1, 0xC7)  # FCR: FIFOs on, trigger 14
    uart.write(3, 1, 0x03)
    uart.write(0, 1, ord("A"))
    rows = uart_readback_table(uart)
    fcr = next(r for r in rows if r.write == "FCR")
    assert (fcr.port, fcr.read_value, fcr.written, fcr.readable) == (0x3FA, 0xC1, 0xC1, False)
    thr = rows[0]
    assert thr.written == ord("A") and not thr.readable
    lcr = next(r for r in rows if r.read == "LCR")
    assert lcr.readable and lcr.read_value == lcr.written == 0x03
    assert uart.read(2, 1) & 0xC0 == 0xC0  # the table did not disturb the UART


# -- a REP INSW's worth at once ---------------------------------------------------------------
@pytest.mark.parametrize("size", [2, 4])
@pytest.mark.parametrize("first, count", [(0, 256), (3, 256), (0, 300), (100, 700), (0, 1000),
                                          (255, 2), (0, 0)])
def test_a_string_read_is_exactly_that_many_reads(size, first, count):
    """Bus.read_string and the IDE data port's bulk path give what the loop of reads gives:
    the same bytes, the same drive state, interrupts and history, across sector ends, the end
    of the command and past it."""
    runs = []
    for bulk in (False, True):
        clock, ide, irq = make()
        bus = PortBus()
        bus.claim(0x1F0, 8, ide.command_block, "ide")
        task(ide, 5, 3, ata.CMD_READ_SECTORS)
        settle(clock, ide)
        head = [rd(ide, DATA, size) for _ in range(first)]
        if bulk:
            data = bus.read_string(0x1F0, size, count)
        else:
            data = b"".join(bus.read(0x1F0, size).to_bytes(size, "little") for _ in range(count))
        settle(clock, ide)
        runs.append((head, data, rd(ide, STATUS), irq.calls, ide.history, clock.now))
    assert runs[0] == runs[1]
    assert len(runs[1][1]) == count * size


def test_a_string_read_of_a_device_without_a_bulk_path_reads_each_element():
    bus = PortBus()
    uart = Uart16550(Clock())
    bus.claim(0x3F8, 8, uart, "COM1")
    assert bus.read_string(0x3FD, 1, 3) == bytes([uart.read(5, 1)]) * 3  # LSR, three times
    assert bus.read_string(0x2000, 2, 2) == b"\xff" * 4  # nobody answers: all ones
    with pytest.raises(ConfigError):
        bus.read_string(0x3F8, 1, -1)
    with pytest.raises(BadSizeError):
        bus.read_string(0x3F8, 3, 1)
