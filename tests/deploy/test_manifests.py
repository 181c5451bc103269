"""The Kubernetes manifests in deploy/: they parse, run real commands with valid options, and keep the job rules."""

import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands, load_command_class

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CRONJOBS = sorted(
    (path.name, document)
    for path in DEPLOY.glob("*.yaml")
    for document in yaml.safe_load_all(path.read_text())
    if document and document["kind"] == "CronJob"
)
SECRET_VARIABLES = {"BRAINTRUST_API_KEY", "ANTHROPIC_API_KEY", "DATABASE_URL", "BRAINTRUST_PROJECT_ID"}


def _pod(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _containers(cronjob: dict) -> list[dict]:
    pod = _pod(cronjob)
    return pod.get("initContainers", []) + pod["containers"]


def _manage_py_invocations(container: dict) -> list[list[str]]:
    """Every ``python manage.py ...`` the container runs, from its exec form or its ``sh -c`` script."""
    words = container.get("command", []) + container.get("args", [])
    if words[:2] == ["/bin/sh", "-c"]:
        scripts = words[2:]
        invocations = [shlex.split(part) for script in scripts for part in script.split("&&")]
    else:
        invocations = [words]
    return [words[2:] for words in invocations if words[:2] == ["python", "manage.py"]]


def test_deploy_holds_the_daily_and_the_weekly_cronjob():
    schedules = {document["metadata"]["name"]: document["spec"]["schedule"] for _, document in CRONJOBS}
    assert schedules == {"braintrust-ops-daily": "0 2 * * *", "braintrust-ops-weekly-backup": "0 1 * * 0"}


@pytest.mark.parametrize("name, cronjob", CRONJOBS, ids=[name for name, _ in CRONJOBS])
def test_cronjob_never_overlaps_and_has_deadlines_and_a_retry_bound(name, cronjob):
    spec = cronjob["spec"]
    job = spec["jobTemplate"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0 and job["activeDeadlineSeconds"] > 0
    assert 0 <= job["backoffLimit"] <= 2
    assert _pod(cronjob)["restartPolicy"] == "Never"


@pytest.mark.parametrize("name, cronjob", CRONJOBS, ids=[name for name, _ in CRONJOBS])
def test_every_container_has_resource_requests_and_limits(name, cronjob):
    for container in _containers(cronjob):
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() and {"cpu", "memory"} <= resources["limits"].keys()


@pytest.mark.parametrize("name, cronjob", CRONJOBS, ids=[name for name, _ in CRONJOBS])
def test_commands_log_json_and_take_secrets_only_from_kubernetes_secrets(name, cronjob):
    for container in _containers(cronjob):
        if not _manage_py_invocations(container):
            continue
        env = {variable["name"]: variable for variable in container["env"]}
        assert env["LOG_FORMAT"]["value"] == "json"
        for variable in SECRET_VARIABLES & env.keys():
            assert "value" not in env[variable] and env[variable]["valueFrom"]["secretKeyRef"]["name"]


@pytest.mark.parametrize("name, cronjob", CRONJOBS, ids=[name for name, _ in CRONJOBS])
def test_every_command_run_is_a_real_management_command_with_valid_options(name, cronjob):
    invocations = [words for container in _containers(cronjob) for words in _manage_py_invocations(container)]
    assert invocations, f"{name} runs no manage.py command"
    commands = get_commands()
    for command_name, *options in invocations:
        assert commands.get(command_name) == "braintrust_ops", f"{command_name} is not a braintrust_ops command"
        parser = load_command_class("braintrust_ops", command_name).create_parser("manage.py", command_name)
        parser.parse_args(options)  # raises CommandError on an unknown or malformed option


def test_the_checker_rejects_an_option_the_command_does_not_have():
    from django.core.management.base import CommandError

    parser = load_command_class("braintrust_ops", "tag_logs").create_parser("manage.py", "tag_logs")
    with pytest.raises(CommandError):
        parser.parse_args(["--no-such-option"])


@pytest.mark.parametrize("name, cronjob", CRONJOBS, ids=[name for name, _ in CRONJOBS])
def test_signals_reach_the_commands_within_a_grace_period_that_fits_their_own(name, cronjob):
    """Kubernetes sends SIGTERM to each container's first process: a shell there would swallow it."""
    from braintrust_ops.conf import OpsConfig

    pod = _pod(cronjob)
    assert pod["terminationGracePeriodSeconds"] >= OpsConfig().shutdown_grace_seconds + 5
    for container in _containers(cronjob):
        command = container.get("command", [])
        if "manage.py" in command:
            assert command[0] == "python", f"{container['name']} runs manage.py behind {command[0]}"


@pytest.mark.parametrize("name, cronjob", CRONJOBS, ids=[name for name, _ in CRONJOBS])
def test_each_commands_sentry_monitor_expects_the_schedule_of_the_cronjob_that_runs_it(name, cronjob):
    from braintrust_ops.monitoring import SCHEDULES

    for container in _containers(cronjob):
        for words in _manage_py_invocations(container):
            assert SCHEDULES[words[0]] == cronjob["spec"]["schedule"], f"{words[0]} in {name}"
