"""Mutants of chapter 03's answers (vmmlib.course.checks.split_drivers): q1 should_notify,
q2 blkif_requests, q3 grant_status, q4 count_notifications. Each function is a whole answer;
the q2, q3 and q4 variants share one parametrised answer each (``_requests``, ``_status``,
``_simulate``), each mutant changing one rule of it.
"""

# --- q1: should_notify(old, new, event) -> bool ---------------------------------------------


def q1_no_modulo(old, new, event):
    return new - event < new - old  # Python ints never wrap


def q1_signed_int32(old, new, event):
    def s32(x):
        x &= 0xFFFFFFFF
        return x - (1 << 32) if x >= 1 << 31 else x

    return s32(new - event) < s32(new - old)


def q1_less_or_equal(old, new, event):
    return (new - event) % 2**32 <= (new - old) % 2**32


def q1_window_includes_old_not_new(old, new, event):
    return (event - old) % 2**32 < (new - old) % 2**32  # [old, new)


def q1_plain_interval(old, new, event):
    return old < event <= new


def q1_producer_reached_event(old, new, event):
    return (new - event) % 2**32 < 2**31  # ignores old: notifies on every push past the event


def q1_only_when_event_is_new(old, new, event):
    return event == new


def q1_always_notify(old, new, event):
    return new != old


def q1_mod_2_16(old, new, event):
    return (new - event) % 2**16 < (new - old) % 2**16


def q1_mask_31_bits(old, new, event):
    return (new - event) & 0x7FFFFFFF < (new - old) & 0x7FFFFFFF


def q1_one_side_masked(old, new, event):
    return (new - event) & 0xFFFFFFFF < new - old


def q1_window_shifted_by_one(old, new, event):
    return (new - event + 1) % 2**32 < (new - old) % 2**32  # (old - 1, new - 1]


def q1_returns_an_int(old, new, event):
    return int((new - event) % 2**32 < (new - old) % 2**32)


def q1_returns_numpy_bool(old, new, event):
    import numpy as np

    return np.uint32(new - event & 0xFFFFFFFF) < np.uint32(new - old & 0xFFFFFFFF)


def q1_right_distance_from_old(old, new, event):
    return (event - old - 1) % 2**32 < (new - old) % 2**32  # event - old in 1 … new - old


def q1_right_numpy_uint32(old, new, event):
    import numpy as np

    with np.errstate(over="ignore"):
        a, b, c = np.uint32(old), np.uint32(new), np.uint32(event)
        return bool(np.uint32(b - c) < np.uint32(b - a))


def q1_right_ctypes_with_print(old, new, event):
    import ctypes

    ahead = ctypes.c_uint32(new - event).value
    published = ctypes.c_uint32(new - old).value
    print(f"debug: new - event = {ahead}, new - old = {published}")
    return ahead < published



# --- q2: blkif_requests(op, sector, count, buffer) -> [request, ...] ------------------------


