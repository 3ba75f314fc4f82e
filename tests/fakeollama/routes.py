"""The HTTP layer's plumbing: the route table, dispatch of a request to its ``_h_*`` handler
(recording it, applying request faults, the Host check of ``allowedHostsMiddleware``, gin's
404/405 texts), reading bodies, and writing answers and chunked streams.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .gojson import _EOF, _bind, _decode_go_json, _dumps, _Fields
from .models import FakeModel
from .names import _parse_name
from .scheduler import _Canceled, _Ctx

if TYPE_CHECKING:
    from .server import _Handler


@dataclass
class RecordedRequest:
    """One request the fake received. ``json`` is the decoded body or None."""

    method: str
    path: str
    json: Any
    time: float
    query: str = ""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


# tokens of the fake generation (with their leading spaces, as real tokenizers produce them)
_WORDS = (" The", " model", " is", " resident", ",", " warm", " and", " ready", ".")

_REASONS = {499: "status code 499"}
_MODEL_PROBLEMS = {"empty": "model is required", "invalid": "invalid model name"}

_ROUTE_METHODS: dict[str, tuple[str, ...]] = {
    "/": ("HEAD", "GET"),
    "/api/version": ("HEAD", "GET"),
    "/api/tags": ("HEAD", "GET"),
    "/api/show": ("POST",),
    "/api/delete": ("DELETE",),
    "/api/ps": ("GET",),
    "/api/generate": ("POST",),
    "/api/chat": ("POST",),
    "/api/embed": ("POST",),
    "/api/embeddings": ("POST",),
    "/v1/chat/completions": ("POST",),
}

_GO_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def _client_ip(h: _Handler) -> str:
    """gin's ``ClientIP()`` with every proxy trusted: X-Forwarded-For's first, X-Real-IP."""
    forwarded = h.headers.get("X-Forwarded-For", "")
    if forwarded.split(",")[0].strip():
        return forwarded.split(",")[0].strip()
    real = h.headers.get("X-Real-IP", "").strip()
    return real or str(h.client_address[0])


class RoutingMixin:
    """Request dispatch and answer writing, as part of ``FakeOllama``."""

    def _dispatch(self, h: _Handler) -> None:
        with self._cond:
            ctx = _Ctx(self._epoch, self._stop_event, self._load_lock, h.connection)
        h.fake_runner, h.fake_answered = None, False
        h.fake_status = None
        began = time.monotonic()
        try:
            parts = urlsplit(h.path)
            path = parts.path
            try:
                body = self._read_body(h)
            except ValueError:  # malformed chunked body
                h.close_connection = True
                self._send(h, 400, b"400 Bad Request", "text/plain; charset=utf-8")
                return
            try:
                parsed_json = json.loads(body) if body.strip() else None
            except ValueError:
                parsed_json = None
            with self._cond:
                self.requests.append(
                    RecordedRequest(
                        method=h.command,
                        path=path,
                        json=parsed_json,
                        time=time.time(),
                        query=parts.query,
                        body=body,
                        headers=dict(h.headers.items()),
                    )
                )
            if self.mute:
                # Accepts the request and never answers, until the client gives up.
                while not ctx.cancelled():
                    ctx.stop.wait(0.02)
                h.close_connection = True
                return
            reply = self._take_reply(path)
            if reply is not None:
                self._send(h, reply[0], reply[2], reply[1])
                return
            hang = self._take_hang(path)
            if hang is not None and ctx.stop.wait(hang):
                h.close_connection = True
                return
            if self._wait_path(path, ctx.stop) or (self.latency and ctx.stop.wait(self.latency)):
                h.close_connection = True
                return
            fail = self._take_fail(path)
            if fail is not None:
                self._send_error(h, fail[0], fail[1])
                return
            if not self._host_allowed(h.headers.get("Host", "")):
                self._send(h, 403, b"", None)
                return
            methods = _ROUTE_METHODS.get(path)
            if path == "/api/ps" and not self.ps_supported:
                methods = None
            if path == "/api/embed" and not self.embed_supported:
                methods = None  # before 0.2.6: only the legacy /api/embeddings
            if methods is None:
                self._send(h, 404, b"404 page not found", "text/plain")
                return
            if h.command not in methods:
                self._send(
                    h, 405, b"405 method not allowed", "text/plain", [("Allow", ", ".join(methods))]
                )
                return
            handler = getattr(self, "_h_" + path.strip("/").replace("/", "_").replace(".", "_"))
            handler(h, body, ctx)
        except (OSError, _Canceled):
            # the client went away or the server stopped: nobody is left to answer
            h.close_connection = True
        except Exception:
            traceback.print_exc()
            h.close_connection = True
            with contextlib.suppress(OSError):
                self._send_error(h, 500, "fakeollama internal error (see stderr)")
        finally:
            if self._log is not None and h.fake_status is not None:
                self._log.request(
                    h.fake_status, time.monotonic() - began, _client_ip(h), h.command, h.path
                )

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = h.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(h.rfile.read(size))
                h.rfile.readline(65537)
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length > 0 else b""

    def _host_allowed(self, host_header: str) -> bool:
        """Go ``allowedHostsMiddleware``: on a loopback listener, only local Host headers."""
        try:
            if not ipaddress.ip_address(self.host).is_loopback:
                return True
        except ValueError:
            if self.host != "localhost":
                return True
        host = host_header
        if host.startswith("["):
            end = host.find("]")
            host = host[1:end] if end > 0 else host
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            if ip.is_loopback or ip.is_unspecified or any(ip in n for n in _GO_PRIVATE):
                return True
        host = host.lower()
        if host in ("", "localhost") or host == socket.gethostname().lower():
            return True
        return host.endswith((".localhost", ".local", ".internal"))

    def _send(
        self,
        h: _Handler,
        status: int,
        body: bytes,
        content_type: str | None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._mark_answered(h)
        h.fake_status = status
        h.send_response_only(status, _REASONS.get(status))
        for name, value in extra_headers:
            h.send_header(name, value)
        if content_type:
            h.send_header("Content-Type", content_type)
        h.send_header("Date", h.date_time_string(time.time() + self.clock_offset_s))
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD" and body:
            h.wfile.write(body)

    def _send_json(self, h: _Handler, status: int, obj: Any) -> None:
        self._send(h, status, _dumps(obj), "application/json; charset=utf-8")

    def _send_error(self, h: _Handler, status: int, message: str) -> None:
        self._send_json(h, status, {"error": message})

    def _try_send_error(self, h: _Handler, status: int, message: str) -> None:
        try:
            self._send_error(h, status, message)
        except OSError:
            h.close_connection = True

    @staticmethod
    def _start_stream(h: _Handler, content_type: str) -> None:
        h.fake_status = 200
        h.send_response_only(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Date", h.date_time_string())
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

    @staticmethod
    def _write_chunk(h: _Handler, data: bytes) -> None:
        h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _end_stream(self, h: _Handler) -> None:
        self._mark_answered(h)
        h.wfile.write(b"0\r\n\r\n")

    def _sleep(self, ctx: _Ctx, seconds: float) -> bool:
        """Sleep, watching for the client going away; False if it did (or the server stopped)."""
        deadline = time.monotonic() + seconds
        while True:
            if ctx.cancelled():
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if ctx.stop.wait(min(remaining, 0.005)):
                return False

    def _bind_request(
        self, h: _Handler, body: bytes, struct: str, fields: _Fields
    ) -> dict[str, Any] | None:
        value, err = _decode_go_json(body)
        if value is _EOF:
            self._send_error(h, 400, "missing request body")
            return None
        if err is None:
            req, err = _bind(value, struct, fields)
            if err is None:
                return req
        self._send_error(h, 400, err)
        return None

    def _lookup(self, name: str) -> tuple[FakeModel | None, str]:
        """-> (model, problem) with problem "" | "empty" | "invalid" | "missing"."""
        if name == "":
            return None, "empty"
        parsed = _parse_name(name)
        if not parsed.valid():
            return None, "invalid"
        with self._cond:
            m = self._models.get(parsed.key())
        return (m, "") if m is not None else (None, "missing")
