"""Explain a model's recent life in plain words, from the journal.

:func:`describe` and :func:`evidence` put one event into words (``watch`` and
``journal show`` use them too). :func:`build_story` gathers one model's events, newest
first, merges the same fact seen by two recorders (a ``watch`` and the ``unload`` command
that caused it), and says where the journal does not cover the time. What Ollama's own
server log says is merged in by :mod:`ollama_resident.logstory`.

Pure: no I/O. Callers read the journal and pass the events in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any

from ollama_resident.durations import parse_timestamp
from ollama_resident.errors import unreachable_reason
from ollama_resident.events import TOOL, Event, format_time, same_change
from ollama_resident.models import canonical_name, names_match
from ollama_resident.vocabulary import ago as _ago
from ollama_resident.vocabulary import clock as _clock
from ollama_resident.vocabulary import span

__all__ = [
    "Story",
    "StoryItem",
    "build_story",
    "describe",
    "evidence",
    "render_story",
    "story_json",
]

START_RECORDING = "start recording with `ollama-resident watch` (or `guard`)"
KEEP_RECORDING = "Keep `ollama-resident watch` (or `guard`) running to record what happens."
_DEDUPE_S = 10.0
_CONFIDENCE_RANK = {"certain": 2, "likely": 1, "guess": 0}


# -- one event in words --------------------------------------------------------------------


def _d(e: Event, key: str, default: Any = None) -> Any:
    return e.detail.get(key, default)


def _names(value: Any) -> str:
    items = [str(v) for v in value] if isinstance(value, list) else []
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _seconds_text(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return "?"
    if seconds < 1:
        return f"{seconds:.1f}s"
    return span(round(seconds))  # one way for every span of time: 4m 12s (vocabulary.py)


def _command(e: Event) -> str:
    """The command that acted, as typed: ``ollama-resident apply work``, ``... guard``."""
    return _command_text(_d(e, "action"), _d(e, "profile"))


def _command_text(action: Any, profile: Any) -> str:
    text = TOOL + (f" {action}" if action else "")
    return text + (f" {profile}" if action == "apply" and isinstance(profile, str) else "")


def _by(e: Event) -> str:
    return f" by {_command(e)}" if e.by_tool else ""


def _suffix(e: Event) -> str:
    conf = e.confidence
    if conf == "likely":
        return " (likely)"
    if conf == "guess":
        return " (a guess)"
    return ""


def _load_facts(e: Event) -> str:
    parts = []
    ka = _d(e, "keep_alive")
    if ka:
        parts.append("pinned forever" if ka == "forever" else f"keep-alive {ka}")
    ctx = _d(e, "context_length")
    if ctx:
        parts.append(f"context {ctx}")
    proc = _d(e, "processor")
    if proc:
        parts.append(str(proc))
    return ", ".join(parts)


def describe(e: Event) -> str:
    """One line: what happened, with the reason in words and how sure it is."""
    kind, reason = e.event, e.reason
    if kind == "recording_started":
        every = _d(e, "interval_s")
        each = f", every {every:g}s" if isinstance(every, (int, float)) else ""
        return f"recording started ({_d(e, 'source', 'watch')}{each})"
    if kind == "recording_stopped":
        return f"recording stopped ({_d(e, 'source', 'watch')})"
    if kind == "server_unreachable":
        # Never seen up in this recording: not reached (yet), not "down".
        return "could not reach Ollama yet" + _error_text(e)
    if kind == "server_down":
        return "Ollama is not answering" + _error_text(e)
    if kind == "server_up":
        version = _d(e, "version")
        down = _d(e, "down_for_s")
        if reason == "first_answer":
            waited = _d(e, "unreachable_for_s")
            text = "Ollama is answering now" + (f" (version {version})" if version else "")
            return text + (f", after {_seconds_text(waited)} of trying" if waited else "")
        if reason == "restarted":
            prev = _d(e, "previous_version")
            if prev:
                return f"Ollama restarted (version {prev} -> {version})"
            return "Ollama is back after a restart" + (
                f" ({_seconds_text(down)} without an answer)" if down is not None else ""
            )
        text = "Ollama is answering again"
        if version:
            text += f" (version {version})"
        if down is not None:
            text += f" after {_seconds_text(down)}"
        return text
    facts = _load_facts(e)
    if kind == "loaded":
        if reason == "already_loaded":
            return "already loaded when recording began" + (f" ({facts})" if facts else "")
        if reason == "reload":
            return "loaded again by the reload" + (f": {facts}" if facts else "")
        if reason == "after_restart":
            return "loaded after the server restart" + (f": {facts}" if facts else "")
        return "loaded" + _by(e) + (f": {facts}" if facts else "")
    if kind == "unloaded":
        return _describe_unload(e)
    if kind == "keep_alive_changed":
        before, after = _d(e, "before", "?"), _d(e, "after", "?")
        if reason == "pin_lost":
            who = _by(e) or " by a request that carried its own keep_alive"
            return f"the pin was reset to about {after}{who}"
        if reason == "pinned":
            return f"pinned (keep-alive forever, was {before}){_by(e)}"
        return f"keep-alive changed from about {before} to about {after}{_by(e)}"
    if kind == "offload_changed":
        return (
            f"share on the CPU moved: {_d(e, 'processor_before', '?')} -> {_d(e, 'processor', '?')}"
        )
    if kind == "busy":
        if reason == "stopping":
            return (
                "stopping: an unload was asked for while a request runs; it goes when that "
                "request ends" + _by(e)
            )
        return (
            "busy past its deadline: a request is still running, and the countdown restarts "
            "when it ends" + _suffix(e)
        )
    guard = _describe_guard(e, facts)
    if guard is not None:
        return guard
    return f"{kind}" + (f" ({reason})" if reason else "")


def _error_text(e: Event) -> str:
    """`` (connection refused)``: why the server did not answer, without naming it (the
    event's host is shown beside the line, or is the only one)."""
    err = _d(e, "error")
    if not isinstance(err, str) or not err:
        return ""
    return f" ({unreachable_reason(err, e.host)})"


_GONE_WORDS = {
    "expired": "its keep-alive had run out",
    "stopped": "a client had stopped it",
    "evicted": "another model had evicted it",
    "reloaded": "a reload had replaced it",
    "server_restart": "the server had restarted",
    "went_early": "it had gone before its deadline",
    "not_loaded": "it was not loaded",
}


def _describe_guard(e: Event, facts: str) -> str | None:
    """The events ``guard`` adds to the journal (its own actions), in words."""
    kind, reason = e.event, e.reason
    retry = _d(e, "retry_in_s")
    again = f"; retrying in {_seconds_text(retry)}" if isinstance(retry, (int, float)) else ""
    if kind == "restored":
        why_gone = _GONE_WORDS.get(reason or "", reason or "it was gone")
        if _d(e, "gone_confidence") in ("likely", "guess"):
            why_gone = "most likely " + why_gone
        again = "" if reason == "not_loaded" else " again"
        return f"loaded{again} by {TOOL} guard ({why_gone})" + (f": {facts}" if facts else "")
    if kind == "reasserted":
        what = {
            "pin_lost": "a request had reset the pin",
            "window_changed": "a request had changed its keep-alive",
        }.get(reason or "", reason or "it drifted")
        ka = _d(e, "keep_alive")
        done = "re-pinned" if ka == "forever" else f"keep-alive set back to {ka or '?'}"
        return f"{done} by {TOOL} guard ({what})"
    if kind == "restore_failed":
        return f"the guard could not load it again: {_d(e, 'error', 'load failed')}{again}"
    if kind == "conflict":
        by = _names(_d(e, "by_models")) or "another guarded model"
        return f"evicted by {by}, which the guard also keeps: they do not fit together{again}"
    if kind == "recovered":
        n = _d(e, "after_failures")
        return "the guard has it loaded again" + (f" after {n} failed tries" if n else "")
    return None


def _describe_unload(e: Event) -> str:
    reason = e.reason
    if reason == "expired":
        ka = _d(e, "keep_alive")
        window = f" ({ka})" if ka and ka != "unknown" else ""
        return f"unloaded: its keep-alive{window} ran out while it was idle" + _suffix(e)
    if reason == "stopped":
        if e.by_tool:
            return f"unloaded by {_command(e)}"
        if e.confidence == "certain":
            return "unloaded: stopped by an explicit unload (keep_alive 0 or `ollama stop`)"
        return "unloaded early, most likely stopped by a client (keep_alive 0 or `ollama stop`)" + (
            "" if e.confidence == "likely" else _suffix(e)
        )
    if reason == "evicted":
        by = _names(_d(e, "by_models"))
        if by:
            return f"unloaded: evicted to make room for {by}" + _suffix(e)
        return "unloaded: evicted to make room for another model" + _suffix(e)
    if reason == "reloaded":
        changes = _changes_text(e)
        text = "reloaded" + (f": {changes}" if changes else "")
        if _d(e, "pin_lost"):
            text += "; the pin was lost"
        return text + _by(e) + _suffix(e)
    if reason == "server_restart":
        return "unloaded: the Ollama server restarted" + _suffix(e)
    return "unloaded; the snapshots do not show why" + _suffix(e)


def _changes_text(e: Event) -> str:
    changes = _d(e, "changes")
    parts = []
    if isinstance(changes, Mapping):
        ctx = changes.get("context_length")
        if isinstance(ctx, list) and len(ctx) == 2:
            parts.append(f"context {ctx[0]} -> {ctx[1]}")
        if "digest" in changes:
            parts.append("a new digest (the model was pulled again)")
        if "size_vram" in changes and "context_length" not in changes:
            parts.append("a different GPU share")
        if not parts and "size" in changes:
            parts.append("a different size")
    text = _d(e, "changes_text")
    if not parts and text:
        parts.append(str(text))
    return ", ".join(parts)


def evidence(e: Event, *, tz: tzinfo | None = None) -> list[str]:
    """The facts behind :func:`describe`'s line, one sentence each."""

    def t(raw: Any) -> str:
        if not isinstance(raw, str):
            return "?"
        try:
            return _clock(parse_timestamp(raw), tz)
        except ValueError:
            return raw

    out: list[str] = []
    kind, reason = e.event, e.reason
    since = _d(e, "since")
    interval = ""
    if isinstance(since, str):
        with contextlib.suppress(ValueError):
            start, end = _span(parse_timestamp(since), e.time, tz)
            interval = f"between {start} and {end}"
    ka = _d(e, "keep_alive")
    if kind == "unloaded" and e.by_tool and reason == "stopped":
        secs = _d(e, "unload_seconds")
        if secs is not None:
            out.append(f"it was gone {secs:.2f}s after the request")
        return out
    if kind == "unloaded" and reason == "expired":
        exp = _d(e, "expires_at")
        if exp:
            out.append(
                f"its deadline (expires_at {t(exp)}) had not moved, and it was gone "
                + (interval or f"by {_clock(e.time, tz)}")
            )
        new = _names(_d(e, "newcomers"))
        if new:
            out.append(f"{new} appeared in the same interval, but its time was up anyway")
    elif kind == "unloaded" and reason == "stopped":
        if _d(e, "evidence") == "expires_at_moved_to_stop":
            out.append(
                f"expires_at moved from its deadline to {t(_d(e, 'stopped_at'))}, the moment "
                "of the stop: Ollama does that only for an explicit unload"
            )
        elif _d(e, "evidence") == "busy_then_gone":
            out.append(
                "it was listed past its deadline (busy) and went away when its request "
                "ended; only a stop or an eviction ends a model that way"
            )
        else:
            early = _d(e, "early_by_s")
            known_ka = ka if ka and ka != "unknown" else None
            if isinstance(early, (int, float)) and early > 0:
                state = f"idle with {_seconds_text(early)} left"
                state += f" of its {known_ka} keep-alive" if known_ka else ""
            else:
                state = "idle" + (f" (keep-alive {known_ka})" if known_ka else "")
            out.append(f"it was {state} and went away {interval}".rstrip())
            waited = _d(e, "waited_s")
            out.append(
                "no other model appeared"
                + (f" within {_seconds_text(waited)}" if waited else "")
                + ", and the server did not restart"
            )
            out.append(
                "an explicit unload (keep_alive 0, `ollama stop`, `ollama rm`) from any client "
                "does this; so does a runtime out-of-memory cleanup (logged at WARN)"
            )
            again = _d(e, "loaded_again_by")
            if again:
                command = _command_text(again, _d(e, "loaded_again_profile"))
                out.append(
                    f"{command} loaded it again afterwards with the same options: that "
                    "load was ours, not a reload"
                )
    elif kind == "unloaded" and reason == "evicted":
        out.extend(_eviction_evidence(e, interval))
    elif kind == "unloaded" and reason == "reloaded":
        changes = _changes_text(e)
        if changes:
            out.append(f"the runner changed: {changes}")
        gone = _d(e, "gone_for_s")
        if gone is not None:
            out.append(f"it was gone for {_seconds_text(gone)} and came back")
        if e.by_tool:
            out.append(f"{_command(e)} loaded it with other options than it was running with")
        elif changes and e.confidence != "guess":
            out.append(
                "Ollama reloads a model when a request asks for other load options (num_ctx, "
                "num_batch, num_gpu, ...); align the options your clients send"
            )
        else:
            out.append(
                "it came back with the same digest, context and size: a reload for options "
                "/api/ps does not show (num_batch, num_thread, ...), or a stop followed by "
                "another request that loaded it again"
            )
        before, after = _d(e, "keep_alive_before"), _d(e, "keep_alive_after")
        if _d(e, "pin_lost"):
            out.append(
                f"the new runner took that request's keep-alive ({after}), not the pin: a "
                "reload always does"
            )
        elif before and after and before != after:
            out.append(f"keep-alive {before} before, {after} after")
    elif kind == "unloaded" and reason == "server_restart":
        how = _d(e, "evidence")
        if how == "version_changed":
            out.append(f"the server now reports version {_d(e, 'version')}")
        elif how == "unreachable_then_empty":
            out.append("the server stopped answering and came back with none of its models")
        elif how == "gone_then_unreachable":
            out.append("it went away, then the server stopped answering")
        elif how == "all_gone_at_once":
            out.append(
                f"all {_d(e, 'resident_count', 'the')} models went at once with no newcomer: a "
                "restart between two polls, a runtime out-of-memory cleanup, or a client that "
                "unloaded them all"
            )
        out.append("Ollama keeps nothing across a restart: pins must be set again")
    elif kind == "unloaded":
        out.append("it went away with no sign of the cause " + interval)
    elif kind == "keep_alive_changed":
        prev_exp, exp = _d(e, "previous_expires_at"), _d(e, "expires_at")
        after = _d(e, "after", "?")
        if prev_exp and exp:
            shown_before = "forever" if reason == "pin_lost" else t(prev_exp)
            out.append(
                f"expires_at went from {shown_before} to {t(exp)}, about {after} after the "
                "request that changed it"
            )
        if reason == "pin_lost" and not e.by_tool:
            out.append(
                'a client that sends its own keep_alive (e.g. "5m") on every request resets '
                "a pin; clients that leave it out keep it"
            )
    elif kind == "busy" and reason == "past_deadline":
        out.append(
            f"expires_at {t(_d(e, 'expires_at'))} has passed but it is still listed: Ollama "
            "updates expires_at only when a request ends"
        )
    elif kind == "busy" and reason == "stopping" and _d(e, "stopped_at"):
        out.append(f"expires_at moved back to {t(_d(e, 'stopped_at'))}, the moment of the stop")
    return out


def _eviction_evidence(e: Event, interval: str) -> list[str]:
    out = []
    count = _d(e, "resident_count")
    limit = _d(e, "max_loaded")
    ka = _d(e, "keep_alive", "unknown")
    resident = _d(e, "resident") or []
    others = [
        f"{r.get('name')} {r.get('keep_alive')}"
        for r in resident
        if isinstance(r, Mapping) and r.get("name") != e.model
    ]
    cause = _d(e, "cause")
    if _d(e, "evidence") == "at_limit_no_newcomer":
        out.append(
            f"{count} models were resident, the limit (OLLAMA_MAX_LOADED_MODELS, default 3 per "
            "GPU); no newcomer was seen: one may have loaded and left within the interval "
            "(e.g. an embedding request with keep_alive 0)"
        )
        out.append("an explicit unload by a client looks the same")
        return out
    if cause == "load_by_tool":
        out.append(f"{_names(_d(e, 'by_models'))} was loaded by {_command(e)} and this one went")
        return out
    if count is not None:
        head = f"{count} model{'s' if count != 1 else ''} were resident"
        if cause == "max_loaded":
            known = "" if _d(e, "max_loaded_known") else ", the default"
            head += f" (limit {limit}{known}: OLLAMA_MAX_LOADED_MODELS)"
        head += "; Ollama evicts the idle model with the shortest keep-alive"
        head += f"; {e.model} had {ka}"
        if others:
            head += f" (others: {', '.join(others)})"
        out.append(head)
    by = _names(_d(e, "by_models"))
    later = _d(e, "newcomer_after_s")
    if by and later is not None:
        out.append(
            f"{by} appeared {_seconds_text(later)} after it went (Ollama unloads first, waits "
            "for the memory, then loads)"
        )
    elif by:
        span = interval.removeprefix("between ").replace(" and ", " to ")
        out.append(
            f"{by} appeared in the same interval between two polls" + (f" ({span})" if span else "")
        )
    if cause == "memory":
        out.append(
            "the models use the GPU: Ollama also evicts when a new model is predicted not to "
            "fit in free GPU memory"
        )
    elif cause == "unexplained":
        out.append(
            "fewer models than the default limit were resident and none use the GPU, so the "
            "limit may be lower (OLLAMA_MAX_LOADED_MODELS) or a client stopped it"
        )
    if _d(e, "victim_rule_ok") is False:
        out.append(
            "but an idle model with a shorter keep-alive stayed, which the eviction rule "
            "would have picked first: another cause is possible"
        )
    if _d(e, "was_busy"):
        out.append("it was busy; Ollama waited for its request to end before evicting it")
    return out


def _span(start: datetime, end: datetime, tz: tzinfo | None) -> tuple[str, str]:
    """Two clock times that differ when shown: tenths of a second for short intervals."""
    a, b = _clock(start, tz), _clock(end, tz)
    if (end - start).total_seconds() < 10:
        a += f".{start.astimezone(tz).microsecond // 100_000}"
        b += f".{end.astimezone(tz).microsecond // 100_000}"
    return a, b


def headline(model: str, told: Sequence[Any], now: datetime, tz: tzinfo | None = None) -> str:
    """The answer in one line: the latest departure and its reason, if there is one.

    ``told``: what happened to the model, newest first, each with ``time``, ``summary``
    and ``gone`` (a :class:`StoryItem`, a :class:`ollama_resident.logstory.Told`).
    """
    if not told:
        return f"{model}: nothing recorded"
    latest = told[0]
    gone = next((i for i in told if i.gone), None)
    if latest.gone or gone is None:
        return f"{model}: {latest.summary} ({_ago(latest.time, now)})"
    return (
        f"{model}: loaded (last seen {_clock(latest.time, tz, now)}). Last "
        f"departure, {_ago(gone.time, now)}: {gone.summary}"
    )


# -- the story -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoryItem:
    time: datetime
    summary: str
    evidence: tuple[str, ...] = ()
    event: Event | None = None
    confidence: str | None = None
    kind: str = "gap"  # without an event: "gap" (gone unrecorded), "recording_stopped"
    since: datetime | None = None  # a gap's start (recording stopped)

    @property
    def gone(self) -> bool:
        """Whether this item is the model going away (an unload, or a gap it did not survive)."""
        if self.event is None:
            return self.kind == "gap"
        return self.event.event == "unloaded"

    def to_json(self) -> dict[str, Any]:
        return {
            "time": format_time(self.time),
            "event": self.event.event if self.event else self.kind,
            "reason": self.event.reason if self.event else None,
            "confidence": self.confidence,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "detail": dict(self.event.detail)
            if self.event
            else ({"since": format_time(self.since)} if self.since else {}),
        }


@dataclass(frozen=True)
class Story:
    model: str
    items: tuple[StoryItem, ...]  # newest first
    notes: tuple[str, ...]
    journal: str | None
    covers: tuple[datetime, datetime] | None
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    host: str | None = None  # the server told about (None: every server in the journal)
    other_hosts: tuple[str, ...] = ()  # servers with entries for the model, left out

    @property
    def headline(self) -> str:
        return self.headline_text()

    def headline_text(self, tz: tzinfo | None = None) -> str:
        """The answer in one line: the latest departure and its reason, if there is one."""
        # A note in the timeline (recording stopped) is not something that happened to it.
        told = [i for i in self.items if i.event is not None or i.gone]
        return headline(self.model, told, self.now, tz)


# A guard's own action and the change a poll then saw it make: one fact.
_GUARD_TWINS = {("restored", "loaded"), ("reasserted", "keep_alive_changed")}
# Facts a poll reads from /api/ps: two records that differ in one are two happenings.
_OBSERVED_FACTS = ("expires_at", "previous_expires_at", "stopped_at", "changes", "digest")


_GUARD_ACTIONS = ("restored", "reasserted", "restore_failed", "conflict", "recovered")
# What a poll read of a model that a command's unload line does not carry.
_SEEN_FACTS = (
    "since",
    "keep_alive",
    "keep_alive_kind",
    "size",
    "size_vram",
    "digest",
    "context_length",
)


def _observed(e: Event) -> bool:
    """Recorded by a poll (``watch``, ``guard``), not by the command that acted."""
    if e.event in _GUARD_ACTIONS:
        return False
    return "since" in e.detail or "expires_at" in e.detail


def _twins(a: Event, b: Event) -> bool:
    """Whether ``a`` and ``b`` (same model, a few seconds apart) tell the same happening.

    Two recorders see one change (a ``watch`` and a ``guard``; a ``watch`` and the
    ``unload`` that caused it); a guard's ``restored``/``reasserted`` and the load or
    re-pin its poll then saw. Two entries of one recorder are two happenings (a reload
    loop), and so are two whose /api/ps facts differ (another deadline, other changes).
    """
    if (a.event, b.event) in _GUARD_TWINS or (b.event, a.event) in _GUARD_TWINS:
        other = b if a.event in ("restored", "reasserted") else a
        return other.by_tool and other.detail.get("action") == "guard"
    if _command_and_poll_unload(a, b):
        return True  # one unload: the command that caused it says why (any poll's guess)
    if (a.event, a.reason) != (b.event, b.reason):
        return _command_and_poll_load(a, b)
    if not _observed(a) and not _observed(b):
        return False  # two commands' entries: two actions
    if a.event == "keep_alive_changed" and "expires_at" in a.detail and "expires_at" in b.detail:
        # The new deadline is the end of one request to the nanosecond: the same deadline
        # is the same change, whatever each recorder saw before it (a guard's poll reads
        # the pin its own load set, a watch's the one a moment later).
        return bool(a.detail["expires_at"] == b.detail["expires_at"])
    return all(
        a.detail[key] == b.detail[key]
        for key in _OBSERVED_FACTS
        if key in a.detail and key in b.detail
    )


def _command_and_poll_unload(a: Event, b: Event) -> bool:
    """An unload a command journaled (``unload``; a load's eviction) and one a poll saw."""
    if a.event != "unloaded" or b.event != "unloaded":
        return False
    return any(_by_command(x) and _observed(y) for x, y in ((a, b), (b, a)))


def _command_and_poll_load(a: Event, b: Event) -> bool:
    """A load a command journaled as a reload and the poll that saw it go and come back
    and named that command: one load (:func:`events.same_change`)."""
    if not same_change(a, b) or a.event != "loaded":
        return False
    return any(
        _by_command(x) and _observed(y) and y.by_tool and _action(y) == _action(x)
        for x, y in ((a, b), (b, a))
    )


def _action(e: Event) -> Any:
    return e.detail.get("action")


def _by_command(e: Event) -> bool:
    """Written by the command that acted (``preload``, ``pin``, ``apply``, ``unload``)."""
    return (
        not _observed(e)
        and e.detail.get("action") is not None
        and (e.by_tool or e.detail.get("seen_by") == TOOL)
    )


def merge_duplicates(events: Sequence[Event]) -> list[Event]:
    """The same fact recorded twice (a watch and the command that caused it): keep one.

    Same model, a few seconds apart, and :func:`_twins`; the surer one wins and takes the
    other's ``by``/``action``. A guard's own event wins over its poll's twin (it says why)
    and takes the facts the poll read.
    """
    kept: list[Event] = []
    for e in events:
        twin = None
        if e.model is not None:
            between = False  # another event of the model lies between: not one unload
            for i in range(len(kept) - 1, -1, -1):
                k = kept[i]
                if (e.time - k.time).total_seconds() > _DEDUPE_S:
                    break
                if k.model != e.model:
                    continue
                if _twins(k, e) and not (between and _command_and_poll_unload(k, e)):
                    twin = i
                    break
                between = True
        if twin is None:
            kept.append(e)
            continue
        a, b = kept[twin], e
        if a.event != b.event:
            guard, seen = (a, b) if a.event in ("restored", "reasserted") else (b, a)
            detail = {**seen.detail, **guard.detail}
            kept[twin] = Event(
                min(a.time, b.time), guard.host, guard.model, guard.event, guard.reason, detail
            )
            continue
        if _command_and_poll_unload(a, b):
            # The command knows the cause; the poll's facts (its window, the model's
            # size) stay where the command has none; the poll's time (when it was seen).
            command, seen = (a, b) if _by_command(a) else (b, a)
            detail = {
                **{k: v for k, v in seen.detail.items() if k in _SEEN_FACTS},
                **command.detail,
            }
            kept[twin] = Event(
                min(a.time, b.time), command.host, command.model, "unloaded", command.reason, detail
            )
            continue
        if _command_and_poll_load(a, b):
            # The command knows it reloaded; the poll's facts stay where it has none.
            command, seen = (a, b) if _by_command(a) else (b, a)
            detail = {**seen.detail, **command.detail}
            kept[twin] = Event(
                min(a.time, b.time), command.host, command.model, "loaded", command.reason, detail
            )
            continue
        rank_a = _CONFIDENCE_RANK.get(a.confidence or "", 1)
        rank_b = _CONFIDENCE_RANK.get(b.confidence or "", 1)
        best, other = (a, b) if (rank_a, len(a.detail)) >= (rank_b, len(b.detail)) else (b, a)
        detail = dict(best.detail)
        for key in ("by", "action", "profile"):
            if key in other.detail and key not in detail:
                detail[key] = other.detail[key]
        kept[twin] = Event(best.time, best.host, best.model, best.event, best.reason, detail)
    return kept


_RESIDENT_AFTER = {
    "loaded",
    "keep_alive_changed",
    "offload_changed",
    "busy",
    "restored",  # guard's own events
    "reasserted",
    "recovered",
}


def build_story(
    model: str,
    events: Sequence[Event],
    *,
    now: datetime,
    journal: str | None = None,
    tz: tzinfo | None = None,
    limit: int | None = 30,
    host: str | None = None,
) -> Story:
    """The model's recent life from ``events`` (the whole journal, oldest first).

    Newest first, at most ``limit`` items (None: all); notes say what the journal cannot
    cover.
    ``host`` (a server URL as the journal writes it, ``http://127.0.0.1:11434``) tells
    only that server's entries and notes the other servers that have some for the model;
    None tells every server's, naming each item's server when there are several.
    """
    name = canonical_name(model)
    other_hosts: tuple[str, ...] = ()
    anything = bool(events)  # from any server
    if host is not None:
        other_hosts = tuple(
            sorted(
                {
                    e.host
                    for e in events
                    if e.host and e.host != host and e.model and names_match(e.model, name)
                }
            )
        )
        events = [e for e in events if e.host == host or not e.host]
    ordered = sorted(events, key=lambda e: e.time)
    covers = (ordered[0].time, ordered[-1].time) if ordered else None
    mine = merge_duplicates([e for e in ordered if e.model and names_match(e.model, name)])
    hosts = {e.host for e in mine}
    sessions = [
        e
        for e in ordered
        if e.model is None
        and e.event in ("recording_started", "recording_stopped")
        and (not hosts or e.host in hosts)
    ]
    server = [
        e
        for e in ordered
        if e.model is None
        and e.event in ("server_down", "server_up")
        and e.reason != "first_answer"  # a first answer tells no outage of the model's
        and (not hosts or e.host in hosts)
    ]
    notes: list[str] = []
    items: list[StoryItem] = []

    # What the model went through, plus server outages while it was resident, and what
    # became of it while nothing was recording.
    rank = {"recording_started": 0, "recording_stopped": 2}
    merged = sorted([*mine, *server, *sessions], key=lambda e: (e.time, rank.get(e.event, 1)))
    resident = False
    timeline: list[Event] = []
    active: set[tuple[str, Any]] = set()
    gap_start: datetime | None = None
    resident_at_stop = False
    pending_gap: tuple[datetime, datetime] | None = None
    for e in merged:
        if e.model is not None:
            if pending_gap is not None and resident and not _survived(e):
                items.append(_gap_item(*pending_gap, tz, now))
                resident = False
            pending_gap = None
            if not (e.event == "loaded" and e.reason == "already_loaded" and resident):
                timeline.append(e)  # a new session seeing it again adds nothing
            if e.event == "unloaded":
                resident = False
            elif e.event in _RESIDENT_AFTER:
                resident = True
        elif e.event == "recording_started":
            if not active and gap_start is not None and resident:
                pending_gap = (gap_start, e.time)
            gap_start = None
            active.add((e.host, e.detail.get("pid")))
        elif e.event == "recording_stopped":
            active.discard((e.host, e.detail.get("pid")))
            if not active:
                gap_start = e.time
                resident_at_stop = resident
        elif resident:
            timeline.append(e)  # the server went down or came back while it was loaded
    if gap_start is not None and resident_at_stop and not active:
        # The last recording ended while it was loaded: say so where it happened, and
        # say "nothing after that" only when the commands wrote nothing after it either.
        later = any(e.time > gap_start for e in mine)
        after = (
            f"only {TOOL}'s own commands wrote entries after that"
            if later
            else "the journal has nothing after that"
        )
        items.append(
            StoryItem(
                time=gap_start,
                summary=f"recording stopped while it was loaded; {after}",
                evidence=("what other clients and Ollama itself did from here on was not seen",),
                kind="recording_stopped",
            )
        )
        notes.append(
            f"Recording stopped at {_clock(gap_start, tz, now)} while it was loaded; {after}. "
            f"{KEEP_RECORDING}"
        )

    several = len({e.host for e in mine if e.host}) > 1
    for e in timeline:
        items.append(
            StoryItem(
                time=e.time,
                summary=describe(e) + (f" (on {e.host})" if several and e.host else ""),
                evidence=tuple(evidence(e, tz=tz)),
                event=e,
                confidence=e.confidence,
            )
        )
    # Newest first; of two at the same moment the later-recorded one (a reload's new
    # runner after the old one's end) comes first.
    order = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda i: (i.time, order[id(i)]), reverse=True)
    if limit is not None:
        items = items[:limit]

    # Coverage.
    if not ordered and anything:
        # Other servers' entries only: the journal is not empty, this server's part is.
        notes.append(
            f"The journal has nothing from {host}: nothing has been recording it. To explain "
            f"the next unload, {START_RECORDING}."
        )
    elif not ordered:
        notes.append(
            f"The journal is empty: nothing has been recording. To explain the next unload, "
            f"{START_RECORDING}."
        )
    elif not mine:
        assert covers is not None
        notes.append(
            f"The journal covers {_clock(covers[0], tz, now)} to {_clock(covers[1], tz, now)} "
            f"and never saw {name}. If it was loaded outside that time, nothing recorded it; "
            f"{START_RECORDING}."
        )
    else:
        first = mine[0]
        if first.event == "loaded" and first.reason == "already_loaded":
            notes.append(
                f"It was already loaded when recording began at {_clock(first.time, tz, now)}; "
                "what happened before is not in the journal."
            )
        if not sessions:
            notes.append(
                f"Only {TOOL}'s own commands wrote these entries; changes made by other "
                f"clients or by Ollama itself were not seen. {KEEP_RECORDING}"
            )

    loop = _reload_loop(mine, tz, now)
    if loop:
        notes.insert(0, loop)
    if other_hosts:
        notes.append(
            f"Told for {host}. The journal also has entries for {name} from "
            f"{_names(list(other_hosts))}: add --host {other_hosts[0]} to see them."
        )
    elif several:
        servers = sorted({e.host for e in mine if e.host})
        notes.append(f"These entries come from {len(servers)} servers: {_names(servers)}.")

    return Story(
        model=name,
        items=tuple(items),
        notes=tuple(notes),
        journal=journal,
        covers=covers,
        now=now,
        host=host,
        other_hosts=other_hosts,
    )


