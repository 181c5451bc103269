#!/usr/bin/env bash
# Does Sefaria-Project's real chart accept braintrust_ops' Helm templates?
#
#   scripts/lint_in_sefaria_chart.sh SEFARIA_CHECKOUT_PATH
#
# SEFARIA_CHECKOUT_PATH: a Sefaria-Project checkout or export holding helm-chart/sefaria and build/ci.
# In a temporary directory (the checkout is only read), it copies the chart, adds our templates to its
# templates/cronjob/, and for each of build/ci/{sandbox,integration,preprod}-values.yaml runs
# `helm lint --strict` with the jobs off, on with one shard and on with four, then validates what our
# templates render against the Kubernetes schemas (1.30 and the newest kubernetes-validate knows) and
# checks the CronJobs' names. Our values snippet is merged as Helm merges values files, over the chart's
# values.yaml and under the CI file; sandbox and integration get what their deploy scripts set before
# `helm upgrade` (build/ci/{sandbox,integration}-helm-deploy.sh: deployEnv, the image tag, and for
# integration secrets.localSettings.data.SEFARIA_DB). It also checks that no helper we define, and no
# file we add, takes a name the chart already uses.
# Exits 0 when every check passes, 1 when one fails (at once when a name is taken), 2 when it cannot
# run. helm, kubernetes-validate and python (with PyYAML) come from this repository's venv (make venv);
# HELM, KUBERNETES_VALIDATE and PYTHON override them.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
HELM=${HELM:-$REPO/.venv/bin/helm}
KUBERNETES_VALIDATE=${KUBERNETES_VALIDATE:-$REPO/.venv/bin/kubernetes-validate}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
TEMPLATES=$REPO/deploy/helm/templates/cronjob
VALUES=$REPO/deploy/helm/values-braintrust.yaml

