"""What ``apply`` will do: compare a profile with ``/api/ps`` and predict Ollama's evictions.

Pure: a :class:`~ollama_resident.profiles.Profile`, a
:class:`~ollama_resident.models.PsSnapshot` and what ``/api/tags`` / ``/api/show``
said go in, a :class:`Plan` comes out. No I/O, no clock (``now`` comes from the
snapshot unless given).

Steps, each with a reason in words:

- ``load``: in the profile, not loaded;
- ``repin``: loaded, but its keep-alive drifted. Drift is (a) the profile wants
  forever and the model is not pinned, or (b) the model holds a longer window than
  the profile asks (pinned, or more time left than the window). A finite window
  that has simply counted down is *not* drift: the next request restarts it;
- ``reload``: loaded with another context than the profile's ``num_ctx`` (only when
  the profile names one; a reload also loses any pin, contract §4.3);
- ``unload``: loaded, not in the profile, and the plan is exclusive;
- ``ok``: nothing to send.

Evictions follow the scheduler (contract §4.4): when a load finds
``OLLAMA_MAX_LOADED_MODELS`` runners (3 by default on CPU or one GPU), or its size
would not fit the memory given, Ollama sorts the loaded runners by configured
keep-alive ascending (forever last, ties by digest) and unloads the first idle one,
pinned or not. ``/api/ps`` shows only when a model expires, not the keep-alive it
was given, so for models the plan does not touch that keep-alive is estimated from
the time left (a lower bound) and the prediction says "probably".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ollama_resident.durations import MAX_DURATION_NS, KeepAlive, format_window
from ollama_resident.models import PsSnapshot, RunningModel, canonical_name, human_bytes
from ollama_resident.vocabulary import plan_action, time_left

if TYPE_CHECKING:
    from ollama_resident.profiles import Profile, ProfileModel
    from ollama_resident.residency import LoadRequest

__all__ = [
    "DEFAULT_MAX_LOADED",
    "Eviction",
    "Installed",
    "Plan",
    "Step",
    "StepAction",
    "installed_from_tags",
    "make_plan",
    "parse_size",
]

DEFAULT_MAX_LOADED = 3
"""Ollama's automatic ``OLLAMA_MAX_LOADED_MODELS``: 3 per GPU, 3 on CPU (contract §4.5)."""

# Ollama's own default keep-alive for a load that sends none (OLLAMA_KEEP_ALIVE unset).
_SERVER_DEFAULT_NS = 5 * 60 * 1_000_000_000
# The same slack residency.load_models allows before it re-sends a finite window: a
# model read back a second after its load has a second less than asked.
_WINDOW_SLACK_S = 2.0

StepAction = Literal["load", "repin", "reload", "unload", "ok"]
_Basis = Literal["exact", "at-least", "default"]  # how the plan knows a runner's keep-alive


@dataclass(frozen=True)
class Installed:
    """One entry of ``/api/tags``: what the plan needs to know about a model not loaded."""

    name: str
    size: int
    digest: str


def installed_from_tags(tags: Sequence[Mapping[str, Any]]) -> dict[str, Installed]:
    """``/api/tags`` ``models`` as a dict keyed by canonical name."""
    out: dict[str, Installed] = {}
    for item in tags:
        name = str(item.get("name") or item.get("model") or "")
        if not name:
            continue
        size = item.get("size")
        out[canonical_name(name)] = Installed(
            name=name,
            size=size if isinstance(size, int) and not isinstance(size, bool) else 0,
            digest=str(item.get("digest") or "").removeprefix("sha256:"),
        )
    return out


_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?i?B?)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


