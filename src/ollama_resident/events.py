"""What changed between two ``/api/ps`` snapshots, and why, as events.

``/api/ps`` never says why a model went away. The reason can be read from how
the list changes over time (ollama-contract.md §3.2, §4):

- an idle model whose deadline (``expires_at``) passed and is gone: **expired**;
- an explicit unload (``keep_alive: 0``, ``ollama stop``) moves ``expires_at``
  to the moment of the stop, earlier than the deadline known before, while an
  expiry or an eviction leaves it alone: **stopped**;
- a model gone before its deadline while another one appeared: **evicted**
  (Ollama unloads the idle model with the shortest configured keep-alive to
  make room, first-come never protects a pin);
- the same name back with another context, digest or size: **reloaded**
  (a request with different load options; the new runner takes that
  request's keep-alive, so a pin is lost);
- the server unreachable in between, or reporting another version, and the
  models gone: **server_restart** (nothing survives a restart).

Rules compare server times with server times. The local clock is used only
to bound *when* something happened (between two polls), with a tolerance of
:data:`SKEW_S` for the offset between the server's clock and ours and for the
request's own latency; a naive "expires_at < now" flips when the clocks are
50 ms apart.

Every event carries ``detail["confidence"]``: ``certain`` (the server's own
numbers show it), ``likely`` (the usual cause of what was seen; others are
possible and named) or ``guess``. ``docs/why.md`` lists each rule.

Pure: no I/O, no clock. Callers pass the snapshots (each stamped with the
local time it was taken) and, for a long-running watch, one :class:`Memory`
that carries what earlier snapshots taught (each model's keep-alive window,
unloads whose cause is still being settled).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, cast

from ollama_resident.durations import format_window, is_forever, parse_timestamp
from ollama_resident.models import PsSnapshot, RunningModel, names_match

__all__ = [
    "BUSY_GRACE_S",
    "DEFAULT_MAX_LOADED",
    "DEFAULT_SETTLE_S",
    "EVENT_KINDS",
    "OWN_ACTIONS",
    "SCHEMA_VERSION",
    "SKEW_S",
    "TOOL",
    "Confidence",
    "Event",
    "Memory",
    "OwnAction",
    "OwnActionKind",
    "Window",
    "diff",
    "first_answer_event",
    "format_time",
    "from_load_outcome",
    "from_unload_outcome",
    "own_actions_from",
    "recording_event",
    "same_change",
    "settle_all",
    "unreachable_event",
    "utc",
]

SCHEMA_VERSION = 1
TOOL = "ollama-resident"

SKEW_S = 0.25
"""Tolerance between the server's clock and ours, plus request latency, in seconds."""

BUSY_GRACE_S = 1.0
"""An idle model past its deadline is removed within milliseconds; one still listed this long
after it is busy (a request outlived the deadline) or stopping."""

DEFAULT_SETTLE_S = 20.0
"""How long an early unload with no visible cause waits for a newcomer before it is called a
stop: Ollama unloads the victim first, waits for its memory, then loads, and a big model can
take many seconds to appear in ``/api/ps`` (llama-server models are listed only when ready)."""

DEFAULT_MAX_LOADED = 3
"""``OLLAMA_MAX_LOADED_MODELS`` when unset: 3 per GPU, 3 on CPU (contract §4.5)."""

OWN_SLACK_S = 2.0
"""An action of this tool counts for a change seen up to this long after the previous poll."""

EVENT_KINDS = (
    "loaded",
    "unloaded",
    "keep_alive_changed",
    "offload_changed",
    "busy",
    "server_unreachable",
    "server_down",
    "server_up",
    "recording_started",
    "recording_stopped",
)

Confidence = Literal["certain", "likely", "guess"]
OwnActionKind = Literal["preload", "pin", "apply", "guard", "unload"]
"""The command that acted: ``preload``, ``pin``, ``apply`` (a profile), ``guard``, ``unload``."""

OWN_ACTIONS: tuple[str, ...] = ("preload", "pin", "apply", "guard", "unload")


