import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def _can_create_in(directory: Path) -> bool:
    try:
        fd, name = tempfile.mkstemp(dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


@pytest.fixture
def unwritable_dir(tmp_path):
    """A directory in which no file can be created, for an ordinary user and for root alike.

    Permission bits stop an ordinary user; root ignores them, so for root the directory is made
    immutable (chattr +i), and where the filesystem cannot do that, sysfs (read-only even to root)
    stands in.
    """
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o500)
    immutable = False
    if _can_create_in(directory):
        directory.chmod(0o700)
        chattr = shutil.which("chattr")
        if chattr and subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode == 0:
            immutable = True
        else:
            directory = Path("/sys/kernel")
    assert not _can_create_in(directory)
    yield directory
    if immutable:
        subprocess.run([shutil.which("chattr"), "-i", str(directory)], check=True)
    if directory.is_relative_to(tmp_path):
        directory.chmod(0o700)

