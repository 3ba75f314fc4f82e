"""Run a command in the background once, however many shells ask at the same moment.

A shell startup file must not wait for a model to load, and ten terminals
opened together must cause one load, not ten. :func:`spawn_once` takes an
exclusive, non-blocking ``flock`` on a lock file and hands it to a detached
child: the lock lives exactly as long as that child (the kernel drops it when
the child exits, even if it crashes), and every other caller meanwhile sees it
held and returns at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["spawn_once"]


def spawn_once(argv: Sequence[str], lock_file: Path, log_file: Path) -> int | None:
    """Start ``argv`` detached, holding ``lock_file`` for its whole life.

    Returns the child's pid, or None when another process holds the lock (the
    same work is already under way). The child's output goes to ``log_file``.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not _try_lock(fd):
            return None
        with open(log_file, "ab") as log:
            # The child inherits the locked file description (pass_fds); once we close
            # our copy below, the child alone holds the lock until it exits.
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(fd,) if sys.platform != "win32" else (),
                start_new_session=sys.platform != "win32",
                close_fds=True,
            )
        return proc.pid
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        # Windows cannot hand a lock to a child process: the lock only keeps two
        # shells that start in the same instant from both spawning.
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
