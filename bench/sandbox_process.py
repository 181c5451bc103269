"""Run the sandbox in its own process, so a benchmark measures only the command under test."""

import json
import os
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SERVER = """
import json, signal, sys, threading
from datetime import datetime, timedelta, timezone
from braintrust_ops.sandbox import Sandbox
spec = json.loads(sys.argv[1])
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
        [sys.executable, "-c", _SERVER, json.dumps({**spec, "port": port})],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the sandbox did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def command_env(url: str, database: str) -> dict:
    from braintrust_ops.sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY, PROJECT_ID

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
