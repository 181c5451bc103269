"""Another run of a command, as far as a test needs one: holding its locks, in a thread or a process."""

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from django.db import connection

from braintrust_ops.locks import command_lock
from braintrust_ops.tests.paths import HOST_ROOT


@contextmanager
def held_by_another_run(enter: Callable[[], AbstractContextManager]) -> Iterator:
    """Enter ``enter()`` on another thread (its own database connection) and hold it for the block, as a
    second run would; yield what it yields (``run_liveness`` yields the key). If entering raises (e.g.
    CommandLocked), the error is raised here.

        with held_by_another_run(lambda: tag_logs_lock(Shard(0, 2))): ...
        with held_by_another_run(run_liveness) as key: ...
    """
    holding, release = threading.Event(), threading.Event()
    outcome = {}

    def hold():
        try:
            with enter() as value:
                outcome["value"] = value
                holding.set()
                release.wait(30)
        except BaseException as exc:  # handed to the test's thread, which raises it
            outcome.setdefault("error", exc)
        finally:
            holding.set()
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(30)
    try:
        if "error" in outcome:
            raise outcome["error"]
        yield outcome["value"]
    finally:
        release.set()
        thread.join()


def lock_held_by_another_run(name: str) -> AbstractContextManager:
    """Hold the command lock ``name`` on another thread for the block, as a second run of the command would."""
    return held_by_another_run(lambda: command_lock(name))


@contextmanager
def held_by_another_process(expression: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run a Python process that enters ``expression`` (a context manager; ``locks`` and ``Shard`` in scope)
    and holds it until killed; yield the process and what the context yielded, as text. Kill it
    (``process.kill()``, SIGKILL) to see what the server or the kernel releases for a dead run.

    On SQLite the test database must be a file (see ``sqlite_file_for_other_processes``): the lock
    files of an in-memory database belong to one process."""
    code = textwrap.dedent(f"""
        import time, django
        django.setup()
        from braintrust_ops import locks
        from braintrust_ops.shards import Shard
        with {expression} as value:
            print(f"holding {{value}}", flush=True)
            time.sleep(120)
    """)
    root = HOST_ROOT
    environment = {**os.environ, "PYTHONPATH": str(root), **process_settings_environment()}
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=root,
        env=environment,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = process.stdout.readline()
        if not line.startswith("holding "):
            process.wait(30)
            raise AssertionError(f"the other process did not take {expression}: {process.stderr.read()}")
        yield process, line.removeprefix("holding ").strip()
    finally:
        process.kill()
        process.wait(30)
        process.stdout.close()
        process.stderr.close()


def process_settings_environment(database: dict | None = None) -> dict[str, str]:
    """The environment that gives another process the host's settings and this test's database, or
    ``database`` (process_settings.py): never the host's own, whatever its settings read (Sefaria's do
    not read ``DATABASE_URL``)."""
    if database is None:
        database = {
            key: connection.settings_dict[key] for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")
        }
        database["OPTIONS"] = connection.settings_dict.get("OPTIONS", {})
    return {
        "DJANGO_SETTINGS_MODULE": "braintrust_ops.tests.process_settings",
        "TEST_PROCESS_HOST_SETTINGS": os.environ["DJANGO_SETTINGS_MODULE"],
        "TEST_PROCESS_DATABASE": json.dumps(database),
    }


def sqlite_file_for_other_processes(monkeypatch, directory: Path) -> None:
    """On SQLite, point the lock files at ``directory`` (as a file database there would), so that another
    process finds them. Only the lock paths read the name: the open test connection stays as it is."""
    if connection.vendor == "sqlite":
        monkeypatch.setitem(connection.settings_dict, "NAME", str(directory / "db.sqlite3"))
