"""Mutants of chapter 02's answers (vmmlib.course.checks.device_model): q1 decode_ioreq,
q2 read_sector (a driver generator: the lists hold it as its check runs it, replayed against
the IDE model), q3 buffered_write, q4 readback. Each function is a whole answer, self-contained.
"""

from vmmlib.course.checks.device_model import replayed

# --- q1: decode_ioreq(raw) -> dict ----------------------------------------------------------
_STATES = ("NONE", "READY", "INPROCESS", "IORESP_READY")
_TYPES = {0: "PIO", 1: "COPY", 2: "PCI_CONFIG"}


def _fields(addr, data, count, size, port, bits, kind):
    return {"addr": addr, "data": data, "count": count, "size": size, "vp_eport": port,
            "state": ("NONE", "READY", "INPROCESS", "IORESP_READY")[bits & 0xF],
            "data_is_ptr": bool(bits & 0x10), "dir": "read" if bits & 0x20 else "write",
            "df": bool(bits & 0x40), "type": {0: "PIO", 1: "COPY", 2: "PCI_CONFIG"}[kind]}


def q1_big_endian(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack(">QQIIIHBB", raw)
    return _fields(addr, data, count, size, port, bits, kind)


def q1_count_and_size_swapped(raw):
    import struct

    addr, data, size, count, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    return _fields(addr, data, count, size, port, bits, kind)


def q1_port_from_the_padding(raw):
    import struct

    addr, data, count, size, _, pad, bits, kind = struct.unpack("<QQIIIHBB", raw)
    return _fields(addr, data, count, size, pad, bits, kind)


def q1_state_from_the_high_nibble(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    fields = _fields(addr, data, count, size, port, bits, kind)
    fields["state"] = ("NONE", "READY", "INPROCESS", "IORESP_READY", "?", "?", "?", "?")[
        bits >> 4 & 0x7]
    return fields


def q1_ptr_and_dir_swapped(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    fields = _fields(addr, data, count, size, port, bits, kind)
    fields["data_is_ptr"], fields["dir"] = bool(bits & 0x20), "read" if bits & 0x10 else "write"
    return fields


def q1_dir_inverted(raw):
    import struct

    fields = _fields(*(lambda t: t[:5] + t[6:])(struct.unpack("<QQIIIHBB", raw)))
    fields["dir"] = "write" if fields["dir"] == "read" else "read"
    return fields


def q1_df_from_bit_7(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    fields = _fields(addr, data, count, size, port, bits, kind)
    fields["df"] = bool(bits & 0x80)
    return fields


def q1_type_from_byte_30(raw):
    import struct

    addr, data, count, size, port, _, bits, _kind = struct.unpack("<QQIIIHBB", raw)
    return _fields(addr, data, count, size, port, bits, raw[30] >> 7)


def q1_data_as_32_bits(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    return _fields(addr, data & 0xFFFFFFFF, count, size, port, bits, kind)


def q1_addr_as_32_bits(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    return _fields(addr & 0xFFFFFFFF, data, count, size, port, bits, kind)


def q1_state_as_a_number(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    fields = _fields(addr, data, count, size, port, bits, kind)
    fields["state"] = bits & 0xF
    return fields


def q1_type_as_a_number(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    fields = _fields(addr, data, count, size, port, bits, kind)
    fields["type"] = kind
    return fields


def q1_flags_as_ints(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    fields = _fields(addr, data, count, size, port, bits, kind)
    fields["data_is_ptr"], fields["df"] = bits >> 4 & 1, bits >> 6 & 1
    return fields


def q1_copy_called_mmio(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    fields = _fields(addr, data, count, size, port, bits, kind)
    fields["type"] = {0: "PIO", 1: "MMIO", 2: "PCI_CONFIG"}[kind]
    return fields


def q1_size_as_log2(raw):
    import struct

    addr, data, count, size, port, _, bits, kind = struct.unpack("<QQIIIHBB", raw)
    return _fields(addr, data, count, size.bit_length() - 1, port, bits, kind)


def q1_right_with_debug_prints(raw):
    print("ioreq:", raw.hex())
    import struct

    addr, data, count, size, port, _pad, bits, kind = struct.unpack("<QQIIIHBB", raw)
    print(f"  flags byte {bits:08b}")
    return {"addr": addr, "data": data, "count": count, "size": size, "vp_eport": port,
            "state": ["NONE", "READY", "INPROCESS", "IORESP_READY"][bits % 16],
            "data_is_ptr": bits >> 4 & 1 == 1, "dir": ["write", "read"][bits >> 5 & 1],
            "df": bits >> 6 & 1 == 1, "type": ["PIO", "COPY", "PCI_CONFIG"][kind]}


def q1_right_with_int_from_bytes(raw):
    def field(offset, width):
        return int.from_bytes(raw[offset : offset + width], "little")

    bits = raw[30]
    return dict(type={0: "PIO", 1: "COPY", 2: "PCI_CONFIG"}[raw[31]],
                df=(bits & 64) != 0, dir="read" if (bits & 32) else "write",
                data_is_ptr=(bits & 16) != 0,
                state={0: "NONE", 1: "READY", 2: "INPROCESS", 3: "IORESP_READY"}[bits & 15],
                vp_eport=field(24, 4), size=field(20, 4), count=field(16, 4), data=field(8, 8),
                addr=field(0, 8))


def q1_right_with_memoryview(raw):
    words = memoryview(bytes(raw))
    q = words[:16].cast("Q")
    d = words[16:28].cast("I")
    bits = raw[30]
    return {"addr": q[0], "data": q[1], "count": d[0], "size": d[1], "vp_eport": d[2],
            "state": _STATES[bits & 0xF], "data_is_ptr": bool(bits >> 4 & 1),
            "dir": ("write", "read")[bits >> 5 & 1], "df": bool(bits >> 6 & 1),
            "type": _TYPES[raw[31]]}


# --- q2: read_sector(lba, drive) -> generator ------------------------------------------------


def q2_no_wait_before_the_task_file(lba, drive):
    from vmmlib.cpu.ops import In, Ins, Out

    for port, value in ((0x1F2, 1), (0x1F3, lba & 0xFF), (0x1F4, lba >> 8 & 0xFF),
                        (0x1F5, lba >> 16 & 0xFF), (0x1F6, 0xE0 | drive << 4 | lba >> 24),
                        (0x1F7, 0x20)):
        yield Out(port, 1, value)
    while (yield In(0x1F7, 1)) & 0x88 != 0x08:
        pass
    words = yield Ins(0x1F0, 2, 256)
    return b"".join(w.to_bytes(2, "little") for w in words)


def _read(lba, drive, regs, command=0x20, wait_data=0x88, expect=0x08, words=256, order=None):
    from vmmlib.cpu.ops import In, Ins, Out

    while (yield In(0x1F7, 1)) & 0xC0 != 0x40:
        pass
    for port, value in (order or regs)(lba, drive):
        yield Out(port, 1, value)
    yield Out(0x1F7, 1, command)
    while (yield In(0x1F7, 1)) & wait_data != expect:
        pass
    values = yield Ins(0x1F0, 2, words)
    return b"".join(w.to_bytes(2, "little") for w in values)


def _task_file(lba, drive):
    return [(0x1F2, 1), (0x1F3, lba & 0xFF), (0x1F4, lba >> 8 & 0xFF),
            (0x1F5, lba >> 16 & 0xFF), (0x1F6, 0xE0 | drive << 4 | (lba >> 24) & 0x0F)]


def q2_lba_bytes_reversed(lba, drive):
    def regs(lba, drive):
        return [(0x1F2, 1), (0x1F3, lba >> 16 & 0xFF), (0x1F4, lba >> 8 & 0xFF),
                (0x1F5, lba & 0xFF), (0x1F6, 0xE0 | drive << 4 | (lba >> 24) & 0x0F)]

    return (yield from _read(lba, drive, regs))


def q2_mid_and_high_swapped(lba, drive):
    def regs(lba, drive):
        return [(0x1F2, 1), (0x1F3, lba & 0xFF), (0x1F4, lba >> 16 & 0xFF),
                (0x1F5, lba >> 8 & 0xFF), (0x1F6, 0xE0 | drive << 4 | (lba >> 24) & 0x0F)]

    return (yield from _read(lba, drive, regs))


def q2_drive_in_bit_0(lba, drive):
    def regs(lba, drive):
        return _task_file(lba, 0)[:4] + [(0x1F6, 0xE0 | drive | (lba >> 24) & 0x0F)]

    return (yield from _read(lba, drive, regs))


def q2_no_lba_mode_bit(lba, drive):
    def regs(lba, drive):
        return _task_file(lba, drive)[:4] + [(0x1F6, 0xA0 | drive << 4 | (lba >> 24) & 0x0F)]

    return (yield from _read(lba, drive, regs))


def q2_forgets_lba_27_24(lba, drive):
    def regs(lba, drive):
        return _task_file(lba, drive)[:4] + [(0x1F6, 0xE0 | drive << 4)]

    return (yield from _read(lba, drive, regs))


def q2_count_zero(lba, drive):
    def regs(lba, drive):
        return [(0x1F2, 0)] + _task_file(lba, drive)[1:]

    return (yield from _read(lba, drive, regs))


def q2_command_before_the_device(lba, drive):
    from vmmlib.cpu.ops import In, Ins, Out

    while (yield In(0x1F7, 1)) & 0xC0 != 0x40:
        pass
    for port, value in _task_file(lba, drive)[:4]:
        yield Out(port, 1, value)
    yield Out(0x1F7, 1, 0x20)
    yield Out(0x1F6, 1, 0xE0 | drive << 4 | (lba >> 24) & 0x0F)
    while (yield In(0x1F7, 1)) & 0x88 != 0x08:
        pass
    words = yield Ins(0x1F0, 2, 256)
    return b"".join(w.to_bytes(2, "little") for w in words)


def q2_write_command(lba, drive):
    return (yield from _read(lba, drive, _task_file, command=0x30, wait_data=0x08, expect=0x08))


def q2_reads_before_drq(lba, drive):
    return (yield from _read(lba, drive, _task_file, wait_data=0x40, expect=0x40))


def q2_waits_for_bsy_only_then_reads(lba, drive):
    from vmmlib.cpu.ops import In, Ins, Out

    while (yield In(0x1F7, 1)) & 0xC0 != 0x40:
        pass
    for port, value in _task_file(lba, drive):
        yield Out(port, 1, value)
    yield Out(0x1F7, 1, 0x20)
    yield In(0x1F7, 1)  # one look, and on: the disk is still busy
    words = yield Ins(0x1F0, 2, 256)
    return b"".join(w.to_bytes(2, "little") for w in words)


def q2_half_a_sector(lba, drive):
    return (yield from _read(lba, drive, _task_file, words=128))


def q2_big_endian_words(lba, drive):
    from vmmlib.cpu.ops import In, Ins, Out

    while (yield In(0x1F7, 1)) & 0xC0 != 0x40:
        pass
    for port, value in _task_file(lba, drive):
        yield Out(port, 1, value)
    yield Out(0x1F7, 1, 0x20)
    while (yield In(0x1F7, 1)) & 0x88 != 0x08:
        pass
    words = yield Ins(0x1F0, 2, 256)
    return b"".join(w.to_bytes(2, "big") for w in words)


def q2_returns_the_list_of_words(lba, drive):
    from vmmlib.cpu.ops import In, Ins, Out

    while (yield In(0x1F7, 1)) & 0xC0 != 0x40:
        pass
    for port, value in _task_file(lba, drive):
        yield Out(port, 1, value)
    yield Out(0x1F7, 1, 0x20)
    while (yield In(0x1F7, 1)) & 0x88 != 0x08:
        pass
    return (yield Ins(0x1F0, 2, 256))


def q2_right_with_debug_prints(lba, drive):
    from vmmlib.cpu.ops import In, Ins, Out

    print(f"reading LBA {lba:#x} from drive {drive}")
    while (status := (yield In(0x1F7, 1))) & 0xC0 != 0x40:
        print(f"  waiting, status {status:#04x}")
    for port, value in reversed(_task_file(lba, drive)):  # another order: the same task file
        yield Out(port, 1, value)
    yield Out(0x1F7, 1, 0x20)
    while True:
        status = yield In(0x1F7, 1)
        print(f"  status {status:#04x}")
        if status & 1:
            return None
        if status & 0x88 == 0x08:
            break
    words = yield Ins(0x1F0, 2, 256)
    return b"".join(w.to_bytes(2, "little") for w in words)


def q2_right_with_dwords_and_alternate_status(lba, drive):
    from vmmlib.cpu.ops import In, Ins, Out

    while (yield In(0x3F6, 1)) & 0xC0 != 0x40:  # alternate status: the same bits
        pass
    yield Out(0x3F6, 1, 0)  # interrupts on, as xv6 does: harmless when polling
    yield Out(0x1F6, 1, 0x40 | drive << 4 | (lba >> 24) & 0x0F)  # bits 7 and 5 are obsolete
    yield Out(0x1F2, 1, 1)
    yield Out(0x1F3, 1, lba % 256)
    yield Out(0x1F4, 1, lba // 256 % 256)
    yield Out(0x1F5, 1, lba // 65536 % 256)
    yield Out(0x1F7, 1, 0x20)
    while (yield In(0x1F7, 1)) & 0x89 != 0x08:
        pass
    dwords = yield Ins(0x1F0, 4, 128)
    return bytes(b for d in dwords for b in d.to_bytes(4, "little"))


def q2_right_a_word_at_a_time(lba, drive):
    from vmmlib.cpu.ops import In, Out

    while (yield In(0x1F7, 1)) & 0xC0 != 0x40:
        pass
    for port, value in _task_file(lba, drive):
        yield Out(port, 1, value)
    yield Out(0x1F7, 1, 0x20)
    while (yield In(0x1F7, 1)) & 0x88 != 0x08:
        pass
    data = bytearray()
    for _ in range(256):
        data += (yield In(0x1F0, 2)).to_bytes(2, "little")
    return bytes(data)


# --- q3: buffered_write(read_pointer, write_pointer, addr, size, data) -> dict | None --------


def _ring(read, write, addr, size, data, slots=511, full=None, code=None, second=None,
          low_bits=None, advance=None):
    n = 2 if size == 8 else 1
    if (full or (lambda used, n: used + n > 511))(write - read, n):
        return None
    code = (code or {1: 0, 2: 1, 4: 2, 8: 3})[size] if not callable(code) else code(size)
    low = (low_bits or (lambda code, addr: 1 | code << 10 | addr << 12))(code, addr)
    halves = [data & 0xFFFFFFFF, (second or (lambda d: d >> 32))(data)][:n]
    return {"slots": [[(write + i) % slots, low | half << 32] for i, half in enumerate(halves)],
            "write_pointer": write + (advance(n) if advance else n)}


def q3_512_slots(r, w, addr, size, data):
    return _ring(r, w, addr, size, data, slots=512)


def q3_never_full(r, w, addr, size, data):
    return _ring(r, w, addr, size, data, full=lambda used, n: False)


def q3_full_one_slot_early(r, w, addr, size, data):
    return _ring(r, w, addr, size, data, full=lambda used, n: used + n >= 511)


def q3_full_check_ignores_the_second_slot(r, w, addr, size, data):
    return _ring(r, w, addr, size, data, full=lambda used, n: used + 1 > 511)


def q3_size_code_is_the_size(r, w, addr, size, data):
    return _ring(r, w, addr, size, data, code=lambda size: size & 3)


def q3_size_code_minus_one(r, w, addr, size, data):
    return _ring(r, w, addr, size, data, code=lambda size: (size - 1) & 3)


def q3_address_at_bit_8(r, w, addr, size, data):
    return _ring(r, w, addr, size, data,
                 low_bits=lambda code, addr: (1 | code << 10 | addr << 8) & 0xFFFFFFFF)


def q3_dir_bit_set(r, w, addr, size, data):
    return _ring(r, w, addr, size, data,
                 low_bits=lambda code, addr: 1 | 1 << 9 | code << 10 | addr << 12)


def q3_type_pio(r, w, addr, size, data):
    return _ring(r, w, addr, size, data, low_bits=lambda code, addr: code << 10 | addr << 12)


def q3_eight_bytes_in_one_slot(r, w, addr, size, data):
    if w - r + 1 > 511:
        return None
    code = {1: 0, 2: 1, 4: 2, 8: 3}[size]
    return {"slots": [[w % 511, 1 | code << 10 | addr << 12 | (data & 0xFFFFFFFF) << 32]],
            "write_pointer": w + 1}


def q3_second_slot_repeats_the_low_half(r, w, addr, size, data):
    return _ring(r, w, addr, size, data, second=lambda d: d & 0xFFFFFFFF)


def q3_pointer_wraps_at_511(r, w, addr, size, data):
    result = _ring(r, w, addr, size, data)
    if result is not None:
        result["write_pointer"] %= 511
    return result


def q3_pointer_advances_by_one(r, w, addr, size, data):
    return _ring(r, w, addr, size, data, advance=lambda n: 1)


def q3_header_in_the_high_half(r, w, addr, size, data):
    n = 2 if size == 8 else 1
    if w - r + n > 511:
        return None
    low = 1 | {1: 0, 2: 1, 4: 2, 8: 3}[size] << 10 | addr << 12
    halves = [data & 0xFFFFFFFF, data >> 32][:n]
    return {"slots": [[(w + i) % 511, half | low << 32] for i, half in enumerate(halves)],
            "write_pointer": w + n}


def q3_right_with_debug_prints(read_pointer, write_pointer, addr, size, data):
    print("ring:", read_pointer, write_pointer, "write", hex(addr), size, hex(data))
    used = write_pointer - read_pointer
    need = size // 8 + 1
    if used + need > 511:
        print("  full")
        return None
    first_word = 0x01 | (size.bit_length() - 1) << 10 | addr << 12
    parts = [data & 0xFFFF_FFFF] + ([data >> 32] if size == 8 else [])
    slots = []
    for i, part in enumerate(parts):
        slots.append([(write_pointer + i) % 511, first_word + (part << 32)])
    return {"write_pointer": write_pointer + need, "slots": slots}


def q3_right_with_struct(read_pointer, write_pointer, addr, size, data):
    import struct

    n = 1 + (size == 8)
    if 511 - (write_pointer - read_pointer) < n:
        return None
    header = struct.pack("<BBH", 1, [1, 2, 4, 8].index(size) << 2, 0)
    header = (int.from_bytes(header, "little") | addr << 12).to_bytes(4, "little")
    slots = []
    for i in range(n):
        raw = header + struct.pack("<I", data >> 32 * i & 0xFFFFFFFF)
        slots.append((divmod(write_pointer + i, 511)[1], int.from_bytes(raw, "little")))
    return {"slots": slots, "write_pointer": write_pointer + n}


# --- q4: readback(device, port, dlab) -> str -------------------------------------------------


def _uart(offset, dlab):
    if offset == 0:
        return "readable" if dlab else "shadow"
    if offset == 2:
        return "shadow"
    if offset in (5, 6):
        return "nothing"
    return "readable"


def _ide(offset):
    return "readable" if offset in (2, 3, 4, 5, 6) else "shadow"


def _offset(port):
    return None if port in (0x3F6, 0x376) else port & 7


def q4_command_reads_back(device, port, dlab):
    if device == "ide":
        return "readable" if _offset(port) in (2, 3, 4, 5, 6, 7) else "shadow"
    return _uart(port & 7, dlab)


def q4_features_reads_back(device, port, dlab):
    if device == "ide":
        return "readable" if _offset(port) in (1, 2, 3, 4, 5, 6) else "shadow"
    return _uart(port & 7, dlab)


def q4_device_control_reads_back(device, port, dlab):
    if device == "ide":
        return "readable" if _offset(port) in (None, 2, 3, 4, 5, 6) else "shadow"
    return _uart(port & 7, dlab)


def q4_data_port_reads_back(device, port, dlab):
    if device == "ide":
        return "readable" if _offset(port) in (0, 2, 3, 4, 5, 6) else "shadow"
    return _uart(port & 7, dlab)


def q4_status_is_nothing(device, port, dlab):
    if device == "ide":
        return "nothing" if _offset(port) == 7 else _ide(_offset(port))
    return _uart(port & 7, dlab)


def q4_device_head_must_be_shadowed(device, port, dlab):
    if device == "ide":
        return "readable" if _offset(port) in (2, 3, 4, 5) else "shadow"
    return _uart(port & 7, dlab)


def q4_primary_channel_only(device, port, dlab):
    if device == "ide":
        if port in (0x3F6,) or 0x1F0 <= port <= 0x1F7:
            return _ide(_offset(port))
        return "readable"
    return _uart(port & 7, dlab)


def q4_ignores_dlab(device, port, dlab):
    if device == "ide":
        return _ide(_offset(port))
    return _uart(port & 7, 0)


def q4_thr_reads_back(device, port, dlab):
    if device == "ide":
        return _ide(_offset(port))
    return "readable" if port & 7 == 0 else _uart(port & 7, dlab)


def q4_fcr_reads_back(device, port, dlab):
    if device == "ide":
        return _ide(_offset(port))
    return "readable" if port & 7 == 2 else _uart(port & 7, dlab)


def q4_lsr_must_be_shadowed(device, port, dlab):
    if device == "ide":
        return _ide(_offset(port))
    return "shadow" if port & 7 in (5, 6) else _uart(port & 7, dlab)


def q4_dlab_moves_every_register(device, port, dlab):
    if device == "ide":
        return _ide(_offset(port))
    return "readable" if dlab else _uart(port & 7, 0)


def q4_com1_only(device, port, dlab):
    if device == "ide":
        return _ide(_offset(port))
    return _uart(port - 0x3F8, dlab) if 0x3F8 <= port <= 0x3FF else "readable"


def q4_scratch_is_write_only(device, port, dlab):
    if device == "ide":
        return _ide(_offset(port))
    return "shadow" if port & 7 == 7 else _uart(port & 7, dlab)


def q4_right_with_debug_prints(device, port, dlab):
    print("register", device, hex(port), "DLAB", dlab)
    if device == "ide":
        base = port & ~7 if port not in (0x3F6, 0x376) else None
        answer = "readable" if base is not None and 2 <= port - base <= 6 else "shadow"
    else:
        offset = port % 8
        answer = {0: "readable" if dlab else "shadow", 2: "shadow", 5: "nothing",
                  6: "nothing"}.get(offset, "readable")
    print("  ->", answer)
    return answer


def q4_right_as_tables(device, port, dlab):
    ide = ["shadow", "shadow", "readable", "readable", "readable", "readable", "readable",
           "shadow"]
    uart = [["shadow", "readable"], ["readable"] * 2, ["shadow"] * 2, ["readable"] * 2,
            ["readable"] * 2, ["nothing"] * 2, ["nothing"] * 2, ["readable"] * 2]
    if device == "uart":
        return uart[port - (0x3F8 if port >= 0x3F8 else 0x2F8)][dlab]
    if port in (0x3F6, 0x376):
        return "shadow"
    return ide[port - (0x1F0 if port >= 0x1F0 else 0x170)]


WRONG = {
    "q1": [q1_big_endian, q1_count_and_size_swapped, q1_port_from_the_padding,
           q1_state_from_the_high_nibble, q1_ptr_and_dir_swapped, q1_dir_inverted,
           q1_df_from_bit_7, q1_type_from_byte_30, q1_data_as_32_bits, q1_addr_as_32_bits,
           q1_state_as_a_number, q1_type_as_a_number, q1_flags_as_ints, q1_copy_called_mmio,
           q1_size_as_log2],
    "q2": [replayed(fn) for fn in (
        q2_no_wait_before_the_task_file, q2_lba_bytes_reversed, q2_mid_and_high_swapped,
        q2_drive_in_bit_0, q2_no_lba_mode_bit, q2_forgets_lba_27_24, q2_count_zero,
        q2_command_before_the_device, q2_write_command, q2_reads_before_drq,
        q2_waits_for_bsy_only_then_reads, q2_half_a_sector, q2_big_endian_words,
        q2_returns_the_list_of_words)],
    "q3": [q3_512_slots, q3_never_full, q3_full_one_slot_early,
           q3_full_check_ignores_the_second_slot, q3_size_code_is_the_size,
           q3_size_code_minus_one, q3_address_at_bit_8, q3_dir_bit_set, q3_type_pio,
           q3_eight_bytes_in_one_slot, q3_second_slot_repeats_the_low_half,
           q3_pointer_wraps_at_511, q3_pointer_advances_by_one, q3_header_in_the_high_half],
    "q4": [q4_command_reads_back, q4_features_reads_back, q4_device_control_reads_back,
           q4_data_port_reads_back, q4_status_is_nothing, q4_device_head_must_be_shadowed,
           q4_primary_channel_only, q4_ignores_dlab, q4_thr_reads_back, q4_fcr_reads_back,
           q4_lsr_must_be_shadowed, q4_dlab_moves_every_register, q4_com1_only,
           q4_scratch_is_write_only],
}

RIGHT = {
    "q1": [q1_right_with_debug_prints, q1_right_with_int_from_bytes, q1_right_with_memoryview],
    "q2": [replayed(fn) for fn in (q2_right_with_debug_prints,
                                   q2_right_with_dwords_and_alternate_status,
                                   q2_right_a_word_at_a_time)],
    "q3": [q3_right_with_debug_prints, q3_right_with_struct],
    "q4": [q4_right_with_debug_prints, q4_right_as_tables],
}
