import pytest
from django.urls import reverse

from braintrust_ops.models import CommandRun, DatasetInsertion, LogTag, TagBatch, TaggedLog
from braintrust_ops.tests.admin_urls import ADMIN_APPS, ADMIN_MIDDLEWARE, ADMIN_TEMPLATES

pytestmark = [pytest.mark.django_db, pytest.mark.urls("braintrust_ops.tests.admin_urls")]


@pytest.fixture(autouse=True)
def admin_request_pipeline(settings):
    """The middleware and templates the admin needs, and no more: a host's own routes each request its
    way (Sefaria's django-hosts middleware sends it to the URLconf of the host it names, where the admin
    sits at ``ADMIN_PATH``), and its other middleware and its template context processors may need its
    services (Sefaria's load its models, which connect to MongoDB), as may its apps' template tags."""
    settings.INSTALLED_APPS = ADMIN_APPS
    settings.MIDDLEWARE = ADMIN_MIDDLEWARE
    settings.TEMPLATES = ADMIN_TEMPLATES


@pytest.fixture
def night(db):
    from django.utils import timezone

    run = CommandRun.objects.create(command="tag_logs", started_at=timezone.now(), outcome="succeeded")
    log = TaggedLog.objects.create(
        log_id="log-abc", logged_at=timezone.now(), status="tagged", model="m", tagged_at=timezone.now(), last_run=run
    )
    LogTag.objects.create(tagged_log=log, name="halacha")
    TaggedLog.objects.create(log_id="log-failed", logged_at=timezone.now(), status="failed", last_error="HTTP 529")
    DatasetInsertion.objects.create(
        log_id="log-abc", tagged_log=log, dataset_id="d1", dataset_name="Halacha", row_id="r1", run=run
    )
    TagBatch.objects.create(
        batch_id="msgbatch_night",
        state="collected",
        request_count=1,
        model="m",
        prompt_version="p",
        tagset_fingerprint="f",
    )
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


@pytest.mark.parametrize("model", ["taggedlog", "datasetinsertion", "commandrun", "tagbatch"])
def test_admin_is_read_only_no_add_no_change_no_delete(admin_client, night, model):
    obj = {
        "taggedlog": TaggedLog,
        "datasetinsertion": DatasetInsertion,
        "commandrun": CommandRun,
        "tagbatch": TagBatch,
    }[model].objects.first()
    assert admin_client.get(reverse(f"admin:braintrust_ops_{model}_add")).status_code == 403
    assert admin_client.get(reverse(f"admin:braintrust_ops_{model}_delete", args=[obj.pk])).status_code == 403
    change = admin_client.post(reverse(f"admin:braintrust_ops_{model}_change", args=[obj.pk]), {})
    assert change.status_code == 403
    bulk = admin_client.post(
        reverse(f"admin:braintrust_ops_{model}_changelist"),
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    assert type(obj).objects.filter(pk=obj.pk).exists() and bulk.status_code in (200, 302)


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


def test_a_log_at_the_attempt_limit_is_listed_as_given_up_and_a_queued_one_is_not(admin_client, night):
    from django.utils import timezone

    TaggedLog.objects.create(
        log_id="log-given-up", logged_at=timezone.now(), status="failed", last_error="x", attempts=3
    )
    url = reverse("admin:braintrust_ops_taggedlog_changelist")
    given_up = admin_client.get(url + "?state=given_up").content.decode()
    queued = admin_client.get(url + "?state=queued").content.decode()
    assert "log-given-up" in given_up and "log-failed" not in given_up
    assert "log-failed" in queued and "log-given-up" not in queued


def test_the_run_list_shows_each_runs_duration_and_its_headline_counters(admin_client, night):
    from datetime import timedelta

    night.finished_at = night.started_at + timedelta(minutes=2, seconds=5)
    night.counters = {"sent": 1200, "tagged": 1100, "given_up": 2, "window_start": "2026-11-27"}
    night.save()
    page = admin_client.get(
        reverse("admin:braintrust_ops_commandrun_changelist") + "?command__exact=tag_logs"
    ).content.decode()
    assert "0:02:05" in page and "sent 1,200, tagged 1,100, given up 2" in page


def test_logs_can_be_filtered_by_whether_their_label_is_of_the_latest_runs_tag_set(admin_client, night):
    from django.utils import timezone

    night.counters = {"tagset_fingerprint": "current-set"}
    night.save()
    TaggedLog.objects.filter(log_id="log-abc").update(tagset_fingerprint="current-set")
    TaggedLog.objects.create(
        log_id="log-old-set", logged_at=timezone.now(), status="tagged", model="m", tagged_at=timezone.now()
    )
    url = reverse("admin:braintrust_ops_taggedlog_changelist")
    stale = admin_client.get(url + "?provenance=stale").content.decode()
    current = admin_client.get(url + "?provenance=current").content.decode()
    assert "log-old-set" in stale and "log-abc" not in stale and "log-failed" not in stale
    assert "log-abc" in current and "log-old-set" not in current
    assert "current-set" in current  # each label's provenance is in the list


def test_a_runs_page_lists_each_refused_log_with_why_one_a_line(admin_client, night):
    night.counters = {"refused": 2, "refused_logs": ["12345: its id is a number", '"<b>x</b>": its id holds a NUL']}
    night.save()
    page = admin_client.get(reverse("admin:braintrust_ops_commandrun_change", args=[night.pk])).content.decode()
    assert "<br>12345: its id is a number<br>&quot;&lt;b&gt;x&lt;/b&gt;&quot;: its id holds a NUL" in page
