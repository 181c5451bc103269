"""Fail when the installed environment moved any of Sefaria's pins: installing braintrust_ops must not.

Every installed package that Sefaria-Project pins is checked against its pin: against Sefaria's whole pin
list when it is here (SEFARIA_REQUIREMENTS, or beside the clone; CI fails without it), else against the
few pins that matter to this app (sefaria-pins.txt beside this file).
"""

import sys
from importlib.metadata import distributions
from pathlib import Path

from packaging.utils import canonicalize_name
from sefaria_requirements import pin_list_path, read_pins

FALLBACK = Path(__file__).with_name("sefaria-pins.txt")


def main() -> int:
    source = pin_list_path() or FALLBACK
    pins = read_pins(source)
    installed = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in distributions()}
    checked, moved = 0, []
    for name, pin in sorted(pins.items()):
        if name not in installed or (pin.marker and not pin.marker.evaluate()):
            continue  # a pin of Sefaria's that this app does not need: not installed, not moved
        checked += 1
        if not pin.specifier.contains(installed[name], prereleases=True):
            moved.append(f"{name} {installed[name]} (Sefaria pins {pin.specifier})")
    if moved:
        print(f"Installing braintrust_ops moved Sefaria's pins ({source}): " + "; ".join(moved), file=sys.stderr)
        return 1
    print(f"Sefaria's pins hold: {checked} installed packages checked against {source}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
