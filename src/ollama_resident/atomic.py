"""Write a file so that a crash, a full disk or a second process never leaves half of it.

``atomic_write`` stages the new text in a temporary file in the *same directory*
(``os.replace`` is only atomic within one filesystem), fsyncs it, swaps it in and
fsyncs the directory so the rename itself survives a power cut. A reader sees
either the old file or the new one, never a mix.

``file_lock`` serialises read-modify-write cycles between processes: two
``profile add`` commands in two terminals must both land, which a bare atomic
replace does not give (the second writer would overwrite the first one's change
with what it read before it).

Pure stdlib; no typer, rich or httpx.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LockTimeout", "atomic_write", "file_lock", "lock_path"]

# Long enough for another instance to finish a write (milliseconds), short enough
# that a wedged process does not hang a shell startup script.
DEFAULT_LOCK_TIMEOUT = 10.0
_LOCK_POLL = 0.02


class LockTimeout(TimeoutError):
    """Another process held the lock for longer than the timeout."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__(f"{path} is locked by another process (waited {timeout:g}s)")
        self.path = path
        self.timeout = timeout


def _umask() -> int:
    # Linux shows the umask in /proc; reading it there avoids os.umask()'s brief
    # process-wide change, which another thread creating a file could observe.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _default_mode() -> int:
    """What ``open(path, "w")`` would give a new file: 0o666 minus the umask."""
    return 0o666 & ~_umask()


def _fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":
        return  # directories cannot be opened for fsync on Windows; NTFS journals renames
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (network, FUSE) refuse fsync on a directory
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Replace ``path`` with ``text`` atomically and return the path written.

    - A symlink is followed: the file it points to is replaced, the link stays
      (dotfile managers link config files).
    - The old file's permission bits are kept; a new file gets the usual
      0o666 minus the umask (``mkstemp`` alone would leave it 0600).
    - The parent directory is created if missing.
    - On any error the temporary file is removed and the old file is untouched.
    """
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = _default_mode()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    return target


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file beside ``path``: ``profiles.toml`` -> ``profiles.toml.lock``."""
    target = Path(os.path.realpath(path))
    return target.with_name(target.name + ".lock")


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike[str], *, timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Iterator[Path]:
    """Hold an exclusive lock for ``path`` (on ``path.lock`` beside it) inside the block.

    The lock is advisory (``flock`` on POSIX, ``msvcrt.locking`` on Windows) and is
    released by the kernel if the process dies, so a crash never leaves it stuck.
    The lock file is left in place: deleting it would let a third process lock a
    new inode while a second still holds the old one. Not re-entrant: do not nest
    two locks on the same path in one process. Raises :class:`LockTimeout` after
    ``timeout`` seconds.
    """
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _acquire(fd, lock, timeout)
        try:
            yield lock
        finally:
            _release(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _acquire(fd: int, lock: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(lock, timeout) from None
                time.sleep(_LOCK_POLL)

    def _release(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _acquire(fd: int, lock: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(lock, timeout) from None
                time.sleep(_LOCK_POLL)

    def _release(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
