"""The host project's settings plus this app, for running the sandbox where the host's settings leave it
out, as production's do: ``DJANGO_SETTINGS_MODULE=braintrust_ops_sandbox.dev_settings python manage.py
braintrust_sandbox`` in Sefaria-Project, say. The host's settings module is named by
``BRAINTRUST_OPS_SANDBOX_HOST_SETTINGS`` (default ``sefaria.settings``).
"""

import importlib
import os

_host = importlib.import_module(os.environ.get("BRAINTRUST_OPS_SANDBOX_HOST_SETTINGS", "sefaria.settings"))
globals().update({name: value for name, value in vars(_host).items() if name.isupper()})

if "braintrust_ops_sandbox" not in _host.INSTALLED_APPS:
    INSTALLED_APPS = [*_host.INSTALLED_APPS, "braintrust_ops_sandbox"]
