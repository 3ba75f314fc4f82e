"""The scheduler, after Go's ``server/sched.go``: runners, keep_alive timers, request finishes,
eviction (shortest configured keep_alive first), reloads when load options change, and the
one-load-at-a-time queue.

Every change of residency state happens in ``SchedulerMixin`` under ``FakeOllama._cond``, in
these methods: ``_load`` (a load starts, then completes or fails), ``_expire`` (a runner
starts unloading), ``_remove`` (an unload completes, runner gone), ``_start_timer`` /
``_stop_timer`` / ``_timer_fired`` (keep_alive timers), ``_finish`` (a request ended),
``_use_loaded`` (a request reuses a runner) and, for evictions and reloads,
``_process_pending``. Timed work runs on one thread (``_reaper_loop``) through ``_schedule``.
"""

from __future__ import annotations

import heapq
import select
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .durations import _NEVER_NS, _U64, NS_PER_SECOND
from .models import FakeModel

if TYPE_CHECKING:
    from .server import _Handler


@dataclass(eq=False)
class _Runner:
    model: FakeModel
    epoch: int
    duration: int
    load_opts: dict[str, Any]
    context_length: int
    size: int
    size_vram: int
    state: str = "loading"
    refcount: int = 1
    expires_at: int | None = None
    timer_token: int = 0
    expire_pending: bool = False

    @property
    def key(self) -> str:
        """Runners are keyed by the model file, as Go keys them by model path: every name of
        one file (``ollama cp``) shares one runner, listed under the name it loaded with."""
        return self.model.runner_key


class _Canceled(Exception):
    """The client went away or the server stopped: there is nobody left to answer."""


class _ScheduleError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Ctx:
    """Per-request view of the server generation it arrived in."""

    epoch: int
    stop: threading.Event
    load_lock: threading.Lock
    sock: socket.socket | None = None

    def cancelled(self) -> bool:
        return self.stop.is_set() or (self.sock is not None and _peer_closed(self.sock))


def _peer_closed(sock: socket.socket) -> bool:
    """True once the client closed its end (what makes Go cancel the request context)."""
    dontwait = getattr(socket, "MSG_DONTWAIT", None)
    try:
        if dontwait is None:  # Windows: ask select first so that recv cannot block
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
        data = sock.recv(1, socket.MSG_PEEK | (dontwait or 0))
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):
        return True
    return data == b""


_INT_OPTIONS = {
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "num_predict",
    "num_keep",
    "seed",
    "top_k",
    "repeat_last_n",
}
_FLOAT_OPTIONS = {
    "temperature",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
}
_BOOL_OPTIONS = {"use_mmap", "numa", "penalize_newline"}


