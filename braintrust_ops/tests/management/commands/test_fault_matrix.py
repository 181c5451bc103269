"""The fault matrix (issue 19): each command driven through the sandbox with every fault kind at every
stage it reaches, once and for good.

- Once (``times=1``): the retry layer absorbs it. The command exits 0 and its work is a fault-free run's:
  the same labels, the same dataset rows, the same backup file, byte for byte.
- For good (``times=None``): the command fails with one line saying what failed and what to do (exit 1),
  the run is recorded as failed, and a failed night moves nothing: the watermark stays, no label or
  insertion is lost, wrong or doubled, no backup file appears. Then, the fault gone, the same command
  line finishes the work exactly.

The cases are a table. ``STAGES`` names the routes each command line uses, in the order it uses them; a
stage may be a route's second request (the second BTQL page, the second dataset's insert). Each stage
meets the transient kinds of ``TRANSIENT`` it lists, once and for good, and the permanent refusals that
mean something there, for good.

A dropped connection on a batch create is a for-good case only: the create may have reached Anthropic, so
it is never sent again (the next run adopts the batch). A garbled Messages reply is a for-good case only:
neither the SDK nor the client asks again (``ClaudeClient.call_tool``: one retry layer, the SDK's), so the
log waits for the next run. A results stream cut off or garbled once is read again in the same run
(``services.tagging.batches.RESULTS_READS``).
"""

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from braintrust_ops.models import CommandRun, DatasetInsertion, TagBatch, TaggedLog
from braintrust_ops.services.watermarks import run_start
from braintrust_ops_sandbox.server import Sandbox

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 0.4
# Beyond the time-out: the request is still answered (an insert applied) after the client gave up.
LATENCY = 2 * TIMEOUT
# A Retry-After of 1 s fits in this budget, so one 429 is waited out ...
ONCE_BUDGET = 1.5
# ... and passes this one, so 429s for good fail at the first instead of waiting.
ALWAYS_BUDGET = 0.5

# small_project's logs, labelled two nights ago; one more log, labelled last night.
TWO_NIGHTS_AGO = {
    "Is it permitted to cook on Shabbat?": ["halacha"],
    "Please translate Genesis 1:1": ["translation"],
    "What's the weather in Jerusalem?": [],
}
LAST_NIGHT = {"May one carry on Shabbat?": ["halacha"]}
NIGHTS_BEFORE = {**TWO_NIGHTS_AGO, **LAST_NIGHT}
TONIGHT = {
    "Is this kosher?": ["halacha"],
    "Where does Rashi say that?": ["sources"],
    "Translate this Talmud passage": ["sources", "translation"],
}
# The datasets_project fixture's subscriptions, by the attribute holding each dataset's id.
SUBSCRIPTIONS = {"halacha": {"halacha"}, "translation": {"translation"}, "both": {"halacha", "translation"}}

# Transient faults, as sandbox.faults.add takes them.
TRANSIENT = {
    "500": {"kind": "status", "status": 500},
    "503": {"kind": "status", "status": 503},
    "429-retry-after": {"kind": "status", "status": 429, "retry_after": 1},
    "429": {"kind": "status", "status": 429},
    "latency": {"kind": "latency", "delay": LATENCY},
    "drop": {"kind": "drop"},
    "invalid_json": {"kind": "invalid_json"},
    "partial": {"kind": "partial"},
}
ALL = tuple(TRANSIENT)


def next_run_start():
    """Where the next unsharded run would start (services.watermarks), at one fixed moment."""
    return run_start(None, now=START_CHECKED_AT, default_hours=24, overlap_hours=1, lookback_days=30)


START_CHECKED_AT = datetime.now(UTC)


def _but(*left_out: str) -> tuple[str, ...]:
    return tuple(kind for kind in ALL if kind not in left_out)


@dataclass(frozen=True)
class Stage:
    argv: tuple[str, ...]
    route: str
    #: the fault hits the route's nth request; the ones before it pass
    nth: int = 1
    #: transient kinds met once, and met for good
    once: tuple[str, ...] = ALL
    always: tuple[str, ...] = ALL
    #: statuses that refuse the request for good and mean something here
    permanent: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return " ".join(self.argv) + f" {self.route}" + (f" request{self.nth}" if self.nth > 1 else "")


