"""tag_logs --batch against the sandbox's Message Batches: the same labels as a run that calls Claude one
log at a time, each outcome costing a log what it costs there, a batch never sent twice, a crash after
submitting recovered, and the push taking only collected results."""

import re
from datetime import timedelta

import pytest
from django.core.management.base import CommandError
from structlog.testing import capture_logs

from braintrust_ops.batch_requests import custom_id
from braintrust_ops.clients.claude_batches import BatchClient
from braintrust_ops.exceptions import TransientServiceError
from braintrust_ops.models import CommandRun, DatasetInsertion, TagBatch, TaggedLog
from braintrust_ops.services.tagging import batches as tagging_batches
from braintrust_ops.services.tagging.dispatch import Tally
from braintrust_ops_sandbox import ANTHROPIC_KEY

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-haiku-4-5"


@pytest.fixture
def batch_settings(ops_settings):
    # A short time-out: a run after a lost create waits CREATE_SETTLE_TIMEOUTS of them before judging it.
    ops_settings(CLAUDE_BATCH_POLL_SECONDS="0.05", CLAUDE_TIMEOUT_SECONDS="2")


def _labels() -> dict[str, list[str]]:
    return {log.input: log.tag_names for log in TaggedLog.objects.prefetch_related("tags")}


def _states() -> dict[str, tuple[str, int, bool]]:
    return {log.input: (log.status, log.attempts, log.batch_id is not None) for log in TaggedLog.objects.all()}


def _custom_id(text: str) -> str:
    return custom_id(TaggedLog.objects.get(input=text).log_id)


def _submit_held(sandbox, run_command, *args):
    """A batch run whose batch stays processing until the test ends it."""
    sandbox.batches.processing_seconds = 3600
    return run_command("tag_logs", "--batch", *args)


def _end_the_batch(sandbox) -> dict:
    """End the one batch submitted so far, as Anthropic does when it has processed every request."""
    (batch,) = sandbox.batches.all()
    return sandbox.batches.end_processing(batch["id"])


COOK, TRANSLATE, WEATHER = (
    "Is it permitted to cook on Shabbat?",
    "Please translate Genesis 1:1",
    "What's the weather in Jerusalem?",
)


def test_batch_mode_gives_the_labels_interactive_mode_gives_at_the_batch_price(
    small_project, run_command, batch_settings
):
    interactive = run_command("tag_logs")
    labels, provenance = _labels(), set(TaggedLog.objects.values_list("tagset_fingerprint", "model", "prompt_version"))
    full = CommandRun.objects.get().counters
    TaggedLog.objects.all().delete()
    CommandRun.objects.all().delete()
    calls = small_project.count("messages")

    batch = run_command("tag_logs", "--batch", "--wait", "1")
    assert _labels() == labels and labels[COOK] == ["halacha"]
    assert set(TaggedLog.objects.values_list("tagset_fingerprint", "model", "prompt_version")) == provenance
    assert small_project.count("messages") == calls  # no call outside the batch
    (sent,) = small_project.batches.all()
    assert len(sent["custom_ids"]) == 3
    assert "Submitted 3 logs in 1 Message Batches" in batch.stdout
    assert "Batches collected: 1 (succeeded 3)" in batch.stdout
    half = CommandRun.objects.get().counters
    assert (half["input_tokens"], half["output_tokens"]) == (full["input_tokens"], full["output_tokens"])
    assert float(half["estimated_cost_usd"]) == pytest.approx(float(full["estimated_cost_usd"]) / 2, abs=0.0001)
    assert "Submitted" not in interactive.stdout


def test_a_batch_still_processing_is_never_submitted_again_and_a_later_run_collects_it(
    small_project, run_command, batch_settings
):
    first = _submit_held(small_project, run_command)
    assert "batches still processing: 1" in first.stdout
    assert set(_states().values()) == {("pending", 0, True)}

    again = run_command("tag_logs", "--batch")
    assert "Submitted 0 logs in 0 Message Batches" in again.stdout
    assert small_project.count("batches_create") == 1

    _end_the_batch(small_project)
    run_command("tag_logs", "--batch")
    assert _labels() == {COOK: ["halacha"], TRANSLATE: ["translation"], WEATHER: []}
    assert TagBatch.objects.get().state == "collected" and small_project.count("batches_create") == 1


