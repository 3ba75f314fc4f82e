"""``why MODEL``: the recent life of a model in plain words, from the journal."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ollama_resident.cli._options import HostOpt, JsonOpt

__all__ = ["register"]


def why(
    model: Annotated[
        str,
        typer.Argument(help="The model, as you type it: llama3.2, qwen2.5:14b, ns/model:tag."),
    ],
    server_log: Annotated[
        str | None,
        typer.Option(
            "--server-log",
            help="Also read Ollama's server log (a file, or - for stdin) and add what its "
            "scheduler lines say. Most of them are written only with OLLAMA_DEBUG=1.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    host: HostOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Explain why a model was unloaded, reloaded or lost its pin.

    Newest first: when it loaded, what changed its keep-alive, and why it went
    away, each with the evidence and how sure it is (certain, likely, a guess).
    Reads the journal that `watch` (or `guard`) and the preload, pin, apply and
    unload commands write; it says so when the journal does not cover the time.
    Only the entries of one server are told: --host, else OLLAMA_HOST (a note
    names the other servers the journal has entries from).

    \b
    Examples:
      ollama-resident why llama3.2
      journalctl -u ollama --since today | ollama-resident why llama3.2 --server-log -
      ollama-resident why qwen2.5:14b --server-log ~/.ollama/logs/server.log --json
    """
    from datetime import datetime, timezone

    from ollama_resident import render
    from ollama_resident import why as story
    from ollama_resident.cli._common import resolve_host
    from ollama_resident.cli._output import Output
    from ollama_resident.errors import UsageError
    from ollama_resident.journal import Journal

    out = Output(json=json_output)
    log = None
    if server_log is not None:
        if server_log == "-":
            log = story.parse_server_log(sys.stdin)
        else:
            try:
                with open(server_log, encoding="utf-8", errors="replace") as fh:
                    log = story.parse_server_log(fh)
            except OSError as exc:
                raise UsageError(
                    f"cannot read the server log {server_log}: {exc.strerror or exc}",
                    hint="on Linux it is usually `journalctl -u ollama`; on macOS "
                    "~/.ollama/logs/server.log",
                ) from None
    journal = Journal()
    result = story.build_story(
        model,
        journal.read(),
        now=datetime.now(timezone.utc),
        journal=str(journal.path),
        log=log,
        host=resolve_host(host).display,
    )
    if json_output:
        out.data(render.dumps(story.story_json(result)))
    else:
        out.data(story.render_story(result))


def register(app: typer.Typer) -> None:
    app.command("why")(why)
