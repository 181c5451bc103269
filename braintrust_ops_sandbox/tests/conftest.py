"""The sandbox's own tests: its fixtures, and the key guard the app's suite runs under."""

from braintrust_ops.tests.secret_guard import _no_api_key_left_behind, pytest_runtest_makereport  # noqa: F401
from braintrust_ops_sandbox.pytest_plugin import empty_sandbox, sandbox, sandbox_env  # noqa: F401
