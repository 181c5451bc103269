"""What every test folder of this repository shares: the sandbox's fixtures and the key guard.

pytest loads this file first (it sits at the rootdir), for ``braintrust_ops/``, ``braintrust_ops_sandbox/``
and ``tests/`` alike. The app's and the sandbox's own conftests import the same two, because they travel
into Sefaria-Project, which has no root conftest of ours: there they stand alone. Imported twice here, a
fixture is the nearest conftest's (one run per test), and the guard's report hook leaves a report it
has already failed alone.
"""

from braintrust_ops.tests.secret_guard import _no_api_key_left_behind, pytest_runtest_makereport  # noqa: F401
from braintrust_ops_sandbox.pytest_plugin import empty_sandbox, sandbox, sandbox_env  # noqa: F401
