"""evaluate_tagging: a labeller run over the logs people reviewed, recorded as a Braintrust experiment.

The labeller is the one tag_logs uses, or a candidate (``--model``, ``--prompt-file``) to try before it is
switched on. Each reviewed log is labelled again, nothing is stored here, and the result goes to Braintrust
as an experiment in the project (REST: ``POST /v1/experiment``, ``/v1/experiment/{id}/insert``,
``/summarize``): one event per log (the log as input, the labeller's tags as output, the person's as
expected, exact match and Jaccard as scores) and the per-tag figures (``agreement``) in its metadata. Its
base is the current labeller's last experiment, so Braintrust's UI shows the difference.
"""

import dataclasses
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import structlog
from django.utils import timezone

from braintrust_ops.agreement import Judged, tag_agreement
from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.conf import OpsConfig
from braintrust_ops.cost_estimate import expected_output_tokens, fixed_input_tokens, text_tokens
from braintrust_ops.exceptions import BraintrustOpsError
from braintrust_ops.insert_batches import batches, encoded_size
from braintrust_ops.models import TaggedLog
from braintrust_ops.provenance import tagset_fingerprint
from braintrust_ops.rate_limiter import RateLimiter
from braintrust_ops.services.tagging.cost import price
from braintrust_ops.services.tagging.dispatch import TAGGED, Call, Job, tag_one
from braintrust_ops.storable import original_json
from braintrust_ops.taggable_tags import TaggableTag, select_taggable_tags
from braintrust_ops.tagging_prompt import PROMPT_VERSION, build_system_prompt, build_tool, build_user_message

logger = structlog.get_logger(__name__)

#: Marks this app's experiments in their metadata, to find the current labeller's last one.
EXPERIMENT_KIND = "braintrust_ops.evaluate_tagging"


@dataclass(frozen=True)
class Example:
    """One labelled log to evaluate against: a reviewed log here, or a row of a Braintrust dataset."""

    source_id: str
    input: object
    output: object
    #: the person's label
    expected: frozenset[str]
    reviewed_by: str = ""


@dataclass(frozen=True)
class EvaluationOptions:
    #: the candidate model (None: the one tag_logs uses)
    model: str | None = None
    #: a candidate system prompt, in place of the built one (its version is its text's hash)
    prompt_text: str | None = None
    limit: int | None = None
    name: str | None = None
    dry_run: bool = False
    #: a Braintrust dataset (name or id) of labelled examples, in place of the reviewed logs
    dataset: str | None = None


@dataclass
class EvaluationReport:
    model: str = ""
    prompt_version: str = ""
    examples: int = 0
    #: "reviewed logs", or "rows of dataset NAME"
    examples_from: str = "reviewed logs"
    #: dataset rows that are no dataset event (``dataset_example``), left out
    rows_left_out: int = 0
    labelled: int = 0
    #: examples the labeller failed on (their error is in the experiment's event)
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: str = "0.0000"
    #: the dry run's
    estimated_input_tokens: int = 0
    estimated_cost_usd: str = "0.0000"
    exact_match: float | None = None
    agreement: list[dict] = field(default_factory=list)
    experiment_name: str = ""
    experiment_url: str = ""
    base_experiment_name: str = ""
    #: Braintrust's summary: score name -> {score, diff, improvements, regressions}
    scores: dict = field(default_factory=dict)
    dry_run: bool = False
    elapsed_seconds: float = 0.0


def jaccard(first: set[str], second: set[str]) -> float:
    """|A ∩ B| / |A ∪ B|; two empty labels agree completely."""
    union = first | second
    return len(first & second) / len(union) if union else 1.0


