"""A real browser, as a student and a lecturer use the course.

One JupyterLab server (serving a copy of the repository root, as ``make lab`` does) and one
headless Chromium (Debian's package, driven by Playwright) for every test here:

* the slide decks of ``make slides`` open offline (every non-local request is blocked and
  fails the test), count their slides, walk every one without a console error, and show the
  stored widgets' last step;
* on ``make lab``'s page at 1366x768, chapter 01's steppers show their buttons and their
  state panel without scrolling, their log records do not wrap, and a step highlights what
  it changed; chapter 02's steppers too, and the hop's ioreq slot walks NONE → READY
  (each chapter adds its steppers here, to share the one JupyterLab and Chromium);
* a student follows the course map's link to chapter 01 and opens an exercise through the
  file browser.

On a laptop without Chromium the tests are skipped; under CI (the CI variable set, as .ci/run
does) a missing browser fails. Notebooks are copied to a temporary folder first, so nothing
the browser does can rewrite the files under test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from vmmlib.course.slides import export_slides, fetch_vendor
from vmmlib.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "vmmlib-browser-test"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The exercise a student opens from the file browser. The exercise notebooks are being
#: renamed to NN-slug-exercises.ipynb; the first name that exists is used.
EXERCISE = "01-intercepts-exercises.ipynb"
LAPTOP = {"width": 1366, "height": 768}
IDLE = (
    "() => [...document.querySelectorAll('.jp-StatusBar-Widget')]"
    ".some(e => /\\| Idle/.test(e.textContent))"
)

if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("CI needs Chromium for the browser tests (.ci/run installs it)", pytrace=False)
    pytest.skip("no Chromium on this machine", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on loopback; ``url`` waits until it answers."""

    def __init__(self, work: Path) -> None:
        self.root = work / "course"
        for folder in ("notebooks", "exercises"):
            shutil.copytree(ROOT / folder, self.root / folder)
        settings = work / "settings"
        for plugin, values in {
            "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
        }.items():
            target = settings / f"{plugin}.jupyterlab-settings"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        self.port = _free_port()
        self.log = work / "jupyter.log"
        env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings))
        env.update(
            JUPYTER_RUNTIME_DIR=str(work / "runtime"),
            JUPYTER_CONFIG_DIR=str(work / "config"),
            IPYTHONDIR=str(work / "ipython"),
            MPLCONFIGDIR=str(work / "mpl"),
            HOME=str(work),
        )
        self.server = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter", "lab", "--no-browser",
                "--ip", "127.0.0.1", "--port", str(self.port),
                f"--ServerApp.token={TOKEN}",
                "--LabApp.expose_app_in_browser=True",
                "--allow-root",  # CI runs as root
                f"--ServerApp.root_dir={self.root}",  # the repository root, as `make lab`
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
        )
        self._ready = False

    @property
    def url(self) -> str:
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while not self._ready:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                self._ready = True
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_text()[-2000:]
                    raise RuntimeError(f"JupyterLab did not start:\n{tail}") from None
                time.sleep(0.2)
        return url

    def open(self, page, path: str, workspace: str) -> None:
        """Open ``path`` in a workspace of its own (tests do not inherit each other's tabs)."""
        page.goto(f"{self.url}/lab/workspaces/{workspace}/tree/{path}?token={TOKEN}&reset")

    def stop(self) -> None:
        self.server.terminate()
        try:
            self.server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.server.kill()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab for the module, started at once (it boots while the decks are tested)."""
    server = Lab(tmp_path_factory.mktemp("lab"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def lab_page(lab, browser):
    """What `make lab` shows a student, at 1366x768: JupyterLab on the course overview."""
    page = browser.new_page(viewport=LAPTOP)
    lab.open(page, "notebooks/00-overview.ipynb", "student")
    page.wait_for_selector(".jp-Notebook .jp-RenderedMarkdown", timeout=60_000)
    try:
        yield page
    finally:
        page.close()


# --- the lecturer: every deck, offline --------------------------------------------------------
def _vendor() -> Path:
    """The vendor files of `make slides` (slides/vendor), fetched from npm if missing."""
    vendor = ROOT / "slides" / "vendor"
    try:
        fetch_vendor(vendor)
    except ConfigError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot fetch the decks' vendor files: {exc}")
    return vendor


def _expected_shape(path: Path) -> list[int]:
    """Slides per horizontal position, from the notebook's slide metadata."""
    shape: list[int] = []
    for cell in nbformat.read(path, as_version=4).cells:
        kind = cell.metadata.get("slideshow", {}).get("slide_type", "-")
        if kind == "slide":
            shape.append(1)
        elif kind == "subslide":
            shape[-1] += 1
    return shape


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    """The decks of `make slides`, exported in the background while JupyterLab and Chromium
    start (the export is most of this module's own work)."""
    vendor = _vendor()
    out = tmp_path_factory.mktemp("slides")
    (out / "vendor").symlink_to(vendor, target_is_directory=True)
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(lambda: [export_slides(nb, out) for nb in notebooks])
        yield out, notebooks, future


