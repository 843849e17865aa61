"""Real IDE drivers against the model, unchanged: xv6's ide.c and bootmain.c, SeaBIOS's ata.c,
each described as a port sequence in our own words (data, below) and replayed, every read
checked against what the driver needs to take its success path. Then the course's own guest
driver (vmmlib.guest.ide) in every transfer style, on the bench and on an HVM domain.

Sources, read with the search tools:
* mit-pdos/xv6-public ide.c at commit 4f14d8d1 (idewait, ideinit, idestart, ideintr) and
  bootmain.c at commit 7894fcd2 (waitdisk, readsect, readseg); repository HEAD eeb7b415.
* coreboot/seabios src/hw/ata.c and ata.h at commit c9ba5276 (await_ide, ata_reset,
  send_cmd, ata_wait_data, ata_pio_transfer, ata_pio_cmd_data, ata_readwrite,
  send_ata_identity, init_drive_atapi, init_drive_ata, powerup_await_non_bsy, ata_detect);
  ports PORT_ATA1_CMD_BASE 0x1F0, PORT_ATA1_CTRL_BASE 0x3F4 with ASTAT/DC at +2 = 0x3F6,
  ATA_CB_DC_HD15 0x08, ATA_CB_DH_DEV0/1 0xA0/0xB0; CONFIG_ATA_PIO32 off: insw/outsw.
"""

from __future__ import annotations

import pytest
from bench import Bench, replay

from vmmlib import MIB, Machine, Vcpu
from vmmlib.devices import ata
from vmmlib.devices.disk import ImageFile, LocalDisk, NetworkStorage, RamDisk
from vmmlib.devices.ide import IdeController
from vmmlib.guest import ide as g
from vmmlib.hw.bus import PortBus

BASE, CTRL = 0x1F0, 0x3F6
STATUS, DH = BASE + 7, BASE + 6
BSY, DRDY, DF, DRQ, ERR = 0x80, 0x40, 0x20, 0x08, 0x01


def sector(n: int) -> bytes:
    return n.to_bytes(4, "little") * 128


def disk(sectors: int = 4096) -> RamDisk:
    d = RamDisk(sectors)
    for n in range(64):
        d.write(n, sector(n))
    return d


def bench_with(master, slave=None, channel="primary") -> tuple[Bench, IdeController]:
    b = Bench()
    ide = IdeController(b.clock, master, slave, channel=channel, on_irq=b.irq_recorder("ide"))
    for base, n, dev, name in ide.port_claims():
        b.add_ports(base, n, dev, name)
    b.add_timed(ide)
    return b, ide


# ================================================================================================
# xv6 ide.c, interrupt-driven (mit-pdos/xv6-public ide.c @ 4f14d8d1)
# ================================================================================================
def xv6_idewait(checkerr=False):
    """idewait: spin on 0x1F7 until BSY clear and DRDY set; with checkerr, DF|ERR must be 0."""
    return [("poll", STATUS, BSY | DRDY, DRDY)] + (
        [("in", STATUS, 1, DF | ERR, 0)] if checkerr else [])


def xv6_ideinit(disk1_present: bool):
    """ideinit after the interrupt set-up: idewait(0); select disk 1 (0xE0 | 1 << 4); poll its
    status up to 1000 times for a non-zero value (havedisk1); select disk 0 again."""
    return [*xv6_idewait(), ("out", DH, 1, 0xF0), ("until_nonzero", STATUS, 1000, disk1_present),
            ("out", DH, 1, 0xE0)]


def xv6_idestart(sector_no: int, dev: int, write_data: bytes | None):
    """idestart for one 512-byte block (BSIZE 512: one sector, READ/WRITE not MULTIPLE):
    idewait(0); 0 to 0x3F6 ("generate interrupt"); count 1; LBA bytes; 0xE0 | dev << 4 | LBA
    27:24; then 0x30 and 128 outsl of the block, or 0x20."""
    steps = [*xv6_idewait(), ("out", CTRL, 1, 0), ("out", BASE + 2, 1, 1),
             ("out", BASE + 3, 1, sector_no & 0xFF), ("out", BASE + 4, 1, sector_no >> 8 & 0xFF),
             ("out", BASE + 5, 1, sector_no >> 16 & 0xFF),
             ("out", DH, 1, 0xE0 | (dev & 1) << 4 | (sector_no >> 24 & 0x0F))]
    if write_data is None:
        return steps + [("out", STATUS, 1, 0x20)]
    return steps + [("out", STATUS, 1, 0x30), ("outs", BASE, 4, write_data)]