def labeller_evaluate(
    *, options: EvaluationOptions, config: OpsConfig, braintrust: BraintrustClient, claude_factory
) -> EvaluationReport:
    started = time.monotonic()
    candidate = dataclasses.replace(config, tagging_model=options.model) if options.model else config
    tags = select_taggable_tags(braintrust.list_project_tags(config.project_id))
    if not tags:
        raise BraintrustOpsError(
            f"No taggable tags in project {config.project_id}: nothing to evaluate against. Mark the tags "
            "'dataset-tagging' in their descriptions."
        )
    system_prompt = options.prompt_text if options.prompt_text is not None else build_system_prompt(tags)
    prompt_version = (
        f"file-{hashlib.sha256(options.prompt_text.encode()).hexdigest()[:12]}"
        if options.prompt_text is not None
        else PROMPT_VERSION
    )
    tool = build_tool(tags, strict=candidate.claude_strict_tools)
    report = EvaluationReport(model=candidate.tagging_model, prompt_version=prompt_version, dry_run=options.dry_run)
    taggable = {tag.name for tag in tags}
    if options.dataset:
        examples, report.rows_left_out = _dataset_examples(braintrust, config, options.dataset, taggable, options.limit)
    else:
        examples = list(_reviewed(options.limit))
    report.examples = len(examples)
    report.examples_from = f"rows of dataset {options.dataset}" if options.dataset else "reviewed logs"
    if not examples:
        raise BraintrustOpsError(
            f"No labelled rows in dataset {options.dataset!r} to evaluate against. Nothing was sent."
            if options.dataset
            else "No reviewed logs to evaluate against: people's labels come from reviews in Braintrust (see the "
            "README, For reviewers). Nothing was sent."
        )
    jobs = [Job(pk=None, log_id=example.source_id, user_text=_user_text(example, config)) for example in examples]
    if options.dry_run:
        _estimate(report, jobs, system_prompt=system_prompt, tool=tool, tags=tags, config=candidate)
        report.elapsed_seconds = round(time.monotonic() - started, 3)
        return report

    claude = claude_factory(candidate, limiter=RateLimiter(), stop=threading.Event())
    call = Call(claude=claude, system_prompt=system_prompt, tool=tool, allowed=[tag.name for tag in tags], tagset="")
    try:
        results = [tag_one(job, call) for job in jobs]
    finally:
        claude.close()
    events, judged = [], []
    for example, result in zip(examples, results, strict=True):
        person = set(example.expected)
        report.input_tokens += result.input_tokens
        report.output_tokens += result.output_tokens
        if result.kind == TAGGED:
            report.labelled += 1
            labelled = set(result.tags or [])
            judged.append(Judged(candidate.tagging_model, prompt_version, frozenset(labelled), frozenset(person)))
            scores: dict[str, float | None] = {
                "exact_match": 1.0 if labelled == person else 0.0,
                "jaccard": jaccard(labelled, person),
            }
        else:
            report.failed += 1
            labelled, scores = set(), {"exact_match": None, "jaccard": None}
        events.append(_event(example, labelled=labelled, person=person, scores=scores, error=result.error))
    report.agreement = [row.as_dict() for row in tag_agreement(judged, [tag.name for tag in tags])]
    matched = [event["scores"]["exact_match"] for event in events if event["scores"]["exact_match"] is not None]
    report.exact_match = sum(matched) / len(matched) if matched else None
    report.cost_usd = f"{price(candidate, report.input_tokens, report.output_tokens):.4f}"
    _record(report, braintrust=braintrust, config=config, options=options, tags=tags, events=events)
    report.elapsed_seconds = round(time.monotonic() - started, 3)
    return report


def _reviewed(limit: int | None) -> Iterator[Example]:
    reviewed = TaggedLog.objects.filter(human_tags__isnull=False).order_by("-reviewed_at", "pk")
    for log in reviewed[:limit].iterator() if limit else reviewed.iterator(chunk_size=500):
        # Stored content is in storable's encoding: the labeller reads the log as it was written.
        yield Example(
            source_id=log.log_id,
            input=original_json(log.input),
            output=original_json(log.output),
            expected=frozenset(log.human_tags or []),
            reviewed_by=log.reviewed_by,
        )


def _dataset_examples(
    braintrust: BraintrustClient, config: OpsConfig, wanted: str, taggable: set[str], limit: int | None
) -> tuple[list[Example], int]:
    """The rows of a dataset in push_to_datasets' shape: the conversation as input, the chatbot's answer as
    expected, and the label as the row's tags (a person may have corrected them in Braintrust); and how many
    rows were left out, being no dataset event."""
    datasets = braintrust.list_datasets(config.project_id)
    found = next((dataset for dataset in datasets if wanted in (dataset.get("id"), dataset.get("name"))), None)
    if found is None:
        raise BraintrustOpsError(f"No dataset {wanted!r} (by name or id) in project {config.project_id}.")
    examples: list[Example] = []
    skipped = 0
    rows = (row for events in braintrust.iter_dataset_events(str(found["id"])) for row in events)
    for row in rows:
        example = dataset_example(row, taggable)
        if example is None:
            skipped += 1
            continue
        examples.append(example)
        if limit and len(examples) >= limit:
            break
    if skipped:
        logger.warning("evaluation_dataset_rows_skipped", dataset=wanted, rows=skipped, reason="not a dataset event")
    return examples, skipped


