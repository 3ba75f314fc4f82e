"""Glue shared by the command modules: where the server is, and a client for it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

import typer

from ollama_resident import _env

if TYPE_CHECKING:
    from ollama_resident.client import OllamaClient
    from ollama_resident.host import Host

__all__ = [
    "State",
    "make_client",
    "resolve_host",
    "state",
]


class State(NamedTuple):  # not a dataclass: defined by every run, a tenth of the cost
    """Global options, set by the root callback on ``ctx.obj``."""

    debug: bool = False
    profiles: str | None = None  # --profiles FILE


def state(ctx: typer.Context) -> State:
    """The global options, from any command's context."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def resolve_host(option: str | None, profile_host: str | None = None) -> Host:
    """``--host``, then a profile's ``host``, then ``$OLLAMA_HOST``, then the default.

    A value the tool cannot use (``127.0.0.1:99999``, ``http://[::1:11601``) is a
    UsageError naming the value and where it came from, before anything is sent:
    Ollama would read an invalid port as its default and reach another server.
    """
    from ollama_resident.errors import UsageError
    from ollama_resident.host import HostError, check_host, parse_host, redact

    sources = (
        (option, "--host"),
        (profile_host, "the profile's host"),
        (os.environ.get(_env.OLLAMA_HOST), _env.OLLAMA_HOST),
    )
    for value, source in sources:
        if value is not None and value.strip():
            try:
                return check_host(value)
            except HostError as exc:
                shown = redact(value).replace("\\", "\\\\").replace('"', '\\"')
                raise UsageError(
                    f'{source} "{shown}" cannot be used: {exc}',
                    hint="give the server as HOST[:PORT] or http(s)://HOST[:PORT][/PATH], "
                    "e.g. 127.0.0.1:11434 or https://gpu-box/ollama",
                ) from None
    return parse_host(None)


def make_client(
    option: str | None, *, timeout: float = 10.0, profile_host: str | None = None
) -> OllamaClient:
    from ollama_resident.client import OllamaClient

    return OllamaClient(resolve_host(option, profile_host), timeout=timeout)
