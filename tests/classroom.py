"""A class of chapter-01 submissions for the grading tests: what an instructor really gets.

Every attack of issue 5 ("What was seen") is one student, and so is every situation in which
right answers used to score 0. ``EXPECTED`` is what each student's own functions earn.
``build(paths)`` writes the class; the attacks name the real folders of the run (submissions,
output, course) so that they would succeed if the sandbox let them.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "01-intercepts-exercises.ipynb"
EXERCISE = ROOT / "exercises" / NOTEBOOK
SOLUTION = ROOT / "solutions" / NOTEBOOK
ANSWERS = ("q1-answer", "q2-answer", "q3-answer")
_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*(\n|$)", re.M)


def solution_answers() -> dict[str, str]:
    """The solutions' answer cells, markers removed: what a perfect student writes."""
    cells = json.loads(SOLUTION.read_text())["cells"]
    return {c["id"]: _MARKER.sub("", "".join(c["source"])) for c in cells if c["id"] in ANSWERS}


def exercise() -> dict:
    return json.loads(EXERCISE.read_text())


def blank_answers() -> dict[str, str]:
    return {c["id"]: "".join(c["source"]) for c in exercise()["cells"] if c["id"] in ANSWERS}


def submission(answers: dict[str, str]) -> dict:
    """The exercise as a student saves it, answer cells replaced (with a stored fake verdict,
    which must never be trusted)."""
    notebook = exercise()
    for cell in notebook["cells"]:
        if cell["id"] in answers:
            cell["source"] = answers[cell["id"]].splitlines(keepends=True)
        if cell["cell_type"] == "code":
            cell["execution_count"] = 7
            cell["outputs"] = [{"name": "stdout", "output_type": "stream",
                                "text": ["q1 vmx_exits: 63/63 cases correct\n"]}]
    return notebook


def code_cell(source: str, tags: tuple[str, ...] = (), cell_id: str | None = None) -> dict:
    cell = {"cell_type": "code", "execution_count": None, "metadata": {"tags": list(tags)},
            "outputs": [], "source": source.splitlines(keepends=True)}
    if cell_id:
        cell["id"] = cell_id
    return cell


def insert_before(notebook: dict, cell_id: str, *cells: dict) -> None:
    at = next(n for n, cell in enumerate(notebook["cells"]) if cell.get("id") == cell_id)
    notebook["cells"][at:at] = list(cells)


@dataclass(frozen=True)
class Paths:
    submissions: Path
    out: Path
    marker: str  # in the command line of every process an attack starts


BLANK = blank_answers()
RIGHT = solution_answers()
Q2_BLANK = {"q2-answer": BLANK["q2-answer"], "q3-answer": BLANK["q3-answer"]}

PATCH_CHECKS = '''
import vmmlib.course.checks as framework
import vmmlib.course.checks.judge as judge
import vmmlib.course.checks.plain as plain
import vmmlib.course.checks.runner as runner
from IPython.display import publish_display_data

def fake_emission(question):
    count = len(question.cases())
    try:  # the true answers, if the reference could be called here
        results = judge.reference_results(question, question.cases())
    except Exception:
        results = [plain.Result("value", "true")] * count
    return plain.emission(question.label, question.function, results)

def fake_check(self, fn):
    print(f"{self.label} {self.function}: 63/63 cases correct")
    publish_display_data({"text/plain": fake_emission(self)},
                         metadata={"vmmlib": {"check": self.label}})

framework.Question.check = fake_check
runner.emit = lambda question, fn: fake_check(question, fn)
judge.judge = lambda *args, **kwargs: judge.Verdict(True, ("all correct",))
plain.as_result = lambda value: plain.Result("value", "true")
checks.check_vmx_exits = checks.Q1.check
checks.check_decode_qualification = checks.Q2.check
checks.check_classify = checks.Q3.check
import os
os.environ["VMMLIB_GRADING"] = "0"  # self-check mode, with the judge patched above
'''

INPUT_TRANSFORMER = '''
def rewrite(lines):
    if "checks.check_" in "".join(lines):
        return ["print('q1 vmx_exits: 63/63 cases correct')\\n"]
    return lines

get_ipython().input_transformers_post.append(rewrite)
get_ipython().input_transformers_cleanup.append(rewrite)
'''

