"""tag_logs when every request fails alike (issue 19): a model without strict tool use, a max_tokens the
model refuses, a proxy's size cap below every request. That is the run's setup, not each log: the run stops,
says which setting to check, and no log uses an attempt. A log refused on its own is still charged."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management.base import CommandError

from braintrust_ops.batch_requests import custom_id
from braintrust_ops.models import CommandRun, TaggedLog
from braintrust_ops.services.tagging.dispatch import SAME_ERROR_STREAK
from braintrust_ops.tests.management.commands.test_tag_logs_batch import batch_settings  # noqa: F401  (a fixture)
from braintrust_ops_sandbox.batches import errored

pytestmark = pytest.mark.django_db(transaction=True)

# Under the setup check's request (about 1.5 KB with small_project's tags) and over any request here.
BELOW_EVERY_REQUEST = 500
# Over small_project's requests and the setup check's, under one with a few thousand characters of log.
OVER_A_SHORT_LOG = 4000
LONG = "Please translate this passage. " * 200


def _add_logs(sandbox, count: int, *, text: str = "Is it permitted to cook on Shabbat?", minutes_ago: int = 90):
    for number in range(count):
        created = datetime.now(UTC) - timedelta(minutes=minutes_ago - number)
        sandbox.state.add_log(input=f"{text} ({number})", output="...", created=created)


def _attempts() -> set[tuple[str, int]]:
    return set(TaggedLog.objects.values_list("status", "attempts"))


def _fails(run_command, *args) -> str:
    with pytest.raises(CommandError) as raised:
        run_command("tag_logs", *args)
    message = str(raised.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_the_same_400_on_every_log_stops_the_run_naming_the_settings_and_uses_no_attempt(small_project, run_command):
    _add_logs(small_project, 9)
    small_project.faults.add("messages", "status", status=400, times=None)
    message = _fails(run_command, "--concurrency", "1")
    assert message.startswith(
        "Anthropic answered every log with the same error, and a short harmless request too: HTTP 400 "
        "(invalid_request_error): sandbox fault: HTTP 400. The run's setup is at fault, not the logs: it stopped "
        "sending, no attempt was used, and the 12 logs not tagged stay queued. Check BRAINTRUST_OPS_TAGGING_MODEL "
        "(now claude-haiku-4-5), BRAINTRUST_OPS_CLAUDE_MAX_OUTPUT_TOKENS (now 200) and "
        "BRAINTRUST_OPS_CLAUDE_STRICT_TOOLS (now true"
    )
    assert message.endswith("then run tag_logs again.")
    # Three logs refused alike, then the check (behind the one log already queued): nothing more is sent.
    run = CommandRun.objects.get()
    assert run.outcome == "failed" and run.counters["setup_failures"] == SAME_ERROR_STREAK + 1
    assert small_project.count("messages") == run.counters["setup_failures"] + 1
    assert run.counters["not_sent"] == 12 - run.counters["setup_failures"]
    assert _attempts() == {("pending", 0)}

    small_project.faults.clear()
    run_command("tag_logs")
    assert _attempts() == {("tagged", 1)} and TaggedLog.objects.count() == 12


def test_a_refusal_quoting_numbers_of_each_log_is_still_recognised_as_the_same(small_project, run_command):
    """A proxy's cap below every request: each refusal quotes its own body's size, a different number each."""
    small_project.set_request_size_limit("messages", BELOW_EVERY_REQUEST)
    small_project.set_switches(size_limit_status=400)
    message = _fails(run_command)
    assert "HTTP 400 (invalid_request_error): Request too large: request body of" in message
    assert _attempts() == {("pending", 0)}
    errors = set(TaggedLog.objects.values_list("last_error", flat=True))
    assert len(errors) == 3  # three different messages, judged alike by their shape

    small_project.set_request_size_limit("messages", None)
    run_command("tag_logs")
    assert _attempts() == {("tagged", 1)}


def test_logs_each_refused_for_their_own_size_are_charged_once_the_setup_check_is_labelled(
    small_project, run_command, ops_settings
):
    ops_settings(TAGGING_FAILURE_THRESHOLD=1)
    _add_logs(small_project, 3, text=LONG, minutes_ago=600)  # the oldest: sent first, before the short ones
    small_project.set_request_size_limit("messages", OVER_A_SHORT_LOG)
    result = run_command("tag_logs", "--concurrency", "1")
    assert "failed: 3 (3 will be retried)" in result.stdout
    charged = TaggedLog.objects.filter(status="failed")
    assert {log.attempts for log in charged} == {1} and all(log.input.startswith(LONG) for log in charged)
    assert all("HTTP 413 (request_too_large)" in log.last_error for log in charged)
    assert set(TaggedLog.objects.exclude(status="failed").values_list("status", "attempts")) == {("tagged", 1)}
    # The three long logs, the setup check (labelled: the faults were the logs' own), the three short logs.
    assert small_project.count("messages") == 3 + 1 + 3


def test_every_reply_cut_off_at_max_tokens_names_the_max_tokens_setting_first(small_project, run_command):
    for _ in range(SAME_ERROR_STREAK + 1):  # the three logs and the setup check
        small_project.claude_replies.push({"tool_input": {"tags": ["halacha"]}, "stop_reason": "max_tokens"})
    message = _fails(run_command)
    assert "the same error, and a short harmless request too: Claude's reply was cut off at max_tokens." in message
    assert "Check BRAINTRUST_OPS_CLAUDE_MAX_OUTPUT_TOKENS (now 200) and BRAINTRUST_OPS_TAGGING_MODEL" in message
    assert _attempts() == {("pending", 0)}


def test_a_queue_ending_on_a_refused_log_checks_the_setup_before_charging_it(small_project, run_command):
    small_project.state.clear_logs()
    _add_logs(small_project, 1)
    small_project.faults.add("messages", "status", status=400, times=None)
    assert "HTTP 400 (invalid_request_error)" in _fails(run_command)
    assert _attempts() == {("pending", 0)} and small_project.count("messages") == 2

    small_project.faults.clear()
    small_project.faults.add("messages", "status", status=400, times=1)  # this log's alone: the check passes
    with pytest.raises(CommandError, match="1 of 1 logs failed to tag"):
        run_command("tag_logs")
    assert _attempts() == {("failed", 1)}


def test_a_setup_check_the_service_fails_charges_nothing_and_says_so(small_project, run_command, ops_settings):
    ops_settings(CLAUDE_MAX_RETRIES=0)
    small_project.faults.add("messages", "status", status=400, times=SAME_ERROR_STREAK)
    small_project.faults.add("messages", "status", status=500, times=1)  # the setup check
    message = _fails(run_command)
    assert "3 with the same error, whose cause could not be told (no attempt used: the next run sends them)" in message
    assert _attempts() == {("pending", 0)}
    assert all("could not be told" in error for error in TaggedLog.objects.values_list("last_error", flat=True))


# --- batch mode: the results are judged once they are collected ---------------------------------------------

STRICT_REFUSED = "tools.0.custom.strict: Extra inputs are not permitted"


def _batch_results_all_refused_alike(sandbox, run_command):
    """A batch of the three logs, every request errored as a model without strict tool use errors them."""
    sandbox.batches.processing_seconds = 3600
    run_command("tag_logs", "--batch")
    for log in TaggedLog.objects.all():
        sandbox.batches.outcomes[custom_id(log.log_id)] = errored(STRICT_REFUSED)
    (batch,) = sandbox.batches.all()
    sandbox.batches.end_processing(batch["id"])


@pytest.mark.usefixtures("batch_settings")
def test_batch_results_failing_alike_get_their_attempts_back_when_the_setup_check_fails_too(small_project, run_command):
    _batch_results_all_refused_alike(small_project, run_command)
    small_project.faults.add("messages", "status", status=400, times=None)  # the setup check refused too
    message = _fails(run_command, "--batch")
    assert "a short harmless request too: HTTP 400 (invalid_request_error): sandbox fault: HTTP 400." in message
    assert "no attempt was used, and the 3 logs not tagged stay queued" in message
    # The results were charged as they were read, then given back: every log is queued with no attempt used.
    assert _attempts() == {("failed", 0)}
    assert all("attempt given back" in log.last_error for log in TaggedLog.objects.all())
    assert len(small_project.batches.all()) == 1  # no new batch sent into a setup that refuses every request
    assert CommandRun.objects.latest("started_at").counters["setup_failures"] == 3

    small_project.faults.clear()
    small_project.batches.processing_seconds = 0
    run_command("tag_logs", "--batch", "--wait", "1")
    assert _attempts() == {("tagged", 1)}


@pytest.mark.usefixtures("batch_settings")
def test_batch_results_failing_alike_stay_charged_when_the_setup_check_is_labelled(
    small_project, run_command, ops_settings
):
    ops_settings(TAGGING_FAILURE_THRESHOLD=1)
    _batch_results_all_refused_alike(small_project, run_command)
    result = run_command("tag_logs", "--batch")
    assert "failed: 3 (3 will be retried)" in result.stdout
    assert _attempts() == {("failed", 1)} and small_project.count("messages") == 1  # the check alone
