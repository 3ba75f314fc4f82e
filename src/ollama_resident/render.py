"""Turn results into what people and scripts read: tables, plain text, JSON.

Pure functions build rows and JSON-ready dicts; rich is imported only when a
terminal will show colour. Nothing here talks to a server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ollama_resident.durations import format_countdown
from ollama_resident.models import PsSnapshot, RunningModel, human_bytes

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ollama_resident.events import Event
    from ollama_resident.residency import LoadOutcome, UnloadOutcome

__all__ = [
    "PS_COLUMNS",
    "STATE_OVERDUE",
    "dumps",
    "guard_event_text",
    "load_json",
    "load_line",
    "load_summary",
    "load_warnings",
    "plain_table",
    "ps_json",
    "ps_rich_table",
    "ps_rows",
    "unload_json",
    "unload_line",
    "until_text",
]

PS_COLUMNS = ("NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL")
# Listed although its deadline has passed: a request is running on it, and it
# will either stay (busy past its deadline) or unload when that request ends
# (stopped while busy). Ollama's own `ps` says "Stopping..." for both.
STATE_OVERDUE = "busy or stopping"


def dumps(data: Any) -> str:
    """The one JSON style of this tool: stable key order, no markup."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def model_state(model: RunningModel, now: datetime) -> str:
    """``pinned``, ``expiring``, ``overdue`` (busy or stopping) or ``unknown``."""
    if model.expires_at is None:
        return "unknown"
    if model.is_pinned(now):
        return "pinned"
    remaining = model.expires_in(now)
    if remaining is not None and remaining <= 0:
        return "overdue"
    return "expiring"


def until_text(model: RunningModel, now: datetime) -> str:
    state = model_state(model, now)
    if state == "pinned":
        return "Forever"
    if state == "overdue":
        return STATE_OVERDUE
    if state == "unknown":
        return "unknown"
    remaining = model.expires_in(now)
    assert remaining is not None
    return format_countdown(remaining)


def ps_rows(snapshot: PsSnapshot, now: datetime) -> list[tuple[str, ...]]:
    return [
        (
            m.name,
            m.short_id,
            human_bytes(m.size),
            m.processor,
            str(m.context_length) if m.context_length else "-",
            until_text(m, now),
        )
        for m in snapshot.models
    ]


def ps_json(snapshot: PsSnapshot, now: datetime) -> list[dict[str, Any]]:
    """The ``ps --json`` contract: one object per model, server order."""
    items = []
    for m in snapshot.models:
        remaining = m.expires_in(now)
        items.append(
            {
                "name": m.name,
                "model": m.model,
                "digest": m.digest,
                "size": m.size,
                "size_vram": m.size_vram,
                "context_length": m.context_length,
                "expires_at": m.expires_at_raw,
                "pinned": m.is_pinned(now),
                "expires_in_s": None if remaining is None else round(remaining, 3),
                "state": model_state(m, now),
                "processor": m.processor,
                "until": until_text(m, now),
            }
        )
    return items


def plain_table(header: Sequence[str], rows: Iterable[Sequence[str]], gap: int = 3) -> str:
    """Left-aligned columns, no colour, no box characters, no trailing spaces."""
    all_rows = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    lines = []
    for row in all_rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append((" " * gap).join(cells).rstrip())
    return "\n".join(lines)


def ps_rich_table(snapshot: PsSnapshot, now: datetime) -> RenderableType:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, highlight=False)
    for column in PS_COLUMNS:
        table.add_column(column, justify="right" if column == "CONTEXT" else "left", no_wrap=True)
    for m, row in zip(snapshot.models, ps_rows(snapshot, now), strict=True):
        state = model_state(m, now)
        until_style = {"pinned": "green", "overdue": "yellow"}.get(state, "")
        proc_style = "yellow" if m.on_cpu_fraction > 0 and m.size_vram > 0 else ""
        table.add_row(
            Text(row[0], style="bold"),
            Text(row[1], style="dim"),
            Text(row[2]),
            Text(row[3], style=proc_style),
            Text(row[4]),
            Text(row[5], style=until_style),
        )
    return table


# -- preload / pin / unload ------------------------------------------------------------------


def load_json(r: LoadOutcome) -> dict[str, Any]:
    return {
        "model": r.requested,
        "name": r.name,
        "status": r.status,
        "ok": r.ok,
        "keep_alive_sent": r.keep_alive_sent,
        "keep_alive": r.keep_alive_now,
        "pinned": r.pinned,
        "expires_in_s": r.expires_in_s,
        "load_seconds": r.seconds,
        "context_length": r.context_length,
        "num_ctx_sent": r.num_ctx_sent,
        "processor": r.processor,
        "cpu_fraction": r.cpu_fraction,
        "evicted": list(r.evicted),
        "reloaded": r.reloaded,
        "reload_reason": r.reload_reason,
        "previous": r.previous,
        "note": r.note,
        "error": r.error,
        "hint": r.hint,
    }


