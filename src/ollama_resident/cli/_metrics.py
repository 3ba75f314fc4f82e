"""``--metrics-port``: serve a :class:`~ollama_resident.metrics.Board` while a command runs.

Nothing here is imported unless the option is given, so ``watch`` and ``guard``
without it never load ``http.server``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ollama_resident.cli._output import Output
    from ollama_resident.metrics import Board

__all__ = ["metrics_board"]


@contextmanager
def metrics_board(port: int | None, host: str, out: Output) -> Iterator[Board | None]:
    """A board served at ``http://HOST:PORT/metrics``, or None without ``--metrics-port``.

    Raises UsageError (exit 2) when the address cannot be bound.
    """
    if port is None:
        yield None
        return
    from ollama_resident.metrics import Board
    from ollama_resident.metrics_http import MetricsServer

    board = Board()
    with MetricsServer(board.render, host, port) as server:
        out.info(f"serving metrics at {server.url}")
        yield board