_LOOP_GAP_S = 600.0


def _reload_loop(events: Sequence[Event], tz: tzinfo | None, now: datetime) -> str | None:
    """ "Reloaded 3 times between T1 and T2, alternating context 256 and 4096": the
    latest run of two or more reloads by other clients, each within 10 minutes of the
    one before, in words with the advice that ends it; None when there is no such run.
    """
    reloads = [
        e for e in events if e.event == "unloaded" and e.reason == "reloaded" and not e.by_tool
    ]
    run: list[Event] = []
    for e in reloads:
        if run and (e.time - run[-1].time).total_seconds() > _LOOP_GAP_S:
            run = []
        run.append(e)
    if len(run) < 2:
        return None
    contexts: list[int] = []
    for e in run:
        changes = e.detail.get("changes")
        ctx = changes.get("context_length") if isinstance(changes, Mapping) else None
        if isinstance(ctx, list):
            for value in ctx:
                if isinstance(value, int) and value not in contexts:
                    contexts.append(value)
    if len(contexts) == 2:
        how = f", alternating context {contexts[0]} and {contexts[1]}"
    elif contexts:
        how = ", between contexts " + _names([str(c) for c in contexts])
    else:
        how = ""
    return (
        f"Reloaded {len(run)} times between {_clock(run[0].time, tz, now)} and "
        f"{_clock(run[-1].time, tz, now)}{how}: clients ask for different load options, and "
        "each reload loads it again and drops its pin. Send the same options from every "
        "client (or leave num_ctx out and set OLLAMA_CONTEXT_LENGTH on the server)."
    )


