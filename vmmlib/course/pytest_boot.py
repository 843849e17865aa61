"""A pytest plugin loaded before every other (``-p vmmlib.course.pytest_boot`` in pyproject.toml).

nbval imports nbformat, which imports jsonschema, which imports the optional IRI grammar
``rfc3987_syntax`` if it is installed: 1.5-3 s in every pytest process (and xdist worker),
for a string format the notebook schema never uses. Loaded with ``-p``, this module runs before
pytest imports its entry-point plugins and makes that import a cheap "not installed".
"""

from __future__ import annotations

from .nbfiles import skip_iri_grammar

skip_iri_grammar()