def xv6_ideintr(read: bool):
    """ideintr for the request at the head of the queue: for a read, idewait(1) then 128 insl;
    a write reads nothing."""
    return [*xv6_idewait(checkerr=True), ("ins", BASE, 4, 128)] if read else []


def run_xv6(b, ide, steps):
    return replay(b, steps, irq=ide)


def test_xv6_ideinit_finds_no_disk_1():
    b, ide = bench_with(disk())
    run_xv6(b, ide, xv6_ideinit(disk1_present=False))
    assert ide.unit == 0


def test_xv6_ideinit_finds_disk_1():
    b, ide = bench_with(disk(), disk(64))
    run_xv6(b, ide, xv6_ideinit(disk1_present=True))


@pytest.mark.parametrize("backend", ["memory", "local", "network"])
def test_xv6_iderw_read_then_write_interrupt_driven(backend, tmp_path):
    image = disk()
    master = {"memory": image, "local": LocalDisk(image), "network": NetworkStorage(image)}[backend]
    b, ide = bench_with(master)
    run_xv6(b, ide, xv6_ideinit(False))
    # iderw(read block 7): idestart; the process sleeps until IRQ 14; ideintr reads the data
    run_xv6(b, ide, xv6_idestart(7, 0, None) + [("wait_irq",)] + xv6_ideintr(read=True))
    assert bytes(b.data) == sector(7)
    assert not ide.irq_level  # idewait's status read acknowledged it
    # iderw(write block 9): the block goes out right after the command, then the interrupt
    block = bytes(range(256)) * 2
    run_xv6(b, ide, xv6_idestart(9, 0, block) + [("wait_irq",)] + xv6_ideintr(read=False))
    assert image.read(9, 1)[0] == block
    assert ide.irq_level  # xv6's ideintr does not read the status after a write ...
    run_xv6(b, ide, xv6_idewait())  # ... the next idestart's idewait acknowledges it
    assert not ide.irq_level
    lines = b.irq_lines["ide"]
    assert [lvl for _, lvl in lines] == [True, False, True, False]
    if backend != "memory":  # the interrupt came when the backend was done, not before
        assert lines[0][0] >= ide.history[1][0] > 0


def test_xv6_reads_from_disk_1():
    b, ide = bench_with(disk(), RamDisk(8, data=sector(1000) * 8))
    run_xv6(b, ide, xv6_ideinit(True) + xv6_idestart(3, 1, None) + [("wait_irq",)]
            + xv6_ideintr(read=True))
    assert bytes(b.data) == sector(1000)


# ================================================================================================
# xv6 bootmain.c, polling (mit-pdos/xv6-public bootmain.c @ 7894fcd2)
# ================================================================================================
def xv6_waitdisk():
    """waitdisk: spin until (status & 0xC0) == 0x40."""
    return [("poll", STATUS, 0xC0, 0x40)]


def xv6_readsect(offset: int):
    """readsect: waitdisk; count 1; the offset's bytes (outb keeps the low 8 bits); offset >> 24
    | 0xE0; command 0x20; waitdisk; 128 insl into the destination."""
    return [*xv6_waitdisk(), ("out", BASE + 2, 1, 1), ("out", BASE + 3, 1, offset & 0xFF),
            ("out", BASE + 4, 1, offset >> 8 & 0xFF), ("out", BASE + 5, 1, offset >> 16 & 0xFF),
            ("out", DH, 1, (offset >> 24 | 0xE0) & 0xFF), ("out", STATUS, 1, 0x20),
            *xv6_waitdisk(), ("ins", BASE, 4, 128)]


