"""What Ollama's server log says happened to each model: a timeline of facts (pure).

:func:`read_timeline` walks the records of :mod:`ollama_resident.serverlog` once and keeps
per-model facts, not lines, so a 200 MB log costs little memory:

- ``server_start``: each start (``server config`` then ``Listening on ... (version V)``),
  with the settings that shape residency (``OLLAMA_KEEP_ALIVE``,
  ``OLLAMA_MAX_LOADED_MODELS``, ``OLLAMA_NUM_PARALLEL``, ``OLLAMA_CONTEXT_LENGTH``,
  ``OLLAMA_DEBUG``, ``OLLAMA_HOST``);
- ``loaded``: a model load (``starting runner --model <blob>`` ... ``loaded runners``),
  with how long it took, its context (``KvSize / Parallel`` of the ``load request``),
  its memory and the system's free memory; ``reload`` when the blob was still loaded;
- ``keep_alive``: the keep-alive in force after a request (DEBUG ``adding timer ...
  duration=5m0s``; ``2562047h47m16.854775807s`` is forever), when it changes;
- ``unloaded``: with its cause: ``expired`` (``timer expired``), ``stopped`` (keep_alive 0:
  ``runner with zero duration has gone idle``, or ``runner expired event received`` with
  nothing before it), ``evicted`` (``max runners achieved`` / ``found an idle runner to
  unload``, or a memory pre-flight eviction; the model loaded next is the one it made room
  for), ``reloaded`` (``reloading``, context A to B), ``shutdown`` (``shutting down
  runner``), ``server_restart`` (a new start while it was loaded: at INFO nothing marks
  the stop) and ``unknown``.

Unload causes come from DEBUG lines (``OLLAMA_DEBUG=1``) and are certain; at INFO only
loads, reloads (a second ``starting runner`` for a loaded blob) and restarts show, and
the facts say so (``level``). Who did it: the ``[GIN]`` request nearest the change (a
request that set a keep-alive ended just before its timer line; one that stopped,
reloaded or evicted was still running, so its line follows), with method, path, client
address and time. Rules from Ollama 0.24 ``server/sched.go`` and the logs in its
reference captures.

INFO lines name a model only by its blob digest; DEBUG lines (``runner.name``) give the
name, and :meth:`Timeline.name_models` takes names found elsewhere (``/api/show``).
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Protocol

from ollama_resident.serverlog import (
    FOREVER_NS,
    GinRequest,
    LogReader,
    Record,
    blob_digest,
    env_map,
    listening,
    parse_size,
)

__all__ = [
    "MESSAGES",
    "PREFIXES",
    "LogFact",
    "Request",
    "Timeline",
    "TimelineBuilder",
    "read_timeline",
    "short_digest",
]

# The slog messages the timeline reads (exact texts of Ollama 0.24, older where they differ).
MESSAGES = frozenset(
    {
        "server config",
        "starting runner",
        "system memory",
        "total memory",
        "load",  # msg=load request="{... KvSize:N ...}"
        "loaded runners",
        "finished setting up",
        "runner with non-zero duration has gone idle, adding timer",
        "runner with zero duration has gone idle, expiring to unload",
        "timer expired, expiring to unload",
        "max runners achieved, unloading one to make room",
        "found an idle runner to unload",
        "no idle runners, picking the shortest duration",
        "reloading",
        "runner expired event received",
        "shutting down runner",
        "llama server stopped",
        "runtime OOM detected; expiring loaded models to prevent cascading failures",
        "evicting all other loaded models for OOM retry",
    }
)
PREFIXES = (
    "Listening on ",
    "llama runner started in ",
    "model requires more memory than is currently available",
    "predicted to exceed available memory",
    "runtime OOM detected",
)
_CONFIG_KEYS = (
    "OLLAMA_KEEP_ALIVE",
    "OLLAMA_MAX_LOADED_MODELS",
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_DEBUG",
    "OLLAMA_HOST",
    "OLLAMA_SCHED_SPREAD",
)
_TIMER = "runner with non-zero duration has gone idle, adding timer"
_PRECEDING_S = 2.0  # a keep-alive timer is added right after its request's [GIN] line
_FAST_S = 0.010  # an unload request (keep_alive 0, empty prompt) answers in about 1 ms
_PENDING_S = 600.0  # how long a change waits for the [GIN] line of the request behind it


def short_digest(digest: str) -> str:
    """How a model known only by its blob is shown: ``sha256-876d1158a74c``."""
    return f"sha256-{digest[:12]}"


@dataclass(frozen=True)
class Request:
    """The HTTP request behind a change, from its ``[GIN]`` line."""

    method: str
    path: str
    client: str
    start: datetime
    end: datetime  # second resolution
    status: int
    line_no: int

    @classmethod
    def of(cls, rec: Record) -> Request:
        g = rec.gin
        assert g is not None
        return cls(g.method, g.path, g.client, g.start, g.end, g.status, rec.line_no)

    def describe(self) -> str:
        return f"{self.method} {self.path} from {self.client}"

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "client": self.client,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "status": self.status,
            "line": self.line_no,
        }


@dataclass(frozen=True)
class LogFact:
    """One thing the log shows about a model (or the server when ``digest`` is None).

    ``kind``: ``server_start``, ``loaded``, ``keep_alive``, ``unloaded``, ``evicted_unknown``
    (INFO: a load at the limit made room, the victim is not named). ``cause`` for
    ``unloaded``: ``expired``, ``stopped``, ``evicted``, ``reloaded``, ``shutdown``,
    ``server_restart``, ``oom``, ``unknown``. ``level``: the log level of the line that
    establishes the fact (``DEBUG`` or ``INFO``). ``confidence``: ``certain`` (read from
    a line that says it), ``likely`` (inferred from INFO lines), ``guess``.
    ``lines``: the line numbers it rests on; ``detail`` holds the numbers (``context``,
    ``load_s``, ``size``, ``keep_alive``, ``keep_alive_s``, ``forever``, ``before``,
    ``context_before``, ``context_after``, ``by_digest``, ``version``, ``config`` ...).
    """

    time: datetime
    kind: str
    digest: str | None
    line_no: int
    level: str
    confidence: str = "certain"
    cause: str | None = None
    name: str | None = None
    request: Request | None = None
    lines: tuple[int, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)
    file: str | None = None  # the rotated file the lines are in (None: the log itself)

    @property
    def model(self) -> str | None:
        """The model's name if known, else its short digest; None for server facts."""
        if self.name:
            return self.name
        return short_digest(self.digest) if self.digest else None

    def to_json(self) -> dict[str, Any]:
        return {
            "time": _iso(self.time),
            "kind": self.kind,
            "cause": self.cause,
            "model": self.model,
            "digest": self.digest,
            "line": self.line_no,
            "lines": list(self.lines),
            "level": self.level,
            "file": self.file,
            "confidence": self.confidence,
            "request": self.request.to_json() if self.request else None,
            "detail": _jsonable(self.detail),
        }


