"""Test-session hygiene: keep Jupyter, IPython and matplotlib state out of the user's home.

Loaded by pytest for every test and notebook (and by each xdist worker) before any kernel
starts, so kernels launched by nbval inherit the same private folders.
"""

import os
import tempfile

_state = tempfile.mkdtemp(prefix="vmmlib-test-")
for var, sub in {
    "JUPYTER_CONFIG_DIR": "jupyter-config",
    "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
    "IPYTHONDIR": "ipython",
    "MPLCONFIGDIR": "matplotlib",
}.items():
    os.environ.setdefault(var, os.path.join(_state, sub))

#: Test files that take long in wall time (waiting on timeouts, kernels, a browser): run first,
#: so that with ``-n 2 --dist loadfile`` the other worker shares out everything else meanwhile.
SLOW_FIRST = ("test_course_grading.py", "test_browser.py", "test_course_nbval.py",
              "03-split-drivers.ipynb", "02-device-model.ipynb", "test_checks_mutants.py",
              "01-intercepts.ipynb")


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order inside each file is kept
