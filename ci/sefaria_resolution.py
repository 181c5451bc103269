"""Resolve this app's requirements together with Sefaria-Project's whole pin list, as pip would in Sefaria.

    python ci/sefaria_resolution.py check   # requirements.txt + Sefaria's pins must resolve (.ci/run)
    python ci/sefaria_resolution.py lock    # rewrite ci/constraints-sefaria.txt from that resolution

Both run ``pip install --dry-run --ignore-installed --report`` in a throwaway Python 3.12 venv (Sefaria's
Dockerfile's Python), so nothing installed anywhere matters and nothing is installed. ``lock`` resolves
the app's runtime and test requirements, psycopg2-binary and pytest-timeout (Sefaria's CI installs it on
the fly) beside the pins, and keeps only what those need: the exact versions Sefaria's environment gives
this app, without copying Sefaria's list. Run it with any Python that has ``packaging`` (the repository's
.venv does); markers are evaluated for the 3.12 interpreter, from pip's report.
"""

import argparse
import glob
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sefaria_requirements import REPO, pin_list_path

LOCK = REPO / "ci" / "constraints-sefaria.txt"
# What the suite's venv installs on top of the requirement files (.ci/run, "Sefaria's stack").
EXTRA = ["psycopg2-binary==2.9.9", "pytest-timeout"]
# Shown by `check`: the packages whose ranges this resolution is about.
WATCHED = ["anthropic", "urllib3", "typing-extensions", "braintrust", "httpx", "httpx2", "django", "certifi"]


def find_python312() -> str:
    found = sorted(glob.glob("/root/.pyenv/versions/3.12.*/bin/python"), key=_version_key)
    python = found[-1] if found else shutil.which("python3.12")
    if not python:
        sys.exit("error: no Python 3.12 found (give one with --python).")
    return python


def _version_key(path: str) -> list[int]:
    return [int(part) for part in Path(path).parent.parent.name.split(".") if part.isdigit()]


def resolve(python: str, args: list[str]) -> dict:
    """pip's installation report for ``args`` plus Sefaria's pins, from a fresh venv; exits on failure."""
    pins = pin_list_path()
    if pins is None:
        print("Sefaria's pin list is not here (SEFARIA_REQUIREMENTS): nothing resolved. In CI this fails.")
        sys.exit(0)
    with tempfile.TemporaryDirectory(prefix="sefaria-resolution.") as tmp:
        subprocess.run([python, "-m", "venv", f"{tmp}/venv"], check=True)
        # The newest pip, as a fresh install would have: its resolver is also twice as fast as the one
        # Python 3.12.1 bundles (23.2) on this list.
        subprocess.run(
            [f"{tmp}/venv/bin/pip", "install", "--quiet", "--upgrade", "pip"], check=True, capture_output=True
        )
        report = Path(tmp) / "report.json"
        command = [f"{tmp}/venv/bin/pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        command += ["--disable-pip-version-check", "--report", str(report), *args, "-r", str(pins)]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            sys.exit(f"error: this app's requirements and Sefaria's pins ({pins}) do not install together.")
        return json.loads(report.read_text())


def closure(report: dict, roots: list[Requirement]) -> dict[str, str]:
    """Name -> version of the resolved packages that ``roots`` need, directly or not."""
    resolved = {canonicalize_name(item["metadata"]["name"]): item["metadata"] for item in report["install"]}
    environment = report["environment"]
    needed: dict[str, str] = {}
    todo = [(canonicalize_name(root.name), set(root.extras)) for root in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        metadata = resolved[name]
        needed[name] = metadata["version"]
        for line in metadata.get("requires_dist") or []:
            requirement = Requirement(line)
            if requirement.marker and not any(
                Marker(str(requirement.marker)).evaluate({**environment, "extra": extra}) for extra in extras | {""}
            ):
                continue
            todo.append((canonicalize_name(requirement.name), set(requirement.extras)))
    return needed


def requirement_lines(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def check(python: str) -> None:
    report = resolve(python, ["-r", "requirements.txt"])
    chosen = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in report["install"]}
    summary = ", ".join(f"{name} {chosen[name]}" for name in WATCHED if name in chosen)
    print(f"requirements.txt installs beside Sefaria's whole pin list: {summary}.")


def lock(python: str) -> None:
    files = ["requirements.txt", "requirements-test.txt"]
    report = resolve(python, [arg for name in files for arg in ("-r", name)] + EXTRA)
    roots = [req for name in files for req in requirement_lines(REPO / name)] + [Requirement(e) for e in EXTRA]
    needed = closure(report, roots)
    header = [
        "# Exact versions for the suite on Sefaria-Project's stack (.ci/run): what pip resolves for",
        "# requirements.txt + requirements-test.txt + " + " + ".join(EXTRA) + " installed together with",
        "# Sefaria's whole pin list on Python 3.12, kept to what those need. Generated; do not edit. Regenerate with",
        "#   .venv/bin/python ci/sefaria_resolution.py lock",
        f"# (pip {report['pip_version']}, Python {report['environment']['python_full_version']}).",
    ]
    LOCK.write_text("\n".join(header + [f"{name}=={needed[name]}" for name in sorted(needed)]) + "\n")
    print(f"Wrote {LOCK.relative_to(REPO)}: {len(needed)} packages.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("action", choices=["check", "lock"])
    parser.add_argument("--python", help="a Python 3.12 interpreter (default: found under pyenv or on PATH)")
    options = parser.parse_args()
    python = options.python or find_python312()
    {"check": check, "lock": lock}[options.action](python)


if __name__ == "__main__":
    main()
