"""tests/SEED_COVERAGE.md maps the seed review's scenarios to tests: every test it names must exist."""

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COVERAGE_MAP = ROOT / "tests" / "SEED_COVERAGE.md"
NODE_ID = re.compile(r"`((?:braintrust_ops(?:_sandbox)?/)?tests/[^`]+)`")
REQUIRED_SECTIONS = ("2A", "2B", "2C", "2D", "2E", "2F", "2G", "2H", "3", "4", "7", "11")


def _node_ids(text: str) -> list[str]:
    return NODE_ID.findall(text)


def _split(node_id: str) -> tuple[str, str]:
    """("tests/x/test_y.py", "test_z") for "tests/x/test_y.py::test_z[param]"."""
    path, _, name = node_id.partition("::")
    return path, name.split("[", 1)[0]


@cache
def _test_functions(path: str) -> frozenset[str]:
    """Names of the test functions a module defines, at module level or in a test class."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    names = set()
    for node in tree.body:
        bodies = node.body if isinstance(node, ast.ClassDef) else [node]
        names.update(
            item.name
            for item in bodies
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test_")
        )
    return frozenset(names)


def _missing(node_id: str) -> str | None:
    """Why ``node_id`` does not name an existing test, or None when it does."""
    path, name = _split(node_id)
    if not path.endswith(".py") or not name:
        return "not of the form tests/<path>.py::test_<name>"
    if not (ROOT / path).is_file():
        return f"{path} does not exist"
    if name not in _test_functions(path):
        return f"{path} defines no test function {name}"
    return None


def _sections(text: str) -> dict[str, str]:
    """Section body by key: "## 2A. fetch_and_filter_tags()" is "2A", "## 3. Error scenarios" is "3"."""
    sections = {}
    for block in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading, _, body = block.partition("\n")
        sections[heading.split(maxsplit=1)[0].rstrip(".")] = body
    return sections


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every data row of every table (header and separator rows left out)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "#" or set(cells[0]) <= {"-"}:
            continue
        rows.append(cells)
    return rows


def test_every_test_named_in_the_seed_coverage_map_exists():
    node_ids = _node_ids(COVERAGE_MAP.read_text(encoding="utf-8"))
    assert node_ids, "the map names no tests"
    problems = {node_id: reason for node_id in sorted(set(node_ids)) if (reason := _missing(node_id))}
    assert problems == {}


def test_the_map_names_at_least_one_test_per_section():
    sections = _sections(COVERAGE_MAP.read_text(encoding="utf-8"))
    without_tests = [key for key in REQUIRED_SECTIONS if not _node_ids(sections.get(key, ""))]
    assert without_tests == [], f"sections missing or naming no test: {without_tests}"
    assert any(key.lower() == "summary" and _node_ids(body) for key, body in sections.items())


def test_every_row_names_a_test_even_when_the_scenario_no_longer_applies():
    rows = _table_rows(COVERAGE_MAP.read_text(encoding="utf-8"))
    assert rows
    # An "N/A" row still names the tests of what replaced the scenario: a row with no test is bookkeeping.
    bad = [row for row in rows if len(row) != 4 or not _node_ids(row[2])]
    assert bad == []


def test_the_checker_spots_a_missing_file_and_a_missing_function():
    assert _missing("tests/seed/test_no_such_module.py::test_x") == "tests/seed/test_no_such_module.py does not exist"
    assert _missing("tests/test_seed_coverage.py::test_no_such_test[param]") == (
        "tests/test_seed_coverage.py defines no test function test_no_such_test"
    )
    assert _missing("tests/test_seed_coverage.py::test_every_test_named_in_the_seed_coverage_map_exists[x]") is None
    assert _missing("tests/test_seed_coverage.py::_missing") is not None  # a helper is not a test