def _survived(e: Event) -> bool:
    """After an unrecorded gap, does the model's next event show it was still loaded?"""
    if e.event in ("loaded", "restored"):
        return e.reason == "already_loaded"
    return e.event in _RESIDENT_AFTER or e.event == "unloaded"


def _gap_item(start: datetime, end: datetime, tz: tzinfo | None, now: datetime) -> StoryItem:
    return StoryItem(
        time=end,
        summary=(
            f"went away while nothing was recording (between {_clock(start, tz, now)} "
            f"and {_clock(end, tz, now)}); the journal cannot say why"
        ),
        evidence=("it was loaded when recording stopped and gone when it started again",),
        confidence=None,
        since=start,
    )


# -- output --------------------------------------------------------------------------------


def render_story(story: Story, *, tz: tzinfo | None = None) -> str:
    """Plain text, newest first, evidence indented under each line."""
    now = story.now
    lines = [story.headline_text(tz), ""]
    for item in story.items:
        when = _clock(item.time, tz, now)
        lines.append(f"  {when}  {item.summary}   [{_ago(item.time, now)}]")
        pad = " " * (len(when) + 4)
        for fact in item.evidence:
            lines.append(f"{pad}- {fact}")
    notes = list(story.notes)
    if notes:
        lines.append("")
        lines.extend(notes)
    if story.journal:
        span = ""
        if story.covers:
            span = (
                f", covering {_clock(story.covers[0], tz, now)} to "
                f"{_clock(story.covers[1], tz, now)}"
            )
        lines.append(f"Journal: {story.journal}{span}")
    # One blank line between blocks, never two (an empty story has no items between).
    tidy = [line for n, line in enumerate(lines) if line or (n and lines[n - 1])]
    while tidy and tidy[-1] == "":
        tidy.pop()
    return "\n".join(tidy)


def story_json(story: Story) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "model": story.model,
        "headline": story.headline,
        "items": [item.to_json() for item in story.items],
        "notes": list(story.notes),
        "journal": story.journal,
        "host": story.host,
        "other_hosts": list(story.other_hosts),
        "covers": (
            [format_time(story.covers[0]), format_time(story.covers[1])] if story.covers else None
        ),
    }
