"""Ollama 0.24 server logs per residency scenario, built line by line (test fixtures).

Each scenario function returns the lines a real server writes for it, at INFO or DEBUG, in the
order and shapes observed on real 0.24 servers: ``[GIN]`` lines written when a response
ends (so a stop's line may follow the scheduler's, and a load's comes after ``loaded
runners``), the GPU-discovery ``starting runner`` at startup, models named only by blob at
INFO, ``runner.num_ctx`` (requested) next to ``KvSize`` (what the model allows), the DEBUG
unload chain. :func:`wrap` puts the lines under the wrappers met in the wild.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

BLOBS = {
    "tiny": "876d1158a74c4374ad1905a3105e49acd24021fe1ff6fa6b65892283f46f4df2",
    "tiny2": "1b8444b0d5ed66ae64b01fcfa76de65e0cc33338e8d1f047133f988996df200e",
    "tiny3": "8d718a21d61549f23b56aa67b0ea28b5bba3327d515914f1234bd58c1d61ad20",
    "tiny-4k": "be0b6e56fd4260fe5543f4a6bbdd92d377792e436a7a8eae7a0409f0940a90c7",
}
FOREVER = "2562047h47m16.854775807s"
_DIR = "/usr/share/ollama/.ollama/models/blobs/sha256-"


class Log:
    """Writes lines with a clock that moves only when told (``at``/``wait``)."""

    def __init__(self, *, debug: bool, start: datetime, port: int = 41917) -> None:
        self.debug = debug
        self.t = start
        self.port = port
        self.lines: list[str] = []
        self.pids = iter(range(4100, 4200))
        self.pid: dict[str, int] = {}
        self.ctx: dict[str, int] = {}

    def wait(self, seconds: float) -> Log:
        self.t += timedelta(seconds=seconds)
        return self

    def _stamp(self) -> str:
        off = self.t.utcoffset() or timedelta(0)
        base = self.t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.t.microsecond // 1000:03d}"
        if off == timedelta(0):
            return base + "Z"
        mins = int(off.total_seconds()) // 60
        return base + f"{'+' if mins >= 0 else '-'}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"

    def slog(self, level: str, msg: str, attrs: str = "", source: str = "sched.go:1") -> Log:
        if level == "DEBUG" and not self.debug:
            return self
        quoted = f'"{msg}"' if (" " in msg or not msg) else msg
        self.lines.append(
            f"time={self._stamp()} level={level} source={source} msg={quoted}"
            + (f" {attrs}" if attrs else "")
        )
        self.wait(0.001)
        return self

    def runner(self, model: str) -> str:
        return (
            f'runner.name=registry.ollama.ai/library/{model}:latest runner.size="664.0 KiB" '
            f'runner.vram="0 B" runner.parallel=1 runner.pid={self.pid[model]} '
            f"runner.model={_DIR}{BLOBS[model]} runner.num_ctx={self.ctx[model]}"
        )

    def gin(
        self, latency: str, method: str, path: str, client: str = "127.0.0.1", status: int = 200
    ) -> Log:
        self.lines.append(
            f"[GIN] {self.t:%Y/%m/%d - %H:%M:%S} | {status} | {latency:>13} | {client:>15} | "
            f'{method:<7}  "{path}"'
        )
        return self

    # -- blocks ----------------------------------------------------------------------------

    def preamble(self) -> Log:
        self.lines += [
            "Couldn't find '/usr/share/ollama/.ollama/id_ed25519'. Generating new private key.",
            "Your new public key is: ",
            "",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHDJx4rL7NcRK+Fslt4WamE8gTAr2Mg7SFtLHcqygPcJ",
            "",
        ]
        return self

    def start(
        self, *, max_loaded: int = 0, keep_alive: str = "5m0s", ctx: int = 0, parallel: int = 1
    ) -> Log:
        level = "DEBUG" if self.debug else "INFO"
        env = (
            "map[CUDA_VISIBLE_DEVICES: HTTPS_PROXY: NO_PROXY: "
            f"OLLAMA_CONTEXT_LENGTH:{ctx} OLLAMA_DEBUG:{level} OLLAMA_EDITOR: "
            f"OLLAMA_HOST:http://127.0.0.1:{self.port} OLLAMA_KEEP_ALIVE:{keep_alive} "
            f"OLLAMA_MAX_LOADED_MODELS:{max_loaded} OLLAMA_NUM_PARALLEL:{parallel} "
            "OLLAMA_ORIGINS:[http://localhost https://localhost app://* file://*] "
            "OLLAMA_SCHED_SPREAD:false http_proxy: https_proxy: no_proxy:]"
        )
        self.slog("INFO", "server config", f'env="{env}"', "routes.go:1802")
        self.slog("INFO", "total blobs: 0", "", "images.go:517")
        self.slog(
            "INFO", f"Listening on 127.0.0.1:{self.port} (version 0.24.0)", "", "routes.go:1864"
        )
        self.slog("DEBUG", "starting llm scheduler", "", "sched.go:145")
        self.slog(
            "INFO",
            "starting runner",
            'cmd="/usr/local/bin/ollama runner --ollama-engine --port 35761"',
            "server.go:433",
        )
        self.slog(
            "INFO",
            "inference compute",
            'id=cpu library=cpu compute="" name=cpu description=cpu libdirs=ollama driver="" '
            'pci_id="" type="" total="23.5 GiB" available="22.9 GiB"',
            "types.go:60",
        )
        self.slog("INFO", "vram-based default context", 'total_vram="0 B" default_num_ctx=4096')
        self.wait(0.3)
        return self

    def load(
        self,
        model: str,
        *,
        count: int,
        kv: int = 512,
        num_ctx: int = 4096,
        latency: str = "296.543798ms",
        first: bool = True,
        client: str = "127.0.0.1",
        path: str = "/api/generate",
        keep_alive: str | None = "5m0s",
    ) -> Log:
        """A load by a request, its [GIN] line, and (DEBUG) the timer it leaves."""
        blob = _DIR + BLOBS[model]
        if first:
            self.slog("DEBUG", "loading first model", f"model={blob}")
        if num_ctx > kv:
            self.slog(
                "WARN",
                "requested context size too large for model",
                f"num_ctx={num_ctx} n_ctx_train={kv}",
            )
        self.slog(
            "INFO",
            "starting runner",
            f'cmd="/usr/local/bin/ollama runner --model {blob} --port 43519"',
            "server.go:433",
        )
        self.slog("INFO", "system memory", 'total="23.5 GiB" free="22.9 GiB" free_swap="0 B"')
        self.slog("INFO", "total memory", 'size="664.0 KiB"')
        self.slog(
            "INFO",
            "load",
            f'request="{{Operation:commit LoraPath:[] Parallel:1 BatchSize:512 '
            f"FlashAttention:Auto KvSize:{kv} KvCacheType: NumThreads:2 GPULayers:[] "
            f'MultiUserCache:false ProjectorPath: MainGPU:0 UseMmap:false}}"',
            "runner.go:895",
        )
        self.wait(0.25)
        self.slog("INFO", "llama runner started in 0.29 seconds")
        self.slog("INFO", "loaded runners", f"count={count}")
        self.slog("INFO", "llama runner started in 0.29 seconds")
        self.pid[model] = next(self.pids)
        self.ctx[model] = num_ctx
        self.slog("DEBUG", "finished setting up", self.runner(model))
        self.gin(latency, "POST", path, client)
        self.slog("DEBUG", "context for request finished")
        if keep_alive is not None:
            self.timer(model, keep_alive)
        return self

    def evict(self, victim: str, newcomer: str, *, keep_alive: str | None = "5m0s") -> Log:
        """OLLAMA_MAX_LOADED_MODELS=2 reached: the idle ``victim`` goes (its DEBUG chain) to
        make room for ``newcomer``, which loads."""
        self.slog("DEBUG", "max runners achieved, unloading one to make room", "runner_count=2")
        self.slog("DEBUG", "found an idle runner to unload", self.runner(victim))
        self.chain(victim, completed=True)
        return self.load(newcomer, count=2, first=False, keep_alive=keep_alive)

    def expire(self, model: str) -> Log:
        """``model``'s keep-alive ran out: its timer fires and it unloads."""
        self.slog("DEBUG", "timer expired, expiring to unload", self.runner(model))
        return self.chain(model)

    def timer(self, model: str, duration: str) -> Log:
        return self.slog(
            "DEBUG",
            "runner with non-zero duration has gone idle, adding timer",
            f"{self.runner(model)} duration={duration}",
        )

    def request(
        self,
        model: str,
        *,
        keep_alive: str | None,
        client: str = "127.0.0.1",
        latency: str = "24.562759ms",
    ) -> Log:
        """A request to a loaded model (it sends a keep_alive, or leaves it out)."""
        self.slog("DEBUG", "evaluating already loaded", f"model={_DIR}{BLOBS[model]}")
        self.slog("DEBUG", "completion request", 'images=0 prompt=2 format=""')
        self.gin(latency, "POST", "/api/generate", client)
        self.slog("DEBUG", "context for request finished", self.runner(model))
        return self.timer(model, keep_alive or FOREVER)

    def chain(self, model: str, *, completed: bool = False) -> Log:
        pid = self.pid[model]
        self.slog("DEBUG", "runner expired event received", self.runner(model))
        self.slog("DEBUG", "got lock to unload expired event", self.runner(model))
        self.slog("DEBUG", "stopping llama server", f"pid={pid}", "server.go:1874")
        self.wait(0.004)
        self.slog("DEBUG", "llama server stopped", f"pid={pid}", "server.go:1884")
        self.slog(
            "DEBUG",
            "unload completed" if completed else "ignoring unload event with no pending requests",
        )
        return self

    def ps(self) -> Log:
        return self.gin("191.479µs", "GET", "/api/ps")

    def sigterm(self, *models: str) -> Log:
        for m in models:
            self.slog("DEBUG", "shutting down runner", f"model={_DIR}{BLOBS[m]}")
            self.slog("DEBUG", "stopping llama server", f"pid={self.pid[m]}")
            self.slog("DEBUG", "llama server stopped", f"pid={self.pid[m]}")
        self.slog("DEBUG", "shutting down scheduler pending loop")
        return self


