"""Hypothesis profiles for the property-based tests, loaded by the app's conftest.

``ci`` (loaded when CI=true, as CI services and .ci/run set it): derandomized, so a run in CI is the same
run every time and a red build is reproducible, with a bounded number of examples and no example
database (a CI machine keeps nothing between runs). The default, for a developer's machine: random
examples (new ones every run), also bounded so the suite stays quick on two cores. Neither has a
deadline: a shared CI machine's pauses would fail a test for slowness, not for a wrong answer.
``HYPOTHESIS_PROFILE`` names another profile (``thorough``: many more examples, for a change to a parser).
"""

import os

from hypothesis import HealthCheck, settings

# Function-scoped fixtures (the database) are safe here: a property that touches the database makes
# each example's rows distinct, so examples never see each other's state.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}

settings.register_profile("ci", derandomize=True, max_examples=100, database=None, print_blob=True, **_COMMON)
# Fewer locally than in CI, so `make test` stays quick; CI runs the fixed 100.
settings.register_profile("default", max_examples=50, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)


def profile_name() -> str:
    if os.environ.get("HYPOTHESIS_PROFILE"):
        return os.environ["HYPOTHESIS_PROFILE"]
    return "ci" if os.environ.get("CI", "").lower() == "true" else "default"


settings.load_profile(profile_name())
