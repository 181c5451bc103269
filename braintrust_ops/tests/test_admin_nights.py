"""The app's admin page shows the last 30 nights as SVG pictures drawn on the server, from the run records."""

import re
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.urls import reverse
from django.utils import timezone

from braintrust_ops.models import CommandRun
from braintrust_ops.tests.admin_urls import ADMIN_APPS, ADMIN_MIDDLEWARE, ADMIN_TEMPLATES

pytestmark = [pytest.mark.django_db, pytest.mark.urls("braintrust_ops.tests.admin_urls")]
SVG = "{http://www.w3.org/2000/svg}"
OURS = r'<svg [^>]*class="braintrust-ops-chart".*?</svg>'  # the admin's own page holds icons in SVG too


@pytest.fixture(autouse=True)
def admin_request_pipeline(settings):
    settings.INSTALLED_APPS = ADMIN_APPS
    settings.MIDDLEWARE = ADMIN_MIDDLEWARE
    settings.TEMPLATES = ADMIN_TEMPLATES


def night(days_ago: int, **counters) -> None:
    started = timezone.now() - timedelta(days=days_ago)
    CommandRun.objects.create(command="tag_logs", started_at=started, outcome="succeeded", counters=counters)


def charts(client) -> list[ElementTree.Element]:
    page = client.get(reverse("admin:app_list", args=["braintrust_ops"])).content.decode()
    return [ElementTree.fromstring(svg) for svg in re.findall(OURS, page, flags=re.S)]


def titles(chart) -> list[str]:
    return [element.text for element in chart.iter(f"{SVG}title")]


def test_the_page_draws_labelled_failures_cost_and_tags_per_night_from_the_runs(admin_client):
    agreement = [
        {"tag": "halacha", "model": "m", "prompt_version": "p", "reviewed": 9, "precision": 0.8, "recall": 0.5}
    ]
    night(1, tagged=40, failed=2, service_failures=1, estimated_cost_usd="0.0420", per_tag={"halacha": 30})
    night(1, tagged=2, per_tag={"halacha": 2, "sources": 1})  # a second run the same night adds up
    night(0, tagged=10, estimated_cost_usd="0.0100", per_tag={"sources": 4}, agreement=agreement)
    drawn = {chart.get("aria-label"): chart for chart in charts(admin_client)}
    yesterday = (timezone.now() - timedelta(days=1)).strftime("%m-%d")
    assert f"{yesterday}: 42" in titles(drawn["Logs labelled per night"])
    assert f"{yesterday}: 3" in titles(drawn["Failed labellings per night (the logs' own, Anthropic's, the setup's)"])
    assert f"{yesterday}: 0.04 $" in titles(drawn["Cost per night (USD, the tokens billed)"])
    assert f"halacha, {yesterday}: 32" in titles(drawn["Labels per tag per night"])
    today = timezone.now().strftime("%m-%d")
    assert f"halacha, {today}: 0.80" in titles(drawn["Claude's precision per tag, against people's labels"])
    assert f"halacha, {today}: 0.50" in titles(drawn["Claude's recall per tag, against people's labels"])
    assert len([element for element in drawn["Logs labelled per night"].iter(f"{SVG}rect")]) == 30


def test_runs_older_than_30_nights_and_other_commands_are_left_out(admin_client):
    night(31, tagged=99)
    CommandRun.objects.create(command="push_to_datasets", started_at=timezone.now(), counters={"tagged": 7})
    page = admin_client.get(reverse("admin:app_list", args=["braintrust_ops"])).content.decode()
    assert "No tag_logs run in the last 30 nights yet." in page and not re.findall(OURS, page, flags=re.S)


def test_a_tag_name_with_markup_is_shown_as_text_never_run(admin_client):
    night(0, tagged=1, per_tag={'<script>alert(1)</script>"&': 1})
    page = admin_client.get(reverse("admin:app_list", args=["braintrust_ops"])).content.decode()
    ours = "".join(re.findall(OURS, page, flags=re.S))
    assert "<script>alert" not in ours and '&lt;script&gt;alert(1)&lt;/script&gt;"&amp;' in ours


def test_the_page_makes_no_request_to_another_host(admin_client):
    night(0, tagged=5, per_tag={"halacha": 5})
    page = admin_client.get(reverse("admin:app_list", args=["braintrust_ops"])).content.decode()
    svg = "".join(re.findall(OURS, page, flags=re.S))
    assert "<script" not in svg and "href" not in svg and "url(" not in svg
