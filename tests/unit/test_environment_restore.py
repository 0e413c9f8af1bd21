"""The environment restores keep a session fixture's marks: a module whose first test ran
before the shared seldon run started must not take that run's directory away from the
modules after it (seen in a random order: every later test read an empty run)."""

from __future__ import annotations

import os

from tests.fixtures.environment import _restore_environ, session_environ

MARK = "MLOPS_TEST_SESSION_MARK"
STRAY = "MLOPS_TEST_STRAY_SETTING"


def test_a_restore_started_before_a_session_mark_keeps_it_and_drops_the_rest() -> None:
    assert MARK not in os.environ and STRAY not in os.environ
    module = _restore_environ()
    next(module)  # the module's first test: no mark yet
    with session_environ(**{MARK: "run-root"}):
        os.environ[STRAY] = "a test's credential"
        next(module, None)  # the module ends
        assert os.environ.get(MARK) == "run-root"
        assert STRAY not in os.environ
    assert MARK not in os.environ  # the session's end takes it away
