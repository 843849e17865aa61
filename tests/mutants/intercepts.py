"""Mutants of chapter 01's answers (vmmlib.course.checks.intercepts): q1 vmx_exits,
q2 decode_qualification, q3 classify. Each is a whole answer, self-contained."""

# --- q1: vmx_exits(a, b, port, size) -> bool ------------------------------------------------


def q1_first_port_only(a, b, port, size):
    if port + size > 0x10000:
        return True
    page, i = (a, port) if port < 0x8000 else (b, port - 0x8000)
    return page[i // 8] >> (i % 8) & 1 == 1


def q1_no_wrap_rule(a, b, port, size):
    for p in range(port, port + size):
        p %= 0x10000
        page, i = (a, p) if p < 0x8000 else (b, p - 0x8000)
        if page[i // 8] >> (i % 8) & 1:
            return True
    return False


def q1_wrap_off_by_one(a, b, port, size):
    if port + size >= 0x10000:  # an access that ends at 0xFFFF does not wrap
        return True
    return any((a, b)[p >> 15][(p & 0x7FFF) // 8] >> (p % 8) & 1 for p in range(port, port + size))


def q1_wrap_at_ffff(a, b, port, size):
    if port + size > 0xFFFF:
        return True
    return any((a, b)[p >> 15][(p & 0x7FFF) // 8] >> (p % 8) & 1 for p in range(port, port + size))


def q1_bitmap_a_only(a, b, port, size):
    if port + size > 0x10000:
        return True
    return any(a[(p % 0x8000) // 8] >> (p % 8) & 1 for p in range(port, port + size))


def q1_b_indexed_from_zero(a, b, port, size):
    if port + size > 0x10000:
        return True
    for p in range(port, port + size):
        page = a if p < 0x8000 else b
        if page[p // 8] >> (p % 8) & 1:  # B is indexed by the port itself: out of range
            return True
    return False


def q1_swapped_bitmaps(a, b, port, size):
    if port + size > 0x10000:
        return True
    return any((b, a)[p >> 15][(p & 0x7FFF) // 8] >> (p % 8) & 1 for p in range(port, port + size))


def q1_msb_first(a, b, port, size):
    if port + size > 0x10000:
        return True
    return any((a, b)[p >> 15][(p & 0x7FFF) // 8] >> (7 - p % 8) & 1
               for p in range(port, port + size))


def q1_whole_byte(a, b, port, size):
    if port + size > 0x10000:
        return True
    return any((a, b)[p >> 15][(p & 0x7FFF) // 8] != 0 for p in range(port, port + size))


def q1_first_and_last_only(a, b, port, size):
    if port + size > 0x10000:
        return True
    return any((a, b)[p >> 15][(p & 0x7FFF) // 8] >> (p % 8) & 1
               for p in {port, port + size - 1})


def q1_last_port_missed(a, b, port, size):
    if port + size > 0x10000:
        return True
    return any((a, b)[p >> 15][(p & 0x7FFF) // 8] >> (p % 8) & 1
               for p in range(port, port + max(1, size - 1)))


def q1_returns_an_int(a, b, port, size):
    if port + size > 0x10000:
        return 1
    for p in range(port, port + size):
        page, i = (a, p) if p < 0x8000 else (b, p - 0x8000)
        if page[i // 8] >> (i % 8) & 1:
            return 1
    return 0


def q1_returns_numpy_bool(a, b, port, size):
    import numpy as np

    bits = np.unpackbits(np.frombuffer(a + b, np.uint8), bitorder="little")
    return np.bool_(port + size > 0x10000 or bits[port:port + size].any())


def q1_bit_set_means_pass(a, b, port, size):
    if port + size > 0x10000:
        return True
    return not any((a, b)[p >> 15][(p & 0x7FFF) // 8] >> (p % 8) & 1
                   for p in range(port, port + size))


def q1_right_with_debug_prints(a, b, port, size):
    print(f"checking {size} byte(s) at {port:#06x}")
    if port + size > 0x10000:
        print("  wraps: exits")
        return True
    for p in range(port, port + size):
        page, i = (a, p) if p < 0x8000 else (b, p - 0x8000)
        bit = page[i // 8] >> (i % 8) & 1
        print(f"  port {p:#06x}: bit {bit}")
        if bit:
            return True
    return False


def q1_right_with_numpy(a, b, port, size):
    import numpy as np

    if port + size > 0x10000:
        return True
    bits = np.unpackbits(np.frombuffer(a + b, np.uint8), bitorder="little")
    return bool(bits[port:port + size].any())


def q1_right_with_one_big_integer(a, b, port, size):
    whole = int.from_bytes(a + b, "little")  # bit p of the 64 K-bit number is port p
    mask = ((1 << size) - 1) << port
    return port + size > 0x10000 or whole & mask != 0


# --- q2: decode_qualification(q) -> dict ----------------------------------------------------


def q2_size_not_plus_one(q):
    return {"port": (q >> 16) & 0xFFFF, "size": q & 7, "direction": "in" if q & 8 else "out",
            "string": bool(q & 16), "rep": bool(q & 32)}


def q2_size_as_power_of_two(q):
    return {"port": (q >> 16) & 0xFFFF, "size": 1 << (q & 7),
            "direction": "in" if q & 8 else "out", "string": bool(q & 16), "rep": bool(q & 32)}


def q2_direction_from_bit_0(q):
    return {"port": (q >> 16) & 0xFFFF, "size": (q & 7) + 1,
            "direction": "in" if q & 1 else "out", "string": bool(q & 16), "rep": bool(q & 32)}


def q2_direction_inverted(q):
    return {"port": (q >> 16) & 0xFFFF, "size": (q & 7) + 1,
            "direction": "out" if q & 8 else "in", "string": bool(q & 16), "rep": bool(q & 32)}


def q2_port_from_low_bits(q):
    return {"port": q & 0xFFFF, "size": (q & 7) + 1, "direction": "in" if q & 8 else "out",
            "string": bool(q & 16), "rep": bool(q & 32)}


def q2_port_shifted_by_15(q):
    return {"port": (q >> 15) & 0xFFFF, "size": (q & 7) + 1,
            "direction": "in" if q & 8 else "out", "string": bool(q & 16), "rep": bool(q & 32)}


def q2_string_and_rep_swapped(q):
    return {"port": (q >> 16) & 0xFFFF, "size": (q & 7) + 1,
            "direction": "in" if q & 8 else "out", "string": bool(q & 32), "rep": bool(q & 16)}


def q2_rep_from_bit_6(q):
    return {"port": (q >> 16) & 0xFFFF, "size": (q & 7) + 1,
            "direction": "in" if q & 8 else "out", "string": bool(q & 16), "rep": bool(q & 64)}


def q2_flags_as_ints(q):
    return {"port": (q >> 16) & 0xFFFF, "size": (q & 7) + 1,
            "direction": "in" if q & 8 else "out", "string": q & 16, "rep": q & 32}


def q2_direction_as_bool(q):
    return {"port": (q >> 16) & 0xFFFF, "size": (q & 7) + 1, "direction": bool(q & 8),
            "string": bool(q & 16), "rep": bool(q & 32)}


def q2_missing_rep(q):
    return {"port": (q >> 16) & 0xFFFF, "size": (q & 7) + 1,
            "direction": "in" if q & 8 else "out", "string": bool(q & 16)}


def q2_extra_key(q):
    return {"port": (q >> 16) & 0xFFFF, "size": (q & 7) + 1,
            "direction": "in" if q & 8 else "out", "string": bool(q & 16), "rep": bool(q & 32),
            "imm": bool(q & 64)}


def q2_port_as_hex_text(q):
    return {"port": hex((q >> 16) & 0xFFFF), "size": (q & 7) + 1,
            "direction": "in" if q & 8 else "out", "string": bool(q & 16), "rep": bool(q & 32)}


def q2_returns_a_tuple(q):
    return ((q >> 16) & 0xFFFF, (q & 7) + 1, "in" if q & 8 else "out", bool(q & 16),
            bool(q & 32))


def q2_right_with_debug_prints(q):
    print(f"qualification {q:#x} = {q:032b}")
    decoded = {"port": (q >> 16) & 0xFFFF, "size": (q & 0b111) + 1,
               "direction": "in" if q >> 3 & 1 else "out",
               "string": q >> 4 & 1 == 1, "rep": q >> 5 & 1 == 1}
    print(decoded)
    return decoded


def q2_right_from_a_bit_string(q):
    bits = format(q, "064b")[::-1]  # bits[n] is bit n
    sizes = {"000": 1, "100": 2, "110": 4}
    return dict(rep=bits[5] == "1", string=bits[4] == "1",
                direction=("out", "in")[int(bits[3])], size=sizes[bits[0:3]],
                port=int(bits[16:32][::-1], 2))


def q2_right_with_a_size_table(q):
    return {"port": q >> 16 & 0xFFFF, "size": {0: 1, 1: 2, 3: 4}[q & 7],
            "direction": ["out", "in"][q >> 3 & 1], "string": (q & 0x10) != 0,
            "rep": (q & 0x20) != 0}


# --- q3: classify(table, mmio, vaddr, write) -> str -----------------------------------------


def q3_by_virtual_address(table, mmio, vaddr, write):
    if table is not None and table.translate(vaddr, write) is None:
        return "page-fault"
    return "mmio" if mmio.find(vaddr) is not None else "neither"


def q3_ignores_write_permission(table, mmio, vaddr, write):
    gpa = vaddr if table is None else table.translate(vaddr, False)
    if gpa is None:
        return "page-fault"
    return "mmio" if mmio.find(gpa) is not None else "neither"


def q3_write_flag_inverted(table, mmio, vaddr, write):
    gpa = vaddr if table is None else table.translate(vaddr, not write)
    if gpa is None:
        return "page-fault"
    return "mmio" if mmio.find(gpa) is not None else "neither"


def q3_paging_off_is_a_fault(table, mmio, vaddr, write):
    if table is None:
        return "page-fault"
    gpa = table.translate(vaddr, write)
    if gpa is None:
        return "page-fault"
    return "mmio" if mmio.find(gpa) is not None else "neither"


def q3_page_frame_only(table, mmio, vaddr, write):
    gpa = vaddr if table is None else table.translate(vaddr, write)
    if gpa is None:
        return "page-fault"
    return "mmio" if mmio.find(gpa & ~0xFFF) is not None else "neither"


def q3_own_walk_keeps_flag_bits(table, mmio, vaddr, write):
    if table is None:
        gpa = vaddr
    else:
        pte = table.entries.get(vaddr >> 12, 0)
        if not pte & 1 or (write and not pte & 2):
            return "page-fault"
        gpa = (pte & ~0xFFF) | (vaddr & 0xFFF)  # bit 63 (NX) stays in the address
    return "mmio" if mmio.find(gpa) is not None else "neither"


def q3_own_walk_ignores_present(table, mmio, vaddr, write):
    if table is None:
        gpa = vaddr
    else:
        pte = table.entries.get(vaddr >> 12)
        if pte is None or (write and not pte & 2):
            return "page-fault"
        gpa = (pte & 0x000FFFFFFFFFF000) | (vaddr & 0xFFF)
    return "mmio" if mmio.find(gpa) is not None else "neither"


def q3_region_end_inclusive(table, mmio, vaddr, write):
    gpa = vaddr if table is None else table.translate(vaddr, write)
    if gpa is None:
        return "page-fault"
    inside = any(r.base <= gpa <= r.base + r.length for r in mmio.regions)
    return "mmio" if inside else "neither"


def q3_regions_rounded_to_pages(table, mmio, vaddr, write):
    gpa = vaddr if table is None else table.translate(vaddr, write)
    if gpa is None:
        return "page-fault"
    for r in mmio.regions:
        first, last = r.base & ~0xFFF, (r.base + r.length + 0xFFF) & ~0xFFF
        if first <= gpa < last:
            return "mmio"
    return "neither"


def q3_any_mapping_is_mmio(table, mmio, vaddr, write):
    gpa = vaddr if table is None else table.translate(vaddr, write)
    return "page-fault" if gpa is None else "mmio"


def q3_labels_swapped(table, mmio, vaddr, write):
    gpa = vaddr if table is None else table.translate(vaddr, write)
    if gpa is None:
        return "neither"
    return "mmio" if mmio.find(gpa) is not None else "page-fault"


def q3_address_zero_faults(table, mmio, vaddr, write):
    if vaddr == 0:
        return "page-fault"
    gpa = vaddr if table is None else table.translate(vaddr, write)
    if gpa is None:
        return "page-fault"
    return "mmio" if mmio.find(gpa) is not None else "neither"


def q3_returns_the_enum(table, mmio, vaddr, write):
    from vmmlib import FaultKind

    gpa = vaddr if table is None else table.translate(vaddr, write)
    if gpa is None:
        return FaultKind.PAGE_FAULT
    return FaultKind.MMIO if mmio.find(gpa) is not None else FaultKind.HIDDEN


def q3_misspelt(table, mmio, vaddr, write):
    gpa = vaddr if table is None else table.translate(vaddr, write)
    if gpa is None:
        return "page fault"
    return "mmio" if mmio.find(gpa) is not None else "neither"


def q3_right_with_debug_prints(table, mmio, vaddr, write):
    print("fault at", hex(vaddr), "write" if write else "read")
    gpa = vaddr if table is None else table.translate(vaddr, write)
    print("  guest-physical:", None if gpa is None else hex(gpa))
    if gpa is None:
        return "page-fault"
    region = mmio.find(gpa)
    print("  region:", region)
    return "mmio" if region is not None else "neither"


def q3_right_with_its_own_walk(table, mmio, vaddr, write):
    if table is None:
        gpa = vaddr
    else:
        pte = table.entries.get(vaddr >> 12, 0)
        present, writable = pte & 1, pte >> 1 & 1
        if not present or (write and not writable):
            return "page-fault"
        gpa = (pte & ((1 << 52) - 1) & ~0xFFF) | (vaddr & 0xFFF)
    inside = any(r.base <= gpa < r.base + r.length for r in mmio.regions)
    return "mmio" if inside else "neither"


def q3_right_as_a_table(table, mmio, vaddr, write):
    gpa = table.translate(vaddr, write) if table else vaddr
    return {(True, True): "mmio", (True, False): "neither"}.get(
        (gpa is not None, gpa is not None and mmio.find(gpa) is not None), "page-fault")


WRONG = {
    "q1": [q1_first_port_only, q1_no_wrap_rule, q1_wrap_off_by_one, q1_wrap_at_ffff,
           q1_bitmap_a_only, q1_b_indexed_from_zero, q1_swapped_bitmaps, q1_msb_first,
           q1_whole_byte, q1_first_and_last_only, q1_last_port_missed, q1_returns_an_int,
           q1_returns_numpy_bool, q1_bit_set_means_pass],
    "q2": [q2_size_not_plus_one, q2_size_as_power_of_two, q2_direction_from_bit_0,
           q2_direction_inverted, q2_port_from_low_bits, q2_port_shifted_by_15,
           q2_string_and_rep_swapped, q2_rep_from_bit_6, q2_flags_as_ints, q2_direction_as_bool,
           q2_missing_rep, q2_extra_key, q2_port_as_hex_text, q2_returns_a_tuple],
    "q3": [q3_by_virtual_address, q3_ignores_write_permission, q3_write_flag_inverted,
           q3_paging_off_is_a_fault, q3_page_frame_only, q3_own_walk_keeps_flag_bits,
           q3_own_walk_ignores_present, q3_region_end_inclusive, q3_regions_rounded_to_pages,
           q3_any_mapping_is_mmio, q3_labels_swapped, q3_address_zero_faults,
           q3_returns_the_enum, q3_misspelt],
}

RIGHT = {
    "q1": [q1_right_with_debug_prints, q1_right_with_numpy, q1_right_with_one_big_integer],
    "q2": [q2_right_with_debug_prints, q2_right_from_a_bit_string, q2_right_with_a_size_table],
    "q3": [q3_right_with_debug_prints, q3_right_with_its_own_walk, q3_right_as_a_table],
}
