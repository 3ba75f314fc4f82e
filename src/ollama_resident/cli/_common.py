"""Glue shared by the command modules: where the server is, and a client for it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


@dataclass(frozen=True)
class State:
    """Global options, set by the root callback on ``ctx.obj``."""

    debug: bool = False
    profiles: str | None = None  # --profiles FILE


def state(ctx: typer.Context) -> State:
    """The global options, from any command's context."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def resolve_host(option: str | None, profile_host: str | None = None) -> Host:
    """``--host``, then a profile's ``host``, then ``$OLLAMA_HOST``, then the default."""
    from ollama_resident.host import parse_host

    for value in (option, profile_host, os.environ.get(_env.OLLAMA_HOST)):
        if value is not None and value.strip():
            return parse_host(value)
    return parse_host(None)


def make_client(
    option: str | None, *, timeout: float = 10.0, profile_host: str | None = None
) -> OllamaClient:
    from ollama_resident.client import OllamaClient

    return OllamaClient(resolve_host(option, profile_host), timeout=timeout)
