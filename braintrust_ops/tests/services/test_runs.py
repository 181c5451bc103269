"""One lifecycle for every run: recorded once, judged by the command's one success rule."""

import signal
from contextlib import nullcontext
from dataclasses import dataclass

import pytest

from braintrust_ops.conf import OpsConfig
from braintrust_ops.models import CommandRun
from braintrust_ops.services import runs
from braintrust_ops.services.runs import RunFailed, run_finish, run_recorded, run_start
from braintrust_ops.stopping import Interrupted

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Report:
    done: int = 1
    rule: str = ""

    def as_counters(self) -> dict:
        return {"done": self.done}

    def problem(self, config) -> str:
        return self.rule


@pytest.fixture
def finishes(mocker):
    """finishes(): the ids of the runs run_finish was called for, in order: a run is finished exactly once."""
    spy = mocker.spy(runs, "run_finish")
    return lambda: [call.args[0].pk for call in spy.call_args_list]


def _run(job):
    return run_recorded(command="demo", options={"x": 1}, config=OpsConfig(), lock=nullcontext(), job=job)


def test_a_job_that_did_its_work_is_recorded_succeeded_once_with_its_counters(finishes):
    report = _run(lambda run: Report(done=7))
    run = CommandRun.objects.get()
    assert (run.outcome, run.counters, run.error, report.done) == ("succeeded", {"done": 7}, "", 7)
    assert finishes() == [run.pk] and run.duration is not None and run.lock_key is not None


def test_a_job_its_success_rule_rejects_is_recorded_failed_once_and_raises_with_its_report(finishes):
    with pytest.raises(RunFailed, match="3 datasets failed") as raised:
        _run(lambda run: Report(done=2, rule="3 datasets failed"))
    run = CommandRun.objects.get()
    assert (run.outcome, run.counters, run.error) == ("failed", {"done": 2}, "3 datasets failed")
    assert finishes() == [run.pk] and raised.value.report.done == 2


def test_an_error_escaping_the_job_is_recorded_failed_once_and_propagates(finishes):
    def boom(run):
        raise ValueError("disk full")

    with pytest.raises(ValueError):
        _run(boom)
    run = CommandRun.objects.get()
    assert (run.outcome, run.error) == ("failed", "ValueError: disk full") and finishes() == [run.pk]


def test_an_interrupted_job_is_recorded_interrupted_with_what_it_finished(finishes):
    def stopped(run):
        interrupted = Interrupted(signal.SIGTERM, "stopped dispatching")
        interrupted.report = Report(done=4)
        raise interrupted

    with pytest.raises(Interrupted):
        _run(stopped)
    run = CommandRun.objects.get()
    assert (run.outcome, run.counters) == ("interrupted", {"done": 4}) and run.error.startswith(
        "Interrupted by SIGTERM"
    )
    assert finishes() == [run.pk]


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
