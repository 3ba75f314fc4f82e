"""Use-cases that combine client calls with the pure rules: wait, preload, pin, unload.

No typer, no rich: functions take a client and plain values and return immutable
records (NamedTuples: a tenth of a dataclass's cost to define, on every `pin`) that
``render`` turns into text or JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import NamedTuple

from ollama_resident.client import LoadEndpoint, OllamaClient
from ollama_resident.durations import KeepAlive, format_window
from ollama_resident.errors import (
    NotOllama,
    RequestTimeout,
    ResidentError,
    ServerNotReady,
    ServerUnreachable,
)
from ollama_resident.models import PsSnapshot, RunningModel, canonical_name, names_match
from ollama_resident.vocabulary import time_left, took

__all__ = [
    "LoadCancelled",
    "LoadOutcome",
    "LoadRequest",
    "UnloadOutcome",
    "load_models",
    "load_with_fallback",
    "num_ctx_to_send",
    "resident_as_asked",
    "select_unload_targets",
    "unload_models",
    "wait_ready",
]


def wait_ready(
    client: OllamaClient,
    seconds: float,
    *,
    interval: float = 0.25,
    on_wait: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once the server answers ``HEAD /``; ServerNotReady after ``seconds``.

    With ``seconds == 0`` a single try is made and the plain ServerUnreachable
    propagates. A TCP connect can succeed a moment before the first HTTP answer
    (contract §4.6), so readiness is an HTTP answer, not an open port.
    """
    if seconds <= 0:
        client.heartbeat()
        return
    deadline = clock() + seconds
    announced = False
    while True:
        remaining = deadline - clock()
        try:
            client.heartbeat(timeout=max(0.2, min(2.0, remaining)))
            return
        except (ServerUnreachable, RequestTimeout) as exc:
            remaining = deadline - clock()
            if remaining <= 0:
                if isinstance(exc, NotOllama):
                    raise  # something else answers there: say what, not "no answer"
                raise ServerNotReady(client.display_url, seconds) from None
            if on_wait is not None and not announced:
                on_wait(remaining)
                announced = True
            sleep(min(interval, remaining))


# -- preload / pin -----------------------------------------------------------------------------

# How long after a load reply we keep re-reading /api/ps for the new
# expires_at: Ollama updates it just after it answers (contract §3.2).
READBACK_WINDOW_S = 1.0
READBACK_STEP_S = 0.05
# A finite window read back within this of the request counts as applied.
WINDOW_SLACK_S = 2.0
# A request to a loaded model answers in about one round trip; a load takes
# 0.28 s even for a 500 KB model on a real server (transcripts, 0.24.0). An
# answer slower than this and than 20 round trips means Ollama loaded again.
RELOAD_SUSPECT_S = 0.2


class LoadOutcome(NamedTuple):
    """What happened to one model in ``preload``/``pin``."""

    requested: str
    name: str
    status: str  # loaded | updated | reloaded | unchanged | failed | cancelled
    keep_alive_sent: str | None = None  # describe() of what was sent; None: field omitted
    pinned: bool | None = None
    expires_in_s: float | None = None
    seconds: float | None = None  # wall time of the load request, measured here
    context_length: int | None = None
    num_ctx_sent: int | None = None
    processor: str | None = None
    cpu_fraction: float = 0.0
    evicted: tuple[str, ...] = ()
    reloaded: bool = False
    reload_reason: str | None = None
    previous: str | None = None  # the keep-alive before, in words, when it changed
    note: str | None = None
    error: str | None = None
    hint: str | None = None
    # Wall-clock (UTC) times of the events themselves, for the journal: the load request
    # was sent at ``started_at`` (an eviction or a reload's unload happens after it, before
    # the load: server/sched.go unloads first) and answered at ``done_at`` (loaded).
    started_at: datetime | None = None
    done_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status not in ("failed", "cancelled")

    @property
    def keep_alive_now(self) -> str | None:
        """The keep-alive in effect as read back from /api/ps, in words."""
        if self.pinned:
            return "forever"
        if self.expires_in_s is None:
            return None
        return format_window(max(1, round(self.expires_in_s)))


class LoadRequest(NamedTuple):
    """One model to make resident, as the user asked for it."""

    model: str
    keep_alive: KeepAlive | None = None  # None: omit the field (server default / keep current)
    num_ctx: int | None = None  # explicit context; None: keep what is loaded


