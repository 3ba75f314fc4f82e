"""The fake's server log: what a real Ollama 0.24 writes for what the fake does.

``FakeOllama(log_path=..., log_debug=...)`` appends to ``log_path`` the lines Ollama writes
(shapes from real 0.24 logs, ``server/routes.go``, ``server/sched.go``, ``llm/server.go``):

- each start: ``server config`` (the env map, reflecting ``default_keep_alive``,
  ``max_loaded`` and the level), ``Listening on 127.0.0.1:PORT (version V)``, ``inference
  compute``, ``vram-based default context``;
- each load: ``starting runner`` with the model's blob path (the one ``/api/show``'s
  ``FROM`` names), ``system memory``, ``total memory``, ``load request`` with ``KvSize``,
  ``llama runner started in X seconds``, ``loaded runners count=N``; at DEBUG ``loading
  first model`` and ``finished setting up`` with the ``runner.*`` group;
- at DEBUG: ``adding timer ... duration=5m0s`` (forever prints ``2562047h47m16.854775807s``),
  ``timer expired``, ``runner with zero duration has gone idle``, ``reloading``, ``max runners
  achieved`` / ``found an idle runner to unload``, the unload chain (``runner expired event
  received``, ``stopping llama server pid=N``, ``llama server stopped pid=N``, ``unload
  completed``), and ``shutting down runner`` at stop;
- a ``[GIN]`` line when each request's answer ends: local time to the second, status,
  latency, client IP (``X-Forwarded-For`` / ``X-Real-IP`` first, as gin trusts every proxy),
  method, quoted path with its query.

Slog lines go out with the local zone (``Z`` when the fake runs with ``utc_offset_minutes=0``,
the default); ``[GIN]`` times are that same local wall time with no zone.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .durations import MAX_DURATION, NS_PER_SECOND

if TYPE_CHECKING:
    from .models import FakeModel
    from .scheduler import _Runner

__all__ = ["FakeServerLog", "blob_of", "go_duration"]

_MODELS_DIR = "/usr/share/ollama/.ollama/models"


def blob_of(m: FakeModel) -> str:
    """The model's blob hex: the one ``/api/show``'s modelfile ``FROM`` line names."""
    return hashlib.sha256(f"blob:{m.digest}".encode()).hexdigest()


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``5m0s``, ``1h0m0s``, ``2562047h47m16.854775807s``."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    ns = abs(ns)
    if ns < NS_PER_SECOND:
        for unit, div in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= div:
                whole, frac = divmod(ns, div)
                text = str(whole) + (f".{frac:0{len(str(div)) - 1}d}".rstrip("0") if frac else "")
                return ("-" if neg else "") + text.rstrip(".") + unit
    h, rest = divmod(ns, 3600 * NS_PER_SECOND)
    mnt, rest = divmod(rest, 60 * NS_PER_SECOND)
    sec, frac = divmod(rest, NS_PER_SECOND)
    s = str(sec) + (f".{frac:09d}".rstrip("0") if frac else "")
    out = f"{h}h{mnt}m{s}s" if h else (f"{mnt}m{s}s" if mnt else f"{s}s")
    return ("-" if neg else "") + out


def _q(value: str) -> str:
    """slog's text quoting: quoted when empty or holding spaces, quotes or '='."""
    if value == "" or any(c in value for c in ' "=\\') or not value.isprintable():
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _size(n: int) -> str:
    """Ollama's ``format.HumanBytes2`` (binary units, one decimal)."""
    for unit, div in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