def parse_size(text: str) -> int:
    """Bytes from ``24GB``, ``16GiB``, ``800MB``, ``8e9`` is not accepted; plain digits are bytes.

    Decimal units as Ollama prints them (``GB`` = 1000^3); ``GiB`` etc. are binary.

    >>> parse_size("24GB"), parse_size("1.5 GiB"), parse_size("800")
    (24000000000, 1610612736, 800)
    """
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f'invalid size "{text}": use a number of bytes or e.g. 24GB, 16GiB')
    unit = (m.group(2) or "").upper()
    binary = "I" in unit
    letter = unit.replace("I", "").replace("B", "")
    factor = _UNITS[letter]
    if binary and letter:
        factor = 1024 ** ("KMGT".index(letter) + 1)
    value = int(float(m.group(1)) * factor)
    if value <= 0:
        raise ValueError(f'invalid size "{text}": must be more than 0')
    return value


@dataclass(frozen=True)
class Step:
    """One thing ``apply`` does (or, for ``ok``, does not need to do)."""

    action: StepAction
    model: str  # as /api/ps lists it, or as the profile names it when not loaded
    reason: str
    requested: str | None = None  # the name as written in the profile; None: not in it
    keep_alive: KeepAlive | None = None  # what will be sent (or, for ok, what is wanted)
    num_ctx: int | None = None  # the profile's num_ctx, sent with load/repin/reload
    current: str = "not loaded"  # the state now, in words
    size: int | None = None
    installed: bool | None = None  # None: /api/tags not consulted

    @property
    def changes(self) -> bool:
        return self.action != "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "model": self.model,
            "requested": self.requested,
            "reason": self.reason,
            "keep_alive": None if self.keep_alive is None else self.keep_alive.describe(),
            "num_ctx": self.num_ctx,
            "current": self.current,
            "size": self.size,
            "installed": self.installed,
        }


@dataclass(frozen=True)
class Eviction:
    """A model the plan will make Ollama unload to make room."""

    model: str
    by: str  # the model whose load pushes it out
    cause: Literal["max-loaded", "memory"]
    in_profile: bool  # the victim is one of the profile's own models
    certain: bool  # False when a keep-alive in the ordering was estimated
    message: str
    limit: str = ""  # the limit behind it, in a few words

    def brief(self) -> str:
        """``loading tiny3:latest pushes out tiny2:latest (the server keeps at most 2 ...)``."""
        return f"loading {self.by} pushes out {self.model} ({self.limit})"

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "by": self.by,
            "cause": self.cause,
            "in_profile": self.in_profile,
            "certain": self.certain,
            "message": self.message,
        }


