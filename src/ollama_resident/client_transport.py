"""httpx's transport for plain-http servers, over the standard library's ``http.client``.

Part of the client (:mod:`ollama_resident.client`, the one place httpx is used): it is
imported only by ``OllamaClient._client``, after httpx, so its module-level ``import httpx``
costs nothing more (the ruff ban on module-level httpx imports lets this file alone pass).

httpx's default transport imports httpcore, h11 and anyio: about 20 ms of every
start-up, more than everything else ``ps --json`` does beyond importing typer and
httpx. ``http.client`` is already loaded by then (httpx imports it), and one
keep-alive HTTP/1.1 connection is all this tool asks of a plain-http Ollama. The
client keeps httpx's API (requests, responses, timeouts, exceptions); only the
bytes on the wire go through here. ``https://`` servers and proxied URLs keep
httpx's own transport (see :meth:`OllamaClient._client`).

Failures are raised as the httpx exceptions httpx's own transport raises for them,
so :mod:`ollama_resident.client` maps both alike: ``ConnectError`` /
``ConnectTimeout`` before the request is sent, ``WriteError`` / ``WriteTimeout``
while sending, ``ReadError`` / ``ReadTimeout`` / ``RemoteProtocolError`` after.
"""

from __future__ import annotations

import http.client
import select
import socket
from collections.abc import Iterator

import httpx

__all__ = ["Http11Transport"]

_CHUNK = 64 * 1024


class Http11Transport(httpx.BaseTransport):
    """One persistent HTTP/1.1 connection to one plain-http server, reused while it lives.

    Not thread-safe, like the client that owns it. A connection the server has closed
    while idle is noticed before reuse (it reads as ready) and replaced.
    """

    def __init__(self) -> None:
        self._conn: http.client.HTTPConnection | None = None
        self._address: tuple[str, int] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"this transport speaks plain http, not {url.scheme}")
        timeouts = request.extensions.get("timeout", {})
        conn = self._connection(request, url.host, url.port or 80, timeouts.get("connect"))
        sock = conn.sock
        assert sock is not None
        target = url.raw_path.decode("ascii")
        body = request.read()
        try:
            sock.settimeout(timeouts.get("write"))
            conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers.raw:
                conn.putheader(name, value)
            conn.endheaders(body or None)
        except TimeoutError as exc:
            self.close()
            raise httpx.WriteTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:
            self.close()
            raise httpx.WriteError(str(exc), request=request) from exc
        try:
            sock.settimeout(timeouts.get("read"))
            response = conn.getresponse()
        except BaseException as exc:  # Ctrl-C too: closing the connection aborts a load
            self.close()
            mapped = _read_error(exc, request)
            if mapped is exc:
                raise
            raise mapped from exc
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.getheaders()]
        return httpx.Response(
            response.status,
            headers=headers,
            stream=_Body(self, conn, response, request),
            extensions={
                "http_version": b"HTTP/1.1" if response.version == 11 else b"HTTP/1.0",
                "reason_phrase": response.reason.encode("latin-1"),
            },
            request=request,
        )

    def _connection(
        self, request: httpx.Request, host: str, port: int, connect_timeout: float | None
    ) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and (self._address != (host, port) or not _idle_alive(conn)):
            self.close()
            conn = None
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=connect_timeout)
            # An ASCII host as bytes: getaddrinfo then skips the idna codec, whose import
            # (encodings.idna, stringprep) is a millisecond of every start.
            address = (host.encode("ascii") if host.isascii() else host, port)
            try:
                conn.sock = socket.create_connection(address, connect_timeout)  # type: ignore[arg-type]  # getaddrinfo takes bytes
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except TimeoutError as exc:
                conn.close()
                raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from exc
            except OSError as exc:
                conn.close()
                raise httpx.ConnectError(str(exc), request=request) from exc
            self._conn, self._address = conn, (host, port)
        return conn

    def _release(self, conn: http.client.HTTPConnection, reusable: bool) -> None:
        """A response is done with its connection: keep it for the next request, or close it."""
        if not reusable and self._conn is conn:
            self.close()

    def close(self) -> None:
        """Close the connection; a load in flight on it is then aborted by Ollama."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Body(httpx.SyncByteStream):
    """The response body as it arrives (chunked or sized; http.client decodes the framing)."""

    def __init__(
        self,
        transport: Http11Transport,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        request: httpx.Request,
    ) -> None:
        self._transport = transport
        self._conn = conn
        self._response = response
        self._request = request
        self._complete = False

    def __iter__(self) -> Iterator[bytes]:
        response = self._response
        try:
            while chunk := response.read1(_CHUNK):
                yield chunk
            if response.length:  # read1 returns b"" at a premature end instead of raising
                raise http.client.IncompleteRead(b"", response.length)
        except BaseException as exc:
            self._transport._release(self._conn, reusable=False)
            mapped = _read_error(exc, self._request)
            if mapped is exc:
                raise
            raise mapped from exc
        self._complete = True

    def close(self) -> None:
        reusable = self._complete and not self._response.will_close
        self._response.close()
        self._transport._release(self._conn, reusable)


def _idle_alive(conn: http.client.HTTPConnection) -> bool:
    """True when an idle kept-alive connection can take a request.

    An idle socket that reads as ready has been closed by the server (or holds bytes
    nobody asked for): either way it must not carry the next request.
    """
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _read_error(exc: BaseException, request: httpx.Request) -> BaseException:
    """The httpx exception for a failure while reading a response; others pass through."""
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(str(exc) or "timed out", request=request)
    if isinstance(exc, (http.client.HTTPException, ConnectionResetError, BrokenPipeError)):
        # RemoteDisconnected, IncompleteRead, BadStatusLine, LineTooLong, a reset: the
        # server broke the exchange off. httpcore calls these protocol errors too.
        message = str(exc) or type(exc).__name__
        if isinstance(exc, http.client.IncompleteRead):
            message = "peer closed connection without sending complete message body"
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, OSError):
        return httpx.ReadError(str(exc), request=request)
    return exc