def format_time(t: datetime) -> str:
    """UTC, millisecond precision, ``Z``: ``2026-08-22T10:01:02.345Z``."""
    u = t.astimezone(timezone.utc)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Event:
    """One thing that happened to a model (or to the server), as JSON-ready data.

    ``model`` is None for server and recording events. ``detail`` holds only JSON values;
    ``detail["confidence"]`` says how sure the classification is.
    """

    time: datetime
    host: str
    model: str | None
    event: str
    reason: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def confidence(self) -> str | None:
        value = self.detail.get("confidence")
        return value if isinstance(value, str) else None

    @property
    def by_tool(self) -> bool:
        """True when this tool itself caused it (its own preload, pin or unload)."""
        return self.detail.get("by") == TOOL

    def to_json(self) -> dict[str, Any]:
        """The journal / ``watch --jsonl`` object; keys in a fixed order, time first."""
        return {
            "time": format_time(self.time),
            "host": self.host,
            "model": self.model,
            "event": self.event,
            "reason": self.reason,
            "detail": dict(self.detail),
            "schema_version": SCHEMA_VERSION,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        """Read an object written by :meth:`to_json`; ValueError if it is not one."""
        raw_time = data.get("time")
        event = data.get("event")
        if not isinstance(raw_time, str) or not isinstance(event, str):
            raise ValueError("not an event: time and event are required")
        model = data.get("model")
        reason = data.get("reason")
        detail = data.get("detail")
        return cls(
            time=parse_timestamp(raw_time),
            host=str(data.get("host") or ""),
            model=model if isinstance(model, str) else None,
            event=event,
            reason=reason if isinstance(reason, str) else None,
            detail=dict(detail) if isinstance(detail, Mapping) else {},
        )


@dataclass(frozen=True)
class OwnAction:
    """Something this tool did to ``model`` at ``time``, and which command did it.

    ``unload`` is True for a stop (``unload``, or ``apply`` making room); otherwise it
    loaded the model or set its keep-alive. ``forever`` says whether that load pinned it
    (None: not known, then a ``pin`` is taken as forever). A forever pin can explain a
    ``pinned`` change but never a lost pin or a shorter window. ``profile`` is the
    profile an ``apply`` applied, so that what a poll sees of it names the command as
    typed (``apply work``), as the command's own entry does.
    """

    time: datetime
    model: str
    action: OwnActionKind
    unload: bool = False
    forever: bool | None = None
    profile: str | None = None

    @property
    def stops(self) -> bool:
        return self.unload or self.action == "unload"

    @property
    def pins(self) -> bool:
        """It set keep-alive forever."""
        return not self.stops and (
            self.forever if self.forever is not None else self.action == "pin"
        )


# -- keep-alive windows --------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A keep-alive window known only within bounds, in seconds.

    ``expires_at`` is "went idle + window", and the moment it went idle is only known to
    lie between two polls, so the window is an interval. ``hi`` is None when there is no
    upper bound (a model already loaded when watching began: at least what is left).
    """

    lo: float
    hi: float | None = None
    forever: bool = False

    @classmethod
    def pinned(cls) -> Window:
        return cls(math.inf, math.inf, True)

    def disjoint(self, other: Window) -> bool:
        """True when the two cannot be the same window."""
        if self.forever or other.forever:
            return self.forever != other.forever
        if self.hi is not None and self.hi < other.lo:
            return True
        return other.hi is not None and other.hi < self.lo

    def narrow(self, other: Window) -> Window:
        """Both describe the same window: keep what both allow."""
        if self.forever or other.forever:
            return other
        lo = max(self.lo, other.lo)
        his = [h for h in (self.hi, other.hi) if h is not None]
        hi = min(his) if his else None
        if hi is not None and hi < lo:  # rounding; trust the newest observation
            return other
        return Window(lo, hi)

    @property
    def seconds(self) -> float | None:
        """The likeliest value: the roundest number within the bounds; None if unbounded."""
        if self.forever:
            return None
        if self.hi is None:
            return None
        return _roundest(self.lo, self.hi)

    def text(self) -> str:
        """``forever``, ``5m``, or ``at least 4m`` when only a lower bound is known."""
        if self.forever:
            return "forever"
        seconds = self.seconds
        if seconds is None:
            floor = _floor_nice(self.lo)
            return f"at least {format_window(floor)}" if floor > 0 else "unknown"
        return format_window(seconds)

    def to_json(self) -> dict[str, Any]:
        if self.forever:
            return {"keep_alive": "forever", "keep_alive_s": None}
        return {
            "keep_alive": self.text(),
            "keep_alive_s": self.seconds,
            "keep_alive_range_s": [
                round(self.lo, 3),
                None if self.hi is None else round(self.hi, 3),
            ],
        }


_STEPS = (86400.0, 3600.0, 600.0, 300.0, 60.0, 30.0, 10.0, 5.0, 1.0, 0.1, 0.01, 0.001)


def _roundest(lo: float, hi: float) -> float:
    """The roundest number of seconds in [lo, hi]: 300 in [299.8, 301.2], 1 in [0.7, 1.3].

    >>> _roundest(299.8, 301.2), _roundest(0.65, 1.35), _roundest(3599.1, 3600.6)
    (300.0, 1.0, 3600.0)
    """
    lo = max(lo, 0.0)
    for step in _STEPS:
        k = math.ceil(lo / step - 1e-9)
        value = max(k, 1) * step
        if value <= hi + 1e-9:
            return round(value, 3)
    return round((lo + hi) / 2, 3)


def _floor_nice(seconds: float) -> float:
    """A round number not above ``seconds``, for "at least ..." texts."""
    for step in (3600.0, 60.0, 1.0):
        if seconds >= step:
            return math.floor(seconds / step) * step
    return 0.0


def _window_between(exp: datetime, since: datetime | None, until: datetime) -> Window:
    """The window of a model that went idle (or was polled busy) between two polls."""
    lo = (exp - until).total_seconds() - SKEW_S
    hi = None if since is None else (exp - since).total_seconds() + SKEW_S
    return Window(max(lo, 0.0), hi)


# -- memory across polls -------------------------------------------------------------------


@dataclass
class _Pending:
    """An early unload with no visible cause, waiting a while for a newcomer."""

    model: RunningModel
    seen_gone: datetime  # the poll that found it gone
    since: datetime  # the poll before, where it was still listed
    prev: PsSnapshot
    window: Window | None
    fallback: tuple[str, Confidence, dict[str, Any]]  # reason, confidence, detail if none comes


@dataclass
class Memory:
    """What a watch has learnt from earlier snapshots; pass the same one to every :func:`diff`.

    ``windows`` holds each listed model's keep-alive window as far as it is known;
    ``stopping`` the models whose deadline moved to a stop moment; ``pending`` the early
    unloads still waiting up to ``settle_s`` for a model to appear (an eviction).
    """

    settle_s: float = DEFAULT_SETTLE_S
    windows: dict[str, Window] = field(default_factory=dict)
    stopping: dict[str, str] = field(default_factory=dict)  # name -> raw expires_at of the stop
    pending: dict[str, _Pending] = field(default_factory=dict)
    down_since: datetime | None = None


# -- the classifier ------------------------------------------------------------------------


def _secs(a: datetime, b: datetime) -> float:
    return (a - b).total_seconds()


def _pinned(m: RunningModel, at: datetime) -> bool:
    return m.expires_at is not None and is_forever(m.expires_at, at)


def _window_of(m: RunningModel, snap: PsSnapshot, memory: Memory | None) -> Window | None:
    if memory is not None and m.name in memory.windows:
        return memory.windows[m.name]
    if m.expires_at is None:
        return None
    if _pinned(m, snap.taken_at):
        return Window.pinned()
    return Window(max(_secs(m.expires_at, snap.taken_at) - SKEW_S, 0.0))


def _ka_text(w: Window | None) -> str:
    return "unknown" if w is None else w.text()


def _window_detail(w: Window | None) -> dict[str, Any]:
    if w is None:
        return {"keep_alive": "unknown", "keep_alive_s": None}
    return w.to_json()


def _overdue(m: RunningModel, at: datetime) -> bool:
    """Listed well past its deadline: busy (or stopping)."""
    return m.expires_at is not None and _secs(at, m.expires_at) > BUSY_GRACE_S


def _model_facts(m: RunningModel) -> dict[str, Any]:
    return {
        "digest": m.digest,
        "size": m.size,
        "size_vram": m.size_vram,
        "context_length": m.context_length,
        "processor": m.processor,
        "cpu_fraction": round(m.on_cpu_fraction, 4),
        "expires_at": m.expires_at_raw,
    }


class _Diff:
    """One comparison; a class only to share the many inputs between the rules."""

    def __init__(
        self,
        prev: PsSnapshot | None,
        curr: PsSnapshot | None,
        *,
        host: str,
        prev_up: bool,
        curr_up: bool,
        version: str | None,
        prev_version: str | None,
        own_actions: Sequence[OwnAction],
        memory: Memory | None,
        max_loaded: int | None,
        at: datetime | None,
    ) -> None:
        self.prev = prev
        self.curr = curr
        self.host = host
        self.prev_up = prev_up
        self.curr_up = curr_up
        self.version = version
        self.prev_version = prev_version
        self.memory = memory
        self.max_loaded = max_loaded
        when = curr.taken_at if curr is not None else at
        if when is None:
            raise ValueError("diff() needs `at` when there is no current snapshot")
        self.at: datetime = when
        self.since = prev.taken_at if prev is not None else None
        self.own_actions = own_actions
        self.out: list[Event] = []

    # -- helpers ---------------------------------------------------------------------------

    def emit(
        self,
        model: str | None,
        event: str,
        reason: str | None,
        confidence: Confidence | None,
        time: datetime | None = None,
        **detail: Any,
    ) -> None:
        if confidence is not None:
            detail["confidence"] = confidence
        if self.since is not None and model is not None and detail.get("since") is None:
            detail["since"] = format_time(self.since)
        self.out.append(
            Event(
                time=time or self.at,
                host=self.host,
                model=model,
                event=event,
                reason=reason,
                detail={k: v for k, v in detail.items() if v is not None},
            )
        )

    def own(self, name: str, what: Literal["load", "unload", "window"]) -> OwnAction | None:
        """This tool's latest action on ``name`` since the previous poll that can explain
        a change: a ``load`` (any load or keep-alive change), an ``unload``, or a
        ``window`` (a load that set a finite keep-alive: the only kind that can shorten one).
        """
        floor = (self.since or self.at) - timedelta(seconds=OWN_SLACK_S)
        for action in reversed(self.own_actions):
            if action.time < floor or not names_match(action.model, name):
                continue
            if what == "unload" and action.stops:
                return action
            if what == "load" and not action.stops:
                return action
            if what == "window" and not action.stops and not action.pins:
                return action
        return None

    def limit(self) -> int:
        return self.max_loaded if self.max_loaded else DEFAULT_MAX_LOADED

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> list[Event]:
        mem = self.memory
        at = self.at
        if not self.curr_up or self.curr is None:
            if self.prev_up:
                if mem is not None:
                    mem.down_since = at
                self.emit(None, "server_down", None, "certain")
                self._settle_pending(restart=True)
            return self.out

        curr = self.curr
        prev = self.prev
        prev_names = {m.name for m in prev.models} if prev is not None else set()
        curr_names = {m.name for m in curr.models}
        gone = [m for m in (prev.models if prev is not None else ()) if m.name not in curr_names]
        newcomers = [m for m in curr.models if m.name not in prev_names]

        restart: Confidence | None = None
        why_restart = ""
        version_changed = bool(
            self.version and self.prev_version and self.version != self.prev_version
        )
        if version_changed:
            restart, why_restart = "certain", "version_changed"
        elif not self.prev_up and prev is not None and prev.models:
            survivors = [
                m
                for m in prev.models
                if (c := curr.find(m.name)) is not None and c.expires_at_raw == m.expires_at_raw
            ]
            if not survivors:
                restart, why_restart = "likely", "unreachable_then_empty"

        if not self.prev_up:
            down_since = mem.down_since if mem is not None else None
            self.emit(
                None,
                "server_up",
                "restarted" if restart else None,
                restart or "certain",
                version=self.version,
                previous_version=self.prev_version if version_changed else None,
                down_for_s=None if down_since is None else round(_secs(at, down_since), 3),
            )
            if mem is not None:
                mem.down_since = None
        elif version_changed:
            self.emit(
                None,
                "server_up",
                "restarted",
                "certain",
                version=self.version,
                previous_version=self.prev_version,
            )

        if restart is not None and prev is not None:
            self._settle_pending(restart=True)
            for m in prev.models:
                self.emit(
                    m.name,
                    "unloaded",
                    "server_restart",
                    restart,
                    evidence=why_restart,
                    version=self.version,
                    previous_version=self.prev_version if version_changed else None,
                    **_window_detail(_window_of(m, prev, mem)),
                )
                if mem is not None:
                    mem.windows.pop(m.name, None)
                    mem.stopping.pop(m.name, None)
            for m in curr.models:
                self._loaded(m, reason="after_restart")
            return self.out

        if prev is None:
            for m in curr.models:
                self._loaded(m, reason="already_loaded")
            return self.out

        self._settle_pending(newcomers=newcomers)
        everything_gone = len(prev.models) >= 2 and not curr.models
        for m in gone:
            self._gone(m, newcomers, everything_gone)
        for m in newcomers:
            pend = mem.pending.pop(m.name, None) if mem is not None else None
            if pend is not None:
                self._came_back(pend, m)
            else:
                self._loaded(m, reason=None)
        for m in curr.models:
            before = prev.find(m.name)
            if before is not None and before.name == m.name:
                self._changed(before, m)
        return self.out

    # -- newcomers -------------------------------------------------------------------------

    def _loaded(self, m: RunningModel, reason: str | None) -> None:
        assert self.curr is not None
        at = self.curr.taken_at
        if _pinned(m, at):
            window: Window | None = Window.pinned()
        elif m.expires_at is not None:
            since = self.since if reason != "already_loaded" else None
            window = _window_between(m.expires_at, since, at)
        else:
            window = None
        if self.memory is not None and window is not None:
            self.memory.windows[m.name] = window
        mine = self.own(m.name, "load") if reason != "already_loaded" else None
        self.emit(
            m.name,
            "loaded",
            reason,
            "certain",
            by=TOOL if mine else None,
            action=mine.action if mine else None,
            profile=mine.profile if mine else None,
            **_window_detail(window),
            **_model_facts(m),
        )
        if m.expires_at is not None and _overdue(m, at) and reason != "reload":
            self._busy(m, reason="past_deadline", confidence="likely")

    def _came_back(self, pend: _Pending, m: RunningModel) -> None:
        """A model that vanished early and is listed again: a reload, or a stop and a load.

        Loaded again by this tool (a guard restoring it, a pin): it was not reloaded, it
        went (for the reason it would have settled on: most often a stop) and we loaded it.
        Otherwise, with other load options visible (context, digest, size) it is a reload;
        with none it may be either (a reload for options /api/ps does not show, or a stop
        followed by another client's load), so only a guess.
        """
        old = pend.model
        changes = _load_changes(old, m)
        mine = self.own(m.name, "load")
        if mine is not None and mine.time >= pend.since - timedelta(seconds=OWN_SLACK_S):
            reason, confidence, extra = pend.fallback
            self.emit(
                old.name,
                "unloaded",
                reason,
                confidence,
                time=pend.seen_gone,
                since=format_time(pend.since),
                loaded_again_by=mine.action,
                loaded_again_profile=mine.profile,
                **extra,
                **_window_detail(pend.window),
                **_model_facts(old),
            )
            self._loaded(m, reason=None)
            return
        new_window = (
            Window.pinned()
            if _pinned(m, self.at)
            else (
                _window_between(m.expires_at, self.since, self.at)
                if m.expires_at is not None
                else None
            )
        )
        self.emit(
            old.name,
            "unloaded",
            "reloaded",
            "likely" if changes else "guess",
            time=pend.seen_gone,
            since=format_time(pend.since),
            changes=changes or None,
            gone_for_s=round(_secs(self.at, pend.seen_gone), 3),
            keep_alive_before=_ka_text(pend.window),
            keep_alive_after=_ka_text(new_window),
            pin_lost=bool(pend.window and pend.window.forever)
            and not (new_window and new_window.forever),
            **_model_facts(old),
        )
        self._loaded(m, reason="reload")

    # -- disappearances --------------------------------------------------------------------

    def _gone(self, m: RunningModel, newcomers: list[RunningModel], everything: bool) -> None:
        prev, mem, at, since = self.prev, self.memory, self.at, self.since
        assert prev is not None and since is not None
        window = _window_of(m, prev, mem)
        stop_raw = mem.stopping.pop(m.name, None) if mem is not None else None
        if mem is not None:
            mem.windows.pop(m.name, None)
        facts = {**_window_detail(window), **_model_facts(m)}
        new_names = [n.name for n in newcomers]

        mine = self.own(m.name, "unload")
        if mine is not None:
            self.emit(
                m.name,
                "unloaded",
                "stopped",
                "certain",
                by=TOOL,
                action=mine.action,
                profile=mine.profile,
                **facts,
            )
            return
        if stop_raw is not None:
            self.emit(
                m.name,
                "unloaded",
                "stopped",
                "certain",
                evidence="expires_at_moved_to_stop",
                stopped_at=stop_raw,
                **facts,
            )
            return
        if m.expires_at is None:
            self.emit(m.name, "unloaded", "unknown", "guess", newcomers=new_names or None, **facts)
            return
        deadline_passed = _secs(m.expires_at, at) <= SKEW_S
        was_overdue = _overdue(m, since)
        if deadline_passed and not was_overdue and not _pinned(m, since):
            self.emit(
                m.name,
                "unloaded",
                "expired",
                "likely" if newcomers else "certain",
                newcomers=new_names or None,
                **facts,
            )
            return
        early_s = None if was_overdue or _pinned(m, since) else round(_secs(m.expires_at, at), 3)
        if newcomers:
            self._evicted(m, prev, newcomers, window, facts, early_s, was_overdue)
            return
        # No visible cause yet: a stop, or an eviction whose newcomer is still loading.
        reason, confidence, extra = self._no_cause(m, prev, everything, was_overdue)
        extra["early_by_s"] = early_s
        if mem is not None and mem.settle_s > 0:
            mem.pending[m.name] = _Pending(m, at, since, prev, window, (reason, confidence, extra))
            return
        self.emit(m.name, "unloaded", reason, confidence, **extra, **facts)

    def _no_cause(
        self, m: RunningModel, prev: PsSnapshot, everything: bool, was_overdue: bool
    ) -> tuple[str, Confidence, dict[str, Any]]:
        if everything:
            return (
                "server_restart",
                "guess",
                {
                    "evidence": "all_gone_at_once",
                    "resident_count": len(prev.models),
                    "alternatives": ["runtime_oom", "client_unloaded_all"],
                },
            )
        if len(prev.models) >= self.limit() and not was_overdue:
            return (
                "evicted",
                "guess",
                {
                    "evidence": "at_limit_no_newcomer",
                    "resident_count": len(prev.models),
                    "max_loaded": self.limit(),
                    "alternatives": ["stopped"],
                },
            )
        return (
            "stopped",
            "likely",
            {
                "evidence": "busy_then_gone" if was_overdue else "gone_early_no_newcomer",
                "alternatives": ["runtime_oom"],
            },
        )

    def _evicted(
        self,
        m: RunningModel,
        prev: PsSnapshot,
        newcomers: list[RunningModel],
        window: Window | None,
        facts: dict[str, Any],
        early_s: float | None,
        was_overdue: bool,
        time: datetime | None = None,
        since: datetime | None = None,
    ) -> None:
        resident = []
        shortest_ok = True
        for other in prev.models:
            # the victim's own window has already left memory; use the one passed in
            w = window if other.name == m.name else _window_of(other, prev, self.memory)
            resident.append({"name": other.name, "keep_alive": _ka_text(w)})
            if (
                other.name != m.name
                and window is not None
                and w is not None
                and not _overdue(other, prev.taken_at)
                and w.disjoint(window)
                and (w.hi if w.hi is not None else math.inf) < window.lo
            ):
                shortest_ok = False  # an idle model with a shorter keep-alive was passed over
        count = len(prev.models)
        limit = self.limit()
        at_limit = count >= limit
        on_gpu = any(x.size_vram > 0 for x in (*prev.models, *newcomers))
        if at_limit:
            cause = "max_loaded"
        elif on_gpu:
            cause = "memory"
        else:
            cause = "unexplained"
        confidence: Confidence = "likely" if (at_limit or on_gpu) and shortest_ok else "guess"
        self.emit(
            m.name,
            "unloaded",
            "evicted",
            confidence,
            time=time,
            since=format_time(since) if since is not None else None,
            by_models=[n.name for n in newcomers],
            cause=cause,
            resident=resident,
            resident_count=count,
            max_loaded=limit,
            max_loaded_known=self.max_loaded is not None,
            victim_rule_ok=shortest_ok,
            was_busy=was_overdue or None,
            early_by_s=early_s,
            **facts,
        )

    def _settle_pending(
        self, *, newcomers: Sequence[RunningModel] = (), restart: bool = False
    ) -> None:
        mem, at = self.memory, self.at
        if mem is None or not mem.pending:
            return
        fresh = [n for n in newcomers if n.name not in mem.pending]
        for name, pend in list(mem.pending.items()):
            facts = {**_window_detail(pend.window), **_model_facts(pend.model)}
            age = _secs(at, pend.seen_gone)
            if restart:
                del mem.pending[name]
                self.emit(
                    name,
                    "unloaded",
                    "server_restart",
                    "likely",
                    time=pend.seen_gone,
                    since=format_time(pend.since),
                    evidence="gone_then_unreachable",
                    **facts,
                )
            elif fresh:
                del mem.pending[name]
                self._evicted(
                    pend.model,
                    pend.prev,
                    list(fresh),
                    pend.window,
                    {**facts, "newcomer_after_s": round(age, 3)},
                    None,
                    False,
                    time=pend.seen_gone,
                    since=pend.since,
                )
            elif age >= mem.settle_s:
                del mem.pending[name]
                reason, confidence, extra = pend.fallback
                self.emit(
                    name,
                    "unloaded",
                    reason,
                    confidence,
                    time=pend.seen_gone,
                    since=format_time(pend.since),
                    waited_s=round(age, 3),
                    **extra,
                    **facts,
                )

    # -- models listed in both -------------------------------------------------------------

    def _changed(self, old: RunningModel, new: RunningModel) -> None:
        mem, at, since = self.memory, self.at, self.since
        assert since is not None
        changes = _load_changes(old, new)
        if changes:
            self._reloaded(old, new, changes)
            return
        if abs(old.on_cpu_fraction - new.on_cpu_fraction) >= 0.01:
            self._offload(old, new)
        if old.expires_at is None or new.expires_at is None:
            return
        stopping = mem is not None and new.name in mem.stopping
        if new.expires_at_raw == old.expires_at_raw:
            # A model being stopped is listed past its stop moment until its request ends:
            # that is the stop, not a request outliving its keep-alive.
            if _overdue(new, at) and not _overdue(old, since) and not stopping:
                self._busy(new, reason="past_deadline", confidence="certain")
            return
        # expires_at moved: a stop (to the stop moment), or a request ended (a renewal).
        # A stop sets it to "now" (Go expireRunner); from a later deadline that is a move
        # earlier, from a deadline already past (a busy model, or a second stop of one
        # still stopping) it is a move later, but never a keep-alive window: a request that
        # ends sets "now + keep-alive", and keep-alive 0 unloads at once.
        moved_earlier = _secs(old.expires_at, new.expires_at) > SKEW_S
        was_past = _secs(since, old.expires_at) > SKEW_S
        near_now = _secs(new.expires_at, at) <= SKEW_S
        after_prev = _secs(new.expires_at, since) >= -SKEW_S - BUSY_GRACE_S
        if near_now and after_prev and (moved_earlier or was_past or stopping):
            if mem is not None:
                mem.stopping[new.name] = new.expires_at_raw
            if stopping:
                return  # stopped again while still stopping: nothing new to tell
            mine = self.own(new.name, "unload")
            self.emit(
                new.name,
                "busy",
                "stopping",
                "certain",
                by=TOOL if mine else None,
                action=mine.action if mine else None,
                profile=mine.profile if mine else None,
                stopped_at=new.expires_at_raw,
                previous_deadline=old.expires_at_raw,
            )
            return
        self._renewed(old, new)

    def _renewed(self, old: RunningModel, new: RunningModel) -> None:
        mem, at, since = self.memory, self.at, self.since
        assert since is not None and new.expires_at is not None
        if mem is not None:
            mem.stopping.pop(new.name, None)
        known = _window_of(old, self.prev, mem) if self.prev is not None else None
        now_w = Window.pinned() if _pinned(new, at) else _window_between(new.expires_at, since, at)
        if known is None or not known.disjoint(now_w):
            if mem is not None:
                mem.windows[new.name] = known.narrow(now_w) if known is not None else now_w
            return
        if mem is not None:
            mem.windows[new.name] = now_w
        if known.forever:
            reason = "pin_lost"
        elif now_w.forever:
            reason = "pinned"
        else:
            reason = "window_changed"
        # A pin (forever) can only have pinned it; a lost pin or another window can only
        # come from a preload with a window (`pin --for` is journaled as a preload).
        mine = self.own(new.name, "load" if reason == "pinned" else "window")
        self.emit(
            new.name,
            "keep_alive_changed",
            reason,
            "certain",
            by=TOOL if mine else None,
            action=mine.action if mine else None,
            profile=mine.profile if mine else None,
            before=known.text(),
            after=now_w.text(),
            **_window_detail(now_w),
            expires_at=new.expires_at_raw,
            previous_expires_at=old.expires_at_raw,
        )

    def _reloaded(self, old: RunningModel, new: RunningModel, changes: dict[str, Any]) -> None:
        mem, at = self.memory, self.at
        before = _window_of(old, self.prev, mem) if self.prev is not None else None
        after = (
            Window.pinned()
            if _pinned(new, at)
            else (
                _window_between(new.expires_at, self.since, at)
                if new.expires_at is not None
                else None
            )
        )
        certain = "context_length" in changes or "digest" in changes
        mine = self.own(new.name, "load")
        self.emit(
            old.name,
            "unloaded",
            "reloaded",
            "certain" if certain else "likely",
            by=TOOL if mine else None,
            action=mine.action if mine else None,
            profile=mine.profile if mine else None,
            changes=changes,
            keep_alive_before=_ka_text(before),
            keep_alive_after=_ka_text(after),
            pin_lost=bool(before and before.forever) and not (after and after.forever),
            **_model_facts(old),
        )
        if mem is not None:
            mem.stopping.pop(new.name, None)
        self._loaded(new, reason="reload")
        if abs(old.on_cpu_fraction - new.on_cpu_fraction) >= 0.01:
            self._offload(old, new)

    def _offload(self, old: RunningModel, new: RunningModel) -> None:
        self.emit(
            new.name,
            "offload_changed",
            "more_on_cpu" if new.on_cpu_fraction > old.on_cpu_fraction else "less_on_cpu",
            "certain",
            cpu_fraction_before=round(old.on_cpu_fraction, 4),
            cpu_fraction=round(new.on_cpu_fraction, 4),
            processor_before=old.processor,
            processor=new.processor,
            size_vram_before=old.size_vram,
            size_vram=new.size_vram,
        )

    def _busy(self, m: RunningModel, *, reason: str, confidence: Confidence) -> None:
        assert m.expires_at is not None
        self.emit(
            m.name,
            "busy",
            reason,
            confidence,
            expires_at=m.expires_at_raw,
            overdue_s=round(_secs(self.at, m.expires_at), 3),
        )


def _load_changes(old: RunningModel, new: RunningModel) -> dict[str, Any]:
    """What differs between two runners of one name that only a new load can change."""
    changes: dict[str, Any] = {}
    if old.digest and new.digest and old.digest != new.digest:
        changes["digest"] = [old.digest[:12], new.digest[:12]]
    if old.context_length and new.context_length and old.context_length != new.context_length:
        changes["context_length"] = [old.context_length, new.context_length]
    if old.size and new.size and old.size != new.size:
        changes["size"] = [old.size, new.size]
    if old.size_vram != new.size_vram:
        changes["size_vram"] = [old.size_vram, new.size_vram]
    return changes


def diff(
    prev: PsSnapshot | None,
    curr: PsSnapshot | None,
    *,
    host: str,
    prev_up: bool = True,
    curr_up: bool = True,
    version: str | None = None,
    prev_version: str | None = None,
    own_actions: Sequence[OwnAction] = (),
    memory: Memory | None = None,
    max_loaded: int | None = None,
    at: datetime | None = None,
) -> list[Event]:
    """The events that explain how ``prev`` became ``curr``.

    ``prev`` is the last snapshot the server answered with (None before the first);
    ``curr`` None means this poll got no answer (``curr_up`` False) and then ``at`` is
    the time of the poll. ``version``/``prev_version`` are what ``/api/version`` said
    now and before: a change means a restart. ``own_actions`` are this tool's recent
    preloads, pins and unloads, so its own unloads read as ``stopped`` by it.
    ``max_loaded`` is ``OLLAMA_MAX_LOADED_MODELS`` when known (default 3 per GPU).

    Without ``memory`` every change is classified at once from the two snapshots.
    With one (a long-running watch) keep-alive windows are remembered across polls, a
    stop seen while the model was busy is remembered until it goes, and an early unload
    with no visible cause waits up to ``memory.settle_s`` for the model that evicted it.
    """
    return _Diff(
        prev,
        curr,
        host=host,
        prev_up=prev_up,
        curr_up=curr_up,
        version=version,
        prev_version=prev_version,
        own_actions=own_actions,
        memory=memory,
        max_loaded=max_loaded,
        at=at,
    ).run()


def settle_all(memory: Memory, *, host: str, at: datetime) -> list[Event]:
    """Classify every pending unload now (the watch is ending), with the fallback reason."""
    d = _Diff(
        None,
        None,
        host=host,
        prev_up=False,
        curr_up=False,
        version=None,
        prev_version=None,
        own_actions=(),
        memory=memory,
        max_loaded=None,
        at=at,
    )
    saved = memory.settle_s
    memory.settle_s = 0.0
    try:
        d._settle_pending()
    finally:
        memory.settle_s = saved
    return d.out


# -- the tool's own actions ----------------------------------------------------------------


def recording_event(kind: str, *, host: str, time: datetime, **detail: Any) -> Event:
    """``recording_started`` / ``recording_stopped``: when the journal covers a host."""
    return Event(
        time=time,
        host=host,
        model=None,
        event=kind,
        reason=None,
        detail={k: v for k, v in detail.items() if v is not None},
    )


def from_load_outcome(
    outcome: Any,
    *,
    host: str,
    time: datetime,
    action: OwnActionKind = "preload",
    profile: str | None = None,
) -> list[Event]:
    """Events for one :class:`~ollama_resident.residency.LoadOutcome` of a load command.

    A load -> ``loaded``; a changed keep-alive -> ``keep_alive_changed``; a reload ->
    ``unloaded``/``reloaded`` then ``loaded``; each model the load evicted ->
    ``unloaded``/``evicted`` naming this one. Unchanged, failed and cancelled outcomes
    give nothing. Every event says ``by: ollama-resident``, the ``action`` (the command:
    ``preload``, ``pin``, ``apply``, ``guard``) and, for ``apply``, the ``profile``.
    """
    status = getattr(outcome, "status", None)
    name = str(getattr(outcome, "name", "") or getattr(outcome, "requested", ""))
    if status not in ("loaded", "updated", "reloaded"):
        return []
    keep_alive = getattr(outcome, "keep_alive_now", None)
    pinned = bool(getattr(outcome, "pinned", False))
    common: dict[str, Any] = {
        "confidence": "certain",
        "by": TOOL,
        "action": action,
    }
    if profile is not None:
        common["profile"] = profile
    facts = {
        "keep_alive": "forever" if pinned else keep_alive,
        "context_length": getattr(outcome, "context_length", None),
        "processor": getattr(outcome, "processor", None),
        "cpu_fraction": getattr(outcome, "cpu_fraction", None),
        "load_seconds": getattr(outcome, "seconds", None),
        "keep_alive_sent": getattr(outcome, "keep_alive_sent", None),
    }
    facts = {k: v for k, v in facts.items() if v is not None}
    # Each event at its own time: an eviction (and a reload's unload) when the load was
    # sent, the load when it was answered; ``time`` only where the outcome has none.
    started = getattr(outcome, "started_at", None) or time
    done = getattr(outcome, "done_at", None) or time
    out: list[Event] = []
    for victim in getattr(outcome, "evicted", ()) or ():
        out.append(
            Event(
                started,
                host,
                str(victim),
                "unloaded",
                "evicted",
                {
                    "confidence": "likely",
                    "by_models": [name],
                    "cause": "load_by_tool",
                    "action": action,
                    **({"profile": profile} if profile is not None else {}),
                    "seen_by": TOOL,
                },
            )
        )
    previous = getattr(outcome, "previous", None)
    if status == "reloaded":
        out.append(
            Event(
                started,
                host,
                name,
                "unloaded",
                "reloaded",
                {**common, "changes_text": getattr(outcome, "reload_reason", None) or ""},
            )
        )
        out.append(Event(done, host, name, "loaded", "reload", {**common, **facts}))
    elif status == "loaded":
        out.append(Event(done, host, name, "loaded", None, {**common, **facts}))
    elif getattr(outcome, "keep_alive_sent", None) is not None:
        before = "forever" if previous == "forever" else (previous or "unknown")
        after = "forever" if pinned else (keep_alive or "unknown")
        if before != after:
            if pinned:
                reason = "pinned"
            elif before == "forever":
                reason = "pin_lost"
            else:
                reason = "window_changed"
            out.append(
                Event(
                    done,
                    host,
                    name,
                    "keep_alive_changed",
                    reason,
                    {**common, "before": before, "after": after, **facts},
                )
            )
    return out


def from_unload_outcome(
    outcome: Any,
    *,
    host: str,
    time: datetime,
    action: OwnActionKind = "unload",
    profile: str | None = None,
) -> list[Event]:
    """Events for one :class:`~ollama_resident.residency.UnloadOutcome` of ``unload``
    (or of ``apply``, which unloads what its profile leaves out).

    ``unloaded`` -> ``unloaded``/``stopped`` by this tool; ``pending`` (a request still
    runs on it) -> ``busy``/``stopping``; not loaded or failed -> nothing.
    """
    status = getattr(outcome, "status", None)
    name = str(getattr(outcome, "name", "") or getattr(outcome, "requested", ""))
    common: dict[str, Any] = {"confidence": "certain", "by": TOOL, "action": action}
    if profile is not None:
        common["profile"] = profile
    time = getattr(outcome, "at", None) or time  # the /api/ps read that showed it
    if status == "unloaded":
        seconds = getattr(outcome, "seconds", None)
        detail = {**common, **({"unload_seconds": seconds} if seconds is not None else {})}
        return [Event(time, host, name, "unloaded", "stopped", detail)]
    if status == "pending":
        return [Event(time, host, name, "busy", "stopping", dict(common))]
    return []


def unreachable_event(host: str, at: datetime, error: str) -> Event:
    """``server_unreachable``: the first poll of a recording failed, and no poll of it has
    been answered: the server was never seen up, so nothing "went down". Said once."""
    return Event(
        at, host, None, "server_unreachable", None, {"error": error, "confidence": "certain"}
    )


def first_answer_event(
    host: str, at: datetime, version: str | None, unreachable_since: datetime
) -> Event:
    """``server_up``/``first_answer``: the first answer of a recording whose server had
    not been reached until then (after ``server_unreachable``); no comeback, no restart."""
    detail: dict[str, Any] = {"confidence": "certain"}
    if version:
        detail["version"] = version
    detail["unreachable_for_s"] = round(max(0.0, _secs(at, unreachable_since)), 3)
    return Event(at, host, None, "server_up", "first_answer", detail)


def same_change(a: Event, b: Event) -> bool:
    """Whether two entries of one model tell the same kind of change: same event and
    reason, except that a load is a load whatever the reason. A command that reloads a
    model journals ``loaded``/``reload``; a poll that saw it go and come back between two
    polls, and read the command's action, says ``loaded`` by that command: one load.
    """
    if a.event == "loaded" and b.event == "loaded":
        return {a.reason, b.reason} <= {None, "reload"}
    return (a.event, a.reason) == (b.event, b.reason)


def own_actions_from(events: Iterable[Event]) -> list[OwnAction]:
    """This tool's own actions, as recorded in the journal by its commands.

    A stop is an ``unloaded``/``stopped`` or ``busy``/``stopping`` entry; any other entry
    by the tool is a load or a keep-alive change, pinned forever when its keep-alive (or
    ``after``) says so. A model that a load evicted (``cause: load_by_tool``) is not an
    action on that model.
    """
    out: list[OwnAction] = []
    for e in events:
        action = e.detail.get("action")
        if not e.model or not e.by_tool or action not in OWN_ACTIONS:
            continue
        stops = (e.event, e.reason) in (("unloaded", "stopped"), ("busy", "stopping"))
        kept = e.detail.get("keep_alive", e.detail.get("after"))
        forever = None if stops or not isinstance(kept, str) else kept == "forever"
        profile = e.detail.get("profile")
        out.append(
            OwnAction(
                e.time,
                e.model,
                cast(OwnActionKind, action),
                stops,
                forever,
                profile if isinstance(profile, str) else None,
            )
        )
    return out


def utc(t: datetime) -> datetime:
    """An aware datetime in UTC (naive input is taken as UTC)."""
    if t.tzinfo is None:
        return t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc)