@dataclass(frozen=True)
class Plan:
    """Steps in the order ``apply`` runs them (unloads first), and predicted evictions."""

    profile: str
    exclusive: bool
    steps: tuple[Step, ...]
    evictions: tuple[Eviction, ...] = ()
    max_loaded: int | None = DEFAULT_MAX_LOADED
    memory: int | None = None
    notes: tuple[str, ...] = field(default=())
    max_loaded_source: str | None = None  # where the cap came from, in words
    memory_source: str | None = None
    max_loaded_label: str | None = None  # the same in a few words, for messages

    @property
    def self_evictions(self) -> tuple[Eviction, ...]:
        """Predicted evictions of the profile's own models: the profile cannot stay whole."""
        return tuple(e for e in self.evictions if e.in_profile)

    def blocking_eviction(self, cap_known: bool, memory_known: bool) -> Eviction | None:
        """The first eviction of the plan's own models that a known limit makes certain.

        ``apply`` (and ``pin``/``preload``) refuse such a plan up front unless --force:
        each load would push out a model the same command asked for. A guessed limit
        only warns; the end state then tells what stayed.
        """
        for e in self.self_evictions:
            if (e.cause == "max-loaded" and cap_known) or (e.cause == "memory" and memory_known):
                return e
        return None

    def limits_line(self) -> str:
        """``limits: at most 2 models (OLLAMA_MAX_LOADED_MODELS=2, from ...); memory ...``."""
        cap = f"at most {self.max_loaded} models loaded" if self.max_loaded else "no model cap"
        if self.max_loaded_source:
            cap += f" ({self.max_loaded_source})"
        mem = "memory not considered"
        if self.memory:
            mem = f"{human_bytes(self.memory)} of memory"
            if self.memory_source:
                mem += f" ({self.memory_source})"
        return f"limits: {cap}; {mem}"

    @property
    def changes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.changes)

    @property
    def is_noop(self) -> bool:
        return not self.changes

    def unload_names(self) -> list[str]:
        return [s.model for s in self.steps if s.action == "unload"]

    def load_requests(self) -> list[LoadRequest]:
        """load/repin/reload steps as requests for ``residency.load_models``, in order."""
        from ollama_resident.residency import LoadRequest

        return [
            LoadRequest(s.requested or s.model, s.keep_alive, s.num_ctx)
            for s in self.steps
            if s.action in ("load", "repin", "reload")
        ]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps:
            out[s.action] = out.get(s.action, 0) + 1
        return out

    def summary(self) -> str:
        """``2 to load, 1 to pin, 1 ok`` or ``nothing to do: 3 models as asked``."""
        counts: dict[str, int] = {}
        for s in self.steps:
            word = plan_action(
                s.action, s.keep_alive is not None and s.keep_alive.kind == "forever"
            )
            counts[word] = counts.get(word, 0) + 1
        if self.is_noop:
            n = counts.get("ok", 0)
            # A command line's plan is titled with the command in backquotes, not a profile.
            asker = "as asked" if self.profile.startswith("`") else "as the profile asks"
            return f"nothing to do: {n} model{'s' if n != 1 else ''} {asker}"
        words = {
            "unload": "to unload",
            "load": "to load",
            "reload": "to reload",
            "pin": "to pin",
            "shorten": "to shorten",
            "ok": "ok",
        }
        return ", ".join(f"{counts[k]} {words[k]}" for k in words if counts.get(k))

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "exclusive": self.exclusive,
            "max_loaded": self.max_loaded,
            "memory": self.memory,
            "max_loaded_source": self.max_loaded_source,
            "memory_source": self.memory_source,
            "steps": [s.to_json() for s in self.steps],
            "evictions": [e.to_json() for e in self.evictions],
            "notes": list(self.notes),
            "summary": self.summary(),
        }


# -- assessing one model -------------------------------------------------------------------------


def _state(model: RunningModel, now: datetime) -> str:
    if model.is_pinned(now):
        return "pinned"
    remaining = model.expires_in(now)
    if remaining is None:
        return "expiry unknown"
    if remaining <= 0:
        return "busy or stopping"
    return time_left(remaining)


def _ctx_words(num_ctx: int, effective: int) -> str:
    if effective != num_ctx:
        return f"{num_ctx} ({effective} after capping to its training context)"
    return str(num_ctx)


