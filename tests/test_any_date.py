"""The suite's clock-dependent tests pass on any date: run them with the wall clock a year
ahead (tests/clock_ahead.py). One clock everywhere means nothing in them reads today's date."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

CLOCK_DEPENDENT = [
    "tests/test_unit_of_work.py",
    "tests/test_citizen_flow.py",
    "tests/test_officer_flow.py",
    "tests/test_sla.py",
    "tests/test_subscription.py",
    "tests/test_broadcast.py",
    "tests/test_batch_failures.py",
    "tests/test_inbox.py",
    "tests/test_sender.py",
    "tests/test_open311.py",
    "tests/test_bmkg.py",
    "tests/test_cap.py",
    "tests/test_alert_levels.py",
    "tests/test_role_help.py",
    "tests/test_live_cards.py",
    "tests/test_report_details.py",
    "tests/test_announcement_consent.py",
    "tests/test_small_fixes.py",
]


def test_the_clock_dependent_tests_pass_a_year_ahead() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "tests.clock_ahead",
            "-p",
            "no:cacheprovider",
            # the clock is read in Python, the same on both databases: SQLite is enough here
            "-m",
            "not postgres",
            "-k",
            "not postgres",
            *CLOCK_DEPENDENT,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
