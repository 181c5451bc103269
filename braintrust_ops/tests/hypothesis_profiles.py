"""Hypothesis profiles: ``ci`` (derandomized, bounded, no deadline on a shared two-core runner) is loaded
when ``CI=true``; elsewhere Hypothesis's own defaults apply. Imported by the app's test conftest."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)

if os.environ.get("CI", "").lower() == "true":
    settings.load_profile("ci")
