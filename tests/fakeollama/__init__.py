"""A loopback fake of the Ollama HTTP API that keeps Ollama's residency rules.

Standard library only, so it also runs standalone (manual runs, benchmarks)::

    python tests/fakeollama --port 11434 --max-loaded 3 --preload tiny:-1 --preload tiny2:5m

It copies what real Ollama does where a residency tool can see it: keep_alive parsing (a re-made
Go ``time.ParseDuration``), JSON shapes and key order, status codes, Content-Type headers and
error texts (taken from exchanges with a real Ollama 0.24.0), and the scheduler: one load at a
time, keep_alive applied per request, expiry timers that start when a request ends, asynchronous
unloads, eviction by "shortest configured keep_alive first" (pins are NOT protected), reloads when
``num_ctx`` changes (which lose the pin), partial GPU offload, and aborting a load whose client
went away. All times are integer nanoseconds (``time.time_ns()``).

Public API
==========

``FakeModel(name, family="llama", capabilities=("completion",), context_length=512,
size=675_328, file_size=506_922, digest=<sha256 of the name>, parameter_size="124K",
quantization_level="unknown", format="gguf", embedding_length=64)``
    An installed model. ``size`` is the runtime size shown by ``/api/ps``; ``file_size`` the size
    in ``/api/tags``. ``short_name`` gives the canonical display name (``tiny:latest``).

``DEFAULT_MODELS``
    tiny, tiny2, tiny3 (llama, context 512), tiny-embed (bert, embedding only), llama3.2:latest
    (context 131072, ~3.4 GB), qwen2.5:14b (context 32768, ~10 GB), nomic-embed-text:latest
    (nomic-bert, embedding only), myns/coder:7b. The tiny models carry the digests and sizes of
    the real transcripts.

``FakeOllama(models=None, *, max_loaded=3, memory_budget=None, gpu_memory=0,
default_keep_alive="5m", default_num_ctx=4096, load_delay=0.05, unload_delay=0.02,
finish_delay=0.005, token_delay=0.002, version="0.24.0", utc_offset_minutes=0,
list_loading=False, ps_supported=True, host="127.0.0.1", port=0, clock_offset_s=0.0,
latency=0.0)``

    ``clock_offset_s`` moves the HTTP ``Date`` header (the server's clock) against this
    machine's, as on a host whose clock is off. ``latency`` (seconds) delays every answer, as
    a distant server would (benchmarks).

    Delays are seconds. ``unload_delay=0`` removes an unloaded runner in the same step (no
    client can see it "unloading"); a test that must see a state should use the holds below.

    Lifecycle
        ``start() -> FakeOllama``, ``stop()``, ``restart(*, down_for=0.0)`` (same port), context
        manager; ``url`` (``"http://127.0.0.1:PORT"``), ``host``, ``port``, ``running``.
        ``stop()`` closes the listener (connection refused) and every open connection and drops
        every runner, as a real server restart does. ``reset()`` drops runners, faults, recorded
        requests and ``load_history`` while the server keeps running (for session fixtures).
    Observation
        ``requests: list[RecordedRequest]`` (method, path, json, time, query, body, headers) for
        every request received; ``clear_requests()``; ``requests_to(path, method=None)``.
        ``loaded() -> list[dict]``: snapshot of registered runners with keys name, model, digest,
        keep_alive_ns, expires_at (ns or None while the first request is in flight), in_use,
        num_ctx (requested), context_length, size, size_vram, state ("loading" | "ready" |
        "unloading"). ``loading() -> list[str]``: models whose load is in progress.
        ``load_history: list[str]``: short names of completed loads, in order.
        ``wait_idle(timeout=5)``: block until no request is queued for a load, no load or unload
        is in progress and every answered request has been accounted as finished; raises
        ``TimeoutError``.
    Set-up helpers
        ``preload(model, keep_alive=None, *, num_ctx=None, options=None)`` loads a model as a
        request would (blocking, honours eviction and load_delay), then ends that request.
        ``models`` lists the installed FakeModels.
        ``add_model(model)``, ``remove_model(name)`` change the installed list (a loaded model
        stays loaded, as with ``DELETE /api/delete``). ``copy_model(source, destination)`` is
        ``ollama cp``: one file, two names, one runner (keyed by the file, as in Go).
        Attributes such as ``max_loaded``,
        ``memory_budget``, ``gpu_memory``, ``token_delay``, ``list_loading`` may be changed at any
        time; ``set_default_keep_alive(value)`` re-parses like ``OLLAMA_KEEP_ALIVE``.
    Older servers
        ``show_capabilities = False``: ``/api/show`` has no ``capabilities`` (before 0.6.4).
        ``embed_supported = False``: no ``/api/embed``, only ``/api/embeddings`` (before
        0.2.6). ``ps_supported = False``: no ``/api/ps`` (before 0.1.38).
    Faults
        ``fail_next(path, status, error, times=1)``: the next N requests to path answer
        ``status`` with ``{"error": error}``.
        ``fail_load(model, error=..., status=500)``: every load of that model fails (after the
        load delay, nothing stays registered) until ``clear_faults()``.
        ``hang_next(path, seconds)``: the next request to path sleeps before it is handled.
        ``stream_error_next(error)``: the next streaming generate/chat sends one chunk, then an
        ``{"error": ...}`` line, with status 200.
        ``set_load_delay(seconds, model=None)``: global or per model. ``clear_faults()`` removes
        every fault (per-model load delays and holds included).
        ``reply_next(path, body, *, status=200, content_type=json, times=1)``: the next N
        requests to path get this raw answer (``times=0``: until ``clear_faults()``).
        ``not_ollama_next(path, kind, *, times=1)``: a reply from something else: ``kind`` is
        a key of ``NOT_OLLAMA`` (``html-502`` nginx's Bad Gateway page, ``plain-text``,
        ``empty``, ``truncated-json``, ``wrong-shape`` ``{"models":"oops"}``).
        ``mute = True``: every request is read and never answered until the client leaves.
    Holds (wait on events, not on time)
        ``hold_loads(model=None)`` / ``release_loads(model=None)``: loads of that model (every
        model if None) stay in progress until released; a client that goes away still aborts.
        ``hold_requests(model=None)`` / ``release_requests(model=None)``: a request that got a
        runner of that model keeps it busy (``in_use``) and answers nothing until released.
        Typical use: ``hold_loads()``, start the client, ``wait_until(lambda: fake.loading())``,
        check what must be true during the load, ``release_loads()``.
        ``hold_path(path)`` / ``release_path(path=None)``: any request to that path (``/api/ps``)
        waits, before it is handled, until released: a server that has stopped answering;
        ``waiting_on(path)`` counts the requests waiting there.

Module helpers: ``parse_go_duration(s) -> int`` (ns; raises ``GoDurationError`` with Go's exact
text), ``keep_alive_from_json(value) -> int | None`` (the request field, as Ollama decodes it),
``env_keep_alive(value) -> int`` (``OLLAMA_KEEP_ALIVE`` rules), ``format_go_time(ns,
utc_offset_minutes=0)`` (RFC 3339 with nanoseconds like Go), ``parse_go_time(s) -> int``,
``canonical_name(s) -> str``, ``MAX_DURATION`` (forever = 2**63 - 1 ns), ``MIN_DURATION`` (what
an overflowing keep_alive number becomes), ``DEFAULT_LOAD_ERROR`` (``fail_load``'s text),
``main(argv)``.

Endpoints: ``GET|HEAD /``, ``GET|HEAD /api/version``, ``GET|HEAD /api/tags``, ``POST /api/show``,
``GET /api/ps``, ``POST /api/generate``, ``POST /api/chat``, ``POST /api/embed``,
``POST /api/embeddings``, ``DELETE /api/delete``, ``POST /v1/chat/completions`` (never carries a
keep_alive). Other paths answer gin's plain-text ``404 page not found``; a wrong method on a
known path answers ``405 method not allowed`` with an ``Allow`` header. On a loopback listener a
foreign ``Host`` header gets 403 with an empty body (``allowedHostsMiddleware``).

Deliberate simplifications (where the fake knowingly differs from Go):

- A request "finishes" ``finish_delay`` after its answer, which ``/api/ps`` can observe; but a
  later request's scheduling first processes the finish of every already-answered request, as
  Go does within microseconds, so back-to-back clients never see a stale "busy" runner.
- ``/api/show`` 404 echoes the name as sent (``model 'x' not found``), as real 0.24.0 does
  (transcript 27c) and current source does; the contract's ":latest" form was not reproduced.
- Ties in ``/api/ps`` order (same expiry second) keep registration order (Go: map order).
  Eviction ties break on the manifest digest (Go: blob path, effectively the same).
- ``memory_budget`` is a plain sum of runtime sizes; Go's 80 % GPU pre-flight estimate, OOM
  retries, health pings, num_parallel, the 512-request queue (503) and MLX loading are not
  modelled. Load-time options compared for reloads: num_ctx, num_batch, num_gpu (unless the new
  one is negative/absent), main_gpu, use_mmap, num_thread; ``num_gpu: 0`` means CPU only.
- Only ``think`` and ``tools`` capability checks exist besides completion; generated text,
  token counts, embeddings and the OpenAI-compatible shapes are stand-ins.

Where things are
================

``__init__.py``   the ``FakeOllama`` facade: construction, lifecycle, observation, ``preload``
``durations.py``  Go durations and times (``keep_alive``, ``OLLAMA_KEEP_ALIVE``, RFC 3339)
``names.py``      model names (``types/model/name.go``)
``gojson.py``     Go's JSON output and its decoding/binding error texts
``models.py``     ``FakeModel`` and ``DEFAULT_MODELS``
``scheduler.py``  runners, keep_alive timers, eviction, reloads (``server/sched.go``); its
                  docstring lists the methods where every residency change happens, the place to
                  hook anything that must observe loads, unloads and timers (e.g. a server log)
``faults.py``     injected faults
``holds.py``      holds: a load or a request ends when the test releases it
``routes.py``     dispatch, route table, Host check, writing answers and streams
``handlers.py``   one method per endpoint
``server.py``     the threaded HTTP server and request handler
``standalone.py`` the command line (``python tests/fakeollama``)
"""

