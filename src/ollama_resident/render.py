"""Turn results into what people and scripts read: tables, plain text, JSON.

Pure functions build rows and JSON-ready dicts; rich is imported only when a
terminal will show colour. Nothing here talks to a server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ollama_resident import vocabulary as v
from ollama_resident.models import PsSnapshot, RunningModel, human_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.text import Text

    from ollama_resident.events import Event
    from ollama_resident.layout import Column, Fitted
    from ollama_resident.residency import LoadOutcome, UnloadOutcome

__all__ = [
    "PS_COLUMNS",
    "STATE_OVERDUE",
    "dumps",
    "guard_event_text",
    "guard_lines",
    "load_json",
    "load_line",
    "load_summary",
    "load_warnings",
    "plain_table",
    "ps_json",
    "ps_layout",
    "ps_rows",
    "ps_styled",
    "ps_table",
    "styled",
    "table",
    "unload_json",
    "unload_line",
    "until_text",
]

PS_COLUMNS = (v.NAME, v.ID, v.SIZE, v.PROCESSOR, v.CONTEXT, v.UNTIL)


def ps_layout() -> tuple[Column, ...]:
    """How the ps table gives way on a narrow terminal (built on first use: `ps --json`
    and scripts never import the layout code)."""
    from ollama_resident.layout import Column

    return (
        Column(v.NAME, elide=True, min_width=16),
        Column(v.ID, drop=1),
        Column(v.SIZE, align="right"),
        Column(v.PROCESSOR, short=v.short_processor),
        Column(v.CONTEXT, align="right"),
        Column(v.UNTIL),
    )


STATE_OVERDUE = v.STATE_OVERDUE


def dumps(data: Any) -> str:
    """The one JSON style of this tool: stable key order, no markup, no raw controls."""
    from ollama_resident.textsafe import json_safe

    return json_safe(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


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
    return v.span(remaining)


def ps_rows(snapshot: PsSnapshot, now: datetime) -> list[tuple[str, ...]]:
    """One row per model; the server's text shown with its control characters escaped."""
    from ollama_resident.textsafe import printable

    return [
        (
            printable(m.name),
            printable(m.short_id),
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


def table(
    columns: Sequence[Column | str], rows: Iterable[Sequence[str]], width: int | None = None
) -> Fitted:
    """Any table of this tool, fitted to ``width`` (None: unlimited).

    A column given by its header alone is right-aligned when numeric
    (:data:`vocabulary.RIGHT_ALIGNED`) and never gives way.
    """
    from ollama_resident.layout import Column, fit
    from ollama_resident.textsafe import printable

    cols = [
        c if isinstance(c, Column) else Column(c, "right" if c in v.RIGHT_ALIGNED else "left")
        for c in columns
    ]

    # Every cell one line with its control characters escaped: a name from the
    # server can neither act on the terminal nor forge a row.
    return fit(cols, [tuple(printable(c) for c in r) for r in rows], width)


def plain_table(
    header: Sequence[Column | str], rows: Iterable[Sequence[str]], width: int | None = None
) -> str:
    """Aligned columns, no colour, no box characters, no trailing spaces."""
    return table(header, rows, width).plain()


def styled(fitted: Fitted, style: Callable[[int, int], str] | None = None) -> Text:
    """The same lines as :meth:`Fitted.plain`, with styles: bold headers, ``style(row, col)``."""
    from rich.text import Text

    text = Text(no_wrap=True, overflow="ignore")
    for n, line in enumerate(fitted.lines()):
        if n:
            text.append("\n")
        for segment, col, row in line:
            if col is None:
                text.append(segment)
            elif row < 0:
                text.append(segment, style="bold")
            else:
                text.append(segment, style=style(row, col) if style else "")
    return text


def ps_table(snapshot: PsSnapshot, now: datetime, width: int | None = None) -> Fitted:
    """``ollama ps``'s columns plus countdowns, fitted to ``width``."""
    from ollama_resident.layout import fit

    return fit(ps_layout(), ps_rows(snapshot, now), width)


def ps_styled(snapshot: PsSnapshot, now: datetime, width: int | None = None) -> Text:
    """The ps table with colour: pinned green, overdue and split processors yellow."""
    models = snapshot.models

    def style(row: int, col: int) -> str:
        m = models[row]
        if col == 0:
            return "bold"
        if col == 1:
            return "dim"
        if col == 3 and m.on_cpu_fraction > 0 and m.size_vram > 0:
            return "yellow"
        if col == 5:
            return {"pinned": "green", "overdue": "yellow"}.get(model_state(m, now), "")
        return ""

    return styled(ps_table(snapshot, now, width), style)


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
        head += f" in {v.took(r.seconds)}"
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
        return f"{r.name} unloaded" + (f" in {v.took(r.seconds)}" if r.seconds is not None else "")
    if r.status == "not-loaded":
        return f"{r.name} {r.note or 'was not loaded'}"
    if r.status == "pending":
        return f"{r.name} is stopping: {r.note}"
    return f"{r.name}: {r.error}"


# -- guard ---------------------------------------------------------------------------------------

_GONE = {
    "expired": "its keep-alive ran out",
    "stopped": "a client stopped it: keep_alive 0 or `ollama stop`",
    "evicted": "Ollama evicted it for another model",
    "server_restart": "the server restarted",
    "reloaded": "it was reloaded",
    "not_loaded": "it was not loaded",
    "went_early": "it went before its deadline: evicted or stopped, see `why`",
    "unknown": "it went away",
}


def _keep_words(keep: object) -> str:
    if not keep:
        return ""
    return "pinned forever" if keep == "forever" else f"keep-alive {keep}"


def _retry(seconds: object) -> str:
    return v.span(float(seconds)) if isinstance(seconds, (int, float)) else "a while"


def guard_event_text(e: Event, *, seen_before: bool = False, retrying: bool = True) -> str:
    """Words for a guard action; other events as `why` words them.

    ``retrying`` false (``guard --once``, which stops after one check): a failure does
    not say when it is tried again, as it is not.

    ``restored``: ``loaded in 0.08s, pinned forever`` the first time, ``loaded
    again in 0.08s, pinned forever (Ollama evicted it for another model)`` after a
    loss; either ends with ``; evicted X to make room`` when the load pushed
    models out.
    """
    d = e.detail
    if e.event == "restored":
        first = e.reason in (None, "not_loaded") and not seen_before
        text = "loaded" if first else "loaded again"
        took = d.get("load_seconds")
        if isinstance(took, (int, float)):
            text += f" in {v.took(took)}"
        keep = _keep_words(d.get("keep_alive"))
        text += f", {keep}" if keep else ""
        if not first and e.reason not in (None, "not_loaded"):
            gone = _GONE.get(e.reason or "", e.reason or "gone")
            if d.get("gone_confidence") in ("likely", "guess"):
                gone = "most likely " + gone
            text += f" ({gone})"
        evicted = [str(x) for x in d.get("evicted") or []]
        return text + (f"; evicted {', '.join(evicted)} to make room" if evicted else "")
    if e.event == "reasserted":
        what = (
            "pinned it again"
            if d.get("keep_alive") == "forever"
            else (f"set its keep-alive back to {d.get('keep_alive')}")
        )
        cause = {
            "pin_lost": "a client had reset it",
            "window_changed": "its window had changed",
        }.get(e.reason or "", e.reason or "")
        return f"{what} ({cause})" if cause else what
    if e.event == "restore_failed":
        from ollama_resident.errors import without_host

        hint = f"; {d['hint']}" if d.get("hint") else ""
        then = f"; retrying in {_retry(d.get('retry_in_s'))}" if retrying else ""
        # The line names the server already (its host, or the one guarded).
        error = without_host(str(d.get("error")), e.host)
        return f"could not load it: {error}{hint}{then}"
    if e.event == "conflict":
        others = ", ".join(d.get("by_models") or []) or "another guarded model"
        then = f"; retrying in {_retry(d.get('retry_in_s'))}" if retrying else ""
        return f"evicted to load guarded {others}: {d.get('advice')}{then}"
    if e.event == "recovered":
        return "resident again after earlier failures"
    from ollama_resident.why import describe

    text = describe(e)
    if retrying and e.event in ("server_down", "server_unreachable"):
        text += "; still trying"  # not said by --once, which tries no more
    return text


def guard_lines(
    events: Sequence[Event],
    seen: set[str] | None = None,
    *,
    retrying: bool = True,
    with_host: bool = False,
) -> list[tuple[str, str]]:
    """A guard's round as people read it: ``(level, line)``, one line per action, in time order.

    Level is ``info``, ``warn`` (the server is down or not reached yet) or ``failed`` (a
    restore that failed, or guarded models that cannot all stay loaded: what makes
    ``--once`` exit 1). A line is ``HH:MM:SS  MODEL  words``, and ``HH:MM:SS  HOST  words``
    for the server itself; ``with_host`` (several servers guarded) puts the host before
    the model too, ``HH:MM:SS  HOST  MODEL  words``: the host is named once. What the
    watcher saw of the guard's own work (the load it just made, the model that load
    evicted) is already in the action's line and is not repeated; a guarded model
    evicted by another guarded one is named in the line of the load that evicted it.
    ``seen`` (kept by the caller across rounds) holds the models seen loaded, so a
    model's first load says "loaded" and a later one "loaded again".
    """
    seen = set() if seen is None else seen
    ordered = sorted(events, key=lambda e: e.time)
    acted = {e.model for e in ordered if e.event in ("restored", "reasserted")}
    conflicts: dict[tuple[str | None, str], Event] = {
        (e.model, by): e
        for e in ordered
        if e.event == "conflict"
        for by in (e.detail.get("by_models") or [])
    }
    # A guarded model evicted by the guard's own load of another: said once, in that load's line.
    clashes: dict[int, list[Event]] = {}
    used: set[int] = set()
    for e in ordered:
        if e.event == "restored" or e.event == "reasserted":
            victims = [(x, e.model) for x in e.detail.get("evicted") or []]
            mine = [conflicts[k] for k in victims if k in conflicts]
            mine = [c for c in mine if id(c) not in used]
            clashes[id(e)] = mine
            used.update(id(c) for c in mine)
    lines: list[tuple[str, str]] = []
    for e in ordered:
        if e.event.startswith("recording_") or id(e) in used:
            continue
        if e.by_tool and e.detail.get("action") == "guard" and e.event not in _GUARD_OWN:
            continue  # the watcher's view of our own load: the action line says it
        by_models = e.detail.get("by_models") or []
        if e.event == "unloaded" and e.reason == "evicted" and set(by_models) & acted:
            continue  # named in the line of the load that evicted it
        text = guard_event_text(e, seen_before=e.model in seen, retrying=retrying)
        if e.model and e.event in ("restored", "loaded"):
            seen.add(e.model)
        level = (
            "failed"
            if e.event in ("conflict", "restore_failed")
            else "warn"
            if e.event in ("server_down", "server_unreachable")
            else "info"
        )
        mine = clashes.get(id(e)) or []
        if mine:
            names = ", ".join(str(c.model) for c in mine)
            text += (
                f"; {names} {'is' if len(mine) == 1 else 'are'} guarded too, and they cannot "
                f"all stay loaded: guard fewer models, raise OLLAMA_MAX_LOADED_MODELS (if memory "
                f"allows) or give them a smaller num_ctx"
            )
            if retrying:
                text += f"; retrying {names} in {_retry(mine[0].detail.get('retry_in_s'))}"
            level = "failed"
        when = e.time.astimezone().strftime("%H:%M:%S")
        subject = f"{e.host}  {e.model}" if with_host and e.model else e.model or e.host
        lines.append((level, f"{when}  {subject}  {text}"))
    return lines


_GUARD_OWN = ("restored", "reasserted", "restore_failed", "conflict", "recovered")
