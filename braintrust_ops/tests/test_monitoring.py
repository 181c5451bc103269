"""Sentry around every command run, with a real sentry_sdk client whose transport records what it would
send: nothing leaves the machine (sentry_host.py)."""

import re
import signal
import sys
from contextlib import contextmanager, nullcontext

import pytest
import sentry_sdk
import sentry_sdk.transport
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.db import OperationalError
from django.http import Http404
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from braintrust_ops import monitoring
from braintrust_ops.conf import OpsConfig
from braintrust_ops.exceptions import CommandLocked, TransientServiceError
from braintrust_ops.management.base import recorded_options
from braintrust_ops.monitoring import monitor_slug
from braintrust_ops.services.runs import run_recorded
from braintrust_ops.shards import parse_shard
from braintrust_ops.stopping import Interrupted
from braintrust_ops.tests.secret_guard import keys_in
from braintrust_ops.tests.sentry_host import (
    DSN,
    CapturingTransport,
    init_sentry_like_sefaria,
    reset_sentry,
    sefaria_before_send,
)

pytestmark = pytest.mark.django_db(transaction=True)

PRUNE = "braintrust_ops.management.commands.prune_braintrust_ops"
PRUNE_SLUG = "braintrust-ops-prune-braintrust-ops"
BRAINTRUST_KEY = "bt-sentry-key-for-tests-1"
ANTHROPIC_KEY = "sk-sentry-key-for-tests-2"
PROJECT_ID = "5f0c7a4e-8a43-4c8e-9d55-0c6b1f1b2a3d"


@pytest.fixture(autouse=True)
def _no_client_before_or_after():
    """Each test starts as a CronJob process does, with no client, and leaves none behind."""
    reset_sentry()
    yield
    reset_sentry()


@pytest.fixture
def host_sentry():
    """The host's own client, started as Sefaria's init_sentry starts it (before_send, sample_rate 0.01)."""
    transport = CapturingTransport()
    init_sentry_like_sefaria(transport=transport)
    return transport


@pytest.fixture
def http_transports(monkeypatch):
    """The transports a client started from a DSN makes: recording ones in place of sentry_sdk's HTTP one."""
    made: list[CapturingTransport] = []

    class Recording(CapturingTransport):
        def __init__(self, options=None):
            super().__init__(options)
            self.options = options
            made.append(self)

    monkeypatch.setattr(sentry_sdk.transport, "HttpTransport", Recording)
    return made


@pytest.fixture
def host_dsn(settings, http_transports):
    """A host whose settings name a DSN (Sefaria's SENTRY_DSN) but whose process started no client."""
    settings.SENTRY_DSN = DSN
    settings.SENTRY_ENVIRONMENT = "production"
    settings.SENTRY_CODE_VERSION = "4c0ecc1e"
    return http_transports


@pytest.fixture
def keys(settings):
    settings.BRAINTRUST_OPS = {
        "BRAINTRUST_API_KEY": BRAINTRUST_KEY,
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "BRAINTRUST_PROJECT_ID": PROJECT_ID,
    }


def _fail_with_the_key_in_a_local_and_the_message(**kwargs):
    key = BRAINTRUST_KEY  # noqa: F841 - a frame local holding a key, as a client's code might have
    raise ValueError(f"the service refused {BRAINTRUST_KEY}")


def _frames(event):
    for value in event.get("exception", {}).get("values", []):
        yield from value.get("stacktrace", {}).get("frames", [])


# A command on a host with a DSN and no client: the CronJob's case.


def test_a_command_on_a_host_with_a_dsn_and_no_client_starts_one_and_checks_in(host_dsn, run_command):
    run_command("prune_braintrust_ops")
    [transport] = host_dsn
    assert transport.statuses() == [(PRUNE_SLUG, "in_progress"), (PRUNE_SLUG, "ok")]
    assert {(item["environment"], item["release"]) for item in transport.check_ins} == {("production", "4c0ecc1e")}
    options = transport.options
    assert options["dsn"] == DSN and options["send_default_pii"] is False
    assert options["include_local_variables"] is False
    assert options["traces_sample_rate"] is None and not options["integrations"]


def test_the_client_started_for_a_command_is_closed_and_none_is_left(host_dsn, run_command):
    """Closed: what it queued is sent before the process exits (it has no atexit integration)."""
    run_command("prune_braintrust_ops")
    [transport] = host_dsn
    assert transport.closed
    assert not sentry_sdk.get_client().is_active()