def dataset_example(row: object, taggable: set[str]) -> Example | None:
    """A dataset row as an example, or None for one that is no dataset event: not an object, or without
    the string ``id`` the OpenAPI spec requires of one (``DatasetEvent``). Its ``tags`` (an array of
    strings, or null) are kept where they are taggable; anything else in them is no label."""
    if not isinstance(row, dict):
        return None
    row_id = row.get("id")
    if not isinstance(row_id, str) or not row_id:
        return None
    tags = row.get("tags")
    return Example(
        source_id=row_id,
        input=row.get("input"),
        output=row.get("expected"),
        expected=frozenset(tag for tag in tags if isinstance(tag, str) and tag in taggable)
        if isinstance(tags, list)
        else frozenset(),
    )


def _user_text(example: Example, config: OpsConfig) -> str:
    return build_user_message(log_input=example.input, log_output=example.output, text_limit=config.tagging_text_limit)


def _event(example: Example, *, labelled: set[str], person: set[str], scores: dict, error: str) -> dict:
    return {
        "input": {"id": example.source_id, "input": example.input, "output": example.output},
        "output": sorted(labelled),
        "expected": sorted(person),
        "scores": scores,
        "metadata": {
            "source_id": example.source_id,
            **({"reviewed_by": example.reviewed_by} if example.reviewed_by else {}),
            **({"error": error} if error else {}),
        },
    }


def _estimate(report, jobs, *, system_prompt, tool, tags: list[TaggableTag], config: OpsConfig) -> None:
    fixed = fixed_input_tokens(system_prompt=system_prompt, tool=tool, model=config.tagging_model)
    report.estimated_input_tokens = sum(fixed + text_tokens(job.user_text) for job in jobs)
    output = len(jobs) * min(expected_output_tokens([tag.name for tag in tags]), config.claude_max_output_tokens)
    report.estimated_cost_usd = f"{price(config, report.estimated_input_tokens, output):.4f}"


def _record(report, *, braintrust: BraintrustClient, config: OpsConfig, options, tags, events) -> None:
    """The experiment in Braintrust, based on the current labeller's last one."""
    project_id = config.project_id
    base = _current_labellers_last(braintrust.list_experiments(project_id), config)
    name = options.name or f"tagging {report.model} {report.prompt_version} {timezone.now():%Y-%m-%d %H:%M}"
    metadata = {
        "kind": EXPERIMENT_KIND,
        "model": report.model,
        "prompt_version": report.prompt_version,
        "tagset_fingerprint": tagset_fingerprint(tags),
        "examples": report.examples,
        "examples_from": f"dataset {options.dataset}" if options.dataset else "reviewed logs",
        "failed": report.failed,
        "exact_match": report.exact_match,
        "cost_usd": report.cost_usd,
        "per_tag": report.agreement,
    }
    experiment = braintrust.create_experiment(
        project_id,
        name=name,
        description=f"braintrust_ops evaluate_tagging: {report.model}, prompt {report.prompt_version}, "
        f"against {report.examples} logs people reviewed",
        base_experiment_id=base["id"] if base else None,
        metadata=metadata,
    )
    sized = [(event, encoded_size(event)) for event in events]
    for batch in batches(sized, max_rows=config.push_batch_size, max_bytes=config.push_max_request_bytes):
        braintrust.insert_experiment_events(experiment["id"], batch)
    summary = braintrust.summarize_experiment(experiment["id"], comparison_experiment_id=base["id"] if base else None)
    report.experiment_name = str(summary.get("experiment_name") or experiment.get("name") or name)
    report.experiment_url = str(summary.get("experiment_url") or "")
    report.base_experiment_name = str(summary.get("comparison_experiment_name") or (base or {}).get("name") or "")
    report.scores = {
        str(key): {field: value.get(field) for field in ("score", "diff", "improvements", "regressions")}
        for key, value in (summary.get("scores") or {}).items()
        if isinstance(value, dict)
    }
    logger.info("tagging_evaluated", experiment=report.experiment_name, examples=report.examples)


def _current_labellers_last(experiments: list[dict], config: OpsConfig) -> dict | None:
    """The newest experiment of this app's evaluations of the labeller tag_logs uses now."""
    mine = [
        experiment
        for experiment in experiments
        if isinstance(experiment.get("metadata"), dict)
        and experiment["metadata"].get("kind") == EXPERIMENT_KIND
        and experiment["metadata"].get("model") == config.tagging_model
        and experiment["metadata"].get("prompt_version") == PROMPT_VERSION
    ]
    return max(mine, key=lambda experiment: str(experiment.get("created") or ""), default=None)
