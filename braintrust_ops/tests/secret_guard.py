"""Across the whole suite: no API key in any output, log line, file or database row a test leaves.

Imported by the root ``conftest.py`` and by the app's and the sandbox's test conftests, so every test is
checked, not only the ones written about secrets:

- what pytest captured of each test (stdout, stderr, log records), in every phase;
- what each management command printed (``run_command``) and the message of the error it raised;
- at teardown, every row of the app's tables (before the test's database is rolled back or flushed)
  and every file under the test's ``tmp_path`` (backups included, gzip opened).

The end-to-end jobs run in subprocesses; ``tests/e2e`` checks their outputs and databases itself.

Every fake key a test configures follows one shape, ``<bt|sk>-<words>-key-for-tests-<digits>``, so the
guard finds any of them, whichever a test used (the sandbox's, a "wrong" one, a settings test's).
"""

import gzip
import re
from pathlib import Path

import pytest

FAKE_KEY = re.compile(r"\b(?:bt|sk)-[a-z]+(?:-[a-z]+)*-key-for-tests-\d+")
MAX_FILE_BYTES = 50 * 2**20  # a bigger file is not one a test should have written


def keys_in(text: str) -> set[str]:
    return set(FAKE_KEY.findall(text))


def assert_no_key(text: str, where: str) -> None:
    found = keys_in(text)
    assert not found, f"API key(s) {sorted(found)} appeared in {where}"


def database_text() -> str:
    """Every row of every braintrust_ops table, as text."""
    from django.apps import apps

    return "\n".join(
        repr(row) for model in apps.get_app_config("braintrust_ops").get_models() for row in model.objects.values_list()
    )


def file_texts(directory: Path):
    """(path, text) of every regular file below ``directory``; gzip files decompressed."""
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_FILE_BYTES:
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                pass  # a deliberately broken or partial archive: scan its bytes as they are
        yield path, data.decode("utf-8", "replace")


def _uses_database(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return item.get_closest_marker("django_db") is not None or "db" in names or "transactional_db" in names


@pytest.fixture(autouse=True)
def _no_api_key_left_behind(request):
    """At teardown, look in the database and the test's files. Requesting their fixtures here makes this
    teardown run before theirs: before the test's rollback or flush, before tmp_path is handed back."""
    uses_database = _uses_database(request.node)
    for name in ("transactional_db", "db"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
            break
    # tmp_path too, or it would be gone before this teardown looks at it.
    directory = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if getattr(request.node, "_call_failed", False):
        return  # already failing, and its database may be mid-error: nothing to add
    if uses_database:
        assert_no_key(database_text(), "the braintrust_ops tables")
    if directory is not None:
        for path, text in file_texts(directory):
            assert_no_key(text, f"the file {path}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item._call_failed = report.failed
    if not report.passed:
        return
    for section, text in report.sections:
        if not section.endswith(report.when):
            continue  # an earlier phase's capture, already checked in its own report
        found = keys_in(text)
        if found:
            report.outcome = "failed"
            report.longrepr = f"API key(s) {sorted(found)} appeared in the test's {section.lower()}"
            return
