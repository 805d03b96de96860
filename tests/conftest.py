"""Test-suite rules that hold in every folder.

No silent skips in CI: a test skips only where it truly cannot run (not root, no
kubectl, no cluster) and says why; under ``CI=true`` — where the machine has root,
the kit's kubectl and a lab — such a skip is a failure, so a green CI has run them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"