def _assess(
    pm: ProfileModel,
    wanted: KeepAlive | None,
    loaded: RunningModel | None,
    now: datetime,
    training: int | None,
    installed: Installed | None,
    tags_known: bool,
    command: bool = False,
) -> Step:
    """One model's step. ``command``: the models come from a command line (``pin a b``),
    not a profile, and the reasons say "asked", not "the profile asks"."""
    asks = "asked" if command else "the profile asks"
    size = loaded.size if loaded is not None and loaded.size else None
    if size is None and installed is not None and installed.size:
        size = installed.size

    def step(action: StepAction, name: str, reason: str, current: str) -> Step:
        return Step(
            action,
            name,
            reason,
            requested=pm.name,
            keep_alive=wanted,
            num_ctx=pm.num_ctx,
            current=current,
            size=size,
            installed=True
            if loaded is not None
            else (installed is not None if tags_known else None),
        )

    if loaded is None:
        reason = "not loaded"
        if tags_known and installed is None:
            reason += f"; not installed on this server, the load will fail (ollama pull {pm.name})"
        name = installed.name if installed is not None else canonical_name(pm.name)
        return step("load", name, reason, "not loaded")

    state = _state(loaded, now)
    name = loaded.name
    if pm.num_ctx is not None and loaded.context_length:
        effective = min(pm.num_ctx, training) if training else pm.num_ctx
        if effective != loaded.context_length:
            reason = (
                f"loaded with context {loaded.context_length}, {asks} "
                f"{_ctx_words(pm.num_ctx, effective)}"
            )
            return step("reload", name, reason, state)
    if wanted is None:
        sets = "no keep-alive asked" if command else "the profile sets no keep-alive"
        return step("ok", name, f"loaded ({state}); {sets}", state)
    pinned = loaded.is_pinned(now)
    if wanted.kind == "forever":
        if pinned:
            return step("ok", name, "pinned, as asked", state)
        wants = "asked to pin it" if command else "the profile wants it pinned"
        return step("repin", name, f"{wants}; it has {state}", state)
    window = wanted.describe()
    if pinned:
        return step("repin", name, f"pinned, longer than the {window} {asks}", state)
    remaining = loaded.expires_in(now)
    assert wanted.seconds is not None
    if remaining is not None and remaining > wanted.seconds + _WINDOW_SLACK_S:
        return step("repin", name, f"{state}, longer than the {window} {asks}", state)
    if remaining is None:
        reason = f"loaded; its expiry is unknown ({asks} {window})"
    elif remaining <= 0:
        reason = (
            "busy or stopping: its deadline passed while a request runs; "
            f"the next request restarts its {window}"
        )
    else:
        reason = f"{state} of {window}: counting down, the next request restarts it"
    return step("ok", name, reason, state)


# -- predicting evictions ------------------------------------------------------------------------


@dataclass
class _Runner:
    name: str
    digest: str
    size: int | None
    ka_ns: int  # configured keep-alive (or its estimate); MAX_DURATION_NS for forever
    busy: bool
    in_profile: bool
    basis: _Basis

    @property
    def estimated(self) -> bool:
        return self.basis != "exact"

    def ka_words(self) -> str:
        if self.ka_ns >= MAX_DURATION_NS:
            return "pinned"
        words = format_window(max(1, round(self.ka_ns / 1e9)))
        if self.basis == "default":
            return f"the server's default keep-alive, {words} unless OLLAMA_KEEP_ALIVE is set"
        if self.basis == "at-least":
            return f"keep-alive at least {words}"
        return f"keep-alive {words}"


def _ka_ns(value: KeepAlive | None) -> tuple[int, _Basis]:
    """Configured ns for a keep-alive about to be sent; None is the server default (a guess)."""
    if value is None:
        return _SERVER_DEFAULT_NS, "default"
    return value.ns, "exact"


def _runner_from_ps(
    model: RunningModel, now: datetime, wanted: KeepAlive | None, in_profile: bool
) -> _Runner:
    remaining = model.expires_in(now)
    busy = remaining is not None and remaining <= 0
    basis: _Basis
    if model.is_pinned(now):
        ka, basis = MAX_DURATION_NS, "exact"
    elif wanted is not None and wanted.kind == "finite":
        ka, basis = wanted.ns, "exact"  # counting down within the asked window
    elif remaining is not None and remaining > 0:
        ka, basis = int(remaining * 1e9), "at-least"  # it had at least what is left
    else:
        ka, basis = 0, "at-least"
    return _Runner(model.name, model.digest, model.size or None, ka, busy, in_profile, basis)


def _victim(resident: list[_Runner]) -> _Runner | None:
    """Ollama's ``findRunnerToUnload``: shortest keep-alive first, ties by digest, idle first."""
    if not resident:
        return None
    order = sorted(resident, key=lambda r: (r.ka_ns, r.digest, r.name))
    return next((r for r in order if not r.busy), order[0])


