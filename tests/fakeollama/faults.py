"""Faults a test can inject: failing requests, failing or slow loads, hanging requests, a
stream that breaks off with an error. ``FaultsMixin`` is part of ``FakeOllama``; its state
(``_fail_next``, ``_fail_load``, ``_hang_next``, ``_stream_errors``, ``_load_delays``) is
created in ``FakeOllama.__init__`` and guarded by ``_cond``.
"""

from __future__ import annotations

from .names import _parse_name

DEFAULT_LOAD_ERROR = (
    "llama runner process has terminated: error loading model: unable to allocate CPU buffer"
)


class FaultsMixin:
    """Fault injection (public: ``fail_next``, ``fail_load``, ``hang_next``,
    ``stream_error_next``, ``set_load_delay``, ``clear_faults``, which also ends every hold)."""

    def fail_next(self, path: str, status: int, error: str, times: int = 1) -> None:
        with self._cond:
            self._fail_next.append([path, status, error, times])

    def fail_load(self, model: str, error: str = DEFAULT_LOAD_ERROR, status: int = 500) -> None:
        key = _parse_name(model).key()
        with self._cond:
            self._fail_load[key] = (status, error)

    def hang_next(self, path: str, seconds: float) -> None:
        with self._cond:
            self._hang_next.append((path, seconds))

    def stream_error_next(self, error: str) -> None:
        with self._cond:
            self._stream_errors.append(error)

    def set_load_delay(self, seconds: float, model: str | None = None) -> None:
        with self._cond:
            if model is None:
                self.load_delay = seconds
            else:
                self._load_delays[_parse_name(model).key()] = seconds

    def clear_faults(self) -> None:
        with self._cond:
            self._clear_faults_locked()

    def _clear_faults_locked(self) -> None:
        self._fail_next.clear()
        self._fail_load.clear()
        self._hang_next.clear()
        self._stream_errors.clear()
        self._load_delays.clear()
        self._release_holds_locked()

    def _take_fail(self, path: str) -> tuple[int, str] | None:
        with self._cond:
            for entry in self._fail_next:
                if entry[0] == path:
                    entry[3] -= 1
                    if entry[3] <= 0:
                        self._fail_next.remove(entry)
                    return entry[1], entry[2]
        return None

    def _take_hang(self, path: str) -> float | None:
        with self._cond:
            for i, (p, seconds) in enumerate(self._hang_next):
                if p == path:
                    del self._hang_next[i]
                    return seconds
        return None