def test_an_interactive_run_collects_a_batch_an_earlier_batch_run_left_open(small_project, run_command, batch_settings):
    _submit_held(small_project, run_command)
    _end_the_batch(small_project)
    result = run_command("tag_logs")
    assert "Batches collected: 1 (succeeded 3)" in result.stdout
    assert small_project.count("messages") == 0 and _labels()[COOK] == ["halacha"]


@pytest.mark.parametrize(
    "outcome, status, attempts, error",
    [
        (
            {
                "type": "errored",
                "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}},
            },
            "failed",
            1,
            "refused this log's request in the batch (invalid_request_error): bad",
        ),
        (
            {"type": "errored", "error": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}},
            "pending",
            0,
            "failed this log's request in the batch (overloaded_error): busy",
        ),
        ({"type": "expired"}, "pending", 0, "the batch request was expired; queued again"),
        ({"type": "canceled"}, "pending", 0, "the batch request was canceled; queued again"),
    ],
    ids=["errored_on_its_request", "errored_by_the_service", "expired", "canceled"],
)
def test_each_batch_outcome_costs_the_log_what_the_interactive_path_would(
    small_project, run_command, batch_settings, ops_settings, outcome, status, attempts, error
):
    ops_settings(TAGGING_FAILURE_THRESHOLD=1)
    _submit_held(small_project, run_command)
    small_project.batches.outcomes[_custom_id(COOK)] = outcome
    _end_the_batch(small_project)
    # Collects the batch, then submits what is queued again (the cook log, still processing at the end).
    run_command("tag_logs", "--batch")
    cook = TaggedLog.objects.get(input=COOK)
    assert (cook.status, cook.attempts) == (status, attempts) and error in cook.last_error
    assert _labels()[TRANSLATE] == ["translation"]  # the rest of the batch is stored as usual
    first, again = TagBatch.objects.order_by("created_at")
    assert first.outcomes == {outcome["type"]: 1, "succeeded": 2}
    assert small_project.batches.all()[-1]["custom_ids"] == [_custom_id(COOK)] and again.state == "open"


def test_a_result_line_of_another_shape_sends_only_its_log_back_to_the_queue_and_the_others_are_stored(
    small_project, run_command, batch_settings, ops_settings
):
    """The SDK builds each results line unchecked: a line the API would never send is that log's result
    that could not be read (no attempt used, queued again), never a traceback that leaves the batch open."""
    ops_settings(TAGGING_FAILURE_THRESHOLD=1)
    _submit_held(small_project, run_command)
    ended = _end_the_batch(small_project)
    results = small_project.batches.all()[0]["results"]
    lines = [{"custom_id": key, "result": result} for key, result in results.items()]
    misshapen = next(line for line in lines if line["custom_id"] == _custom_id(COOK))
    misshapen["result"] = {"type": "succeeded", "message": {"content": "not a list of blocks"}}
    small_project.faults.add("batches_results", "reply", body=[{"not": "a result"}, *lines])

    result = run_command("tag_logs", "--batch")
    assert "Batches collected: 1 (succeeded 2, unreadable 1)" in result.stdout
    cook = TaggedLog.objects.get(input=COOK)
    assert (cook.status, cook.attempts) == ("pending", 0)
    assert (
        cook.last_error
        == f"its result in batch {ended['id']} could not be read (not of the documented shape); queued again"
    )
    assert _labels()[TRANSLATE] == ["translation"] and _labels()[WEATHER] == []
    assert TagBatch.objects.get(batch_id=ended["id"]).state == "collected"
    assert small_project.batches.all()[-1]["custom_ids"] == [_custom_id(COOK)]  # sent again, alone


