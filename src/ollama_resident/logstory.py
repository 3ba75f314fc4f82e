"""One story from the journal and Ollama's server log (pure: no I/O).

:func:`tell` merges what ``watch``/``guard`` journaled (:func:`ollama_resident.why.build_story`)
with the facts of the server log (:mod:`ollama_resident.logtimeline`) into one timeline,
newest first. The same change seen by both is told once, with both sources; a cause read
from a DEBUG line is certain and replaces the journal's inference; at INFO the story says
what it could establish, what only DEBUG shows, and how to turn DEBUG on for the server
that wrote the log (:func:`debug_howto`). :func:`overview` does it for every model seen in
a window (``why`` with no model).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from ollama_resident.logtimeline import LogFact, Request, Timeline, short_digest
from ollama_resident.vocabulary import ago as _ago
from ollama_resident.vocabulary import clock as _clock
from ollama_resident.vocabulary import took as took_text

__all__ = [
    "LogInfo",
    "Told",
    "TotalStory",
    "debug_howto",
    "describe_fact",
    "overview",
    "overview_json",
    "render",
    "render_overview",
    "tell",
    "to_json",
]

_MATCH_BEFORE_S = 2.0  # a journal entry is written at the poll after the change
_MATCH_AFTER_S = 30.0  # ... at most a poll interval plus the settle time later


@dataclass(frozen=True)
class LogInfo:
    """Which log was read (or tried): for the sources line, the JSON and the DEBUG advice.

    ``kind`` is logsource's (``journal``, ``journal-user``, ``macos-app``, ``windows-app``,
    ``docker``, ``file``, ``stdin``); ``attempts`` are the places tried before it, each
    ``(name, reason)``; ``partial`` when only the end of a longer log was read;
    ``names_by``: the server that answered the blob-to-name look-ups (None: none did).
    """

    kind: str | None
    name: str | None
    attempts: tuple[tuple[str, str], ...] = ()
    partial: bool = False
    container: str | None = None
    names_by: str | None = None


@dataclass(frozen=True)
class Told:
    """One item of the story; ``sources`` name where it comes from.

    ``sources``: ``{"kind": "journal"}`` and/or ``{"kind": "server_log", "line": N,
    "lines": [...], "level": "DEBUG", "file": None}``.
    """

    time: datetime
    event: str
    reason: str | None
    summary: str
    confidence: str | None
    evidence: tuple[str, ...] = ()
    sources: tuple[Mapping[str, Any], ...] = ()
    request: Request | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    note: bool = False  # a mark in the timeline (recording stopped, a server start), not
    # something that happened to the model
    # The log facts it tells (to tell them again with the command the journal names):
    # the fact, the model's next keep-alive fact, the new runner of a reload told with it.
    fact: LogFact | None = field(default=None, compare=False, repr=False)
    after: LogFact | None = field(default=None, compare=False, repr=False)
    new_runner: LogFact | None = field(default=None, compare=False, repr=False)

    @property
    def gone(self) -> bool:
        return self.event in ("unloaded", "gap")

    def source_text(self) -> str:
        parts = []
        for s in self.sources:
            if s.get("kind") == "journal":
                parts.append("journal")
            elif s.get("kind") == "server_log":
                where = f"{s['file']} " if s.get("file") else ""
                parts.append(f"{where}log line {s.get('line')}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        from ollama_resident.events import format_time

        return {
            "time": format_time(self.time),
            "event": self.event,
            "reason": self.reason,
            "confidence": self.confidence,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "sources": [dict(s) for s in self.sources],
            "request": self.request.to_json() if self.request else None,
            "detail": _plain(self.detail),
        }


@dataclass(frozen=True)
class TotalStory:
    model: str
    items: tuple[Told, ...]  # newest first
    notes: tuple[str, ...]
    journal: str | None
    covers: tuple[datetime, datetime] | None
    log: LogInfo | None
    log_covers: tuple[datetime, datetime] | None
    log_lines: int
    log_level: str | None  # "DEBUG", "INFO" or None (no log)
    now: datetime
    host: str | None = None  # the server whose journal entries are told
    other_hosts: tuple[str, ...] = ()  # servers with entries for the model, left out
    total: int | None = None  # items in the window; more than len(items) when cut

    @property
    def left_out(self) -> int:
        """The older items not shown (the ``limit`` of :func:`tell`)."""
        return max(0, (self.total or 0) - len(self.items))

    def headline_text(self, tz: tzinfo | None = None) -> str:
        # Notes in the timeline (a server start, a recording that stopped) are not
        # something that happened to the model.
        from ollama_resident.why import headline

        own = [
            i
            for i in self.items
            if not i.note and i.event not in ("server_start", "recording_stopped")
        ]
        return headline(self.model, own, self.now, tz)


# -- words for log facts -------------------------------------------------------------------


def _plain(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in d.items()}


def sent_at(
    req: Request, during: datetime | None = None, ended: datetime | None = None
) -> datetime:
    """When the request was made, to about a second.

    A ``[GIN]`` line is written when the answer ends, with that time cut to the whole
    second (gin's ``2006/01/02 - 15:04:05``) and the latency: the request began in
    ``[end - latency, end - latency + 1s)``, ``req.start`` being the first moment. A line
    of the server's own (times to the millisecond) narrows it: ``ended``, one written as
    the request ended (the timer it leaves), gives the start as that time minus the
    latency; ``during``, one the request caused (a load, an eviction, a stop), comes
    right after it began (and bounds it: it began before). Without either, the middle of
    the second it may have begun in.
    """
    lo = req.start
    hi = lo + timedelta(seconds=1)
    latency = req.end - req.start
    guess = lo + (hi - lo) / 2
    if ended is not None and lo <= ended - latency < hi:
        guess = ended - latency
    if during is not None and lo <= during < hi and (ended is None or during < guess):
        guess = during  # it began before anything it caused
    return guess


def sent_times(facts: Sequence[LogFact]) -> dict[int, datetime]:
    """When each request the ``facts`` name was sent (by its ``[GIN]`` line number), from
    the best line of the server's own any of them rests on: one request is told at one
    time in every line of a story."""
    requests: dict[int, Request] = {}
    during: dict[int, datetime] = {}
    ended: dict[int, datetime] = {}
    for f in facts:
        r = f.request
        if r is None:
            continue
        requests[r.line_no] = r
        d, e = _anchor(f)
        if e is not None:
            ended.setdefault(r.line_no, e)
        if d is not None:
            during[r.line_no] = min(during.get(r.line_no, d), d)
    return {n: sent_at(r, during.get(n), ended.get(n)) for n, r in requests.items()}


def request_when(
    req: Request,
    tz: tzinfo | None = None,
    now: datetime | None = None,
    sent: datetime | None = None,
) -> str:
    """``at 16:37:17`` (when it was sent), or ``sent at 16:38:19, answered at 16:38:21`` when
    the answer took a second or more: never the end alone, which reads as the start.
    ``sent``: the estimate of :func:`sent_at` (None: from the ``[GIN]`` line alone)."""
    at = _clock(sent or sent_at(req), tz, now)
    if (req.end - req.start).total_seconds() >= 1.0:
        return f"sent at {at}, answered at {_clock(req.end, tz, now)}"
    return f"at {at}"


def request_text(
    req: Request,
    tz: tzinfo | None = None,
    now: datetime | None = None,
    sent: datetime | None = None,
) -> str:
    """``POST /api/generate from 127.0.0.1 at 16:37:17`` (or ``..., sent at A, answered at
    B``)."""
    when = request_when(req, tz, now, sent)
    return f"{req.describe()}{',' if when.startswith('sent') else ''} {when}"


def _sent(f: LogFact | None, sent: Mapping[int, datetime] | None) -> datetime | None:
    """When ``f``'s request was sent: from ``sent`` (:func:`sent_times`), else its own line."""
    if f is None or f.request is None:
        return None
    known = (sent or {}).get(f.request.line_no)
    return known if known is not None else sent_at(f.request, *_anchor(f))


def _by(
    f: LogFact,
    tz: tzinfo | None,
    now: datetime | None,
    sent: Mapping[int, datetime] | None = None,
    command: str | None = None,
) -> str:
    """`` by POST /api/generate from 127.0.0.1 at 16:37:17`` (``f``'s request); with the
    ``command`` of ours that sent it (the journal knows): `` by ollama-resident apply work
    (POST ... at ...)``."""
    req = f.request
    if req is None:
        return f" by {command}" if command else ""
    what = request_text(req, tz, now, _sent(f, sent))
    return f" by {command} ({what})" if command else f" by {what}"


def _anchor(f: LogFact | None) -> tuple[datetime | None, datetime | None]:
    """``(during, ended)`` for :func:`sent_at`: a timer is set as its request ends (so is
    a keep_alive 0 prompt's unload); a load, an eviction, a stop or a reload happen while
    the request that caused it runs."""
    if f is None:
        return None, None
    if f.kind == "keep_alive" or f.detail.get("how") == "keep_alive_0_prompt":
        return None, f.time
    return f.time, None


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return ""
    from ollama_resident.models import human_bytes

    return human_bytes(n)


def _name(digest: Any, names: Mapping[str, str]) -> str:
    if not isinstance(digest, str):
        return "another model"
    return names.get(digest) or short_digest(digest)


def describe_fact(
    f: LogFact,
    *,
    names: Mapping[str, str],
    tz: tzinfo | None = None,
    now: datetime | None = None,
    after: LogFact | None = None,
    subject: str | None = None,
    command: str | None = None,
    sent: Mapping[int, datetime] | None = None,
) -> tuple[str, list[str]]:
    """One log fact in words: the summary line and its evidence sentences.

    ``after`` is the model's next keep-alive fact (a reload's new keep-alive);
    ``subject``: the blob digest of the model whose story it is (an INFO eviction that may
    have been its own is told from its side); ``command``: ours that sent the request
    (``ollama-resident apply work``, from the journal), named beside the request;
    ``sent``: when each request was sent (:func:`sent_times`; None: from ``f`` alone).
    """
    d = f.detail
    by = _by(f, tz, now, sent, command)
    ev: list[str] = []
    if f.kind == "server_start":
        version = d.get("version")
        text = "Ollama" + (f" {version}" if version else "") + " started"
        if d.get("address"):
            text += f", listening on {d['address']}"
        config = d.get("config") or {}
        shown = [f"{k}={v}" for k, v in config.items() if k != "OLLAMA_HOST"]
        if shown:
            ev.append("settings: " + ", ".join(shown))
        return text, ev
    if f.kind == "loaded":
        took = d.get("load_s")
        parts = []
        if d.get("context"):
            parts.append(f"context {d['context']}")
        if d.get("size"):
            parts.append(_size(d["size"]))
        head = "loaded again with other options" if d.get("reload") else "loaded"
        if isinstance(took, (int, float)):
            head += f" in {took_text(took)}"
        text = head + (" (" + ", ".join(parts) + ")" if parts else "") + by
        if d.get("free_memory"):
            ev.append(f"the system had {_size(d['free_memory'])} free when it loaded")
        if d.get("made_room"):
            ev.append(
                f"{d.get('runners')} models stayed loaded: another one was unloaded to make room"
            )
        return text, ev
    if f.kind == "keep_alive":
        ka, before = d.get("keep_alive"), d.get("before")
        if before is None:
            text = (
                "pinned: keep-alive forever" if d.get("forever") else f"keep-alive set to {ka}"
            ) + by
        elif d.get("before_forever") and not d.get("forever"):
            text = f"the pin was reset to {ka}{by}"
            ev.append(
                "a client that sends its own keep_alive on every request resets a pin; "
                "clients that leave it out keep it"
            )
        elif d.get("forever"):
            text = f"pinned again (keep-alive forever, was {before}){by}"
        else:
            text = f"keep-alive changed from {before} to {ka}{by}"
        return text, ev
    if f.kind == "evicted_unknown":
        cands = ", ".join(_name(c, names) for c in d.get("candidates") or [])
        limit = d.get("limit")
        loaded = (
            f"{_name(d.get('by_digest'), names)} loaded while {d.get('runners')} models were "
            f"loaded, the limit" + (f" (OLLAMA_MAX_LOADED_MODELS={limit})" if limit else "")
        )
        if subject is not None and subject in (d.get("candidates") or []):
            # Told in the story of one of the models that may have made room: say first
            # what may have happened to it, then why.
            text = f"perhaps evicted: {loaded}{by}, and one of {cands} was unloaded to make room"
        else:
            text = f"{loaded}{by}: one of {cands or 'the others'} was unloaded to make room"
        ev.append("an INFO log does not name the model that was unloaded; a DEBUG log does")
        return text, ev
    # unloaded
    cause = f.cause
    ka = d.get("keep_alive")
    if cause == "expired":
        text = (
            "unloaded: its keep-alive" + (f" ({ka})" if ka else "") + " ran out while it was idle"
        )
        ev.append("the server's timer expired (DEBUG line)")
    elif cause == "stopped" and d.get("how") == "keep_alive_0_prompt":
        text = "unloaded: stopped" + (by or " by a request") + ", a request with keep_alive 0"
        ev.append("Ollama unloads a model as soon as a request with keep_alive 0 ends")
    elif cause == "stopped":
        text = "unloaded: stopped" + (by or " by a request")
        if not command:
            text += " (keep_alive 0, or `ollama stop`)"
        ev.append(
            "nothing else (no timer, no eviction, no reload) preceded the unload: an explicit "
            "stop from a client"
        )
    elif cause == "evicted":
        victim_for = d.get("by_model") or _name(d.get("by_digest"), names)
        if d.get("rule") == "memory":
            text = (
                f"unloaded: evicted to make room for {victim_for}, which would not fit in "
                "free memory"
            )
        else:
            limit = d.get("limit")
            text = f"unloaded: evicted to make room for {victim_for}" + (
                f" (OLLAMA_MAX_LOADED_MODELS={limit} reached)"
                if limit
                else " (the loaded-model limit was reached)"
            )
        if f.request is not None or command:
            ev.append(f"{victim_for} was asked for{by}")
        ev.append(
            "Ollama unloads the idle model with the shortest keep-alive"
            + (f"; this one had {ka}" if ka else "")
        )
    elif cause == "reloaded":
        a, b = d.get("context_before"), d.get("context_after")
        change = f"context {a} -> {b}" if a and b and a != b else "other load options"
        text = f"reloaded with new options: {change}{by}"
        if ka == "forever" and after is not None and not after.detail.get("forever"):
            text += f"; the pin was lost (keep-alive now {after.detail.get('keep_alive')})"
            ev.append(
                "the new runner takes the keep-alive of the request that reloaded it, not the pin"
            )
        ev.append(
            "Ollama reloads a model when a request asks for other load options (num_ctx, "
            "num_gpu, ...); align the options your clients send"
        )
    elif cause == "shutdown":
        text = "unloaded: the Ollama server shut down"
        again = d.get("restarted_at")
        if isinstance(again, datetime):
            text = (
                "unloaded: the Ollama server restarted (it started again at "
                f"{_clock(again, tz, now)})"
            )
    elif cause == "server_restart":
        until = d.get("until")
        text = "gone: the Ollama server restarted"
        if isinstance(until, datetime):
            ev.append(
                f"the previous run's last line was at {_clock(until, tz, now)}; a stop writes "
                "nothing at INFO, and every model is gone after a restart"
            )
    elif cause == "unseen":
        text = "had been unloaded: it was loaded again"
        ev.append(
            "an INFO log shows loads, not unloads: it went between its last load and this "
            "one (an expiry, a stop or an eviction)"
        )
    elif cause == "oom":
        text = "unloaded: Ollama ran out of memory while generating and unloaded every model"
    else:
        text = "unloaded; the log does not say why"
    return text, ev


# -- merging -------------------------------------------------------------------------------


def _log_source(f: LogFact) -> dict[str, Any]:
    return {
        "kind": "server_log",
        "line": f.line_no,
        "lines": list(f.lines) or [f.line_no],
        "level": f.level,
        "file": f.file,
    }


_EVENT_OF_FACT = {"loaded": "loaded", "keep_alive": "keep_alive_changed", "unloaded": "unloaded"}


def _from_fact(
    f: LogFact,
    names: Mapping[str, str],
    tz: tzinfo | None,
    now: datetime,
    after: LogFact | None,
    *,
    subject: str | None = None,
    command: str | None = None,
    new_runner: LogFact | None = None,
    sent: Mapping[int, datetime] | None = None,
) -> Told:
    """``f`` as an item; ``new_runner``: a reload's load, told in the same item (one
    reload, one item: the old runner going and the new one loading are one change)."""
    summary, ev = describe_fact(
        f, names=names, tz=tz, now=now, after=after, subject=subject, command=command, sent=sent
    )
    conf = f.confidence
    if conf == "likely":
        summary += " (likely)"
    elif conf == "guess":
        summary += " (a guess)"
    event = _EVENT_OF_FACT.get(f.kind, f.kind)
    reason = f.cause
    if f.kind == "keep_alive":
        d = f.detail
        reason = (
            "pin_lost"
            if d.get("before_forever") and not d.get("forever")
            else ("pinned" if d.get("forever") else "window_changed")
        )
    source = _log_source(f)
    detail = {k: v for k, v in f.detail.items() if k != "config"} | (
        {"config": f.detail["config"]} if "config" in f.detail else {}
    )
    if new_runner is not None:
        loaded, load_ev = describe_fact(new_runner, names=names, tz=tz, now=now, sent=sent)
        # The new runner's facts, without the request the reload already names.
        if new_runner.request is not None:
            loaded = loaded.replace(_by(new_runner, tz, now, sent), "")
        loaded = loaded.replace("loaded again with other options", "loaded", 1)
        ev = [f"the new runner {loaded}", *load_ev, *ev]
        source["lines"] = sorted({*source["lines"], *(new_runner.lines or [new_runner.line_no])})
        detail["new_runner"] = _plain(new_runner.detail)
    return Told(
        time=f.time,
        event=event,
        reason=reason,
        summary=summary,
        confidence=conf,
        evidence=tuple(ev),
        sources=(source,),
        request=f.request or (new_runner.request if new_runner else None),
        note=f.kind == "server_start",
        detail=detail,
        fact=f,
        after=after,
        new_runner=new_runner,
    )


def _command_of(jt: Told) -> str | None:
    """The command of ours the journal entry names (``ollama-resident apply work``), if it
    acted: a command's own line, or a poll's that put the change down to it."""
    from ollama_resident.events import TOOL
    from ollama_resident.why import _command_text

    d = jt.detail
    action = d.get("action")
    if not action or TOOL not in (d.get("by"), d.get("seen_by")):
        return None
    return _command_text(action, d.get("profile"))


def _journal_told(item: Any) -> Told:
    data = item.to_json()
    return Told(
        time=item.time,
        event=data["event"],
        reason=data["reason"],
        summary=item.summary,
        confidence=item.confidence,
        evidence=tuple(item.evidence),
        sources=({"kind": "journal"},),
        detail=data.get("detail") or {},
        note=not item.gone and getattr(item, "event", None) is None,
    )


def _kind(t: Told) -> tuple[str, ...]:
    """What a journal entry and a log fact must share to be one change: a load (a guard's
    ``restored`` is one), an unload (whatever cause each gives: the surer one is told), or
    a keep-alive change in the same direction: a pin reset (forever to a window) pairs
    with a pin reset, a re-pin (a guard's ``reasserted`` of forever) with a re-pin, another
    window with another window. A reset and the re-pin that undid it are two changes."""
    if t.event == "restored":
        return ("loaded",)
    if t.event == "reasserted":
        forever = t.detail.get("keep_alive") == "forever"
        return ("keep_alive_changed", "pinned" if forever else "window_changed")
    if t.event == "keep_alive_changed":
        return ("keep_alive_changed", t.reason or "")
    return (t.event,)


def _same(log: Told, jt: Told) -> bool:
    if _kind(log) != _kind(jt):
        return False
    since = jt.detail.get("since")
    lo = jt.time - timedelta(seconds=_MATCH_AFTER_S)
    if isinstance(since, str):
        from ollama_resident.durations import parse_timestamp

        with contextlib.suppress(ValueError):
            lo = parse_timestamp(since) - timedelta(seconds=_MATCH_BEFORE_S)
    return lo <= log.time <= jt.time + timedelta(seconds=_MATCH_BEFORE_S)


def _across(log: Told, jt: Told, log_items: Sequence[Told]) -> bool:
    """Whether another of the model's log facts lies strictly between ``log`` and ``jt``:
    then the journal entry is not this fact's (it would tell one event under another)."""
    lo, hi = sorted((log.time, jt.time))
    return any(
        m is not log
        and not m.note
        and m.event != "server_start"
        and lo < m.time < hi
        # The timer a load's own request leaves when it ends comes before the answer
        # that a command (a guard's restore) journals: it is part of that load.
        and not (log.event == "loaded" and m.event == "keep_alive_changed")
        for m in log_items
    )


def _log_tells_gap(gap: Told, log_items: Sequence[Told]) -> bool:
    """Whether the log shows the model going away within a journal gap (``since`` to its
    time): then the log's unload tells it, with its cause."""
    since = gap.detail.get("since")
    if not isinstance(since, str):
        return False
    from ollama_resident.durations import parse_timestamp

    try:
        start = parse_timestamp(since)
    except ValueError:
        return False
    return any(li.event == "unloaded" and start <= li.time <= gap.time for li in log_items)


def _merge(
    log: Told,
    jt: Told,
    names: Mapping[str, str],
    tz: tzinfo | None,
    now: datetime,
    sent: Mapping[int, datetime] | None = None,
) -> Told:
    command = _command_of(jt)
    if command and log.fact is not None:
        # The journal knows which command of ours sent the request the log shows: both
        # are true, and both are told.
        log = _from_fact(
            log.fact,
            names,
            tz,
            now,
            log.after,
            command=command,
            new_runner=log.new_runner,
            sent=sent,
        )
    sources = (*jt.sources, *log.sources)
    log_debug = any(s.get("level") == "DEBUG" for s in log.sources)
    if log.confidence == "certain" and (log_debug or jt.confidence != "certain"):
        seen = f"the journal saw it at {_clock(jt.time, tz, now)}: {jt.summary}"
        evidence = (*log.evidence, seen) if jt.summary != log.summary else log.evidence
        return Told(
            log.time,
            log.event,
            log.reason,
            log.summary,
            log.confidence,
            evidence,
            sources,
            log.request,
            {**jt.detail, **log.detail},
        )
    extra = list(jt.evidence)
    if log.request is not None:
        extra.append(
            f"the server log has the request: "
            f"{request_text(log.request, tz, now, _sent(log.fact, sent))} "
            f"(line {log.request.line_no})"
        )
    for e in log.evidence:
        if e not in extra:
            extra.append(e)
    return Told(
        jt.time,
        jt.event,
        jt.reason,
        jt.summary,
        jt.confidence,
        tuple(extra),
        sources,
        log.request,
        {**log.detail, **jt.detail},
    )


def _with_journal_load(item: Told, jt: Told, tz: tzinfo | None, now: datetime) -> Told:
    """A reload told as one item takes the journal's entry of the new runner too."""
    sources = (
        item.sources
        if any(s.get("kind") == "journal" for s in item.sources)
        else (
            {"kind": "journal"},
            *item.sources,
        )
    )
    seen = f"the journal saw it loaded again at {_clock(jt.time, tz, now)}: {jt.summary}"
    return Told(
        item.time,
        item.event,
        item.reason,
        item.summary,
        item.confidence,
        (*item.evidence, seen),
        sources,
        item.request,
        {**item.detail, "new_runner_journal": dict(jt.detail)},
    )


def tell(
    model: str,
    journal_story: Any,
    timeline: Timeline | None,
    *,
    matches: Callable[[LogFact], bool],
    log: LogInfo | None,
    now: datetime,
    tz: tzinfo | None = None,
    since: datetime | None = None,
    limit: int | None = 30,
) -> TotalStory:
    """The model's story from ``journal_story`` (a :class:`ollama_resident.why.Story`) and
    the facts of ``timeline`` for which ``matches`` is true (its name, or its blob).

    The ``limit`` newest items are kept (None: all); a note then says how many of how
    many, back to when, and ``total`` counts them all. Give ``journal_story`` uncut
    (``build_story(limit=None)``) so that the count is true."""
    journal_items = [_journal_told(i) for i in journal_story.items]
    if since is not None:
        journal_items = [i for i in journal_items if i.time >= since]
    log_items: list[Told] = []
    notes: list[str] = []
    names = timeline.names if timeline else {}
    mine: list[LogFact] = []
    sent: dict[int, datetime] = {}
    if timeline is not None:
        sent = sent_times(timeline.facts)
        digests = {f.digest for f in timeline.facts if f.digest and matches(f)}
        for f in timeline.facts:
            candidates = set(f.detail.get("candidates") or [])
            if (
                f.kind == "server_start"
                or (f.digest and f.digest in digests)
                or (f.kind == "evicted_unknown" and digests & candidates)
            ):
                mine.append(f)
        # Server starts matter only while the model was around.
        first = next((i for i, f in enumerate(mine) if f.digest), None)
        folded: set[int] = set()
        for i, f in enumerate(mine):
            if i in folded or (f.kind == "server_start" and (first is None or i < first - 1)):
                continue
            after = new_runner = None
            if f.kind == "unloaded" and f.cause == "reloaded":
                after = next(
                    (g for g in mine[i + 1 :] if g.kind == "keep_alive" and g.digest == f.digest),
                    None,
                )
                # The new runner's load: told with the reload, not as a second item.
                n = next((k for k in range(i + 1, len(mine)) if mine[k].digest == f.digest), None)
                if n is not None and mine[n].kind == "loaded" and mine[n].detail.get("reload"):
                    new_runner = mine[n]
                    folded.add(n)
            log_items.append(
                _from_fact(
                    f,
                    names,
                    tz,
                    now,
                    after,
                    subject=f.digest if f.digest in digests else _subject(f, digests),
                    new_runner=new_runner,
                    sent=sent,
                )
            )
        if since is not None:
            log_items = [i for i in log_items if i.time >= since]
    # Merge the same change seen by both: each journal entry with the log fact of its kind
    # nearest in time (same cause first), never across another log fact of the model.
    # A gap the journal could not explain is dropped where the log shows the unload.
    journal_items = [
        jt for jt in journal_items if not (jt.event == "gap" and _log_tells_gap(jt, log_items))
    ]
    # A reload told as one item takes the journal's "loaded again by the reload" too.
    used: set[int] = set()
    absorbed: dict[int, int] = {}
    for a, li in enumerate(log_items):
        if li.new_runner is None:
            continue
        as_load = replace(li, event="loaded", time=li.new_runner.time)
        others = [m for m in log_items if m is not li]
        pick = min(
            (
                k
                for k, jt in enumerate(journal_items)
                if k not in used
                and jt.event == "loaded"
                and jt.reason == "reload"
                and _same(as_load, jt)
                and not _across(as_load, jt, others)
            ),
            key=lambda k: abs((journal_items[k].time - li.time).total_seconds()),
            default=None,
        )
        if pick is not None:
            used.add(pick)
            absorbed[a] = pick
    pairs = sorted(
        (abs((li.time - jt.time).total_seconds()), li.reason != jt.reason, a, k)
        for a, li in enumerate(log_items)
        for k, jt in enumerate(journal_items)
        if k not in used and _same(li, jt) and not _across(li, jt, log_items)
    )
    twin_of: dict[int, int] = {}
    for _dt, _other_cause, a, k in pairs:
        if a not in twin_of and k not in used:
            twin_of[a] = k
            used.add(k)
    merged: list[Told] = [
        _merge(li, journal_items[twin_of[a]], names, tz, now, sent) if a in twin_of else li
        for a, li in enumerate(log_items)
    ]
    for a, k in absorbed.items():
        merged[a] = _with_journal_load(merged[a], journal_items[k], tz, now)
    # Another fact of a request the journal put down to a command of ours (the timer a
    # load by `apply work` left) is that command's too.
    sent_by: dict[int, str] = {}
    for a, k in twin_of.items():
        command = _command_of(journal_items[k])
        request = log_items[a].request
        if command and request is not None:
            sent_by.setdefault(request.line_no, command)
    for a, li in enumerate(log_items):
        req = li.request
        if a in twin_of or a in absorbed or li.fact is None or req is None:
            continue
        if req.line_no not in sent_by:
            continue
        merged[a] = _from_fact(
            li.fact,
            names,
            tz,
            now,
            li.after,
            command=sent_by[req.line_no],
            new_runner=li.new_runner,
            sent=sent,
        )
    # The journal's items come newest first; add them oldest first like the log's, so that
    # of two at one moment (a reload's end and the new runner) the later-recorded one
    # comes first once sorted newest first.
    merged.extend(jt for k, jt in reversed(list(enumerate(journal_items))) if k not in used)
    order = {id(t): n for n, t in enumerate(merged)}
    merged.sort(key=lambda t: (t.time, order[id(t)]), reverse=True)
    items = tuple(merged if limit is None else merged[:limit])

    # Notes: what the journal could not cover (only when the log does not fill in) ...
    log_level = None
    if timeline is not None and timeline.lines:
        log_level = "DEBUG" if timeline.has_debug else "INFO"
    has_log_items = any(i.sources and i.sources[-1].get("kind") == "server_log" for i in items)
    log_span = (
        (timeline.first_time, timeline.last_time)
        if timeline and timeline.first_time and timeline.last_time
        else None
    )
    for note in journal_story.notes:
        if has_log_items and ("journal is empty" in note or "never saw" in note):
            continue
        if "were not seen" in note and _log_covers(log_span, journal_items):
            continue  # the server log shows what other clients and Ollama did
        notes.append(note)
    # ... and what the log could not.
    if timeline is not None and log is not None:
        notes.extend(_log_notes(model, timeline, log, mine, log_level, sent_by))
        ahead = clock_note(timeline, now, tz)
        if ahead:
            notes.append(ahead)
    if len(items) < len(merged):
        notes.insert(0, cut_note(len(items), len(merged), items[-1].time, since, tz, now))
    return TotalStory(
        model=model,
        items=items,
        notes=tuple(notes),
        journal=journal_story.journal,
        covers=journal_story.covers,
        log=log,
        log_covers=(
            (timeline.first_time, timeline.last_time)
            if timeline and timeline.first_time and timeline.last_time
            else None
        ),
        log_lines=timeline.lines if timeline else 0,
        log_level=log_level,
        now=now,
        host=getattr(journal_story, "host", None),
        other_hosts=tuple(getattr(journal_story, "other_hosts", ())),
        total=len(merged),
    )


def cut_note(
    shown: int,
    total: int,
    oldest: datetime,
    since: datetime | None,
    tz: tzinfo | None = None,
    now: datetime | None = None,
) -> str:
    """What a story cut at its newest ``shown`` of ``total`` items left out, and how to
    see it: ``30 newest of 343 shown (back to 21:03:12); --limit 0 shows all of them``."""
    window = f" since {_clock(since, tz, now)}" if since is not None else ""
    return (
        f"{shown} newest of {total} items{window} shown (back to {_clock(oldest, tz, now)}); "
        "--limit 0 shows all of them, --since a shorter window."
    )


_AHEAD_S = 60.0  # a server clock ahead by less is ordinary drift (and [GIN]'s whole seconds)


def clock_note(timeline: Timeline, now: datetime, tz: tzinfo | None = None) -> str | None:
    """A note when the log's times run ahead of this machine's clock (``now``): the
    server's clock is off, or the log was written with another zone; None otherwise."""
    last = timeline.last_time
    if last is None or (last - now).total_seconds() <= _AHEAD_S:
        return None
    from ollama_resident.vocabulary import span

    return (
        f"The server log's times run up to {span((last - now).total_seconds())} ahead of "
        f"this machine's clock (its last line: {_clock(last, tz, now)}): the server's clock "
        "is off, or its log was written in another time zone. Times are shown as the log "
        "has them."
    )


def _subject(f: LogFact, digests: set[str]) -> str | None:
    """The story's own blob among an INFO eviction's candidates (it may have been the one)."""
    cands = [c for c in f.detail.get("candidates") or [] if c in digests]
    return cands[0] if cands else None


def _log_covers(span: tuple[datetime, datetime] | None, journal_items: Sequence[Told]) -> bool:
    """Whether the server log's ``span`` covers the time of the journal's entries (a few
    seconds' slack: the journal records an unload when an /api/ps read shows it, after
    the log line)."""
    if span is None or not journal_items:
        return False
    first = min(i.time for i in journal_items)
    last = max(i.time for i in journal_items)
    return span[0] <= first + timedelta(seconds=1) and span[1] >= last - timedelta(seconds=5)


def _log_notes(
    model: str,
    tl: Timeline,
    log: LogInfo,
    mine: Sequence[LogFact],
    level: str | None,
    commands: Mapping[int, str] | None = None,
) -> list[str]:
    """What the log could not say. ``commands``: the command of ours that sent a request
    (by its ``[GIN]`` line), as the journal says."""
    notes: list[str] = []
    if not tl.lines:
        notes.append(f"The server log ({log.name}) is empty.")
        return notes
    if not any(f.digest for f in mine):
        note = f"The server log names no load of {model}."
        unnamed = sorted({f.model for f in tl.facts if f.digest and not f.name and f.model})
        if unnamed and log.names_by:
            blobs = ", ".join(unnamed)
            note += (
                f" At INFO it names models only by their blob, and the server at "
                f"{log.names_by} does not have blob{'s' if len(unnamed) != 1 else ''} "
                f"{blobs}: this log is probably from another server (give --host, or one "
                "of those blobs as MODEL)."
            )
        elif unnamed:
            note += (
                " At INFO it names models only by their blob, and the server did not answer "
                "to map blobs to names; these were loaded: "
                + ", ".join(unnamed)
                + " (give one as MODEL)."
            )
        notes.append(note)
    if level == "INFO":
        stops = _stop_like(tl, mine)
        if stops:
            shown = "; ".join(f"{request_text(r)} (line {r.line_no})" for r in stops[:3])
            more = f" and {len(stops) - 3} more" if len(stops) > 3 else ""
            notes.append(
                f"After its last load, {len(stops)} request{'s' if len(stops) != 1 else ''} "
                f"answered in under 10 ms, as an unload request (keep_alive 0, `ollama stop`) "
                f"does; an INFO log does not say which model they named: {shown}{more}."
            )
        notes.append(
            "The server log is at INFO: it shows loads, reloads (a second load with other "
            "options) and restarts, not why a model was unloaded (expiry, a stop, an "
            "eviction) nor keep-alive changes; those need OLLAMA_DEBUG=1 on the server."
        )
        notes.extend(debug_howto(log.kind, log.container))
    where = (
        "(the server's own machine, or a proxy in front of Ollama; a proxy that sets "
        "X-Forwarded-For shows the real client)"
    )
    for client, pins, resets in _shared_clients(mine, commands or {}):
        if pins and all(pins) and not any(resets):
            # The journal says whose the pins were: the resets were another program's.
            ours = ", ".join(sorted({c for c in pins if c}))
            notes.append(
                f"{client} both pinned {model} (the pins were {ours}'s) and reset its pin: "
                f"the resets came from another program at that address {where}."
            )
        else:
            notes.append(
                f"{client} both pinned {model} and reset its pin: if those were different "
                f"programs, they share that address {where}."
            )
    if any(f.request and f.request.client.startswith("172.17.") for f in mine):
        notes.append(
            "172.17.x.x is Docker's bridge: every client outside the container shows this address."
        )
    if log.partial:
        notes.append("Only the end of the server log was read (see --log-bytes).")
    return notes


def _stop_like(tl: Timeline, mine: Sequence[LogFact]) -> list[Request]:
    """Fast generate/chat answers after the model's last load, while nothing else
    (a reload, a restart) already tells what became of it."""
    own = [f for f in mine if f.digest]
    if not own or own[-1].kind != "loaded":
        return []
    last = own[-1]
    # [GIN] times are whole seconds: a request of the load's second may follow it.
    return [
        r
        for r in tl.fast_requests
        if r.line_no > last.line_no and r.end + timedelta(seconds=1) > last.time
    ]


def _shared_clients(
    facts: Sequence[LogFact], commands: Mapping[int, str]
) -> list[tuple[str, list[str | None], list[str | None]]]:
    """Addresses that reset a pin and also set one: two programs behind one address.
    Each with the command of ours (or None) behind each of its pins and of its resets."""
    pinned: dict[str, list[str | None]] = {}
    reset: dict[str, list[str | None]] = {}
    for f in facts:
        if f.kind != "keep_alive" or f.request is None:
            continue
        by = commands.get(f.request.line_no)
        if f.detail.get("forever"):
            pinned.setdefault(f.request.client, []).append(by)
        elif f.detail.get("before_forever"):
            reset.setdefault(f.request.client, []).append(by)
    return [(c, pinned[c], reset[c]) for c in sorted(pinned.keys() & reset.keys())]


def debug_howto(kind: str | None, container: str | None = None) -> list[str]:
    """How to turn DEBUG on for the server whose log was read (by logsource kind)."""
    if kind == "journal":
        return [
            "To log at DEBUG (systemd): `sudo systemctl edit ollama` and add\n"
            "    [Service]\n"
            '    Environment="OLLAMA_DEBUG=1"\n'
            "  then `sudo systemctl daemon-reload && sudo systemctl restart ollama`."
        ]
    if kind == "journal-user":
        return [
            "To log at DEBUG (systemd user unit): `systemctl --user edit ollama` and add\n"
            "    [Service]\n"
            '    Environment="OLLAMA_DEBUG=1"\n'
            "  then `systemctl --user daemon-reload && systemctl --user restart ollama`."
        ]
    if kind == "macos-app":
        return [
            "To log at DEBUG (macOS app): `launchctl setenv OLLAMA_DEBUG 1`, then quit "
            "Ollama from the menu bar and open it again."
        ]
    if kind == "windows-app":
        return [
            "To log at DEBUG (Windows app): `setx OLLAMA_DEBUG 1`, then quit Ollama from "
            "the tray and start it again."
        ]
    if kind == "docker":
        name = container or "CONTAINER"
        return [
            f"To log at DEBUG (Docker): recreate the container with `-e OLLAMA_DEBUG=1` "
            f"(`docker run -e OLLAMA_DEBUG=1 ... ollama/ollama`; compose: `environment: "
            f"[OLLAMA_DEBUG=1]`), replacing {name}."
        ]
    return [
        "To log at DEBUG: start the server with OLLAMA_DEBUG=1 (`OLLAMA_DEBUG=1 ollama "
        'serve`; systemd: `Environment="OLLAMA_DEBUG=1"` in a drop-in, then `systemctl '
        "daemon-reload` and restart; macOS app: `launchctl setenv OLLAMA_DEBUG 1`; Docker: "
        "`docker run -e OLLAMA_DEBUG=1`)."
    ]


# -- output --------------------------------------------------------------------------------


def log_line(
    name: str,
    lines: int,
    covers: tuple[datetime, datetime] | None,
    level: str | None,
    tz: tzinfo | None,
    now: datetime,
) -> str:
    """``Server log: NAME (N lines, FROM to TO, LEVEL level)``: what was read."""
    span = f", {_clock(covers[0], tz, now)} to {_clock(covers[1], tz, now)}" if covers else ""
    return f"Server log: {name} ({lines} lines{span}, {level or 'no'} level)"


def _sources_line(story: TotalStory, tz: tzinfo | None) -> list[str]:
    now = story.now
    out = []
    if story.log is not None and story.log.name:
        out.append(
            log_line(story.log.name, story.log_lines, story.log_covers, story.log_level, tz, now)
        )
    if story.log is not None:
        for name, reason in story.log.attempts:
            out.append(f"Server log not read: {name}: {reason}")
    if story.journal:
        span = ""
        if story.covers:
            a, b = story.covers
            span = f", covering {_clock(a, tz, now)} to {_clock(b, tz, now)}"
        out.append(f"Journal: {story.journal}{span}")
    return out


def _wrap(text: str, width: int | None, first: str = "", rest: str = "") -> list[str]:
    """``text`` wrapped at ``width`` cells (None: not wrapped), with a hanging indent."""
    from ollama_resident.cells import hang

    return hang(text, width, first, rest)


def render(story: TotalStory, *, tz: tzinfo | None = None, width: int | None = None) -> str:
    """Plain text, newest first, evidence indented, the source of each item in brackets;
    wrapped at ``width`` with hanging indents (None: one line each, for pipes)."""
    now = story.now
    lines = [*_wrap(story.headline_text(tz), width, "", "  "), ""]
    for item in story.items:
        when = _clock(item.time, tz, now)
        where = item.source_text()
        pad = " " * (len(when) + 4)
        text = f"{item.summary}   [{_ago(item.time, now)}; {where}]"
        lines.extend(_wrap(text, width, f"  {when}  ", pad))
        for fact in item.evidence:
            lines.extend(_wrap(fact, width, f"{pad}- ", pad + "  "))
    if story.notes:
        lines.append("")
        for note in story.notes:
            for part in note.split("\n"):  # a how-to keeps its own lines
                lines.extend(
                    _wrap(
                        part,
                        width,
                        "",
                        "  "
                        if not part.startswith(" ")
                        else part[: len(part) - len(part.lstrip())],
                    )
                )
    src = _sources_line(story, tz)
    if src:
        lines.append("")
        for line in src:
            lines.extend(_wrap(line, width, "", "  "))
    # One blank line between blocks, never two (an empty story has no items between).
    tidy = [line for n, line in enumerate(lines) if line or (n and lines[n - 1])]
    while tidy and tidy[-1] == "":
        tidy.pop()
    return "\n".join(tidy)


def _sources_json(story: TotalStory) -> list[dict[str, Any]]:
    from ollama_resident.events import format_time

    out: list[dict[str, Any]] = []
    if story.journal:
        out.append(
            {
                "kind": "journal",
                "path": story.journal,
                "covers": [format_time(t) for t in story.covers] if story.covers else None,
            }
        )
    if story.log is not None:
        for name, reason in story.log.attempts:
            out.append({"kind": "server_log", "name": name, "read": False, "reason": reason})
        if story.log.name:
            out.append(
                {
                    "kind": "server_log",
                    "source": story.log.kind,
                    "name": story.log.name,
                    "read": True,
                    "lines": story.log_lines,
                    "level": story.log_level,
                    "partial": story.log.partial,
                    "covers": [format_time(t) for t in story.log_covers]
                    if story.log_covers
                    else None,
                }
            )
    return out


def to_json(story: TotalStory) -> dict[str, Any]:
    """The story as data (``schema_version`` 1; documented in docs/why.md)."""
    from ollama_resident.events import format_time

    return {
        "schema_version": 1,
        "model": story.model,
        "headline": story.headline_text(),
        "items": [i.to_json() for i in story.items],
        "notes": list(story.notes),
        "sources": _sources_json(story),
        "journal": story.journal,
        "covers": [format_time(t) for t in story.covers] if story.covers else None,
        "host": story.host,
        "other_hosts": list(story.other_hosts),
        "items_total": len(story.items) if story.total is None else story.total,
        "truncated": story.left_out > 0,
    }


def overview(
    stories: Sequence[TotalStory],
) -> list[tuple[str, str]]:
    """One line per model: its name and its headline's answer."""
    return [(s.model, s.headline_text().split(": ", 1)[-1]) for s in stories]


def render_overview(
    stories: Sequence[TotalStory],
    *,
    since: datetime,
    now: datetime | None = None,
    tz: tzinfo | None = None,
    notes: Sequence[str] = (),
    width: int | None = None,
) -> str:
    """One line per model, then the notes and sources; at ``width`` cells a long line
    wraps with a hanging indent (a model's answer under its own start), None: one line
    each, for pipes."""
    lines: list[str] = []
    now = stories[0].now if stories else (now or since)
    if not stories:
        lines.append(
            f"Nothing happened to any model since {_clock(since, tz, now)} in the sources read."
        )
    else:
        lines.append(f"Since {_clock(since, tz, now)}:")
        from ollama_resident import cells
        from ollama_resident.layout import elide_middle

        column = max(cells.width(s.model) for s in stories)
        if width is not None:
            # The answers need the room: a long name gives up its middle, never its tag.
            column = min(column, max(16, (width - 4) // 3))
        for s in stories:
            answer = s.headline_text(tz).split(": ", 1)[-1]
            name = cells.ljust(elide_middle(s.model, column), column)
            lines.extend(_wrap(answer, width, f"  {name}  ", " " * (column + 4)))
        lines.append("")
        lines.append("`ollama-resident why MODEL` tells one model's story with the evidence.")
    if notes:
        lines.append("")
        for note in notes:
            for part in note.split("\n"):  # a how-to keeps its own lines
                indent = part[: len(part) - len(part.lstrip())]
                lines.extend(_wrap(part, width, "", indent or "  "))
    if stories:
        src = _sources_line(stories[0], tz)
        if src:
            lines.append("")
            for line in src:
                lines.extend(_wrap(line, width, "", "  "))
    return "\n".join(lines)


def overview_json(
    stories: Sequence[TotalStory], *, since: datetime, notes: Sequence[str] = ()
) -> dict[str, Any]:
    from ollama_resident.events import format_time

    return {
        "schema_version": 1,
        "since": format_time(since),
        "models": [to_json(s) for s in stories],
        "notes": list(notes),
        "sources": _sources_json(stories[0]) if stories else [],
    }
