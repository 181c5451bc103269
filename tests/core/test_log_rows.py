"""Cleaning BTQL rows before they are stored: ids, duplicates, creation times."""

from datetime import datetime, timezone

import pytest
from django.core.management.base import CommandError

from braintrust_ops.models import CommandRun
from braintrust_ops.services.log_sync import FetchCounts, clean_rows
from braintrust_ops.services.runs import run_finish, run_start


def test_rows_without_a_readable_created_time_are_counted_and_skipped():
    counts = FetchCounts()
    pages = [[{"id": "none", "created": None}, {"id": "bad", "created": "yesterday"}, {"id": "ok", "created": "2026-11-24T01:00:00"}]]
    (rows,) = list(clean_rows(pages, counts))
    assert [row.log_id for row in rows] == ["ok"]
    assert counts.without_created == 2 and counts.fetched == 3
    assert counts.newest_created == datetime(2026, 11, 24, 1, tzinfo=timezone.utc)  # a zoneless time is UTC


@pytest.mark.parametrize(
    "args, message",
    [(["--limit", "0"], "positive integer"), (["--since", "last tuesday"], "ISO 8601 time")],
    ids=["limit_zero", "since_not_a_time"],
)
def test_malformed_option_values_are_refused_by_name(run_command, args, message):
    with pytest.raises(CommandError, match=message):
        run_command("tag_logs", *args)


@pytest.mark.django_db
def test_a_run_is_recorded_as_failed_even_when_the_settings_cannot_be_read(settings):
    """Finishing a run reads the settings to redact their keys; unreadable settings must not stop it."""
    settings.BRAINTRUST_OPS = {"BRAINTRUST_PROJECT_ID": "not-a-uuid"}
    run = run_start(command="tag_logs", options={})
    run_finish(run, outcome="failed", error="BRAINTRUST_PROJECT_ID must be a project UUID")
    run = CommandRun.objects.get()
    assert (run.outcome, run.finished_at is not None) == ("failed", True)


@pytest.mark.django_db
def test_a_key_in_a_runs_error_is_redacted_before_it_is_stored(settings):
    key = "bt-recorded-key-for-tests-0003"
    settings.BRAINTRUST_OPS = {"BRAINTRUST_API_KEY": key}
    run = run_start(command="tag_logs", options={})
    run_finish(run, outcome="failed", error=f"HTTP 401 for key {key}")
    assert CommandRun.objects.get().error == "HTTP 401 for key [redacted]"