from __future__ import annotations

import dataclasses
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .durations import (
    MAX_DURATION,
    MIN_DURATION,
    NS_PER_SECOND,
    GoDurationError,
    env_keep_alive,
    format_go_time,
    keep_alive_from_json,
    parse_go_duration,
    parse_go_time,
)
from .faults import DEFAULT_LOAD_ERROR, NGINX_502, NOT_OLLAMA, FaultsMixin
from .handlers import EndpointsMixin
from .holds import HoldsMixin
from .models import DEFAULT_MODELS, FakeModel
from .names import _parse_name, canonical_name
from .routes import RecordedRequest, RoutingMixin
from .scheduler import SchedulerMixin, _Ctx, _Runner, _ScheduleError
from .server import _Handler, _HTTPServer
from .serverlog import FakeServerLog

__all__ = [
    "DEFAULT_LOAD_ERROR",
    "DEFAULT_MODELS",
    "MAX_DURATION",
    "MIN_DURATION",
    "NGINX_502",
    "NOT_OLLAMA",
    "FakeModel",
    "FakeOllama",
    "GoDurationError",
    "RecordedRequest",
    "canonical_name",
    "env_keep_alive",
    "format_go_time",
    "keep_alive_from_json",
    "main",
    "parse_go_duration",
    "parse_go_time",
]


