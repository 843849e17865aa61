"""Answers as plain data: what a check hands from the student's kernel to the grader.

A check never compares the student's return value itself: an object can claim to equal
anything, a ``str`` subclass can carry a custom ``__eq__``, a numpy bool prints like a bool.
Each answer is first turned into a :class:`Result`, built only from values of the exact
built-in types ``None``, ``bool``, ``int``, ``str``, ``list`` and ``dict`` with ``str`` keys
(a ``tuple`` counts as a list). The student's object is inspected with ``type(x) is ...`` and
the built-in types' own methods only, so none of its methods ever runs. Anything else becomes
a ``not-plain`` result naming its type, which never equals an expected answer.

A result is one line of text, ``<kind> <payload>``:

* ``value <json>``: the answer, as canonical JSON (sorted keys, no spaces), so ``True`` and
  ``1`` differ (type-strict) and two equal answers give the same bytes;
* ``raised "<Type>: <message>"``: the student's function raised instead of answering;
* ``not-plain "<class ...>"``: it returned an object of another type;
* ``too-big "<what>"``: the answer was nested deeper or was larger than any expected answer.

A check's *emission* is a header line naming the question, then one numbered result line per
case. Grading compares the emission the student's kernel prints with the one the grader
computed from the reference implementation (see :mod:`vmmlib.course.grading`); the same text
is parsed back here to tell the student which case went wrong. This module is stdlib-only.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

MAX_DEPTH = 8
MAX_ITEMS = 4096
MAX_TEXT = 4000
MAX_MESSAGE = 300

VALUE, RAISED, NOT_PLAIN, TOO_BIG = "value", "raised", "not-plain", "too-big"
KINDS = (VALUE, RAISED, NOT_PLAIN, TOO_BIG)


class Result(NamedTuple):
    """One case's outcome as plain data: ``kind`` (see the module doc) and its payload text."""

    kind: str
    payload: str

    def line(self) -> str:
        return f"{self.kind} {self.payload}"

    def value(self) -> Any:
        """The answer as Python data (only for ``value`` results)."""
        return json.loads(self.payload)


class _NotPlain(Exception):
    def __init__(self, kind: str, what: str) -> None:
        super().__init__(what)
        self.kind, self.what = kind, what


def _type_name(value: object) -> str:
    # type.__repr__ is the built-in one, whatever metaclass the student's class has
    return type.__repr__(type(value))


def _plain(value: object, depth: int, budget: list[int]) -> object:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _NotPlain(TOO_BIG, f"more than {MAX_ITEMS} values or {MAX_DEPTH} levels deep")
    kind = type(value)
    if value is None or kind is bool:
        return value
    if kind is int:
        if int.bit_length(value) > 256:
            raise _NotPlain(TOO_BIG, f"an integer of {int.bit_length(value)} bits")
        return value
    if kind is str:
        if str.__len__(value) > MAX_TEXT:
            raise _NotPlain(TOO_BIG, f"a text of {str.__len__(value)} characters")
        return value
    if kind is list or kind is tuple:
        return [_plain(item, depth + 1, budget) for item in (list.__iter__(value) if kind is list
                                                             else tuple.__iter__(value))]
    if kind is dict:
        plain = {}
        for key, item in dict.items(value):
            if type(key) is not str:
                raise _NotPlain(NOT_PLAIN, f"a dict key {_type_name(key)}")
            plain[key] = _plain(item, depth + 1, budget)
        return plain
    raise _NotPlain(NOT_PLAIN, _type_name(value))


def as_result(value: object) -> Result:
    """The result for an answer the student's function returned (never calls its methods)."""
    try:
        plain = _plain(value, 0, [MAX_ITEMS])
    except _NotPlain as problem:
        return Result(problem.kind, json.dumps(problem.what))
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if len(text) > MAX_TEXT:
        return Result(TOO_BIG, json.dumps(f"an answer of {len(text)} characters as JSON"))
    return Result(VALUE, text)


def raised(error: BaseException) -> Result:
    """The result for a case where the student's function raised ``error``."""
    try:
        message = BaseException.__str__(error)
    except Exception:  # an exception whose arguments cannot even be printed
        message = "(no message)"
    text = f"{_type_name(error)[8:-2].rpartition('.')[2]}: {message}".rstrip(": ")
    return Result(RAISED, json.dumps(text[:MAX_MESSAGE]))


def header(label: str, function: str, count: int) -> str:
    """The first line of a check's emission."""
    return f"{label} {function}: results of {count} cases"


def emission(label: str, function: str, results: list[Result]) -> str:
    """The text a graded check cell shows: the header, then ``<n> <kind> <payload>`` lines."""
    lines = [header(label, function, len(results))]
    lines += [f"{number} {result.line()}" for number, result in enumerate(results, start=1)]
    return "\n".join(lines) + "\n"


class EmissionError(ValueError):
    """A text that is not the emission a check prints."""


def parse_emission(text: str, label: str, function: str, count: int) -> list[Result]:
    """The results in an emission; EmissionError if it is not the one this check prints."""
    lines = text.splitlines()
    if not lines or lines[0] != header(label, function, count):
        raise EmissionError(f"the first line is not {header(label, function, count)!r}")
    if len(lines) != count + 1:
        raise EmissionError(f"{len(lines) - 1} result lines for {count} cases")
    results = []
    for number, line in enumerate(lines[1:], start=1):
        index, _, rest = line.partition(" ")
        kind, _, payload = rest.partition(" ")
        if index != str(number) or kind not in KINDS or not payload:
            raise EmissionError(f"line {number + 1} is not a result line: {line[:80]!r}")
        try:
            json.loads(payload)
        except ValueError:
            raise EmissionError(f"line {number + 1} has no valid payload") from None
        results.append(Result(kind, payload))
    return results