def test_a_night_whose_batch_results_cannot_be_read_fails_saying_so_and_uses_no_attempt(
    small_project, run_command, batch_settings
):
    _submit_held(small_project, run_command)
    _end_the_batch(small_project)
    unreadable = [
        {"custom_id": _custom_id(text), "result": {"type": "succeeded"}} for text in (COOK, TRANSLATE, WEATHER)
    ]
    small_project.faults.add("batches_results", "reply", body=unreadable)
    with pytest.raises(
        CommandError,
        match=r"3 of 3 logs failed to tag .* their Message Batch results could not be read \(no attempt used",
    ):
        run_command("tag_logs", "--batch")
    assert {(status, attempts) for status, attempts, _ in _states().values()} == {("pending", 0)}


def test_an_expired_batch_sends_its_logs_back_to_the_queue_and_the_next_run_tags_them(
    small_project, run_command, batch_settings, ops_settings
):
    _submit_held(small_project, run_command)
    (batch,) = small_project.batches.all()
    small_project.batches.expire(batch["id"])
    with pytest.raises(
        CommandError,
        match=r"3 of 3 logs failed to tag .* their Message Batch expired or was canceled \(no attempt used",
    ):
        run_command("tag_logs", "--batch")  # collects the expired results, and submits the logs again
    assert set(_states().values()) == {("pending", 0, True)}
    small_project.batches.end_processing(small_project.batches.all()[-1]["id"])
    run_command("tag_logs", "--batch")
    assert _labels()[COOK] == ["halacha"] and small_project.count("batches_create") == 2


def test_a_crash_after_anthropic_accepted_the_batch_is_recovered_by_listing_and_nothing_is_sent_twice(
    small_project, run_command, batch_settings, monkeypatch
):
    def crash(*args, **kwargs):
        raise RuntimeError("the process died before it recorded the batch id")

    with monkeypatch.context() as patched:
        patched.setattr(tagging_batches, "_record_acceptance", crash)
        with pytest.raises(RuntimeError, match="before it recorded"):
            run_command("tag_logs", "--batch")
    assert TagBatch.objects.get().state == "submitting" and small_project.count("batches_create") == 1

    result = run_command("tag_logs", "--batch", "--wait", "1")
    assert "1 found again after a crash" in result.stdout
    assert small_project.count("batches_create") == 1
    assert _labels() == {COOK: ["halacha"], TRANSLATE: ["translation"], WEATHER: []}
    assert TagBatch.objects.get().batch_id == small_project.batches.all()[0]["id"]


def test_a_batch_anthropic_never_accepted_is_abandoned_and_its_logs_submitted_again(
    small_project, run_command, batch_settings, ops_settings
):
    ops_settings(CLAUDE_MAX_RETRIES=0)
    small_project.faults.add("batches_create", "drop", times=1)
    with pytest.raises(CommandError, match="reply to the batch create was lost"):
        run_command("tag_logs", "--batch")
    assert TagBatch.objects.get().state == "submitting" and set(_states().values()) == {("pending", 0, True)}

    result = run_command("tag_logs", "--batch", "--wait", "1")
    assert "0 found again after a crash, 1 abandoned" in result.stdout
    assert _labels()[COOK] == ["halacha"]
    assert sorted(TagBatch.objects.values_list("state", flat=True)) == ["abandoned", "collected"]


def test_a_create_anthropic_carries_out_after_the_client_gave_up_is_adopted_by_a_run_started_at_once(
    small_project, run_command, batch_settings, ops_settings
):
    """The create's reply comes after the client's time-out, and the batch exists only from then on: a run
    started before that must not judge it never accepted and pay for its logs a second time."""
    ops_settings(CLAUDE_TIMEOUT_SECONDS="0.5", CLAUDE_MAX_RETRIES=0)
    small_project.faults.add("batches_create", "latency", delay=1.2, times=1)
    with pytest.raises(CommandError):
        run_command("tag_logs", "--batch")
    assert small_project.batches.all() == []  # the sandbox is still sleeping on the create

    result = run_command("tag_logs", "--batch", "--wait", "1")
    assert "1 found again after a crash" in result.stdout
    assert len(small_project.batches.all()) == 1 and small_project.count("batches_create") == 1
    assert _labels() == {COOK: ["halacha"], TRANSLATE: ["translation"], WEATHER: []}