START = datetime(2026, 11, 29, 16, 37, 16, 690000, tzinfo=timezone.utc)


def expiry(debug: bool) -> list[str]:
    """01: tiny with keep_alive 3s, idle 3 s later."""
    log = Log(debug=debug, start=START).preamble().start()
    log.load("tiny", count=1, latency="321.53ms", keep_alive="3s").ps()
    log.wait(3)
    log.slog("DEBUG", "timer expired, expiring to unload", log.runner("tiny"))
    return log.chain("tiny").lines


def stop(debug: bool) -> list[str]:
    """02: tiny pinned, then `keep_alive: 0` with an empty prompt from the API."""
    log = Log(debug=debug, start=START).preamble().start()
    log.load("tiny", count=1, latency="298.960601ms", keep_alive=FOREVER).ps()
    # The stop answers at once; its [GIN] line lands in the middle of the unload chain.
    pid = log.pid["tiny"]
    log.slog("DEBUG", "runner expired event received", log.runner("tiny"))
    log.slog("DEBUG", "stopping llama server", f"pid={pid}")
    log.gin("1.830802ms", "POST", "/api/generate", "127.0.0.5").ps()
    log.wait(0.004)
    log.slog("DEBUG", "llama server stopped", f"pid={pid}")
    return log.slog("DEBUG", "ignoring unload event with no pending requests").lines


