"""Prometheus metrics for ``watch`` and ``guard``: the state of every host, as text.

Pure: what the watchers saw (:class:`HostView`) and what the events counted
(:class:`Counters`) become the Prometheus text exposition format 0.0.4
(https://prometheus.io/docs/instrumenting/exposition_formats/), written here so
that no command pays for a client library's import; the HTTP side is
:mod:`ollama_resident.metrics_http`.

Names follow Prometheus's conventions (``ollama_resident_`` prefix, base units,
``_seconds``, ``_bytes``, ``_ratio``, counters ending in ``_total``). Every series
has a ``host`` label (the server as printed, never with credentials) and, for
models, a ``model`` label (the name ``/api/ps`` gives, e.g. ``llama3.2:latest``):

    ollama_resident_host_up{host}                     1 answering, 0 not
    ollama_resident_host_info{host,version}           1 (Ollama's version)
    ollama_resident_host_last_seen_timestamp_seconds  last answer, Unix time
    ollama_resident_polls_total{host}                 /api/ps answers read
    ollama_resident_model_loaded{host,model}          1 loaded; 0 guarded but gone
    ollama_resident_model_pinned{host,model}          1 kept forever (keep_alive < 0)
    ollama_resident_model_expires_in_seconds          until the keep-alive runs out
                                                      (+Inf pinned, <= 0 busy/stopping)
    ollama_resident_model_cpu_ratio                   share held in system memory
    ollama_resident_model_size_bytes, _vram_bytes     as /api/ps reports them
    ollama_resident_model_guarded{host,model,keep_alive}  1 for each model a guard keeps
    ollama_resident_unloads_total{host,model,reason}  unloads seen, by reason (expired,
                                                      stopped, evicted, reloaded, ...)
    ollama_resident_guard_repins_total{host,model}    keep-alives the guard re-asserted
    ollama_resident_guard_reloads_total{host,model,reason}  models the guard loaded again
    ollama_resident_guard_restore_failures_total{host,model}  failed restores, reported

Model series exist only while the host answers: a host that is down says so in
``host_up`` and nothing else is guessed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ollama_resident.models import PsSnapshot, canonical_name

if TYPE_CHECKING:
    from ollama_resident.events import Event

__all__ = [
    "CONTENT_TYPE",
    "Board",
    "Counters",
    "HostView",
    "escape_help",
    "escape_label",
    "exposition",
    "format_value",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "ollama_resident_"


@dataclass(frozen=True)
class HostView:
    """One host as the scrape sees it.

    ``host`` is the printable URL; ``snapshot`` the last ``/api/ps`` answer (ignored
    while ``up`` is false); ``guarded`` maps each model a guard keeps on this host
    (canonical name) to its keep-alive in words (``forever``, ``8h``).
    """

    host: str
    up: bool
    snapshot: PsSnapshot | None = None
    version: str | None = None
    polls: int = 0
    guarded: Mapping[str, str] = field(default_factory=dict)


def escape_label(value: str) -> str:
    r"""A label value for the text format: ``\``, ``"`` and line feeds escaped.

    >>> escape_label('a"b\\c\nd')
    'a\\"b\\\\c\\nd'
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    r"""HELP text: ``\`` and line feeds escaped (quotes stay as they are)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as Go's Prometheus client writes it.

    >>> [format_value(v) for v in (1, 0.25, float("inf"), float("-inf"), 3.0)]
    ['1', '0.25', '+Inf', '-Inf', '3']
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class Counters:
    """Event counts since the process started; safe to feed from several threads.

    Feed every batch of events with :meth:`count`; :meth:`expect` makes the guard's
    counters exist at zero for each guarded model, so that ``rate()`` and
    ``increase()`` see the first one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unloads: dict[tuple[str, str, str], int] = {}
        self._repins: dict[tuple[str, str], int] = {}
        self._reloads: dict[tuple[str, str, str], int] = {}
        self._failures: dict[tuple[str, str], int] = {}

    def expect(self, host: str, models: Iterable[str]) -> None:
        with self._lock:
            for model in models:
                key = (host, canonical_name(model))
                self._repins.setdefault(key, 0)
                self._failures.setdefault(key, 0)

    def count(self, events: Iterable[Event]) -> None:
        with self._lock:
            for e in events:
                if e.model is None:
                    continue
                reason = e.reason or "unknown"
                if e.event == "unloaded":
                    k3 = (e.host, e.model, reason)
                    self._unloads[k3] = self._unloads.get(k3, 0) + 1
                elif e.event == "reasserted":
                    k2 = (e.host, e.model)
                    self._repins[k2] = self._repins.get(k2, 0) + 1
                elif e.event == "restored":
                    k3 = (e.host, e.model, reason)
                    self._reloads[k3] = self._reloads.get(k3, 0) + 1
                elif e.event == "restore_failed":
                    k2 = (e.host, e.model)
                    self._failures[k2] = self._failures.get(k2, 0) + 1

    def values(
        self,
    ) -> tuple[
        dict[tuple[str, str, str], int],
        dict[tuple[str, str], int],
        dict[tuple[str, str, str], int],
        dict[tuple[str, str], int],
    ]:
        """Copies of (unloads, repins, reloads, restore failures), taken under the lock."""
        with self._lock:
            return (
                dict(self._unloads),
                dict(self._repins),
                dict(self._reloads),
                dict(self._failures),
            )


