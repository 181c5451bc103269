"""The commands run without the host's system checks, and with this app's own model checks.

In Sefaria-Project the host's checks import its models, which connect to MongoDB at import: a CronJob pod
has no MongoDB, so a command that ran them would wait, then fail (../shared/reference/sefaria-host.md).
"""

import pytest
from django.apps import apps
from django.core import checks
from django.core.management import load_command_class
from django.core.management.base import SystemCheckError


@pytest.fixture
def registered_check():
    """Register a check for the test's length (Django keeps them in a set on the global registry)."""
    added = []

    def register(check, *tags):
        checks.register(check, *tags)
        added.append(check)

    yield register
    for check in added:
        checks.registry.registry.registered_checks.discard(check)


def _run_as_manage_py(command: str, *args: str) -> None:
    """As ``manage.py`` runs a command (checks and all); ``call_command`` would skip the checks."""
    load_command_class("braintrust_ops", command).run_from_argv(["manage.py", command, *args])


def _host_service_down(app_configs, **kwargs):
    return [checks.Error("the host's MongoDB is unreachable", id="host.E001")]


def _host_models_check(app_configs, **kwargs):
    """A host's model check, as Django's own are: it looks only at the apps it is asked about."""
    host = [config for config in app_configs or apps.get_app_configs() if config.label != "braintrust_ops"]
    return [checks.Error("a host model is broken", id="host.E002")] if host else []


def _app_model_broken(app_configs, **kwargs):
    ours = [config for config in app_configs or apps.get_app_configs() if config.label == "braintrust_ops"]
    return [checks.Error("TaggedLog is broken", id="braintrust_ops.E999")] if ours else []


@pytest.mark.django_db(transaction=True)  # run_from_argv closes every connection as it ends
@pytest.mark.parametrize(
    "check, tags",
    [
        (_host_service_down, ()),
        (_host_service_down, (checks.Tags.database,)),
        (_host_service_down, (checks.Tags.urls,)),
        (_host_models_check, (checks.Tags.models,)),
    ],
)
def test_a_failing_host_check_does_not_stop_the_app_commands(registered_check, capsys, check, tags):
    registered_check(check, *tags)
    assert check(app_configs=None)  # what `manage.py check` (every app) would stop on
    _run_as_manage_py("prune_braintrust_ops", "--dry-run")
    assert "[dry run] Would delete 0 tagged logs" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)  # run_from_argv closes every connection as it ends
def test_a_broken_model_of_the_app_stops_its_commands_before_they_run(registered_check, run_command, capsys):
    registered_check(_app_model_broken, checks.Tags.models)
    with pytest.raises(SystemCheckError, match="TaggedLog is broken"):
        run_command("prune_braintrust_ops", "--dry-run")
    with pytest.raises(SystemExit) as exited:
        _run_as_manage_py("prune_braintrust_ops", "--dry-run")
    assert exited.value.code == 1 and "TaggedLog is broken" in capsys.readouterr().err