def eviction(debug: bool) -> list[str]:
    """03: OLLAMA_MAX_LOADED_MODELS=2; tiny pinned, tiny2 10m, then tiny3 evicts tiny2."""
    log = Log(debug=debug, start=START).preamble().start(max_loaded=2)
    log.load("tiny", count=1, keep_alive=FOREVER).ps()
    log.load("tiny2", count=2, first=False, keep_alive="10m0s").ps()
    log.slog("DEBUG", "max runners achieved, unloading one to make room", "runner_count=2")
    log.slog("DEBUG", "found an idle runner to unload", log.runner("tiny2"))
    log.slog(
        "DEBUG",
        "resetting model to expire immediately to make room",
        log.runner("tiny2") + " refCount=0",
    )
    log.slog(
        "DEBUG", "waiting for pending requests to complete and unload to occur", log.runner("tiny2")
    )
    log.chain("tiny2", completed=True)
    log.load("tiny3", count=2, first=False, keep_alive="10m0s", latency="298.783669ms")
    return log.ps().lines


def reload(debug: bool) -> list[str]:
    """04: tiny-4k pinned at context 4096, then a request with num_ctx 2048 and 5m."""
    log = Log(debug=debug, start=START).preamble().start()
    log.load("tiny-4k", count=1, kv=4096, keep_alive=FOREVER).ps()
    blob = _DIR + BLOBS["tiny-4k"]
    log.slog("DEBUG", "evaluating already loaded", f"model={blob}")
    log.slog("DEBUG", "reloading", log.runner("tiny-4k"))
    log.slog("DEBUG", "resetting model to expire immediately to make room", log.runner("tiny-4k"))
    log.chain("tiny-4k", completed=True)
    log.load(
        "tiny-4k",
        count=1,
        kv=2048,
        num_ctx=2048,
        keep_alive="5m0s",
        latency="297.780517ms",
        client="10.0.0.7",
    )
    return log.ps().lines