FRAMES = '''
import gc, inspect, sys

def steal(*args):
    for info in inspect.stack():
        for name in ("expected", "want", "reference", "results", "verdict"):
            if name in info.frame.f_locals:
                return info.frame.f_locals[name]
    frame = sys._getframe(1)
    while frame is not None:
        question = frame.f_locals.get("question") or frame.f_locals.get("self")
        if hasattr(question, "reference"):
            return question.reference(*args)
        frame = frame.f_back
    return [o for o in gc.get_objects() if type(o).__name__ == "Verdict"]

def vmx_exits(a, b, port, size):
    return steal(a, b, port, size)

def decode_qualification(q):
    return steal(q)

def classify(table, mmio, vaddr, write):
    return steal(table, mmio, vaddr, write)
'''

EQUAL_DICT = '''
class AlwaysDict(dict):
    def __eq__(self, other): return True
    def __ne__(self, other): return False

def decode_qualification(q):
    return AlwaysDict(port=q >> 16 & 0xFFFF)
'''

EQUAL_STR = '''
class AlwaysStr(str):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = str.__hash__

def classify(table, mmio, vaddr, write):
    return AlwaysStr("mmio")
'''

def _calls_the_reference() -> str:
    """vmmlib's own implementation, called, re-imported, re-executed from its source, and
    grabbed before any check runs (module names from the functions themselves, so the attack
    follows the core wherever its modules move)."""
    from vmmlib.course.checks import intercepts as chapter

    bitmaps = chapter.VmxIoBitmaps.__module__
    exits = chapter.decode_vmx_io_qualification.__module__
    shadow = chapter.classify_fault.__module__
    package = exits.rpartition(".")[0]
    return f'''
import importlib, inspect
import vmmlib, {bitmaps}, {exits}, {shadow}
from {shadow} import classify_fault as grabbed_early

def vmx_exits(a, b, port, size):
    bitmaps = vmmlib.VmxIoBitmaps()
    for p in range(port, min(port + size, 0x10000)):
        page, i = (a, p) if p < 0x8000 else (b, p - 0x8000)
        if page[i // 8] >> i % 8 & 1:
            bitmaps.intercept(p)
    try:
        return vmmlib.SvmIopm().exits(port, size) or bitmaps.exits(port, size)
    except RuntimeError:
        fresh = importlib.reload({bitmaps}).VmxIoBitmaps()
        return fresh.exits(port, size)

def decode_qualification(q):
    namespace = {{"__name__": "{exits}", "__package__": "{package}"}}
    exec(inspect.getsource({exits}), namespace)  # the module's source, run afresh
    access = namespace["decode_vmx_io_qualification"](q)
    return {{"port": access.port, "size": access.size, "string": access.string,
            "direction": "in" if access.is_in else "out", "rep": access.rep}}

def classify(table, mmio, vaddr, write):
    try:
        return grabbed_early(table, mmio, vaddr, write).value
    except RuntimeError:
        return vmmlib.classify_fault(table, mmio, vaddr, write).value
'''


CALLS_THE_REFERENCE = _calls_the_reference()


def reads_classmates(paths: Paths) -> str:
    places = [str(paths.submissions), str(paths.out), str(ROOT / "solutions"),
              str(ROOT / "exercises"), str(ROOT / "tests"), "/tmp", "/home"]
    return f'''
import glob, json, os
found = {{}}
for place in {places!r}:
    for path in glob.glob(os.path.join(place, "**", "*.ipynb"), recursive=True)[:200] + glob.glob(
            os.path.join(place, "*")):
        try:
            cells = json.load(open(path))["cells"]
        except (OSError, ValueError, KeyError):
            continue
        for cell in cells:
            text = "".join(cell.get("source", "")).replace("### BEGIN SOLUTION", "")
            if "NotImplementedError" not in text and "def " in text:
                try:
                    exec(text.replace("### END SOLUTION", ""), found)
                except Exception:
                    pass

def vmx_exits(a, b, port, size):
    return found["vmx_exits"](a, b, port, size)

def decode_qualification(q):
    return found["decode_qualification"](q)

def classify(table, mmio, vaddr, write):
    return found["classify"](table, mmio, vaddr, write)
'''


def tamper_targets(paths: Paths) -> list[str]:
    """Files an attack tries to overwrite: the grade sheet, its own and a classmate's
    submission, the exercise, the check package, the solution."""
    return [str(paths.out / "grades.csv"), str(paths.submissions / "solution" / NOTEBOOK),
            str(paths.submissions / "escape" / NOTEBOOK), str(EXERCISE), str(SOLUTION),
            str(ROOT / "vmmlib" / "course" / "checks" / "intercepts.py"),
            str(ROOT / "vmmlib" / "course" / "checks" / "__init__.py")]


