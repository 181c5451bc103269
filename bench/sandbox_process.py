"""Run the sandbox in its own process, so a benchmark measures only the command under test."""

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent

_SERVER = """
import json, logging, signal, sys, threading
from datetime import datetime, timedelta, timezone
from braintrust_ops_sandbox import Sandbox
# On stdin, not argv: a 40 KB log's fields would come close to Linux's 128 KiB limit on one argument.
spec = json.loads(sys.stdin.read())
if spec.get("response_log"):
    # One line per response, with its status ("POST /v1/dataset/<id>/insert HTTP/1.1" 413 -): what the
    # counters under /_sandbox/ do not say (a 413, a 400).
    handler = logging.FileHandler(spec["response_log"])
    handler.setFormatter(logging.Formatter("%(message)s"))
    server_logger = logging.getLogger("braintrust_ops_sandbox.server")
    server_logger.addHandler(handler)
    server_logger.setLevel(logging.DEBUG)
sandbox = Sandbox(seed=spec.get("seed", False), port=spec["port"])
hours_back = spec.get("hours_back", 12)
start = datetime.now(timezone.utc) - timedelta(hours=hours_back)
# 10 ms apart by default; "spread": evenly over the whole window.
step = timedelta(hours=hours_back) / max(spec["logs"], 1) if spec.get("spread") else timedelta(milliseconds=10)
fields = spec.get("log_fields") or {
    "input": {"messages": [{"role": "user", "content": "Where does the Talmud discuss lighting Shabbat candles? " * 3}]},
    "output": "The Talmud discusses it in Shabbat 21b-23b. " * 20,
}
if spec.get("logs"):
    sandbox.state.add_logs(spec["logs"], created=lambda i: start + step * i, **fields)
for name, description in spec.get("datasets", []):
    sandbox.state.add_dataset(name, description)
for name in spec.get("tags", []):
    sandbox.state.add_tag(name, f"{name} dataset-tagging")
sandbox.claude_latency = spec.get("claude_latency", 0.0)
sandbox.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
sandbox.stop()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def sandbox_process(**spec):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        process.stdin.write(json.dumps({**spec, "port": port}))
        process.stdin.close()
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the sandbox did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def command_env(url: str, database: str) -> dict:
    from braintrust_ops_sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY, PROJECT_ID

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRAINTRUST", "ANTHROPIC"))}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "BRAINTRUST_API_KEY": BRAINTRUST_KEY,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "BRAINTRUST_PROJECT_ID": PROJECT_ID,
            "BRAINTRUST_API_URL": url,
            "ANTHROPIC_BASE_URL": url,
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def fresh_database(env_extra: dict | None = None) -> str:
    database = tempfile.mktemp(suffix=".sqlite3", prefix="bench-")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", **(env_extra or {})}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    return database


def run_measured(args: list[str], env: dict) -> tuple[float, float, str]:
    """Run a manage.py command in a child process; return (seconds, peak RSS in MB, stdout)."""
    code = (
        "import resource, runpy, sys, time;"
        "sys.argv = ['manage.py'] + sys.argv[1:];"
        "started = time.perf_counter();"
        "exec(\"try:\\n runpy.run_path('manage.py', run_name='__main__')\\nexcept SystemExit as e:\\n code = e.code\");"
        "elapsed = time.perf_counter() - started;"
        "print(f'BENCH {elapsed:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}', file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    line = [entry for entry in result.stderr.splitlines() if entry.startswith("BENCH ")]
    if result.returncode != 0 or not line:
        raise RuntimeError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    _, seconds, rss = line[-1].split()
    return float(seconds), float(rss), result.stdout


def control(url: str, method: str, path: str, body: dict | None = None) -> dict:
    """One call to the sandbox's control API (``/_sandbox/<path>``)."""
    response = requests.request(method, f"{url}/_sandbox/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def last_run(database: str, command: str) -> dict:
    """The newest run record of ``command``: its outcome and counters (``elapsed_seconds`` is the
    command's own time, without the process's start-up)."""
    with sqlite3.connect(database) as connection:
        outcome, counters = connection.execute(
            "SELECT outcome, counters FROM braintrust_ops_commandrun WHERE command = ? ORDER BY id DESC", (command,)
        ).fetchone()
    return {"outcome": outcome, **json.loads(counters)}


_RESPONSE_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def response_statuses(response_log: str, path_suffix: str) -> Counter:
    """Status codes the sandbox answered to requests whose path ends with ``path_suffix``, from the
    ``response_log`` a sandbox process was started with."""
    statuses: Counter = Counter()
    for line in Path(response_log).read_text().splitlines():
        found = _RESPONSE_LINE.search(line)
        if found and found["path"].split("?")[0].endswith(path_suffix):
            statuses[int(found["status"])] += 1
    return statuses


def run_and_write(main, results: Path) -> None:
    """Run a benchmark's ``main``, add its own duration, and write its figures to ``results``."""
    import time

    started = time.perf_counter()
    figures = main()
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {results.relative_to(ROOT)}")
