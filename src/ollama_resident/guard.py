"""Keep a set of models resident against everything: the loop behind ``guard``.

Each check is one :class:`~ollama_resident.watcher.Watcher` poll (so every
change is classified and journaled like ``watch`` does) followed, only when
something broke the residency, by one :func:`~ollama_resident.residency.load_models`
call for exactly the models that need it: a guarded model that is gone is
loaded again; one whose keep-alive is no longer what was asked (another client
reset it) gets it re-asserted with the same no-reload context rule as ``pin``.

No thrashing: a model whose restore fails, or whose restore evicts another
guarded model (they cannot all fit), backs off exponentially, and the
conflict or failure is reported once until it clears. Guarded models that
evict each other are one episode: reported once, when it starts (or when a
model not yet in it is drawn in), and over only when a check finds every
guarded model loaded at once; until then none of them is "resident again".

No typer, no rich: events go to ``on_events``; the CLI decides how they look.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ollama_resident import events as ev
from ollama_resident.client import OllamaClient
from ollama_resident.errors import RequestTimeout, ServerUnreachable
from ollama_resident.models import RunningModel, canonical_name
from ollama_resident.residency import LoadCancelled, LoadOutcome, LoadRequest, load_models
from ollama_resident.watcher import Watcher

__all__ = ["BACKOFF_MAX_S", "Guard", "GuardTarget"]

BACKOFF_MAX_S = 600.0
# A finite window re-read from /api/ps may be this much shorter than asked
# (poll latency, clock skew) before it counts as reset by someone else.
WINDOW_SLACK_S = 3.0

GUARD_EVENTS = ("restored", "reasserted", "restore_failed", "conflict", "recovered")


@dataclass(frozen=True)
class GuardTarget:
    request: LoadRequest

    @property
    def key(self) -> str:
        return canonical_name(self.request.model)


@dataclass
class _State:
    failures: int = 0
    next_try: float = 0.0  # monotonic
    reported: str | None = None  # the problem already reported once
    asserted_at: datetime | None = None  # when we last set a finite window
    evicted_by: str | None = None


@dataclass
class Guard:
    client: OllamaClient
    targets: Sequence[GuardTarget]
    watcher: Watcher
    interval: float = 5.0
    on_events: Callable[[list[ev.Event]], None] = lambda events: None
    monotonic: Callable[[], float] = time.monotonic
    backoff_max: float = BACKOFF_MAX_S
    retries: bool = True  # False for `guard --once`: nothing is retried, so no retry_in_s
    _state: dict[str, _State] = field(default_factory=dict)
    # Guarded models seen evicting each other in the episode already reported.
    _clash: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for t in self.targets:
            self._state.setdefault(t.key, _State())

    @property
    def host(self) -> str:
        return self.watcher.host

    # -- one check -------------------------------------------------------------------------

    def check(self) -> list[ev.Event]:
        """Poll once and restore what is broken; returns every event of this round."""
        observed = self.watcher.poll_once()
        out = list(observed)
        snap = self.watcher.snapshot
        if not self.watcher.up or snap is None:
            self._emit(out)
            return out
        now_mono = self.monotonic()
        todo: list[tuple[GuardTarget, str, str]] = []  # target, action, reason
        found = {t.key: snap.find(t.request.model) for t in self.targets}
        if all(found.values()):
            self._clash.clear()  # every guarded model loaded at once: the episode is over
        for target in self.targets:
            state = self._state[target.key]
            model = found[target.key]
            if model is None:
                todo.append((target, "restored", self._gone_reason(target, observed)))
            else:
                drift = self._drift(target, model, snap.taken_at, state)
                if drift is not None:
                    todo.append((target, "reasserted", drift))
                elif state.failures and state.reported:
                    if state.evicted_by is not None and self._clash:
                        # Back only until the next swap: guarded models evicting each other
                        # keep their count and their report, so the swaps back off (1 s,
                        # 2 s, 4 s...) and the conflict is not said again at every swap.
                        continue
                    out.append(
                        self._event(target, "recovered", None, {"after_failures": state.failures})
                    )
                    state.failures = 0
                    state.reported, state.evicted_by = None, None
        ready = [item for item in todo if self._state[item[0].key].next_try <= now_mono]
        if ready:
            acted = self._act(ready)
            # Let the watcher see what we just did, so a model that goes away before
            # the next check is seen going (and classified), not just missing.
            seen = self.watcher.poll_once()
            out.extend(_settled(acted, seen))
            out.extend(seen)
        self._emit(out)
        return out

    def _emit(self, out: list[ev.Event]) -> None:
        if out:
            # The guard's own actions go to the journal too (the polls' events already
            # have), so that `why` tells "re-pinned by the guard", not the reset it undid.
            self.watcher.record([e for e in out if e.event in GUARD_EVENTS])
            self.on_events(out)

    def _gone_reason(self, target: GuardTarget, observed: Sequence[ev.Event]) -> str:
        for e in reversed(observed):
            if e.model and canonical_name(e.model) == target.key and e.event == "unloaded":
                return e.reason or "unknown"
        if any(e.event == "server_up" and e.reason != "first_answer" for e in observed):
            return "server_restart"
        if any(canonical_name(p) == target.key for p in self.watcher.pending):
            return "went_early"  # before its deadline; the watcher settles evicted vs stopped
        return "not_loaded"

    def _drift(
        self, target: GuardTarget, model: RunningModel, now: datetime, state: _State
    ) -> str | None:
        wanted = target.request.keep_alive
        if wanted is None:
            return None  # only kept loaded; the keep-alive is the server's business
        if wanted.kind == "forever":
            return None if model.is_pinned(now) else "pin_lost"
        if model.is_pinned(now):
            return "window_changed"  # holds longer than asked
        remaining = model.expires_in(now)
        if remaining is None or wanted.seconds is None:
            return None
        if remaining <= 0:
            return None  # busy past its deadline: a request is running, leave it
        if state.asserted_at is None:
            # Not set by us yet: a window longer than asked is drift; shorter may be
            # a countdown, so set it once and track it from then on.
            return "window_changed" if remaining > wanted.seconds + WINDOW_SLACK_S else "adopt"
        # Since we set it, expires_at can only move later (each request restarts the full
        # window). A deadline earlier than ours means someone set a shorter window.
        ours = state.asserted_at + timedelta(seconds=wanted.seconds - WINDOW_SLACK_S)
        if model.expires_at is not None and model.expires_at < ours:
            return "window_changed"
        if remaining > wanted.seconds + WINDOW_SLACK_S:
            return "window_changed"
        return None

    def _act(self, items: list[tuple[GuardTarget, str, str]]) -> list[ev.Event]:
        out: list[ev.Event] = []
        requests = [t.request for t, _a, _r in items]
        by_key = {t.key: (t, a, r) for t, a, r in items}
        # Tell the watcher first, so that what the loads change (a pin set, a model
        # evicted to make room) is seen as this tool's doing.
        started = datetime.now(timezone.utc)
        for target, _action, _reason in by_key.values():
            wanted = target.request.keep_alive
            forever = None if wanted is None else wanted.kind == "forever"
            self.watcher.note_action(
                ev.OwnAction(started, target.key, "guard", unload=False, forever=forever)
            )
        try:
            outcomes = load_models(self.client, requests)
        except (ServerUnreachable, RequestTimeout):
            return out  # the next poll reports the server down
        except LoadCancelled as cancelled:
            outcomes = cancelled.done
            self._record(outcomes, by_key, out)
            raise KeyboardInterrupt from None
        self._record(outcomes, by_key, out)
        return out

    def _record(
        self,
        outcomes: Sequence[LoadOutcome],
        by_key: dict[str, tuple[GuardTarget, str, str]],
        out: list[ev.Event],
    ) -> None:
        now = datetime.now(timezone.utc)
        guarded = {t.key for t in self.targets}
        for outcome in outcomes:
            key = canonical_name(outcome.requested)
            target, action, reason = by_key[key]
            state = self._state[key]
            if not outcome.ok:
                state.failures += 1
                delay = self._backoff(state)
                problem = outcome.error or "load failed"
                detail: dict[str, Any] = {"error": problem}
                if self.retries:
                    detail["retry_in_s"] = round(delay, 1)
                if outcome.hint:
                    detail["hint"] = outcome.hint
                if state.reported != problem:
                    state.reported = problem
                    out.append(self._event(target, "restore_failed", reason, detail))
                continue
            if target.request.keep_alive is not None and target.request.keep_alive.kind == "finite":
                state.asserted_at = now
            detail = {
                "keep_alive": outcome.keep_alive_now,
                "context_length": outcome.context_length,
                "load_seconds": outcome.seconds,
                "status": outcome.status,
                "by": ev.TOOL,
                "action": "guard",
                "confidence": "certain",
                "evicted": list(outcome.evicted) or None,
            }
            if reason != "adopt":
                out.append(
                    self._event(
                        target,
                        action,
                        reason,
                        {k: v for k, v in detail.items() if v is not None},
                        at=outcome.done_at,  # when the load answered, not this pass's end
                    )
                )
            victims = [v for v in outcome.evicted if canonical_name(v) in guarded]
            for victim in victims:
                victim_state = self._state[canonical_name(victim)]
                victim_state.evicted_by = outcome.name
                victim_state.failures += 1
                delay = self._backoff(victim_state)
                problem = f"conflict with {outcome.name}"
                pair = {canonical_name(victim), key}
                news = not pair <= self._clash  # a model not yet in the reported episode
                self._clash |= pair
                victim_state.reported = problem
                if news:
                    out.append(
                        ev.Event(
                            outcome.started_at or now,
                            self.host,
                            victim,
                            "conflict",
                            "evicted_by_guarded",
                            {
                                "by_models": [outcome.name],
                                **({"retry_in_s": round(delay, 1)} if self.retries else {}),
                                "advice": "these guarded models cannot all stay loaded: guard "
                                "fewer models, raise OLLAMA_MAX_LOADED_MODELS (if memory allows), "
                                "or give them a smaller num_ctx",
                                "confidence": "certain",
                            },
                        )
                    )
            if not victims and state.evicted_by is None and state.failures and action == "restored":
                state.failures = 0
                state.reported = None

    def _backoff(self, state: _State) -> float:
        delay = min(self.backoff_max, max(self.interval, 1.0) * 2.0 ** (state.failures - 1))
        state.next_try = self.monotonic() + delay
        return delay

    def _event(
        self,
        target: GuardTarget,
        kind: str,
        reason: str | None,
        detail: dict[str, Any],
        *,
        at: datetime | None = None,
    ) -> ev.Event:
        return ev.Event(
            at or datetime.now(timezone.utc),
            self.host,
            canonical_name(target.request.model),
            kind,
            reason,
            {"source": "guard", **detail},
        )

    # -- the loop --------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        """Check every ``interval`` seconds until ``stop`` is set or Ctrl-C/SIGTERM."""
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                started = self.monotonic()
                self.check()
                stop.wait(max(0.0, self.interval - (self.monotonic() - started)))
        finally:
            closing = self.watcher.stop()
            self._emit(closing)


def _settled(acted: list[ev.Event], seen: Sequence[ev.Event]) -> list[ev.Event]:
    """The guard's events, with "went before its deadline" replaced by the cause the
    watcher settled on once the model was back (a stop, most often: it vanished and no
    other model was loaded), so the guard says what ``why`` will say."""
    out = []
    for e in acted:
        if e.event in ("restored", "restore_failed") and e.reason == "went_early":
            cause = next(
                (
                    s
                    for s in seen
                    if s.model == e.model and s.event == "unloaded" and s.reason is not None
                ),
                None,
            )
            if cause is not None:
                e = dataclasses.replace(
                    e,
                    reason=cause.reason,
                    detail={**e.detail, "gone_confidence": cause.confidence},
                )
        out.append(e)
    return out