#: Walk every slide in the page (one round trip): go to it, check it is the present one.
WALK = """async (shape) => {
    const wrong = [];
    for (let h = 0; h < shape.length; h++) {
        for (let v = 0; v < shape[h]; v++) {
            location.hash = `#/${h}/${v}`;
            await new Promise(r => setTimeout(r, 25));
            const slide = document.querySelectorAll('.reveal .slides > section')[h];
            if (!slide.classList.contains('present')) wrong.push([h, v]);
        }
    }
    return wrong;
}"""


def test_every_slide_deck_works_offline(decks, lab, browser):
    out, notebooks, future = decks
    exported = future.result()
    page = browser.new_page(viewport=LAPTOP)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))

    def local_only(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            problems.append(f"non-local request: {route.request.url}")
            route.abort()

    page.route("**/*", local_only)
    try:
        for notebook, deck in zip(notebooks, exported, strict=True):
            page.goto(deck.as_uri() + "?transition=none")
            page.wait_for_selector(".reveal.ready", timeout=20_000)
            shape = page.evaluate(
                "() => [...document.querySelectorAll('.reveal .slides > section')]"
                ".map(s => Math.max(1, s.querySelectorAll(':scope > section').length))"
            )
            assert shape == _expected_shape(notebook), deck.name
            assert len(shape) >= 6 and sum(shape) > len(shape), deck.name  # → and ↓ both used
            assert page.evaluate(WALK, shape) == [], deck.name  # every slide, as a lecturer
            assert problems == [], (deck.name, problems)
            if page.locator(".vmm-stepper").count():  # stored widgets: at their last step
                page.wait_for_selector(".vmm-stepper .widget-button", state="attached",
                                       timeout=10_000)
                status = page.locator(".vmm-stepper").first.text_content()
                assert "finished" in status and "nothing has run yet" not in status
            links = page.eval_on_selector_all(
                "a[href$='.slides.html']", "els => els.map(e => e.getAttribute('href'))"
            )
            assert all((out / href).exists() for href in links), links
            assert not page.eval_on_selector_all(
                "a[href$='.ipynb']:not([href^='..'])", "els => els.map(e => e.href)"
            )
        assert problems == []
        overview, chapter = (deck.read_text() for deck in exported[:2])
        assert 'href="01-intercepts.slides.html"' in overview  # the course map links decks
        for target in ("reveal.js/dist/reveal.js", "require.js", "jquery.min.js"):
            assert f"vendor/{target}" in overview
        assert "vendor/html-manager/embed-amd.js" in chapter
    finally:
        page.close()


# --- the student: every chapter's steppers on a laptop -------------------------------------
#: Scroll stepper k to the top of the notebook's view.
SHOW_STEPPER = """async k => {
    const stepper = document.querySelectorAll('.jp-Notebook .vmm-stepper')[k];
    const outer = stepper.closest('.jp-WindowedPanel-outer');
    for (let i = 0; i < 2; i++) {
        outer.scrollTop += stepper.getBoundingClientRect().top - outer.getBoundingClientRect().top;
        await new Promise(r => setTimeout(r, 100));
    }
}"""


def _chapter_01_cells() -> list:
    chapter = nbformat.read(ROOT / "notebooks" / "01-intercepts.ipynb", as_version=4)
    wanted = ("import inspect", "from vmmlib import classify_fault", "Stepper(")
    cells = [c for c in chapter.cells
             if c.cell_type == "code" and c.source.startswith(wanted)]
    assert sum(c.source.startswith("Stepper(") for c in cells) == 2
    return cells


def _chapter_02_cells() -> list:
    chapter = nbformat.read(ROOT / "notebooks" / "02-device-model.ipynb", as_version=4)
    wanted = ("imports", "s1-run", "s2-run", "s1-widget", "s2-widget")
    cells = [c for c in chapter.cells if c.get("id") in wanted]
    assert len(cells) == len(wanted)
    return cells


def _chapter_03_cells() -> list:
    chapter = nbformat.read(ROOT / "notebooks" / "03-split-drivers.ipynb", as_version=4)
    wanted = ("imports", "s2-widget", "s3-widget")
    cells = [c for c in chapter.cells if c.get("id") in wanted]
    assert len(cells) == len(wanted)
    return cells


#: Each chapter's stepper cells and the cells they need, in chapter order; and for each of its
#: steppers, the words its log shows after two steps and what its panel must say then.
CHAPTER_STEPPERS = (
    ("01", _chapter_01_cells, (("exit", ()), ("exit", ()))),
    ("02", _chapter_02_cells, (("exit", ("ioreq", "NONE → [READY] → INPROCESS",
                                         "blocked on its ioreq slot")),
                               ("exit", ("ioreq",)))),
    ("03", _chapter_03_cells, (("put-request", None),  # a picture: it changes each step
                               ("put-request", ("request written (not pushed)", "rd #1 s8")))),
)


def steppers_notebook(folder: Path) -> str:
    """Every chapter's stepper cells and the cells they need, in one notebook beside the
    chapters (the same width and styles; one kernel, without the chapters' other cells)."""
    cells = [nbformat.v4.new_code_cell(c.source)
             for _, chapter_cells, _ in CHAPTER_STEPPERS for c in chapter_cells()]
    metadata = nbformat.read(ROOT / "notebooks" / "01-intercepts.ipynb", as_version=4).metadata
    nb = nbformat.v4.new_notebook(cells=cells, metadata=metadata)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, folder / "steppers.ipynb")
    return "notebooks/steppers.ipynb"