def _replace(fact: LogFact, **changes: Any) -> LogFact:
    """``dataclasses.replace`` for a :class:`LogFact` (it has no ``__post_init__``),
    without its per-field machinery: a log with thousands of loads calls it often."""
    new = object.__new__(LogFact)
    new.__dict__.update(fact.__dict__)
    new.__dict__.update(changes)
    return new


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out[k] = _iso(v) if isinstance(v, datetime) else v
    return out


@dataclass
class Timeline:
    """Everything :func:`read_timeline` found, oldest first."""

    facts: list[LogFact]
    lines: int  # lines read
    # The times of the first and last lines of the server's own (slog, [GIN], Go-log) in
    # what was read: the window the log covers, whatever happened in it.
    first_time: datetime | None
    last_time: datetime | None
    has_debug: bool
    names: dict[str, str]  # blob digest -> model name (from DEBUG lines, or given)
    starts: int  # server starts seen
    # generate/chat requests answered in under 10 ms: at INFO, the only trace of a stop
    # (empty for a log with DEBUG lines, which name every unload's cause)
    fast_requests: list[Request] = field(default_factory=list)

    def name_models(self, names: Mapping[str, str]) -> None:
        """Name the facts of blobs known from elsewhere (``/api/show``): digest -> name."""
        self.names.update({k: v for k, v in names.items() if k not in self.names})
        self.facts = [self._named(f) for f in self.facts]

    def _named(self, f: LogFact) -> LogFact:
        changes: dict[str, Any] = {}
        if f.digest and not f.name and f.digest in self.names:
            changes["name"] = self.names[f.digest]
        by = f.detail.get("by_digest")
        if by and not f.detail.get("by_model") and by in self.names:
            changes["detail"] = {**f.detail, "by_model": self.names[by]}
        return _replace(f, **changes) if changes else f

    def digests(self) -> set[str]:
        return {f.digest for f in self.facts if f.digest}

    def for_model(self, matches: Any) -> list[LogFact]:
        """The facts of the models for which ``matches(name_or_short_digest)`` is true,
        plus the server starts (which end every model's residency)."""
        return [f for f in self.facts if f.digest is None or matches(f.model or "")]

    def models(self) -> list[str]:
        seen: dict[str, None] = {}
        for f in self.facts:
            if f.model:
                seen.setdefault(f.model, None)
        return list(seen)


@dataclass
class _Runner:
    digest: str
    name: str | None = None
    pid: int | None = None
    context: int | None = None
    keep_alive: str | None = None  # Go duration text of the last timer
    loaded_line: int | None = None
    # pending unload: cause, line number, time, detail
    cause: tuple[str, int, datetime, dict[str, Any]] | None = None


