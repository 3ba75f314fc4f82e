"""``watch`` (live residency view and event stream) and ``journal path|show``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ollama_resident.cli._options import (
    HostsOpt,
    JsonOpt,
    MetricsHostOpt,
    MetricsPortOpt,
    QuietOpt,
    TimeoutOpt,
)

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

    from ollama_resident.cli._output import Output
    from ollama_resident.events import Event
    from ollama_resident.watcher import Watcher

__all__ = ["register"]

_LIVE_EVENTS = 8


def watch(
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            "-n",
            help="Seconds between polls of /api/ps (0: as fast as the server answers).",
            min=0.0,
            metavar="SECONDS",
        ),
    ] = 1.0,
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl",
            help="One JSON object per event per line on stdout (the default when stdout is "
            "not a terminal).",
        ),
    ] = False,
    host: HostsOpt = None,
    timeout: TimeoutOpt = 5.0,
    no_journal: Annotated[
        bool,
        typer.Option("--no-journal", help="Do not append the events to the journal."),
    ] = False,
    settle: Annotated[
        float,
        typer.Option(
            "--settle",
            help="How long a model that went early with no visible cause waits for a new "
            "model to appear before it is called a stop rather than an eviction (a big "
            "model takes a while to load).",
            min=0.0,
            metavar="SECONDS",
        ),
    ] = 20.0,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = "127.0.0.1",
    server_log: Annotated[
        str | None,
        typer.Option(
            "--server-log",
            help="Follow Ollama's server log (a file as it grows, or - for stdin) and "
            "give each event the cause and the client the server's own lines name.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    docker: Annotated[
        str | None,
        typer.Option(
            "--docker",
            help="Follow the server log of this Docker container (`docker logs -f`).",
            metavar="CONTAINER",
            show_default=False,
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Watch what Ollama loads and unloads, and say why, as it happens.

    On a terminal: the loaded models with live countdowns, and the latest events
    with their reasons in words. Otherwise, or with --jsonl: one JSON object per
    event per line (time, host, model, event, reason, detail), flushed at once.

    Every event also goes to the journal (see `journal path`), so that `why MODEL`
    can answer later. Keeps running while the server is down, and says so.
    Ctrl-C (or SIGTERM) stops it with exit code 0.

    Repeat --host to watch several servers at once (events carry their host).
    --metrics-port serves what it sees as Prometheus metrics (docs/metrics.md).

    \b
    Events: loaded; unloaded (reason expired, stopped, evicted, reloaded,
    server_restart, unknown); keep_alive_changed; offload_changed; busy;
    server_unreachable (not reached since the watch began); server_down (it
    answered, then stopped); server_up (again, or first_answer). detail.confidence
    is certain, likely or guess.

    \b
    Examples:
      ollama-resident watch
      ollama-resident watch --jsonl | jq -c 'select(.event == "unloaded")'
      ollama-resident watch --host laptop --host gpu-box:11434 --metrics-port 9464
      journalctl -fu ollama -o cat | ollama-resident watch --server-log -
    """
    from ollama_resident import paths, stopping
    from ollama_resident.cli._common import resolve_host
    from ollama_resident.cli._metrics import metrics_board
    from ollama_resident.cli._output import Output, stop_when_reader_leaves
    from ollama_resident.client import OllamaClient
    from ollama_resident.fleet import unique_hosts
    from ollama_resident.journal import Journal
    from ollama_resident.watcher import Watcher

    out = Output(quiet=quiet)
    journal = None if no_journal else Journal()
    hosts = unique_hosts(resolve_host(h) for h in (host or [None]))  # type: ignore[list-item]
    clients = [OllamaClient(h, timeout=timeout) for h in hosts]
    follower = _follow(server_log, docker, len(clients))
    enrich = None
    if follower is not None:
        from ollama_resident.logmatch import upgrade

        window = interval + settle + 2.0

        def enrich(events: list[Event]) -> list[Event]:
            better = upgrade(events, follower.facts(), window_s=window)
            if any(_lacks_request(e) for e in better):
                # The request's [GIN] line is written when its answer ends, a moment
                # after the change: give the follower that moment.
                follower.wait_caught_up(0.5)
                better = upgrade(events, follower.facts(), window_s=window)
            return better

    watchers = [
        Watcher(c, interval, c.display_url, journal=journal, settle_s=settle, enrich=enrich)
        for c in clients
    ]
    recording = "not recording" if journal is None else f"recording to {paths.journal_path()}"
    live = not jsonl and out.rich_stdout
    try:
        with metrics_board(metrics_port, metrics_host, out) as board:
            if board is not None:
                for w in watchers:
                    board.add(w)
            count = board.count if board is not None else None
            if live:
                _run_live(watchers, out, recording, count)
            else:
                where = ", ".join(c.display_url for c in clients)
                out.info(f"watching {where} every {interval:g}s; {recording} (Ctrl-C to stop)")
                stop = stopping.current()  # set by Ctrl-C or SIGTERM
                stop_when_reader_leaves(stop)
                try:
                    with stopping.polling(stop):
                        _run_all(
                            watchers,
                            stop,
                            lambda events: _print_jsonl(events, out, watchers, count),
                        )
                finally:
                    stop.set()
    except KeyboardInterrupt:  # Ctrl-C and SIGTERM (Terminated) end a watch normally
        pass
    finally:
        for c in clients:
            c.close()
        if follower is not None:
            follower.close()