def xv6_readseg(count: int, offset: int):
    """readseg: round down to a sector, the kernel starts at sector 1, one readsect per sector."""
    first = offset // 512 + 1
    n = -(-(count + offset % 512) // 512)
    return [step for s in range(first, first + n) for step in xv6_readsect(s)]


@pytest.mark.parametrize("backend", ["memory", "local"])
def test_xv6_boot_loader_reads_the_first_8_kib_of_the_kernel(backend):
    image = disk()
    b, ide = bench_with(image if backend == "memory" else LocalDisk(image))
    ide.control_block.write(0, 1, ata.CTL_NIEN)  # the boot loader runs with interrupts off
    replay(b, xv6_readseg(8192, 0))  # bootmain: readseg(x, 8192, 0)
    assert bytes(b.data) == b"".join(sector(n) for n in range(1, 17))


# ================================================================================================
# SeaBIOS src/hw/ata.c (coreboot/seabios @ c9ba5276)
# ================================================================================================
HD15, NIEN, SRST = 0x08, 0x02, 0x04
ANY = (0, 0)  # a read whose value the driver does not look at


def sb_await_not_bsy():
    """await_not_bsy: read 0x1F7 until BSY is clear."""
    return [("poll", STATUS, BSY, 0)]


def sb_pause_await_not_bsy():
    """pause_await_not_bsy: one read of the alternate status (a PIO cycle of delay), then
    await_not_bsy."""
    return [("in", CTRL, 1, *ANY), *sb_await_not_bsy()]


def sb_powerup_await_non_bsy():
    """powerup_await_non_bsy: read status until BSY is clear (a status of 0xFF with BSY means
    a floating bus, which the caller then catches with the register test)."""
    return [("poll", STATUS, BSY, 0)]


def sb_ata_reset(slave: int):
    """ata_reset: SRST pulse with HD15|nIEN (5 us), HD15|nIEN, msleep(2), await_not_bsy; for
    device 0, select it again ("QEMU doesn't reset dh"); then HD15 (interrupts on)."""
    assert slave == 0
    return [("out", CTRL, 1, HD15 | NIEN | SRST), ("delay", 5_000), ("out", CTRL, 1, HD15 | NIEN),
            ("delay", 2_000_000), *sb_await_not_bsy(), ("out", DH, 1, 0xA0),
            ("out", CTRL, 1, HD15)]


def sb_send_cmd(slave, device, command, count=0, lba=0, ext=None, old_slave=None):
    """send_cmd: await_not_bsy; read device/head (the old selection); write the new one
    (device & ~DEV1 | DEV0/DEV1); if the drive changed, await_not_bsy after 400 ns; for the
    *_EXT commands first the high-order features, count and LBA bytes; then features, count,
    LBA low/mid/high and the command."""
    new = (device & ~0xB0) | (0xB0 if slave else 0xA0)
    old = slave if old_slave is None else old_slave
    steps = [*sb_await_not_bsy(), ("in", DH, 1, 0x10, old << 4), ("out", DH, 1, new)]
    if old != slave:
        steps += sb_await_not_bsy()
    if ext is not None:
        high = zip((2, 3, 4, 5), ext, strict=True)
        steps += [("out", BASE + 1, 1, 0)] + [("out", BASE + r, 1, v) for r, v in high]
    steps += [("out", BASE + 1, 1, 0), ("out", BASE + 2, 1, count & 0xFF),
              ("out", BASE + 3, 1, lba & 0xFF), ("out", BASE + 4, 1, lba >> 8 & 0xFF),
              ("out", BASE + 5, 1, lba >> 16 & 0xFF), ("out", STATUS, 1, command)]
    return steps


def sb_ata_wait_data(expect_ok=True):
    """ata_wait_data: await_not_bsy after 400 ns; success needs ERR clear and DRQ set."""
    if expect_ok:
        return [("poll", STATUS, BSY | ERR | DRQ, DRQ)]
    return [("poll", STATUS, BSY, 0)]


def sb_pio_transfer(count: int, write_data: bytes | None):
    """ata_pio_transfer: per sector 256 insw (or outsw of the buffer), pause_await_not_bsy;
    between sectors the status must be exactly DRQ under BSY|DRQ|ERR; after the last one
    BSY|DRQ|ERR (and DF for a write) must be clear."""
    steps = []
    for i in range(count):
        if write_data is None:
            steps.append(("ins", BASE, 2, 256))
        else:
            steps.append(("outs", BASE, 2, write_data[i * 512 : (i + 1) * 512]))
        steps += sb_pause_await_not_bsy()
        final_mask = BSY | DRQ | ERR | (DF if write_data is not None else 0)
        if i < count - 1:
            steps.append(("in", STATUS, 1, BSY | DRQ | ERR, DRQ))
        else:
            steps.append(("in", STATUS, 1, final_mask, 0))
    return steps


def sb_pio_cmd_data(slave, device, command, count, lba=0, ext=None, write_data=None,
                    old_slave=None):
    """ata_pio_cmd_data: interrupts off (HD15|nIEN), send_cmd, ata_wait_data, the transfer,
    interrupts on (HD15)."""
    return [("out", CTRL, 1, HD15 | NIEN),
            *sb_send_cmd(slave, device, command, count, lba, ext, old_slave),
            *sb_ata_wait_data(), *sb_pio_transfer(count, write_data), ("out", CTRL, 1, HD15)]


def sb_identity_fails(slave, command):
    """send_ata_identity that does not succeed: ata_wait_data sees ERR (an ATA disk aborting
    IDENTIFY PACKET DEVICE) or no DRQ (nobody there); interrupts back on."""
    return [("out", CTRL, 1, HD15 | NIEN), *sb_send_cmd(slave, 0, command),
            *sb_ata_wait_data(expect_ok=False), ("out", CTRL, 1, HD15)]


def sb_detect(slave: int, present: bool, reset: bool):
    """ata_detect for one device: wait for power-up; select it (0xA0/0xB0); wait; the register
    test (device/head reads back, 0x55/0xAA written to count/LBA low read back); the channel
    reset (once); IDENTIFY PACKET DEVICE (0xA1) fails; the status must then be non-zero (a
    device is there); wait for DRDY; IDENTIFY DEVICE (0xEC), 256 words."""
    dh = 0xB0 if slave else 0xA0
    steps = [*sb_powerup_await_non_bsy(), ("out", DH, 1, dh), *sb_powerup_await_non_bsy(),
             ("out", DH, 1, dh), ("in", DH, 1, 0xFF, dh), ("out", BASE + 2, 1, 0x55),
             ("out", BASE + 3, 1, 0xAA), ("in", BASE + 2, 1, 0xFF, 0x55),
             ("in", BASE + 3, 1, 0xFF, 0xAA)]
    if reset:
        steps += sb_ata_reset(slave)
    steps += sb_identity_fails(slave, 0xA1)
    if not present:
        return steps + [("in", STATUS, 1, 0xFF, 0)]  # "Status not set - can't be a valid drive"
    return steps + [("in", STATUS, 1, DRDY, DRDY), ("poll", STATUS, DRDY, DRDY),
                    *sb_pio_cmd_data(slave, 0, 0xEC, 1)]


def identify_words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, 512, 2)]


