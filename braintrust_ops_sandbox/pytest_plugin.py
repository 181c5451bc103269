"""Pytest fixtures: a sandbox per test on a free loopback port, and the app's settings pointed at it.

Load with ````from braintrust_ops_sandbox.pytest_plugin import sandbox, empty_sandbox, sandbox_env`` in a conftest.
"""

import pytest

from braintrust_ops_sandbox.constants import ANTHROPIC_KEY, BRAINTRUST_KEY, PROJECT_ID
from braintrust_ops_sandbox.server import Sandbox


@pytest.fixture
def sandbox():
    """The seeded sandbox: tags, datasets and a few hundred conversation traces from the last 30 hours."""
    with Sandbox(seed=True) as running:
        yield running


@pytest.fixture
def empty_sandbox():
    """A sandbox holding nothing; the test adds what it needs."""
    with Sandbox(seed=False) as running:
        yield running


def sandbox_settings(url: str) -> dict[str, str]:
    """``settings.BRAINTRUST_OPS`` for a sandbox at ``url``: fake keys, no backoff sleeps."""
    return {
        "BRAINTRUST_API_KEY": BRAINTRUST_KEY,
        "BRAINTRUST_PROJECT_ID": PROJECT_ID,
        "BRAINTRUST_API_URL": url,
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": url,
        "HTTP_BACKOFF_SECONDS": "0",
        "CLAUDE_MAX_RETRIES": "2",
    }


@pytest.fixture
def sandbox_env(sandbox, settings):
    """The seeded sandbox, with the app's settings (and only those) pointing at it."""
    settings.BRAINTRUST_OPS = sandbox_settings(sandbox.url)
    return sandbox