def pin_reset(debug: bool) -> list[str]:
    """05: tiny pinned; another client (127.0.0.2) sends a prompt with keep_alive 5m."""
    log = Log(debug=debug, start=START).preamble().start()
    log.load("tiny", count=1, keep_alive=FOREVER).ps()
    log.wait(0.04)
    return log.request("tiny", keep_alive="5m0s", client="127.0.0.2").ps().lines


def restart(debug: bool) -> list[str]:
    """06: tiny pinned, SIGTERM, the server starts again on the same port."""
    log = Log(debug=debug, start=START).preamble().start()
    log.load("tiny", count=1, keep_alive=FOREVER).ps()
    log.wait(0.5).sigterm("tiny")
    log.wait(1.5).start()
    return log.ps().lines


def config(debug: bool) -> list[str]:
    """07: a start with OLLAMA_KEEP_ALIVE=-1 OLLAMA_MAX_LOADED_MODELS=2 ... and nothing else."""
    log = Log(debug=debug, start=START).preamble()
    return log.start(max_loaded=2, keep_alive=FOREVER, ctx=8192, parallel=2).lines


def busy(debug: bool) -> list[str]:
    """08: a 3.6 s stream with keep_alive 2s; the model goes 2 s after it ends."""
    log = Log(debug=debug, start=START).preamble().start()
    log.load("tiny", count=1, keep_alive=None, latency="3.645867905s")
    log.slog("DEBUG", "context limit hit - shifting", "id=0 limit=512 input=512 keep=5 discard=253")
    log.wait(3.6)
    log.timer("tiny", "2s")
    log.ps().wait(2)
    log.slog("DEBUG", "timer expired, expiring to unload", log.runner("tiny"))
    return log.chain("tiny").lines


def timezone_and_errors(debug: bool) -> list[str]:
    """09: TZ=Asia/Kolkata: slog times carry +05:30, [GIN] the same wall time with no zone."""
    ist = timezone(timedelta(hours=5, minutes=30))
    log = Log(debug=debug, start=START.astimezone(ist)).preamble().start()
    log.gin("1.025213ms", "POST", "/api/generate", status=404)
    log.gin("127.369µs", "POST", "/api/generate", status=400)
    log.load("tiny", count=1, keep_alive="3s")
    log.gin("83.066µs", "GET", "/api/ps?verbose=1")
    return log.lines


