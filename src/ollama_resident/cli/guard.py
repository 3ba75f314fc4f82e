"""``guard``: keep a set of models resident against everything, as a service or at the shell."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from ollama_resident.cli._complete import installed_models, profile_names
from ollama_resident.cli._options import (
    HostsOpt,
    MetricsHostOpt,
    MetricsPortOpt,
    QuietOpt,
    WaitOpt,
)

if TYPE_CHECKING:
    from ollama_resident.cli._output import Output
    from ollama_resident.errors import ResidentError
    from ollama_resident.events import Event
    from ollama_resident.guard import Guard, GuardTarget
    from ollama_resident.host import Host
    from ollama_resident.residency import LoadRequest

__all__ = ["register"]

# What makes `--once` exit 1: a restore that failed, or models that cannot all stay loaded.
_FAILURES = ("restore_failed", "conflict")


def guard(
    ctx: typer.Context,
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models to keep loaded (forever unless --for).",
            show_default=False,
            autocompletion=installed_models,
        ),
    ] = None,
    profile: Annotated[
        list[str] | None,
        typer.Option(
            "--profile",
            "-p",
            help="Guard this profile's models, with the profile's keep-alives and host. "
            "Repeat it to guard several profiles (each on its own host) in one process.",
            show_default=False,
            autocompletion=profile_names,
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
    host: HostsOpt = None,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = "127.0.0.1",
    quiet: QuietOpt = False,
) -> None:
    """Keep models resident: re-pin what a client reset, reload what went away.

    Every --interval seconds it reads /api/ps. A guarded model whose keep-alive
    is no longer what was asked (another client sent its own keep_alive) gets
    it back at once, with the context it is loaded with, so it never reloads.
    A guarded model that is gone (expired, stopped, evicted, server restart)
    is loaded again. While the server is down it waits, and restores the whole
    set when it is back. Models that cannot all fit, or that fail to load,
    back off exponentially and are reported once, with what to do.

    Several --profile (or --host) options guard every host at once, each in
    its own thread with its own backoff: a host that is down or slow delays
    no other. --metrics-port serves Prometheus metrics (docs/metrics.md).

    Each action is an event, like `watch`'s, journaled for `why`. SIGTERM and
    Ctrl-C end it within a second, exit 0.

    \b
    Examples:
      ollama-resident guard llama3.2 nomic-embed-text
      ollama-resident guard --profile work --wait 300      # in a service unit
      ollama-resident guard --profile work --once          # from cron
      ollama-resident guard -p laptop -p gpu-box --metrics-port 9464
      ollama-resident service print --profile work         # a unit that runs it
    """
    from ollama_resident.cli._metrics import metrics_board
    from ollama_resident.cli._output import Output

    plans = _plans(ctx, models, profile or [], for_, host or [])
    out = Output(quiet=quiet)
    if not plans:
        # Only empty profiles: nothing to keep, which is no failure. Exit 0 (as `apply`
        # does), so a service with Restart=on-failure does not restart in a loop.
        out.warn(f"profile {', '.join(map(repr, profile or []))} has no models: nothing to guard")
        return
    as_jsonl = jsonl or not out.rich_stdout
    lock = threading.Lock()
    several = len(plans) > 1

    with metrics_board(metrics_port, metrics_host, out) as board:

        def emit(events: list[Event]) -> None:
            with lock:
                if board is not None:
                    board.count(events)
                _print(events, out, as_jsonl, with_host=several, fatal=once)

        guards = [
            _build(h, requests, interval, no_journal, emit, once=once) for h, requests in plans
        ]
        if board is not None:
            for g in guards:
                board.add(g.watcher, {t.key: _keep_text(t) for t in g.targets})
        try:
            if several:
                _run_many(guards, out, wait=wait, once=once, interval=interval)
            else:
                _run_one(guards[0], out, wait=wait, once=once, interval=interval)
        finally:
            for g in guards:
                g.client.close()


def _plans(
    ctx: typer.Context,
    models: list[str] | None,
    profile_names: list[str],
    for_: str | None,
    hosts: list[str],
) -> list[tuple[Host, list[LoadRequest]]]:
    """Which models to keep on which host: one entry per host, merged across profiles."""
    from ollama_resident import profiles
    from ollama_resident.cli._common import resolve_host, state
    from ollama_resident.durations import KeepAlive, parse_keep_alive
    from ollama_resident.errors import UsageError
    from ollama_resident.fleet import group_by_host, unique_hosts
    from ollama_resident.models import canonical_name
    from ollama_resident.residency import LoadRequest

    names = [m for m in (models or []) if m.strip()]
    if profile_names and names:
        raise UsageError(
            "give models or --profile, not both",
            hint="`ollama-resident profile add NAME MODEL` puts a model in a profile",
        )
    if not profile_names and not names:
        raise UsageError(
            "guard: name the models to keep loaded, or --profile NAME",
            hint="for example `ollama-resident guard llama3.2`",
        )
    given = unique_hosts(resolve_host(h) for h in hosts if h.strip())
    groups: list[tuple[str, list[Host], list[LoadRequest]]] = []
    if profile_names:
        if for_:
            raise UsageError(
                "--for goes with model names; a profile sets its own keep-alives",
                hint="change the profile's keep_alive with `ollama-resident profile edit`",
            )
        for name in dict.fromkeys(profile_names):
            chosen = profiles.resolve(name, state(ctx).profiles)
            if not chosen.models:
                continue  # nothing to keep: see guard(), which says so and exits 0
            targets = given or [resolve_host(None, chosen.host)]
            groups.append((f"profile {name!r}", targets, chosen.load_requests()))
    else:
        keep = KeepAlive.forever()
        if for_:
            try:
                keep = parse_keep_alive(for_, unload_ok=False)
            except ValueError as exc:
                raise UsageError(
                    f"--for: {exc}", hint="a Go duration such as 30m or 2h, or omit --for"
                ) from None
            if keep.kind == "unload":
                raise UsageError(
                    "--for 0 would unload the models",
                    hint="`ollama-resident unload MODEL` unloads; --for takes a duration",
                )
        targets = given or [resolve_host(None)]
        groups.append(("the command line", targets, [LoadRequest(m, keep) for m in names]))
    return group_by_host(
        groups,
        key=lambda r: canonical_name(r.model),
        same=lambda a, b: (a.keep_alive, a.num_ctx) == (b.keep_alive, b.num_ctx),
    )


def _keep_text(target: GuardTarget) -> str:
    keep = target.request.keep_alive
    return "default" if keep is None else keep.describe()


def _build(
    host: Host,
    requests: list[LoadRequest],
    interval: float,
    no_journal: bool,
    emit: Callable[[list[Event]], None],
    *,
    once: bool = False,
) -> Guard:
    from ollama_resident.client import OllamaClient
    from ollama_resident.guard import Guard, GuardTarget
    from ollama_resident.journal import Journal
    from ollama_resident.watcher import Watcher

    client = OllamaClient(host, timeout=10.0)
    journal = None if no_journal else Journal()
    watcher = Watcher(client, interval, client.display_url, journal=journal, source="guard")
    return Guard(
        client,
        [GuardTarget(r) for r in requests],
        watcher,
        interval=interval,
        on_events=emit,
        retries=not once,  # --once retries nothing, so its events promise no retry
    )


def _guarding(g: Guard, interval: float) -> str:
    return (
        f"guarding {', '.join(t.request.model for t in g.targets)} on {g.client.display_url} "
        f"every {interval:g}s"
    )


def _run_one(g: Guard, out: Output, *, wait: float, once: bool, interval: float) -> None:
    from ollama_resident import stopping
    from ollama_resident.cli._output import stop_when_reader_leaves

    client, watcher = g.client, g.watcher
    if wait > 0:
        from ollama_resident.cli.load import wait_for_server

        wait_for_server(out, client, wait)
    unanswered = _learn_aliases(g)
    if once:
        if unanswered is not None:
            raise unanswered  # one attempt, in the words (and the time) it states
        events = g.check()
        g.on_events(watcher.stop())
        if not watcher.up:
            from ollama_resident.errors import ServerUnreachable

            # The same error, in the same words, as any other command gets for it.
            raise watcher.last_exception or ServerUnreachable(client.display_url)
        # A conflict is a failure too: the guarded models cannot all stay loaded.
        if any(e.event in _FAILURES for e in events):
            raise typer.Exit(1)
        return
    out.info(f"{_guarding(g, interval)} (Ctrl-C to stop)")
    stop = stopping.current()  # set by Ctrl-C or SIGTERM
    stop_when_reader_leaves(stop)  # `guard --jsonl | head -1` ends when head does
    with contextlib.suppress(KeyboardInterrupt), stopping.polling(stop):
        g.run(stop)  # Ctrl-C and SIGTERM end it normally


def _learn_aliases(g: Guard) -> ResidentError | None:
    """Other names of one model file (`ollama cp`): guarded by the digest they share.

    Returns the error when the server accepted but did not answer within the timeout:
    ``--once`` reports that one attempt instead of waiting the timeout a second time.
    """
    from ollama_resident.errors import RequestTimeout, ResidentError
    from ollama_resident.resolve import check_names

    try:
        names = [t.request.model for t in g.targets]
        check_names(g.client, names, g.client.ps(), strict=False)
    except RequestTimeout as exc:
        return exc  # a running guard's first check says so (and keeps trying)
    except ResidentError:
        pass  # down (said at once, by the first check) or odd: the first check says so
    return None


def _run_many(
    guards: list[Guard], out: Output, *, wait: float, once: bool, interval: float
) -> None:
    """Every guard in its own thread: a host down or slow holds up no other."""
    from ollama_resident import fleet, stopping
    from ollama_resident.cli._output import stop_when_reader_leaves
    from ollama_resident.errors import ResidentError, ServerUnreachable
    from ollama_resident.residency import wait_ready

    by_url = {g.client.host.url: g for g in guards}
    hosts = [g.client.host for g in guards]
    if wait > 0:
        for ready in fleet.each_host(hosts, lambda h: wait_ready(by_url[h.url].client, wait)):
            if ready.error is not None:
                out.warn(f"{ready.error.message}; guarding it anyway, it is retried every check")
    if once:

        def check(h: Host) -> list[Event]:
            g = by_url[h.url]
            unanswered = _learn_aliases(g)
            if unanswered is not None:
                raise unanswered  # one attempt, in the words (and the time) it states
            events = g.check()
            g.on_events(g.watcher.stop())
            if not g.watcher.up:
                raise g.watcher.last_exception or ServerUnreachable(h.display)
            return events

        results = fleet.each_host(hosts, check)
        for r in results:
            if r.error is not None:
                out.error(r.error.message)
        failed = any(e.event in _FAILURES for r in results for e in (r.value or []))
        code = fleet.exit_code(results, failed=failed)
        if code:
            raise typer.Exit(int(code))
        return
    for g in guards:
        out.info(_guarding(g, interval))
    out.info("(Ctrl-C to stop)")
    stop = stopping.current()  # set by Ctrl-C or SIGTERM
    stop_when_reader_leaves(stop)

    def run(g: Guard) -> None:
        _learn_aliases(g)  # in its own thread: a slow host holds up no other
        try:
            g.run(stop)
        except ResidentError as exc:  # e.g. a server too old to watch: the others go on
            from ollama_resident.errors import without_host

            url = g.client.display_url
            out.error(f"{url}: {without_host(exc.message, url)}; no longer guarded", exc.hint)

    try:
        with stopping.polling(stop):
            fleet.run_together([functools.partial(run, g) for g in guards])
    except KeyboardInterrupt:  # Ctrl-C and SIGTERM end it normally
        stop.set()


def _print(
    events: list[Event], out: Output, as_jsonl: bool, *, with_host: bool = False, fatal: bool
) -> None:
    """Events as JSONL (failures also on stderr) or as lines people read.

    ``fatal`` (``--once``): a failure decides the exit code, so it is an error line,
    shown with --quiet too; a guard that keeps running warns and retries.
    """
    if not events:
        return
    from ollama_resident import render

    failure = out.error if fatal else out.warn
    if as_jsonl:
        out.jsonl(e.to_json() for e in events)
        for e in events:
            if e.event in _FAILURES:
                text = render.guard_event_text(e, retrying=not fatal)
                failure(f"{e.host}  {e.model}  {text}" if with_host else text)
        return
    if fatal:
        # --once: a server not answering is its error line (and exit code), said once.
        events = [e for e in events if e.event not in ("server_down", "server_unreachable")]
        if not events:
            return
    # One guard's events at a time (each host's guard emits its own): its models' history.
    seen = _SEEN.setdefault(events[0].host, set())
    for level, line in render.guard_lines(events, seen, retrying=not fatal, with_host=with_host):
        # On a terminal a long line wraps under its text, not under the clock (as `watch`).
        hang = len(line.partition("  ")[0]) + 2
        if level == "failed":
            failure(line, hang=hang)
        elif level == "warn":
            out.warn(line, hang=hang)
        else:
            out.info(line, hang=hang)


# Per host, the models seen loaded in this run: "loaded" once, then "loaded again".
_SEEN: dict[str, set[str]] = {}


def register(app: typer.Typer) -> None:
    app.command("guard")(guard)