Labels = Sequence[tuple[str, str]]


class _Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = PREFIX + name
        self.kind = kind
        self.help = help_text
        self.samples: list[tuple[Labels, float]] = []

    def add(self, labels: Labels, value: float) -> None:
        self.samples.append((labels, value))

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in sorted(self.samples, key=lambda s: tuple(s[0])):
            text = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels)
            out.append(f"{self.name}{{{text}}} {format_value(value)}")
        return out


def exposition(views: Sequence[HostView], counters: Counters | None, now: datetime) -> str:
    """The whole ``/metrics`` page for ``views`` at ``now`` (aware datetime)."""
    up = _Family("host_up", "gauge", "1 if Ollama answered the last poll of /api/ps, else 0.")
    info = _Family("host_info", "gauge", "Ollama's version on the host (value always 1).")
    seen = _Family(
        "host_last_seen_timestamp_seconds",
        "gauge",
        "When Ollama last answered /api/ps, in seconds since the Unix epoch.",
    )
    polls = _Family("polls_total", "counter", "Answers from /api/ps read since start.")
    loaded = _Family(
        "model_loaded",
        "gauge",
        "1 if the model is loaded; 0 for a guarded model that is not (while the host answers).",
    )
    pinned = _Family(
        "model_pinned",
        "gauge",
        "1 if the model is kept loaded forever (keep_alive < 0), else 0.",
    )
    expires = _Family(
        "model_expires_in_seconds",
        "gauge",
        "Seconds until the model's keep-alive runs out: +Inf if pinned, 0 or less if it is "
        "past its deadline (busy with a request, or stopping).",
    )
    cpu = _Family(
        "model_cpu_ratio",
        "gauge",
        "Share of the model held in system memory rather than on the GPU (0 to 1).",
    )
    size = _Family("model_size_bytes", "gauge", "Memory the loaded model takes, in bytes.")
    vram = _Family("model_vram_bytes", "gauge", "Part of the model in GPU memory, in bytes.")
    guarded = _Family(
        "model_guarded",
        "gauge",
        "1 for each model a guard keeps resident, with the keep-alive it keeps.",
    )
    unloads = _Family(
        "unloads_total",
        "counter",
        "Unloads seen, by reason: expired, stopped, evicted, reloaded, server_restart, unknown.",
    )
    repins = _Family(
        "guard_repins_total",
        "counter",
        "Keep-alives the guard set again after another client changed them (a lost pin).",
    )
    reloads = _Family(
        "guard_reloads_total",
        "counter",
        "Models the guard loaded again, by why they had gone.",
    )
    failures = _Family(
        "guard_restore_failures_total",
        "counter",
        "Restores that failed, as reported (a repeated failure is reported once).",
    )

    for view in views:
        h = ("host", view.host)
        up.add([h], 1 if view.up else 0)
        polls.add([h], view.polls)
        if view.version:
            info.add([h, ("version", view.version)], 1)
        snap = view.snapshot
        if snap is not None:
            seen.add([h], snap.taken_at.timestamp())
        for model, keep in view.guarded.items():
            guarded.add([h, ("keep_alive", keep), ("model", model)], 1)
        if not view.up or snap is None:
            continue
        present = set()
        for m in snap.models:
            labels = [h, ("model", m.name)]
            present.add(canonical_name(m.name))
            loaded.add(labels, 1)
            is_pinned = m.is_pinned(now)
            pinned.add(labels, 1 if is_pinned else 0)
            remaining = m.expires_in(now)
            if is_pinned:
                expires.add(labels, math.inf)
            elif remaining is not None:
                expires.add(labels, round(remaining, 3))
            cpu.add(labels, round(m.on_cpu_fraction, 4))
            size.add(labels, m.size)
            vram.add(labels, m.size_vram)
        for model in view.guarded:
            if model not in present:
                labels = [h, ("model", model)]
                loaded.add(labels, 0)
                pinned.add(labels, 0)

    if counters is not None:
        u, r, rl, f = counters.values()
        for (host, model, reason), n in u.items():
            unloads.add([("host", host), ("model", model), ("reason", reason)], n)
        for (host, model), n in r.items():
            repins.add([("host", host), ("model", model)], n)
        for (host, model, reason), n in rl.items():
            reloads.add([("host", host), ("model", model), ("reason", reason)], n)
        for (host, model), n in f.items():
            failures.add([("host", host), ("model", model)], n)

    families = [
        up,
        info,
        seen,
        polls,
        loaded,
        pinned,
        expires,
        cpu,
        size,
        vram,
        guarded,
        unloads,
        repins,
        reloads,
        failures,
    ]
    lines: list[str] = []
    for family in families:
        lines.extend(family.lines())
    return "\n".join(lines) + "\n"


