"""``preload``, ``pin`` and ``unload``: the commands people type and put in scripts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer

from ollama_resident.cli._complete import installed_models, loaded_models, profile_names
from ollama_resident.cli._limits import (
    DryRunOpt,
    ForceOpt,
    MaxLoadedOpt,
    MemoryOpt,
    ServerLogOpt,
)
from ollama_resident.cli._options import HostsOpt, JsonOpt, QuietOpt, TimeoutOpt, WaitOpt

if TYPE_CHECKING:
    from ollama_resident.cli._output import Output
    from ollama_resident.client import OllamaClient
    from ollama_resident.durations import KeepAlive
    from ollama_resident.models import PsSnapshot
    from ollama_resident.plan import Plan
    from ollama_resident.residency import LoadOutcome, LoadRequest, UnloadOutcome

__all__ = ["register"]


def _keep_alive(value: str | None) -> str | None:
    """Validate a duration at parse time, so a typo exits 2 before anything is sent."""
    if value is None:
        return None
    from ollama_resident.durations import DurationError, parse_keep_alive

    try:
        parsed = parse_keep_alive(value, unload_ok=False)
    except DurationError as exc:
        raise typer.BadParameter(str(exc)) from None
    if parsed.kind == "unload":
        # An empty request with keep_alive 0 is Ollama's unload shortcut.
        raise typer.BadParameter(
            f"{value!r} would unload the model at once; use `ollama-resident unload` for that"
        )
    return value


ModelsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Model names as you type them: llama3.2, llama3.2:1b, namespace/model:tag.",
        show_default=False,
        autocompletion=installed_models,
    ),
]
LoadedModelsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Loaded models to unload, as you type them: llama3.2, namespace/model:tag.",
        show_default=False,
        autocompletion=loaded_models,
    ),
]
NumCtxOpt = Annotated[
    int | None,
    typer.Option(
        "--num-ctx",
        help="Load with this context length. Without it a loaded model keeps its context "
        "(never reloaded by accident); with it a different context means a reload.",
        min=1,
        show_default=False,
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help="Take the models (and host, keep-alives, contexts) from this profile.",
        show_default=False,
        autocompletion=profile_names,
    ),
]


def on_hosts(
    hosts: Sequence[str] | None, json_output: bool, run: Callable[[str | None], None]
) -> None:
    """``run`` once: for the one ``--host`` (or none); with several, on each host at once."""
    if hosts and len(hosts) > 1:
        from ollama_resident.cli._many import hosts_of, on_each_host

        on_each_host(hosts_of(hosts), run, json_output=json_output)
    else:
        run(hosts[0] if hosts else None)


def _models_or_die(models: Sequence[str] | None, command: str) -> list[str]:
    names = [m for m in (models or []) if m.strip()]
    if not names:
        from ollama_resident.errors import UsageError

        raise UsageError(
            f"{command}: name at least one model",
            hint=f"for example `ollama-resident {command} llama3.2`",
        )
    return names


@contextmanager
def _session(
    host: str | None,
    timeout: float,
    wait: float,
    out: Output,
    profile_host: str | None = None,
    *,
    connect_timeout: float | None = None,
) -> Iterator[OllamaClient]:
    from ollama_resident.cli._common import make_client

    with make_client(host, timeout=timeout, profile_host=profile_host) as client:
        if connect_timeout is not None:
            client.connect_timeout = connect_timeout
        if wait > 0:
            wait_for_server(out, client, wait)
        yield client


def wait_for_server(out: Output, client: OllamaClient, wait: float) -> None:
    """``--wait``: a spinner with elapsed time on a terminal, one line otherwise."""
    from ollama_resident.cli._progress import Activity
    from ollama_resident.residency import wait_ready

    with Activity(out) as progress:

        def on_wait(left: float) -> None:
            what = f"waiting for Ollama at {client.display_url} to answer (up to {left:.0f}s)"
            if progress.shown:
                progress.start(what)
            else:
                out.info(what)

        wait_ready(client, wait, on_wait=on_wait)


def unload_with_progress(
    out: Output,
    client: OllamaClient,
    names: Sequence[str],
    *,
    snapshot: PsSnapshot | None = None,
    timeout: float = 30.0,
) -> list[UnloadOutcome]:
    """``unload_models`` with what it waits for on a terminal (a busy model can take 30 s)."""
    from ollama_resident.cli._progress import Activity
    from ollama_resident.residency import unload_models

    with Activity(out) as progress:

        def on_wait(waiting: Sequence[str], busy: Sequence[str]) -> None:
            if busy:
                progress.update(
                    f"unloading {', '.join(busy)}: busy, waiting for the running request to end"
                )
            else:
                progress.update(f"unloading {', '.join(waiting)}")

        return unload_models(client, names, snapshot=snapshot, timeout=timeout, on_wait=on_wait)


# -- preload / pin ---------------------------------------------------------------------------


def _from_profile(
    ctx: typer.Context, profile: str, models: Sequence[str] | None, *, quiet: bool = False
) -> tuple[list[LoadRequest], str | None]:
    """A profile's load requests and host; models on the command line are an error."""
    from ollama_resident import profiles
    from ollama_resident.cli._common import state
    from ollama_resident.errors import UsageError

    if models:
        raise UsageError(
            "give model names or --profile, not both",
            hint="`ollama-resident profile add NAME MODEL` puts a model in a profile",
        )
    chosen = profiles.resolve(profile, state(ctx).profiles)
    if not chosen.models:
        # An empty profile is a valid file meaning "nothing to keep": the same answer
        # as `apply` and `guard` give it (exit 0), so no script or service fails on it.
        from ollama_resident.cli._output import Output

        Output(quiet=quiet).info(f"profile {profile!r} has no models: nothing to do")
        raise typer.Exit(0)
    return chosen.load_requests(), chosen.host


