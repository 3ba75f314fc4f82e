"""Stopping ``watch`` and ``guard`` on Ctrl-C or SIGTERM without raising into their loop.

Python runs a signal handler in the main thread between two bytecodes. A handler that
raises (``KeyboardInterrupt``) can land inside ``threading``'s own lock handling, for
instance in ``Condition.wait`` between releasing its lock and the ``try`` that takes it
back; the ``with`` around it then fails with ``RuntimeError: release unlocked lock`` in
place of the interrupt, and a stop meant to exit 0 ends as an "unexpected error".

So while a long-running command polls, a signal only sets a :class:`StopFlag`: no lock is
taken (the flag is a plain attribute, the wake-up a byte on a socket pair), and every wait
in the loop returns at once. The loop finishes its step and ends as it always does. A second
signal, or one that arrives outside the loop (start-up, ``--wait``), raises
``KeyboardInterrupt`` as before, so nothing can hold the process up for long.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["StopFlag", "current", "install", "note_early", "polling", "take_early"]

_SIGNALS = ("SIGINT", "SIGTERM")


class StopFlag(threading.Event):
    """A :class:`threading.Event` that a signal handler may set: it takes no lock.

    ``set`` writes one byte to a socket pair that is never read, so every ``wait``
    (in any thread, now or later) returns at once. ``polled`` says whether the main
    thread is in a loop that checks the flag (then a first signal only sets it).
    """

    def __init__(self) -> None:
        import socket

        super().__init__()
        self._stopped = False
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self.polled = False

    def is_set(self) -> bool:
        return self._stopped

    def set(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(OSError):  # full (cannot be: one byte) or closed
            self._writer.send(b"x")

    def clear(self) -> None:  # pragma: no cover - a stop is not taken back
        raise NotImplementedError("a StopFlag is not cleared")

    def wait(self, timeout: float | None = None) -> bool:
        """Until set or ``timeout`` seconds (None: for ever); True if set."""
        if self._stopped:
            return True
        import select

        try:
            select.select([self._reader], [], [], timeout)
        except (OSError, ValueError):  # closed (the command has ended): sleep, not spin
            super().wait(0.1 if timeout is None else min(timeout, 0.1))
        return self._stopped

    def close(self) -> None:
        """Free the socket pair (when the command has ended)."""
        self._reader.close()
        self._writer.close()


_current: StopFlag | None = None


def current() -> StopFlag:
    """The flag the signal handlers set (see :func:`install`), or a new unconnected one."""
    return _current if _current is not None else StopFlag()


def install() -> Callable[[], None]:
    """Point SIGINT and SIGTERM at a new :func:`current` flag; return what undoes it.

    The handler sets the flag; it raises ``KeyboardInterrupt`` only when the flag was
    set already (a second signal) or nobody polls it (:func:`polling`). Outside the
    main thread (where handlers cannot be set) it does nothing.
    """
    global _current
    flag = StopFlag()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        first = not flag.is_set()
        flag.set()
        if not (first and flag.polled):
            raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    before, _current = _current, flag
    with contextlib.suppress(ValueError):  # not the main thread (some test runners)
        for name in _SIGNALS:
            num = getattr(signal, name)
            previous[num] = signal.signal(num, on_signal)

    def undo() -> None:
        global _current
        for num, handler in previous.items():
            signal.signal(num, handler if handler is not None else signal.SIG_DFL)
        _current = before
        flag.close()

    return undo


@contextlib.contextmanager
def polling(flag: threading.Event) -> Iterator[None]:
    """The main thread is in a loop that checks ``flag``: a first signal only sets it."""
    if not isinstance(flag, StopFlag):
        yield
        return
    flag.polled = True
    try:
        yield
    finally:
        flag.polled = False


_early: list[int] = []


def note_early() -> None:
    """From the very start of the process: a Ctrl-C or SIGTERM is only noted.

    The entry point calls this before it imports anything, so a signal during
    start-up neither kills the process (SIGTERM's default action) nor raises into an
    import; the command's own handlers, once set, act on what was noted
    (:func:`take_early`).
    """

    def note(signum: int, frame: FrameType | None) -> None:
        _early.append(signum)

    with contextlib.suppress(ValueError):  # not the main thread
        for name in _SIGNALS:
            signal.signal(getattr(signal, name), note)


def take_early() -> int | None:
    """The first signal noted during start-up (then forgotten), or None."""
    first = _early[0] if _early else None
    _early.clear()
    return first
