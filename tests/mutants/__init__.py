"""Mutants of the exercise answers: one module per checks module of vmmlib.course.checks.

Each module defines ``WRONG`` and ``RIGHT``: question label -> functions. A wrong one is a
plausible mistake a student makes (it must lose the check); a right one is a correct answer
written differently, with debug prints or another algorithm (it must keep it). Every function
is self-contained (imports inside), so its source can also be handed to the real grader.
tests/test_checks_mutants.py proves every check on them.
"""