class SchedulerMixin:
    """Go's scheduler as part of ``FakeOllama`` (state is created in ``FakeOllama.__init__``)."""

    def _schedule(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._events, (time.monotonic() + delay, next(self._seq), fn))
        self._cond.notify_all()

    def _reaper_loop(self, epoch: int, stop: threading.Event) -> None:
        """Runs timers, request-finished events and unload completions (Go's processCompleted)."""
        with self._cond:
            while self._epoch == epoch and not stop.is_set():
                events = self._events
                now = time.monotonic()
                if events and events[0][0] <= now:
                    _, _, fn = heapq.heappop(events)
                    try:
                        fn()
                    except Exception:  # a bug in the fake must not kill the scheduler
                        traceback.print_exc()
                    self._cond.notify_all()
                    continue
                timeout = min(events[0][0] - now, 0.5) if events else 0.5
                self._cond.wait(timeout)

    def _check_epoch(self, ctx: _Ctx) -> None:
        if ctx.epoch != self._epoch:
            raise _Canceled()

    def _stop_timer(self, r: _Runner) -> None:
        r.timer_token += 1

    def _start_timer(self, r: _Runner) -> None:
        r.timer_token += 1
        token = r.timer_token
        if 0 < r.duration < _NEVER_NS:
            self._schedule(r.duration / NS_PER_SECOND, lambda: self._timer_fired(r, token))

    def _timer_fired(self, r: _Runner, token: int) -> None:
        if r.epoch != self._epoch or r.timer_token != token:
            return
        r.timer_token += 1
        if self._log is not None:
            self._log.timer_expired(r)
        self._expire(r)

    def _use_loaded(self, r: _Runner, keep_alive: int | None) -> None:
        """Go ``useLoadedRunner``: in use, timer stopped, duration replaced only if given."""
        r.refcount += 1
        self._stop_timer(r)
        if keep_alive is not None:
            r.duration = keep_alive

    def _finish(self, r: _Runner) -> None:
        """A request's context ended (Go's finishedReqCh handler)."""
        if r.epoch != self._epoch or self._runners.get(r.key) is not r:
            return
        r.refcount -= 1
        if r.refcount > 0:
            return
        if r.duration <= 0:
            self._stop_timer(r)
            if self._log is not None:
                self._log.zero_duration(r)
            self._expire(r)
        else:
            self._start_timer(r)
            if self._log is not None:
                self._log.timer(r)
            r.expires_at = time.time_ns() + r.duration
            if r.expire_pending:
                self._expire(r)

    def _expire(self, r: _Runner) -> None:
        """Go's expiredCh handler: unload once idle; the entry goes after ``unload_delay``."""
        if r.state == "unloading":
            return
        if r.refcount > 0:
            r.expire_pending = True
            return
        r.state = "unloading"
        self._stop_timer(r)
        if self._log is not None:
            self._log.expire(r)
        if self.unload_delay <= 0:  # gone at once: no client can see it "unloading"
            self._remove(r)
        else:
            self._schedule(self.unload_delay, lambda: self._remove(r))

    def _remove(self, r: _Runner) -> None:
        if self._runners.get(r.key) is r:
            del self._runners[r.key]
            self._unload_seq += 1
            if self._log is not None:
                self._log.removed(r)

    def _expire_runner(self, ctx: _Ctx, m: FakeModel) -> None:
        """Go ``expireRunner`` (the keep_alive 0 shortcut)."""
        with self._cond:
            self._check_epoch(ctx)
            self._flush_finishes()
            r = self._runners.get(m.runner_key)
            while r is not None and r.state == "loading":
                # a listed loading runner holds its lock until ready (older engines / MLX)
                self._cond.wait(0.05)
                self._check_epoch(ctx)
                r = self._runners.get(m.runner_key)
            if r is None:
                return
            r.expires_at = time.time_ns()
            self._stop_timer(r)
            r.duration = 0
            if r.refcount <= 0:
                self._expire(r)

    def _needs_reload(self, r: _Runner, opts: dict[str, Any]) -> bool:
        old = r.load_opts
        if old["num_ctx"] != opts["num_ctx"]:
            return True
        new_gpu = opts["num_gpu"]
        if new_gpu is not None and new_gpu >= 0 and new_gpu != old["num_gpu"]:
            return True
        return any(old[k] != opts[k] for k in ("num_batch", "main_gpu", "use_mmap", "num_thread"))

    def _find_runner_to_unload(self) -> _Runner:
        """Go ``findRunnerToUnload``: shortest configured keep_alive first (unsigned, so forever
        and negatives last), ties by digest; the first idle one, else the first."""
        candidates = sorted(
            self._runners.values(), key=lambda r: (r.duration % _U64, r.model.digest)
        )
        for r in candidates:
            if r.refcount <= 0 and r.state == "ready":
                return r
        return candidates[0]

    def _over_capacity(self, m: FakeModel) -> bool:
        runners = self._runners
        if not runners:
            return False
        if self.max_loaded > 0 and len(runners) >= self.max_loaded:
            return True
        if self.memory_budget is not None:
            return sum(r.size for r in runners.values()) + m.size > self.memory_budget
        return False

    def _get_runner(
        self, ctx: _Ctx, m: FakeModel, keep_alive: int | None, opts: dict[str, Any]
    ) -> _Runner:
        with self._cond:
            self._check_epoch(ctx)
            self._flush_finishes()
            r = self._runners.get(m.runner_key)
            if r is not None and r.state == "ready" and not self._needs_reload(r, opts):
                self._use_loaded(r, keep_alive)
                return r
            self._pending += 1
        try:
            return self._process_pending(ctx, m, keep_alive, opts)
        finally:
            with self._cond:
                if ctx.epoch == self._epoch:
                    self._pending -= 1
                self._cond.notify_all()

    def _process_pending(
        self, ctx: _Ctx, m: FakeModel, keep_alive: int | None, opts: dict[str, Any]
    ) -> _Runner:
        """Go ``processPending`` for one request: one at a time, evict until it fits, load."""
        lock = ctx.load_lock
        while not lock.acquire(timeout=0.01):
            if ctx.stop.is_set():
                raise _Canceled()
        try:
            if ctx.cancelled():  # Go skips a queued request whose context is done
                raise _Canceled()
            while True:
                with self._cond:
                    self._check_epoch(ctx)
                    self._flush_finishes()
                    r = self._runners.get(m.runner_key)
                    victim: _Runner | None = None
                    wait = False
                    if r is not None:
                        if r.state == "ready" and not self._needs_reload(r, opts):
                            self._use_loaded(r, keep_alive)
                            return r
                        if r.state == "ready":
                            victim = r  # options changed: reload
                        else:
                            wait = True
                    elif self._over_capacity(m):
                        if any(x.state == "unloading" for x in self._runners.values()):
                            wait = True  # an unload already under way frees the room
                        else:
                            victim = self._find_runner_to_unload()
                    if victim is None and not wait:
                        break
                    seq = self._unload_seq
                    if victim is not None and self._log is not None:
                        if victim is r:
                            self._log.reloading(victim)
                        else:
                            n = len(self._runners)
                            self._log.evicting(
                                victim, n, self.max_loaded > 0 and n >= self.max_loaded
                            )
                    if victim is not None:
                        # expires_at stays as it is: a pinned victim keeps showing its far date
                        self._stop_timer(victim)
                        victim.duration = 0
                        if victim.refcount <= 0:
                            self._expire(victim)
                    while self._unload_seq == seq:
                        self._check_epoch(ctx)
                        self._cond.wait(0.05)
            if ctx.cancelled():
                raise _Canceled()
            return self._load(ctx, m, keep_alive, opts)
        finally:
            lock.release()

    def _load(
        self, ctx: _Ctx, m: FakeModel, keep_alive: int | None, opts: dict[str, Any]
    ) -> _Runner:
        with self._cond:
            self._check_epoch(ctx)
            used_vram = sum(r.size_vram for r in self._runners.values())
            free_vram = max(0, self.gpu_memory - used_vram)
            runner = _Runner(
                model=m,
                epoch=ctx.epoch,
                duration=self.default_keep_alive_ns if keep_alive is None else keep_alive,
                load_opts=dict(opts),
                context_length=min(opts["num_ctx"], m.context_length),
                size=m.size,
                size_vram=0 if opts["num_gpu"] == 0 else min(m.size, free_vram),
            )
            if self._log is not None:
                used = sum(r.size for r in self._runners.values())
                self._log.load_started(runner, first=not self._runners, used=used)
            if self.list_loading:
                self._runners[m.runner_key] = runner
            self._loading.append(m.short_name)
            delay = self._load_delays.get(m.key, self.load_delay)
        ok = False
        try:
            deadline = time.monotonic() + delay
            while True:
                if ctx.cancelled():  # "client connection closed before ... aborting load"
                    raise _Canceled()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                ctx.stop.wait(min(remaining, 0.005))
            self._wait_released(ctx, self._held_loads, m)  # hold_loads()
            with self._cond:
                self._check_epoch(ctx)
                fault = self._fail_load.get(m.key)
                if fault is not None:
                    raise _ScheduleError(*fault)
                runner.state = "ready"
                self._runners[m.runner_key] = runner
                self.load_history.append(m.short_name)
                if self._log is not None:
                    self._log.load_done(runner, delay, len(self._runners))
                ok = True
                return runner
        finally:
            with self._cond:
                if ctx.epoch == self._epoch:
                    if m.short_name in self._loading:
                        self._loading.remove(m.short_name)
                    if not ok and self._runners.get(m.runner_key) is runner:
                        del self._runners[m.runner_key]
                        self._unload_seq += 1
                self._cond.notify_all()

    def _register_finish(self, r: _Runner) -> None:
        """The request holding ``r`` has been answered: its context ends ``finish_delay``
        later (Go updates expires_at just after answering)."""
        with self._cond:
            if r.epoch != self._epoch:
                return
            token = next(self._seq)
            self._finishes[token] = r

            def fire() -> None:
                if self._finishes.pop(token, None) is not None:
                    self._finish(r)

            self._schedule(self.finish_delay, fire)

    def _flush_finishes(self) -> None:
        """Process the finish of every request already answered. Go handles that event within
        microseconds, long before a client's next request reaches the scheduler, so scheduling
        decisions must not see those requests as still running."""
        while self._finishes:
            token = next(iter(self._finishes))
            self._finish(self._finishes.pop(token))

    def _mark_answered(self, h: _Handler) -> None:
        """Called just before a request's last bytes go out, so that no client can see the
        answer before the finish is registered (``wait_idle`` relies on it)."""
        r = h.fake_runner
        if r is not None and not h.fake_answered:
            h.fake_answered = True
            self._register_finish(r)

    def _schedule_finish(self, ctx: _Ctx, h: _Handler) -> None:
        """The handler returned: make sure its request finishes (error paths included)."""
        r, answered = h.fake_runner, h.fake_answered
        h.fake_runner, h.fake_answered = None, False
        if r is not None and not answered and ctx.epoch == r.epoch:
            self._register_finish(r)

    def _parse_options(self, raw: dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
        """``api.Options.FromMap`` for the options that matter here; unknown keys are ignored."""
        values: dict[str, Any] = {}
        for key, val in (raw or {}).items():
            if val is None:
                continue
            if key in _INT_OPTIONS:
                if isinstance(val, bool) or not isinstance(val, (int, float)):
                    return {}, f'option "{key}" must be of type integer'
                values[key] = int(val)
            elif key in _FLOAT_OPTIONS:
                if isinstance(val, bool) or not isinstance(val, (int, float)):
                    return {}, f'option "{key}" must be of type float32'
                values[key] = float(val)
            elif key in _BOOL_OPTIONS:
                if not isinstance(val, bool):
                    return {}, f'option "{key}" must be of type boolean'
                values[key] = val
        num_ctx = values.get("num_ctx", self.default_num_ctx)
        return {
            "num_ctx": max(num_ctx, 4),
            "num_batch": values.get("num_batch"),
            "num_gpu": values.get("num_gpu"),
            "main_gpu": values.get("main_gpu", 0),
            "use_mmap": values.get("use_mmap"),
            "num_thread": values.get("num_thread", 0),
            "num_predict": values.get("num_predict", 16),
        }, None
