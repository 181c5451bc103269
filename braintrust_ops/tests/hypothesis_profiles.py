"""Hypothesis profiles for the app's property-based tests; the app's conftest imports this module.

- ``ci`` (chosen when ``CI=true``, as CI runs ``.ci/run``): derandomized, so a run is reproducible and a
  red CI is red again on a developer's machine with ``CI=true``; more examples than a local run.
- ``default``: random examples, fewer of them, so ``make test`` stays fast; a failure found is replayed
  first next time from Hypothesis's example database (``.hypothesis/``, ignored by git).

Neither has a deadline: on two shared cores the time of one example says nothing about the code.
``HYPOTHESIS_PROFILE=<name>`` picks a profile by hand.
"""

import os

from hypothesis import settings

# In place of Hypothesis's own profiles of the same names (recent versions have a "ci" of their own).
# derandomize=True implies no example database: nothing is written where CI runs.
settings.register_profile(
    "ci", settings.get_profile("default"), derandomize=True, max_examples=100, deadline=None, print_blob=True
)
settings.register_profile("default", settings.get_profile("default"), max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "default"))