def _journal_outcomes(
    out: Output,
    host: str,
    *,
    loads: Sequence[LoadOutcome] = (),
    unloads: Sequence[UnloadOutcome] = (),
    action: str,
    profile: str | None = None,
) -> None:
    """Tell the journal what this command did, so `watch` and `why` know it was us."""
    changed = any(r.status in ("loaded", "updated", "reloaded") for r in loads) or any(
        r.status in ("unloaded", "pending") for r in unloads
    )
    if not changed:
        return  # nothing happened: keep the already-pinned path free of the import
    from ollama_resident import journal

    problem = journal.record_outcomes(
        host=host,
        loads=loads,
        unloads=unloads,
        action=action,  # type: ignore[arg-type]
        profile=profile,
    )
    if problem:
        out.warn(problem)


class PlanOptions(NamedTuple):
    """How a load command plans: --dry-run, --force and the limits' overrides."""

    dry_run: bool = False
    force: bool = False
    max_loaded: int | None = None
    memory: str | None = None
    server_log: str | None = None


_DEFAULT_PLAN = PlanOptions()


def _check_plan(
    out: Output,
    client: OllamaClient,
    requests: list[LoadRequest],
    command: str,
    options: PlanOptions,
) -> tuple[Plan | None, PsSnapshot, float, str | None]:
    """The plan for these loads when it matters: always for --dry-run; otherwise only when
    something must load, to refuse up front what known limits say cannot stay (unless
    --force). Returns the plan for --dry-run (the caller prints it and stops), the
    /api/ps read (and its seconds), for the loads to start from, and for --dry-run the
    refusal the real run would raise (None when it would go ahead)."""
    import time

    from ollama_resident.residency import resident_as_asked
    from ollama_resident.resolve import check_names

    started = time.monotonic()
    snapshot = client.ps()
    took = time.monotonic() - started
    # Every name must be installed (or loaded) before anything is sent (exit 2 with the
    # close matches); a second name of a loaded model's file is matched by digest.
    snapshot = check_names(client, [r.model for r in requests], snapshot)
    if not options.dry_run and all(resident_as_asked(r, snapshot) for r in requests):
        # Nothing will be sent: no limit can matter. A startup file's `pin` of a pinned
        # model ends here, without importing the planner.
        return None, snapshot, took, None

    from ollama_resident.cli._limits import limits_for
    from ollama_resident.errors import ResidentError
    from ollama_resident.plan import installed_from_tags, make_plan
    from ollama_resident.profiles import Profile, ProfileModel

    title = f"`{command} " + " ".join(r.model for r in requests) + "`"
    asked = Profile(
        name=title,
        models=tuple(ProfileModel(r.model, r.keep_alive, r.num_ctx) for r in requests),
    )
    plan = make_plan(asked, snapshot, max_loaded=None, asked_by=title)
    if plan.is_noop and not options.dry_run:
        return None, snapshot, took, None  # all resident as asked: nothing read
    cap, mem = limits_for(client, options.server_log, options.max_loaded, options.memory)
    installed = installed_from_tags(client.tags())
    plan = make_plan(
        asked,
        snapshot,
        installed=installed,
        max_loaded=cap.value or 0,
        memory=mem.value,
        max_loaded_source=cap.source,
        max_loaded_label=cap.short,
        memory_source=mem.source,
        asked_by=title,
    )
    blocking = None if options.force else plan.blocking_eviction(cap.known, mem.known)
    if options.dry_run:
        return plan, snapshot, took, None if blocking is None else blocking.brief()
    if blocking is not None:
        for e in plan.self_evictions:
            if e is not blocking:
                out.warn(e.brief())
        raise ResidentError(
            f"not loading: these models cannot all stay loaded: {blocking.brief()}, "
            "which this command asks for too",
            hint="--force loads them anyway; `ollama-resident doctor` shows the server's "
            "limits and how to raise them",
        )
    return None, snapshot, took, None


