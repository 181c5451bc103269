"""A server that quotes the request's credentials in an error body (the sandbox's ``echo_credentials``
fault) gets no key printed, logged, stored or raised by any command: the body is redacted where the
app's errors are built from it, and again where an error is stored.

The suite's key guard (``secret_guard.py``) checks every output and table too; these tests also say
where the body went, so a redaction that dropped the body altogether would not pass either."""

import pytest
from django.core.management.base import CommandError

from braintrust_ops.models import CommandRun, DatasetInsertion, TaggedLog
from braintrust_ops.redaction import REDACTED
from braintrust_ops.tests.factories import tagged_log
from braintrust_ops.tests.management.commands.test_tag_logs_batch import (  # noqa: F401  (a fixture)
    _custom_id,
    _end_the_batch,
    _submit_held,
    batch_settings,
)
from braintrust_ops.tests.secret_guard import database_text, keys_in
from braintrust_ops_sandbox.constants import ANTHROPIC_KEY, BRAINTRUST_KEY

pytestmark = pytest.mark.django_db(transaction=True)

ECHOED = f"the request sent Authorization: 'Bearer {REDACTED}'"


def _no_key(*texts: str) -> None:
    found = keys_in("\n".join([*texts, database_text()]))
    assert not found, f"API key(s) {sorted(found)} printed, raised or stored"


@pytest.mark.parametrize(
    "command, route, status",
    [
        ("tag_logs", "project", 400),
        ("tag_logs", "btql", 403),
        ("push_to_datasets", "dataset_list", 500),
        ("backup_logs", "btql", 400),
    ],
)
def test_a_braintrust_error_body_quoting_the_key_is_redacted_in_the_one_line_error_and_the_run_record(
    datasets_project, run_command, tmp_path, command, route, status
):
    datasets_project.faults.add(route, "echo_credentials", status=status, times=None)
    args = ["--output", str(tmp_path / "backup.csv")] if command == "backup_logs" else []
    with pytest.raises(CommandError) as raised:
        run_command(command, *args)
    assert ECHOED in str(raised.value) and BRAINTRUST_KEY not in str(raised.value)
    cause = raised.value.__cause__
    while cause is not None:  # the SDK's own error, which quotes the body, is redacted too
        assert BRAINTRUST_KEY not in str(cause)
        cause = cause.__cause__
    assert ECHOED in CommandRun.objects.get().error
    _no_key(str(raised.value))


def test_a_dataset_insert_refused_with_the_key_in_its_body_is_stored_redacted_in_the_ledger(
    datasets_project, run_command
):
    tagged_log("l1", "halacha")
    datasets_project.faults.add("dataset_insert", "echo_credentials", status=400, times=None)
    with pytest.raises(CommandError) as raised:
        run_command("push_to_datasets")
    errors = set(DatasetInsertion.objects.values_list("last_error", flat=True))
    assert errors and all(ECHOED in error for error in errors)
    _no_key(str(raised.value))


def test_an_anthropic_400_quoting_the_key_is_redacted_in_the_stored_error_and_the_output(
    small_project, run_command, ops_settings
):
    ops_settings(TAGGING_FAILURE_THRESHOLD=1)
    small_project.faults.add("messages", "echo_credentials", status=400, times=None)
    # Every request refused alike, the setup check too: the run fails quoting the error, no log charged.
    with pytest.raises(CommandError) as raised:
        run_command("tag_logs")
    refused = TaggedLog.objects.all()
    assert refused.count() == 3
    # The SDK sends the key as x-api-key (or, in newer releases, as a bearer token): either is redacted.
    assert all("refused this log's request with HTTP 400" in log.last_error for log in refused)
    assert all(REDACTED in log.last_error and ANTHROPIC_KEY not in log.last_error for log in refused)
    assert REDACTED in str(raised.value)
    _no_key(str(raised.value))


@pytest.mark.usefixtures("batch_settings")
def test_an_errored_batch_result_quoting_the_key_is_stored_redacted(small_project, run_command, ops_settings):
    ops_settings(TAGGING_FAILURE_THRESHOLD=1)
    _submit_held(small_project, run_command)
    cook = "Is it permitted to cook on Shabbat?"
    message = f"bad request; x-api-key: {ANTHROPIC_KEY}"
    small_project.batches.outcomes[_custom_id(cook)] = {
        "type": "errored",
        "error": {"type": "error", "error": {"type": "invalid_request_error", "message": message}},
    }
    _end_the_batch(small_project)
    result = run_command("tag_logs", "--batch")
    stored = TaggedLog.objects.get(input=cook)
    assert stored.status == "failed" and f"x-api-key: {REDACTED}" in stored.last_error
    _no_key(result.output)
