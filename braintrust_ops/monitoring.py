"""Sentry for every command run: Cron check-ins around it, and the exception of a run that failed.

Sefaria initialises Sentry only in its web processes (gunicorn's post_fork, its runserver): a
``manage.py`` CronJob process has no client. So ``command_sentry`` starts one for the command when
the host has a DSN (``settings.SENTRY_DSN``) and no client is active, with the host's environment and
release, and closes it (sending what is queued) when the command ends. A client the host already
started is used as it is. Without ``sentry_sdk`` or a DSN nothing happens.

Each run checks in "in_progress" when it starts and "ok" or "error" when it ends, under one monitor
per command (and shard) whose schedule is the CronJob's, so Sentry also alerts on a run that did not
start. A run that failed (see ``OpsCommand.execute``) also sends its exception.

Both are sent as envelopes of their own through the client's transport, not through
``capture_event``, because a host's client may filter them out. Read in sentry-sdk 2.54.0 (Sefaria's
pin), lines of 2.0.0 (the lowest of our range) in brackets, the same code in both:

- ``sentry_sdk/crons/api.py:54 [55]``: ``capture_checkin`` hands the check-in to ``capture_event``, and
  ``sentry_sdk/client.py:660-683 [503-518]`` (``_prepare_event``) runs ``before_send`` on every event
  whose type is not "transaction", check-ins included. Sefaria's ``before_send``
  (``sefaria/settings_utils.py``, ``init_sentry``) returns None for any event without an exception, so
  it drops every check-in: this is why check-ins were not sent under ``init_sentry``. The sample rate is
  not the cause: ``client.py:879-886 [711-717]`` exempts check-ins from it. (sentry-python issue 4814,
  open: "check ins shouldn't go through before_send".)
- The same lines sample every other event with ``sample_rate`` (``_should_sample_error``, 759-803
  [583-630]): at Sefaria's 0.01, 99 failed nights in 100 would send no exception. A CronJob fails seldom
  and each failure matters; one event a night at most costs nothing next to a web process's errors, so
  a failed run's exception is always sent, past the host's sample rate and its before_send.

What is sent is built here (``Envelope.add_checkin``/``add_event``, ``Transport.capture_envelope``, the
custom-transport API) with no frame locals, and every configured API key is replaced by value
(``redaction``) before it leaves. Events any client captures on its own in a process that ran a command
(an excepthook, a log record) pass ``scrub_event`` too: no frame locals, no key.
"""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import structlog
from django.conf import settings

from braintrust_ops.conf import secret_values
from braintrust_ops.redaction import redact

if TYPE_CHECKING:
    from sentry_sdk.client import BaseClient

logger = structlog.get_logger(__name__)

#: The CronJobs' schedules (deploy/; tests/deploy checks they agree): each command's monitor expects a
#: check-in on this one.
SCHEDULES = {
    "tag_logs": "0 2 * * *",
    "push_to_datasets": "0 2 * * *",
    "prune_braintrust_ops": "0 2 * * *",
    "backup_logs": "0 1 * * 0",
}
# Minutes late before Sentry calls a run missed, and the longest a run may take (the CronJobs' deadlines).
CHECKIN_MARGIN_MINUTES = 60
MAX_RUNTIME_MINUTES = 120
# Set on an exception once it was sent, so a command run inside another (tag_logs --push) sends it once.
_REPORTED = "_braintrust_ops_reported"
_scrubber_installed = False


def monitor_slug(command: str, shard: str | None = None) -> str:
    """``braintrust-ops-tag-logs``, ``braintrust-ops-tag-logs-shard-1-of-4``: Sentry slugs take no _ or /."""
    slug = f"braintrust-ops-{command.replace('_', '-')}"
    if shard:
        index, count = shard.split("/")
        slug += f"-shard-{index}-of-{count}"
    return slug


def _client() -> "BaseClient | None":
    """The active client, when it has somewhere to send to: an init without a DSN sends nothing."""
    try:
        import sentry_sdk
    except ImportError:
        return None
    client = sentry_sdk.get_client()
    return client if client.is_active() and client.dsn and client.transport is not None else None


@contextmanager
def command_sentry() -> Iterator[None]:
    """Around a command: the host's client, or one started for the command from ``settings.SENTRY_DSN``
    (closed at the end, so what it queued is sent before the process exits, and the process is left
    without a client, as it was found)."""
    # Monitoring that fails (a malformed DSN, an SDK that changed) is logged; it never fails the run.
    try:
        started = _start_client()
        if _client() is not None:
            _install_scrubber()
    except Exception as exc:
        logger.warning("sentry_start_failed", error_type=type(exc).__name__)
        started = False
    try:
        yield
    finally:
        try:
            _finish(started)
        except Exception as exc:
            logger.warning("sentry_finish_failed", error_type=type(exc).__name__)


def _start_client() -> bool:
    dsn = getattr(settings, "SENTRY_DSN", None)
    if not dsn:
        return False
    try:
        import sentry_sdk
    except ImportError:
        return False
    if sentry_sdk.get_client().is_active():
        return False  # the host's own (gunicorn's post_fork, or settings that init): used, not replaced
    sentry_sdk.init(  # raises BadDsn for a malformed DSN
        dsn=dsn,
        environment=getattr(settings, "SENTRY_ENVIRONMENT", None) or None,
        release=getattr(settings, "SENTRY_CODE_VERSION", None) or None,
        send_default_pii=False,
        # No tracing: traces_sample_rate is left unset. No frame locals: they may hold a key or a user's
        # chat text, which redaction cannot recognise.
        include_local_variables=False,
        # This client carries the command's check-ins and failure, nothing more: no integration turns the
        # app's log lines, its Anthropic calls or its threads into events or spans the host never asked for.
        default_integrations=False,
        auto_enabling_integrations=False,
        before_send=scrub_event,
    )
    return True