class LoadCancelled(KeyboardInterrupt):
    """Ctrl-C during ``load_models``; carries what was done so far."""

    def __init__(self, done: list[LoadOutcome], current: str | None) -> None:
        super().__init__()
        self.done = done
        self.current = current


def _describe_state(model: RunningModel | None, now: datetime) -> str:
    if model is None:
        return "not loaded"
    if model.is_pinned(now):
        return "forever"
    remaining = model.expires_in(now)
    if remaining is None:
        return "unknown"
    if remaining <= 0:
        return "busy or stopping"
    return time_left(remaining)


def _keep_alive_satisfied(wanted: KeepAlive | None, model: RunningModel, now: datetime) -> bool:
    """True when sending ``wanted`` would not change the model's keep-alive.

    A finite window restarts whenever a request arrives, so it is satisfied
    only when the model holds (about) that window right now; asking for the
    same window later refreshes the countdown, which is what the user meant.
    """
    if wanted is None:
        return True
    if wanted.kind == "forever":
        return model.is_pinned(now)
    if wanted.kind == "unload":
        return False
    remaining = model.expires_in(now)
    if remaining is None or wanted.seconds is None:
        return False
    return abs(remaining - wanted.seconds) <= WINDOW_SLACK_S


def resident_as_asked(req: LoadRequest, snapshot: PsSnapshot) -> bool:
    """True when :func:`load_models` would send nothing for ``req``: the model is loaded,
    no context is asked for, and its keep-alive is already the one asked."""
    existing = snapshot.find(req.model)
    return (
        existing is not None
        and req.num_ctx is None
        and _keep_alive_satisfied(req.keep_alive, existing, snapshot.taken_at)
    )


def _applied(wanted: KeepAlive | None, model: RunningModel | None, now: datetime) -> bool:
    if model is None:
        return False
    if wanted is None:
        return True
    return _keep_alive_satisfied(wanted, model, now)


def num_ctx_to_send(
    loaded_context: int | None, training_context: int | None, explicit: int | None
) -> int | None:
    """The ``options.num_ctx`` that will not make Ollama reload a loaded model.

    Ollama compares load options as *requested*, while /api/ps shows the
    context after capping to the model's training context. A context below
    the training context was asked for by someone and must be sent again; one
    equal to it is what the default gives, and sending it would reload
    (issue #3, seen on a real 0.24 server).

    >>> num_ctx_to_send(256, 512, None), num_ctx_to_send(512, 512, None)
    (256, None)
    >>> num_ctx_to_send(None, 512, None), num_ctx_to_send(256, 512, 1024)
    (None, 1024)
    """
    if explicit is not None:
        return explicit
    if loaded_context and training_context and loaded_context < training_context:
        return loaded_context
    return None


def _effective_context(num_ctx: int, training: int | None) -> int:
    return min(num_ctx, training) if training else num_ctx