def check_seabios_identify(words: list[int], sectors: int) -> None:
    """What init_drive_ata takes from the page: word 83 bit 10 -> sectors from words 100-103
    (else 60-61); the model from words 27-46 byte-swapped; the version from word 80; and word
    93 must not look like "device 0 answering for device 1" ((w & 0xDF61) == 0x4041)."""
    assert words[83] & 1 << 10
    assert sum(words[100 + i] << (16 * i) for i in range(4)) == sectors
    model = b"".join(w.to_bytes(2, "big") for w in words[27:47]).decode().rstrip()
    assert model == "VMMLIB HARDDISK"
    assert max(v for v in range(16) if words[80] & 1 << v) >= 6
    assert words[93] & 0xDF61 != 0x4041  # so SeaBIOS goes on to probe device 1


def test_seabios_detects_the_master_and_no_slave():
    b, ide = bench_with(disk())
    replay(b, sb_detect(0, present=True, reset=True), irq=ide)
    check_seabios_identify(identify_words(bytes(b.data)), 4096)
    replay(b, sb_detect(1, present=False, reset=False), irq=ide)
    assert not ide.irq_level


def test_seabios_detects_master_and_slave():
    b, ide = bench_with(disk(), disk(128))
    replay(b, sb_detect(0, present=True, reset=True))
    b.data.clear()
    replay(b, sb_detect(1, present=True, reset=False))
    check_seabios_identify(identify_words(bytes(b.data)), 128)


