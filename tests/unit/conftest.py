"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit._netns import scratch_netns


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh, empty network namespace's name; deleted after the test."""
    with scratch_netns() as name:
        yield name
