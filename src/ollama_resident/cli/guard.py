"""``guard``: keep a set of models resident against everything, as a service or at the shell."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ollama_resident.cli._options import HostOpt, WaitOpt

if TYPE_CHECKING:
    from ollama_resident.cli._output import Output
    from ollama_resident.events import Event

__all__ = ["register"]


def guard(
    ctx: typer.Context,
    models: Annotated[
        list[str] | None,
        typer.Argument(help="Models to keep loaded (forever unless --for).", show_default=False),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            help="Guard this profile's models, with the profile's keep-alives and host.",
            show_default=False,
        ),
    ] = None,
    for_: Annotated[
        str | None,
        typer.Option(
            "--for",
            help="With MODEL arguments: keep this window instead of forever (e.g. 8h).",
            metavar="DUR",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            "-n",
            help="Seconds between checks; nothing stays broken longer than this plus one load.",
            min=0.1,
            metavar="SECONDS",
        ),
    ] = 5.0,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Check and restore a single time, then exit (cron, ExecStartPost): "
            "0 all resident, 1 something failed or the models cannot all stay loaded "
            "(a conflict), 3 unreachable.",
        ),
    ] = False,
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl",
            help="One JSON object per event per line (the default when stdout is not a terminal).",
        ),
    ] = False,
    no_journal: Annotated[
        bool, typer.Option("--no-journal", help="Do not append events to the journal.")
    ] = False,
    wait: WaitOpt = 0.0,
    host: HostOpt = None,
) -> None:
    """Keep models resident: re-pin what a client reset, reload what went away.

    Every --interval seconds it reads /api/ps. A guarded model whose keep-alive
    is no longer what was asked (another client sent its own keep_alive) gets
    it back at once, with the context it is loaded with, so it never reloads.
    A guarded model that is gone (expired, stopped, evicted, server restart)
    is loaded again. While the server is down it waits, and restores the whole
    set when it is back. Models that cannot all fit, or that fail to load,
    back off exponentially and are reported once, with what to do.

    Each action is an event, like `watch`'s, journaled for `why`. SIGTERM and
    Ctrl-C end it within a second, exit 0.

    \b
    Examples:
      ollama-resident guard llama3.2 nomic-embed-text
      ollama-resident guard --profile work --wait 300      # in a service unit
      ollama-resident guard --profile work --once          # from cron
      ollama-resident service print --profile work         # a unit that runs it
    """
    from ollama_resident import profiles
    from ollama_resident.cli._common import make_client, state
    from ollama_resident.cli._output import Output
    from ollama_resident.durations import KeepAlive, parse_keep_alive
    from ollama_resident.errors import UsageError
    from ollama_resident.guard import Guard, GuardTarget
    from ollama_resident.journal import Journal
    from ollama_resident.residency import LoadRequest
    from ollama_resident.watcher import Watcher

    names = [m for m in (models or []) if m.strip()]
    if profile and names:
        raise UsageError("give models or --profile, not both")
    if not profile and not names:
        raise UsageError(
            "guard: name the models to keep loaded, or --profile NAME",
            hint="for example `ollama-resident guard llama3.2`",
        )
    profile_host = None
    if profile:
        if for_:
            raise UsageError("--for goes with model names; a profile sets its own keep-alives")
        chosen = profiles.resolve(profile, state(ctx).profiles)
        if not chosen.models:
            raise UsageError(f"profile {profile!r} has no models")
        requests = chosen.load_requests()
        profile_host = chosen.host
    else:
        keep = KeepAlive.forever()
        if for_:
            try:
                keep = parse_keep_alive(for_)
            except ValueError as exc:
                raise UsageError(f"--for: {exc}") from None
            if keep.kind == "unload":
                raise UsageError("--for 0 would unload the models; use `unload`")
        requests = [LoadRequest(m, keep) for m in names]

    out = Output()
    as_jsonl = jsonl or not out.rich_stdout
    client = make_client(host, profile_host=profile_host, timeout=10.0)
    journal = None if no_journal else Journal()
    watcher = Watcher(client, interval, client.display_url, journal=journal, source="guard")
    g = Guard(
        client,
        [GuardTarget(r) for r in requests],
        watcher,
        interval=interval,
        on_events=lambda events: _print(events, out, as_jsonl),
    )
    with client:
        if wait > 0:
            from ollama_resident.cli.load import wait_for_server

            wait_for_server(out, client, wait)
        if once:
            events = g.check()
            _print(watcher.stop(), out, as_jsonl)
            if not watcher.up:
                from ollama_resident.errors import ServerUnreachable

                raise ServerUnreachable(client.display_url, watcher.last_error or "")
            # A conflict is a failure too: the guarded models cannot all stay loaded.
            if any(e.event in ("restore_failed", "conflict") for e in events):
                raise typer.Exit(1)
            return
        out.info(
            f"guarding {', '.join(r.model for r in requests)} on {client.display_url} "
            f"every {interval:g}s (Ctrl-C to stop)"
        )
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C and SIGTERM end it normally
            g.run()


def _print(events: list[Event], out: Output, as_jsonl: bool) -> None:
    if not events:
        return
    if as_jsonl:
        import json

        for e in events:
            sys.stdout.write(json.dumps(e.to_json(), ensure_ascii=False, separators=(",", ":")))
            sys.stdout.write("\n")
        sys.stdout.flush()
        for e in events:
            if e.event in ("conflict", "restore_failed"):
                out.warn(_text(e))
        return
    from ollama_resident import render

    for level, line in render.guard_lines(events, _SEEN):
        if level == "warn":
            out.warn(line)
        else:
            out.info(line)


_SEEN: set[str] = set()  # models seen loaded in this run: "loaded" once, then "loaded again"


def _text(e: Event) -> str:
    from ollama_resident import render

    return render.guard_event_text(e)


def register(app: typer.Typer) -> None:
    app.command("guard")(guard)
