"""Fixtures shared by the app's tests, defined once here.

No plugin registration is needed where this suite runs, here or in Sefaria-Project: the sandbox's
fixtures and the key guard's hooks are imported below, so pytest finds them through this conftest
and they apply to this directory alone.
"""

import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from braintrust_ops.tests import hypothesis_profiles  # noqa: F401 - registers and loads the profile
from braintrust_ops.tests.secret_guard import _no_api_key_left_behind, assert_no_key, pytest_runtest_makereport  # noqa: F401
from braintrust_ops.tests.small_project import COOK, TRANSLATE, WEATHER
from braintrust_ops_sandbox.pytest_plugin import empty_sandbox, sandbox, sandbox_env  # noqa: F401


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


@pytest.fixture
def write_back(ops_settings):
    ops_settings(WRITE_BACK="true")


@pytest.fixture
def small_project(sandbox_env):
    """Three taggable tags and a handful of recent logs with predictable labels."""
    sandbox = sandbox_env
    sandbox.state.clear_logs()
    sandbox.state.clear_tags()
    sandbox.state.add_tag("halacha", "Questions of Jewish law. dataset-tagging")
    sandbox.state.add_tag("translation", "DATASET-TAGGING: requests to translate a text")
    sandbox.state.add_tag("sources", "Dataset-Tagging where a text is found")
    sandbox.state.add_tag("ui-only", "not for datasets")
    sandbox.state.add_tag("no-description", None)
    recent = datetime.now(UTC) - timedelta(hours=2)
    sandbox.state.add_log(input=COOK, output="Generally not...", created=recent)
    sandbox.state.add_log(input=TRANSLATE, output="In the beginning...", created=recent)
    sandbox.state.add_log(input=WEATHER, output="I can't check weather.", created=recent)
    return sandbox


@pytest.fixture
def datasets_project(sandbox_env):
    """Taggable tags and three datasets: one per tag, one for both."""
    sandbox = sandbox_env
    sandbox.state.clear_tags()
    sandbox.state.clear_datasets()
    for name in ("halacha", "translation", "sources"):
        sandbox.state.add_tag(name, f"{name} dataset-tagging")
    sandbox.halacha = sandbox.state.add_dataset("Halacha evals", '[[relevant_tags: ["halacha"]]]')["id"]
    sandbox.translation = sandbox.state.add_dataset("Translation evals", '[[relevant_tags: [ "translation" ]  ]]')["id"]
    sandbox.both = sandbox.state.add_dataset("Mixed", 'Owner: data\n[[relevant_tags: ["halacha",\n "translation"]]]')[
        "id"
    ]
    return sandbox


def _can_create_in(directory: Path) -> bool:
    try:
        fd, name = tempfile.mkstemp(dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


@pytest.fixture
def unwritable_dir(tmp_path):
    """A directory in which no file can be created, for an ordinary user and for root alike.

    Permission bits stop an ordinary user; root ignores them, so for root the directory is made
    immutable (chattr +i), and where the filesystem cannot do that, sysfs (read-only even to root)
    stands in.
    """
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o500)
    immutable = False
    if _can_create_in(directory):
        directory.chmod(0o700)
        chattr = shutil.which("chattr")
        if chattr and subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode == 0:
            immutable = True
        else:
            directory = Path("/sys/kernel")
    assert not _can_create_in(directory)
    yield directory
    if immutable:
        subprocess.run([shutil.which("chattr"), "-i", str(directory)], check=True)
    if directory.is_relative_to(tmp_path):
        directory.chmod(0o700)