class FakeOllama(SchedulerMixin, FaultsMixin, HoldsMixin, RoutingMixin, EndpointsMixin):
    """A fake Ollama server on a loopback port; see the module docstring for the API."""

    def __init__(
        self,
        models: Iterable[FakeModel | str] | None = None,
        *,
        max_loaded: int = 3,
        memory_budget: int | None = None,
        gpu_memory: int = 0,
        default_keep_alive: str | float | None = "5m",
        default_num_ctx: int = 4096,
        load_delay: float = 0.05,
        unload_delay: float = 0.02,
        finish_delay: float = 0.005,
        token_delay: float = 0.002,
        version: str = "0.24.0",
        utc_offset_minutes: int = 0,
        list_loading: bool = False,
        ps_supported: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        clock_offset_s: float = 0.0,
        log_path: str | None = None,
        log_debug: bool = False,
        latency: float = 0.0,
    ) -> None:
        self.max_loaded = max_loaded
        self.latency = latency
        self.memory_budget = memory_budget
        self.gpu_memory = gpu_memory
        self.default_keep_alive_ns = env_keep_alive(default_keep_alive)
        self.default_num_ctx = default_num_ctx
        self.load_delay = load_delay
        self.unload_delay = unload_delay
        self.finish_delay = finish_delay
        self.token_delay = token_delay
        self.version = version
        self.utc_offset_minutes = utc_offset_minutes
        self.list_loading = list_loading
        self.ps_supported = ps_supported
        # Older servers: no `capabilities` in /api/show (before 0.6.4), no /api/embed
        # (before 0.2.6, only /api/embeddings). Attributes, changeable at any time.
        self.show_capabilities = True
        self.embed_supported = True
        self.clock_offset_s = clock_offset_s
        self.host = host
        self.port = port

        self._cond = threading.Condition(threading.RLock())
        self._models: dict[tuple[str, str, str, str], FakeModel] = {}
        self._modified_at: dict[tuple[str, str, str, str], int] = {}
        self._created_ns = time.time_ns()
        for m in DEFAULT_MODELS if models is None else models:
            self.add_model(m)

        self.requests: list[RecordedRequest] = []
        self.load_history: list[str] = []

        self._epoch = 0
        self._runners: dict[str, _Runner] = {}
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._unload_seq = 0
        self._pending = 0
        self._loading: list[str] = []
        self._finishes: dict[int, _Runner] = {}
        self._stop_event = threading.Event()
        self._stop_event.set()
        self._load_lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []

        self._fail_next: list[list[Any]] = []
        self._fail_load: dict[tuple[str, str, str, str], tuple[int, str]] = {}
        self._hang_next: list[tuple[str, float]] = []
        self._held_paths: set[str] = set()
        self._waiting: dict[str, int] = {}
        self._stream_errors: list[str] = []
        self._load_delays: dict[tuple[str, str, str, str], float] = {}
        self._held_loads: set[tuple[str, str, str, str] | None] = set()
        self._held_requests: set[tuple[str, str, str, str] | None] = set()
        self._replies: list[list[Any]] = []
        self.mute = False  # accept every request and never answer it
        # Ollama's own server log (serverlog.py), written only when asked for.
        self.log_path = log_path
        self._log: FakeServerLog | None = (
            FakeServerLog(log_path, debug=log_debug, utc_offset_minutes=utc_offset_minutes)
            if log_path
            else None
        )

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> FakeOllama:
        """Bind (port 0 picks a free port, kept across restarts) and serve in a thread."""
        if self._httpd is not None:
            raise RuntimeError("FakeOllama is already running")
        httpd = self._bind()
        self.port = httpd.server_address[1]
        with self._cond:
            self._epoch += 1
            self._reset_state_locked()
            self._stop_event = threading.Event()
            self._load_lock = threading.Lock()
            epoch, stop = self._epoch, self._stop_event
        self._httpd = httpd
        serve = threading.Thread(
            target=httpd.serve,
            name=f"fakeollama-http-{self.port}",
            daemon=True,
        )
        reaper = threading.Thread(
            target=self._reaper_loop,
            args=(epoch, stop),
            name=f"fakeollama-sched-{self.port}",
            daemon=True,
        )
        self._threads = [serve, reaper]
        if self._log is not None:
            self._log.started(self)
        serve.start()
        reaper.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection; every runner is gone (nothing persists)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._httpd = None
        with self._cond:
            if self._log is not None:
                self._log.stopping([r for r in self._runners.values() if r.state != "loading"])
            self._epoch += 1
            self._reset_state_locked()
            self._stop_event.set()
            self._cond.notify_all()
        httpd.stop_serving()
        httpd.server_close()
        httpd.close_all_connections()
        for t in self._threads:
            t.join(timeout=2)
        self._threads = []

    def restart(self, *, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds (connection refused), start on the same port."""
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        self.start()

    def reset(self) -> None:
        """Drop every runner, fault, recorded request and the load history; keep serving."""
        with self._cond:
            self._epoch += 1
            self._reset_state_locked()
            self._stop_event.set()
            self._stop_event = threading.Event()
            self._load_lock = threading.Lock()
            epoch, stop = self._epoch, self._stop_event
            self.requests.clear()
            self.load_history.clear()
            self._clear_faults_locked()
            self._cond.notify_all()
        if self._httpd is not None:
            reaper = threading.Thread(
                target=self._reaper_loop,
                args=(epoch, stop),
                name=f"fakeollama-sched-{self.port}",
                daemon=True,
            )
            self._threads = [t for t in self._threads if t.is_alive()] + [reaper]
            reaper.start()

    def __enter__(self) -> FakeOllama:
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> _HTTPServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        deadline = time.monotonic() + 3
        while True:
            try:
                return _HTTPServer((self.host, self.port), _Handler, self, family)
            except OSError as exc:
                # a restart right after stop() can race the old socket's teardown
                if self.port == 0 or time.monotonic() > deadline or exc.errno not in (98, 48):
                    raise
                time.sleep(0.02)

    def _reset_state_locked(self) -> None:
        self._runners = {}
        self._events = []
        self._pending = 0
        self._loading = []
        self._finishes = {}

    # ---------------------------------------------------------------- models

    def add_model(self, model: FakeModel | str) -> FakeModel:
        """Install a model (a name gets the FakeModel defaults); returns the stored copy."""
        m = FakeModel(model) if isinstance(model, str) else dataclasses.replace(model)
        with self._cond:
            if m.key not in self._modified_at:
                # distinct seconds, newest first in list order (tags sort by modified_at)
                self._modified_at[m.key] = self._created_ns - len(self._modified_at) * NS_PER_SECOND
            self._models[m.key] = m
        return m

    def copy_model(self, source: str, destination: str) -> FakeModel:
        """``ollama cp SOURCE DESTINATION``: a second name for the same model file (same
        digest), served by the same runner."""
        m = dataclasses.replace(self._model(source), name=destination)
        return self.add_model(m)

    def remove_model(self, name: str) -> None:
        """Uninstall a model; a loaded runner of it stays loaded (like the delete API)."""
        with self._cond:
            self._models.pop(_parse_name(name).key(), None)

    @property
    def models(self) -> list[FakeModel]:
        with self._cond:
            return list(self._models.values())

    def _model(self, name: str) -> FakeModel:
        parsed = _parse_name(name)
        if not parsed.valid():
            raise ValueError(f"invalid model name: {name!r}")
        with self._cond:
            m = self._models.get(parsed.key())
        if m is None:
            raise KeyError(f"model {name!r} is not installed in the fake")
        return m

    # ---------------------------------------------------------------- observation

    def clear_requests(self) -> None:
        with self._cond:
            self.requests.clear()

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        with self._cond:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method.upper())
            ]

    def loaded(self) -> list[dict[str, Any]]:
        """Snapshot of the registered runners, in registration order."""
        with self._cond:
            return [
                {
                    "name": r.model.short_name,
                    "model": r.model.short_name,
                    "digest": r.model.digest,
                    "keep_alive_ns": r.duration,
                    "expires_at": r.expires_at,
                    "in_use": r.refcount,
                    "num_ctx": r.load_opts["num_ctx"],
                    "context_length": r.context_length,
                    "size": r.size,
                    "size_vram": r.size_vram,
                    "state": r.state,
                }
                for r in self._runners.values()
            ]

    def loading(self) -> list[str]:
        with self._cond:
            return list(self._loading)

    def wait_idle(self, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while (
                self._pending
                or self._loading
                or self._finishes
                or any(r.state == "unloading" for r in self._runners.values())
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"fake Ollama not idle after {timeout}s: pending={self._pending} "
                        f"loading={self._loading} unfinished={len(self._finishes)} "
                        f"runners={self.loaded()}"
                    )
                self._cond.wait(min(remaining, 0.05))

    # ---------------------------------------------------------------- configuration & faults

    def set_default_keep_alive(self, value: str | float | None) -> None:
        self.default_keep_alive_ns = env_keep_alive(value)

    # ---------------------------------------------------------------- set-up helpers

    def preload(
        self,
        model: str,
        keep_alive: Any = None,
        *,
        num_ctx: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        """Load ``model`` as a request with this keep_alive (JSON-style value) would, then end
        that request. Blocks for the load (and any eviction)."""
        if self._httpd is None:
            raise RuntimeError("start the fake before preloading")
        m = self._model(model)
        ka = keep_alive_from_json(keep_alive)
        raw = dict(options or {})
        if num_ctx is not None:
            raw["num_ctx"] = num_ctx
        opts, err = self._parse_options(raw)
        if err:
            raise ValueError(err)
        with self._cond:
            ctx = _Ctx(self._epoch, self._stop_event, self._load_lock)
        try:
            runner = self._get_runner(ctx, m, ka, opts)
        except _ScheduleError as exc:
            raise RuntimeError(f"preload of {model} failed: {exc.message}") from None
        with self._cond:
            self._finish(runner)


from .standalone import main  # noqa: E402  (needs FakeOllama)
