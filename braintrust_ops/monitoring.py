"""Sentry Cron check-ins for every command run, so a failed night, or one that never started, alerts.

Sefaria already initialises ``sentry_sdk`` in its settings; where it has not (a laptop, CI), or where
the SDK is not installed, nothing happens here. Each run checks in "in progress" when it starts and
"ok" or "error" when it ends, under one monitor per command (and per shard), whose schedule is the
CronJob's, so Sentry also alerts on a run that did not start (docs.sentry.io, Crons, Python SDK:
``sentry_sdk.crons.capture_checkin`` with a ``monitor_config``).
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

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


def monitor_slug(command: str, shard: str | None = None) -> str:
    """``braintrust-ops-tag-logs``, ``braintrust-ops-tag-logs-shard-1-of-4``: Sentry slugs take no _ or /."""
    slug = f"braintrust-ops-{command.replace('_', '-')}"
    if shard:
        index, count = shard.split("/")
        slug += f"-shard-{index}-of-{count}"
    return slug


def _capture_checkin():
    try:
        import sentry_sdk
        from sentry_sdk.crons import capture_checkin
    except ImportError:
        return None
    client = sentry_sdk.get_client()
    # Initialised, and with somewhere to send to: an init without a DSN sends nothing.
    return capture_checkin if client.is_active() and client.dsn else None


@contextmanager
def cron_monitor(command: str, *, shard: str | None = None, schedule: str | None = None) -> Iterator[None]:
    """Check in with Sentry Crons around a run, expecting ``schedule`` (the CronJob's) or the default."""
    capture = _capture_checkin()
    if capture is None:
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
    check_in_id = capture(monitor_slug=slug, status="in_progress", monitor_config=config)
    started = time.monotonic()
    try:
        yield
    except BaseException:
        capture(monitor_slug=slug, check_in_id=check_in_id, status="error", duration=time.monotonic() - started)
        raise
    capture(monitor_slug=slug, check_in_id=check_in_id, status="ok", duration=time.monotonic() - started)
