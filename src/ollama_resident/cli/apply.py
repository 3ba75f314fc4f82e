"""``apply NAME``: make the server hold a profile's models, showing the plan before acting."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ollama_resident.cli._complete import profile_names
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
    from ollama_resident.models import PsSnapshot
    from ollama_resident.plan import Plan
    from ollama_resident.profiles import Profile
    from ollama_resident.residency import LoadOutcome, UnloadOutcome

__all__ = ["register"]

SCHEMA_VERSION = 1
PLAN_COLUMNS = ("ACTION", "MODEL", "KEEP-ALIVE", "CONTEXT", "REASON")
_ACTION_STYLE = {
    "load": "green",
    "repin": "yellow",
    "reload": "yellow",
    "unload": "red",
    "ok": "dim",
}


def plan_rows(plan: Plan) -> list[tuple[str, ...]]:
    """The plan as table rows: action, model, keep-alive to send, context, reason."""
    from ollama_resident.vocabulary import plan_action

    rows: list[tuple[str, ...]] = []
    for s in plan.steps:
        if s.action == "unload":
            keep_alive = "-"
        elif s.keep_alive is None:
            keep_alive = "server default" if s.action == "load" else "as is"
        else:
            keep_alive = s.keep_alive.describe()
        rows.append(
            (
                plan_action(s.action, s.keep_alive is not None and s.keep_alive.kind == "forever"),
                s.model,
                keep_alive,
                str(s.num_ctx) if s.num_ctx else "-",
                s.reason,
            )
        )
    return rows


def _plan_layout() -> list[Any]:
    from ollama_resident import vocabulary as v
    from ollama_resident.layout import Column

    return [
        Column(v.ACTION),
        Column(v.MODEL, elide=True, min_width=16),
        Column(v.KEEP_ALIVE),
        Column(v.CONTEXT, align="right"),
        Column(v.REASON, wrap=True),
    ]


def _plan_style(plan: Plan) -> Any:
    def style(row: int, col: int) -> str:
        action = plan.steps[row].action
        if col == 0:
            return _ACTION_STYLE[action]
        if col in (1, 4) and action == "ok":
            return "dim"
        return "bold" if col == 1 else ""

    return style


def show_plan(out: Output, plan: Plan, where: str, title: str | None = None) -> None:
    """The plan on stdout (a table on a terminal, plain columns otherwise); notes on stderr.

    With --json (whose document carries the plan) only the warnings that matter are
    shown: a predicted eviction of the profile's own model, and notes. With --quiet,
    nothing: errors only.
    """
    from ollama_resident import render

    if out.chatty:
        mode = " (exclusive)" if plan.exclusive else ""
        what = title or f'profile "{plan.profile}"{mode}'
        out.info(f"Plan for {what} on {where}: {plan.summary()}")
        if not plan.is_noop:
            out.info(plan.limits_line())
        if plan.steps:
            fitted = render.table(_plan_layout(), plan_rows(plan), out.width)
            if out.rich_stdout:
                out.out_console().print(render.styled(fitted, _plan_style(plan)), soft_wrap=True)
            else:
                out.data(fitted.plain())
    for eviction in plan.evictions:
        if eviction.in_profile or out.chatty:
            out.warn(eviction.message)
    for note in plan.notes:
        out.warn(note)


def _training_contexts(
    client: OllamaClient, profile: Profile, snapshot: PsSnapshot
) -> dict[str, int]:
    """/api/show's training context for loaded models whose profile entry names num_ctx.

    Needed so that a num_ctx above the training context (capped by Ollama) is not
    taken for a wrong context. A model /api/show cannot describe is skipped.
    """
    from ollama_resident.errors import ResidentError, ServerUnreachable

    contexts: dict[str, int] = {}
    for pm in profile.models:
        if pm.num_ctx is None or snapshot.find(pm.name) is None:
            continue
        try:
            info = client.show(pm.name)
        except ServerUnreachable:
            raise
        except ResidentError:
            continue
        if info.context_length:
            contexts[pm.name] = info.context_length
    return contexts


def _done(loaded: list[LoadOutcome], unloaded: list[UnloadOutcome]) -> str:
    """``2 loaded, 1 updated, 1 unloaded``: what the run did, by outcome."""
    counts: dict[str, int] = {}
    for status in [r.status for r in unloaded] + [r.status for r in loaded]:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def apply(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="The profile to apply.", show_default=False, autocompletion=profile_names
        ),
    ],
    exclusive: Annotated[
        bool | None,
        typer.Option(
            "--exclusive/--no-exclusive",
            help="Also unload every loaded model that is not in the profile "
            "(default: the profile's own `exclusive` setting).",
            show_default=False,
        ),
    ] = None,
    dry_run: DryRunOpt = False,
    max_loaded: MaxLoadedOpt = None,
    memory: MemoryOpt = None,
    server_log: ServerLogOpt = None,
    force: ForceOpt = False,
    background: Annotated[
        bool,
        typer.Option(
            "--background",
            "-b",
            help="For shell startup files (see `shell-init`): apply in a detached process "
            "and return at once. One process at a time per profile (a lock), so ten new "
            "terminals cause one load; its output goes to apply-NAME.log beside the "
            "journal, and a failure is shown by the next command run on a terminal.",
        ),
    ] = False,
    wait: WaitOpt = 0.0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    host: HostsOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Make the server hold a profile's models: print the plan, then carry it out.

    Compares the profile with /api/ps. It loads what is missing, re-pins what
    drifted, and reloads a model loaded with another context than the
    profile's num_ctx. With --exclusive it also unloads what is not in the
    profile. A model has drifted when the profile wants it pinned and it is
    not, or when it holds a longer window than the profile asks. A window
    that has only counted down has not drifted. Where a load will make Ollama
    evict a model, the plan names it, by Ollama's rule (the idle model with the
    shortest keep-alive goes first; a pinned one last, but it goes). The model
    cap and memory come from the server itself (its log, its process
    environment or its service; see `doctor`), and the plan says where;
    --max-loaded and --memory override them. A plan that would push out one of
    the profile's own models is refused (--force to go ahead). At the end it
    checks what is resident: a model pushed out by a later load is named, and
    the exit code is 1.

    Exit codes: 0 done (or nothing to do); 1 a step failed, a model did not
    stay, or the plan was refused (--dry-run too: it exits as the real run
    would); 2 bad profile or unknown name (nothing
    sent); 3 Ollama unreachable.

    \b
    Examples:
      ollama-resident apply coding
      ollama-resident apply coding --dry-run
      ollama-resident apply writing --exclusive --quiet --wait 60
      ollama-resident apply coding --json | jq '.plan.steps[] | select(.action != "ok")'
      ollama-resident apply coding --background --quiet    # see `shell-init`
      ollama-resident apply coding --host box-1 --host box-2   # the same set on both
    """
    if host and len(host) > 1:
        from ollama_resident import profiles
        from ollama_resident.cli._common import state
        from ollama_resident.cli._many import hosts_of, on_each_host
        from ollama_resident.errors import UsageError

        if background:
            raise UsageError(
                "--background applies a profile on one host; give one --host",
                hint=f"for example `ollama-resident apply {name} --background --host {host[0]}`",
            )
        profiles.resolve(name, state(ctx).profiles)  # a bad file or name: exit 2, once
        on_each_host(
            hosts_of(host),
            lambda h: apply(
                ctx,
                name,
                exclusive=exclusive,
                dry_run=dry_run,
                max_loaded=max_loaded,
                memory=memory,
                server_log=server_log,
                force=force,
                wait=wait,
                json_output=json_output,
                quiet=quiet,
                host=[h],
                timeout=timeout,
            ),
            json_output=json_output,
        )
        return
    one_host = host[0] if host else None
    if background:
        _apply_in_background(
            ctx,
            name,
            quiet=quiet,
            conflicts=dry_run or wait > 0 or json_output,
            options=_background_options(
                exclusive, one_host, max_loaded, memory, server_log, force, timeout
            ),
        )
        return
    from ollama_resident import profiles, render
    from ollama_resident.cli._common import state
    from ollama_resident.cli._limits import limits_for
    from ollama_resident.cli._output import Output
    from ollama_resident.cli.load import (
        _journal_outcomes,
        _session,
        load_reported,
        report_unload,
        unload_with_progress,
    )
    from ollama_resident.endstate import EndState, end_state
    from ollama_resident.plan import installed_from_tags, make_plan
    from ollama_resident.residency import LoadCancelled
    from ollama_resident.serverfacts import Limit

    # Before any connection: a bad file or an unknown name exits 2 with nothing sent.
    profile = profiles.resolve(name, state(ctx).profiles)
    out = Output(quiet=quiet, json=json_output)
    loaded: list[LoadOutcome] = []
    unloaded: list[UnloadOutcome] = []
    final: EndState | None = None
    refused: str | None = None

    def document(plan: Plan, where: str) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "profile": profile.name,
            "host": where,
            "dry_run": dry_run,
            "plan": plan.to_json(),
            "refused": refused,
            "unloaded": [render.unload_json(r) for r in unloaded],
            "loaded": [render.load_json(r) for r in loaded],
            "end_state": final.to_json() if final is not None else None,
            "ok": all(r.ok for r in loaded)
            and all(r.ok for r in unloaded)
            and (final is None or final.ok)
            and refused is None,
        }

    # --host wins over the profile's host, which wins over $OLLAMA_HOST.
    with _session(one_host, timeout, wait, out, profile.host) as client:
        where = client.display_url
        from ollama_resident.resolve import check_names

        # Every name installed or loaded before anything is sent, as `pin` (exit 2 with
        # the close matches): a typo must not fail the apply half-way.
        snapshot = check_names(client, [m.name for m in profile.models], client.ps())
        installed = installed_from_tags(client.tags())

        def planned(cap: Limit, mem: Limit) -> Plan:
            return make_plan(
                profile,
                snapshot,
                installed=installed,
                training_contexts=_training_contexts(client, profile, snapshot),
                exclusive=exclusive,
                max_loaded=cap.value or 0,
                memory=mem.value,
                max_loaded_source=cap.source,
                max_loaded_label=cap.short,
                memory_source=mem.source,
            )

        plan = make_plan(profile, snapshot, installed=installed, exclusive=exclusive)
        if not plan.is_noop:
            cap, mem = limits_for(client, server_log, max_loaded, memory)
            plan = planned(cap, mem)
            blocking = None if force else plan.blocking_eviction(cap.known, mem.known)
            refused = (
                f"{blocking.brief()}, one of the profile's own models"
                if blocking is not None
                else None
            )
        show_plan(out, plan, where)
        if (dry_run or plan.is_noop) and not refused:
            if json_output:
                out.data(render.dumps(document(plan, where)))
            return
        if refused:
            from ollama_resident.errors import ResidentError

            if json_output:
                out.data(render.dumps(document(plan, where)))
            # A dry run exits as the real run would (1), saying it would refuse.
            verb = "apply would refuse" if dry_run else "not applying"
            raise ResidentError(
                f'{verb} profile "{profile.name}": {refused}',
                hint="--force applies it anyway; `ollama-resident doctor --profile "
                f"{profile.name}` shows the limits and how to raise them",
            )

        if plan.unload_names():
            unloaded = unload_with_progress(out, client, plan.unload_names(), snapshot=snapshot)
            _journal_outcomes(out, where, unloads=unloaded, action="apply", profile=profile.name)
            for u in unloaded:
                report_unload(out, u)
        requests = plan.load_requests()
        if requests:
            try:
                loaded = load_reported(out, client, requests, action="apply", profile=profile.name)
            except LoadCancelled as cancelled:
                loaded = cancelled.done
                if json_output:
                    out.data(render.dumps(document(plan, where)))
                raise KeyboardInterrupt from None
        if loaded:
            final = end_state(loaded, client.ps())

    failed = [r for r in loaded if not r.ok] + [r for r in unloaded if not r.ok]
    if final is not None and not final.ok:
        out.error(
            f'profile "{profile.name}" is not resident as a whole: {final.summary()}',
            "the server cannot hold these models together; see `ollama-resident doctor "
            f"--profile {profile.name}`",
        )
    if json_output:
        out.data(render.dumps(document(plan, where)))
    elif failed:
        n = len(failed)
        out.info(
            f'profile "{profile.name}" applied in part: {n} step{"s" if n != 1 else ""} failed'
        )
    elif final is None or final.ok:
        out.success(f'profile "{profile.name}" applied on {where}: {_done(loaded, unloaded)}')
    if failed or (final is not None and not final.ok):
        raise typer.Exit(1)