def _boxes(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(
        selector,
        "els => els.map(e => { const b = e.getBoundingClientRect();"
        " return {top: b.top, bottom: b.bottom, left: b.left, right: b.right,"
        " height: b.height}; })",
    )


def _wait_for_words(page, selector: str, words: list[str]) -> None:
    """Wait until the element says all of `words`: a widget's updates reach the page one comm
    message at a time. On a timeout the caller's assert says what is missing."""
    try:
        page.wait_for_function(
            "([s, words]) => words.every(w => document.querySelector(s).textContent"
            ".includes(w))", arg=[selector, words], timeout=20_000,
        )
    except Exception:  # noqa: BLE001 - Playwright's TimeoutError
        pass


def test_every_chapters_steppers_fit_a_laptop_screen(lab, lab_page):
    page = lab_page
    path = steppers_notebook(lab.root / "notebooks")
    page.evaluate("p => window.jupyterapp.commands.execute('docmanager:open', {path: p})", path)
    page.wait_for_function(
        "p => (window.jupyterapp.shell.currentWidget.context || {}).path === p",
        arg=path, timeout=20_000,
    )
    # the toolbar says "idle" before the kernel exists; the status bar knows better
    page.wait_for_function(IDLE, timeout=60_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    expected = [(chapter, *stepper) for chapter, _, steppers in CHAPTER_STEPPERS
                for stepper in steppers]
    page.wait_for_function(
        "n => document.querySelectorAll('.jp-Notebook .vmm-stepper .widget-button').length"
        " >= n", arg=4 * len(expected), timeout=90_000,
    )
    page.wait_for_function(IDLE, timeout=60_000)
    current = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    [visible] = _boxes(page, f"{current} .jp-WindowedPanel-outer")
    assert visible["bottom"] <= LAPTOP["height"]
    page.evaluate(
        "() => document.querySelectorAll('.jp-Notebook .vmm-stepper')"
        ".forEach((s, k) => s.closest('.jp-Cell').setAttribute('data-vmm-test', k))"
    )
    for k, (chapter, first_hop, says) in enumerate(expected):
        page.evaluate(SHOW_STEPPER, k)
        cell = f"{current} [data-vmm-test='{k}']"
        text = page.locator(f"{cell} .jp-OutputArea").text_content()
        for bad in ("Error displaying widget", "Loading widget", "Traceback"):
            assert bad not in text, (chapter, k)
        [me] = _boxes(page, f"{cell} .vmm-stepper")
        [state] = _boxes(page, f"{cell} .vmm-stepper-state")
        [log] = _boxes(page, f"{cell} .vmm-stepper-log")
        buttons = _boxes(page, f"{cell} .vmm-stepper .widget-button")
        # buttons and what changes on one screen: no scrolling between them
        assert min(b["top"] for b in buttons) >= visible["top"] - 1 and me["top"] >= 0
        assert state["bottom"] <= visible["bottom"], (chapter, k, state, visible)
        assert log["bottom"] <= visible["bottom"] and state["right"] <= visible["right"]
        if chapter == "01":
            assert state["top"] < log["bottom"], "the log and the state panel sit side by side"
        overflow = page.eval_on_selector(  # and the panel's content fits its box
            f"{cell} .vmm-stepper-state", "e => e.scrollWidth - e.clientWidth"
        )
        assert overflow <= 1, f"stepper {k}: the state panel is {overflow} px too wide"
        # log records never wrap: every record is one line high
        lines = _boxes(page, f"{cell} .vmm-stepper-log div[style*='white-space:pre'] > div")
        heights = [line["height"] for line in lines]
        assert len(heights) > 3 and max(heights) < 1.6 * min(heights)
        # two steps: the status moves on and what changed is highlighted
        stepper = page.locator(f"{cell} .vmm-stepper")
        stepper.locator(".widget-button", has_text="first").click()
        page.wait_for_function(
            "s => /step 0 of/.test(document.querySelector(s).textContent)",
            arg=f"{cell} .vmm-stepper", timeout=20_000,
        )
        for n in (1, 2):
            stepper.locator(".widget-button", has_text="step").click()
            page.wait_for_function(
                "([s, n]) => new RegExp(`step ${n} of`).test("
                "document.querySelector(s).textContent)",
                arg=[f"{cell} .vmm-stepper", n], timeout=20_000,
            )
        if says is None:  # the panel is a picture: it is redrawn for the step
            _wait_for_words(page, f"{cell} .vmm-stepper", [first_hop])
            content = stepper.text_content()
            picture = f"{cell} .vmm-stepper-state svg"
            before = page.locator(picture).inner_html()
            stepper.locator(".widget-button", has_text="step").click()
            page.wait_for_function(
                "([s, old]) => document.querySelector(s).innerHTML !== old",
                arg=[picture, before], timeout=20_000,
            )
            [image] = _boxes(page, picture)
            assert image["bottom"] <= visible["bottom"] and image["right"] <= visible["right"]
        else:
            page.wait_for_selector(  # what the step changed is highlighted
                f"{cell} .vmm-stepper-state span[style*=background]", timeout=20_000
            )
            # the widgets' updates reach the page one comm message at a time: wait for them
            _wait_for_words(page, f"{cell} .vmm-stepper", [*says, first_hop])
            content = stepper.text_content()
            for words in says:
                assert words in content, (chapter, k, words)
        assert first_hop in content
        page.screenshot(path=str(lab.root.parent / f"chapter-{chapter}-stepper-{k}.png"))


# --- the student: make lab's page, the course map, an exercise -------------------------------
def test_a_student_follows_the_course_map_and_opens_an_exercise(lab, lab_page):
    page = lab_page
    exercise = EXERCISE
    assert page.locator(".lm-TabBar-tab", has_text="00-overview.ipynb").count() == 1
    page.locator(".lm-TabBar-tab", has_text="00-overview.ipynb").click()
    # the course map's link to chapter 01 opens the notebook in JupyterLab
    overview = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedMarkdown")
    link = overview.locator("a", has_text="intercepts").first
    link.scroll_into_view_if_needed()
    link.click()
    page.wait_for_function(
        "() => (window.jupyterapp.shell.currentWidget.context || {}).path"
        " === 'notebooks/01-intercepts.ipynb'", timeout=20_000
    )
    # the file browser shows notebooks/ of the repository root: exercises/ is one level up
    files = page.locator(".jp-FileBrowser")
    page.locator(".jp-BreadCrumbs-home").first.click()
    files.locator(".jp-DirListing-item", has_text="exercises").dblclick()
    item = files.locator(".jp-DirListing-item", has_text=exercise)
    item.wait_for(timeout=10_000)
    item.dblclick()
    page.wait_for_function(
        "name => (window.jupyterapp.shell.currentWidget.context || {}).path"
        " === `exercises/${name}`", arg=exercise, timeout=20_000
    )
    tabs = page.locator("#jp-main-dock-panel .lm-TabBar-tabLabel").all_text_contents()
    assert exercise in tabs
    assert len(set(tabs)) == len(tabs), tabs  # no two tabs alike
