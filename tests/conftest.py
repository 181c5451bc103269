"""The project around the app (its stand-in settings, deploy manifests, CI, the seed review's map).

These tests stay in this repository; the app's own tests live beside its modules and travel with it.
"""

from braintrust_ops.tests.secret_guard import _no_api_key_left_behind, pytest_runtest_makereport  # noqa: F401
