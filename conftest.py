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