def _lacks_request(e: Event) -> bool:
    """An unload or keep-alive change the log has not explained yet (or not named the
    request of): its lines may be a moment behind the poll."""
    if e.event not in ("unloaded", "keep_alive_changed"):
        return False
    log = e.detail.get("server_log")
    if not isinstance(log, dict):
        return True
    return log.get("request") is None and log.get("cause") in ("evicted", "reloaded", "stopped")


def _follow(server_log: str | None, docker: str | None, servers: int) -> Any:
    """The follower of the server log asked for, started; None when none was."""
    if server_log is None and docker is None:
        return None
    from ollama_resident.errors import UsageError
    from ollama_resident.logfollow import Follower

    if server_log is not None and docker is not None:
        raise UsageError("give --server-log or --docker, not both", hint="one server log")
    if servers > 1:
        raise UsageError(
            "--server-log and --docker follow one server's log; watch one --host with them",
            hint="run one watch per server to follow each one's log",
        )
    if docker is not None:
        follower = Follower.docker(docker)
    elif server_log == "-":
        follower = Follower.stdin()
    else:
        assert server_log is not None
        follower = Follower.file(server_log)
    try:
        return follower.start()
    except OSError as exc:
        raise UsageError(
            f"cannot follow {follower.name}: {exc.strerror or exc}",
            hint="give the server log's path, or - to pipe it in",
        ) from None


def _run_all(
    watchers: list[Watcher],
    stop: threading.Event,
    on_events: Callable[[list[Event]], None],
) -> None:
    """Run every watcher until ``stop``: in this thread for one, a thread each for more."""
    if len(watchers) == 1:
        watchers[0].run(on_events, stop)
        return
    import functools

    from ollama_resident.fleet import run_together

    lock = threading.Lock()

    def locked(events: list[Event]) -> None:
        with lock:
            on_events(events)

    try:
        run_together([functools.partial(w.run, locked, stop) for w in watchers])
    finally:
        stop.set()


def _print_jsonl(
    events: list[Event],
    out: Output,
    watchers: list[Watcher],
    count: Callable[[list[Event]], None] | None,
) -> None:
    if count is not None:
        count(events)
    # The words on stderr first: a reader that acts on a line sees them already there.
    for e in events:
        if e.event == "server_unreachable":
            # Never seen up since this watch began: not "down", not reached (yet).
            out.warn(f"cannot reach Ollama at {e.host} yet{_why_not(e)}; still trying")
        elif e.event == "server_down":
            out.warn(f"Ollama at {e.host} is not answering{_why_not(e)}; still trying")
        elif e.event == "server_up" and e.reason == "first_answer":
            out.info(f"Ollama at {e.host} is answering now")
        elif e.event == "server_up":
            out.info(f"Ollama at {e.host} is answering again")
    out.jsonl(e.to_json() for e in events)
    _journal_warning(out, watchers)


def _why_not(e: Event) -> str:
    """`` (connection refused)``: the error of a server event, without its host (the line
    names it)."""
    from ollama_resident.errors import unreachable_reason

    error = e.detail.get("error")
    return f" ({unreachable_reason(error, e.host)})" if isinstance(error, str) and error else ""


_warned: set[str] = set()