@dataclass
class _Load:
    digest: str
    start: datetime
    line_no: int
    reload_of: _Runner | None = None
    reloaded: bool = False  # the old runner's unload was already seen (DEBUG)
    context: int | None = None
    parallel: int | None = None
    size: int | None = None
    free: int | None = None
    load_s: float | None = None
    count_before: int = 0
    evicted_at_limit: bool = False


def _canonical(name: str) -> str:
    from ollama_resident.models import canonical_name

    return canonical_name(name)


def _ka_seconds(text: str) -> float | None:
    from ollama_resident.durations import DurationError, parse_go_duration

    try:
        return parse_go_duration(text) / 1e9
    except DurationError:
        return None


@lru_cache(maxsize=64)
def _forever(text: str | None) -> bool:
    from ollama_resident.durations import DurationError, parse_go_duration

    if not text:
        return False
    try:
        ns = parse_go_duration(text)
    except DurationError:
        return False
    return ns >= FOREVER_NS or ns < 0


class LazyLines(Protocol):
    """Lines of a log still held as one run (see :class:`ollama_resident.logscan.PostRun`),
    cut into ``(line_no, text)`` lines newest first only as far as someone reads."""

    got: list[Request | tuple[int, str]]  # the lines cut so far, newest first

    def more(self) -> bool:
        """Cut the next older line into :attr:`got`; False when there is none."""
        ...


class RecentRequests:
    """The last :attr:`KEEP` POST ``[GIN]`` lines before the line being read, newest last:
    parsed requests (:class:`Request`), raw ``(line_no, text)`` lines and :class:`LazyLines` runs.

    A busy server writes a request line every few hundred bytes and nearly all of them are
    never asked about: a run is cut into lines only when a change looks for the request
    behind it (:meth:`newest`), and only as far back as it looks.
    """

    KEEP = 32  # the requests a change may look back on

    def __init__(self) -> None:
        self.items: list[Request | tuple[int, str] | LazyLines] = []

    def append(self, item: Request | tuple[int, str] | LazyLines) -> None:
        self.items.append(item)
        if len(self.items) > 8 * self.KEEP:
            self.seal()

    def newest(self) -> Iterator[tuple[list[Any], int]]:
        """``(holder, index)`` of each line, newest first, at most :attr:`KEEP`: the line
        is ``holder[index]`` and may be replaced there by its parsed :class:`Request`."""
        left = self.KEEP
        items = self.items
        for k in range(len(items) - 1, -1, -1):
            item = items[k]
            if isinstance(item, (Request, tuple)):
                yield items, k
                left -= 1
                if not left:
                    return
                continue
            j = 0
            while j < len(item.got) or item.more():
                yield item.got, j
                j += 1
                left -= 1
                if not left:
                    return

    def seal(self) -> None:
        """Keep only the newest :attr:`KEEP` lines, cut out of their runs (which may then
        let go of the block they were read from)."""
        kept = [holder[i] for holder, i in self.newest()]
        kept.reverse()
        self.items = list(kept)