def test_a_batch_refused_as_a_whole_releases_its_logs_and_fails_the_run_saying_why(
    small_project, run_command, batch_settings, ops_settings
):
    small_project.faults.add("batches_create", "status", status=400, times=1)
    with pytest.raises(CommandError, match="HTTP 400"):
        run_command("tag_logs", "--batch")
    assert TagBatch.objects.get().state == "abandoned"
    assert set(_states().values()) == {("pending", 0, False)}


def test_results_that_break_off_once_are_read_again_in_the_same_run_and_each_log_stored_once(
    small_project, run_command, batch_settings
):
    _submit_held(small_project, run_command)
    _end_the_batch(small_project)
    small_project.faults.add("batches_results", "partial", times=1)
    result = run_command("tag_logs")
    assert "Batches collected: 1 (succeeded 3)" in result.stdout and "Tagging finished." in result.stdout
    assert _labels() == {COOK: ["halacha"], TRANSLATE: ["translation"], WEATHER: []}
    assert TaggedLog.objects.filter(attempts=1).count() == 3 and TagBatch.objects.get().state == "collected"
    assert small_project.count("batches_results") == 2


def test_the_push_takes_only_collected_results(small_project, datasets_project, run_command, batch_settings):
    _submit_held(small_project, run_command, "--push")
    assert DatasetInsertion.objects.count() == 0
    _end_the_batch(small_project)
    run_command("tag_logs", "--batch", "--push")
    assert DatasetInsertion.objects.filter(dataset_id=datasets_project.halacha).count() == 1


def test_each_shard_submits_and_collects_only_its_own_batches(small_project, run_command, batch_settings):
    from datetime import UTC, datetime, timedelta

    from braintrust_ops.shards import Shard

    # One log surely in each shard, whatever shards the fixture's random ids fell in.
    for index in (0, 1):
        log_id = next(f"shard-log-{n}" for n in range(1000) if Shard(index, 2).owns(f"shard-log-{n}"))
        small_project.state.add_log(id=log_id, input="a Talmud source", created=datetime.now(UTC) - timedelta(hours=1))
    _submit_held(small_project, run_command, "--shard", "0/2")
    run_command("tag_logs", "--batch", "--shard", "1/2")
    first, second = small_project.batches.all()
    assert set(first["custom_ids"]).isdisjoint(second["custom_ids"])
    assert len(first["custom_ids"]) + len(second["custom_ids"]) == 5
    small_project.batches.end_processing(first["id"])
    small_project.batches.end_processing(second["id"])
    run_command("tag_logs", "--batch", "--shard", "0/2")
    assert sorted(TagBatch.objects.values_list("shard", "state")) == [("0/2", "collected"), ("1/2", "open")]


def test_the_dry_run_says_what_the_queue_would_cost_in_batches(small_project, run_command):
    standard = run_command("tag_logs", "--dry-run").stdout
    batch = run_command("tag_logs", "--dry-run", "--batch").stdout
    assert "at the batch price" in batch and "in Message Batches" in batch and "at the standard price" in standard
    price = [float(text.split("about $")[1].split()[0]) for text in (standard, batch)]
    assert price[1] == pytest.approx(price[0] / 2, abs=0.0001) and price[0] > 0
    assert small_project.count("batches_create") == 0 and not TaggedLog.objects.exists()


def test_wait_without_batch_is_refused(run_command):
    with pytest.raises(CommandError, match="--wait goes with --batch"):
        run_command("tag_logs", "--wait", "5")