def _requests(op, sector, count, buffer, per_request=11, sectors_per_page=8, inclusive=True,
              readonly=None, gfn_shift=12, split_by_bytes=False, first_from_page=True,
              sector_step=None, lists=True):
    page = sectors_per_page * 512
    pages = []  # [gfn, first, last] of each page the buffer touches
    addr, left = buffer, count * 512
    while left:
        offset = addr % page if first_from_page else 0
        n = min(left, page - addr % page)
        last = (offset + n - 1) // 512
        pages.append([addr >> gfn_shift, offset // 512, last if inclusive else last + 1])
        addr, left = addr + n, left - n
    if split_by_bytes:  # 88 sectors a request, wherever they fall
        groups, i = [], 0
        for start in range(0, count, per_request * 8):
            end_addr = buffer + min(count, start + per_request * 8) * 512 - 1
            j = i
            while j < len(pages) and (pages[j][0] << gfn_shift) <= end_addr:
                j += 1
            groups.append(pages[i:j])
            i = j
    else:
        groups = [pages[i : i + per_request] for i in range(0, len(pages), per_request)]
    out, at = [], sector
    ro = (op == "write") if readonly is None else readonly(op)
    for n, group in enumerate(groups):
        moved = sum(last - first + (1 if inclusive else 0) for _, first, last in group)
        segs = group if lists else [tuple(s) for s in group]
        out.append({"sector_number": at if sector_step is None else sector + n * sector_step,
                    "readonly": ro, "segments": segs})
        at += moved
    return out


def q2_last_sect_exclusive(op, sector, count, buffer):
    return _requests(op, sector, count, buffer, inclusive=False)


def q2_writable_grants_for_writes(op, sector, count, buffer):
    return _requests(op, sector, count, buffer, readonly=lambda op: op == "read")


def q2_every_grant_writable(op, sector, count, buffer):
    return _requests(op, sector, count, buffer, readonly=lambda op: False)


def q2_no_split(op, sector, count, buffer):
    return _requests(op, sector, count, buffer, per_request=10**6)


def q2_twelve_segments(op, sector, count, buffer):
    return _requests(op, sector, count, buffer, per_request=12)


def q2_split_every_88_sectors(op, sector, count, buffer):
    return _requests(op, sector, count, buffer, split_by_bytes=True)


def q2_first_sect_always_0(op, sector, count, buffer):
    return _requests(op, sector, count, buffer, first_from_page=False)


def q2_byte_address_not_gfn(op, sector, count, buffer):
    out = _requests(op, sector, count, buffer)
    for request in out:
        request["segments"] = [[gfn << 12, first, last] for gfn, first, last in
                               request["segments"]]
    return out


def q2_sector_steps_of_88(op, sector, count, buffer):
    return _requests(op, sector, count, buffer, sector_step=88)


def q2_a_segment_per_8_sectors(op, sector, count, buffer):
    # 8 sectors per segment counted from the buffer, as if every buffer were page-aligned
    out, at = [], sector
    segs = [[(buffer >> 12) + i // 8, 0, min(8, count - i) - 1] for i in range(0, count, 8)]
    for i in range(0, len(segs), 11):
        group = segs[i : i + 11]
        out.append({"sector_number": at, "readonly": op == "write", "segments": group})
        at += sum(last + 1 for _, _, last in group)
    return out


def q2_last_sect_from_end_offset(op, sector, count, buffer):
    out = _requests(op, sector, count, buffer)
    addr = buffer
    for request in out:
        for seg in request["segments"]:
            end = addr + (seg[2] - seg[1] + 1) * 512  # one past the last byte
            seg[2] = (end % 4096) // 512  # 0 for a page used to its end
            addr = end
    return out


def q2_segments_as_dicts(op, sector, count, buffer):
    out = _requests(op, sector, count, buffer)
    for request in out:
        request["segments"] = [{"gfn": g, "first_sect": f, "last_sect": la}
                               for g, f, la in request["segments"]]
    return out


def q2_right_sector_by_sector(op, sector, count, buffer):
    pages = {}
    for i in range(count):
        addr = buffer + 512 * i
        gfn, sect = addr >> 12, (addr & 0xFFF) >> 9
        first, last = pages.get(gfn, (sect, sect))
        pages[gfn] = (min(first, sect), max(last, sect))
    segs = [[gfn, first, last] for gfn, (first, last) in sorted(pages.items())]
    out, at = [], sector
    while segs:
        group, segs = segs[:11], segs[11:]
        out.append({"segments": group, "readonly": op != "read", "sector_number": at})
        at += sum(last - first + 1 for _, first, last in group)
    return out


def q2_right_tuples_and_print(op, sector, count, buffer):
    requests = _requests(op, sector, count, buffer, lists=False)
    print(f"debug: {len(requests)} requests for {count} sectors at {buffer:#x}")
    return requests


# --- q3: grant_status(op, caller, dom, ref, write, domains) -> GNTST_* ---------------------


def _status(op, caller, dom, ref, write, domains, bad_ref=-3, readonly_refuses=None,
            check_domid=True, type_ok=None, sub_page_blocks=None, frame_first=False,
            ref_ok=None, frame_ok=None, in_use_refuses=False, readonly_status=-1,
            no_table_status=-3, ram_of=None):
    if dom not in domains:
        return -2
    table = domains[dom]["grant_table"]
    if table is None:
        return no_table_status
    if not (ref < len(table) if ref_ok is None else ref_ok(ref, len(table))):
        return bad_ref
    flags, domid, frame = table[ref]
    ram = domains[dom if ram_of is None else ram_of(caller, dom)]["ram_pages"]
    page_ok = frame < ram if frame_ok is None else frame_ok(frame, ram)
    if frame_first and not page_ok:
        return -9
    if not (flags & 3 == 1 if type_ok is None else type_ok(flags)):
        return -1
    if (op == "map" if sub_page_blocks is None else sub_page_blocks(op)) and flags & 0x100:
        return -1
    if check_domid and domid != caller:
        return -1
    if in_use_refuses and flags & 0x18:
        return -1
    if (write if readonly_refuses is None else readonly_refuses(write)) and flags & 4:
        return readonly_status
    return 0 if page_ok else -9


def q3_bad_gntref_is_minus_4(*args):
    return _status(*args, bad_ref=-4)


def q3_read_only_refuses_reads_too(*args):
    return _status(*args, readonly_refuses=lambda write: True)


def q3_ignores_read_only(*args):
    return _status(*args, readonly_refuses=lambda write: False)


def q3_ignores_the_grantee(*args):
    return _status(*args, check_domid=False)


def q3_type_as_bit_0(*args):
    return _status(*args, type_ok=lambda flags: flags & 1)


def q3_sub_page_never_usable(*args):
    return _status(*args, sub_page_blocks=lambda op: True)


def q3_sub_page_mappable(*args):
    return _status(*args, sub_page_blocks=lambda op: False)


def q3_frame_checked_first(*args):
    return _status(*args, frame_first=True)


def q3_ref_off_by_one(*args):
    return _status(*args, ref_ok=lambda ref, n: ref <= n)


def q3_frame_off_by_one(*args):
    return _status(*args, frame_ok=lambda frame, ram: frame <= ram)


def q3_in_use_refused(*args):
    return _status(*args, in_use_refuses=True)


def q3_permission_denied_for_read_only(*args):
    return _status(*args, readonly_status=-8)


def q3_no_table_is_a_bad_domain(*args):
    return _status(*args, no_table_status=-2)


def q3_flags_must_be_exact(*args):
    return _status(*args, type_ok=lambda flags: flags in (1, 5))


def q3_frame_of_the_callers_ram(*args):
    return _status(*args, ram_of=lambda caller, dom: caller)


def q3_right_as_written(op, caller, dom, ref, write, domains):
    GNTST_okay, GNTST_general_error, GNTST_bad_domain = 0, -1, -2
    GNTST_bad_gntref, GNTST_bad_page = -3, -9
    if dom not in domains:
        return GNTST_bad_domain
    table = domains[dom]["grant_table"] or []
    if ref >= len(table):
        return GNTST_bad_gntref
    flags, domid, frame = table[ref]
    mask = 0x3 | (0x100 if op == "map" else 0)
    if flags & mask != 1 or domid != caller or (write and flags & 0x4):
        return GNTST_general_error
    return GNTST_okay if frame < domains[dom]["ram_pages"] else GNTST_bad_page


def q3_right_with_exceptions_and_print(op, caller, dom, ref, write, domains):
    class Refused(Exception):
        pass

    def need(ok, status):
        if not ok:
            raise Refused(status)

    try:
        need(dom in domains, -2)
        granter = domains[dom]
        need(granter["grant_table"] is not None and 0 <= ref < len(granter["grant_table"]), -3)
        flags, domid, frame = granter["grant_table"][ref]
        print(f"debug: entry {ref} of domain {dom}: {flags:#x} {domid} {frame:#x}")
        need(flags & 3 == 1 and not (op == "map" and flags & 256), -1)
        need(domid == caller and not (write and flags & 4), -1)
        need(frame < granter["ram_pages"], -9)
    except Refused as refused:
        return refused.args[0]
    return 0


# --- q4: count_notifications(start, ops) -> {"front": n, "back": m} ------------------------


def _simulate(start, ops, rearm=1, rearm_with_work=False, rearm_from_prod=False,
              every_push=False, ignore_old=False, init=None, modulo=True, swap_checks=False,
              swap_keys=False, window_shift=0, collect_rearms=False, answer_reads_req=False):
    mask = 0xFFFFFFFF
    wrap = (lambda x: x & mask) if modulo else (lambda x: x)

    def notify(old, new, event):
        if every_push:
            return new != old
        if ignore_old:
            return (new - event) & mask < 2**31
        new_d = wrap(new - event + window_shift)
        return (new_d if modulo else new - event + window_shift) < (
            wrap(new - old) if modulo else new - old)

    s = {"req_prod": start, "rsp_prod": start, "req_cons": start, "rsp_cons": start,
         "rsp_prod_pvt": start,
         "req_event": (start + 1) & mask if init is None else init(start),
         "rsp_event": (start + 1) & mask if init is None else init(start)}
    if not modulo:  # indices stored masked, compared as plain ints
        s["req_event"] &= mask
        s["rsp_event"] &= mask
    sent = {"front": 0, "back": 0}

    def check(prod, cons, event):
        work = s[prod] != s[cons]
        if rearm is not None and (not work or rearm_with_work):
            s[event] = (s[prod if rearm_from_prod else cons] + rearm) & mask
        return work

    for name, *n in ops:
        if name == "send":
            old = s["req_prod"]
            s["req_prod"] = (old + n[0]) & mask
            sent["front"] += notify(old, s["req_prod"], s["req_event"])
        elif name == "answer":
            old = s["rsp_prod"]
            s["rsp_prod"] = (old + n[0]) & mask
            event = s["req_event"] if answer_reads_req else s["rsp_event"]
            sent["back"] += notify(old, s["rsp_prod"], event)
        elif name == "take":
            s["req_cons"] = s["req_prod"]
        elif name == "collect":
            s["rsp_cons"] = s["rsp_prod"]
            if collect_rearms:
                s["rsp_event"] = (s["rsp_cons"] + 1) & mask
        elif (name == "back_check") != swap_checks:
            check("req_prod", "req_cons", "req_event")
        else:
            check("rsp_prod", "rsp_cons", "rsp_event")
    sent = {k: int(v) for k, v in sent.items()}
    return {"front": sent["back"], "back": sent["front"]} if swap_keys else sent


def q4_checks_never_rearm(start, ops):
    return _simulate(start, ops, rearm=None)


def q4_rearm_to_cons(start, ops):
    return _simulate(start, ops, rearm=0)


def q4_rearm_to_cons_plus_2(start, ops):
    return _simulate(start, ops, rearm=2)


def q4_rearm_past_prod_even_with_work(start, ops):
    return _simulate(start, ops, rearm_with_work=True, rearm_from_prod=True)


def q4_every_push_notifies(start, ops):
    return _simulate(start, ops, every_push=True)


def q4_producer_reached_event(start, ops):
    return _simulate(start, ops, ignore_old=True)


def q4_event_starts_at_start(start, ops):
    return _simulate(start, ops, init=lambda start: start)


def q4_event_starts_at_1(start, ops):
    return _simulate(start, ops, init=lambda start: 1)


def q4_no_modulo_in_the_rule(start, ops):
    return _simulate(start, ops, modulo=False)


def q4_checks_swapped(start, ops):
    return _simulate(start, ops, swap_checks=True)


def q4_keys_swapped(start, ops):
    return _simulate(start, ops, swap_keys=True)


def q4_window_includes_old(start, ops):
    return _simulate(start, ops, window_shift=1)


def q4_collect_rearms(start, ops):
    return _simulate(start, ops, collect_rearms=True)


def q4_answer_reads_req_event(start, ops):
    return _simulate(start, ops, answer_reads_req=True)


def q4_right_unbounded_ints(start, ops):
    # Python ints never wrap: with nothing ever masked the differences are all small and
    # positive, so the rule needs no modulo
    req_prod = req_cons = rsp_prod = rsp_cons = start
    req_event = rsp_event = start + 1
    front = back = 0
    for op in ops:
        if op[0] == "send":
            old, req_prod = req_prod, req_prod + op[1]
            front += old < req_event <= req_prod
        elif op[0] == "answer":
            old, rsp_prod = rsp_prod, rsp_prod + op[1]
            back += old < rsp_event <= rsp_prod
        elif op[0] == "take":
            req_cons = req_prod
        elif op[0] == "collect":
            rsp_cons = rsp_prod
        elif op[0] == "back_check" and req_prod == req_cons:
            req_event = req_cons + 1
        elif op[0] == "front_check" and rsp_prod == rsp_cons:
            rsp_event = rsp_cons + 1
    return {"front": int(front), "back": int(back)}


def q4_right_ring_objects_with_print(start, ops):
    M = 2**32

    class End:
        def __init__(self):
            self.prod = self.cons = start
            self.event = (start + 1) % M

        def push(self, k):
            old, self.prod = self.prod, (self.prod + k) % M
            return (self.prod - self.event) % M < (self.prod - old) % M

        def final_check(self):
            if self.prod == self.cons:
                self.event = (self.cons + 1) % M

    requests, responses = End(), End()
    count = {"front": 0, "back": 0}
    for name, *k in ops:
        print("debug:", name, *k)
        if name == "send":
            count["front"] += 1 if requests.push(k[0]) else 0
        elif name == "answer":
            count["back"] += 1 if responses.push(k[0]) else 0
        elif name == "take":
            requests.cons = requests.prod
        elif name == "collect":
            responses.cons = responses.prod
        else:
            (requests if name == "back_check" else responses).final_check()
    return count


WRONG = {
    "q1": [q1_no_modulo, q1_signed_int32, q1_less_or_equal, q1_window_includes_old_not_new,
           q1_plain_interval, q1_producer_reached_event, q1_only_when_event_is_new,
           q1_always_notify, q1_mod_2_16, q1_mask_31_bits, q1_one_side_masked,
           q1_window_shifted_by_one, q1_returns_an_int, q1_returns_numpy_bool],
    "q2": [q2_last_sect_exclusive, q2_writable_grants_for_writes, q2_every_grant_writable,
           q2_no_split, q2_twelve_segments, q2_split_every_88_sectors, q2_first_sect_always_0,
           q2_byte_address_not_gfn, q2_sector_steps_of_88, q2_a_segment_per_8_sectors,
           q2_last_sect_from_end_offset, q2_segments_as_dicts],
    "q3": [q3_bad_gntref_is_minus_4, q3_read_only_refuses_reads_too, q3_ignores_read_only,
           q3_ignores_the_grantee, q3_type_as_bit_0, q3_sub_page_never_usable,
           q3_sub_page_mappable, q3_frame_checked_first, q3_ref_off_by_one,
           q3_frame_off_by_one, q3_in_use_refused, q3_permission_denied_for_read_only,
           q3_no_table_is_a_bad_domain, q3_flags_must_be_exact, q3_frame_of_the_callers_ram],
    "q4": [q4_checks_never_rearm, q4_rearm_to_cons, q4_rearm_to_cons_plus_2,
           q4_rearm_past_prod_even_with_work, q4_every_push_notifies, q4_producer_reached_event,
           q4_event_starts_at_start, q4_event_starts_at_1, q4_no_modulo_in_the_rule,
           q4_checks_swapped, q4_keys_swapped, q4_window_includes_old, q4_collect_rearms,
           q4_answer_reads_req_event],
}
RIGHT = {
    "q1": [q1_right_distance_from_old, q1_right_numpy_uint32, q1_right_ctypes_with_print],
    "q2": [q2_right_sector_by_sector, q2_right_tuples_and_print],
    "q3": [q3_right_as_written, q3_right_with_exceptions_and_print],
    "q4": [q4_right_unbounded_ints, q4_right_ring_objects_with_print],
}