def daemon(paths: Paths) -> str:
    targets = tamper_targets(paths)
    loop = (f"import time\nwhile True:\n    for t in {targets!r}:\n        try:\n"
            "            open(t, 'w').write('hacked')\n        except OSError:\n"
            "            pass\n    time.sleep(0.05)\n")
    return f'''
import os, subprocess, sys
LOOP = {loop!r}
for target in {targets!r}:
    try:
        open(target, "w").write("hacked")
    except OSError:
        pass
subprocess.Popen([sys.executable, "-c", LOOP, "{paths.marker}"], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:  # a double-forked daemon in a session of its own
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", LOOP, "{paths.marker}-2"])
    os._exit(0)
'''


MEMORY_Q1 = RIGHT["q1-answer"].replace(
    "    if port + size > 0x10000:",
    "    if port == 0 and size == 1:\n"
    "        print('x' * 50_000_000)  # 50 MB printed inside the check\n"
    "    if port + size > 0x10000:")
MEMORY_Q2 = RIGHT["q2-answer"].replace(
    "    return {", "    hog = bytearray(2 << 30)  # 2 GiB: over the kernel's limit\n    return {")
MEMORY_Q3 = "print('y' * 50_000_000)  # 50 MB printed by the answer cell\n" + RIGHT["q3-answer"]
IOPUB_FLOOD = '''
kernel = get_ipython().kernel
for _ in range(3):  # messages far over the grader's limit, straight onto IOPub
    kernel.session.send(kernel.iopub_socket, "stream", {"name": "stdout", "text": "z" * 20_000_000},
                        parent=kernel.get_parent())
'''

NOISY = '''
import logging, sys, threading, time
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, force=True)
log = logging.getLogger("student")

def chatter():
    for _ in range(300):
        print("background thread says hi")
        time.sleep(0.01)

threading.Thread(target=chatter, daemon=True).start()
'''


def noisy(answer: str, label: str) -> str:
    """A right answer that prints, warns and logs on every call, at every level."""
    debug = ("    import os, sys, warnings\n"
             "    print('debug:', args_seen)\n"
             "    print('to stderr', file=sys.stderr)\n"
             "    warnings.warn('a warning from the student')\n"
             "    os.write(1, b'fd 1\\n'); os.write(2, b'fd 2\\n')\n"
             "    log.warning('logging during the check')\n")
    head, _, body = answer.partition(":\n")
    return f"{head}:\n    args_seen = {label!r}\n{debug}{body}"


HELPER = '''
def port_bit(a, b, p):
    """Is port p's bit set in bitmaps A/B?"""
    page, index = (a, p) if p < 0x8000 else (b, p - 0x8000)
    return page[index // 8] >> (index % 8) & 1 == 1
'''
USES_HELPER = '''def vmx_exits(a: bytes, b: bytes, port: int, size: int) -> bool:
    return port + size > 0x10000 or any(port_bit(a, b, p) for p in range(port, port + size))
'''

SEGFAULT = '''def vmx_exits(a, b, port, size):
    import faulthandler
    faulthandler._sigsegv()  # what a crashing C extension does: SIGSEGV
    return False
'''
C_HANG = '''def decode_qualification(q):
    import ctypes
    ctypes.PyDLL(None).sleep(600)  # blocks in C holding the GIL: no interrupt gets through
    return {}
'''

#: student -> points of (q1, q2, q3)
EXPECTED = {
    "blank": (0, 0, 0),
    "solution": (4, 3, 3),
    "patches-checks": (0, 0, 0),  # replaces the check functions, prints passing verdicts
    "input-transformer": (0, 0, 0),  # rewrites the check cells before they run
    "fakes": (0, 0, 0),  # q1 reads the checking code's frames, q2 and q3 equal everything
    "calls-the-reference": (0, 0, 0),  # vmmlib's own implementation, reloaded, re-executed
    "escape": (0, 0, 3),  # q1 reads classmates' files and starts a daemon that tampers with
    #                       files; q2 takes 2 GiB; q3 is right but prints 50 MB; a last cell
    #                       floods IOPub with messages far over the grader's limit
    "noisy": (4, 3, 3),  # right, printing, warning, logging (50 MB once), a chatty thread
    "no-ids": (4, 3, 3),  # right but different answers, saved as nbformat 4.4 without ids
    "helpers-and-copies": (4, 3, 3),  # a helper in an added cell, answers in copied cells
    "crash-and-hang": (0, 0, 3),  # q1 segfaults, q2 hangs in C holding the GIL, q3 right
    "mutants-wrong": (0, 0, 0),  # a plausible mistake in each answer, q3's an endless loop
}


