"""The host's system checks reach its models, and its models connect to MongoDB when imported: every
``manage.py`` command that runs all checks fails without MongoDB (as Sefaria's do, through
``sso/adapters.py -> sefaria/model -> sefaria/system/database.py``)."""

from django.core import checks


@checks.register(checks.Tags.admin)  # run by `manage.py check`, as the host's admin checks are
def host_models_load(app_configs, **kwargs):
    import sefaria.system.database  # noqa: F401

    return []
