"""Where Sefaria-Project's pin list is, and how to read it: shared by the CI scripts beside this file.

The list is Sefaria's file, not ours, so it is not copied into this repository: CI finds it beside the
clone (``../shared/reference/``), or wherever ``SEFARIA_REQUIREMENTS`` says.
"""

import os
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO.parent / "shared" / "reference" / "sefaria-requirements-2026-08-20.txt"


def pin_list_path() -> Path | None:
    """The pin list, or None when it is missing outside CI. In CI (``CI=true``) a missing list is an error:
    a check that quietly skipped there would pass without having checked anything."""
    path = Path(os.environ.get("SEFARIA_REQUIREMENTS") or DEFAULT)
    if path.is_file():
        return path
    if os.environ.get("CI", "").lower() == "true":
        sys.exit(
            f"error: Sefaria's pin list is not at {path}. CI needs it: set SEFARIA_REQUIREMENTS to "
            "Sefaria-Project's requirements.txt without its git+https lines."
        )
    return None


def read_pins(path: Path) -> dict[str, Requirement]:
    """The list's requirements by canonical name: comments, blank lines and options skipped."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        pins[canonicalize_name(requirement.name)] = requirement
    return pins
