"""Faults a test can inject: failing requests, failing or slow loads, hanging requests, a
stream that breaks off with an error, replies that are not Ollama's (a proxy's HTML page,
plain text, an empty or truncated body, JSON of the wrong shape), and a server that accepts
requests and never answers. ``FaultsMixin`` is part of ``FakeOllama``; its state
(``_fail_next``, ``_fail_load``, ``_hang_next``, ``_stream_errors``, ``_load_delays``,
``_replies``, ``mute``) is created in ``FakeOllama.__init__`` and guarded by ``_cond``.
"""

from __future__ import annotations

from .names import _parse_name

# What nginx answers when the server behind it is down (its built-in error page).
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n"
    b"</body>\r\n</html>\r\n"
)

# Replies that are not Ollama's, by name: (status, content type, body).
NOT_OLLAMA: dict[str, tuple[int, str | None, bytes]] = {
    "html-502": (502, "text/html", NGINX_502),
    "plain-text": (200, "text/plain; charset=utf-8", b"Hello from a dev server\n"),
    "empty": (200, None, b""),
    "truncated-json": (200, "application/json; charset=utf-8", b'{"models":[{"name":"tiny:la'),
    "wrong-shape": (200, "application/json; charset=utf-8", b'{"models":"oops"}'),
}

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

    def reply_next(
        self,
        path: str,
        body: bytes | str,
        *,
        status: int = 200,
        content_type: str | None = "application/json; charset=utf-8",
        times: int = 1,
    ) -> None:
        """The next ``times`` requests to ``path`` get this raw answer instead of Ollama's
        (``times=0``: every request until ``clear_faults()``)."""
        data = body.encode() if isinstance(body, str) else body
        with self._cond:
            self._replies.append([path, status, content_type, data, times or -1])

    def not_ollama_next(self, path: str, kind: str, *, times: int = 1) -> None:
        """A reply from something that is not Ollama: a key of ``NOT_OLLAMA``."""
        status, content_type, body = NOT_OLLAMA[kind]
        self.reply_next(path, body, status=status, content_type=content_type, times=times)

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
        self._replies.clear()
        self.mute = False

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

    def _take_reply(self, path: str) -> tuple[int, str | None, bytes] | None:
        with self._cond:
            for entry in self._replies:
                if entry[0] == path:
                    entry[4] -= 1
                    if entry[4] == 0:
                        self._replies.remove(entry)
                    return entry[1], entry[2], entry[3]
        return None