class TimelineBuilder:
    """Feed records in log order (:meth:`feed`), then :meth:`finish`."""

    def __init__(self) -> None:
        self.facts: list[LogFact] = []
        self.runners: dict[str, _Runner] = {}  # digest -> loaded runner
        self.by_pid: dict[int, _Runner] = {}
        self.names: dict[str, str] = {}
        self.load: _Load | None = None
        self.count = 0  # "loaded runners" count
        self.max_loaded: int | None = None
        self.evicting: str | None = None  # "max_loaded" or "memory": victim not yet named
        # Model requests, newest last: a [GIN] line stays unparsed, (line_no, raw), until a
        # change needs the request behind it.
        self.recent = RecentRequests()
        # POSTs answered in under 10 ms: what an unload request looks like at INFO.
        self.fast: deque[tuple[int, str]] = deque(maxlen=500)
        self.reader: LogReader | None = None
        self.pending: list[int] = []  # facts waiting for the request line that follows
        self.awaiting_by: list[int] = []  # evictions waiting for the next load
        self.awaiting_after: dict[str, int] = {}  # reload digest -> unload fact index
        self.has_debug = False
        self.first_time: datetime | None = None
        self._last_rec: Record | None = None
        self._prev_rec: Record | None = None
        self.lines = 0
        self.starts = 0
        self._start_index: int | None = None
        self.label: str | None = None  # the file being read, when not the log itself

    # -- helpers ----------------------------------------------------------------------------

    def _add(self, fact: LogFact, *, wants_request: str | None = None) -> int:
        if self.label is not None and fact.file is None:
            fact = _replace(fact, file=self.label)
        self.facts.append(fact)
        i = len(self.facts) - 1
        req = None
        if wants_request == "preceding":
            req = self._preceding(fact.time)
        elif wants_request == "stop":
            # An unload answers at once (about 1 ms): its line may come just before or
            # just after the scheduler's; the nearest fast request around it.
            req = self._nearest(fact, fast=True)
        elif wants_request == "covering":
            req = self._nearest(fact, fast=False, after=True)
        if req is not None:
            self.facts[i] = _replace(fact, request=req)
        elif wants_request is not None:
            # Its [GIN] line may still come: gin writes it when the response is done, and
            # Ollama's goroutines do not wait for each other.
            self.pending.append(i)
        return i

    def _nearest(self, fact: LogFact, *, fast: bool, after: bool = False) -> Request | None:
        best: Request | None = None
        # Newest first: with ``after``, the first line before the fact ends the search.
        for req in self._requests(stop_below=fact.line_no if after else None):
            if (fact.time - req.end).total_seconds() > 2.0:
                break  # older ones ended before it
            if fast and (req.end - req.start).total_seconds() > 0.5:
                continue
            if not req.start - timedelta(seconds=1) <= fact.time < req.end + timedelta(seconds=1):
                continue
            if best is None or abs(req.line_no - fact.line_no) < abs(best.line_no - fact.line_no):
                best = req
        return best

    def _preceding(self, t: datetime) -> Request | None:
        for req in self._requests():
            gap = (t - req.end).total_seconds()
            if -1.0 <= gap <= _PRECEDING_S:
                return req
            if gap > _PRECEDING_S:
                return None
        return None

    def _runner(self, rec: Record) -> _Runner | None:
        """The runner a DEBUG line is about (``runner.pid``/``runner.model``/``pid``/``model``)."""
        attrs = rec.attrs
        pid_text = attrs.get("runner.pid") or attrs.get("pid")
        pid = int(pid_text) if pid_text and pid_text.isdigit() else None
        if pid is not None and pid in self.by_pid:
            r = self.by_pid[pid]
        else:
            path = attrs.get("runner.model") or attrs.get("model") or ""
            digest = blob_digest(path)
            if digest is None:
                return None
            found = self.runners.get(digest)
            if found is None:
                # Loaded before the part of the log we read.
                found = _Runner(digest)
                self.runners[digest] = found
            r = found
            if pid is not None:
                r.pid = pid
                self.by_pid[pid] = r
        name = attrs.get("runner.name")
        if name and not r.name:
            r.name = _canonical(name)
            self.names.setdefault(r.digest, r.name)
        ctx = attrs.get("runner.num_ctx")
        if ctx and ctx.isdigit() and r.context is None:
            r.context = int(ctx)
        return r

    # -- the walk ---------------------------------------------------------------------------

    def feed(self, rec: Record) -> None:
        if rec.kind == "text":
            return
        t = rec.time
        if t is None:
            return
        if self.first_time is None:
            self.first_time = t
        self._prev_rec, self._last_rec = self._last_rec, rec
        if rec.gin is not None:
            self._gin(rec)
            return
        if rec.level == "DEBUG":
            self.has_debug = True
        msg = rec.msg
        handler = _HANDLERS.get(msg)
        if handler is not None:
            handler(self, rec, t)
        elif msg.startswith("Listening on "):
            self._listening(rec)
        elif msg.startswith("llama runner started in "):
            if self.load is not None and self.load.load_s is None:
                with contextlib.suppress(IndexError, ValueError):
                    self.load.load_s = float(msg.split()[4])
        elif msg.startswith(("model requires more memory", "predicted to exceed available memory")):
            self.evicting = "memory"
        elif msg.startswith("runtime OOM detected"):
            for r in list(self.runners.values()):
                r.cause = ("oom", rec.line_no, t, {})

    def _gin(self, rec: Record) -> None:
        g: GinRequest | None = rec.gin
        if g is None or not g.is_model_request:
            return
        req = Request.of(rec)
        self.recent.append(req)
        if self.pending:
            still = []
            for i in self.pending:
                f = self.facts[i]
                if g.covers(f.time):
                    self.facts[i] = _replace(f, request=req)
                elif (g.end - f.time).total_seconds() < _PENDING_S:
                    still.append(i)
            self.pending = still

    def _server_config(self, rec: Record, t: datetime) -> None:
        self.starts += 1
        env = env_map(rec.attrs.get("env", ""))
        config = {k: env[k] for k in _CONFIG_KEYS if k in env}
        if env.get("OLLAMA_DEBUG", "").upper() in ("DEBUG", "1", "TRUE", "TRACE", "2"):
            self.has_debug = True
        limit = env.get("OLLAMA_MAX_LOADED_MODELS")
        self.max_loaded = int(limit) if limit and limit.isdigit() and int(limit) > 0 else None
        self._start_index = self._add(
            LogFact(
                t, "server_start", None, rec.line_no, rec.level or "INFO", detail={"config": config}
            )
        )
        # Everything loaded in the previous run is gone: nothing at INFO marks the stop.
        for r in list(self.runners.values()):
            self._unloaded(r, t, rec.line_no, "server_restart", "INFO", {"until": self.prev_time})
        self.runners.clear()
        self.by_pid.clear()
        # The runners a DEBUG shutdown stopped: the stop was a restart.
        for i in range(self._start_index - 1, -1, -1):
            f = self.facts[i]
            if f.kind == "server_start":
                break
            if f.kind == "unloaded" and f.cause == "shutdown":
                self.facts[i] = _replace(f, detail={**f.detail, "restarted_at": t})
        self.load = None
        self.count = 0
        self.evicting = None

    @property
    def last_time(self) -> datetime | None:
        return self._last_rec.time if self._last_rec is not None else None

    @property
    def prev_time(self) -> datetime | None:
        """The time of the record before the current one."""
        return self._prev_rec.time if self._prev_rec is not None else None

    def prefilter(self, n: int, raw: str) -> bool:
        """Lines skipped before parsing (True): a renewed keep-alive that did not change,
        and [GIN] lines while no change waits for one (kept raw for later)."""
        if "[GIN] " in raw:
            if "POST" in raw and _fast_answer(raw):
                self.fast.append((n, raw))
            if self.pending:
                return False
            self.recent.append((n, raw))
            return True
        return _TIMER in raw and self._timer_unchanged(raw)

    def _requests(self, stop_below: int | None = None) -> Iterator[Request]:
        """The recent model requests, newest first, parsing lines kept raw as needed;
        none from before line ``stop_below``."""
        for holder, k in self.recent.newest():
            item = holder[k]
            if (
                stop_below is not None
                and (item[0] if isinstance(item, tuple) else item.line_no) < stop_below
            ):
                return
            if isinstance(item, tuple):
                rec = self.reader.one(item[0], item[1]) if self.reader is not None else None
                if rec is None or rec.gin is None or not rec.gin.is_model_request:
                    continue
                item = Request.of(rec)
                holder[k] = item
            yield item

    def _timer_unchanged(self, text: str) -> bool:
        """An ``adding timer`` line with the keep-alive its runner already had (read
        without parsing the line: a busy server writes one per request)."""
        i = text.find("runner.pid=")
        j = text.rfind(" duration=")
        if i == -1 or j == -1:
            return False
        end = text.find(" ", i)
        pid_text = text[i + 11 : end if end != -1 else len(text)]
        if not pid_text.isdigit():
            return False
        r = self.by_pid.get(int(pid_text))
        return r is not None and r.keep_alive == text[j + 10 :].split(" ", 1)[0]

    def _listening(self, rec: Record) -> None:
        found = listening(rec.msg)
        if found is None:
            return
        address, version = found
        if self._start_index is not None:
            f = self.facts[self._start_index]
            detail = {**f.detail, "address": address, "version": version}
            self.facts[self._start_index] = _replace(
                f, detail=detail, lines=(*f.lines, rec.line_no)
            )
        else:  # a log read from the middle of a start
            self._add(
                LogFact(
                    rec.time or datetime.min,
                    "server_start",
                    None,
                    rec.line_no,
                    "INFO",
                    detail={"address": address, "version": version, "config": {}},
                )
            )

    def _starting_runner(self, rec: Record, t: datetime) -> None:
        cmd = rec.attrs.get("cmd", "")
        if "--model" not in cmd:
            return  # GPU discovery at startup, not a model
        digest = blob_digest(cmd)
        if digest is None:
            return
        old = self.runners.get(digest)
        self.load = _Load(
            digest,
            t,
            rec.line_no,
            reload_of=old,
            reloaded=digest in self.awaiting_after,
            count_before=self.count,
        )
        # Evictions waiting to learn which load they made room for.
        for i in self.awaiting_by:
            f = self.facts[i]
            self.facts[i] = _replace(f, detail={**f.detail, "by_digest": digest})
        self.awaiting_by = []

    def _system_memory(self, rec: Record, t: datetime) -> None:
        if self.load is not None:
            self.load.free = parse_size(rec.attrs.get("free", ""))

    def _total_memory(self, rec: Record, t: datetime) -> None:
        if self.load is not None:
            self.load.size = parse_size(rec.attrs.get("size", ""))

    def _load_request(self, rec: Record, t: datetime) -> None:
        if self.load is None or "request" not in rec.attrs:
            return
        fields = _load_fields(rec.attrs["request"])
        kv, par = fields.get("KvSize", ""), fields.get("Parallel", "")
        if fields.get("Operation", "commit") != "commit":
            return
        if kv.isdigit():
            p = int(par) if par.isdigit() and int(par) > 0 else 1
            self.load.context, self.load.parallel = int(kv) // p, p

    def _loaded_runners(self, rec: Record, t: datetime) -> None:
        count_text = rec.attrs.get("count", "")
        count = int(count_text) if count_text.isdigit() else None
        load = self.load
        if count is not None:
            before, self.count = self.count, count
        else:
            before = self.count
        if load is None:
            return
        self.load = None
        old = load.reload_of
        if old is not None and self.runners.get(load.digest) is old:
            # INFO: a second start of a blob we thought loaded. Other options (context):
            # a reload; the same: it had gone unseen (expiry, stop or eviction) and came back.
            if old.cause is None:
                if load.context is not None and old.context not in (None, load.context):
                    old.cause = ("reloaded", load.line_no, load.start, {"level": "INFO"})
                else:
                    old.cause = ("unseen", load.line_no, load.start, {"level": "INFO"})
            old.cause[3]["context_before"] = old.context
            self._unloaded(old, load.start, load.line_no, None, None, {})
        runner = _Runner(load.digest, name=self.names.get(load.digest), loaded_line=rec.line_no)
        runner.context = load.context
        self.runners[load.digest] = runner
        detail: dict[str, Any] = {
            "context": load.context,
            "parallel": load.parallel,
            "size": load.size,
            "free_memory": load.free,
            "load_s": load.load_s,
            "runners": count,
        }
        reload = load.reloaded or (
            old is not None and self.facts and self.facts[-1].cause == "reloaded"
        )
        if reload:
            detail["reload"] = True
            idx = self.awaiting_after.pop(load.digest, None)
            if idx is not None:
                f = self.facts[idx]
                self.facts[idx] = _replace(f, detail={**f.detail, "context_after": load.context})
        elif (
            not self.has_debug
            and count is not None
            and count == before
            and count == (self.max_loaded or 3)
            and len(self.runners) > count - 1
        ):
            # A new blob loaded at the limit and the count did not grow: another model
            # made room (OLLAMA_MAX_LOADED_MODELS; 0 means 3 per GPU, 3 on CPU).
            detail["made_room"] = True
        self._add(
            LogFact(
                load.start,
                "loaded",
                load.digest,
                load.line_no,
                "INFO",
                name=runner.name,
                lines=(load.line_no, rec.line_no),
                detail=detail,
            ),
            wants_request="covering",
        )
        if detail.get("made_room") and not self.has_debug:
            others = sorted(d for d in self.runners if d != load.digest)
            self._add(
                LogFact(
                    load.start,
                    "evicted_unknown",
                    None,
                    load.line_no,
                    "INFO",
                    confidence="likely",
                    detail={
                        "by_digest": load.digest,
                        "runners": count,
                        "limit": self.max_loaded,
                        "candidates": others,
                    },
                )
            )

    def _finished(self, rec: Record, t: datetime) -> None:
        r = self._runner(rec)
        if r is None:
            return
        ctx = rec.attrs.get("runner.num_ctx")
        # Name the load fact of this blob (INFO lines had only the digest).
        for i in range(len(self.facts) - 1, max(-1, len(self.facts) - 20), -1):
            f = self.facts[i]
            if f.kind == "loaded" and f.digest == r.digest:
                detail = dict(f.detail)
                if ctx and ctx.isdigit():
                    detail["num_ctx"] = int(ctx)
                self.facts[i] = _replace(f, name=f.name or r.name, detail=detail)
                break

    def _timer(self, rec: Record, t: datetime) -> None:
        r = self._runner(rec)
        if r is None:
            return
        ka = rec.attrs.get("duration")
        if not ka or ka == r.keep_alive:
            return
        before = r.keep_alive
        r.keep_alive = ka
        forever = _forever(ka)
        detail: dict[str, Any] = {
            "keep_alive": "forever" if forever else _short_go(ka),
            "keep_alive_s": None if forever else _ka_seconds(ka),
            "forever": forever,
            "before": None
            if before is None
            else ("forever" if _forever(before) else _short_go(before)),
            "before_forever": _forever(before),
        }
        self._add(
            LogFact(t, "keep_alive", r.digest, rec.line_no, "DEBUG", name=r.name, detail=detail),
            wants_request="preceding",
        )

    def _max_runners(self, rec: Record, t: datetime) -> None:
        self.evicting = "max_loaded"
        n = rec.attrs.get("runner_count", "")
        if n.isdigit() and self.max_loaded is None:
            self.max_loaded = int(n)

    def _stopped(self, rec: Record, t: datetime) -> None:
        pid_text = rec.attrs.get("pid", "")
        if not pid_text.isdigit():
            return
        r = self.by_pid.get(int(pid_text))
        if r is None or self.runners.get(r.digest) is not r:
            return
        self._unloaded(r, t, rec.line_no, None, "DEBUG", {})

    def _unloaded(
        self,
        r: _Runner,
        t: datetime,
        line_no: int,
        cause: str | None,
        level: str | None,
        extra: dict[str, Any],
    ) -> None:
        pending = r.cause
        detail: dict[str, Any] = {"keep_alive": _ka_text(r.keep_alive), "context": r.context}
        lines: list[int] = []
        confidence = "certain"
        when, cause_line = t, line_no
        if pending is not None:
            cause, cause_line, when = pending[0], pending[1], pending[2]
            lines.append(cause_line)
            detail.update({k: v for k, v in pending[3].items() if k != "level"})
            if pending[3].get("level") == "INFO":
                level = "INFO"
                confidence = "likely"
            else:
                level = "DEBUG"
        if cause == "unseen":
            confidence = "certain"  # that it had gone; not when or why
        if cause is None:
            cause = "unknown"
            confidence = "guess"
        if cause == "server_restart":
            level = "INFO"  # gone by the new start, whatever stopped it
        detail.update({k: v for k, v in extra.items() if v is not None})
        if line_no not in lines:
            lines.append(line_no)
        fact = LogFact(
            when,
            "unloaded",
            r.digest,
            cause_line,
            level or "DEBUG",
            confidence=confidence,
            cause=cause,
            name=r.name,
            lines=tuple(lines),
            detail=detail,
        )
        wants = None
        if cause in ("reloaded", "evicted"):
            wants = "covering"
        elif cause == "stopped" and detail.get("how") == "keep_alive_0":
            wants = "stop"
        elif cause == "stopped":
            wants = "preceding"
        i = self._add(fact, wants_request=wants)
        if cause == "evicted":
            self.awaiting_by.append(i)
        if cause == "reloaded":
            self.awaiting_after[r.digest] = i
        self.runners.pop(r.digest, None)
        if r.pid is not None:
            self.by_pid.pop(r.pid, None)
        r.cause = None

    def finish(self, lines: int) -> Timeline:
        names = dict(self.names)
        facts = [
            f if (name := f.name or names.get(f.digest or "")) is f.name else _replace(f, name=name)
            for f in self.facts
        ]
        tl = Timeline(
            facts=facts,
            lines=lines,
            first_time=self.first_time,
            last_time=self.last_time,
            has_debug=self.has_debug,
            names=names,
            starts=self.starts,
            fast_requests=[] if self.has_debug else self._fast_requests(),
        )
        tl.name_models({})
        return tl

    def _fast_requests(self) -> list[Request]:
        out = []
        for n, raw in self.fast:
            rec = self.reader.one(n, raw) if self.reader is not None else None
            g = rec.gin if rec is not None else None
            if (
                g is not None
                and g.status == 200
                and g.latency_s < _FAST_S
                and g.path.split("?", 1)[0] in ("/api/generate", "/api/chat")
            ):
                out.append(Request.of(rec))  # type: ignore[arg-type]
        return out