def _predict(
    steps: Sequence[Step],
    snapshot: PsSnapshot,
    now: datetime,
    profile: Profile,
    installed: Mapping[str, Installed],
    max_loaded: int | None,
    memory: int | None,
    cap_source: str | None = None,
    asked_by: str | None = None,
) -> list[Eviction]:
    in_profile = {canonical_name(m.name) for m in profile.models}
    wanted_by_name = {canonical_name(m.name): profile.keep_alive_for(m) for m in profile.models}
    unloads = {s.model for s in steps if s.action == "unload"}
    resident = [
        _runner_from_ps(
            m,
            now,
            wanted_by_name.get(canonical_name(m.name)),
            canonical_name(m.name) in in_profile,
        )
        for m in snapshot.models
        if m.name not in unloads
    ]
    evictions: list[Eviction] = []
    for step in steps:
        if step.action == "repin":
            for r in resident:
                if r.name == step.model:
                    r.ka_ns, r.basis = _ka_ns(step.keep_alive)
            continue
        if step.action not in ("load", "reload"):
            continue
        digest = ""
        size = step.size
        if step.action == "reload":
            old = next((r for r in resident if r.name == step.model), None)
            if old is not None:
                resident.remove(old)  # Ollama expires the old runner before loading anew
                digest = old.digest
        info = installed.get(canonical_name(step.model))
        if info is not None:
            digest = digest or info.digest
        ka, basis = _ka_ns(step.keep_alive)
        new = _Runner(step.model, digest, size, ka, False, True, basis)
        if max_loaded:
            while len(resident) >= max_loaded:
                victim = _victim(resident)
                if victim is None:
                    break
                resident.remove(victim)
                evictions.append(
                    _eviction(
                        victim,
                        new,
                        "max-loaded",
                        resident,
                        max_loaded,
                        memory,
                        cap_source,
                        asked_by,
                    )
                )
        if memory and size:
            while resident and sum(r.size or 0 for r in resident) + size > memory:
                victim = _victim(resident)
                if victim is None:
                    break
                resident.remove(victim)
                evictions.append(
                    _eviction(
                        victim, new, "memory", resident, max_loaded, memory, cap_source, asked_by
                    )
                )
        resident.append(new)
    return evictions


def _eviction(
    victim: _Runner,
    new: _Runner,
    cause: Literal["max-loaded", "memory"],
    others: list[_Runner],
    max_loaded: int | None,
    memory: int | None,
    cap_source: str | None = None,
    asked_by: str | None = None,
) -> Eviction:
    # Ollama breaks a tie of keep-alives by the model's blob path, which /api/ps does not
    # show (its digest is the manifest's): with a tie, which one goes is a guess.
    tied = sorted(r.name for r in others if r.ka_ns == victim.ka_ns and r.busy == victim.busy)
    certain = not victim.estimated and not any(r.estimated for r in others) and not tied
    if cause == "max-loaded":
        limit = (
            f"the server keeps at most {max_loaded} models: "
            f"{cap_source or 'OLLAMA_MAX_LOADED_MODELS'}"
        )
        why = (
            f"Ollama keeps at most {max_loaded} models loaded "
            f"({cap_source or 'OLLAMA_MAX_LOADED_MODELS; --max-loaded to change'})"
        )
    else:
        assert memory is not None
        why = f"{new.name} ({human_bytes(new.size or 0)}) does not fit in {human_bytes(memory)}"
        limit = f"they do not fit in {human_bytes(memory)}"
    choice = (
        "the idle model with the shortest keep-alive"
        if not victim.busy
        else "the model with the shortest keep-alive, once its request ends"
    )
    verb = "will" if certain else "will probably"
    message = (
        f"loading {new.name} {verb} make Ollama evict {victim.name} ({victim.ka_words()}): "
        f"{why}, and it unloads {choice}"
    )
    if tied:
        message += (
            f" (or {', '.join(tied)}, with the same keep-alive: Ollama then picks by blob "
            "path, which /api/ps does not show)"
        )
    if victim.in_profile and asked_by:
        message += f"; {victim.name} is asked for by {asked_by} too: they cannot all stay loaded"
    elif victim.in_profile:
        message += f"; {victim.name} is in this profile, which cannot stay loaded as a whole"
    return Eviction(
        model=victim.name,
        by=new.name,
        cause=cause,
        in_profile=victim.in_profile,
        certain=certain,
        message=message,
        limit=limit,
    )