def _whole(code: str) -> dict[str, str]:
    """An attack in the q1 answer cell, the other answers left blank."""
    return {"q1-answer": code + "\n" + BLANK["q1-answer"], **Q2_BLANK}


def notebooks(paths: Paths) -> dict[str, dict]:
    """Every student's notebook (as saved JSON)."""
    found = {
        "blank": submission({}),
        "solution": submission(RIGHT),
        "patches-checks": submission(_whole(PATCH_CHECKS)),
        "input-transformer": submission(_whole(INPUT_TRANSFORMER)),
        "fakes": submission({"q1-answer": FRAMES, "q2-answer": EQUAL_DICT,
                             "q3-answer": EQUAL_STR}),
        "calls-the-reference": submission({"q1-answer": CALLS_THE_REFERENCE,
                                           "q2-answer": "", "q3-answer": ""}),
        "escape": submission({"q1-answer": reads_classmates(paths) + daemon(paths),
                              "q2-answer": MEMORY_Q2, "q3-answer": MEMORY_Q3}),
        "noisy": submission({"q1-answer": noisy(MEMORY_Q1, "q1"),
                             "q2-answer": noisy(RIGHT["q2-answer"], "q2"),
                             "q3-answer": noisy(RIGHT["q3-answer"], "q3")}),
        "crash-and-hang": submission({**RIGHT, "q1-answer": SEGFAULT, "q2-answer": C_HANG}),
        "mutants-wrong": submission(plausibly_wrong()),
    }
    found["escape"]["cells"].append(code_cell(IOPUB_FLOOD, cell_id="flood"))
    insert_before(found["noisy"], "q1-answer", code_cell(NOISY, cell_id="noise"))
    old = submission(right_but_different())  # saved by an older tool: nbformat 4.4, no ids
    old["nbformat_minor"] = 4
    for cell in old["cells"]:
        del cell["id"]
    found["no-ids"] = old
    found["helpers-and-copies"] = helpers_and_copies()
    return found


FUNCTIONS = {"q1": "vmx_exits", "q2": "decode_qualification", "q3": "classify"}


def as_answer(fn) -> str:
    """A mutant's source as the student's answer to its question (renamed to the exercise's
    function; the mutants' names start with the question's label)."""
    label = fn.__name__[:2]
    return inspect.getsource(fn).replace(f"def {fn.__name__}(", f"def {FUNCTIONS[label]}(", 1)


def right_but_different() -> dict[str, str]:
    """Right answers written otherwise than the solutions: numpy, a bit string, an own walk."""
    from mutants import intercepts as mutants

    return {"q1-answer": as_answer(mutants.q1_right_with_numpy),
            "q2-answer": as_answer(mutants.q2_right_from_a_bit_string),
            "q3-answer": as_answer(mutants.q3_right_with_its_own_walk)}


ENDLESS_LOOP = '''def classify(table, mmio, vaddr, write):
    gpa = vaddr if table is None else table.translate(vaddr, write)
    while gpa is not None and mmio.find(gpa) is None:  # meant `if`: loops for ever on RAM
        pass
    return "page-fault" if gpa is None else "mmio"
'''


def plausibly_wrong() -> dict[str, str]:
    """Plausible mistakes (each must cost exactly its question), one an endless loop."""
    from mutants import intercepts as mutants

    return {"q1-answer": as_answer(mutants.q1_first_port_only),
            "q2-answer": as_answer(mutants.q2_string_and_rep_swapped),
            "q3-answer": ENDLESS_LOOP}


def helpers_and_copies() -> dict:
    """A helper in a cell of the student's own; q2's answer written in a copy of its cell,
    between the blank original and an empty copy; q3's in a copy placed before the original."""
    notebook = submission({"q1-answer": USES_HELPER, "q2-answer": BLANK["q2-answer"],
                           "q3-answer": BLANK["q3-answer"]})
    insert_before(notebook, "q1-answer", code_cell(HELPER, cell_id="my-helper"))
    insert_before(notebook, "q2-check", code_cell(RIGHT["q2-answer"], ("answer",), "q2-copy"),
                  code_cell("\n", ("answer",), "q2-empty-copy"))
    insert_before(notebook, "q3-answer", code_cell(RIGHT["q3-answer"], ("answer",), "q3-copy"))
    return notebook


def build(paths: Paths) -> None:
    """Write the class into ``paths.submissions``."""
    for student, notebook in notebooks(paths).items():
        folder = paths.submissions / student
        folder.mkdir(parents=True)
        (folder / NOTEBOOK).write_text(json.dumps(notebook, indent=1), encoding="utf-8")