def _run_loads(
    *,
    requests: list[LoadRequest],
    host: str | None,
    timeout: float,
    wait: float,
    json_output: bool,
    quiet: bool,
    action: str = "preload",
    profile_host: str | None = None,
    command: str = "preload",
    options: PlanOptions = _DEFAULT_PLAN,
) -> None:
    from ollama_resident import render
    from ollama_resident.cli._output import Output
    from ollama_resident.endstate import end_state
    from ollama_resident.residency import LoadCancelled

    out = Output(quiet=quiet, json=json_output)
    with _session(host, timeout, wait, out, profile_host) as client:
        plan, snapshot, took, refused = _check_plan(out, client, requests, command, options)
        if plan is not None:
            from ollama_resident.cli.apply import show_plan
            from ollama_resident.errors import ResidentError

            show_plan(out, plan, client.display_url, title=plan.profile)
            if json_output:
                doc = {"dry_run": True, "refused": refused, "plan": plan.to_json()}
                out.data(render.dumps(doc))
            if refused is not None:
                # A dry run exits as the real run would (1), saying it would refuse.
                raise ResidentError(
                    f"{command} would refuse: these models cannot all stay loaded: "
                    f"{refused}, which this command asks for too",
                    hint="--force loads them anyway; `ollama-resident doctor` shows the "
                    "server's limits and how to raise them",
                )
            return
        try:
            results = load_reported(
                out, client, requests, action=action, snapshot=snapshot, snapshot_seconds=took
            )
        except LoadCancelled as cancelled:
            if json_output:
                out.data(render.dumps([render.load_json(r) for r in cancelled.done]))
            raise KeyboardInterrupt from None
        # Nothing loaded, nothing pushed out: the start state is the end state.
        changed = any(r.ok and r.status != "unchanged" for r in results)
        final = end_state(results, client.ps() if changed else snapshot)
    lost = {x.requested: x for x in final.lost}
    if json_output:
        docs = []
        for r in results:
            doc = render.load_json(r)
            if r.ok:
                gone = lost.get(r.requested)
                doc["resident"] = gone is None or gone.pin_lost
                doc["pushed_out_by"] = gone.pushed_out_by if gone is not None else None
            docs.append(doc)
        out.data(render.dumps(docs))
    elif not final.ok:
        pass
    elif len(results) > 1:
        out.info(render.load_summary(results))
    if not final.ok:
        out.error(
            final.summary(),
            "the server cannot hold these models together (`ollama-resident doctor` shows "
            "its limits); running this again only churns them",
        )
    failed = [r for r in results if not r.ok]
    if failed or not final.ok:
        raise typer.Exit(1)