_VERB = {
    "loaded": "loaded",
    "updated": "updated",
    "reloaded": "reloaded",
    "unchanged": "unchanged",
}


def load_line(r: LoadOutcome) -> str:
    """One line per model: ``llama3.2:latest loaded in 0.31 s: pinned forever, context 8192``."""
    if r.status == "unchanged":
        return f"{r.name} {r.note or 'already loaded'}"
    head = f"{r.name} {_VERB.get(r.status, r.status)}"
    if r.seconds is not None:
        head += f" in {r.seconds:.2f} s"
    facts = []
    if r.keep_alive_now:
        facts.append("pinned forever" if r.pinned else f"keep-alive {r.keep_alive_now}")
    if r.context_length:
        facts.append(f"context {r.context_length}")
    if r.processor:
        facts.append(r.processor)
    text = head + (": " + ", ".join(facts) if facts else "")
    if r.previous and r.status != "loaded":
        text += f" (was {r.previous})"
    if r.note:
        text += f"; {r.note}"
    return text


def load_warnings(r: LoadOutcome) -> list[str]:
    warnings = []
    if r.reloaded and r.reload_reason:
        warnings.append(f"{r.name}: {r.reload_reason}")
    for victim in r.evicted:
        warnings.append(
            f"loading {r.name} evicted {victim} (Ollama unloads the idle model with the "
            "shortest keep-alive to make room)"
        )
    if 0 < r.cpu_fraction < 1:
        warnings.append(
            f"{r.name} did not fit in GPU memory: {round(r.cpu_fraction * 100)}% runs on the "
            f"CPU ({r.processor}), which is slower; try a smaller --num-ctx or fewer models"
        )
    return warnings


def load_summary(results: Sequence[LoadOutcome]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    order = ["loaded", "updated", "reloaded", "unchanged", "failed", "cancelled"]
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    return f"{len(results)} models: " + ", ".join(parts)


def unload_json(r: UnloadOutcome) -> dict[str, Any]:
    return {
        "model": r.requested,
        "name": r.name,
        "status": r.status,
        "ok": r.ok,
        "seconds": r.seconds,
        "note": r.note,
        "error": r.error,
        "hint": r.hint,
    }


def unload_line(r: UnloadOutcome) -> str:
    if r.status == "unloaded":
        return f"{r.name} unloaded" + (f" in {r.seconds:.2f} s" if r.seconds is not None else "")
    if r.status == "not-loaded":
        return f"{r.name} {r.note or 'was not loaded'}"
    if r.status == "pending":
        return f"{r.name} is stopping: {r.note}"
    return f"{r.name}: {r.error}"


# -- guard ---------------------------------------------------------------------------------------

_GONE = {
    "expired": "its keep-alive ran out",
    "stopped": "something unloaded it",
    "evicted": "Ollama evicted it for another model",
    "server_restart": "the server restarted",
    "reloaded": "it was reloaded",
    "not_loaded": "it was not loaded",
    "went_early": "it went before its deadline: evicted or stopped, see `why`",
    "unknown": "it went away",
}


def guard_event_text(e: Event) -> str:
    """Words for a guard action; other events as `why` words them."""
    d = e.detail
    if e.event == "restored":
        took = d.get("load_seconds")
        text = f"loaded again ({_GONE.get(e.reason or '', e.reason or 'gone')})"
        if isinstance(took, (int, float)):
            text += f" in {took:.2f} s"
        keep = d.get("keep_alive")
        return text + (f"; keep-alive {keep}" if keep else "")
    if e.event == "reasserted":
        what = "pin" if d.get("keep_alive") == "forever" else f"keep-alive {d.get('keep_alive')}"
        cause = {
            "pin_lost": "a client had reset it",
            "window_changed": "its window had changed",
        }.get(e.reason or "", e.reason or "")
        return f"{what} re-asserted ({cause})"
    if e.event == "restore_failed":
        hint = f"; {d['hint']}" if d.get("hint") else ""
        return f"could not load it: {d.get('error')}{hint}; retrying in {d.get('retry_in_s')}s"
    if e.event == "conflict":
        others = ", ".join(d.get("by_models") or [])
        return f"evicted by guarded {others}: {d.get('advice')}; retrying in {d.get('retry_in_s')}s"
    if e.event == "recovered":
        return "resident again after earlier failures"
    from ollama_resident.why import describe

    return describe(e)