def test_seabios_finds_nothing_on_an_unclaimed_channel():
    # the secondary channel with no controller behind it: the bus floats (0xFF). The power-up
    # wait gives up on the "floating" status; the register test then fails (count reads 0xFF).
    b = Bench()
    assert b.ports.read(0x177, 1) == 0xFF  # BSY "set", orstatus == 0xFF: floating
    reads = replay(b, [("out", 0x176, 1, 0xA0), ("out", 0x176, 1, 0xA0),
                       ("in", 0x176, 1, 0xFF, 0xFF), ("out", 0x172, 1, 0x55),
                       ("in", 0x172, 1, 0xFF, 0xFF)])
    assert reads[-1] != 0x55


def sb_readwrite(lba: int, count: int, write_data: bytes | None, old_slave=0):
    """ata_readwrite without a bus master (ata_try_dma fails, so PIO): LBA48 if count >= 256
    or lba + count >= 2**28, with the high bytes count >> 8, lba >> 24, >> 32, >> 40 and lba
    cut to 24 bits; device = LBA 27:24 | LBA bit; READ/WRITE SECTORS (EXT)."""
    ext = None
    if count >= 256 or lba + count >= 1 << 28:
        ext = (count >> 8 & 0xFF, lba >> 24 & 0xFF, lba >> 32 & 0xFF, lba >> 40 & 0xFF)
        lba &= 0xFFFFFF
        command = 0x34 if write_data is not None else 0x24
    else:
        command = 0x30 if write_data is not None else 0x20
    device = (lba >> 24 & 0x0F) | 0x40
    return sb_pio_cmd_data(0, device, command, count, lba, ext, write_data, old_slave)


@pytest.mark.parametrize("backend", ["memory", "local", "network"])
def test_seabios_pio_read_and_write_lba28(backend):
    image = disk()
    master = {"memory": image, "local": LocalDisk(image), "network": NetworkStorage(image)}[backend]
    b, ide = bench_with(master)
    replay(b, sb_detect(0, present=True, reset=True))
    b.data.clear()
    replay(b, sb_readwrite(5, 3, None))
    assert bytes(b.data) == sector(5) + sector(6) + sector(7)
    data = b"".join(sector(500 + i) for i in range(4))
    replay(b, sb_readwrite(100, 4, data))
    assert image.read(100, 4)[0] == data
    assert not ide.irq_level  # every completion was acknowledged by a status read


def test_seabios_pio_read_and_write_lba48():
    big = RamDisk((1 << 28) + 4096)
    for n in range(64):
        big.write(n, sector(n))
    lba = (1 << 28) + 100
    payload = b"".join(sector(lba + i) for i in range(2))
    big.write(lba, payload)
    b, ide = bench_with(big)
    replay(b, sb_detect(0, present=True, reset=True))
    b.data.clear()
    replay(b, sb_readwrite(lba, 2, None))
    assert bytes(b.data) == payload
    replay(b, sb_readwrite(lba + 10, 1, sector(77)))
    assert big.read(lba + 10, 1)[0] == sector(77)
    # 256 sectors below 2**28 also take the EXT path
    b.data.clear()
    replay(b, sb_readwrite(0, 256, None))
    assert bytes(b.data[: 64 * 512]) == b"".join(sector(n) for n in range(64))
    assert len(b.data) == 256 * 512


def test_seabios_read_on_the_slave_after_the_master():
    b, ide = bench_with(disk(), RamDisk(16, data=sector(4242) * 16))
    replay(b, sb_detect(0, True, True))
    b.data.clear()
    replay(b, sb_pio_cmd_data(1, 0x40, 0x20, 1, lba=2, old_slave=0))  # drive change: waits
    assert bytes(b.data) == sector(4242)


# ================================================================================================
# the course's guest driver (vmmlib.guest.ide)
# ================================================================================================
@pytest.mark.parametrize("style", g.READ_STYLES)
def test_guest_read_in_every_style(style):
    b, ide = bench_with(LocalDisk(disk()))
    got = b.run(g.ide_read(10, 3, style=style))
    assert got == sector(10) + sector(11) + sector(12)
    data_ops = {"insl": 1, "insw": 1, "inl": 128, "inw": 256}[style]
    assert b.ops > 3 * data_ops  # the data moves as the style says, plus the polling