class Watched(Protocol):
    """What a scrape reads from a :class:`~ollama_resident.watcher.Watcher`."""

    host: str
    up: bool
    snapshot: PsSnapshot | None
    version: str | None
    polls: int


class Board:
    """The watchers a ``/metrics`` page reads, and the counters their events feed.

    Watchers keep polling in their own threads; each scrape reads their latest
    state (one attribute read each, so no lock is needed) and renders it.
    """

    def __init__(self) -> None:
        self.counters = Counters()
        self._sources: list[tuple[Watched, dict[str, str]]] = []

    def add(self, watched: Watched, guarded: Mapping[str, str] | None = None) -> None:
        """Show ``watched``; ``guarded`` maps the models a guard keeps there to keep-alives."""
        kept = {canonical_name(m): k for m, k in (guarded or {}).items()}
        self._sources.append((watched, kept))
        self.counters.expect(watched.host, kept)

    def count(self, events: Iterable[Event]) -> None:
        self.counters.count(events)

    def views(self) -> list[HostView]:
        out = []
        for w, guarded in self._sources:
            snap = w.snapshot
            out.append(
                HostView(
                    host=w.host,
                    up=w.up and snap is not None,
                    snapshot=snap,
                    version=w.version,
                    polls=w.polls,
                    guarded=guarded,
                )
            )
        return out

    def render(self, now: datetime | None = None) -> str:
        from datetime import timezone

        return exposition(self.views(), self.counters, now or datetime.now(timezone.utc))
