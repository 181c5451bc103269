"""Development and test settings: production's, plus the local sandbox emulating Braintrust and Anthropic.

The sandbox is a Django app of its own (``braintrust_ops_sandbox``: its server, its ``braintrust_sandbox``
command, its pytest fixtures) so that production, whose settings install ``braintrust_ops`` alone, never
carries it. pytest, ``make demo`` and the benchmarks use this module.
"""

from sefaria.settings import *  # noqa: F403 - this module is production's settings and one more app

INSTALLED_APPS = [*INSTALLED_APPS, "braintrust_ops_sandbox"]  # noqa: F405

# Tests, the demo and the benchmarks send nothing to a Sentry a developer's environment names: the tests
# that need Sentry set a DSN of their own, on this machine.
SENTRY_DSN = None
