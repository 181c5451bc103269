"""Stand-in for the host's ``sefaria/system/database.py``, which connects to MongoDB when it is imported.

Connection refused here fails at once (the real client waits 30 s, then fails the same way).
"""

import socket

from django.conf import settings

with socket.create_connection((settings.MONGO_HOST, settings.MONGO_PORT), timeout=2):
    pass