@pytest.mark.parametrize("style", g.WRITE_STYLES)
def test_guest_write_in_every_style_then_read_back(style):
    image = disk()
    b, ide = bench_with(NetworkStorage(image))
    data = b"".join(sector(300 + i) for i in range(2))
    assert b.run(g.ide_write(40, data, style=style)) is True
    assert image.read(40, 2)[0] == data
    assert b.run(g.ide_read(40, 2)) == data
    assert b.run(g.ide_flush()) is True


def test_guest_driver_uses_lba48_above_lba28():
    big = RamDisk(1 << 29)
    b, _ = bench_with(big)
    lba = (1 << 28) + 5
    assert g.uses_lba48(lba, 1) and g.uses_lba48(0, 256) and not g.uses_lba48(0, 255)
    assert b.run(g.ide_write(lba, sector(5))) is True
    assert big.read(lba, 1)[0] == sector(5)
    assert b.run(g.ide_read(lba, 1)) == sector(5)


def test_guest_driver_reports_errors():
    b, _ = bench_with(disk(64))
    assert b.run(g.ide_read(64, 1)) is None  # IDNF
    assert b.run(g.ide_write(100, sector(1))) is False
    assert b.run(g.ide_read(0, 1)) == sector(0)  # the disk recovers with the next command


def test_guest_identify_and_init():
    b, _ = bench_with(disk(), RamDisk(64))
    words = b.run(g.ide_identify())
    assert words[0] == 0x0040 and words[60] == 4096
    assert b.run(g.ide_init()) is True
    b2, _ = bench_with(disk())
    assert b2.run(g.ide_init()) is False


def test_guest_boot_loader_readseg():
    b, _ = bench_with(disk())
    got = b.run(g.boot_readseg(1000, 700))  # bytes 700..1699: sectors 2..4
    assert got == sector(2) + sector(3) + sector(4)


def test_guest_driver_waiting_point_is_one_function():
    waits = []

    def counting_wait(base):
        waits.append(base)
        return (yield from g.ide_poll(base))

    b, _ = bench_with(disk())
    b.run(g.ide_read(1, 4, wait=counting_wait))
    b.run(g.ide_write(1, sector(1) * 2, wait=counting_wait))
    assert waits == [BASE] * 6  # once per sector read, once per sector written


def test_guest_driver_bad_arguments():
    with pytest.raises(Exception, match="style"):
        next(g.read_sector_data("insq"))
    with pytest.raises(Exception, match="whole"):
        next(g.ide_write(0, b"short"))
    with pytest.raises(Exception, match="cannot address"):
        next(g.ide_command(0, 0, 0x20))


def test_the_student_dd_workflow(tmp_path):
    # dd a file into a sparse image, read it back through the guest driver, write, fsync
    path = tmp_path / "disk.img"
    ImageFile.create(path, 2048)
    with open(path, "r+b") as f:
        f.seek(3 * 512)
        f.write(b"hello from the host")
    b, _ = bench_with(ImageFile(path))
    assert b.run(g.ide_read(3, 1)).startswith(b"hello from the host")
    assert b.run(g.ide_write(4, b"hello from the guest".ljust(512, b"."))) is True
    assert b.run(g.ide_flush()) is True
    assert path.read_bytes()[4 * 512 : 4 * 512 + 20] == b"hello from the guest"


def test_guest_driver_on_an_hvm_domain():
    # the same driver on a vCPU whose IDE ports trap to the hypervisor (chapter 01's machinery)
    machine = Machine(64 * MIB)
    dom = machine.add_domain("hvm", 16 * MIB)
    ide = IdeController(machine.clock, disk())
    for base, n, dev, name in ide.port_claims():
        dom.emulate_ports(base, n, dev, name)
    vcpu = Vcpu(dom, g.ide_read(2, 2, style="insw"))
    vcpu.run()
    assert vcpu.crashed is None and vcpu.result == sector(2) + sector(3)
    assert isinstance(dom.ports, PortBus)