if [ $# -ne 1 ]; then
  echo "usage: $0 SEFARIA_CHECKOUT_PATH" >&2
  exit 2
fi
SEFARIA=$(cd "$1" 2>/dev/null && pwd) || { echo "$1: no such directory" >&2; exit 2; }
for needed in "$SEFARIA/helm-chart/sefaria/Chart.yaml" "$SEFARIA/build/ci/sandbox-values.yaml"; do
  [ -f "$needed" ] || { echo "$1 is not a Sefaria-Project checkout: no ${needed#"$SEFARIA"/}" >&2; exit 2; }
done
for tool in "$HELM" "$KUBERNETES_VALIDATE" "$PYTHON"; do
  [ -x "$tool" ] || { echo "$tool is missing: run make venv" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lint-in-sefaria-chart.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
CHART=$WORK/sefaria
cp -R "$SEFARIA/helm-chart/sefaria" "$CHART"

FAILED=0
pass() { printf 'ok    %s\n' "$1"; }
fail() {
  printf 'FAIL  %s\n' "$1"
  [ -s "$WORK/out" ] && sed 's/^/      /' "$WORK/out" | tail -n 40
  FAILED=1
}

# Helm keeps the last template defined under a name, silently: one of ours named like one of the
# chart's would replace it. And a file of ours named like one of the chart's would overwrite it.
defines() { grep -rhoE '\{\{-?[[:space:]]*define[[:space:]]+"[^"]+"' "$@" | sed -E 's/.*"([^"]+)"/\1/' | sort -u; }
: >"$WORK/out"
comm -12 <(defines "$TEMPLATES") <(defines "$CHART/templates") >"$WORK/out"
if [ -s "$WORK/out" ]; then fail "our helpers' names are free in the chart"; else pass "our helpers' names are free in the chart"; fi
: >"$WORK/out"
for template in "$TEMPLATES"/*; do
  [ ! -e "$CHART/templates/cronjob/$(basename "$template")" ] || echo "templates/cronjob/$(basename "$template")" >>"$WORK/out"
done
if [ -s "$WORK/out" ]; then fail "our template files' names are free in the chart"; else pass "our template files' names are free in the chart"; fi
if [ "$FAILED" != 0 ]; then
  echo "Stopped: with a name taken, Helm would render one of the two, and the checks below would not say which."
  exit 1
fi
mkdir -p "$CHART/templates/cronjob"
cp "$TEMPLATES"/* "$CHART/templates/cronjob/"

COMMIT=0123abc  # what the deploy scripts take from `git rev-parse --short HEAD`
LATEST=$("$PYTHON" -c 'import kubernetes_validate; print(kubernetes_validate.latest_version())')

for ci in sandbox integration preprod; do
  deploy=()
  case $ci in
    sandbox | integration)
      deploy=(--set "deployEnv=$ci-$COMMIT" --set "web.containerImage.tag=sha-$COMMIT")
      [ "$ci" = integration ] && deploy+=(--set "secrets.localSettings.data.SEFARIA_DB=sefaria-integration")
      ;;
  esac
  values=(-f "$VALUES" -f "$SEFARIA/build/ci/$ci-values.yaml" "${deploy[@]}")

  if "$HELM" lint --strict "$CHART" "${values[@]}" >"$WORK/out" 2>&1; then
    pass "helm lint --strict, $ci-values.yaml, jobs off"
  else
    fail "helm lint --strict, $ci-values.yaml, jobs off"
  fi

  for shards in 1 4; do
    on=(--set cronJobs.braintrust.enabled=true --set cronJobs.braintrust.tagAndPush.enabled=true
      --set cronJobs.braintrust.backupLogs.enabled=true --set "cronJobs.braintrust.tagAndPush.shards=$shards")
    what="$ci-values.yaml, jobs on, shards $shards"
    if "$HELM" lint --strict "$CHART" "${values[@]}" "${on[@]}" >"$WORK/out" 2>&1; then
      pass "helm lint --strict, $what"
    else
      fail "helm lint --strict, $what"
      continue
    fi
    # The whole chart renders; what our templates made goes to the schemas and the name check.
    if ! "$HELM" template "$ci-$COMMIT" "$CHART" "${values[@]}" "${on[@]}" >"$WORK/chart.yaml" 2>"$WORK/out"; then
      fail "helm template, $what"
      continue
    fi
    ours=$WORK/$ci-$shards.yaml
    # A CronJob's name is a DNS label of at most 52 characters (its Jobs add 11); the schemas do not say.
    if "$PYTHON" - "$WORK/chart.yaml" "$ours" "$shards" "$TEMPLATES" >"$WORK/out" 2>&1 <<'EOF'; then
import os, re, sys, yaml
rendered, ours, shards, templates = sys.argv[1:]
sources = {f"# Source: sefaria/templates/cronjob/{name}" for name in os.listdir(templates)}
chunks = [c for c in re.split(r"^---\s*$", open(rendered).read(), flags=re.M) if c.strip()]
kept = [c for c in chunks if any(line.strip() in sources for line in c.splitlines())]
open(ours, "w").write("".join("---" + c for c in kept))
names = [d["metadata"]["name"] for d in map(yaml.safe_load, kept) if d["kind"] == "CronJob"]
bad = [n for n in names if len(n) > 52 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n)]
print(", ".join(names))
sys.exit(1 if bad or len(names) != (3 if int(shards) > 1 else 2) else 0)
EOF
      pass "CronJob names, $what: $(cat "$WORK/out")"
    else
      fail "CronJob names, $what"
    fi
    for version in 1.30.0 "$LATEST"; do
      if "$KUBERNETES_VALIDATE" --strict --quiet -k "$version" "$ours" >"$WORK/out" 2>&1; then
        pass "Kubernetes $version schemas, $what"
      else
        fail "Kubernetes $version schemas, $what"
      fi
    done
  done
done

if [ "$FAILED" = 0 ]; then
  echo "Sefaria's chart ($SEFARIA) accepts the braintrust_ops templates."
else
  echo "Sefaria's chart ($SEFARIA) does not accept the braintrust_ops templates: see FAIL above."
fi
exit "$FAILED"