def test_a_batch_api_down_does_not_stop_the_nights_interactive_tagging_but_fails_the_run_saying_why(
    small_project, run_command, batch_settings, ops_settings
):
    _submit_held(small_project, run_command)
    small_project.state.add_log(input="Is this kosher?", output="It depends.")
    ops_settings(CLAUDE_MAX_RETRIES=0)
    small_project.faults.add("batches_retrieve", "status", status=503, times=None)
    with pytest.raises(CommandError, match="Message Batches left open by earlier runs could not be settled"):
        run_command("tag_logs")
    assert _labels()["Is this kosher?"] == ["halacha"]  # tonight's log was tagged all the same
    assert TagBatch.objects.get().state == "open" and TaggedLog.objects.filter(batch__isnull=False).count() == 3


def test_wait_collects_a_batch_that_ends_while_the_run_waits(small_project, run_command, batch_settings):
    small_project.batches.processing_seconds = 0.5
    result = run_command("tag_logs", "--batch", "--wait", "1")
    assert "Batches collected: 1 (succeeded 3)" in result.stdout and "batches still processing: 0" in result.stdout
    assert _labels()[COOK] == ["halacha"]


def test_a_batch_anthropic_answers_404_for_once_stays_open_and_is_collected_when_found_again(
    small_project, run_command, batch_settings
):
    """anthropics/anthropic-sdk-python#1432: a retrieve can answer 404 for a while. Giving up on the batch at
    once would send its logs again, and pay for them twice, while Anthropic still processes the first."""
    _submit_held(small_project, run_command)
    (batch,) = small_project.batches.all()
    small_project.faults.add("batches_retrieve", "status", status=404, times=1)
    with pytest.raises(
        CommandError,
        match=rf"Anthropic does not find batch {batch['id']} \(HTTP 404\) since .* UTC\. Such a 404 can pass: the "
        r"batch stays open, and if it is still not found after .* UTC its logs are sent again\.",
    ):
        run_command("tag_logs", "--batch")
    stored = TagBatch.objects.get()
    assert stored.state == "open" and stored.not_found_since is not None
    assert set(_states().values()) == {("pending", 0, True)} and small_project.count("batches_create") == 1

    _end_the_batch(small_project)
    run_command("tag_logs", "--batch")
    assert _labels() == {COOK: ["halacha"], TRANSLATE: ["translation"], WEATHER: []}
    stored.refresh_from_db()
    assert (stored.state, stored.not_found_since) == ("collected", None)
    assert small_project.count("batches_create") == 1  # paid for once


def test_a_wait_goes_on_through_a_404_just_after_submitting_and_collects_the_batch(
    small_project, run_command, batch_settings
):
    """#1432's first case: the retrieve right after the create answers 404. The wait polls again."""
    small_project.batches.processing_seconds = 0.3
    small_project.faults.add("batches_retrieve", "status", status=404, times=1)
    result = run_command("tag_logs", "--batch", "--wait", "1")
    assert "Batches collected: 1 (succeeded 3)" in result.stdout
    assert _labels() == {COOK: ["halacha"], TRANSLATE: ["translation"], WEATHER: []}
    assert TagBatch.objects.get().not_found_since is None and small_project.count("batches_create") == 1


def test_a_wait_that_ends_with_a_batch_still_not_found_fails_saying_so(small_project, run_command, batch_settings):
    _submit_held(small_project, run_command)
    small_project.faults.add("batches_retrieve", "status", status=404, times=None)
    client = BatchClient(api_key=ANTHROPIC_KEY, base_url=small_project.url, model=MODEL, timeout=5, max_retries=0)
    counts = tagging_batches.BatchCounts()
    with pytest.raises(TransientServiceError, match="Such a 404 can pass"):
        # --wait takes whole minutes; the service's wait, a few polls long, is what the command runs.
        tagging_batches.batches_wait(
            client, minutes=0.005, poll_seconds=0.05, shard=None, run=None, max_attempts=3, tally=Tally(), counts=counts
        )
    client.close()
    assert small_project.count("batches_retrieve") > 1  # it polled again, not gave up at the first 404
    assert TagBatch.objects.get().state == "open" and set(_states().values()) == {("pending", 0, True)}


