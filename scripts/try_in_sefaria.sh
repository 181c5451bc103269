#!/usr/bin/env bash
# Applies the README's "Into the real Sefaria project" checklist to a Sefaria-Project checkout, step by
# step as the README words it, then proves the result: pip check, the app's commands without MongoDB,
# the migrations, Sefaria's own pytest command on the app's tests (Python 3.12, Sefaria's pins,
# PostgreSQL through psycopg2), the chart's helm lint, the sandbox.
#
#   scripts/try_in_sefaria.sh PATH      PATH: a Sefaria-Project checkout (it is changed as a developer would)
#
# What it stands in for, and says so at the end: MongoDB (none runs: nothing of the app's needs it; the
# host's full `manage.py check` does, so only the app's checks run), the three requirements that live
# only on GitHub (left out: nothing the app imports needs them), the deployment's local_settings.py
# (Sefaria's example, with a throwaway PostgreSQL as its database). Exits non-zero on the first failure.
set -euo pipefail

SEFARIA=$(cd "${1:?usage: scripts/try_in_sefaria.sh PATH-TO-Sefaria-Project}" && pwd)
HERE=$(cd "$(dirname "$0")/.." && pwd)
for file in sefaria/settings.py sefaria/local_settings_example.py requirements.txt pytest.ini manage.py \
  helm-chart/sefaria/templates/configmap/local-settings-file.yaml build/ci/createJobFromRollout.sh; do
  [ -f "$SEFARIA/$file" ] || { echo "Not a Sefaria-Project checkout: $SEFARIA/$file is missing." >&2; exit 2; }
done
PY312=${PY312:-$(ls -d /root/.pyenv/versions/3.12.*/bin/python 2>/dev/null | sort -V | tail -n 1 || true)}
PY312=${PY312:-$(command -v python3.12 || true)}
[ -n "$PY312" ] || { echo "Python 3.12 (Sefaria's) is needed: set PY312 to its interpreter." >&2; exit 2; }
VENV=${TRY_VENV:-$SEFARIA/.venv-braintrust-ops}
MARK="# braintrust_ops"
step() { printf '\n== %s\n' "$*"; }
# Appends a block to a file once: a second run of the script changes nothing.
append_once() { grep -qF "$MARK" "$1" || printf '\n%s\n%s\n' "$MARK" "$2" >>"$1"; }

step "1. Code: braintrust_ops/ and braintrust_ops_sandbox/ at the repository root"
for package in braintrust_ops braintrust_ops_sandbox; do
  rm -rf "${SEFARIA:?}/$package"
  (cd "$HERE" && git ls-files -z "$package" | xargs -0 cp --parents -t "$SEFARIA")
done

step "2. Requirements: our lines in Sefaria's requirements.txt; installed beside every pin"
LEFT_OUT="elasticsearch-dsl, sefaria-llm-interface, ne_span"
append_once "$SEFARIA/requirements.txt" "$(grep -hv '^\s*#' "$HERE/requirements.txt" "$HERE/requirements-test.txt" | grep -v '^\s*-r' | grep .)"
[ -x "$VENV/bin/python" ] || "$PY312" -m venv "$VENV"
# Sefaria's three git+https requirements (GitHub only: this machine reaches package indexes alone).
grep -v 'git+https' "$SEFARIA/requirements.txt" >"$VENV/requirements-without-git.txt"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$VENV/requirements-without-git.txt" pytest-timeout
"$VENV/bin/pip" check
# Not one of Sefaria's pins moved: each installed version is the one its requirements.txt (without our block) names.
sed "/^$MARK\$/,\$d" "$VENV/requirements-without-git.txt" >"$VENV/sefaria-pins.txt"
SEFARIA_REQUIREMENTS="$VENV/sefaria-pins.txt" "$VENV/bin/python" "$HERE/ci/check_pins.py"

step "3. Settings: the app in INSTALLED_APPS; BRAINTRUST_OPS in the local settings (guarded)"
append_once "$SEFARIA/sefaria/settings.py" 'INSTALLED_APPS += ("braintrust_ops",)'
LOCAL_LINES=$("$VENV/bin/python" -c 'import sys; sys.path.insert(0, sys.argv[1]); from tests.sefaria_layout import LOCAL_SETTINGS_LINES as l; print(l, end="")' "$HERE")
append_once "$SEFARIA/sefaria/local_settings_example.py" "$LOCAL_LINES"
"$VENV/bin/python" - "$SEFARIA/helm-chart/sefaria/templates/configmap/local-settings-file.yaml" "$LOCAL_LINES" "$MARK" <<'PY'
import sys
from pathlib import Path
path, lines, mark = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
text = path.read_text()
if mark not in text:
    # The template holds local_settings.py as a block scalar indented four spaces.
    path.write_text(text.rstrip("\n") + "\n" + "".join(f"    {line}\n" for line in [mark, *lines.splitlines()]))
PY
# The deployment's local_settings.py: Sefaria's example, its database a throwaway PostgreSQL.
source "$HERE/ci/postgres.sh"
start_postgres
cp "$SEFARIA/sefaria/local_settings_example.py" "$SEFARIA/sefaria/local_settings.py"
cat >>"$SEFARIA/sefaria/local_settings.py" <<PY

DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "sefaria", "USER": "postgres",
                         "HOST": "127.0.0.1", "PORT": "$PGPORT"}}
PY
runuser -u postgres -- "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" sefaria
cd "$SEFARIA"
PY_SEFARIA="$VENV/bin/python"
# Proof that nothing below needs MongoDB: none listens where Sefaria's settings look for it.
if "$PY_SEFARIA" -c 'import socket; socket.create_connection(("localhost", 27017), timeout=1)' 2>/dev/null; then
  echo "A MongoDB answers on localhost:27017: stop it, so this run shows the app does without it." >&2
  exit 1
fi
echo "No MongoDB on localhost:27017."
# The local-settings lines in an image built without the app: they must not raise.
"$PY_SEFARIA" -c 'import sys; sys.modules["braintrust_ops"] = None; exec(sys.argv[1]); assert "BRAINTRUST_OPS" not in dir()' \
  "$LOCAL_LINES"
echo "The local-settings lines leave an image without the app alone."

step "4. Database: the app's migrations (the release step's migrate)"
# --skip-checks: migrate runs every system check first, and Sefaria's need MongoDB.
timeout 120 "$PY_SEFARIA" manage.py migrate braintrust_ops --skip-checks --no-input
timeout 60 "$PY_SEFARIA" manage.py makemigrations braintrust_ops --check --dry-run --skip-checks

step "The app's checks and commands without MongoDB"
timeout 60 "$PY_SEFARIA" manage.py check --tag models braintrust_ops
for command in tag_logs push_to_datasets backup_logs prune_braintrust_ops; do
  timeout 60 "$PY_SEFARIA" manage.py "$command" --help >/dev/null
  echo "manage.py $command --help: ok"
done
timeout 60 "$PY_SEFARIA" manage.py prune_braintrust_ops --dry-run

step "5. Helm: the templates in Sefaria's chart, helm lint --strict with its CI values files"
bash "$HERE/scripts/lint_in_sefaria_chart.sh" "$SEFARIA"

step "6. Tests: the python_files lines; Sefaria's pytest command on the app's directories"
"$PY_SEFARIA" - <<'PY'
from pathlib import Path
ini = Path("pytest.ini")
text = ini.read_text()
lines = ["braintrust_ops/tests/test_*.py", "braintrust_ops/tests/*/test_*.py", "braintrust_ops_sandbox/tests/test_*.py"]
if lines[0] not in text:
    head, tail = text.split("python_files =\n", 1)
    ini.write_text(head + "python_files =\n" + "".join(f"    {line}\n" for line in lines) + tail)
job = Path("build/ci/createJobFromRollout.sh")
text = job.read_text()
if "./braintrust_ops" not in text:
    job.write_text(text.replace("./sefaria ./sso ./reader", "./sefaria ./sso ./reader ./braintrust_ops ./braintrust_ops_sandbox"))
PY
grep -c braintrust_ops pytest.ini build/ci/createJobFromRollout.sh
# Sefaria's CI command (build/ci/createJobFromRollout.sh), on the app's directories: Sefaria's own need MongoDB.
timeout 1800 "$VENV/bin/pytest" -q --timeout=600 --reuse-db -m "not deep and not failing" -p no:cacheprovider \
  ./braintrust_ops ./braintrust_ops_sandbox
# No test wrote into the host's own database: the app's tables there are the migrations' alone, and empty.
"$PY_SEFARIA" - <<'PY'
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "sefaria.settings"
import django
django.setup()
from django.apps import apps
rows = {model.__name__: model.objects.count() for model in apps.get_app_config("braintrust_ops").get_models()}
assert not any(rows.values()), f"Tests wrote into Sefaria's own database: {rows}"
print("Sefaria's own database: the app's tables are empty; every test wrote to its test database.")
PY

step "8. The sandbox under Sefaria's settings, and tag_logs against it"
SANDBOX_LOG=$(mktemp)
DJANGO_SETTINGS_MODULE=braintrust_ops_sandbox.dev_settings "$PY_SEFARIA" -u manage.py braintrust_sandbox --port 0 \
  >"$SANDBOX_LOG" 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null || true; stop_postgres' EXIT
for _ in $(seq 60); do grep -q "http://127.0.0.1:" "$SANDBOX_LOG" && break; sleep 1; done
SANDBOX_URL=$(grep -o "http://127.0.0.1:[0-9]*" "$SANDBOX_LOG" | head -n 1)
[ -n "$SANDBOX_URL" ] || { cat "$SANDBOX_LOG" >&2; echo "The sandbox did not start." >&2; exit 1; }
echo "Sandbox at $SANDBOX_URL"
# The banner's export lines, as a developer would paste them (fake keys: the sandbox takes no other).
eval "$(grep '^  export ' "$SANDBOX_LOG")"
timeout 300 "$PY_SEFARIA" manage.py tag_logs --push
kill "$SANDBOX_PID"

printf '\n== Stood in for\n'
echo "- MongoDB: none ran. The app's commands, checks, migrations and tests did without it; Sefaria's full"
echo "  'manage.py check' and its own test folders need it, and were not run."
echo "- Left out of requirements.txt (on GitHub only, not on a package index): $LEFT_OUT."
echo "- local_settings.py: Sefaria's example with a throwaway PostgreSQL (psycopg2) as its database."
echo "try_in_sefaria: every step passed."
