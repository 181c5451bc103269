"""Per-module mutation scores from mutmut's results (``make mutation`` runs it after ``mutmut run``).

mutmut prints one total; the bar is per module, so a well-tested module cannot hide a weak one. The
modules are the ones setup.cfg's ``[mutmut] only_mutate`` lists; each one's verdicts are in
``mutants/<module>.py.meta``. Exits 1 when a module scores under the bar, or has no results or
unchecked mutants (an interrupted run must not pass).

A mutant counts as detected when a test failed (killed), the tests ran past their time limit
(an infinite loop is caught too), or the type check refused it. Survivors, mutants no test reaches,
and anything odd (suspicious, segfault) count against the module.
"""

import argparse
import configparser
import json
import sys
from collections import Counter
from pathlib import Path

BAR_PERCENT = 85.0
DETECTED = {"killed", "timeout", "caught by type check"}
UNFINISHED = "not checked"


def status(exit_code: int | None) -> str:
    # Imported here so that --help works outside the venv; the mapping is mutmut's own.
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[exit_code]


def modules(config_path: Path) -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(config_path)
    return [line.strip() for line in parser.get("mutmut", "only_mutate").splitlines() if line.strip()]


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--config", type=Path, default=Path("setup.cfg"))
    arguments.add_argument("--results", type=Path, default=Path("mutants"), help="mutmut's output folder")
    arguments.add_argument("--markdown", action="store_true", help="print the table as Markdown (README)")
    options = arguments.parse_args()

    rows, survivors, failing = [], [], []
    for module in modules(options.config):
        meta = options.results / f"{module}.meta"
        if not meta.exists():
            failing.append(f"{module}: no results (run `mutmut run` first)")
            continue
        statuses = {key: status(code) for key, code in json.loads(meta.read_text())["exit_code_by_key"].items()}
        counts = Counter(statuses.values())
        detected = sum(counts[name] for name in DETECTED)
        total = len(statuses)
        score = 100.0 * detected / total if total else 100.0
        rows.append((module, detected, total, score))
        survivors += [f"{key}: {verdict}" for key, verdict in sorted(statuses.items()) if verdict not in DETECTED]
        if counts[UNFINISHED]:
            failing.append(f"{module}: {counts[UNFINISHED]} mutants not checked (an interrupted run?)")
        elif score < BAR_PERCENT:
            failing.append(f"{module}: {score:.1f}% is under {BAR_PERCENT:.0f}%")

    all_detected, all_total = sum(row[1] for row in rows), sum(row[2] for row in rows)
    rows.append(("all", all_detected, all_total, 100.0 * all_detected / all_total if all_total else 100.0))
    if options.markdown:
        print("| module | killed / total | score |\n| --- | ---: | ---: |")
        for module, detected, total, score in rows:
            print(f"| `{module}` | {detected} / {total} | {score:.1f}% |")
    else:
        print(f"{'module':40} {'killed/total':>14} {'score':>7}")
        for module, detected, total, score in rows:
            print(f"{module:40} {f'{detected}/{total}':>14} {score:6.1f}%")
    if survivors:
        print("\nNot detected (`mutmut show NAME` prints the change):")
        print("\n".join(f"  {line}" for line in survivors))
    if failing:
        print("\nUnder the bar:\n" + "\n".join(f"  {line}" for line in failing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
