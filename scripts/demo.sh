#!/usr/bin/env bash
# make demo: the nightly and weekly jobs end to end against the local sandbox, on a fresh SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DEMO_DIR=$(mktemp -d /tmp/braintrust-ops-demo.XXXXXX)
export DATABASE_URL="sqlite:///$DEMO_DIR/demo.sqlite3"
# The development settings: production's, plus the sandbox app (its braintrust_sandbox command).
export DJANGO_SETTINGS_MODULE=sefaria.settings_dev
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The sandbox's own fake keys and project; nothing here talks to the internet.
eval "$($PY -c 'from braintrust_ops_sandbox import BRAINTRUST_KEY, ANTHROPIC_KEY, PROJECT_ID
print(f"export BRAINTRUST_API_KEY={BRAINTRUST_KEY} ANTHROPIC_API_KEY={ANTHROPIC_KEY} BRAINTRUST_PROJECT_ID={PROJECT_ID}")')"
# Keep the terminal to the reports; the CronJob keeps INFO events as JSON lines (LOG_FORMAT=json).
export LOG_LEVEL=WARNING
export BRAINTRUST_API_URL="http://127.0.0.1:$PORT" ANTHROPIC_BASE_URL="http://127.0.0.1:$PORT"
# Labels go onto the source logs' tags in Braintrust too, where people read the logs.
export BRAINTRUST_OPS_WRITE_BACK=true

$PY manage.py migrate --no-input -v 0
$PY manage.py braintrust_sandbox --port "$PORT" >"$DEMO_DIR/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null || true; wait $SANDBOX_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  $PY -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null && break
  sleep 0.1
done

echo "== Daily job: tag_logs --push (dry run first)"
$PY manage.py tag_logs --dry-run
$PY manage.py tag_logs --push
$PY manage.py prune_braintrust_ops
echo
echo "== Running it again changes nothing (exactly once): the logs written to come back, and cost nothing"
$PY manage.py tag_logs --push
$PY manage.py prune_braintrust_ops
echo
echo "== A reviewer corrects a label in Braintrust; the next night records it and the datasets follow"
# In Braintrust's log view a reviewer takes 'halacha' off one log, puts 'sources' on it and signs it; the
# sandbox's control API does what the UI would (the log gets a new _xact_id).
$PY - "$BRAINTRUST_API_URL" <<'PYTHON'
import sys, requests
base = sys.argv[1]
logs = requests.get(f"{base}/_sandbox/logs", timeout=30).json()["logs"]
# A halacha log in no Sources dataset yet, so the correction shows both ways: out of Halacha, into Sources.
log = next(log for log in reversed(logs) if {"halacha"} == set(log.get("tags") or []) & {"halacha", "hebrew", "sources"})
tags = [tag for tag in log["tags"] if tag != "halacha"] + ["sources"]
requests.put(f"{base}/_sandbox/logs/{log['id']}/tags", json={"tags": tags, "reviewed_by": "demo reviewer"}, timeout=10)
print(f"Reviewer: log {log['id']}: {', '.join(log['tags'])} -> {', '.join(tags)}")
PYTHON
$PY manage.py tag_logs --push
echo
echo "== evaluate_tagging: the current labeller, then a candidate model, as Braintrust experiments"
$PY manage.py evaluate_tagging --dry-run
$PY manage.py evaluate_tagging --name "current labeller"
$PY manage.py evaluate_tagging --model claude-sonnet-4-5 --name "candidate: claude-sonnet-4-5"
echo
echo "== Batch mode: the same window labelled again in Message Batches, at half the price"
$PY manage.py tag_logs --hours 48 --retag --batch --dry-run
$PY manage.py tag_logs --hours 48 --retag --batch --wait 1
echo
echo "== Weekly job: backup_logs"
$PY manage.py backup_logs --output "$DEMO_DIR/logs_backup.csv"
echo
echo "First lines of the backup:"
head -c 600 "$DEMO_DIR/logs_backup.csv"; echo " ..."
echo
echo "Demo files (database, backup, sandbox log) are in $DEMO_DIR"