def _journal_warning(out: Output, watchers: list[Watcher]) -> None:
    for watcher in watchers:
        error = watcher.journal_error
        if error and error not in _warned:
            _warned.add(error)
            out.warn(error)


def _run_live(
    watchers: list[Watcher],
    out: Output,
    recording: str,
    count: Callable[[list[Event]], None] | None,
) -> None:
    from rich.console import Group
    from rich.live import Live

    from ollama_resident import stopping
    from ollama_resident.cli._output import safe_renderable

    def on_events(events: list[Event]) -> None:
        if count is not None:
            count(events)
        _journal_warning(out, watchers)

    with Live(
        console=out.out_console(),
        get_renderable=lambda: safe_renderable(
            Group(*(_live_view(w, recording, out.out_console().width) for w in watchers))
        ),
        refresh_per_second=4,
        transient=False,
        redirect_stdout=False,
        redirect_stderr=False,
    ):
        stop = stopping.current()  # set by Ctrl-C or SIGTERM
        with stopping.polling(stop):
            _run_all(watchers, stop, on_events)


def _live_view(watcher: Watcher, recording: str, width: int | None = None) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    from ollama_resident import cells, render, why

    now = datetime.now(timezone.utc)
    parts: list[Any] = []
    version = f" (Ollama {watcher.version})" if watcher.version else ""
    every = f" every {watcher.interval:g}s; Ctrl-C to stop"
    head_text = f"Watching {watcher.host}{version}{every}"
    if width is None or cells.width(head_text) <= width:
        head = Text(f"Watching {watcher.host}", style="bold")
        head.append(version, style="")
        head.append(every, style="dim")
        parts.append(head)
    else:
        parts.append(_prose(head_text, "bold", width))
    parts.append(_prose(recording[:1].upper() + recording[1:], "dim", width))
    snapshot = watcher.snapshot
    if not watcher.up:
        from ollama_resident.errors import unreachable_reason

        # The heading names the server: the error does not again.
        error = unreachable_reason(watcher.last_error or "", watcher.host)
        reason = f" ({error})" if error else ""
        if not watcher.answered:
            since = watcher.unreachable_since
            when = f"; trying since {_clock(since)}" if since else "; still trying"
            parts.append(_prose(f"Cannot reach Ollama yet{reason}{when}", "yellow", width))
        else:
            since = watcher.down_since
            when = f" since {_clock(since)}" if since else ""
            down = f"Ollama is not answering{when}{reason}; still trying"
            parts.append(_prose(down, "yellow", width))
    elif snapshot is not None and not snapshot.models:
        parts.append(Text("No models loaded.", style="dim"))
    if snapshot is not None and snapshot.models:
        if watcher.up:
            parts.append(render.ps_styled(snapshot, now, width))
        else:
            # Stale: what was loaded when the server last answered, with the
            # countdowns as they stood then, never ticking on as if still true.
            taken = snapshot.taken_at
            stale = f"Last seen at {_clock(taken)} (stale until Ollama answers):"
            parts.append(_prose(stale, "yellow", width))
            table = render.ps_styled(snapshot, taken, width)
            table.stylize("dim")
            parts.append(table)
    for name in watcher.pending:
        parts.append(
            _prose(
                f"{name} went away early; waiting to see whether a new model evicted it",
                "yellow",
                width,
            )
        )
    recent = [e for e in list(watcher.recent) if not e.event.startswith("recording_")]
    if recent:
        from rich.table import Table

        parts.append(Text("Latest events", style="bold"))
        # A grid, so a long event wraps under its text, not under the clock.
        events = Table.grid(padding=(0, 2))
        events.add_column(no_wrap=True)
        events.add_column()
        for e in recent[-_LIVE_EVENTS:]:
            line = Text()
            if e.model:
                line.append(e.model + "  ", style="bold")
            line.append(why.describe(e), style=_event_style(e))
            client = e.detail.get("by_client")
            if isinstance(client, str):
                line.append(f" (request from {client}, per the server log)", style="dim")
            events.add_row(Text(_clock(e.time), style="dim"), line)
        parts.append(events)
    return Group(*parts)


def _prose(text: str, style: str, width: int | None) -> Text:
    """A line of the live view; on a terminal too narrow for it, it wraps two cells in."""
    from rich.text import Text

    from ollama_resident.cells import hang
    from ollama_resident.textsafe import printable

    return Text("\n".join(hang(printable(text), width, "", "  ")), style=style)