def test_a_host_client_is_used_not_replaced(host_sentry, host_dsn, run_command):
    client = sentry_sdk.get_client()
    run_command("prune_braintrust_ops")
    assert sentry_sdk.get_client() is client and host_dsn == []
    assert host_sentry.statuses() == [(PRUNE_SLUG, "in_progress"), (PRUNE_SLUG, "ok")]
    assert not host_sentry.closed


def test_without_a_dsn_no_client_is_started_and_nothing_is_sent(settings, http_transports, run_command):
    settings.SENTRY_DSN = None
    run_command("prune_braintrust_ops")
    assert http_transports == []
    assert not sentry_sdk.get_client().is_active()


def test_without_sentry_sdk_the_commands_run_as_ever(host_dsn, run_command, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # import sentry_sdk raises ImportError
    with capture_logs() as logs:
        assert "Deleted 0 tagged logs" in run_command("prune_braintrust_ops").stdout
    assert host_dsn == []
    assert not [log for log in logs if log["event"].startswith("sentry_")]  # nothing to warn about either


# Under a Sefaria-like client: its before_send drops events without an exception, it samples 1 error in 100.


class _ClientError(Exception):
    status_code = 404


class _ServerError(Exception):
    status_code = 503


@pytest.mark.parametrize(
    "event, error, kept",
    [
        ({"type": "check_in", "monitor_slug": "x"}, None, False),  # why crons.capture_checkin sends nothing
        ({"message": "a log line"}, None, False),
        ({"exception": {}}, None, True),
        ({"exception": {}}, ValueError("disk full"), True),
        ({"exception": {}}, Http404(), False),
        ({"exception": {}}, _ClientError(), False),
        ({"exception": {}}, _ServerError(), True),
    ],
)
def test_the_sefaria_like_before_send_keeps_what_sefarias_keeps(event, error, kept):
    hint = {"exc_info": (type(error), error, None)} if error else {}
    assert (sefaria_before_send(event, hint) is event) == kept


def test_under_a_sefaria_like_client_check_ins_arrive_on_the_cronjobs_schedule(host_sentry, run_command):
    run_command("prune_braintrust_ops")
    assert host_sentry.statuses() == [(PRUNE_SLUG, "in_progress"), (PRUNE_SLUG, "ok")]
    opened, closed = host_sentry.check_ins
    assert opened["monitor_config"]["schedule"] == {"type": "crontab", "value": "0 2 * * *"}
    assert opened["check_in_id"] == closed["check_in_id"] and closed["duration"] >= 0
    assert opened["environment"] == "unknown"  # the client's own, as sentry_sdk.crons sends


def test_under_a_sefaria_like_client_every_failed_nights_exception_arrives(host_sentry, mocker):
    """At sample_rate 0.01 the SDK's own capture would send about one of these five."""

    def disk_full(**kwargs):
        raise ValueError("disk full")

    mocker.patch(f"{PRUNE}.tagged_logs_prune", side_effect=disk_full)
    for _night in range(5):
        with pytest.raises(ValueError, match="disk full"):
            call_command("prune_braintrust_ops")
    assert [event["exception"]["values"][-1]["type"] for event in host_sentry.events] == ["ValueError"] * 5
    assert {event["tags"]["command"] for event in host_sentry.events} == {"prune_braintrust_ops"}
    assert host_sentry.statuses()[:2] == [(PRUNE_SLUG, "in_progress"), (PRUNE_SLUG, "error")]


class _FailedReport:
    def as_counters(self):
        return {"failed": 3}

    def problem(self, config):
        return "3 of 3 logs failed to tag; they will be retried"


@contextmanager
def _locked():
    raise CommandLocked("Another prune_braintrust_ops run is in progress.")
    yield


def _setup_run_failed(mocker, settings):
    mocker.patch(f"{PRUNE}.tagged_logs_prune", return_value=_FailedReport())
    return "prune_braintrust_ops", [], "RunFailed"


def _setup_app_error(mocker, settings):
    settings.BRAINTRUST_OPS = {}
    return "tag_logs", [], "ConfigurationError"


def _setup_app_error_worded_by_the_command(mocker, settings):
    settings.BRAINTRUST_OPS = {"BRAINTRUST_API_KEY": BRAINTRUST_KEY, "BRAINTRUST_PROJECT_ID": PROJECT_ID}
    error = TransientServiceError("Braintrust kept failing (HTTP 503).", service="Braintrust", status=503)
    mocker.patch("braintrust_ops.management.commands.backup_logs.logs_backup", side_effect=error)
    return "backup_logs", [], "TransientServiceError"


def _setup_database_error(mocker, settings):
    # Printed as one line (management/base.py), sent as the database's own error.
    mocker.patch(f"{PRUNE}.tagged_logs_prune", side_effect=OperationalError("no such table: braintrust_ops_taggedlog"))
    return "prune_braintrust_ops", [], "OperationalError"


@pytest.mark.parametrize(
    "setup",
    [_setup_run_failed, _setup_app_error, _setup_app_error_worded_by_the_command, _setup_database_error],
    ids=["success rule", "app error", "app error worded by the command", "a database error"],
)
def test_a_failed_run_sends_its_exception_once(host_sentry, mocker, settings, setup):
    command, args, error_type = setup(mocker, settings)
    with pytest.raises(CommandError):
        call_command(command, *args)
    [event] = host_sentry.events
    assert event["exception"]["values"][-1]["type"] == error_type
    assert event["tags"] == {"command": command}
    assert event["level"] == "error" and event["exception"]["values"][-1]["mechanism"]["handled"] is False


def _setup_wrong_option(mocker):
    return "tag_logs", ["--wait", "5"]


def _setup_locked(mocker):
    mocker.patch(f"{PRUNE}.command_lock", side_effect=lambda name: _locked())
    return "prune_braintrust_ops", []


def _setup_interrupted(mocker):
    mocker.patch(f"{PRUNE}.tagged_logs_prune", side_effect=Interrupted(signal.SIGTERM))
    return "prune_braintrust_ops", []


@pytest.mark.parametrize(
    "setup",
    [_setup_wrong_option, _setup_locked, _setup_interrupted],
    ids=["a wrong option", "another run holds the lock", "Kubernetes stopped the pod"],
)
def test_a_run_that_did_not_fail_by_itself_sends_no_exception(host_sentry, mocker, setup):
    command, args = setup(mocker)
    with pytest.raises(CommandError):
        call_command(command, *args)
    assert host_sentry.events == []


def test_an_interrupted_run_checks_in_error(host_sentry, mocker):
    _setup_interrupted(mocker)
    with pytest.raises(CommandError):
        call_command("prune_braintrust_ops")
    assert host_sentry.statuses() == [(PRUNE_SLUG, "in_progress"), (PRUNE_SLUG, "error")]


def test_a_failure_is_sent_once_and_names_its_shard(host_sentry):
    """tag_logs --push runs push_to_datasets inside it: the inner command's failure reaches the outer too."""
    try:
        raise ValueError("disk full")
    except ValueError as error:
        monitoring.report_failure(error, command="tag_logs", shard="1/4")
        monitoring.report_failure(error, command="tag_logs")
    [event] = host_sentry.events
    assert event["tags"] == {"command": "tag_logs", "shard": "1/4"}


# No key in anything sent.


@pytest.mark.parametrize("client", ["started for the command", "the host's"])
def test_no_key_reaches_sentry_from_a_failed_run(client, host_dsn, keys, mocker, request):
    host = request.getfixturevalue("host_sentry") if client == "the host's" else None
    mocker.patch(f"{PRUNE}.tagged_logs_prune", side_effect=_fail_with_the_key_in_a_local_and_the_message)
    with pytest.raises(ValueError):
        call_command("prune_braintrust_ops")
    [transport] = [host] if host else host_dsn
    [event] = transport.events
    assert event["exception"]["values"][-1]["value"] == "the service refused [redacted]"
    assert not any("vars" in frame for frame in _frames(event))
    assert keys_in(transport.text()) == set()
    assert any(frame["function"] == "_fail_with_the_key_in_a_local_and_the_message" for frame in _frames(event))


def test_an_event_the_host_captures_itself_after_a_command_carries_no_locals_or_key(keys, mocker):
    """As a host's excepthook integration would record the command's uncaught exception, locals and all."""
    transport = CapturingTransport()
    init_sentry_like_sefaria(transport=transport, sample_rate=1.0)
    mocker.patch(f"{PRUNE}.tagged_logs_prune", side_effect=_fail_with_the_key_in_a_local_and_the_message)
    with pytest.raises(ValueError) as failure:
        call_command("prune_braintrust_ops")
    sentry_sdk.capture_exception(failure.value)
    sentry_sdk.flush()
    assert len(transport.events) == 2  # the run's report, and the host's own
    assert not any("vars" in frame for event in transport.events for frame in _frames(event))
    assert keys_in(transport.text()) == set()


def test_a_transport_that_fails_does_not_fail_the_run(run_command, mocker):
    transport = CapturingTransport()
    init_sentry_like_sefaria(transport=transport)
    mocker.patch.object(transport, "capture_envelope", side_effect=OSError("queue full"))
    with capture_logs() as logs:
        run_command("prune_braintrust_ops")
    assert [(log["event"], log["kind"]) for log in logs if log["event"] == "sentry_send_failed"] == [
        ("sentry_send_failed", "check_in"),
        ("sentry_send_failed", "check_in"),
    ]


def test_a_malformed_dsn_does_not_fail_the_run(settings, run_command):
    settings.SENTRY_DSN = "sentry, please"
    with capture_logs() as logs:
        run_command("prune_braintrust_ops")
    assert [log["event"] for log in logs if log["event"].startswith("sentry_")] == ["sentry_start_failed"]
    assert not sentry_sdk.get_client().is_active()


def test_a_client_that_fails_to_flush_does_not_fail_the_run(host_sentry, run_command, mocker):
    mocker.patch.object(sentry_sdk.get_client(), "flush", side_effect=RuntimeError("worker gone"))
    with capture_logs() as logs:
        run_command("prune_braintrust_ops")
    assert [log["event"] for log in logs if log["event"].startswith("sentry_")] == ["sentry_finish_failed"]


# The run lifecycle and the monitors.


def test_a_run_that_fails_checks_in_error(host_sentry):
    def boom(run):
        raise ValueError("disk full")

    with pytest.raises(ValueError):
        run_recorded(command="backup_logs", options={}, config=OpsConfig(), lock=nullcontext(), job=boom)
    slug = "braintrust-ops-backup-logs"
    assert host_sentry.statuses() == [(slug, "in_progress"), (slug, "error")]
    assert host_sentry.check_ins[0]["monitor_config"]["schedule"]["value"] == "0 1 * * 0"


def test_the_monitor_expects_the_schedule_the_cronjob_passes(host_sentry, run_command, settings):
    """The Helm templates pass their schedule, so a schedule changed in the chart's values moves the monitor."""
    settings.BRAINTRUST_OPS = {"CRON_SCHEDULE": "30 4 * * *"}
    run_command("prune_braintrust_ops")
    assert host_sentry.check_ins[0]["monitor_config"]["schedule"] == {"type": "crontab", "value": "30 4 * * *"}


def test_each_shard_has_its_own_monitor():
    assert monitor_slug("tag_logs", "1/4") == "braintrust-ops-tag-logs-shard-1-of-4"
    assert monitor_slug("tag_logs") == "braintrust-ops-tag-logs"


# Relay keeps the first 50 characters of a slug (relay-monitors/src/lib.rs, SLUG_LENGTH and trim_slug), so two
# longer slugs could share a monitor; Sentry's slugs are lower-case letters, digits and hyphens. Kubernetes
# allows an Indexed Job at most 100,000 completions, the most shards a CronJob can run.
SLUG = r"\A[a-z0-9-]{1,50}\Z"
MAX_SHARDS = 100_000


@st.composite
def shard_texts(draw):
    """--shard as a person or a Job might write it: spaces around, leading zeros; with its (index, count)."""
    count = draw(st.integers(1, MAX_SHARDS))
    index = draw(st.integers(0, count - 1))
    space = st.text(" \t", max_size=2)
    zeros = st.text("0", max_size=3)
    text = f"{draw(space)}{draw(zeros)}{index}{draw(space)}/{draw(space)}{draw(zeros)}{count}{draw(space)}"
    return text, (index, count)


def _slug_of(text: str) -> str:
    """The slug a run of tag_logs --shard TEXT checks in under: the option parsed, recorded, then read."""
    options = recorded_options({"shard": parse_shard(text)}, ("shard",))
    return monitor_slug("tag_logs", options["shard"])


@given(shard_texts())
def test_a_shards_monitor_slug_is_one_sentry_keeps_whole(shard):
    text, _ = shard
    assert re.match(SLUG, _slug_of(text))


@given(shard_texts(), shard_texts())
def test_two_shards_never_share_a_monitor(first, second):
    assert (_slug_of(first[0]) == _slug_of(second[0])) == (first[1] == second[1])


@pytest.mark.parametrize("command", sorted(name for name, app in get_commands().items() if app == "braintrust_ops"))
def test_every_commands_monitor_slug_is_one_sentry_keeps_whole(command):
    assert re.match(SLUG, monitor_slug(command))
