"""A real browser opens the chapter notebook in JupyterLab, runs it, and steps the widget.

Headless Chromium (Debian's package) driven by Playwright. On a laptop without Chromium the
test is skipped; under CI (the CI variable set, as .ci/run does) a missing browser fails.
The notebooks are copied to a temporary folder first, so nothing the browser does can
rewrite the files under test.
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
from pathlib import Path

import pytest

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

if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("CI needs Chromium for the browser tests (.ci/run installs it)", pytrace=False)
    pytest.skip("no Chromium on this machine", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on loopback serving a copy of notebooks/."""
    work = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", work / "notebooks")
    settings = work / "settings"
    for plugin, values in {
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    }.items():
        target = settings / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    port = _free_port()
    log = work / "jupyter.log"
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings))
    env.update(
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        JUPYTER_CONFIG_DIR=str(work / "config"),
        IPYTHONDIR=str(work / "ipython"),
        MPLCONFIGDIR=str(work / "mpl"),
        HOME=str(work),
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            f"--ServerApp.token={TOKEN}",
            "--LabApp.expose_app_in_browser=True",
            "--allow-root",  # CI runs as root
            f"--ServerApp.root_dir={work / 'notebooks'}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-2000:]
                    raise RuntimeError(f"JupyterLab did not start:\n{tail}") from None
                time.sleep(0.3)
        yield url, work
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def test_chapter_01_runs_and_its_widget_steps(lab):
    from playwright.sync_api import sync_playwright

    url, work = lab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/01-intercepts.ipynb?token={TOKEN}")
            # The toolbar says "idle" before the kernel exists; the status bar knows better.
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-StatusBar-Widget')]"
                ".some(e => /\\| Idle/.test(e.textContent))",
                timeout=60_000,
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            steps = page.locator(".jp-Notebook .widget-button", has_text="step")
            steps.first.wait_for(timeout=60_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-StatusBar-Widget')]"
                ".some(e => /\\| Idle/.test(e.textContent))",
                timeout=120_000,
            )
            body = page.inner_text(".jp-Notebook")
            assert "Error displaying widget" not in body
            assert "Loading widget" not in body
            assert "Traceback" not in body
            stepper = page.locator(".jp-Notebook .vmm-stepper").first
            stepper.scroll_into_view_if_needed()
            # textContent, not innerText: JupyterLab renders cells with content-visibility,
            # for which innerText may be empty.
            before = stepper.text_content()
            assert "step 0 of" in before
            stepper.locator(".widget-button", has_text="step").click()
            page.wait_for_function(
                "(b) => document.querySelector('.jp-Notebook .vmm-stepper').textContent !== b",
                arg=before,
                timeout=20_000,
            )
            after = stepper.text_content()
            assert "step 1 of" in after and "exit" in after
            stepper.scroll_into_view_if_needed()
            page.screenshot(path=str(work / "chapter-01-stepper.png"))
        finally:
            browser.close()