def busy_server(debug: bool, *, requests: int = 1500, seed: int = 7) -> list[str]:
    """A busy server: clients of every kind around two loaded models, for the fast reader.

    Latencies of every form gin writes (ns, µs, ms with 0 to 6 decimals, s, m; under and
    over 10 ms), clients that fit gin's 15 columns and IPv6 ones that do not, colored
    method lines, POST /api/show, unload-like fast generates, GET polls, a pin and a 5m
    client taking turns on one runner, evictions and loads with a new pid each time, and
    (at 1/3) an old Go-log ``INFO server config`` line of a 0.5-era restart.
    """
    import random

    rng = random.Random(seed)
    log = Log(debug=debug, start=START, port=11434)
    log.preamble().start(max_loaded=2)
    log.load("tiny", count=1, keep_alive=FOREVER)
    log.load("tiny2", count=2, first=False, keep_alive="10m0s")
    clients = ["192.0.2.10", "127.0.0.1", "2001:db8:85a3::8a2e:370:7334"]
    latencies = ["24.562759ms", "2.5s", "3.1ms", "812.3µs", "1m2.5s", "10ms", "9ms",
                 "99.9ms", "150.25ms", "1.123456ms", "734ns", "0s", "12.5μs"]  # fmt: skip
    for i in range(requests):
        r = rng.random()
        if r < 0.3:
            log.request(
                "tiny2",
                keep_alive="10m0s",
                client=rng.choice(clients),
                latency=rng.choice(latencies),
            )
        elif r < 0.4:
            log.gin(rng.choice(["1.2ms", "350µs", "2.5s"]), "POST", "/api/show")
        elif r < 0.45:
            log.gin("1.1ms", "POST", "/api/generate", "127.0.0.3")  # an unload, at INFO
        elif r < 0.5:
            log.gin("4.5ms", "POST", "/api/chat", "10.0.0.1")
            log.lines[-1] = log.lines[-1].replace("| POST   ", "|\x1b[97;46m POST   \x1b[0m")
        elif r < 0.53:  # a pin and a 5m client take turns
            log.request("tiny", keep_alive=rng.choice([FOREVER, "5m0s"]), client="127.0.0.2")
        else:
            log.ps()
        log.wait(rng.choice([0.1, 0.5, 3, 30]))
        if i % 500 == 250:
            log.evict("tiny2", "tiny3", keep_alive="1m0s").wait(61).expire("tiny3")
            log.load("tiny2", count=2, first=False, keep_alive="10m0s")
        if i == requests // 3:
            log.lines.append(
                f"{log.t:%Y/%m/%d %H:%M:%S} routes.go:1187: INFO server config "
                'env="map[OLLAMA_DEBUG:false OLLAMA_MAX_LOADED_MODELS:2 OLLAMA_KEEP_ALIVE:5m0s]"'
            )
            log.slog("INFO", "Listening on 127.0.0.1:11434 (version 0.5.7)", "", "routes.go:1238")
            log.wait(1)
            log.load("tiny", count=1, keep_alive=FOREVER)
            log.load("tiny2", count=2, first=False, keep_alive="10m0s")
    return log.lines


SCENARIOS: dict[str, Callable[[bool], list[str]]] = {
    "01-expiry": expiry,
    "02-stop": stop,
    "03-eviction": eviction,
    "04-reload": reload,
    "05-pin-reset": pin_reset,
    "06-restart": restart,
    "07-config": config,
    "08-busy": busy,
    "09-timezone": timezone_and_errors,
}


def _journal_stamp(line: str, n: int) -> str:
    return f"Nov 29 16:37:{n % 60:02d}"


WRAPPERS: dict[str, Callable[[str, int], str]] = {
    "raw": lambda line, n: line,
    "crlf": lambda line, n: line + "\r",
    "journal": lambda line, n: f"{_journal_stamp(line, n)} myhost ollama[1234]: {line}",
    "journal-iso": lambda line, n: (
        f"2026-11-29T16:37:{n % 60:02d}+0000 myhost ollama[1234]: {line}"
    ),
    "journal-precise": lambda line, n: (
        f"Nov 29 16:37:{n % 60:02d}.{n:06d} myhost ollama[1234]: {line}"
    ),
    "docker-t": lambda line, n: f"2026-11-29T16:37:{n % 60:02d}.123456789Z {line}",
    "compose": lambda line, n: f"ollama-1  | {line}",
    "compose-t": lambda line, n: f"ollama-1  | 2026-11-29T16:37:{n % 60:02d}.5Z {line}",
    "ansi": lambda line, n: line.replace("| 200 |", "|\x1b[97;42m 200 \x1b[0m|"),
}


def wrap(lines: list[str], wrapper: str) -> list[str]:
    """The lines as that collector shows them, interleaved with llama.cpp output, the last
    line cut short as a log being written is."""
    fn = WRAPPERS[wrapper]
    out: list[str] = []
    for n, line in enumerate(lines):
        out.append(fn(line, n))
        if n % 17 == 5:
            out.append(fn("llama_model_loader: - kv   0:    general.architecture str = llama", n))
    out.append(fn('time=2026-11-29T23:59:59.000Z level=DEBUG source=sched.go:1 msg="cut sh', 0))
    return out
