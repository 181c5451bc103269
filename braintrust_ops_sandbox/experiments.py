"""What the sandbox's Braintrust holds of experiments, and how it answers their four REST routes.

Each rule rests on the OpenAPI spec (``reference/braintrust-openapi.json``):
- ``POST /v1/experiment`` (``CreateExperiment``): "If there is an existing experiment in the project with
  the same name [...], will return the existing experiment unmodified"; with ``ensure_new`` true,
  "registration will generate a new experiment with a unique name in case of a conflict". A missing name
  is generated. The spec does not say how a unique name is made; the sandbox appends ``-1``, ``-2``...,
  so a client must read the name from the reply.
- ``GET /v1/experiment``: "sorted by creation date, with the most recently-created experiments coming first".
- ``POST /v1/experiment/{id}/insert`` (``InsertExperimentEvent``): an upsert by ``id``, replaced whole
  unless ``_is_merge``; ``_object_delete`` deletes the row (``log_merge`` holds those rules).
- ``GET /v1/experiment/{id}/summarize``: without ``summarize_scores=true`` "only the metadata will be
  returned"; the comparison is ``comparison_experiment_id``, else the experiment's ``base_exp_id``, "and
  then [...] the most recent experiment run in the same project" (``ComparisonExperimentId``).

What a score summary holds is the sandbox's reading of ``ScoreSummary`` ("Average score across all
examples", "Difference in score between the current and comparison experiment", "Number of
improvements/regressions") and of ``InsertExperimentEvent.input`` ("Braintrust will use the ``input`` to
know whether two test cases are the same between experiments"): ``score`` is the mean of an experiment's
non-null values of that score; ``diff`` the difference of the two means (absent when the comparison has no
such score); a test case is the events with one ``input`` (compared as canonical JSON), its score their
mean; ``improvements`` and ``regressions`` count the test cases of both experiments whose score went up or
down. Metrics are not summarised (``metrics`` is ``{}``): the spec gives no rule for their units or for
which way is better, and the app sends none.
"""

import copy
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from statistics import fmean
from urllib.parse import quote

from braintrust_ops_sandbox import log_merge
from braintrust_ops_sandbox.constants import KNOWN_PROJECTS, PROJECT_NAMES, SANDBOX_USER_ID, TIME_FORMAT

ORG_NAME = "sandbox-org"
# What a new experiment copies from the request as it is; the rest is the server's (OpenAPI Experiment).
_COPIED = (
    "description",
    "base_exp_id",
    "dataset_id",
    "dataset_version",
    "internal_metadata",
    "parameters_id",
    "parameters_version",
    "metadata",
    "tags",
    "repo_info",
)


