"""``ps`` of several hosts: asked all at once, one table with a HOST column.

A host that did not answer is a row saying why; the exit code is 3 only when no
host answered, 1 when some did not (:func:`ollama_resident.fleet.exit_code`).
Imported only when ``ps`` is given several ``--host`` or ``--all-hosts``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import typer

from ollama_resident import vocabulary as v
from ollama_resident.layout import Column

if TYPE_CHECKING:
    from ollama_resident.fleet import HostResult
    from ollama_resident.host import Host
    from ollama_resident.models import PsSnapshot

__all__ = ["PS_KEYS", "all_hosts", "ps_hosts", "rows", "to_json"]

NONE_LOADED = "(no models loaded)"


def _short_host(text: str) -> str:
    """A narrower HOST cell: without ``http://`` (https stays, it matters)."""
    return text.removeprefix("http://")


LAYOUT = (
    Column(v.HOST, short=_short_host),
    Column(v.NAME, elide=True, min_width=16),
    Column(v.ID, drop=1),
    Column(v.SIZE, align="right"),
    Column(v.PROCESSOR, short=v.short_processor),
    Column(v.CONTEXT, align="right"),
    Column(v.UNTIL),
)


def _problem(r: HostResult[Any]) -> tuple[str, str]:
    """NAME and UNTIL cells of a host that did not answer: what, and why (without the
    host, which the row names): ``(unreachable)``, ``connection refused``."""
    assert r.error is not None
    text = r.error.message.replace(f" at {r.host.display}", "")
    if r.unreachable:
        # "cannot reach Ollama (connection refused)": the row says unreachable; keep why.
        reason = re.fullmatch(r"cannot reach Ollama \((.*)\)", text)
        return "(unreachable)", reason.group(1) if reason else text
    return "(error)", text


def rows(results: Sequence[HostResult[PsSnapshot]], now: datetime) -> list[tuple[str, ...]]:
    """One row per model, per host in the order given; a row for a host with none or down."""
    from ollama_resident.render import ps_rows

    out: list[tuple[str, ...]] = []
    for r in results:
        host = r.host.display
        if r.value is None:
            # Why it is down goes on its own line under the table (see ps_hosts): free
            # text squeezed into the narrow UNTIL column would wrap mid-phrase.
            what, _why = _problem(r)
            out.append((host, what, "", "", "", "", ""))
        elif not r.value.models:
            out.append((host, NONE_LOADED, "", "", "", "", ""))
        else:
            out.extend((host, *row) for row in ps_rows(r.value, now))
    return out


def to_json(results: Sequence[HostResult[PsSnapshot]], now: datetime) -> list[dict[str, Any]]:
    """``ps --json`` of several hosts: every item has ``host`` and ``error``.

    A host that did not answer is one item with its ``error``, ``state``
    ``unreachable`` (or ``error``) and every model field null.
    """
    from ollama_resident.render import ps_json

    out: list[dict[str, Any]] = []
    for r in results:
        if r.value is not None:
            out.extend(
                {**item, "host": r.host.display, "error": None} for item in ps_json(r.value, now)
            )
        elif r.error is not None:
            blank: dict[str, Any] = dict.fromkeys(PS_KEYS)
            blank.update(
                host=r.host.display,
                error=r.error.message,
                state="unreachable" if r.unreachable else "error",
            )
            out.append(blank)
    return out


# The keys of one ``ps --json`` item (render.ps_json), null in a down host's item.
PS_KEYS = (
    "name",
    "model",
    "digest",
    "size",
    "size_vram",
    "context_length",
    "expires_at",
    "pinned",
    "expires_in_s",
    "state",
    "processor",
    "until",
)


def all_hosts(profiles_option: str | None, given: Sequence[str]) -> list[Host]:
    """``--host`` values, then every host the profiles file names, then the default host."""
    from ollama_resident import paths, profiles
    from ollama_resident.cli._common import resolve_host
    from ollama_resident.fleet import unique_hosts

    pf = profiles.load(paths.profiles_path(profiles_option))
    named = [p.host for p in pf.profiles.values() if p.host]
    return unique_hosts(
        [
            *(resolve_host(h) for h in given if h.strip()),
            *(resolve_host(h) for h in named),
            resolve_host(None),
        ]
    )


def ps_hosts(
    hosts: Sequence[Host],
    prefix: str | None,
    *,
    json_output: bool,
    timeout: float,
) -> None:
    """Ask every host at once, print one table (or JSON list), exit as :func:`fleet.exit_code`."""
    from ollama_resident import fleet, render
    from ollama_resident.cli._output import Output
    from ollama_resident.client import OllamaClient

    def ask(host: Host) -> PsSnapshot:
        with OllamaClient(host, timeout=timeout) as client:
            return client.ps().filter_prefix(prefix)

    results = fleet.each_host(hosts, ask)
    now = datetime.now(timezone.utc)
    out = Output(json=json_output)
    if json_output:
        out.data(render.dumps(to_json(results, now)))
    else:
        fitted = render.table(LAYOUT, rows(results, now), out.width)
        if out.rich_stdout:
            out.out_console().print(render.styled(fitted), soft_wrap=True)
        else:
            out.data(fitted.plain())
        for r in results:
            if r.error is not None:
                out.error(r.error.message)
    code = fleet.exit_code(results)
    if code:
        raise typer.Exit(int(code))
