import pytest
from django.urls import reverse

from braintrust_ops.models import CommandRun, DatasetInsertion, LogTag, TaggedLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def night(db):
    from django.utils import timezone

    run = CommandRun.objects.create(command="tag_logs", started_at=timezone.now(), outcome="succeeded")
    log = TaggedLog.objects.create(
        log_id="log-abc", logged_at=timezone.now(), status="tagged", model="m", tagged_at=timezone.now(), last_run=run
    )
    LogTag.objects.create(tagged_log=log, name="halacha")
    TaggedLog.objects.create(log_id="log-failed", logged_at=timezone.now(), status="failed", last_error="HTTP 529")
    DatasetInsertion.objects.create(log_id="log-abc", tagged_log=log, dataset_id="d1", dataset_name="Halacha", row_id="r1", run=run)
    return run


@pytest.mark.parametrize(
    "model, query, expected, absent",
    [
        ("taggedlog", "", ["log-abc", "log-failed"], []),
        ("taggedlog", "?status__exact=failed", ["log-failed"], ["log-abc"]),
        ("taggedlog", "?tags__name=halacha", ["log-abc"], ["log-failed"]),
        ("taggedlog", "?q=log-abc", ["log-abc"], ["log-failed"]),
        ("datasetinsertion", "?dataset_name=Halacha", ["log-abc"], []),
        ("commandrun", "?outcome__exact=succeeded", ["tag_logs"], []),
    ],
)
def test_staff_can_filter_what_last_nights_run_did(admin_client, night, model, query, expected, absent):
    response = admin_client.get(reverse(f"admin:braintrust_ops_{model}_changelist") + query)
    assert response.status_code == 200
    page = response.content.decode()
    for text in expected:
        assert text in page
    for text in absent:
        assert text not in page


def test_admin_is_read_only(admin_client, night):
    response = admin_client.get(reverse("admin:braintrust_ops_taggedlog_add"))
    assert response.status_code == 403


def test_tagged_state_without_provenance_is_refused_by_the_database(db):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    # atomic: the refused insert rolls back to a savepoint, leaving the test's transaction usable
    with pytest.raises(IntegrityError), transaction.atomic():
        TaggedLog.objects.create(log_id="x", logged_at=timezone.now(), status="tagged")
    assert not TaggedLog.objects.exists()


def test_failed_state_without_an_error_is_refused_by_the_database(db):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    # atomic: the refused insert rolls back to a savepoint, leaving the test's transaction usable
    with pytest.raises(IntegrityError), transaction.atomic():
        TaggedLog.objects.create(log_id="y", logged_at=timezone.now(), status="failed")
    assert not TaggedLog.objects.exists()