def _background_options(
    exclusive: bool | None,
    host: str | None,
    max_loaded: int | None,
    memory: str | None,
    server_log: str | None,
    force: bool,
    timeout: float,
) -> list[str]:
    """The options the detached ``apply`` is given, as they were given here."""
    from pathlib import Path

    args: list[str] = []
    if exclusive is not None:
        args.append("--exclusive" if exclusive else "--no-exclusive")
    if host:
        args += ["--host", host]
    if max_loaded is not None:
        args += ["--max-loaded", str(max_loaded)]
    if memory:
        args += ["--memory", memory]
    if server_log:
        args += ["--server-log", str(Path(server_log).expanduser().resolve())]
    if force:
        args.append("--force")
    if timeout != 10.0:
        args += ["--timeout", repr(timeout)]
    return args


def _apply_in_background(
    ctx: typer.Context, name: str, *, quiet: bool, conflicts: bool, options: list[str]
) -> None:
    """Start ``apply NAME`` detached (one per profile at a time) and return at once.

    Nothing is sent from here: the detached run does the whole apply, its output goes to
    the profile's log, and a failure is recorded for the next interactive command
    (:mod:`ollama_resident.startup`). A bad profile is refused here too (exit 2), and
    recorded, since a startup line sends this process's own output to /dev/null.
    """
    from ollama_resident import paths, profiles, startup
    from ollama_resident.cli._common import state
    from ollama_resident.cli._output import Output
    from ollama_resident.errors import ResidentError, UsageError

    out = Output(quiet=quiet)
    profiles_option = state(ctx).profiles
    try:
        if conflicts:
            raise UsageError(
                "--background does not go with --dry-run, --wait or --json",
                hint=f"drop --background to see the plan or the result: "
                f"`ollama-resident apply {name} --dry-run`",
            )
        profiles.resolve(name, profiles_option)
    except ResidentError as exc:
        startup.record_failure(name, int(exc.exit_code), [f"error: {exc.message}"])
        raise
    cli_args: list[str] = []
    if profiles_option:
        cli_args += ["--profiles", str(paths.profiles_path(profiles_option).resolve())]
    cli_args += ["apply", name, "--quiet", *options]
    log = startup.log_path(name)
    pid = startup.spawn_once(startup.runner_argv(name, cli_args), startup.lock_path(name), log)
    if pid is None:
        out.info(f'profile "{name}" is already being applied by another process')
    else:
        out.info(f'applying profile "{name}" in the background (pid {pid}); log: {log}')


def register(app: typer.Typer) -> None:
    app.command("apply")(apply)