def load_reported(
    out: Output,
    client: OllamaClient,
    requests: Sequence[LoadRequest],
    *,
    action: str,
    profile: str | None = None,
    snapshot: PsSnapshot | None = None,
    snapshot_seconds: float = 0.005,
) -> list[LoadOutcome]:
    """Load with a spinner per model, a line per result, and the journal told.

    Shared by preload, pin and apply. Ctrl-C: says which load was cancelled,
    journals what was done, and re-raises LoadCancelled (with ``done``).
    """
    from ollama_resident.cli._progress import Activity
    from ollama_resident.residency import LoadCancelled, load_models

    with Activity(out) as progress:

        def on_result(outcome: LoadOutcome) -> None:
            progress.stop()
            _report_load(out, outcome)

        try:
            results = load_models(
                client,
                requests,
                on_start=lambda req, existing: progress.start(
                    f"loading {req.model}" if existing is None else f"updating {req.model}"
                ),
                on_result=on_result,
                snapshot=snapshot,
                snapshot_seconds=snapshot_seconds,
            )
        except LoadCancelled as cancelled:
            progress.stop()
            _journal_outcomes(
                out, client.display_url, loads=cancelled.done, action=action, profile=profile
            )
            if cancelled.current:
                out.warn(f"cancelled while loading {cancelled.current}; Ollama aborts that load")
            raise
    _journal_outcomes(out, client.display_url, loads=results, action=action, profile=profile)
    return results


def report_unload(out: Output, r: UnloadOutcome) -> None:
    """One line per unloaded model: a failure, a pending stop, a note, or done."""
    from ollama_resident import render

    if not r.ok:
        out.error(f"{r.requested}: {r.error}", r.hint)
    elif r.status == "pending":
        out.warn(render.unload_line(r))
    elif r.status == "not-loaded":
        out.info(render.unload_line(r))
    else:
        out.success(render.unload_line(r))


def _report_load(out: Output, r: LoadOutcome) -> None:
    from ollama_resident import render

    if not r.ok:
        out.error(f"{r.requested}: {r.error}", r.hint)
        return
    line = render.load_line(r)
    if r.status == "unchanged":
        out.info(line)
    else:
        out.success(line)
    for warning in render.load_warnings(r):
        out.warn(warning)


def _parsed(value: str | None) -> KeepAlive | None:
    from ollama_resident.durations import parse_keep_alive

    return None if value is None else parse_keep_alive(value)


