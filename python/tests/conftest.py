"""What the test files share: a unique segment name, removed whatever happened."""

import itertools
import os

import pytest

import ringport

NAMES = itertools.count(1)


@pytest.fixture
def name():
    """A segment name no other test or run uses, removed afterwards whatever happened."""
    n = f"ringport-pytest-{os.getpid()}-{next(NAMES)}"
    yield n
    try:
        ringport.remove_segment(n)
    except FileNotFoundError:
        pass
    assert not os.path.exists(f"/dev/shm/{n}")
