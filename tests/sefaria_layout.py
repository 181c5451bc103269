"""A directory shaped like Sefaria-Project as far as pytest sees it, with this app dropped in.

Sefaria's ``pytest.ini`` (Sefaria/Sefaria-Project, main, commit 1707681, 2026-08-12) sets
``DJANGO_SETTINGS_MODULE = sefaria.settings``, has no ``testpaths``, and collects only the files its
``python_files`` patterns name, each matched against the tail of a file's path. Its CI runs
``pytest -v --timeout=600 --reuse-db -m "not deep and not failing" ./sefaria ./sso ./reader``
(build/ci/createJobFromRollout.sh). The app's suite must run there with two additions, which the README
lists: the ``python_files`` lines below and the app's directories on that command line. No plugin
registration: the app's conftests import the fixtures and hooks they need.

    python -m tests.sefaria_layout <directory>    builds the layout (CI runs the app's suite in it)
"""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The patterns Sefaria adds; `*` in a pattern with a slash also crosses directories.
APP_PYTHON_FILES = (
    "braintrust_ops/tests/test_*.py",
    "braintrust_ops/tests/*/test_*.py",
    "braintrust_ops_sandbox/tests/test_*.py",
)
# A sample of Sefaria's own entries, so the file reads as theirs does.
SEFARIA_PYTHON_FILES = ("sefaria/tests/*_test.py", "reader/tests/*_test.py", "reader/tests/test_*.py")
SEFARIA_COMMAND_OPTIONS = ("--reuse-db", "-m", "not deep and not failing")
APP_DIRECTORIES = ("./braintrust_ops", "./braintrust_ops_sandbox")


def pytest_ini(*, with_app: bool = True) -> str:
    patterns = SEFARIA_PYTHON_FILES + (APP_PYTHON_FILES if with_app else ())
    return (
        "[pytest]\n"
        "markers =\n    deep: marks tests as slow\n    failing: marks tests as known no passing\n"
        "DJANGO_SETTINGS_MODULE = sefaria.settings\n"
        "python_files =\n" + "".join(f"    {pattern}\n" for pattern in patterns)
    )


def build(directory: Path, *, with_app: bool = True) -> Path:
    """Copy the app, its sandbox, the settings package and manage.py into ``directory``; write the ini."""
    directory.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("braintrust_ops", "braintrust_ops_sandbox", "sefaria"):
        shutil.copytree(ROOT / package, directory / package, ignore=ignore, dirs_exist_ok=True)
    shutil.copy2(ROOT / "manage.py", directory / "manage.py")
    (directory / "pytest.ini").write_text(pytest_ini(with_app=with_app))
    return directory


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