def _clock(when: datetime) -> str:
    return when.astimezone().strftime("%H:%M:%S")


def _event_style(e: Event) -> str:
    if e.event in ("unloaded", "server_down", "server_unreachable"):
        return "yellow" if e.reason in ("expired", "stopped") else "red"
    if e.event == "keep_alive_changed" and e.reason == "pin_lost":
        return "red"
    if e.event in ("loaded", "server_up"):
        return "green"
    return ""


# -- journal -------------------------------------------------------------------------------

journal_app = typer.Typer(
    name="journal",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="The residency journal: where it is, and what it holds.\n\n"
    "\b\nExamples:\n"
    "  ollama-resident journal path\n"
    "  ollama-resident journal show\n"
    "  ollama-resident why llama3.2",
)


@journal_app.command("path")
def journal_path() -> None:
    """Print where the journal is (set OLLAMA_RESIDENT_JOURNAL to move it).

    `watch` and the preload, pin and unload commands append to it; `why` reads it.
    It is rotated at 1 MiB, keeping two older files (.1, .2). Its default
    directory, the state directory, also holds apply-NAME.log: what the startup
    line's background applies printed (see `shell-init`).

    \b
    Examples:
      ollama-resident journal path
      tail -f "$(ollama-resident journal path)" | jq -c '{time, model, event, reason}'
      OLLAMA_RESIDENT_JOURNAL=/var/tmp/resident.jsonl ollama-resident watch
    """
    from ollama_resident import paths
    from ollama_resident.cli._output import Output

    Output().data(str(paths.journal_path()))


@journal_app.command("show")
def journal_show(
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Only this model (and server events).", metavar="NAME"),
    ] = None,
    json_output: JsonOpt = False,
    limit: Annotated[
        int,
        typer.Option("--limit", help="Show the last N events (0: all).", min=0, metavar="N"),
    ] = 100,
) -> None:
    """Show the journal's events, oldest first, in words (or as JSON).

    \b
    Examples:
      ollama-resident journal show --model llama3.2
      ollama-resident journal show --json --limit 0 | jq '.[] | select(.event == "unloaded")'
    """
    from ollama_resident import render, why
    from ollama_resident.cli._output import Output
    from ollama_resident.journal import Journal

    out = Output(json=json_output)
    journal = Journal()
    # One event recorded twice (a watch's poll and the command that caused it) is shown
    # once, as `why` tells it: the command's cause wins.
    events = why.merge_duplicates(journal.read(model=model))
    if model is not None and not any(e.model for e in events):
        # Server and recording lines alone would read as the model's story: say it has none.
        _no_entries(out, model, journal)
        if json_output:
            out.data("[]")
        return
    if limit:
        events = events[-limit:]
    if json_output:
        out.data(render.dumps([e.to_json() for e in events]))
        return
    if not events:
        which = f" for {model}" if model else ""
        out.info(
            f"No events{which} in {journal.path}. Start recording with "
            "`ollama-resident watch` (or `guard`)."
        )
        return
    from ollama_resident.cells import hang
    from ollama_resident.textsafe import printable

    # On a terminal a long event wraps under its text, not under the date (as `guard`).
    width = out.width if out.rich_stdout else None
    lines = []
    for e in events:
        when = e.time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        # A server's own events name it (a journal may hold several servers).
        subject = e.model or e.host or "-"
        lines.extend(hang(printable(f"{subject}  {why.describe(e)}"), width, f"{when}  "))
    out.data("\n".join(lines))


def _no_entries(out: Any, model: str, journal: Any) -> None:
    """Say on stderr that the journal has no entry for ``model``, with the close names
    it has (as `why` does)."""
    from ollama_resident.models import canonical_name
    from ollama_resident.resolve import close_matches

    known = {canonical_name(e.model): None for e in journal.read() if e.model}
    near = close_matches(model, known)
    if near:
        hint = "; did you mean " + " or ".join(f'"{m}"' for m in near) + "?"
    elif known:
        hint = ". It has: " + ", ".join(list(known)[:8]) + ("..." if len(known) > 8 else ".")
    else:
        hint = ". Start recording with `ollama-resident watch` (or `guard`)."
    out.info(f'No events for "{model}" in {journal.path}{hint}')


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
    app.add_typer(journal_app, name="journal")
