"""The host's template context processors load its models, which connect to MongoDB when imported
(Sefaria's ``sefaria/system/context_processors.py`` imports ``sefaria.model``): any page the host renders,
the admin's included, needs MongoDB."""

import sefaria.system.database  # noqa: F401


def global_settings(request):
    return {}
