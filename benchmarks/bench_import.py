"""Time of ``import vmmlib`` and ``import vmmlib.viz`` in a fresh interpreter (best of 5, minus
the bare start-up; budget 0.3 s each). ``vmmlib.viz`` loads matplotlib and ipywidgets only when a
picture or a widget is first used."""

from __future__ import annotations

import subprocess
import sys
import time


def run(code: str) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


if __name__ == "__main__":
    base = run("pass")
    print(f"import_vmmlib: {run('import vmmlib') - base:.3f} s")
    print(f"import_vmmlib_viz: {run('import vmmlib.viz') - base:.3f} s")