def preload(
    ctx: typer.Context,
    models: ModelsArg = None,
    keep_alive: Annotated[
        str | None,
        typer.Option(
            "--keep-alive",
            "-k",
            help="How long to keep them after the last request: 5m, 1h30m, 300 (seconds), "
            "forever or -1. Omitted: a new load gets the server default, a loaded model "
            "keeps its current keep-alive.",
            callback=_keep_alive,
            metavar="DUR",
            show_default=False,
        ),
    ] = None,
    num_ctx: NumCtxOpt = None,
    profile: ProfileOpt = None,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    max_loaded: MaxLoadedOpt = None,
    memory: MemoryOpt = None,
    server_log: ServerLogOpt = None,
    wait: WaitOpt = 0.0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    host: HostsOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Load models into memory and return when each is ready.

    Chat models load with an empty /api/generate, embedding models with an
    empty /api/embed. A model already loaded as asked gets no request. Each
    result says the load time, the keep-alive now in effect, the processor
    split, and anything the load pushed out of memory. Loads that the
    server's limits (model cap, memory; read from the server, see `doctor`)
    say cannot stay together are refused up front (--force to go ahead), and
    at the end a model pushed out by a later load is named and the exit code
    is 1. --dry-run prints the plan, with the evictions it predicts.

    \b
    Examples:
      ollama-resident preload llama3.2 nomic-embed-text
      ollama-resident preload qwen2.5:14b --keep-alive 2h --wait 30
      ollama-resident preload llama3.2 qwen2.5:14b --dry-run
    """

    from ollama_resident.residency import LoadRequest

    ka = _parsed(keep_alive)
    profile_host = None
    if profile:
        requests, profile_host = _from_profile(ctx, profile, models, quiet=quiet)
        if ka is not None or num_ctx is not None:  # the command line wins over the file
            requests = [
                r._replace(keep_alive=ka or r.keep_alive, num_ctx=num_ctx or r.num_ctx)
                for r in requests
            ]
    else:
        requests = [LoadRequest(m, ka, num_ctx) for m in _models_or_die(models, "preload")]
    on_hosts(
        host,
        json_output,
        lambda h: _run_loads(
            requests=requests,
            host=h,
            timeout=timeout,
            wait=wait,
            json_output=json_output,
            quiet=quiet,
            profile_host=profile_host,
            command="preload",
            options=PlanOptions(dry_run, force, max_loaded, memory, server_log),
        ),
    )


def pin(
    ctx: typer.Context,
    models: ModelsArg = None,
    for_: Annotated[
        str | None,
        typer.Option(
            "--for",
            help="Keep them this long after the last request instead of forever: 8h, 90m.",
            callback=_keep_alive,
            metavar="DUR",
            show_default=False,
        ),
    ] = None,
    num_ctx: NumCtxOpt = None,
    profile: ProfileOpt = None,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    max_loaded: MaxLoadedOpt = None,
    memory: MemoryOpt = None,
    server_log: ServerLogOpt = None,
    wait: WaitOpt = 0.0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    host: HostsOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Keep models loaded forever (or --for a while), loading them if needed.

    Sends keep_alive -1 (the number: Ollama rejects the string "-1") with the
    context the model is loaded with, so the pin never triggers a reload. A
    model already pinned gets no request: safe in a shell startup file.
    Note: a pin does not stop Ollama evicting the model for another one, and
    any client that sends its own keep_alive resets it; `guard` handles both.
    More models than the server holds are refused up front when its cap is
    known (--force to go ahead); whatever happens, the result says which
    models stayed, which one pushed out which, and exits 1 if one did not.

    \b
    Examples:
      ollama-resident pin llama3.2
      ollama-resident pin qwen2.5-coder:14b --for 8h --quiet --wait 60
      ollama-resident pin llama3.2 qwen2.5:14b nomic-embed-text --dry-run
    """
    from ollama_resident.durations import KeepAlive
    from ollama_resident.residency import LoadRequest

    ka = _parsed(for_) or KeepAlive.forever()
    profile_host = None
    if profile:
        profile_requests, profile_host = _from_profile(ctx, profile, models, quiet=quiet)
        requests = [LoadRequest(r.model, ka, num_ctx or r.num_ctx) for r in profile_requests]
    else:
        requests = [LoadRequest(m, ka, num_ctx) for m in _models_or_die(models, "pin")]
    on_hosts(
        host,
        json_output,
        lambda h: _run_loads(
            requests=requests,
            host=h,
            timeout=timeout,
            wait=wait,
            json_output=json_output,
            quiet=quiet,
            # The journal says pin either way; its keep-alive says whether it was forever
            # (a forever pin never explains a shorter window: events.OwnAction.pins).
            action="pin",
            profile_host=profile_host,
            command="pin",
            options=PlanOptions(dry_run, force, max_loaded, memory, server_log),
        ),
    )


# -- unload ----------------------------------------------------------------------------------


def unload(
    ctx: typer.Context,
    models: LoadedModelsArg = None,
    all_models: Annotated[
        bool, typer.Option("--all", "-a", help="Unload every loaded model.")
    ] = False,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--except",
            "-x",
            help="With --all: leave this model loaded (repeatable).",
            metavar="MODEL",
            show_default=False,
            autocompletion=loaded_models,
        ),
    ] = None,
    confirm_timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="Seconds to wait for /api/ps to confirm each model is gone (0: do not wait).",
            min=0,
            metavar="SECONDS",
        ),
    ] = 30.0,
    profile: ProfileOpt = None,
    wait: WaitOpt = 0.0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    host: HostsOpt = None,
) -> None:
    """Unload models now and confirm they are gone.

    Works for chat and embedding models alike. A model that is not loaded is
    a success with a note. Ollama cannot cut a running request short: a model
    busy with one is reported as pending and unloads when that request ends.

    \b
    Examples:
      ollama-resident unload llama3.2
      ollama-resident unload --all --except nomic-embed-text
    """
    from ollama_resident.errors import UsageError

    names = [m for m in (models or []) if m.strip()]
    profile_host = None
    if profile:
        if all_models:
            raise UsageError(
                "give --profile or --all, not both",
                hint="`unload --all --except MODEL` keeps chosen models; "
                "`unload --profile NAME` unloads a profile's",
            )
        profile_requests, profile_host = _from_profile(ctx, profile, names, quiet=quiet)
        names = [r.model for r in profile_requests]
    if all_models and names:
        raise UsageError(
            "give model names or --all, not both",
            hint=f"`ollama-resident unload {' '.join(names)}` unloads just "
            + ("it" if len(names) == 1 else "them")
            + "; `unload --all --except "
            + " --except ".join(names)
            + "` unloads all the others",
        )
    if not all_models and not names:
        raise UsageError(
            "unload: name at least one model, or --all",
            hint="for example `ollama-resident unload llama3.2` or `unload --all --except bge-m3`",
        )
    if keep and not all_models:
        raise UsageError(
            "--except goes with --all",
            hint="for example `ollama-resident unload --all --except " + (keep or [""])[0] + "`",
        )
    on_hosts(
        host,
        json_output,
        lambda h: _unload_on(
            h,
            names,
            all_models=all_models,
            keep=keep or [],
            profile_host=profile_host,
            wait=wait,
            confirm_timeout=confirm_timeout,
            json_output=json_output,
            quiet=quiet,
        ),
    )