TAG = ("tag_logs",)
TAG_PUSH = ("tag_logs", "--push")
BATCH = ("tag_logs", "--batch", "--wait", "1")
PUSH = ("push_to_datasets",)
RECONCILE = ("push_to_datasets", "--reconcile")
BACKUP = ("backup_logs",)

STAGES = [
    Stage(TAG, "project", permanent=(400, 401, 404)),
    Stage(TAG, "project_tag", permanent=(400, 401, 404)),
    Stage(TAG, "btql", permanent=(400, 401, 404)),
    Stage(TAG, "btql", nth=2, permanent=(400, 401, 404)),
    Stage(TAG, "messages", once=_but("invalid_json"), permanent=(400, 401, 404)),
    Stage(TAG_PUSH, "dataset_list", permanent=(400, 401, 404)),
    Stage(TAG_PUSH, "dataset_insert", permanent=(400, 401, 404)),
    Stage(BATCH, "batches_create", once=_but("latency", "partial", "invalid_json", "drop"), permanent=(400, 401)),
    Stage(BATCH, "batches_retrieve", once=_but("invalid_json"), permanent=(401,)),
    Stage(BATCH, "batches_results", once=ALL, permanent=(401,)),
    Stage(PUSH, "project", permanent=(400, 401, 404)),
    Stage(PUSH, "dataset_list", permanent=(400, 401, 404)),
    Stage(PUSH, "project_tag", permanent=(400, 401, 404)),
    Stage(PUSH, "dataset_insert", permanent=(400, 401, 404)),
    Stage(PUSH, "dataset_insert", nth=2, permanent=(400, 404)),
    Stage(RECONCILE, "dataset_fetch", permanent=(400, 401, 404)),
    Stage(BACKUP, "project", permanent=(400, 401, 404)),
    Stage(BACKUP, "btql", permanent=(400, 401, 404)),
    Stage(BACKUP, "btql", nth=2, permanent=(400, 401, 404)),
]


@dataclass(frozen=True)
class Case:
    stage: Stage
    fault: str
    options: dict = field(hash=False)
    once: bool

    @property
    def id(self) -> str:
        return f"{self.stage.label} {self.fault} {'once' if self.once else 'always'}".replace(" ", "-")


def _cases(*, once: bool) -> list[Case]:
    cases = []
    for stage in STAGES:
        cases += [Case(stage, kind, TRANSIENT[kind], once) for kind in (stage.once if once else stage.always)]
        if not once:
            cases += [
                Case(stage, str(status), {"kind": "status", "status": status}, once) for status in stage.permanent
            ]
    return cases


# What to do, as the README's "When a run fails" has it: check a setting, try or run again, or wait for the next run.
ADVICE = re.compile(r"(?i)\bcheck\b|try again|run again|again later|\brun \w+ again|the next run")
ENDPOINTS = {
    "project": "GET /v1/project/{id}",
    "project_tag": "GET /v1/project_tag",
    "dataset_list": "GET /v1/dataset",
    "btql": "POST /btql",
    "dataset_insert": "POST /v1/dataset/{id}/insert",
    "dataset_fetch": "POST /v1/dataset/{id}/fetch",
}


def _names_what_failed(case: Case, message: str) -> bool:
    route = case.stage.route
    if route == "messages":
        return "Anthropic" in message or "logs failed to tag" in message
    if route.startswith("batches"):
        return "Anthropic" in message or "batch" in message
    if route == "dataset_insert" and case.fault == "400":
        return "refused by their dataset" in message  # every row refused on its own: the rows failed, not the dataset
    return ENDPOINTS[route] in message


# Where anthropic 2.x's HTTP stack builds its TLS context (httpcore2); anthropic 0.x's (httpx) builds it
# elsewhere and is left as it is: sharing the context only saves time.
try:
    import httpcore2 as _tls_home
except ImportError:
    _tls_home = None


@functools.cache
def _ssl_context(**options):
    return _default_ssl_context(**options)


_default_ssl_context = getattr(_tls_home, "default_ssl_context", None)


@pytest.fixture
def sandbox():
    """The sandbox without its seed: the fixtures below replace its logs, tags and datasets anyway."""
    with Sandbox(seed=False) as running:
        yield running