def load_models(
    client: OllamaClient,
    requests: Sequence[LoadRequest],
    *,
    on_start: Callable[[LoadRequest, RunningModel | None], None] | None = None,
    on_result: Callable[[LoadOutcome], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    snapshot: PsSnapshot | None = None,
    snapshot_seconds: float = 0.005,
) -> list[LoadOutcome]:
    """Make each model resident as asked, one after another, and report truthfully.

    One /api/ps call first; a model that already has the asked keep-alive and
    context gets no request at all. Otherwise /api/show picks the endpoint
    (embedding-only models load through /api/embed) and the no-reload
    context; the load follows at once, and /api/ps is read back to report the
    keep-alive in effect, the processor split and what the load evicted.
    ``snapshot``: an /api/ps read just before (it took ``snapshot_seconds``), to save
    the first one.
    A failure is recorded and the next model goes ahead. Ctrl-C closes the
    connection (so Ollama aborts the load) and raises LoadCancelled.
    """
    results: list[LoadOutcome] = []
    client.open()  # so the timing below is the request, not the httpx import
    start = clock()
    fresh = client.ps() if snapshot is None else snapshot
    # a warm request costs about this much; a load far more
    rtt = clock() - start if snapshot is None else snapshot_seconds
    snapshot = fresh
    current: str | None = None
    try:
        for req in requests:
            current = req.model
            existing = snapshot.find(req.model)
            if on_start is not None:
                on_start(req, existing)
            outcome, snapshot = _load_one(client, req, snapshot, rtt, clock)
            results.append(outcome)
            if on_result is not None:
                on_result(outcome)
            current = None
    except KeyboardInterrupt as exc:
        client.close()
        raise LoadCancelled(results, current) from exc
    return results


def _load_one(
    client: OllamaClient,
    req: LoadRequest,
    before: PsSnapshot,
    rtt: float,
    clock: Callable[[], float],
) -> tuple[LoadOutcome, PsSnapshot]:
    now = before.taken_at
    existing = before.find(req.model)
    name = existing.name if existing else canonical_name(req.model)
    sent = req.keep_alive.describe() if req.keep_alive else None

    # Fast path: nothing to change, nothing to send.
    if existing is not None and resident_as_asked(req, before):
        return (
            _outcome_from(
                req,
                existing,
                now,
                status="unchanged",
                keep_alive_sent=None,
                note=f"already loaded ({_describe_state(existing, now)})",
            ),
            before,
        )

    try:
        info = client.show(req.model)
    except ResidentError as exc:
        return _failed(req, name, exc), before

    training = info.context_length
    if existing is not None and req.num_ctx is not None:
        wanted_ctx = _effective_context(req.num_ctx, training)
        if wanted_ctx == existing.context_length:
            # The context asked for is what is loaded: do not reload for it.
            req = LoadRequest(req.model, req.keep_alive, None)
            if _keep_alive_satisfied(req.keep_alive, existing, now):
                return (
                    _outcome_from(
                        req,
                        existing,
                        now,
                        status="unchanged",
                        keep_alive_sent=None,
                        note=f"already loaded with context {wanted_ctx} "
                        f"({_describe_state(existing, now)})",
                    ),
                    before,
                )
    loaded_ctx = existing.context_length if existing else None
    num_ctx = num_ctx_to_send(loaded_ctx, training, req.num_ctx)
    endpoint: LoadEndpoint = "embed" if info.embedding_only else "generate"

    start = clock()
    started_at = datetime.now(timezone.utc)
    try:
        load_with_fallback(client, req.model, endpoint, keep_alive=req.keep_alive, num_ctx=num_ctx)
    except ResidentError as exc:
        return _failed(req, name, exc, seconds=clock() - start), before
    seconds = clock() - start
    done_at = datetime.now(timezone.utc)

    after = _read_back(client, req, clock)
    model = after.find(req.model)
    if model is None:
        return (
            LoadOutcome(
                requested=req.model,
                name=name,
                status="failed",
                keep_alive_sent=sent,
                seconds=seconds,
                error="Ollama answered, but the model is not listed in /api/ps afterwards",
                hint="another client may have unloaded it, or the server evicted it at once; "
                "see `ollama-resident why " + req.model + "`",
            ),
            after,
        )

    evicted = _evicted(before, after, name, seconds)
    reloaded = False
    reason: str | None = None
    status = "loaded" if existing is None else "updated"
    if existing is not None:
        if req.num_ctx is not None and model.context_length != existing.context_length:
            reloaded, reason = (
                True,
                (
                    # num_ctx: the option --num-ctx sends, and a profile's key (apply).
                    f"context {existing.context_length} -> {model.context_length}, as asked "
                    "with num_ctx"
                ),
            )
        elif model.context_length != existing.context_length:
            reloaded, reason = (
                True,
                (
                    f"Ollama reloaded it: context {existing.context_length} -> "
                    f"{model.context_length}"
                ),
            )
        elif seconds > max(RELOAD_SUSPECT_S, 20 * rtt):
            reloaded, reason = (
                True,
                (
                    f"Ollama reloaded it (the request took {took(seconds)}, a load's time, "
                    "not a warm request's)"
                ),
            )
        if reloaded:
            status = "reloaded"
    previous = None
    if existing is not None:
        before_text = _describe_state(existing, now)
        previous = before_text
    note = None
    if req.keep_alive is None:
        note = (
            "new load: the server's default keep-alive applies"
            if existing is None
            else "kept its current keep-alive"
        )
    outcome = _outcome_from(
        req,
        model,
        after.taken_at,
        status=status,
        keep_alive_sent=sent,
        seconds=seconds,
        num_ctx_sent=num_ctx,
        evicted=evicted,
        reloaded=reloaded,
        reload_reason=reason,
        previous=previous,
        note=note,
    )
    return outcome._replace(started_at=started_at, done_at=done_at), after


def load_with_fallback(
    client: OllamaClient,
    model: str,
    endpoint: LoadEndpoint,
    *,
    keep_alive: KeepAlive | None,
    num_ctx: int | None,
) -> LoadEndpoint:
    """Load through ``endpoint``, falling back where older servers need it; returns the one used.

    - A server before 0.6.4 sends no capabilities (contract §2.6), so an embedding
      model is first tried with /api/generate, which answers 400 ``"<model>" does not
      support generate`` (§2.5): then /api/embed.
    - A server before 0.2.6 has no /api/embed (404, gin's plain text): then the
      legacy /api/embeddings with an empty prompt, which loads without a capability
      check (§2.1).
    """
    from ollama_resident.errors import BadRequest, ServerTooOld

    try:
        client.load(model, endpoint=endpoint, keep_alive=keep_alive, num_ctx=num_ctx)
        return endpoint
    except BadRequest as exc:
        if endpoint != "generate" or "does not support generate" not in exc.message:
            raise
        endpoint = "embed"
    except ServerTooOld:
        if endpoint != "embed":
            raise
        endpoint = "embeddings"
    try:
        client.load(model, endpoint=endpoint, keep_alive=keep_alive, num_ctx=num_ctx)
        return endpoint
    except ServerTooOld:
        if endpoint != "embed":
            raise
    client.load(model, endpoint="embeddings", keep_alive=keep_alive, num_ctx=num_ctx)
    return "embeddings"


def _read_back(client: OllamaClient, req: LoadRequest, clock: Callable[[], float]) -> PsSnapshot:
    """/api/ps after a load, re-read briefly until the asked keep-alive shows."""
    deadline = clock() + READBACK_WINDOW_S
    while True:
        snap = client.ps()
        if _applied(req.keep_alive, snap.find(req.model), snap.taken_at) or clock() >= deadline:
            return snap
        time.sleep(READBACK_STEP_S)


def _evicted(
    before: PsSnapshot,
    after: PsSnapshot,
    loaded: str,
    seconds: float,
) -> tuple[str, ...]:
    """Models listed before the load and gone after it, that were not due to expire."""
    gone = []
    for m in before.models:
        if names_match(m.name, loaded) or after.find(m.name) is not None:
            continue
        remaining = m.expires_in(before.taken_at)
        if remaining is not None and remaining <= seconds + 1.0:
            continue  # it was about to expire anyway
        gone.append(m.name)
    return tuple(gone)


def _outcome_from(
    req: LoadRequest,
    model: RunningModel,
    now: datetime,
    *,
    status: str,
    keep_alive_sent: str | None,
    seconds: float | None = None,
    num_ctx_sent: int | None = None,
    evicted: tuple[str, ...] = (),
    reloaded: bool = False,
    reload_reason: str | None = None,
    previous: str | None = None,
    note: str | None = None,
) -> LoadOutcome:
    remaining = model.expires_in(now)
    return LoadOutcome(
        requested=req.model,
        name=model.name,
        status=status,
        keep_alive_sent=keep_alive_sent,
        pinned=model.is_pinned(now),
        expires_in_s=None if remaining is None else round(remaining, 3),
        seconds=None if seconds is None else round(seconds, 3),
        context_length=model.context_length or None,
        num_ctx_sent=num_ctx_sent,
        processor=model.processor,
        cpu_fraction=round(model.on_cpu_fraction, 4),
        evicted=evicted,
        reloaded=reloaded,
        reload_reason=reload_reason,
        previous=previous,
        note=note,
    )


def _failed(
    req: LoadRequest, name: str, exc: ResidentError, *, seconds: float | None = None
) -> LoadOutcome:
    if isinstance(exc, ServerUnreachable):
        raise exc  # nothing else can succeed either
    return LoadOutcome(
        requested=req.model,
        name=name,
        status="failed",
        keep_alive_sent=req.keep_alive.describe() if req.keep_alive else None,
        seconds=None if seconds is None else round(seconds, 3),
        error=exc.message,
        hint=exc.hint,
    )


# -- unload ------------------------------------------------------------------------------------


class UnloadOutcome(NamedTuple):
    requested: str
    name: str
    status: str  # unloaded | not-loaded | pending | failed
    seconds: float | None = None
    note: str | None = None
    error: str | None = None
    hint: str | None = None
    # When the /api/ps read that showed it gone (or still busy) was taken, UTC.
    at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def _still_counting(model: RunningModel, now: datetime) -> bool:
    """Pinned, or a deadline ahead: the stop did not take (a stop moves it to the past)."""
    if model.is_pinned(now):
        return True
    remaining = model.expires_in(now)
    return remaining is not None and remaining > 0


def select_unload_targets(
    snapshot: PsSnapshot, models: Sequence[str], *, all_models: bool, keep: Sequence[str]
) -> list[str]:
    """The names to unload: those given, or everything listed but ``keep``.

    ``keep`` names are matched as :meth:`PsSnapshot.find` matches them (by name, or
    by the file an alias names), so ``--except`` an alias keeps its runner.
    """
    kept = [found for k in keep if (found := snapshot.find(k)) is not None]
    if all_models:
        return [m.name for m in snapshot.models if not any(m is k for k in kept)]
    return [
        m
        for m in models
        if not any(names_match(m, k) for k in keep)
        and not any(snapshot.find(m) is k and k is not None for k in kept)
    ]


def unload_models(
    client: OllamaClient,
    models: Sequence[str],
    *,
    snapshot: PsSnapshot | None = None,
    timeout: float = 30.0,
    poll: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    on_wait: Callable[[Sequence[str], Sequence[str]], None] | None = None,
) -> list[UnloadOutcome]:
    """Ask Ollama to unload each model, then confirm from /api/ps that it is gone.

    A model that is not listed is a success with a note (no request sent). A
    model still listed when ``timeout`` runs out with its deadline moved to
    the past is ``pending``: a request is running on it and Ollama unloads it
    when that ends (there is no force-unload, contract §4.1). ``on_wait(waiting,
    busy)`` is called after each poll that still lists a model: the names still
    listed, and those of them past their deadline (a request is running on them).
    """
    snapshot = snapshot if snapshot is not None else client.ps()
    results: dict[str, UnloadOutcome] = {}
    asked: dict[str, tuple[str, float]] = {}  # ps name -> (requested, sent at)
    order: list[str] = []
    for requested in models:
        listed = snapshot.find(requested)
        if listed is None:
            key = canonical_name(requested)
            order.append(key)
            results[key] = UnloadOutcome(
                requested, key, "not-loaded", note="was not loaded; nothing to do"
            )
            continue
        order.append(listed.name)
        try:
            client.unload(listed.name)
        except ResidentError as exc:
            if isinstance(exc, ServerUnreachable):
                raise
            results[listed.name] = UnloadOutcome(
                requested, listed.name, "failed", error=exc.message, hint=exc.hint
            )
            continue
        asked[listed.name] = (requested, clock())

    deadline = clock() + timeout
    resent: set[str] = set()
    while asked:
        snap = client.ps()
        for name in list(asked):
            requested, sent_at = asked[name]
            model = snap.find(name)
            if model is None:
                results[name] = UnloadOutcome(
                    requested,
                    name,
                    "unloaded",
                    seconds=round(clock() - sent_at, 3),
                    at=snap.taken_at,
                )
                del asked[name]
            elif name not in resent and _still_counting(model, snap.taken_at):
                # Still counting down: the stop arrived while it was loading and
                # was a no-op (contract §2.3). Say it again now that it is listed.
                client.unload(name)
                resent.add(name)
        if not asked:
            break
        if on_wait is not None:
            busy = [
                n
                for n in asked
                if (m := snap.find(n)) is not None and not _still_counting(m, snap.taken_at)
            ]
            on_wait(list(asked), busy)
        if clock() >= deadline:
            for name, (requested, _sent) in asked.items():
                model = snap.find(name)
                overdue = model is not None and not _still_counting(model, snap.taken_at)
                if overdue:
                    results[name] = UnloadOutcome(
                        requested,
                        name,
                        "pending",
                        note="a request is still running on it; Ollama unloads it when "
                        "that request ends (it cannot be forced)",
                        at=snap.taken_at,
                    )
                else:
                    results[name] = UnloadOutcome(
                        requested,
                        name,
                        "failed",
                        error=f"still loaded after {timeout:g}s",
                        hint="another client may have loaded it again; see "
                        f"`ollama-resident why {name}`",
                    )
            break
        time.sleep(poll)
    return [results[k] for k in order if k in results]