# -- the plan --------------------------------------------------------------------------------------


def make_plan(
    profile: Profile,
    snapshot: PsSnapshot,
    *,
    installed: Mapping[str, Installed] | None = None,
    training_contexts: Mapping[str, int] | None = None,
    exclusive: bool | None = None,
    max_loaded: int | None = DEFAULT_MAX_LOADED,
    memory: int | None = None,
    now: datetime | None = None,
    max_loaded_source: str | None = None,
    memory_source: str | None = None,
    max_loaded_label: str | None = None,
    asked_by: str | None = None,
) -> Plan:
    """Compare ``profile`` with ``snapshot`` and say what to do, model by model.

    ``installed`` is ``/api/tags`` (see :func:`installed_from_tags`): sizes and
    digests of models not loaded, and whether they exist at all; None: unknown.
    ``training_contexts`` maps a model (any spelling) to its training context from
    ``/api/show``, so that a ``num_ctx`` above it is not mistaken for a wrong
    context. ``exclusive`` None takes the profile's setting. ``max_loaded`` None
    or 0 and ``memory`` None skip those eviction checks; ``*_source`` say in words where
    they came from (``--max-loaded``, the server log ...), ``max_loaded_label`` the
    same in a few words, for the eviction messages. ``asked_by`` names a command whose
    models are planned as a profile (``pin a b c``), for the same messages.
    """
    when = now if now is not None else snapshot.taken_at
    excl = profile.exclusive if exclusive is None else exclusive
    tags = installed or {}
    contexts = {canonical_name(k): v for k, v in (training_contexts or {}).items()}

    unloads: list[Step] = []
    if excl:
        for m in snapshot.models:
            if profile.find(m.name) is None and profile.find(m.model) is None:
                unloads.append(
                    Step(
                        "unload",
                        m.name,
                        f'not in profile "{profile.name}" (exclusive)',
                        current=_state(m, when),
                        size=m.size or None,
                        installed=True,
                    )
                )
    steps: list[Step] = []
    for pm in profile.models:
        key = canonical_name(pm.name)
        steps.append(
            _assess(
                pm,
                profile.keep_alive_for(pm),
                snapshot.find(pm.name),
                when,
                contexts.get(key),
                tags.get(key),
                installed is not None,
                command=asked_by is not None,
            )
        )
    all_steps = [*unloads, *steps]
    label = max_loaded_label or max_loaded_source
    evictions = _predict(
        all_steps, snapshot, when, profile, tags, max_loaded, memory, label, asked_by
    )

    notes: list[str] = []
    if max_loaded and len(profile.models) > max_loaded:
        notes.append(
            f"{asked_by or 'the profile'} has {len(profile.models)} models but Ollama keeps "
            f"at most {max_loaded} loaded ({label or 'OLLAMA_MAX_LOADED_MODELS'}): "
            "they cannot all stay"
        )
    missing = [s.requested or s.model for s in steps if s.installed is False]
    if missing:
        notes.append(
            "not installed on this server: " + ", ".join(missing) + " (ollama pull them first)"
        )
    return Plan(
        profile=profile.name,
        exclusive=excl,
        steps=tuple(all_steps),
        evictions=tuple(evictions),
        max_loaded=max_loaded or None,
        memory=memory,
        notes=tuple(notes),
        max_loaded_source=max_loaded_source,
        memory_source=memory_source,
        max_loaded_label=label,
    )
