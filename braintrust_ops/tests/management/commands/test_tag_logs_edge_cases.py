"""tag_logs: the seed review's edge cases (sections 2A-2C, 3, 4) that no other test pins down.

Real HTTP to the sandbox, real SDKs, a real database. Faults come from the sandbox, or from a real
local server (a refused port, a TLS server with a certificate nobody trusts).
"""

import socket
import ssl
import subprocess
import threading
import unicodedata
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management.base import CommandError

from braintrust_ops.models import CommandRun, DatasetInsertion, TaggedLog
from braintrust_ops.services.datasets import dataset_row_id

pytestmark = pytest.mark.django_db(transaction=True)


def _now():
    return datetime.now(UTC)


def _statuses():
    return sorted(TaggedLog.objects.values_list("status", flat=True))


def _closed_port() -> int:
    """A loopback port nothing listens on: bound, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- 2A: listing the project's tags -----------------------------------------------------------


def test_tag_listing_that_stays_garbled_fails_the_run_naming_the_endpoint(small_project, run_command, ops_settings):
    ops_settings(HTTP_MAX_RETRIES=1)
    small_project.faults.add("project_tag", "invalid_json", times=None)
    with pytest.raises(CommandError, match=r"reply to GET /v1/project_tag was not JSON after 2 attempts"):
        run_command("tag_logs")
    assert small_project.count("project_tag") == 2  # the one retry layer: a garbled reply counts like any failure
    assert small_project.count("btql") == 0 and small_project.count("messages") == 0
    assert CommandRun.objects.get().outcome == "failed"


def test_rate_limit_on_the_tag_listing_that_outlasts_the_wait_budget_fails_the_run(
    small_project, run_command, ops_settings
):
    ops_settings(HTTP_BACKOFF_SECONDS="0.05", HTTP_RATE_LIMIT_BUDGET_SECONDS="0.5")
    small_project.faults.add("project_tag", "status", status=429, times=None)
    with pytest.raises(CommandError, match=r"kept rate-limiting GET /v1/project_tag \(HTTP 429\).* over 4 attempts"):
        run_command("tag_logs")
    assert small_project.count("project_tag") == 4
    assert small_project.count("messages") == 0 and not TaggedLog.objects.exists()


# --- 2B: querying the logs --------------------------------------------------------------------


def test_key_refused_on_the_log_query_stops_the_run_without_retrying(small_project, run_command):
    small_project.faults.add("btql", "status", status=401, times=None)
    with pytest.raises(CommandError, match=r"Braintrust refused the API key on POST /btql .*BRAINTRUST_API_KEY"):
        run_command("tag_logs")
    assert small_project.count("btql") == 1
    assert small_project.count("messages") == 0 and not TaggedLog.objects.exists()
    assert CommandRun.objects.get().outcome == "failed"


def test_log_query_that_times_out_fails_the_run_and_calls_no_model(small_project, run_command, ops_settings):
    ops_settings(HTTP_TIMEOUT_SECONDS="0.2", HTTP_MAX_RETRIES=1)
    small_project.faults.add("btql", "latency", delay=0.8, times=None)
    with pytest.raises(CommandError, match=r"POST /btql timed out after 2 attempts"):
        run_command("tag_logs")
    assert small_project.count("btql") == 2
    assert small_project.count("messages") == 0 and not TaggedLog.objects.exists()


def test_a_result_of_a_hundred_pages_is_read_to_the_last_row(small_project, run_command, ops_settings):
    # The review's 100K+ logs, scaled: 100 BTQL pages of 10 rows walk the same cursor loop as 100 pages of 1,000.
    ops_settings(BTQL_PAGE_SIZE=10, TAGGING_MAX_LOGS_PER_RUN=1)
    small_project.state.clear_logs()
    start = _now() - timedelta(hours=20)
    small_project.state.add_logs(
        1000, created=lambda i: start + timedelta(seconds=i), input="question", output="answer"
    )
    result = run_command("tag_logs")
    assert "Logs fetched: 1000 (without id: 0, duplicates: 0)" in result.stdout
    assert TaggedLog.objects.count() == 1000
    assert small_project.count("btql") == 101  # the 101st request is the empty page that ends the results
    assert all(body["query"]["limit"] == 10 for body in small_project.btql_bodies())


# --- 2C / 3: Claude ---------------------------------------------------------------------------


def test_rate_limit_that_outlasts_the_sdk_retries_leaves_the_logs_queued_and_the_next_run_tags_them(
    small_project, run_command, ops_settings
):
    ops_settings(CLAUDE_MAX_RETRIES=0)
    small_project.faults.add("messages", "status", status=429, retry_after=0, times=None)
    with pytest.raises(CommandError, match="3 of 3 logs failed to tag"):
        run_command("tag_logs")
    assert _statuses() == ["pending", "pending", "pending"]
    assert all("HTTP 429" in error for error in TaggedLog.objects.values_list("last_error", flat=True))

    small_project.faults.clear()
    run_command("tag_logs")
    assert _statuses() == ["tagged", "tagged", "tagged"]
    assert TaggedLog.objects.get(input="Is it permitted to cook on Shabbat?").tag_names == ["halacha"]


def test_unreachable_anthropic_leaves_the_logs_queued_never_as_no_tags(small_project, run_command, ops_settings):
    ops_settings(ANTHROPIC_BASE_URL=f"http://127.0.0.1:{_closed_port()}", CLAUDE_MAX_RETRIES=0)
    with pytest.raises(CommandError, match="3 of 3 logs failed to tag"):
        run_command("tag_logs")
    assert _statuses() == ["pending", "pending", "pending"]
    assert all("Could not reach Anthropic" in error for error in TaggedLog.objects.values_list("last_error", flat=True))
    assert not TaggedLog.objects.filter(tags__isnull=False).exists()


# --- 3: the network to Braintrust -------------------------------------------------------------


def test_connection_refused_fails_the_run_naming_the_url(small_project, run_command, ops_settings):
    url = f"http://127.0.0.1:{_closed_port()}"
    ops_settings(BRAINTRUST_API_URL=url, HTTP_MAX_RETRIES=1)
    with pytest.raises(CommandError, match=f"could not connect after 2 attempts \\({url}\\).*BRAINTRUST_API_URL"):
        run_command("tag_logs")
    assert CommandRun.objects.get().outcome == "failed"


@pytest.fixture
def untrusted_https_server(tmp_path):
    """A real HTTPS server on loopback whose self-signed certificate no CA vouches for.

    It answers any request as Braintrust would for an empty small_project, and counts the requests that
    got through TLS, so a client that skipped certificate checks would visibly succeed.
    """
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            received.append((self.path, self.headers.get("Authorization")))
            body = b'{"objects": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # the refused handshakes are the point of the test

    server = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.received = received
    server.url = f"https://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_untrusted_tls_certificate_fails_the_run_and_the_key_is_never_sent(
    untrusted_https_server, small_project, run_command, ops_settings
):
    ops_settings(BRAINTRUST_API_URL=untrusted_https_server.url, HTTP_MAX_RETRIES=0)
    with pytest.raises(CommandError, match=f"could not connect after 1 attempt \\({untrusted_https_server.url}\\)"):
        run_command("tag_logs")
    assert untrusted_https_server.received == []
    assert small_project.count("messages") == 0


# --- 2C / 4.1: log ids ------------------------------------------------------------------------


def test_an_empty_log_id_is_skipped_and_a_blank_one_is_a_log_of_its_own(small_project, run_command):
    """An id is any string (OpenAPI ProjectLogsEvent.id); only a missing or empty one names no log."""
    recent = _now() - timedelta(hours=1)
    small_project.state.add_log(id="", input="Shabbat question with an empty id", created=recent)
    small_project.state.add_log(
        id="   ", input="Shabbat question with a blank id", created=recent + timedelta(seconds=1)
    )
    result = run_command("tag_logs")
    assert "Logs fetched: 5 (without id: 1, duplicates: 0)" in result.stdout
    assert TaggedLog.objects.count() == 4 and not TaggedLog.objects.filter(log_id="").exists()
    blank = TaggedLog.objects.get(log_id="   ")
    assert blank.input == "Shabbat question with a blank id" and blank.tag_names == ["halacha"]


def test_ids_differing_only_by_surrounding_spaces_are_distinct_logs_each_labelled_from_its_own_text(
    small_project, run_command
):
    small_project.state.clear_logs()
    start = _now() - timedelta(hours=2)
    texts = {"abc": "Please translate this", " abc": "Is it kosher?", "abc ": "Where is this in the Talmud?"}
    for index, (log_id, text) in enumerate(texts.items()):
        small_project.state.add_log(id=log_id, input=text, created=start + timedelta(minutes=index))
    result = run_command("tag_logs")
    assert "duplicates: 0" in result.stdout
    stored = {log.log_id: (log.input, log.tag_names) for log in TaggedLog.objects.prefetch_related("tags")}
    assert stored == {
        "abc": ("Please translate this", ["translation"]),
        " abc": ("Is it kosher?", ["halacha"]),
        "abc ": ("Where is this in the Talmud?", ["sources"]),
    }


def test_a_number_for_an_id_is_refused_with_its_reason_and_never_taken_for_the_string_id(small_project, run_command):
    """Braintrust's ids are strings (OpenAPI ProjectLogsEvent.id): the number 12345 names no log, and must
    not become the log "12345", whose own text it would overwrite or be mistaken for."""
    small_project.state.clear_logs()
    start = _now() - timedelta(hours=2)
    small_project.state.add_log(id=12345, input="Is it kosher? (a number for an id)", created=start)
    small_project.state.add_log(id="12345", input="Please translate this (a string id)", created=start)
    result = run_command("tag_logs", verbosity=2)
    assert "Refused 1 logs" in result.stderr and "  refused 12345: its id is a number, not a string" in result.stderr
    log = TaggedLog.objects.get()
    assert (log.log_id, log.input, log.tag_names) == ("12345", "Please translate this (a string id)", ["translation"])
    counters = CommandRun.objects.get().counters
    assert counters["refused"] == 1
    assert counters["refused_logs"] == [
        "12345: its id is a number, not a string (an id is a string: OpenAPI ProjectLogsEvent.id)"
    ]


NFC_ID = unicodedata.normalize("NFC", "log-café")
NFD_ID = unicodedata.normalize("NFD", "log-café")
ODD_IDS = ['quote"and\\backslash', "line\nbreak", '{"json": [1, 2]}', "שאלה-🙂-1", NFC_ID, NFD_ID]


def test_log_ids_with_special_characters_and_unicode_reach_datasets_exactly_once(small_project, run_command):
    small_project.state.clear_logs()
    dataset = small_project.state.add_dataset("Halacha evals", '[[relevant_tags: ["halacha"]]]')["id"]
    start = _now() - timedelta(hours=3)
    for index, log_id in enumerate(ODD_IDS):
        small_project.state.add_log(
            id=log_id, input=f"Shabbat question {index}", created=start + timedelta(minutes=index)
        )
    run_command("tag_logs", "--push")
    expected = set(ODD_IDS)
    assert set(TaggedLog.objects.values_list("log_id", flat=True)) == expected
    # Two spellings of one name are two Braintrust ids: each keeps its own log, here and in the dataset.
    nfc, nfd = (f"Shabbat question {ODD_IDS.index(log_id)}" for log_id in (NFC_ID, NFD_ID))
    assert TaggedLog.objects.get(log_id=NFC_ID).input == nfc and TaggedLog.objects.get(log_id=NFD_ID).input == nfd
    rows = small_project.state.dataset_rows(dataset)
    assert {row["metadata"]["source_log_id"] for row in rows} == expected
    inputs = {row["metadata"]["source_log_id"]: row["input"] for row in rows}
    assert (inputs[NFC_ID], inputs[NFD_ID]) == (nfc, nfd)
    assert sorted(row["id"] for row in rows) == sorted(dataset_row_id(log_id) for log_id in expected)
    assert set(DatasetInsertion.objects.values_list("log_id", flat=True)) == expected

    inserts = small_project.count("dataset_insert")
    run_command("push_to_datasets")
    assert small_project.count("dataset_insert") == inserts
    assert len(small_project.state.dataset_rows(dataset)) == len(expected)