def test_batches_collected_before_another_is_not_found_are_counted_in_the_failed_nights_report(
    small_project, run_command, batch_settings, ops_settings
):
    ops_settings(CLAUDE_BATCH_MAX_BYTES="3000")  # more than one batch
    _submit_held(small_project, run_command)
    submitted = small_project.batches.all()
    assert len(submitted) > 1
    for batch in submitted:
        small_project.batches.end_processing(batch["id"])
    small_project.faults.add("batches_retrieve", "status", status=404, times=1)  # the newest batch's
    with pytest.raises(CommandError, match="Such a 404 can pass"):
        run_command("tag_logs", "--batch")
    collected = TagBatch.objects.filter(state="collected")
    counters = CommandRun.objects.filter(command="tag_logs").latest("started_at").counters
    assert counters["batches_collected"] == collected.count() == len(submitted) - 1
    assert counters["batch_outcomes"] == {"succeeded": sum(batch.request_count for batch in collected)}
    assert counters["batch_input_tokens"] > 0


def test_a_wait_ends_at_once_on_any_failure_but_a_batch_not_found_and_says_that_failure_first(
    small_project, run_command, batch_settings, ops_settings, monkeypatch
):
    monkeypatch.setattr(tagging_batches, "RESULTS_READ_PAUSE_SECONDS", 0)
    ops_settings(CLAUDE_BATCH_MAX_BYTES="3000")  # more than one batch
    _submit_held(small_project, run_command)
    for batch in small_project.batches.all():
        small_project.batches.end_processing(batch["id"])
    small_project.faults.add("batches_retrieve", "status", status=404, times=1)  # the newest batch's
    small_project.faults.add("batches_results", "partial", times=None)  # the others' results, every read
    with pytest.raises(CommandError, match="broke off while being read"):
        run_command("tag_logs", "--batch", "--wait", "1")
    # The settle and one poll of the wait (a retrieve before each read of results, three reads), not a
    # minute of polls every 0.05 s.
    assert small_project.count("batches_retrieve") < 30


def test_a_batch_still_not_found_after_the_grace_is_abandoned_and_its_logs_sent_again(
    small_project, run_command, batch_settings
):
    _submit_held(small_project, run_command)
    small_project.faults.add("batches_retrieve", "status", status=404, times=None)
    with pytest.raises(CommandError, match="Such a 404 can pass"):
        run_command("tag_logs", "--batch")
    first = TagBatch.objects.get()
    # The next night: the first 404 is now older than the grace.
    TagBatch.objects.filter(pk=first.pk).update(not_found_since=first.not_found_since - tagging_batches.NOT_FOUND_GRACE)
    small_project.faults.clear()
    small_project.faults.add("batches_retrieve", "status", status=404, times=1)
    result = run_command("tag_logs", "--batch")
    assert "0 found again after a crash, 1 abandoned" in result.stdout
    first.refresh_from_db()
    again = TagBatch.objects.exclude(pk=first.pk).get()
    assert first.state == "abandoned" and again.state == "open"
    assert f"Anthropic has not known batch {first.batch_id} since " in first.error
    assert first.error.endswith("UTC (HTTP 404); its logs are queued again, no attempt used")
    assert set(_states().values()) == {("pending", 0, True)}  # in the new batch, no attempt used


def test_a_404_just_short_of_the_grace_still_leaves_the_batch_open(small_project, run_command, batch_settings):
    _submit_held(small_project, run_command)
    small_project.faults.add("batches_retrieve", "status", status=404, times=None)
    with pytest.raises(CommandError, match="Such a 404 can pass"):
        run_command("tag_logs", "--batch")
    first = TagBatch.objects.get()
    almost = tagging_batches.NOT_FOUND_GRACE - timedelta(minutes=5)
    TagBatch.objects.filter(pk=first.pk).update(not_found_since=first.not_found_since - almost)
    with pytest.raises(CommandError, match="Such a 404 can pass"):
        run_command("tag_logs", "--batch")
    assert TagBatch.objects.get().state == "open" and small_project.count("batches_create") == 1


