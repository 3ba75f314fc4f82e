"""The client's plain-http transport (client_transport.py): what goes wrong on the wire ends
as the client's own errors.

Ordinary traffic is covered by every CLI test (they all go through it to the fake
Ollama). Here a scripted loopback server does what the fake does not: close an idle
kept-alive connection, cut a body short, answer in chunks, never answer.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest

from conftest import closed_port
from fakeollama import FakeOllama
from ollama_resident.client import OllamaClient
from ollama_resident.errors import RequestTimeout, ServerUnreachable
from ollama_resident.host import parse_host

PS_BODY = b'{"models":[]}'

Handler = Callable[[socket.socket, int], None]


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    return data


def _reply(body: bytes = PS_BODY, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
        + extra
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


@contextmanager
def scripted_server(handler: Handler) -> Iterator[tuple[str, list[int]]]:
    """A loopback server calling ``handler(conn, n)`` for its n-th connection (from 0).

    Yields the URL and the list of connection numbers accepted so far.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        n = 0
        while not stop.is_set():
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            accepted.append(n)
            threading.Thread(target=_run, args=(conn, n), daemon=True).start()
            n += 1

    def _run(conn: socket.socket, n: int) -> None:
        with conn, suppress(OSError):  # the client went away: nothing to serve
            handler(conn, n)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        with socket.create_connection(listener.getsockname()):  # wakes accept()
            pass
        listener.close()
        thread.join(5)


def _client(url: str, timeout: float = 5.0) -> OllamaClient:
    return OllamaClient(parse_host(url), timeout=timeout)


def test_keeps_one_connection_across_requests():
    def handler(conn: socket.socket, n: int) -> None:
        while _read_request(conn):
            conn.sendall(_reply())

    with scripted_server(handler) as (url, accepted), _client(url) as client:
        for _ in range(3):
            assert client.ps().models == ()
        assert accepted == [0]


def test_idle_connection_closed_by_the_server_is_replaced():
    served = threading.Event()

    def handler(conn: socket.socket, n: int) -> None:
        while _read_request(conn):
            conn.sendall(_reply())
            served.set()
            if n == 0:
                return  # close the kept-alive connection after one answer

    with scripted_server(handler) as (url, accepted), _client(url) as client:
        client.ps()
        assert served.wait(5)
        # The close may not have reached us yet: wait until the socket reads as closed.
        sock = client._http._transport._conn.sock  # type: ignore[union-attr]
        sock.settimeout(5)
        assert sock.recv(1, socket.MSG_PEEK) == b""
        assert client.ps().models == ()
        assert accepted == [0, 1]


def test_connection_close_answer_then_next_request():
    def handler(conn: socket.socket, n: int) -> None:
        if _read_request(conn):
            conn.sendall(_reply(extra=b"Connection: close\r\n"))

    with scripted_server(handler) as (url, accepted), _client(url) as client:
        client.ps()
        client.ps()
        assert accepted == [0, 1]


def test_chunked_answer_is_decoded():
    def handler(conn: socket.socket, n: int) -> None:
        while _read_request(conn):
            half = len(PS_BODY) // 2
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                + f"{half:x}\r\n".encode()
                + PS_BODY[:half]
                + b"\r\n"
                + f"{len(PS_BODY) - half:x}\r\n".encode()
                + PS_BODY[half:]
                + b"\r\n0\r\n\r\n"
            )

    with scripted_server(handler) as (url, _accepted), _client(url) as client:
        assert client.ps().models == ()
        assert client.ps().models == ()  # the connection is still usable


def test_body_cut_short_is_a_lost_connection():
    def handler(conn: socket.socket, n: int) -> None:
        if _read_request(conn):
            conn.sendall(_reply()[:-5])  # then close

    with (
        scripted_server(handler) as (url, _accepted),
        _client(url) as client,
        pytest.raises(ServerUnreachable, match="connection lost"),
    ):
        client.ps()


def test_closed_without_answer_is_a_lost_connection():
    def handler(conn: socket.socket, n: int) -> None:
        _read_request(conn)

    with (
        scripted_server(handler) as (url, _accepted),
        _client(url) as client,
        pytest.raises(ServerUnreachable, match="connection lost"),
    ):
        client.ps()


def test_no_answer_in_time_is_a_timeout():
    release = threading.Event()

    def handler(conn: socket.socket, n: int) -> None:
        _read_request(conn)
        release.wait(10)

    try:
        with (
            scripted_server(handler) as (url, _accepted),
            _client(url, timeout=0.3) as client,
            pytest.raises(RequestTimeout),
        ):
            client.ps()
    finally:
        release.set()


def test_nothing_listening_is_unreachable():
    client = _client(f"http://127.0.0.1:{closed_port()}")
    with client, pytest.raises(ServerUnreachable, match="connection refused"):
        client.ps()


def test_error_status_comes_through(ollama: FakeOllama):
    ollama.fail_next("/api/ps", 500, "boom")
    with _client(ollama.url) as client:
        with pytest.raises(Exception, match="boom"):
            client.ps()
        assert client.ps().models == ()
