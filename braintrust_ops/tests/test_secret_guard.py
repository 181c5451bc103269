"""The suite-wide key check (``tests/secret_guard.py``) finds what it is there to find."""

import gzip
import os
import re
import subprocess
import sys

import pytest
from django.utils import timezone

from braintrust_ops.models import CommandRun
from braintrust_ops.tests.paths import HOST_ROOT
from braintrust_ops.tests.secret_guard import FAKE_KEY, database_text, file_texts, keys_in
from braintrust_ops_sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY

ROOT = HOST_ROOT
KEY_LITERAL = re.compile(r"""["'](?:bt|sk)-[A-Za-z0-9_-]+["']""")


def test_every_fake_key_in_the_code_has_the_shape_the_guard_looks_for():
    sources = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("braintrust_ops*/**/*.py"), *ROOT.glob("bench/*.py")]
    literals = {match.group()[1:-1] for path in sources for match in KEY_LITERAL.finditer(path.read_text())}
    assert {BRAINTRUST_KEY, ANTHROPIC_KEY} <= literals
    assert [key for key in sorted(literals) if not FAKE_KEY.fullmatch(key)] == []


def test_keys_in_finds_a_key_inside_other_text_and_nothing_in_clean_text():
    assert keys_in(f"Authorization: Bearer {BRAINTRUST_KEY}, x-api-key={ANTHROPIC_KEY}.") == {
        BRAINTRUST_KEY,
        ANTHROPIC_KEY,
    }
    assert keys_in("Braintrust refused the API key on GET /v1/project/{id} (HTTP 401). [redacted]") == set()


@pytest.mark.django_db
def test_database_text_includes_every_column_of_the_apps_rows():
    CommandRun.objects.create(command="tag_logs", started_at=timezone.now(), error=f"refused {ANTHROPIC_KEY}")
    assert keys_in(database_text()) == {ANTHROPIC_KEY}
    CommandRun.objects.all().delete()  # the guard checks this test's database too


def test_file_texts_reads_plain_and_gzip_files_below_the_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "plain.csv").write_text("id,input\n1,hello\n", encoding="utf-8")
    (tmp_path / "sub" / "backup.jsonl.gz").write_bytes(gzip.compress('{"input": "שלום"}\n'.encode()))
    texts = dict(file_texts(tmp_path))
    assert texts == {
        tmp_path / "plain.csv": "id,input\n1,hello\n",
        tmp_path / "sub" / "backup.jsonl.gz": '{"input": "שלום"}\n',
    }


def test_a_passing_test_that_prints_a_key_is_reported_as_failed(tmp_path):
    """A pytest session of its own, in another process, whose conftest takes the guard as this suite's does."""
    (tmp_path / "conftest.py").write_text(
        "from braintrust_ops.tests.secret_guard import _no_api_key_left_behind, pytest_runtest_makereport"
        "  # noqa: F401\n"
    )
    (tmp_path / "test_prints.py").write_text(
        "def test_prints_a_key():\n"
        f"    print('calling with {BRAINTRUST_KEY[:3]}' + '{BRAINTRUST_KEY[3:]}')\n\n"
        "def test_prints_nothing_secret():\n"
        "    print('calling with [redacted]')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(HOST_ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:django",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    assert "appeared in the test's captured stdout call" in result.stdout