def _unload_on(
    host: str | None,
    names: list[str],
    *,
    all_models: bool,
    keep: list[str],
    profile_host: str | None,
    wait: float,
    confirm_timeout: float,
    json_output: bool,
    quiet: bool,
) -> None:
    """``unload`` on one host."""
    from ollama_resident import render
    from ollama_resident.cli._output import Output
    from ollama_resident.residency import select_unload_targets

    out = Output(quiet=quiet, json=json_output)
    with _session(host, 10.0, wait, out, profile_host) as client:
        from ollama_resident.resolve import check_names

        # A typo must not unload the wrong thing (or everything): every name given
        # matches something installed or loaded, or nothing is sent (exit 2).
        snapshot = check_names(client, keep, client.ps(), role="--except")
        snapshot = check_names(client, names, snapshot)
        targets = select_unload_targets(snapshot, names, all_models=all_models, keep=keep)
        # What --except kept (loaded, left alone) and what it named that is not loaded.
        kept: list[str] = []
        absent: list[str] = []
        for k in dict.fromkeys(keep):
            found = snapshot.find(k)
            if found is None:
                absent.append(k)
            elif found.name not in kept:
                kept.append(found.name)
        if not targets:
            out.info("Nothing to unload" + (f"; kept: {', '.join(kept)}." if kept else "."))
            results: list[UnloadOutcome] = []
        else:
            results = unload_with_progress(
                out, client, targets, snapshot=snapshot, timeout=confirm_timeout
            )
            _journal_outcomes(out, client.display_url, unloads=results, action="unload")
    if json_output:
        out.data(render.dumps([render.unload_json(r) for r in results]))
    for r in results:
        report_unload(out, r)
    if kept and results:
        out.info(f"kept: {', '.join(kept)}")
    for k in absent:
        out.info(f"--except {k}: not loaded, so nothing to keep")
    if any(not r.ok for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("preload")(preload)
    app.command("pin")(pin)
    app.command("unload")(unload)
