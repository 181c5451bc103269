"""The seeded sample data, the pytest fixtures, and the braintrust_sandbox management command."""

import json
import os
import re
import select
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from braintrust_ops_sandbox import BRAINTRUST_KEY, PROJECT_ID, Sandbox

AUTH = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}
REPO = Path(__file__).resolve().parents[2]
HEBREW = re.compile(r"[\u05d0-\u05ea]")
MARKER = re.compile(r"\[\[relevant_tags:(.*)\]\]", re.DOTALL)


def objects(sandbox, path: str) -> list[dict]:
    reply = requests.get(sandbox.url + path, headers=AUTH, params={"project_id": PROJECT_ID}, timeout=5)
    return reply.json()["objects"]


def all_logs(sandbox, since: datetime, root_only: bool = False) -> list[dict]:
    query = f"SELECT * FROM project_logs('{PROJECT_ID}') WHERE created >= '{since:%Y-%m-%dT%H:%M:%S.%fZ}'"
    query += " AND is_root" if root_only else ""
    rows, cursor = [], None
    while True:
        body = {"query": query + (f" OFFSET '{cursor}'" if cursor else "")}
        reply = requests.post(f"{sandbox.url}/btql", headers=AUTH, json=body, timeout=5).json()
        rows += reply["data"]
        if not (cursor := reply["cursor"]):
            return rows


def user_text(row: dict) -> str:
    return " ".join(message["content"] for message in row["input"]["messages"] if message["role"] == "user")


def test_the_seeded_project_has_taggable_tags_in_any_case_and_non_taggable_ones(sandbox):
    tags = objects(sandbox, "/v1/project_tag")
    taggable = [tag for tag in tags if "dataset-tagging" in (tag["description"] or "").lower()]
    assert {tag["name"] for tag in taggable} == {"halacha", "translation", "sources", "hebrew", "off-topic"}
    assert any("dataset-tagging" not in tag["description"] for tag in taggable)  # an upper- or mixed-case marker
    assert len(tags) - len(taggable) >= 2


def test_the_seeded_datasets_carry_valid_malformed_and_missing_relevant_tags_markers(sandbox):
    kinds = set()
    for dataset in objects(sandbox, "/v1/dataset"):
        match = MARKER.search(dataset["description"] or "")
        try:
            tags = json.loads(match[1]) if match else None
        except ValueError:
            tags = "unparseable"
        valid = isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)
        kinds.add("missing" if match is None else "valid" if valid else "malformed")
    assert kinds == {"valid", "malformed", "missing"}


def test_the_seeded_logs_hold_about_300_hebrew_and_english_traces_with_child_spans(sandbox):
    since = datetime.now(UTC) - timedelta(hours=31)
    roots, rows = all_logs(sandbox, since, root_only=True), all_logs(sandbox, since)
    assert 280 <= len(roots) <= 320
    children = [row for row in rows if not row["is_root"]]
    assert len(children) >= len(roots)
    assert {row["root_span_id"] for row in children} <= {row["span_id"] for row in roots}
    hebrew = [row for row in roots if HEBREW.search(user_text(row))]
    assert 0 < len(hebrew) < len(roots)
    assert {row["metadata"]["locale"] for row in roots} == {"en", "he"}


def test_seeding_is_deterministic_for_a_given_now():
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def contents(sandbox):
        tags = [(tag["name"], tag["description"]) for tag in sandbox.state.tags(None)]
        rows = all_logs(sandbox, now - timedelta(days=2))
        logs = [(row["created"], row["is_root"], row["input"], row["output"], row["metadata"]) for row in rows]
        return tags, logs

    with Sandbox(seed=True, now=now) as first, Sandbox(seed=True, now=now) as second:
        seeded = contents(first)
        assert len(seeded[1]) > 300 and contents(second) == seeded


def test_the_command_serves_on_the_printed_url_and_exits_0_on_sigterm():
    """Started through dev_settings on top of whatever settings this suite runs under, as a developer
    would in Sefaria-Project, whose own settings leave the sandbox out."""
    command = [sys.executable, "manage.py", "braintrust_sandbox", "--port", "0", "--empty"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "braintrust_ops_sandbox.dev_settings",
        "BRAINTRUST_OPS_SANDBOX_HOST_SETTINGS": os.environ["DJANGO_SETTINGS_MODULE"],
    }
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert select.select([process.stdout], [], [], 10)[0], "the command printed nothing within 10 s"
        url = re.match(r"Sandbox listening on (http://127\.0\.0\.1:\d+)", process.stdout.readline())[1]
        assert requests.get(f"{url}/v1/project_tag", headers=AUTH, timeout=5).json() == {"objects": []}
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert stdout.rstrip().endswith("Sandbox stopped.")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
