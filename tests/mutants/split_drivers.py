"""Mutants of chapter 03's answers (vmmlib.course.checks.split_drivers): q1 should_notify.
Each function is a whole answer, self-contained.
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


WRONG = {
    "q1": [q1_no_modulo, q1_signed_int32, q1_less_or_equal, q1_window_includes_old_not_new,
           q1_plain_interval, q1_producer_reached_event, q1_only_when_event_is_new,
           q1_always_notify, q1_mod_2_16, q1_mask_31_bits, q1_one_side_masked,
           q1_window_shifted_by_one, q1_returns_an_int, q1_returns_numpy_bool],
}
RIGHT = {
    "q1": [q1_right_distance_from_old, q1_right_numpy_uint32, q1_right_ctypes_with_print],
}
