"""``doctor``: check the running server's configuration against what residency needs."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ollama_resident.cli._complete import profile_names
from ollama_resident.cli._options import HostOpt, JsonOpt

if TYPE_CHECKING:
    from ollama_resident.cli._output import Output
    from ollama_resident.doctor import Check

__all__ = ["register"]

SCHEMA_VERSION = 1
# A dead server must not make doctor hang: 1 s to connect, 1.5 s for an answer (a live
# Ollama answers these in milliseconds, even while it loads a model).
CONNECT_TIMEOUT_S = 1.0
ANSWER_TIMEOUT_S = 1.5
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}
_WORD = {"ok": "ok", "warn": "warn", "fail": "FAIL"}

ServerLogOpt = Annotated[
    str | None,
    typer.Option(
        "--server-log",
        help="Read the server's settings from this log file (or - for stdin) instead of "
        "looking for it (journalctl -u ollama, ~/.ollama/logs/server.log, docker logs).",
        metavar="FILE",
        show_default=False,
    ),
]


def check_lines(check: Check, width: int | None) -> tuple[str, list[str]]:
    """The first line's text (without the status word) and the indented lines below it.

    At ``width`` cells (None: a pipe, one line each), a long line wraps with a hanging
    indent: evidence two cells in, a fix under its text after ``fix: ``. A command or
    file line (indented in the fix) is never wrapped: copied, it must stay one line.
    """
    from ollama_resident.cells import hang

    head = f"{check.id}: {check.summary}"
    body: list[str] = []
    pad = " " * 6
    for line in check.evidence:
        body.extend(hang(line, width, pad, pad + "  "))
    if check.fix:
        under = pad + " " * len("fix: ")
        for n, line in enumerate(check.fix.splitlines()):
            if line.startswith("  "):
                body.append(under + line)  # a command or file line: never wrapped
            else:
                # the fix's first line hangs under its text; a later one (an "or, ...")
                # starts there itself, so its own continuation is two cells further in
                lead, rest = (pad + "fix: ", under) if n == 0 else (under, under + "  ")
                body.extend(hang(line, width, lead, rest))
    return head, body


def _render(out: Output, checks: list[Check], every: str | None) -> None:
    from ollama_resident.cells import hang

    rich = out.rich_stdout
    width = out.width if rich else None  # a pipe gets one line per line, for grep
    for check in checks:
        head, body = check_lines(check, width)
        first = hang(head, width, f"{_WORD[check.status]:<6}", " " * 8)
        if rich:
            from rich.text import Text

            head_line = Text()
            head_line.append(f"{_WORD[check.status]:<6}", style=_STYLE[check.status])
            head_line.append(first[0][6:])
            for extra in first[1:]:
                head_line.append("\n" + extra)
            out.out_console().print(head_line, soft_wrap=True)
            for extra in body:
                out.out_console().print(Text(extra, style="dim"), soft_wrap=True)
        else:
            for line in first + body:
                out.data(line)
    if every:
        out.data("")
        out.data("How to give the server these settings (what runs it was not found):")
        for text in every.splitlines():
            if text.startswith("  "):
                out.data("    " + text)  # a command or file line: never wrapped
            else:
                for wrapped in hang(text, width, "  ", "    "):
                    out.data(wrapped)


def _summary(checks: list[Check]) -> str:
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("fail", "warn", "ok")}
    words = {"fail": "failed", "warn": "to look at", "ok": "ok"}
    return "doctor: " + ", ".join(f"{n} {words[s]}" for s, n in counts.items() if n)


def doctor(
    ctx: typer.Context,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            help="Also check this profile against the server: cap, memory, contexts, guard.",
            show_default=False,
            autocompletion=profile_names,
        ),
    ] = None,
    server_log: ServerLogOpt = None,
    json_output: JsonOpt = False,
    host: HostOpt = None,
) -> None:
    """Check the server's real configuration against what keeps models loaded.

    One line per check (ok, warn, FAIL) with the evidence, each value with
    where it was read, and for each problem the exact fix for what runs the
    server (a systemd drop-in, launchctl setenv, docker -e / compose). The
    server's settings come from its log's newest `server config` line, else
    the `ollama serve` process environment, else systemd or docker.

    Checks: the server and its version; settings in this shell that the
    server does not have (OLLAMA_KEEP_ALIVE exported in ~/.bashrc never
    reaches a service); a profile larger than the server's model cap or
    memory, naming what Ollama would evict; num_ctx above a model's training
    context, and against OLLAMA_CONTEXT_LENGTH; pins reset by other clients
    in the last 24 h and the guard service; the log level; network exposure;
    the clock offset. It changes nothing and never needs root. See
    docs/doctor.md.

    Exit codes: 0 nothing failed (warnings allowed); 1 a check failed;
    2 a bad profile, or a profiles file that does not parse (file and line,
    with or without --profile); 3 Ollama unreachable.

    \b
    Examples:
      ollama-resident doctor
      ollama-resident doctor --profile coding
      journalctl -u ollama | ollama-resident doctor --server-log -
      ollama-resident doctor --json | jq '.checks[] | select(.status != "ok")'
    """
    import os
    from datetime import datetime, timezone

    from ollama_resident import doctor as checks_mod
    from ollama_resident import factsources, profiles, render
    from ollama_resident.cli._common import resolve_host, state
    from ollama_resident.cli._output import Output
    from ollama_resident.client import OllamaClient
    from ollama_resident.doctor import Check, DoctorInput
    from ollama_resident.errors import (
        RequestTimeout,
        ResidentError,
        ServerTooOld,
        ServerUnreachable,
    )
    from ollama_resident.models import PsSnapshot, canonical_name
    from ollama_resident.paths import profiles_path
    from ollama_resident.plan import installed_from_tags

    # The profiles file is read even without --profile: one that does not parse is the
    # same configuration error (exit 2, file and line) as in `profile list`, `apply`, `guard`.
    known = profiles.load(profiles_path(state(ctx).profiles))
    chosen = known.get(profile) if profile else None
    out = Output(json=json_output)
    target = resolve_host(host, chosen.host if chosen else None)
    client = OllamaClient(target, timeout=ANSWER_TIMEOUT_S, connect_timeout=CONNECT_TIMEOUT_S)

    def finish(
        checks: list[Check], extra: dict[str, Any], code: int, every: str | None = None
    ) -> None:
        if json_output:
            doc = {
                "schema_version": SCHEMA_VERSION,
                "host": client.display_url,
                "profile": chosen.name if chosen else None,
                "ok": not any(c.status == "fail" for c in checks),
                "checks": [c.to_json() for c in checks],
                "how_to_set": every,
                **extra,
            }
            out.data(render.dumps(doc))
        else:
            _render(out, checks, every)
            out.info(_summary(checks))
        if code:
            raise typer.Exit(code)

    with client:
        import time

        before = time.time()
        try:
            version, date = client.version_and_date()
        except ServerTooOld:
            version, date = "", None  # no /api/version: older than any this tool knows
        except (ServerUnreachable, RequestTimeout) as exc:
            hint = exc.hint or ""
            finish(
                [Check("server", "fail", exc.message, (), hint or None)],
                {"facts": None},
                3,
            )
            return
        after = time.time()
        snapshot = PsSnapshot((), datetime.now(timezone.utc))
        installed = {}
        try:
            snapshot = client.ps()
            installed = installed_from_tags(client.tags())
        except ServerTooOld:
            pass
        except RequestTimeout as exc:
            finish([Check("server", "fail", exc.message)], {"facts": None}, 3)
            return
        model_info = {}
        if chosen is not None:
            for pm in chosen.models:
                try:
                    model_info[canonical_name(pm.name)] = client.show(pm.name)
                except ServerUnreachable:
                    raise
                except ResidentError:
                    continue

    stdin = sys.stdin.buffer if server_log == "-" else None
    gathered = factsources.gather(target, version=version, server_log=server_log, stdin=stdin)
    offset = checks_mod.clock_offset(date, before, after)
    journal_events: list[Any] = []
    journal_path = ""
    try:
        from datetime import timedelta

        from ollama_resident.journal import Journal

        journal = Journal()
        journal_path = str(journal.path)
        # A week: resets are counted over the last 24 h, sizes taken from any load.
        since = datetime.now(timezone.utc) - timedelta(days=7)
        journal_events = journal.read(since=since, host=client.display_url)
    except OSError:
        pass
    inp = DoctorInput(
        url=client.display_url,
        version=version,
        facts=gathered.facts,
        manager=gathered.manager,
        shell_env=dict(os.environ),
        snapshot=snapshot,
        now=snapshot.taken_at,
        profile=chosen,
        installed=installed,
        model_info=model_info,
        journal=journal_events,
        journal_path=journal_path,
        guard_service=factsources.guard_service(chosen.name) if chosen else None,
        clock_offset_s=offset,
        clock_error_s=1.0 + (after - before) / 2,
    )
    checks = checks_mod.run_checks(inp)
    failed = any(c.status == "fail" for c in checks)
    finish(
        checks,
        {
            "facts": gathered.facts.to_json(),
            "manager": {
                "kind": gathered.manager.kind,
                "name": gathered.manager.name,
                "evidence": gathered.manager.evidence,
            },
            "clock_offset_s": None if offset is None else round(offset, 3),
        },
        1 if failed else 0,
        checks_mod.every_fix(gathered.manager, checks),
    )


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
