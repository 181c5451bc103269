"""Sentry in a CronJob's process: the host's settings name a DSN, nothing started a client, and what the
command sends must have left before the process exits. The DSN points at a receiver on this machine."""

import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sentry_sdk.envelope import Envelope

from braintrust_ops.tests.secret_guard import keys_in


class _Receiver(ThreadingHTTPServer):
    """Sentry's ingestion, on this machine. It answers the first envelope a second late, as a distant server
    might: the SDK's worker is still waiting when the command ends, so what came next leaves only if the
    process sends its queue before it exits."""

    FIRST_ANSWER_DELAY = 1.0

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[bytes] = []

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.server_address[1]}/1"

    def items(self, kind: str) -> list[dict]:
        envelopes = [Envelope.deserialize(body) for body in self.bodies]
        return [json.loads(item.get_bytes()) for envelope in envelopes for item in envelope.items if item.type == kind]

    def statuses(self) -> list[str]:
        return [item["status"] for item in self.items("check_in")]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.bodies.append(body)
        if len(self.server.bodies) == 1:
            time.sleep(_Receiver.FIRST_ANSWER_DELAY)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_cronjob_process_starts_sentry_from_the_dsn_setting_and_its_check_ins_leave_before_it_exits(
    seeded_sandbox, make_job, receiver
):
    # The production settings (a CronJob's), which read SENTRY_DSN from the environment as Sefaria's do.
    job = make_job(seeded_sandbox, DJANGO_SETTINGS_MODULE="sefaria.settings", SENTRY_DSN=receiver.dsn)
    job.ok("prune_braintrust_ops")
    assert receiver.statuses() == ["in_progress", "ok"]
    assert receiver.items("event") == []


def test_a_failed_cronjob_run_sends_its_exception_and_no_key(seeded_sandbox, make_job, receiver):
    wrong_key = "bt-wrong-key-for-tests-000000"
    job = make_job(
        seeded_sandbox,
        DJANGO_SETTINGS_MODULE="sefaria.settings",
        SENTRY_DSN=receiver.dsn,
        SENTRY_ENVIRONMENT="production",
        BRAINTRUST_API_KEY=wrong_key,
    )
    assert job.run("push_to_datasets").returncode == 1
    [event] = receiver.items("event")
    assert event["exception"]["values"][-1]["type"] == "AuthenticationFailed"
    assert event["tags"] == {"command": "push_to_datasets"} and event["environment"] == "production"
    assert receiver.statuses() == ["in_progress", "error"]
    assert keys_in(b"\n".join(receiver.bodies).decode("utf-8", "replace")) == set()
