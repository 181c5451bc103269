"""Settings for a process a test starts: the host's own, pointed at the test's database.

The parent names its settings module in ``TEST_PROCESS_HOST_SETTINGS`` and its connection in
``TEST_PROCESS_DATABASE`` (JSON), so the child works under any host's settings, Sefaria's
included, which need not read ``DATABASE_URL`` as this repository's stand-in does.
"""

import importlib
import json
import os

_host = importlib.import_module(os.environ["TEST_PROCESS_HOST_SETTINGS"])
globals().update({name: value for name, value in vars(_host).items() if name.isupper()})

DATABASES = {"default": json.loads(os.environ["TEST_PROCESS_DATABASE"])}