def _fast_answer(raw: str) -> bool:
    """Whether a [GIN] line's latency is under 10 ms (read without parsing the line; the
    fields are counted from ``[GIN]``, after any collector's prefix such as compose's
    ``ollama-1  | ``)."""
    parts = raw[max(0, raw.find("[GIN] ")) :].split("|")
    if len(parts) < 4:
        return False
    latency = parts[2].strip()
    if latency.endswith(("µs", "μs", "ns")):
        return True
    if latency.endswith("ms"):
        try:
            return float(latency[:-2]) < _FAST_S * 1000
        except ValueError:
            return False
    return False


@lru_cache(maxsize=1)
def _load_fields_re() -> re.Pattern[str]:
    return re.compile(r"(?<![^ {])(Operation|Parallel|KvSize):([^ }]*)")


def _load_fields(request: str) -> dict[str, str]:
    """``Operation``, ``Parallel`` and ``KvSize`` of a ``load request`` (a Go ``%+v`` of
    llm's LoadRequest; :func:`~ollama_resident.serverlog.go_fields` reads them all, this
    only the three, top-level fields that nothing nested repeats)."""
    out: dict[str, str] = {}
    for key, value in _load_fields_re().findall(request):
        out.setdefault(key, value)
    return out


def _short_go(text: str) -> str:
    """``5m0s`` -> ``5m``, ``1h0m0s`` -> ``1h``: how people write keep-alives."""
    out = text
    for tail in ("0s", "0m"):
        if out.endswith(tail) and len(out) > len(tail) and not out[-len(tail) - 1].isdigit():
            out = out[: -len(tail)]
    return out


