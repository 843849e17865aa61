"""Time of ``import vmmlib`` in a fresh interpreter (best of 5, minus the bare start-up)."""

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
    total = run("import vmmlib")
    print(f"import_vmmlib: {total - base:.3f} s")