class FakeServerLog:
    """Writes Ollama-shaped lines to a file, one ``write`` per line, thread-safe."""

    def __init__(self, path: str, *, debug: bool, utc_offset_minutes: int = 0) -> None:
        self.path = path
        self.debug = debug
        self.tz = timezone(timedelta(minutes=utc_offset_minutes))
        self._lock = threading.Lock()
        self._pids = itertools.count(4100)
        self._pid: dict[int, int] = {}  # id(runner) -> pid
        self._ports = itertools.count(40000)
        self._fake: Any = None  # set by started(): its memory_budget may change at any time

    def _memory(self, used: int = 0) -> tuple[str, str]:
        """(total, available) for `system memory` / `inference compute`: the fake's
        ``memory_budget`` when set (less what is loaded), else a 24 GiB machine's."""
        budget = getattr(self._fake, "memory_budget", None)
        if budget is None:
            return "23.5 GiB", "22.9 GiB"
        return _size(budget), _size(max(0, budget - used))

    # -- plumbing ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(time.time(), self.tz)

    def _write(self, line: str) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _slog(self, level: str, source: str, msg: str, **attrs: Any) -> None:
        if level == "DEBUG" and not self.debug:
            return
        t = self._now()
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"
        off = t.utcoffset() or timedelta(0)
        if off == timedelta(0):
            stamp += "Z"
        else:
            sign = "+" if off >= timedelta(0) else "-"
            mins = abs(int(off.total_seconds())) // 60
            stamp += f"{sign}{mins // 60:02d}:{mins % 60:02d}"
        parts = [f"time={stamp}", f"level={level}", f"source={source}", f"msg={_q(msg)}"]
        parts += [f"{k}={_q(str(v))}" for k, v in attrs.items()]
        self._write(" ".join(parts))

    def _runner_attrs(self, r: _Runner) -> dict[str, Any]:
        m = r.model
        return {
            # As Ollama writes it: the full name, library/ only for an un-namespaced model.
            "runner.name": m.full_name,
            "runner.size": _size(r.size),
            "runner.vram": _size(r.size_vram),
            "runner.parallel": 1,
            "runner.pid": self.pid(r),
            "runner.model": f"{_MODELS_DIR}/blobs/sha256-{blob_of(m)}",
            "runner.num_ctx": r.load_opts.get("num_ctx"),
        }

    def pid(self, r: _Runner) -> int:
        key = id(r)
        if key not in self._pid:
            self._pid[key] = next(self._pids)
        return self._pid[key]

    # -- the server -------------------------------------------------------------------------

    def started(self, fake: Any) -> None:
        self._fake = fake
        total, available = self._memory()
        level = "DEBUG" if self.debug else "INFO"
        ka = go_duration(fake.default_keep_alive_ns)
        host = f"http://{fake.host}:{fake.port}"
        env = (
            "map[CUDA_VISIBLE_DEVICES: HTTPS_PROXY: HTTP_PROXY: NO_PROXY: OLLAMA_CONTEXT_LENGTH:0 "
            f"OLLAMA_DEBUG:{level} OLLAMA_FLASH_ATTENTION:false OLLAMA_HOST:{host} "
            f"OLLAMA_KEEP_ALIVE:{ka} OLLAMA_MAX_LOADED_MODELS:{fake.max_loaded} "
            f"OLLAMA_MAX_QUEUE:512 OLLAMA_MODELS:{_MODELS_DIR} OLLAMA_NUM_PARALLEL:1 "
            "OLLAMA_ORIGINS:[http://localhost https://localhost app://*] "
            "OLLAMA_SCHED_SPREAD:false ROCR_VISIBLE_DEVICES: http_proxy: https_proxy: no_proxy:]"
        )
        self._slog("INFO", "routes.go:1802", "server config", env=env)
        self._slog("INFO", "images.go:517", "total blobs: 0")
        self._slog(
            "INFO",
            "routes.go:1864",
            f"Listening on {fake.host}:{fake.port} (version {fake.version})",
        )
        self._slog("DEBUG", "sched.go:145", "starting llm scheduler")
        self._slog(
            "INFO",
            "server.go:433",
            "starting runner",
            cmd=f"/usr/local/bin/ollama runner --ollama-engine --port {next(self._ports)}",
        )
        self._slog(
            "INFO",
            "types.go:60",
            "inference compute",
            id="cpu",
            library="cpu",
            compute="",
            name="cpu",
            description="cpu",
            libdirs="ollama",
            driver="",
            pci_id="",
            type="",
            total=total,
            available=available,
        )
        self._slog(
            "INFO",
            "routes.go:1914",
            "vram-based default context",
            total_vram="0 B",
            default_num_ctx=fake.default_num_ctx,
        )

    def stopping(self, runners: list[_Runner]) -> None:
        """SIGTERM: nothing at INFO; at DEBUG each runner is shut down."""
        for r in runners:
            blob = f"{_MODELS_DIR}/blobs/sha256-{blob_of(r.model)}"
            self._slog("DEBUG", "sched.go:908", "shutting down runner", model=blob)
            self._slog("DEBUG", "server.go:1874", "stopping llama server", pid=self.pid(r))
            self._slog("DEBUG", "server.go:1884", "llama server stopped", pid=self.pid(r))
        self._slog("DEBUG", "sched.go:161", "shutting down scheduler pending loop")

    # -- loads ------------------------------------------------------------------------------

    def load_started(self, r: _Runner, first: bool, used: int = 0) -> None:
        """``used``: bytes the other runners hold (what `system memory` no longer has free)."""
        total, free = self._memory(used)
        blob = f"{_MODELS_DIR}/blobs/sha256-{blob_of(r.model)}"
        if first:
            self._slog("DEBUG", "sched.go:229", "loading first model", model=blob)
        self._slog(
            "INFO",
            "server.go:433",
            "starting runner",
            cmd=f"/usr/local/bin/ollama runner --model {blob} --port {next(self._ports)}",
        )
        self._slog(
            "INFO",
            "sched.go:484",
            "system memory",
            total=total,
            free=free,
            free_swap="0 B",
        )
        self._slog("INFO", "device.go:272", "total memory", size=_size(r.size))
        kv = r.context_length
        self._slog(
            "INFO",
            "runner.go:895",
            "load",
            request=(
                "{Operation:commit LoraPath:[] Parallel:1 BatchSize:512 FlashAttention:Auto "
                f"KvSize:{kv} KvCacheType: NumThreads:2 GPULayers:[] MultiUserCache:false "
                "ProjectorPath: MainGPU:0 UseMmap:false}"
            ),
        )

    def load_done(self, r: _Runner, seconds: float, count: int) -> None:
        self._slog("INFO", "server.go:1432", f"llama runner started in {seconds:.2f} seconds")
        self._slog("INFO", "sched.go:561", "loaded runners", count=count)
        self._slog("DEBUG", "sched.go:573", "finished setting up", **self._runner_attrs(r))

    # -- timers and unloads -----------------------------------------------------------------

    def timer(self, r: _Runner) -> None:
        d = MAX_DURATION if r.duration >= MAX_DURATION or r.duration < 0 else r.duration
        self._slog(
            "DEBUG",
            "sched.go:309",
            "runner with non-zero duration has gone idle, adding timer",
            **self._runner_attrs(r),
            duration=go_duration(d),
        )

    def zero_duration(self, r: _Runner) -> None:
        self._slog(
            "DEBUG",
            "sched.go:302",
            "runner with zero duration has gone idle, expiring to unload",
            **self._runner_attrs(r),
        )

    def timer_expired(self, r: _Runner) -> None:
        self._slog(
            "DEBUG", "sched.go:289", "timer expired, expiring to unload", **self._runner_attrs(r)
        )

    def reloading(self, r: _Runner) -> None:
        self._slog("DEBUG", "sched.go:187", "reloading", **self._runner_attrs(r))

    def evicting(self, r: _Runner, count: int, at_limit: bool) -> None:
        if at_limit:
            self._slog(
                "DEBUG",
                "sched.go:196",
                "max runners achieved, unloading one to make room",
                runner_count=count,
            )
        self._slog(
            "DEBUG", "sched.go:887", "found an idle runner to unload", **self._runner_attrs(r)
        )

    def expire(self, r: _Runner) -> None:
        self._slog(
            "DEBUG", "sched.go:330", "runner expired event received", **self._runner_attrs(r)
        )
        self._slog("DEBUG", "server.go:1874", "stopping llama server", pid=self.pid(r))

    def removed(self, r: _Runner) -> None:
        self._slog("DEBUG", "server.go:1884", "llama server stopped", pid=self.pid(r))
        self._slog("DEBUG", "sched.go:271", "unload completed", **self._runner_attrs(r))

    # -- requests ---------------------------------------------------------------------------

    def request(self, status: int, seconds: float, client: str, method: str, path: str) -> None:
        t = self._now()
        latency = go_duration(round(seconds * NS_PER_SECOND))
        if seconds >= 60:
            latency = go_duration(int(seconds) * NS_PER_SECOND)
        quoted = '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
        self._write(
            f"[GIN] {t:%Y/%m/%d - %H:%M:%S} | {status:3d} | {latency:>13} | {client:>15} | "
            f"{method:<7}  {quoted}"
        )