@pytest.fixture
def world(small_project, datasets_project, ops_settings, tmp_path, monkeypatch):
    """Logs labelled on the nights before and three more tonight (``Night``), three datasets subscribed to their tags,
    and settings that keep every retry, time-out and wait short. Two BTQL rows a page, so a window has pages."""
    ops_settings(
        # Not 0: with no backoff, 429s without Retry-After cost no wait, so only the cap of 100 attempts ends them.
        HTTP_BACKOFF_SECONDS=0.01,
        HTTP_MAX_RETRIES=2,
        HTTP_TIMEOUT_SECONDS=TIMEOUT,
        HTTP_RATE_LIMIT_BUDGET_SECONDS=ONCE_BUDGET,
        CLAUDE_MAX_RETRIES=1,
        CLAUDE_TIMEOUT_SECONDS=TIMEOUT,
        CLAUDE_BATCH_POLL_SECONDS=0.05,
        BTQL_PAGE_SIZE=2,
        BACKUP_DIR=tmp_path,
    )
    # Every Anthropic client loads the CA bundle (70 ms), for a sandbox spoken to in plain HTTP, several
    # times a case: one context for the module.
    if _tls_home is not None:
        monkeypatch.setattr(_tls_home, "default_ssl_context", _ssl_context)
    return small_project


class Night:
    """One command line's night: what is there before it runs, and whether its work is done."""

    def __init__(self, argv: tuple[str, ...], sandbox, run_command, tmp_path: Path):
        self.argv = argv
        self.command, self.args = argv[0], argv[1:]
        self.sandbox = sandbox
        self.run_command = run_command
        self.inserts = None
        if self.command == "backup_logs":
            now = datetime.now(UTC)
            window = (
                "--since",
                (now - timedelta(days=1)).isoformat(),
                "--until",
                (now + timedelta(hours=1)).isoformat(),
            )
            self.directory = tmp_path / "backups"
            self.directory.mkdir()
            self.output = self.directory / "logs.csv"
            run_command("backup_logs", *window, "--output", str(tmp_path / "control.csv"))
            self.control = (tmp_path / "control.csv").read_bytes()
            self.args = (*window, "--output", str(self.output))
            return
        # Two nights, so the watermark the next run starts from (the one of the night before last) is
        # not where a first run starts: a failed night that moved it would show.
        run_command("tag_logs")
        self._add_logs(LAST_NIGHT)
        run_command("tag_logs")
        self.labels = dict(NIGHTS_BEFORE)
        if self.command == "tag_logs":
            self._add_logs(TONIGHT)
            self.labels.update(TONIGHT)
        if "--reconcile" in argv:
            run_command("push_to_datasets")
            DatasetInsertion.objects.all().delete()  # the ledger lost
            self.inserts = sandbox.count("dataset_insert")
        self.watermark = next_run_start()

    def _add_logs(self, labels: dict[str, list[str]]) -> None:
        for text in labels:
            self.sandbox.state.add_log(input=text, output="...", created=datetime.now(UTC) - timedelta(minutes=30))

    @property
    def pushes(self) -> bool:
        return self.command == "push_to_datasets" or "--push" in self.argv

    def run(self):
        return self.run_command(self.command, *self.args)

    def last_outcomes(self) -> set[str]:
        """The outcomes of the latest run of each command this command line runs."""
        commands = [self.command] + (["push_to_datasets"] if "--push" in self.argv else [])
        return {CommandRun.objects.filter(command=command).latest("started_at").outcome for command in commands}

    def assert_done(self, *, attempts: dict[str, int] | None = None) -> None:
        if self.command == "backup_logs":
            assert self.output.read_bytes() == self.control
            assert [path.name for path in self.directory.iterdir()] == [self.output.name]
            return
        logs = {log.input: log for log in TaggedLog.objects.prefetch_related("tags")}
        assert {text: sorted(log.tag_names) for text, log in logs.items()} == self.labels
        assert {log.status for log in logs.values()} == {TaggedLog.Status.TAGGED}
        assert {text: log.attempts for text, log in logs.items()} == {text: 1 for text in self.labels} | (
            attempts or {}
        )
        # Every batch Anthropic holds is one the app collected: no request was sent, and paid for, twice.
        assert not TagBatch.objects.filter(state__in=[TagBatch.State.SUBMITTING, TagBatch.State.OPEN]).exists()
        known = set(TagBatch.objects.values_list("batch_id", flat=True))
        assert {batch["id"] for batch in self.sandbox.batches.all()} <= known
        if self.pushes:
            rows = self._dataset_rows()
            assert rows == self._expected_rows()
            ledger = DatasetInsertion.objects.all()
            assert {entry.status for entry in ledger} == {DatasetInsertion.Status.INSERTED}
            assert ledger.count() == sum(len(inputs) for inputs in rows.values())
        if self.inserts is not None:
            assert self.sandbox.count("dataset_insert") == self.inserts  # the repaired ledger sent nothing again

    def assert_nothing_moved(self, *, failing: str) -> None:
        """After ``failing`` failed: no file, no watermark moved, no wrong label, and the ledger claims no row
        the datasets do not hold."""
        if self.command == "backup_logs":
            assert list(self.directory.iterdir()) == []
            return
        # Under tag_logs --push, a failed push leaves the tagging's success and the watermark it set.
        if failing == self.command:
            assert next_run_start() == self.watermark
        for log in TaggedLog.objects.prefetch_related("tags"):
            if log.status == TaggedLog.Status.TAGGED:
                assert sorted(log.tag_names) == self.labels[log.input]
            else:
                assert not log.tag_names
        assert set(TaggedLog.objects.filter(input__in=NIGHTS_BEFORE).values_list("status", flat=True)) == {"tagged"}
        held = {row["id"] for dataset_id in self._dataset_ids() for row in self.sandbox.state.dataset_rows(dataset_id)}
        inserted = DatasetInsertion.objects.filter(status=DatasetInsertion.Status.INSERTED)
        assert set(inserted.values_list("row_id", flat=True)) <= held

    def _dataset_ids(self) -> list[str]:
        return [getattr(self.sandbox, attr) for attr in SUBSCRIPTIONS]

    def _dataset_rows(self) -> dict[str, list[str]]:
        return {
            attr: sorted(row["input"] for row in self.sandbox.state.dataset_rows(getattr(self.sandbox, attr)))
            for attr in SUBSCRIPTIONS
        }

    def _expected_rows(self) -> dict[str, list[str]]:
        return {
            attr: sorted(text for text, tags in self.labels.items() if set(tags) & subscribed)
            for attr, subscribed in SUBSCRIPTIONS.items()
        }


