"""Writing files so that a crash never leaves half a file: temporary file, then ``os.replace``."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def atomic_write(path: Path, write) -> Path:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then move it into place: a reader sees
    the old file or the whole new one. ``os.open(..., 0o666)`` gives it the mode of any file the user writes
    (umask, default ACL), not ``mkstemp``'s 0600, without reading or changing the process umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # O_EXCL: a new file
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
