"""Another run of a command, as far as a test needs one: holding its lock."""

import threading
from contextlib import contextmanager

from django.db import connection

from braintrust_ops.locks import command_lock


@contextmanager
def lock_held_by_another_run(name: str):
    """Hold the command lock ``name`` on another thread (its own database connection) for the block,
    as a second run of the command would."""
    holding, release = threading.Event(), threading.Event()

    def hold():
        with command_lock(name):
            holding.set()
            release.wait(30)
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(30)
    try:
        yield
    finally:
        release.set()
        thread.join()
