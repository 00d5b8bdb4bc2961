"""Writing and reading the files Podium's commands name, without touching anything that is not a plain file.

``safe_write(path, data)`` writes atomically (a temporary file in the same folder, then ``os.replace``),
but first refuses a target that exists and is not a regular file: a device (``/dev/null``), a FIFO, a
socket, a directory — and a **symlink**, whatever it points to. The choice for symlinks: ``os.replace``
would replace the link itself, not its target, so writing "through" it silently is never what happened;
refusing says so, and the user passes the real path. The check (``os.lstat``) and the rename are not one
atomic step; this guards against mistakes (``--out /dev/null`` run as root), not a hostile local user
racing the command.

``regular_file(path, what)`` is the read side: the path, resolved through symlinks, must be a regular
file (never a device, FIFO or directory, which would hang or stream forever) no larger than ``limit``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from podium.errors import ConfigError


def check_writable_target(path: str | Path, what: str = "file") -> Path:
    """``path`` as a Path; ConfigError if it exists and is not a regular file (symlinks refused too)."""
    target = Path(path)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise ConfigError(f"cannot write the {what} {target}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"refusing to write the {what} {target}: it is a symlink (pass the real path)")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"refusing to write the {what} {target}: it exists and is not a regular file")
    return target


def safe_write(path: str | Path, data: str | bytes, what: str = "file") -> Path:
    """Write ``data`` (str: UTF-8) to ``path`` atomically; never over a device, FIFO, directory or symlink.
    Creates missing parent folders; any OS error is a one-line ConfigError naming the file."""
    target = check_writable_target(path, what)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
            check_writable_target(target, what)  # narrow the window: re-check just before the rename
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write the {what} {target}: {exc.strerror or exc}") from None
    return target


def regular_file(path: str | Path, what: str, limit: int | None = None) -> Path:
    """``path`` resolved; ConfigError unless it is an existing regular file of at most ``limit`` bytes."""
    p = Path(path)
    try:
        st = os.stat(p)  # follows symlinks: a link to a regular file is fine, a link to /dev/zero is not
    except FileNotFoundError:
        raise ConfigError(f"cannot read the {what} {p}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {p}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"the {what} {p} is not a regular file")
    if limit is not None and st.st_size > limit:
        raise ConfigError(f"the {what} {p} is {st.st_size} bytes, more than the {limit} allowed")
    return p
