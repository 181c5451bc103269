"""Fail when the installed environment moved any of Sefaria's pins: installing braintrust_ops must not."""

import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.specifiers import SpecifierSet

PINS = Path(__file__).with_name("sefaria-pins.txt")


def main() -> int:
    moved = []
    for line in PINS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", line).groups()
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # a pin of Sefaria's that this app does not need (sentry-sdk): not installed, not moved
        if installed not in SpecifierSet(spec):
            moved.append(f"{name} {installed} (Sefaria pins {spec})")
    if moved:
        print("Installing braintrust_ops moved Sefaria's pins: " + "; ".join(moved), file=sys.stderr)
        return 1
    print(f"Sefaria's pins hold ({PINS.name}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
