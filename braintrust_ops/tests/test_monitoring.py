"""Sentry Cron check-ins, captured by a local transport: nothing leaves the machine."""

from contextlib import nullcontext

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from braintrust_ops.conf import OpsConfig
from braintrust_ops.monitoring import monitor_slug
from braintrust_ops.services.runs import run_recorded

pytestmark = pytest.mark.django_db(transaction=True)


class CapturingTransport(Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.check_ins = []

    def capture_envelope(self, envelope):
        self.check_ins += [item.payload.json for item in envelope.items if item.type == "check_in"]


@pytest.fixture
def sentry():
    transport = CapturingTransport()
    sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", transport=transport)
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.init(dsn=None)


def _statuses(transport):
    sentry_sdk.flush()
    return [(item["monitor_slug"], item["status"]) for item in transport.check_ins]


def test_a_nightly_run_checks_in_in_progress_then_ok_on_its_cronjobs_schedule(sentry, run_command):
    run_command("prune_braintrust_ops")
    assert _statuses(sentry) == [
        ("braintrust-ops-prune-braintrust-ops", "in_progress"),
        ("braintrust-ops-prune-braintrust-ops", "ok"),
    ]
    opened, closed = sentry.check_ins
    assert opened["monitor_config"]["schedule"] == {"type": "crontab", "value": "0 2 * * *"}
    assert opened["check_in_id"] == closed["check_in_id"] and closed["duration"] >= 0


def test_a_run_that_fails_checks_in_error(sentry):
    def boom(run):
        raise ValueError("disk full")

    with pytest.raises(ValueError):
        run_recorded(command="backup_logs", options={}, config=OpsConfig(), lock=nullcontext(), job=boom)
    assert _statuses(sentry) == [("braintrust-ops-backup-logs", "in_progress"), ("braintrust-ops-backup-logs", "error")]
    assert sentry.check_ins[0]["monitor_config"]["schedule"]["value"] == "0 1 * * 0"


def test_the_monitor_expects_the_schedule_the_cronjob_passes(sentry, run_command, settings):
    """The Helm templates pass their schedule, so a schedule changed in the chart's values moves the monitor."""
    settings.BRAINTRUST_OPS = {"CRON_SCHEDULE": "30 4 * * *"}
    run_command("prune_braintrust_ops")
    assert sentry.check_ins[0]["monitor_config"]["schedule"] == {"type": "crontab", "value": "30 4 * * *"}


def test_each_shard_has_its_own_monitor():
    assert monitor_slug("tag_logs", "1/4") == "braintrust-ops-tag-logs-shard-1-of-4"
    assert monitor_slug("tag_logs") == "braintrust-ops-tag-logs"


def test_without_sentry_initialised_nothing_is_sent(run_command, monkeypatch):
    from braintrust_ops import monitoring

    assert monitoring._capture_checkin() is None
    run_command("prune_braintrust_ops")  # and the run works as ever
