"""A small HTTP server for ``/metrics``, from the standard library, in a daemon thread.

Imported only by commands given ``--metrics-port``, so no other command pays for
``http.server``. The page itself comes from a callable (see
:func:`ollama_resident.metrics.exposition`), built fresh for every scrape.
"""

from __future__ import annotations

import errno
import http.server
import socket
import threading
from collections.abc import Callable
from typing import Any

from ollama_resident.errors import UsageError
from ollama_resident.metrics import CONTENT_TYPE

__all__ = ["DEFAULT_METRICS_HOST", "MetricsServer"]

# Loopback unless asked: the page names hosts and models, which is not for everyone.
DEFAULT_METRICS_HOST = "127.0.0.1"

_INDEX = b"ollama-resident: metrics at /metrics (Prometheus text format)\n"


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    render: Callable[[], str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    server_version = "ollama-resident"

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = self.server.render().encode()
            except Exception as exc:  # a scrape must get an answer, never a hang
                self._reply(500, f"error: {exc}\n".encode(), "text/plain; charset=utf-8")
                return
            self._reply(200, body, CONTENT_TYPE)
        elif path == "/":
            self._reply(200, _INDEX, "text/plain; charset=utf-8")
        else:
            self._reply(404, b"not found: try /metrics\n", "text/plain; charset=utf-8")

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not news: nothing on stderr."""


class MetricsServer:
    """Serves ``render()`` at ``http://HOST:PORT/metrics`` until :meth:`stop`.

    ``port`` 0 picks a free port (see :attr:`port`). Raises :class:`UsageError`
    (exit 2) when the address cannot be bound (in use, not an address here).
    """

    def __init__(self, render: Callable[[], str], host: str = DEFAULT_METRICS_HOST, port: int = 0):
        self.host = host.strip("[]")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Server(_Server):
            address_family = family

        try:
            self._server = Server((self.host, port), _Handler)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            hint = (
                "choose another --metrics-port (0 picks a free one)"
                if exc.errno == errno.EADDRINUSE
                else "give --metrics-host an address of this machine, e.g. 127.0.0.1 or 0.0.0.0"
            )
            raise UsageError(
                f"cannot serve metrics on {self._hostport(port)}: {reason.lower()}", hint=hint
            ) from None
        self._server.render = render
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="metrics",
            daemon=True,
        )

    def _hostport(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self._hostport(self.port)}/metrics"

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