def _finish(started: bool) -> None:
    client = _client()
    if client is None:
        return
    if started:
        from sentry_sdk import Scope  # sentry_sdk.get_global_scope() is newer than 2.0.0

        client.close()  # waits up to shutdown_timeout (2 s by default) for the queue to be sent
        Scope.get_global_scope().set_client(None)
    else:
        client.flush()


def _install_scrubber() -> None:
    """Scrub every event of this process, from any client, once a command ran here (a host's excepthook
    or logging integration would otherwise record the command's frames with their locals)."""
    global _scrubber_installed
    if _scrubber_installed:
        return
    from sentry_sdk.scope import add_global_event_processor

    add_global_event_processor(scrub_event)
    _scrubber_installed = True


def scrub_event(event: Any, hint: Any) -> Any:
    """An event with no frame locals and no configured API key in any of its text.

    Used as an event processor (before the SDK turns values into text: dropping ``vars`` there means a
    local's repr is never made) and as the ``before_send`` of the client started here (after)."""
    for part in ("exception", "threads"):
        for value in (event.get(part) or {}).get("values") or ():
            for frame in (value.get("stacktrace") or {}).get("frames") or ():
                frame.pop("vars", None)
    return redact(event, secret_values())


@contextmanager
def cron_monitor(command: str, *, shard: str | None = None, schedule: str | None = None) -> Iterator[None]:
    """Check in with Sentry Crons around a run, expecting ``schedule`` (the CronJob's) or the default."""
    client = _client()
    if client is None:
        yield
        return
    slug = monitor_slug(command, shard)
    schedule = schedule or SCHEDULES.get(command)
    config = (
        {
            "schedule": {"type": "crontab", "value": schedule},
            "timezone": "UTC",
            "checkin_margin": CHECKIN_MARGIN_MINUTES,
            "max_runtime": MAX_RUNTIME_MINUTES,
        }
        if schedule
        else None
    )
    run = {"check_in_id": uuid.uuid4().hex, "monitor_slug": slug}
    _check_in(client, {**run, "status": "in_progress", **({"monitor_config": config} if config else {})})
    started = time.monotonic()
    try:
        yield
    except BaseException:
        _check_in(client, {**run, "status": "error", "duration": time.monotonic() - started})
        raise
    _check_in(client, {**run, "status": "ok", "duration": time.monotonic() - started})


def _check_in(client: "BaseClient", check_in: dict[str, Any]) -> None:
    # The payload sentry_sdk.crons builds (crons/api.py, _create_check_in_event), which Relay reads as a
    # check-in item (check_in_id, monitor_slug, status, environment, duration, monitor_config).
    options = {key: client.options.get(key) for key in ("environment", "release")}
    _send(client, "check_in", {**check_in, **options})


def report_failure(error: BaseException, *, command: str, shard: str | None = None) -> None:
    """Send the exception of a failed run (the job failed, an app error, anything unexpected), whatever
    the client's sample rate and before_send: see the module's docstring for why."""
    client = _client()
    if client is None or getattr(error, _REPORTED, False):
        return
    from sentry_sdk.utils import event_from_exception

    # sentry_sdk/utils.py:1121 (2.0.0: 1023): the exception, its chain and their stack frames; the client's
    # options say how long a value may be and whether to read source lines. Never locals.
    options = {**client.options, "include_local_variables": False}
    # Not handled: the run ended the command with a non-zero exit.
    mechanism = {"type": "braintrust_ops", "handled": False}
    exception, _hint = event_from_exception(error, client_options=options, mechanism=mechanism)
    event: dict[str, Any] = {
        **exception,
        "event_id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC).isoformat(),
        "platform": "python",
        "logger": "braintrust_ops",
        "tags": {"command": command, **({"shard": shard} if shard else {})},
        **{key: client.options[key] for key in ("environment", "release", "server_name") if client.options.get(key)},
    }
    _send(client, "event", event)
    setattr(error, _REPORTED, True)


def _send(client: "BaseClient", kind: str, payload: dict) -> None:
    """One envelope through the client's transport, past the client's own filters: see the docstring.
    Monitoring that fails is logged; it never fails the run, nor hides the run's own error."""
    try:
        from sentry_sdk.envelope import Envelope

        payload = scrub_event(payload, None)
        headers = {"sent_at": datetime.now(UTC).isoformat()}
        if "event_id" in payload:
            headers["event_id"] = payload["event_id"]
        envelope = Envelope(headers=headers)
        if kind == "check_in":
            envelope.add_checkin(payload)
        else:
            envelope.add_event(cast(Any, payload))  # sentry_sdk's Event is a TypedDict of its own
        assert client.transport is not None  # _client() returns only a client with a transport
        client.transport.capture_envelope(envelope)
    except Exception as exc:
        logger.warning("sentry_send_failed", kind=kind, error_type=type(exc).__name__)
