from io import StringIO

import pytest
from django.core.management import call_command

from tests.secret_guard import assert_no_key


class CommandResult:
    def __init__(self, stdout: str, stderr: str):
        self.stdout = stdout
        self.stderr = stderr

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def run_command():
    """Run a management command in-process; return its output. CommandError propagates."""

    def run(name: str, *args, **options) -> CommandResult:
        stdout, stderr = StringIO(), StringIO()
        try:
            call_command(name, *args, stdout=stdout, stderr=stderr, **options)
        except Exception as exc:
            assert_no_key(f"{exc}\n{stdout.getvalue()}\n{stderr.getvalue()}", f"the output of {name}")
            raise
        assert_no_key(stdout.getvalue() + stderr.getvalue(), f"the output of {name}")
        return CommandResult(stdout.getvalue(), stderr.getvalue())

    return run


@pytest.fixture
def ops_settings(sandbox_env, settings):
    """Change braintrust_ops settings on top of the sandbox ones: ops_settings(TAGGING_CONCURRENCY="2")."""

    def update(**values):
        settings.BRAINTRUST_OPS = {**settings.BRAINTRUST_OPS, **{key: str(value) for key, value in values.items()}}

    return update
