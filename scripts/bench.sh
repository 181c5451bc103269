#!/usr/bin/env bash
# make bench: every benchmark in bench/, each against its own sandbox process and SQLite file.
# Figures are printed and written to bench/results/*.json; the README quotes them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
for bench in matching push push_large_rows tagging claude_pressure batch_cost write_back backup backup_rate_limit; do
  echo "== bench/bench_$bench.py"
  $PY "bench/bench_$bench.py"
  echo
done