def _add_fault(sandbox, case: Case) -> None:
    options = dict(case.options)
    kind = options.pop("kind")
    if case.stage.nth > 1:
        sandbox.faults.add(case.stage.route, "latency", delay=0, times=case.stage.nth - 1)  # the requests before pass
    sandbox.faults.add(case.stage.route, kind, times=1 if case.once else None, **options)


@pytest.mark.parametrize("case", _cases(once=True), ids=lambda case: case.id)
def test_a_fault_once_is_absorbed_and_the_work_is_a_fault_free_runs(world, run_command, tmp_path, case):
    night = Night(case.stage.argv, world, run_command, tmp_path)
    _add_fault(world, case)
    night.run()
    assert world.faults.list() == []  # met, at the stage it names
    night.assert_done()
    assert night.last_outcomes() == {CommandRun.Outcome.SUCCEEDED}


@pytest.mark.parametrize("case", _cases(once=False), ids=lambda case: case.id)
def test_a_lasting_fault_fails_in_one_line_moves_nothing_and_the_next_run_finishes_the_work(
    world, run_command, ops_settings, tmp_path, case
):
    ops_settings(HTTP_RATE_LIMIT_BUDGET_SECONDS=ALWAYS_BUDGET)
    night = Night(case.stage.argv, world, run_command, tmp_path)
    _add_fault(world, case)
    with pytest.raises(CommandError) as failure:
        night.run()
    message = str(failure.value)
    assert failure.value.returncode == 1
    assert "\n" not in message and "Traceback" not in message and 'File "' not in message
    assert _names_what_failed(case, message), message
    assert ADVICE.search(message), message
    # Met at the stage it names (the requests before it passed), and still there.
    assert [rule["route"] for rule in world.faults.list()] == [case.stage.route]
    assert world.count(case.stage.route) >= case.stage.nth
    failing = "push_to_datasets" if case.stage.route.startswith("dataset") else night.command
    record = CommandRun.objects.filter(command=failing).latest("started_at")
    assert record.outcome == CommandRun.Outcome.FAILED and record.error
    night.assert_nothing_moved(failing=failing)

    world.faults.clear()
    night.run()
    # No lasting fault costs a log an attempt: a 400 on every Messages request, the setup check's too, is the
    # run's setup's fault, not each log's (issue 19).
    night.assert_done()
    assert night.last_outcomes() == {CommandRun.Outcome.SUCCEEDED}