class ExperimentRequestError(Exception):
    """A request the route refuses: ``status`` and a message, answered as ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Experiments:
    """The experiments of every project and their events. Every method takes the one lock: the server
    answers on many threads while a test reads."""

    def __init__(self, new_id: Callable[[], str], next_xact: Callable[[], int]):
        self._new_id = new_id
        self._next_xact = next_xact
        self._lock = threading.RLock()
        # In creation order; each experiment's events by id, in ingestion order (an upsert moves one to the end).
        self._experiments: dict[str, dict] = {}
        self._events: dict[str, dict[str, dict]] = {}

    # --- the routes -----------------------------------------------------------------------------

    def create(self, body: dict) -> dict:
        """``POST /v1/experiment`` with a body the spec's ``CreateExperiment`` allows."""
        project_id = body["project_id"]
        if project_id not in KNOWN_PROJECTS:
            # As GET /v1/project/{id} answers: an unknown project and one the key cannot read look the same.
            raise ExperimentRequestError(403, f"project {project_id} not found or not accessible with this key")
        with self._lock:
            taken = {e["name"] for e in self._experiments.values() if e["project_id"] == project_id}
            name = body.get("name")
            if name is None:
                name = _unique("experiment", taken, first=len(taken) + 1)
            elif name in taken:
                if not body.get("ensure_new"):
                    existing = next(
                        e for e in self._experiments.values() if e["project_id"] == project_id and e["name"] == name
                    )
                    return copy.deepcopy(existing)
                name = _unique(name, taken, first=1)
            experiment = {
                "id": self._new_id(),
                "project_id": project_id,
                "name": name,
                "description": None,
                "created": datetime.now(UTC).strftime(TIME_FORMAT),
                "repo_info": None,
                "base_exp_id": None,
                "deleted_at": None,
                "dataset_id": None,
                "dataset_version": None,
                "internal_metadata": None,
                "parameters_id": None,
                "parameters_version": None,
                "public": bool(body.get("public")),
                "user_id": SANDBOX_USER_ID,
                "metadata": None,
                "tags": None,
                **{key: copy.deepcopy(body[key]) for key in _COPIED if key in body},
            }
            experiment["commit"] = (experiment["repo_info"] or {}).get("commit")
            self._experiments[experiment["id"]] = experiment
            self._events[experiment["id"]] = {}
            return copy.deepcopy(experiment)

    def listing(self, project_id: str | None, name: str | None = None) -> list[dict]:
        """``GET /v1/experiment``: newest first, in one project (or all), with one name (or any)."""
        with self._lock:
            return [
                copy.deepcopy(e)
                for e in reversed(self._experiments.values())
                if (project_id is None or e["project_id"] == project_id) and (name is None or e["name"] == name)
            ]

    def insert(self, experiment_id: str, events: list[dict]) -> list[str]:
        """``POST /v1/experiment/{id}/insert`` with events the spec's ``InsertExperimentEvent`` allows."""
        with self._lock:
            experiment = self._get(experiment_id)
            rows = self._events[experiment_id]
            row_ids = []
            for event in events:
                row_id = str(event.get("id") or self._new_id())
                row_ids.append(row_id)
                stored = rows.pop(row_id, None)
                if event.get("_object_delete"):
                    continue
                if stored is not None and event.get("_is_merge"):
                    row = log_merge.merged(stored, event)
                else:
                    row = log_merge.replaced(event)
                span_id = row.get("span_id") or row_id
                xact = self._next_xact()
                rows[row_id] = {
                    **row,
                    "id": row_id,
                    "project_id": experiment["project_id"],
                    "experiment_id": experiment_id,
                    "span_id": span_id,
                    "root_span_id": row.get("root_span_id") or span_id,
                    "created": row.get("created") or datetime.now(UTC).strftime(TIME_FORMAT),
                    "_xact_id": str(xact),
                }
            return row_ids

    def summarize(
        self,
        experiment_id: str,
        *,
        base_url: str,
        summarize_scores: bool,
        comparison_experiment_id: str | None = None,
    ) -> dict:
        """``GET /v1/experiment/{id}/summarize`` (the module's docstring says what each number is)."""
        with self._lock:
            experiment = self._get(experiment_id)
            project_url = f"{base_url}/app/{ORG_NAME}/p/{quote(PROJECT_NAMES[experiment['project_id']], safe='')}"
            # Quoted as the braintrust SDK quotes the names in these links (util.py, encode_uri_component).
            summary: dict = {
                "project_name": PROJECT_NAMES[experiment["project_id"]],
                "experiment_name": experiment["name"],
                "project_url": project_url,
                "experiment_url": f"{project_url}/experiments/{quote(experiment['name'], safe='')}",
                "comparison_experiment_name": None,
            }
            if not summarize_scores:
                return summary
            comparison = self._comparison(experiment, comparison_experiment_id)
            other_events = [] if comparison is None else list(self._events[comparison["id"]].values())
            summary["comparison_experiment_name"] = None if comparison is None else comparison["name"]
            summary["scores"] = score_summaries(list(self._events[experiment_id].values()), other_events)
            summary["metrics"] = {}
            return summary

    # --- what tests read ------------------------------------------------------------------------

    def all(self) -> list[dict]:
        """Every experiment (oldest first), each with its stored ``events`` in ingestion order (copies)."""
        with self._lock:
            return [
                {**copy.deepcopy(e), "events": copy.deepcopy(list(self._events[e["id"]].values()))}
                for e in self._experiments.values()
            ]

    def clear(self) -> None:
        with self._lock:
            self._experiments.clear()
            self._events.clear()

    # --- helpers --------------------------------------------------------------------------------

    def _get(self, experiment_id: str) -> dict:
        experiment = self._experiments.get(experiment_id)
        if experiment is None:
            raise ExperimentRequestError(404, f"experiment {experiment_id} not found")
        return experiment

    def _comparison(self, experiment: dict, comparison_experiment_id: str | None) -> dict | None:
        if comparison_experiment_id is not None:
            if comparison_experiment_id not in self._experiments:
                raise ExperimentRequestError(
                    400, f"comparison_experiment_id {comparison_experiment_id} names no experiment"
                )
            return self._experiments[comparison_experiment_id]
        base = self._experiments.get(experiment["base_exp_id"] or "")
        if base is not None:
            return base
        # The most recent one created before it in its project: one created later is no baseline of it.
        earlier = []
        for other in self._experiments.values():
            if other is experiment:
                break
            if other["project_id"] == experiment["project_id"]:
                earlier.append(other)
        return earlier[-1] if earlier else None


def score_summaries(events: list[dict], comparison_events: list[dict]) -> dict[str, dict]:
    """``{name: ScoreSummary}`` for the scores of ``events`` against ``comparison_events``."""
    mine, theirs = _scores_by_case(events), _scores_by_case(comparison_events)
    summaries = {}
    for name in sorted(mine):
        values = [value for case in mine[name].values() for value in case]
        summary: dict = {"name": name, "score": fmean(values), "improvements": 0, "regressions": 0}
        if name in theirs:
            other_values = [value for case in theirs[name].values() for value in case]
            summary["diff"] = summary["score"] - fmean(other_values)
            for case, case_values in mine[name].items():
                if case in theirs[name]:
                    change = fmean(case_values) - fmean(theirs[name][case])
                    if change > 0:
                        summary["improvements"] += 1
                    elif change < 0:
                        summary["regressions"] += 1
        summaries[name] = summary
    return summaries


def _scores_by_case(events: list[dict]) -> dict[str, dict[str, list[float]]]:
    """{score name: {test case (its input as canonical JSON): [non-null values]}}."""
    found: dict[str, dict[str, list[float]]] = {}
    for event in events:
        case = json.dumps(event.get("input"), sort_keys=True, separators=(",", ":"))
        for name, value in (event.get("scores") or {}).items():
            if value is not None:
                found.setdefault(name, {}).setdefault(case, []).append(value)
    return found


def _unique(name: str, taken: set[str], *, first: int) -> str:
    number = first
    while f"{name}-{number}" in taken:
        number += 1
    return f"{name}-{number}"