def _twelve_logs_in_one_ended_batch(small_project, run_command, monkeypatch) -> dict:
    # Results are stored a chunk at a time; small chunks let a cut-off body leave some stored.
    monkeypatch.setattr(tagging_batches, "RESULTS_CHUNK", 2)
    for number in range(9):
        small_project.state.add_log(input=f"Shabbat question {number}", output="answer")
    _submit_held(small_project, run_command)
    return _end_the_batch(small_project)


def test_results_read_in_part_before_they_broke_off_are_kept_and_neither_stored_nor_counted_twice(
    small_project, run_command, batch_settings, monkeypatch
):
    _twelve_logs_in_one_ended_batch(small_project, run_command, monkeypatch)
    small_project.faults.add("batches_results", "partial", times=2)
    with capture_logs() as events:
        result = run_command("tag_logs")
    assert [event["read"] for event in events if event["event"] == "batch_results_read_again"] == [1, 2]
    assert "Batches collected: 1 (succeeded 12)" in result.stdout
    assert TaggedLog.objects.filter(status="tagged", attempts=1).count() == 12
    assert TagBatch.objects.get().outcomes == {"succeeded": 12}
    assert CommandRun.objects.filter(command="tag_logs").latest("started_at").counters["sent"] == 12


def test_results_cut_off_on_every_read_fail_in_one_line_naming_the_batch_and_the_next_run_collects_the_rest(
    small_project, run_command, batch_settings, monkeypatch
):
    batch = _twelve_logs_in_one_ended_batch(small_project, run_command, monkeypatch)
    small_project.faults.add("batches_results", "partial", times=None)
    with pytest.raises(CommandError) as failure:
        run_command("tag_logs")
    message = str(failure.value)
    assert "\n" not in message
    assert re.search(
        rf"The results of batch {batch['id']} broke off while being read \(\w+\), 3 times in this run; the results "
        r"read are stored, the batch stays open and the next run collects it again\.",
        message,
    ), message
    assert small_project.count("batches_results") == tagging_batches.RESULTS_READS
    stored_first = TaggedLog.objects.filter(batch__isnull=True).count()
    assert 0 < stored_first < 12 and TagBatch.objects.get().state == "open"
    assert sum(TagBatch.objects.get().outcomes.values()) == stored_first

    small_project.faults.clear()
    run_command("tag_logs")
    assert TaggedLog.objects.filter(status="tagged", attempts=1).count() == 12
    assert TagBatch.objects.get().outcomes == {"succeeded": 12} and TagBatch.objects.get().state == "collected"


def test_a_batch_whose_results_keep_breaking_off_does_not_hold_back_the_next_batch(
    small_project, run_command, batch_settings
):
    _submit_held(small_project, run_command)
    small_project.state.add_log(input="Is this kosher?", output="It depends.")
    run_command("tag_logs", "--batch")  # a second batch, of tonight's one new log
    first, second = small_project.batches.all()
    small_project.batches.end_processing(first["id"])
    small_project.batches.end_processing(second["id"])
    small_project.faults.add("batches_results", "partial", times=tagging_batches.RESULTS_READS)  # the first's reads
    with pytest.raises(CommandError, match=f"The results of batch {first['id']} broke off"):
        run_command("tag_logs")
    assert dict(TagBatch.objects.values_list("batch_id", "state")) == {first["id"]: "open", second["id"]: "collected"}
    assert _labels()["Is this kosher?"] == ["halacha"]


DAYS_30 = timedelta(days=30).total_seconds()


