"""Options and glue shared by the commands that plan loads: apply, preload, pin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ollama_resident.client import OllamaClient
    from ollama_resident.serverfacts import Limit

__all__ = [
    "DryRunOpt",
    "ForceOpt",
    "MaxLoadedOpt",
    "MemoryOpt",
    "ServerLogOpt",
    "limits_for",
    "memory_option",
]


def memory_option(value: str | None) -> str | None:
    """Validate --memory at parse time (exit 2 before anything is sent)."""
    if value is None:
        return None
    from ollama_resident.plan import parse_size

    try:
        parse_size(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", "-n", help="Print the plan and stop; nothing is sent."),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Go ahead although the server's limits say the models cannot all stay "
        "loaded (each load would push out one asked for).",
    ),
]
MaxLoadedOpt = Annotated[
    int | None,
    typer.Option(
        "--max-loaded",
        help="The server's model cap, for predicting evictions (default: read from the "
        "server's log or environment, see `doctor`; else 3; 0: no cap).",
        min=0,
        metavar="N",
        show_default=False,
    ),
]
MemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--memory",
        help="Memory Ollama may fill, e.g. 24GB, for predicting evictions by size "
        "(default: the server's devices, from its log).",
        callback=memory_option,
        metavar="SIZE",
        show_default=False,
    ),
]
ServerLogOpt = Annotated[
    str | None,
    typer.Option(
        "--server-log",
        help="Read the server's limits from this log file instead of looking for it.",
        metavar="FILE",
        show_default=False,
    ),
]


def limits_for(
    client: OllamaClient, server_log: str | None, max_loaded: int | None, memory: str | None
) -> tuple[Limit, Limit]:
    """The cap and memory for a plan: the options, else the server's facts (see `doctor`)."""
    from ollama_resident import factsources
    from ollama_resident.plan import parse_size
    from ollama_resident.serverfacts import plan_limits, unknown

    size = parse_size(memory) if memory else None
    if max_loaded is not None and size is not None:
        return plan_limits(unknown("not needed"), max_loaded, size)
    gathered = factsources.gather(client.host, version=client.version(), server_log=server_log)
    return plan_limits(gathered.facts, max_loaded, size)
