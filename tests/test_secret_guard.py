"""The suite-wide key check (``tests/secret_guard.py``) finds what it is there to find."""

import gzip
import re
from pathlib import Path

import pytest
from django.utils import timezone

from braintrust_ops.models import CommandRun
from braintrust_ops_sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY
from tests.secret_guard import FAKE_KEY, database_text, file_texts, keys_in

ROOT = Path(__file__).resolve().parent.parent
KEY_LITERAL = re.compile(r"""["'](?:bt|sk)-[A-Za-z0-9_-]+["']""")


def test_every_fake_key_in_the_code_has_the_shape_the_guard_looks_for():
    sources = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("braintrust_ops*/**/*.py"), *ROOT.glob("bench/*.py")]
    literals = {match.group()[1:-1] for path in sources for match in KEY_LITERAL.finditer(path.read_text())}
    assert {BRAINTRUST_KEY, ANTHROPIC_KEY} <= literals
    assert [key for key in sorted(literals) if not FAKE_KEY.fullmatch(key)] == []


def test_keys_in_finds_a_key_inside_other_text_and_nothing_in_clean_text():
    assert keys_in(f"Authorization: Bearer {BRAINTRUST_KEY}, x-api-key={ANTHROPIC_KEY}.") == {BRAINTRUST_KEY, ANTHROPIC_KEY}
    assert keys_in("Braintrust refused the API key on GET /v1/project/{id} (HTTP 401). [redacted]") == set()


@pytest.mark.django_db
def test_database_text_includes_every_column_of_the_apps_rows():
    CommandRun.objects.create(command="tag_logs", started_at=timezone.now(), error=f"refused {ANTHROPIC_KEY}")
    assert keys_in(database_text()) == {ANTHROPIC_KEY}
    CommandRun.objects.all().delete()  # the guard checks this test's database too


def test_file_texts_reads_plain_and_gzip_files_below_the_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "plain.csv").write_text("id,input\n1,hello\n", encoding="utf-8")
    (tmp_path / "sub" / "backup.jsonl.gz").write_bytes(gzip.compress("{\"input\": \"שלום\"}\n".encode()))
    texts = dict(file_texts(tmp_path))
    assert texts == {tmp_path / "plain.csv": "id,input\n1,hello\n", tmp_path / "sub" / "backup.jsonl.gz": '{"input": "שלום"}\n'}


def test_a_passing_test_that_prints_a_key_is_reported_as_failed(pytester, capsys):
    pytester.makeconftest('pytest_plugins = ["tests.secret_guard"]')
    pytester.makepyfile(
        f"""
        def test_prints_a_key():
            print("calling with {BRAINTRUST_KEY[:3]}" + "{BRAINTRUST_KEY[3:]}")

        def test_prints_nothing_secret():
            print("calling with [redacted]")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:django")
    capsys.readouterr()  # the inner session's report, key included, is not this test's own output
    result.assert_outcomes(passed=1, failed=1)
    assert any("appeared in the test's captured stdout call" in line for line in result.outlines)