def test_an_interactive_run_settles_a_batch_archived_before_collection_and_tags_its_logs_without_failing(
    small_project, run_command, batch_settings
):
    _submit_held(small_project, run_command)
    (batch,) = small_project.batches.all()
    small_project.batches.backdate(batch["id"], DAYS_30)  # ended expired after 24 hours, archived after 29 days
    with capture_logs() as events:
        result = run_command("tag_logs")
    (gone,) = [event for event in events if event["event"] == "batch_results_gone"]
    assert gone["message"] == (
        f"Batch {batch['id']} expired before its results were collected (archived on "
        f"{small_project.batches.all()[0]['archived_at'][:10]}: Anthropic keeps a batch's results 29 days); its 3 "
        "logs are queued again, no attempt used."
    )
    assert gone["log_level"] == "warning"
    assert "1 abandoned (their logs are queued again)" in result.stdout and "Tagging finished." in result.stdout
    assert _labels() == {COOK: ["halacha"], TRANSLATE: ["translation"], WEATHER: []}
    assert set(TaggedLog.objects.values_list("attempts", flat=True)) == {1}
    settled = TagBatch.objects.get()
    assert settled.state == "abandoned" and settled.error == gone["message"]
    assert small_project.count("batches_results") == 0  # archived: not asked for


def test_an_archived_batchs_logs_go_back_to_the_queue_with_no_attempt_used_and_the_next_batch_labels_them(
    small_project, run_command, batch_settings
):
    _submit_held(small_project, run_command)
    small_project.batches.backdate(small_project.batches.all()[0]["id"], DAYS_30)
    result = run_command("tag_logs", "--batch")  # settles the archived batch, then submits its logs again
    assert "1 abandoned" in result.stdout and "Submitted 3 logs in 1 Message Batches" in result.stdout
    assert set(_states().values()) == {("pending", 0, True)}
    assert {log.last_error for log in TaggedLog.objects.all()} == {
        f"batch {small_project.batches.all()[0]['id']} expired before its results were collected; queued again"
    }
    small_project.batches.end_processing(small_project.batches.all()[-1]["id"])
    run_command("tag_logs", "--batch")
    assert _labels() == {COOK: ["halacha"], TRANSLATE: ["translation"], WEATHER: []}
    assert sorted(TagBatch.objects.values_list("state", flat=True)) == ["abandoned", "collected"]


def test_results_answering_404_within_29_days_leave_the_batch_open_and_a_later_run_collects_it(
    small_project, run_command, batch_settings
):
    _submit_held(small_project, run_command)
    batch = _end_the_batch(small_project)
    small_project.faults.add("batches_results", "status", status=404, times=1)
    with pytest.raises(
        CommandError,
        match=rf"Anthropic has no results for batch {batch['id']} \(HTTP 404\)\. It was created on \d{{4}}-\d\d-\d\d, "
        r"within the 29 days Anthropic keeps results: the batch stays open and the next run asks again\.",
    ):
        run_command("tag_logs")
    assert TagBatch.objects.get().state == "open" and set(_states().values()) == {("pending", 0, True)}
    run_command("tag_logs")
    assert _labels() == {COOK: ["halacha"], TRANSLATE: ["translation"], WEATHER: []}
    assert TagBatch.objects.get().state == "collected"


def test_results_answering_404_past_the_29_days_settle_the_batch_even_before_anthropic_says_archived(
    small_project, run_command, batch_settings, monkeypatch
):
    # The sandbox archives at 29 days exactly; a shorter keep here makes the batch older than it before then.
    monkeypatch.setattr(tagging_batches, "RESULTS_KEPT", timedelta(hours=2))
    _submit_held(small_project, run_command)
    batch = _end_the_batch(small_project)
    small_project.batches.backdate(batch["id"], timedelta(hours=3).total_seconds())
    small_project.faults.add("batches_results", "status", status=404, times=1)
    with capture_logs() as events:
        run_command("tag_logs")
    (gone,) = [event for event in events if event["event"] == "batch_results_gone"]
    assert "its results answer HTTP 404" in gone["message"] and "its 3 logs are queued again" in gone["message"]
    assert TagBatch.objects.get().state == "abandoned"
    assert set(TaggedLog.objects.values_list("attempts", flat=True)) == {1}  # tagged by this run, once
