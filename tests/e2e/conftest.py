"""End-to-end: real ``manage.py`` processes against a sandbox in this process and a database of their own.

The database is a fresh SQLite file, or, when DATABASE_URL names PostgreSQL (as in CI), a fresh
database on that server, dropped afterwards.
"""

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from braintrust_ops.tests.secret_guard import assert_no_key
from braintrust_ops_sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY, PROJECT_ID, Sandbox

ROOT = Path(__file__).resolve().parents[2]
# One fixed "now" for the seed, so two sandboxes hold the same logs with the same ids.
SEED_NOW = datetime.now(UTC).replace(microsecond=0)


@contextmanager
def postgres(url: str, *, autocommit: bool = False):
    """A connection with whichever driver is installed: psycopg 3 here, psycopg2 in Sefaria's stack."""
    try:
        import psycopg as driver
    except ImportError:  # Sefaria pins psycopg2-binary
        import psycopg2 as driver
    connection = driver.connect(url)
    connection.autocommit = autocommit
    try:
        yield connection.cursor()
        if not autocommit:
            connection.commit()
    finally:
        connection.close()


@dataclass
class Database:
    url: str

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(("postgres://", "postgresql://"))

    def rows(self, sql: str) -> list[tuple]:
        if self.is_postgres:
            with postgres(self.url) as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        with sqlite3.connect(urlsplit(self.url).path) as connection:
            return connection.execute(sql).fetchall()

    def dump(self) -> str:
        """Every row of every app table as text: what a secret must never be found in."""
        tables = [name for (name,) in self.rows(_TABLES_SQL[self.is_postgres]) if name.startswith("braintrust_ops_")]
        return "\n".join(repr(row) for table in tables for row in self.rows(f"SELECT * FROM {table}"))


_TABLES_SQL = {
    True: "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    False: "SELECT name FROM sqlite_master WHERE type = 'table'",
}


@contextmanager
def database_factory(directory: Path) -> Iterator[Callable[[], Database]]:
    """A maker of empty databases of their own: SQLite files in ``directory``, or, when DATABASE_URL names
    PostgreSQL, databases on that server, dropped when the block ends."""
    configured = os.environ.get("DATABASE_URL", "")
    created = []

    def make() -> Database:
        if not configured.startswith(("postgres://", "postgresql://")):
            return Database(f"sqlite:///{directory / f'e2e-{uuid.uuid4().hex[:8]}.sqlite3'}")
        parts = urlsplit(configured)
        name = f"e2e_{uuid.uuid4().hex[:12]}"
        with postgres(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        created.append(name)
        return Database(urlunsplit(parts._replace(path=f"/{name}")))

    try:
        yield make
    finally:
        if created:
            admin = urlunsplit(urlsplit(configured)._replace(path="/postgres"))
            with postgres(admin, autocommit=True) as cursor:
                for name in created:
                    cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def new_database(tmp_path):
    """new_database() -> an empty database of its own."""
    with database_factory(tmp_path) as make:
        yield make


@dataclass
class Job:
    """Runs ``manage.py`` commands as the CronJob would: a fresh process, settings from the environment."""

    database: Database
    sandbox: Sandbox
    workdir: Path
    extra_env: dict = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    def env(self) -> dict:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("BRAINTRUST", "ANTHROPIC"))}
        env.update(
            {
                "DATABASE_URL": self.database.url,
                "BRAINTRUST_API_KEY": BRAINTRUST_KEY,
                "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
                "BRAINTRUST_PROJECT_ID": PROJECT_ID,
                "BRAINTRUST_API_URL": self.sandbox.url,
                "ANTHROPIC_BASE_URL": self.sandbox.url,
                "BRAINTRUST_OPS_HTTP_BACKOFF_SECONDS": "0.01",
                "BRAINTRUST_OPS_BACKUP_DIR": str(self.workdir),
                "LOG_FORMAT": "json",
                "PYTHONUNBUFFERED": "1",
                **self.extra_env,
            }
        )
        return env

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        process = self.start(*args)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        self.outputs.extend([stdout, stderr])
        assert_no_key(stdout + stderr, f"the output of manage.py {' '.join(args)}")
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def ok(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        return result


def job_factory(new_database: Callable[[], Database], directory: Path) -> Callable[..., Job]:
    """make(sandbox, **env) -> a Job on a fresh, migrated database; make(sandbox, database=job.database)
    shares another job's database."""
    count = 0

    def make(sandbox: Sandbox, *, database: Database | None = None, **extra_env) -> Job:
        nonlocal count
        count += 1
        workdir = directory / f"job-{count}"
        workdir.mkdir()
        job = Job(database=database or new_database(), sandbox=sandbox, workdir=workdir, extra_env=extra_env)
        if database is None:
            job.ok("migrate", "--no-input", "-v", "0")
        return job

    return make


@pytest.fixture
def make_job(new_database, tmp_path):
    return job_factory(new_database, tmp_path)


@pytest.fixture
def seeded_sandbox():
    with Sandbox(seed=True, now=SEED_NOW) as running:
        yield running