def _ka_text(ka: str | None) -> str | None:
    if ka is None:
        return None
    return "forever" if _forever(ka) else _short_go(ka)


_HANDLERS: dict[str, Any] = {
    "server config": TimelineBuilder._server_config,
    "starting runner": TimelineBuilder._starting_runner,
    "system memory": TimelineBuilder._system_memory,
    "total memory": TimelineBuilder._total_memory,
    "load": TimelineBuilder._load_request,
    "loaded runners": TimelineBuilder._loaded_runners,
    "finished setting up": TimelineBuilder._finished,
    "runner with non-zero duration has gone idle, adding timer": TimelineBuilder._timer,
    "max runners achieved, unloading one to make room": TimelineBuilder._max_runners,
    "llama server stopped": TimelineBuilder._stopped,
}


def _cause_handler(cause: str) -> Any:
    def set_cause(self: TimelineBuilder, rec: Record, t: datetime) -> None:
        r = self._runner(rec)
        if r is None:
            return
        n = rec.line_no
        if cause == "evicted_victim":
            rule = self.evicting or "max_loaded"
            self.evicting = None
            r.cause = ("evicted", n, t, {"rule": rule, "limit": self.max_loaded})
        elif cause == "reloaded":
            r.cause = ("reloaded", n, t, {"level": "DEBUG", "context_before": r.context})
        elif cause == "expired":
            r.cause = ("expired", n, t, {})
        elif cause == "zero":
            r.cause = ("stopped", n, t, {"how": "keep_alive_0_prompt"})
        elif cause == "shutdown":
            r.cause = ("shutdown", n, t, {})
        elif cause == "expired_event" and r.cause is None:
            # Nothing before "runner expired event received": an explicit stop
            # (keep_alive 0 with an empty prompt, `ollama stop`).
            r.cause = ("stopped", n, t, {"how": "keep_alive_0"})

    return set_cause


