"""The server log's word on a watch's events (pure): :func:`upgrade` gives an event the cause
and the request that Ollama's own lines name.

A watch sees a change between two polls and infers its cause from ``/api/ps``; the server
log names it (at DEBUG, with certainty) and names the request behind it. An event is
matched to the log fact of the same model and kind within ``window_s`` before it was seen
(a poll interval plus the settle time): the event keeps its time and gains
``detail["server_log"]`` (the line, the level, the cause, the request), and, when the log is
sure and says otherwise, its reason and confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ollama_resident.events import Event
from ollama_resident.logtimeline import LogFact

__all__ = ["upgrade"]

# log cause -> the watch's reason
_REASONS = {
    "expired": "expired",
    "stopped": "stopped",
    "evicted": "evicted",
    "reloaded": "reloaded",
    "shutdown": "server_restart",
    "server_restart": "server_restart",
    "oom": "stopped",
}
_KINDS = {"unloaded": "unloaded", "keep_alive_changed": "keep_alive", "loaded": "loaded"}


def _matches(e: Event, f: LogFact, window_s: float) -> bool:
    if _KINDS.get(e.event) != f.kind or not f.name or e.model is None:
        return False
    from ollama_resident.models import names_match

    if not names_match(f.name, e.model):
        return False
    ahead = (e.time - f.time).total_seconds()
    return -2.0 <= ahead <= window_s


def upgrade(events: Sequence[Event], facts: Sequence[LogFact], *, window_s: float) -> list[Event]:
    """``events`` with what the matching log facts say (newest fact first wins)."""
    out = []
    for e in events:
        fact = next((f for f in reversed(facts) if _matches(e, f, window_s)), None)
        if fact is None:
            out.append(e)
            continue
        detail: dict[str, Any] = dict(e.detail)
        detail["server_log"] = {
            "line": fact.line_no,
            "level": fact.level,
            "cause": fact.cause,
            "request": fact.request.to_json() if fact.request else None,
        }
        reason = e.reason
        if fact.kind == "unloaded" and fact.level == "DEBUG" and fact.cause in _REASONS:
            reason = _REASONS[fact.cause]
            detail["confidence"] = "certain"
            if fact.cause == "evicted" and fact.detail.get("by_model"):
                detail["by_models"] = [fact.detail["by_model"]]
            if fact.cause == "reloaded" and fact.detail.get("context_after"):
                detail.setdefault(
                    "changes",
                    {
                        "context_length": [
                            fact.detail.get("context_before"),
                            fact.detail["context_after"],
                        ]
                    },
                )
        elif fact.kind == "unloaded" and fact.level == "INFO" and fact.cause == "reloaded":
            reason = "reloaded"
        if fact.request is not None:
            detail["by_client"] = fact.request.client
        out.append(replace(e, reason=reason, detail=detail))
    return out
