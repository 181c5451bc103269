"""Files that are not regular files, made in a test's own folder (never /dev/*), and a way to tell that one
was left untouched.

A character device needs mknod, which root has in CI's container. Where mknod is refused (an ordinary
user, a container without CAP_MKNOD), a placeholder file is made and ``os.lstat`` reports it as a character
device, for that path alone: the refusal is the same code path either way, so the test runs everywhere.
"""

import os
import socket
import stat
from pathlib import Path

#: each kind a test makes, and how the backup's refusal names it
SPECIAL_KINDS = {
    "fifo": "a named pipe (FIFO)",
    "socket": "a socket",
    "symlink": "a symbolic link",
    "dangling_symlink": "a symbolic link",
    "directory": "a directory",
    "char_device": "a character device",
}
#: what the symbolic link points to, and what it holds: it must hold the same after the refusal
LINK_TARGET_TEXT = "last week's backup"


def make_special_file(kind: str, path: Path, monkeypatch) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(path))  # the socket file stays after the socket is closed
    elif kind == "symlink":
        target = path.with_name("link-target.csv")
        target.write_text(LINK_TARGET_TEXT)
        path.symlink_to(target)
    elif kind == "dangling_symlink":
        path.symlink_to(path.with_name("nothing-here.csv"))
    elif kind == "directory":
        path.mkdir()
    elif kind == "char_device":
        make_char_device(path, monkeypatch)
    else:
        raise ValueError(kind)


def make_char_device(path: Path, monkeypatch) -> None:
    """A character device at ``path``: /dev/null's numbers (1, 3), made in the test's folder."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        return
    except PermissionError:
        pass
    path.write_text("")
    real_lstat = os.lstat

    def lstat(target, *args, **kwargs):
        result = real_lstat(target, *args, **kwargs)
        if os.fspath(target) == os.fspath(path):
            return os.stat_result((stat.S_IFCHR | 0o600, *tuple(result)[1:]))
        return result

    monkeypatch.setattr(os, "lstat", lstat)


def snapshot(path: Path) -> tuple:
    """What must not change: the entry's type and inode, and a link's text and its target's content."""
    info = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
    target = Path(path.parent, link) if link else None
    content = target.read_text() if target is not None and target.exists() else None
    return stat.S_IFMT(info.st_mode), info.st_ino, link, content