for _msg, _cause in (
    ("found an idle runner to unload", "evicted_victim"),
    ("no idle runners, picking the shortest duration", "evicted_victim"),
    ("reloading", "reloaded"),
    ("timer expired, expiring to unload", "expired"),
    ("runner with zero duration has gone idle, expiring to unload", "zero"),
    ("shutting down runner", "shutdown"),
    ("runner expired event received", "expired_event"),
):
    _HANDLERS[_msg] = _cause_handler(_cause)


def read_timeline(
    blocks: Iterable[tuple[str | bytes, int | None, str | None]] | None = None,
    *,
    lines: Iterable[str] | None = None,
    tz: tzinfo | None = None,
    since: datetime | None = None,
) -> Timeline:
    """The timeline of a log given as blocks of whole lines (``(text, first_line_no,
    file_label)``, what :mod:`ollama_resident.logsource` reads) or as ``lines``.

    ``since`` drops facts older than it (the state before it is still followed, so an
    unload after ``since`` keeps its cause). ``tz``: the zone for ``[GIN]`` lines before
    any slog line (see :class:`~ollama_resident.serverlog.LogReader`).
    """
    from ollama_resident.logscan import walk_block

    reader = LogReader(tz=tz, messages=MESSAGES, prefixes=PREFIXES, gin="post")
    builder = TimelineBuilder()
    builder.reader = reader
    reader.prefilter = builder.prefilter
    count = 0
    head: list[str] = []  # the first and last lines read, for the window the log covers
    tail: deque[str] = deque(maxlen=_EDGE_LINES)
    if blocks is not None:
        following = 1  # the number of the line after the last block's
        last = b""
        for text, first, label in blocks:
            if label != builder.label:
                builder.label = label
            data = text if isinstance(text, bytes) else text.encode("utf-8")
            n = walk_block(
                reader, builder, data, following if first is None else first, MESSAGES, PREFIXES
            )
            following = (following if first is None else first) + n
            count += n
            if not head and data:
                head = _lines_of(data[: _EDGE_LINES * 512])[:_EDGE_LINES]
            last = data or last
        tail.extend(_lines_of(last[-_EDGE_LINES * 512 :])[-_EDGE_LINES:])
    if lines is not None:
        for rec in reader.lines(_counting(lines, builder, head, tail)):
            builder.feed(rec)
        count += builder.lines
    tl = builder.finish(count)
    edge = LogReader(tz=reader.zone)
    tl.first_time = _min(_first_time(edge, head), tl.first_time)
    tl.last_time = _max(_first_time(edge, reversed(tail)), tl.last_time)
    if since is not None:
        tl.facts = [f for f in tl.facts if f.time >= since]
    return tl


_EDGE_LINES = 200  # how far from each end of a read the first/last timed line is looked for


def _counting(
    lines: Iterable[str], builder: TimelineBuilder, head: list[str], tail: deque[str]
) -> Iterator[str]:
    for line in lines:
        builder.lines += 1
        if len(head) < _EDGE_LINES:
            head.append(line)
        tail.append(line)
        yield line


def _lines_of(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").splitlines()


def _first_time(reader: LogReader, lines: Iterable[str]) -> datetime | None:
    """The time of the first of ``lines`` that is a line of the server's own."""
    for raw in lines:
        rec = reader.one(0, raw)
        if rec is not None and rec.kind != "text" and rec.time is not None:
            return rec.time
    return None


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
