"""What the Ollama server actually runs with: version, ``OLLAMA_*`` settings, devices, limits.

Pure: lines and records go in, :class:`ServerFacts` comes out. Reading the log, a
process environment or a service manager is :mod:`ollama_resident.factsources`'s job.

Where each fact comes from, best first (every value carries its source in words):

1. the newest start block of the server's log: ``msg="server config" env="map[...]"``
   (every ``OLLAMA_*`` setting as the server parsed it, ``server/routes.go`` ``Serve``),
   ``msg="Listening on ADDR (version V)"``, one ``msg="inference compute" ... total=...
   available=...`` per device and ``msg="vram-based default context"``; later
   ``msg="system memory"`` lines (one per load) give the memory free now;
2. the environment of the running ``ollama serve`` process (``/proc/PID/environ``);
3. the service manager (``systemctl show ollama -p Environment``, ``docker inspect``);
   a setting these do not name has Ollama's default;
4. else "unknown", with the reason.

Values are read by Ollama's own rules (``envconfig/config.go``): ``OLLAMA_KEEP_ALIVE`` is
a Go duration, else integer seconds, else 5m, negative is forever; ``OLLAMA_DEBUG`` is a
bool or a level; ``OLLAMA_MAX_LOADED_MODELS`` 0 (or unset) is automatic: 3 per GPU, 3 on
CPU, computed at the first load (``server/sched.go``, ``defaultModelsPerGPU``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from ollama_resident import serverlog
from ollama_resident.durations import (
    MAX_DURATION_NS,
    DurationError,
    KeepAlive,
    parse_go_duration,
)

__all__ = [
    "DEFAULTS",
    "Device",
    "Limit",
    "LogRecord",
    "ServerFacts",
    "Setting",
    "describe_value",
    "env_keep_alive",
    "facts_from_environment",
    "facts_from_records",
    "log_level",
    "plan_limits",
    "same_setting",
    "unknown",
]

MODELS_PER_GPU = 3
"""``defaultModelsPerGPU`` in ``server/sched.go``: the automatic cap is 3 x GPUs (3 on CPU)."""

_DEFAULT_KEEP_ALIVE_NS = 5 * 60 * 1_000_000_000

# What a 0.24 server prints for a setting nobody set (07 logs; envconfig.AsMap).
DEFAULTS: Mapping[str, str] = {
    "OLLAMA_CONTEXT_LENGTH": "0",
    "OLLAMA_DEBUG": "INFO",
    "OLLAMA_FLASH_ATTENTION": "false",
    "OLLAMA_GPU_OVERHEAD": "0",
    "OLLAMA_HOST": "http://127.0.0.1:11434",
    "OLLAMA_KEEP_ALIVE": "5m0s",
    "OLLAMA_LOAD_TIMEOUT": "5m0s",
    "OLLAMA_MAX_LOADED_MODELS": "0",
    "OLLAMA_MAX_QUEUE": "512",
    "OLLAMA_NOHISTORY": "false",
    "OLLAMA_NOPRUNE": "false",
    "OLLAMA_NUM_PARALLEL": "1",
    "OLLAMA_ORIGINS": "",
    "OLLAMA_SCHED_SPREAD": "false",
}

_BOOL_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_BOOL_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_UINT_KEYS = {
    "OLLAMA_MAX_LOADED_MODELS",
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_MAX_QUEUE",
    "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_GPU_OVERHEAD",
    "OLLAMA_MAX_TRANSFER_STREAMS",
}
_DURATION_KEYS = {"OLLAMA_KEEP_ALIVE", "OLLAMA_LOAD_TIMEOUT"}


class LogRecord(Protocol):
    """One parsed log line, as the server-log reader gives it (only what this module reads)."""

    @property
    def msg(self) -> str: ...

    @property
    def attrs(self) -> Mapping[str, str]: ...

    @property
    def time(self) -> datetime | None: ...

    @property
    def line_no(self) -> int: ...


@dataclass(frozen=True)
class Setting:
    """One ``OLLAMA_*`` value as the server has it, and where that was read.

    ``raw`` is the text as found (the server's own print in a log, the variable's text in
    an environment). ``default`` is True when nothing set it and Ollama's default applies.
    """

    key: str
    raw: str
    source: str
    default: bool = False

    def shown(self) -> str:
        """``OLLAMA_KEEP_ALIVE=5m0s (Ollama's default)`` style words."""
        return f"{self.key}={self.raw}" + (" (Ollama's default)" if self.default else "")


@dataclass(frozen=True)
class Device:
    """One ``inference compute`` device: ``library`` is ``cpu`` for the CPU. Bytes or None."""

    id: str
    library: str
    name: str
    description: str
    total: int | None
    available: int | None

    @property
    def is_gpu(self) -> bool:
        return self.library.lower() != "cpu" and self.id.lower() != "cpu"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "library": self.library,
            "name": self.name,
            "description": self.description,
            "total": self.total,
            "available": self.available,
        }


@dataclass(frozen=True)
class Limit:
    """A number the plan needs (the cap, the memory), or None; always with where it came from."""

    value: int | None
    source: str
    known: bool  # False: a guess (Ollama's usual default), the server's own value unread
    label: str = ""  # a few words for messages: "OLLAMA_MAX_LOADED_MODELS=2", "--max-loaded 3"

    @property
    def short(self) -> str:
        return self.label or self.source

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "known": self.known}


@dataclass(frozen=True)
class ServerFacts:
    """What is known about the server's configuration, each value with its source.

    ``origin`` names where the settings were read (None: nowhere, see ``reason``).
    ``from_log`` is True when they come from a ``server config`` line, which lists every
    setting; otherwise a setting missing from ``env`` has Ollama's default.
    """

    origin: str | None
    reason: str | None = None  # why nothing better was found
    from_log: bool = False
    version: str | None = None
    version_source: str | None = None
    env: Mapping[str, Setting] = field(default_factory=dict)
    devices: tuple[Device, ...] = ()
    devices_source: str | None = None
    default_num_ctx: int | None = None  # "vram-based default context"
    system_total: int | None = None  # newest "system memory" line
    system_free: int | None = None
    system_memory_source: str | None = None
    listening: str | None = None  # "127.0.0.1:11434" from "Listening on"
    started_at: datetime | None = None
    notes: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return self.origin is not None

    def setting(self, key: str) -> Setting | None:
        """The server's value of ``key``; Ollama's default if the source names only what is set."""
        found = self.env.get(key)
        if found is not None:
            return found
        if self.origin is None or self.from_log:
            return None  # a log lists every key its version knows: absent means unknown
        default = DEFAULTS.get(key)
        if default is None:
            return None
        return Setting(key, default, f"not set in {self.origin}", default=True)

    def keep_alive(self) -> KeepAlive | None:
        s = self.setting("OLLAMA_KEEP_ALIVE")
        return None if s is None else env_keep_alive(s.raw)

    def gpu_count(self) -> int | None:
        if not self.devices:
            return None
        return sum(1 for d in self.devices if d.is_gpu)

    def max_loaded(self) -> Limit:
        """The effective ``OLLAMA_MAX_LOADED_MODELS``: set, or 3 x GPUs (3 on CPU)."""
        s = self.setting("OLLAMA_MAX_LOADED_MODELS")
        if s is None:
            if self.origin is None:
                why = self.reason or "no server log, process or service found"
            else:
                why = f"{self.origin} does not list OLLAMA_MAX_LOADED_MODELS"
            return Limit(
                MODELS_PER_GPU,
                "assumed: Ollama's automatic value on CPU or one GPU; the server's own "
                f"setting was not found: {why}",
                known=False,
                label="assumed: Ollama's usual default",
            )
        n = _uint(s.raw)
        if n:
            return Limit(
                n,
                f"OLLAMA_MAX_LOADED_MODELS={n}, from {s.source}",
                known=True,
                label=f"OLLAMA_MAX_LOADED_MODELS={n}",
            )
        gpus = self.gpu_count()
        if gpus is None:
            return Limit(
                MODELS_PER_GPU,
                f"OLLAMA_MAX_LOADED_MODELS={s.raw or 0} (automatic: 3 per GPU) from {s.source}; "
                "GPU count unknown, assumed CPU or one GPU",
                known=False,
                label="OLLAMA_MAX_LOADED_MODELS automatic, assumed 1 GPU or CPU",
            )
        where = "on CPU" if gpus == 0 else f"x {gpus} GPU{'s' if gpus != 1 else ''}"
        return Limit(
            MODELS_PER_GPU * max(gpus, 1),
            f"OLLAMA_MAX_LOADED_MODELS={s.raw or 0}: automatic, 3 {where} "
            f"(from {s.source}; devices from {self.devices_source})",
            known=True,
            label=f"OLLAMA_MAX_LOADED_MODELS automatic: 3 {where}",
        )

    def memory(self) -> Limit:
        """Memory Ollama may fill: GPU memory available at start, else system memory free.

        A guess at best (other programs use memory too): ``known`` is False for it.
        """
        gpus = [d for d in self.devices if d.is_gpu and d.available]
        if gpus:
            total = sum(d.available or 0 for d in gpus)
            return Limit(total, f"GPU memory available at start, from {self.devices_source}", False)
        if self.system_free:
            return Limit(
                self.system_free,
                f"system memory free at the last load, from {self.system_memory_source}",
                False,
            )
        cpus = [d for d in self.devices if not d.is_gpu and d.available]
        if cpus:
            return Limit(
                cpus[0].available,
                f"system memory available at start, from {self.devices_source}",
                False,
            )
        return Limit(None, "unknown: no device or memory line found", False)

    def log_level(self) -> str | None:
        s = self.setting("OLLAMA_DEBUG")
        return None if s is None else log_level(s.raw)

    def default_context(self) -> tuple[int | None, str]:
        """The context a request without ``num_ctx`` gets, and why (before the model's cap)."""
        s = self.setting("OLLAMA_CONTEXT_LENGTH")
        n = _uint(s.raw) if s is not None else None
        if s is not None and n:
            return n, f"OLLAMA_CONTEXT_LENGTH={n}, from {s.source}"
        if self.default_num_ctx:
            return (
                self.default_num_ctx,
                f"Ollama's memory-based default, from {self.devices_source or self.origin}",
            )
        return None, "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "reason": self.reason,
            "version": self.version,
            "version_source": self.version_source,
            "listening": self.listening,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "env": {
                k: {"value": s.raw, "source": s.source, "default": s.default}
                for k, s in sorted(self.env.items())
            },
            "devices": [d.to_json() for d in self.devices],
            "devices_source": self.devices_source,
            "default_num_ctx": self.default_num_ctx,
            "system_memory": {
                "total": self.system_total,
                "free": self.system_free,
                "source": self.system_memory_source,
            },
            "max_loaded": self.max_loaded().to_json(),
            "memory": self.memory().to_json(),
            "notes": list(self.notes),
        }


def unknown(reason: str) -> ServerFacts:
    """No source answered: every limit falls back to a stated assumption."""
    return ServerFacts(origin=None, reason=reason)


# -- values, by Ollama's rules -----------------------------------------------------------------


def _trim(raw: str) -> str:
    """``envconfig.Var``: surrounding whitespace, then quotes, removed."""
    return raw.strip().strip("\"'")


def _uint(raw: str) -> int | None:
    t = _trim(raw)
    return int(t) if t.isdigit() else None


def env_keep_alive(raw: str) -> KeepAlive:
    """``OLLAMA_KEEP_ALIVE`` as ``envconfig.KeepAlive`` reads it (contract §1.4).

    >>> [env_keep_alive(v).describe() for v in ("", "-1", "24h", "300", "1d", "0")]
    ['5m', 'forever', '24h', '5m', '5m', 'unload']
    >>> env_keep_alive("2562047h47m16.854775807s").describe()
    'forever'
    """
    t = _trim(raw)
    ns = _DEFAULT_KEEP_ALIVE_NS
    if t:
        try:
            ns = parse_go_duration(t)
        except DurationError:
            try:
                ns = int(t) * 1_000_000_000
            except ValueError:
                ns = _DEFAULT_KEEP_ALIVE_NS
    if ns < 0 or ns >= MAX_DURATION_NS:
        return KeepAlive.forever()
    if ns == 0:
        return KeepAlive.unload()
    return KeepAlive("finite", ns)


def log_level(raw: str) -> str:
    """``OLLAMA_DEBUG`` as ``envconfig.LogLevel`` reads it, or the level a server printed.

    >>> [log_level(v) for v in ("", "1", "true", "2", "0", "false", "INFO", "DEBUG", "DEBUG-4")]
    ['INFO', 'DEBUG', 'DEBUG', 'TRACE', 'INFO', 'INFO', 'INFO', 'DEBUG', 'TRACE']
    """
    t = _trim(raw)
    upper = t.upper()
    if upper in ("INFO", "WARN", "ERROR", "DEBUG"):
        return upper
    if upper in ("TRACE", "DEBUG-4"):
        return "TRACE"
    if t in _BOOL_TRUE:
        return "DEBUG"
    try:
        n = int(t)
    except ValueError:
        return "INFO"
    if n >= 2:
        return "TRACE"
    return "DEBUG" if n == 1 else "INFO"


def _bool(raw: str) -> bool | None:
    t = _trim(raw)
    if t in _BOOL_TRUE:
        return True
    if t in _BOOL_FALSE or t == "":
        return False
    return None


def _normal(key: str, raw: str) -> object:
    """A value in a form two spellings can be compared in (``-1`` vs ``2562047h...``)."""
    if key in _DURATION_KEYS:
        if key == "OLLAMA_KEEP_ALIVE":
            return env_keep_alive(raw).ns
        try:
            return parse_go_duration(_trim(raw))
        except DurationError:
            return _trim(raw)
    if key == "OLLAMA_DEBUG":
        return log_level(raw)
    if key in _UINT_KEYS:
        n = _uint(raw)
        return n if n is not None else (0 if not _trim(raw) else _trim(raw))
    if key == "OLLAMA_ORIGINS":
        return None  # a list the server extends with its defaults: compared by membership
    b = _bool(raw)
    return b if b is not None else _trim(raw)


def same_setting(key: str, shell: str, server: str) -> bool:
    """Whether this shell's value of ``key`` means what the server runs with.

    >>> same_setting("OLLAMA_KEEP_ALIVE", "-1", "2562047h47m16.854775807s")
    True
    >>> same_setting("OLLAMA_KEEP_ALIVE", "24h", "2562047h47m16.854775807s")
    False
    >>> same_setting("OLLAMA_DEBUG", "1", "DEBUG"), same_setting("OLLAMA_NUM_PARALLEL", "2", "1")
    (True, False)
    """
    if key == "OLLAMA_ORIGINS":
        wanted = {o.strip() for o in _trim(shell).split(",") if o.strip()}
        have = set(_list_items(server))
        return wanted <= have
    return _normal(key, shell) == _normal(key, server)


def _list_items(value: str) -> list[str]:
    """``[a b c]`` (a Go slice print) or ``a,b,c`` (an environment value) as items."""
    t = value.strip()
    if t.startswith("[") and t.endswith("]"):
        return t[1:-1].split()
    return [x.strip() for x in t.split(",") if x.strip()]


def describe_value(key: str, raw: str) -> str:
    """Words for a value: ``forever`` for the long keep-alive, else the text.

    >>> describe_value("OLLAMA_KEEP_ALIVE", "2562047h47m16.854775807s")
    'forever (2562047h47m16.854775807s)'
    >>> describe_value("OLLAMA_KEEP_ALIVE", "-1"), describe_value("OLLAMA_DEBUG", "1")
    ('forever (-1)', 'DEBUG (1)')
    """
    if key == "OLLAMA_KEEP_ALIVE":
        ka = env_keep_alive(raw)
        words = ka.describe()
        return raw if words == raw else f"{words} ({raw or 'unset'})"
    if key == "OLLAMA_DEBUG":
        level = log_level(raw)
        return raw if level == raw else f"{level} ({raw or 'unset'})"
    return raw


# -- from log records --------------------------------------------------------------------------


def facts_from_records(
    records: Iterable[LogRecord], origin: str, *, by_time: bool = False
) -> ServerFacts:
    """Facts from the newest start block of a server log (records oldest first).

    ``origin`` names the log (a path, ``journalctl -u ollama``). A log with no
    ``server config`` line gives unknown facts with the reason. Each value's source
    names its line by number, or with ``by_time`` (a journal, read in parts: its line
    numbers mean nothing) by the line's own time.
    """
    block: ServerFacts | None = None
    devices: list[Device] = []
    for rec in records:
        msg = rec.msg
        attrs = rec.attrs
        when = rec.time if by_time else None
        if when is not None:
            where = f"{origin} at {when.isoformat(timespec='seconds')}"
        else:
            where = f"{origin} line {rec.line_no}"
        if msg == "server config" and "env" in attrs:
            env = serverlog.env_map(attrs["env"])
            settings = {
                k: Setting(k, v, f"the server log ({where}, server config)")
                for k, v in env.items()
                if k.startswith("OLLAMA_")
            }
            devices = []
            block = ServerFacts(
                origin=f"the server log ({origin})",
                from_log=True,
                env=settings,
                started_at=rec.time,
            )
            continue
        if block is None:
            continue
        listening = serverlog.listening(msg)
        if listening is not None and block.version is None:
            block = replace(
                block,
                listening=listening[0],
                version=listening[1] or None,
                version_source=f"the server log ({where})",
            )
        elif msg == "inference compute":
            devices.append(
                Device(
                    id=attrs.get("id", ""),
                    library=attrs.get("library", ""),
                    name=attrs.get("name", ""),
                    description=attrs.get("description", ""),
                    total=serverlog.parse_size(attrs.get("total", "")),
                    available=serverlog.parse_size(attrs.get("available", "")),
                )
            )
            block = replace(
                block, devices=tuple(devices), devices_source=f"the server log ({where})"
            )
        elif msg == "vram-based default context":
            n = _uint(attrs.get("default_num_ctx", ""))
            if n:
                block = replace(block, default_num_ctx=n)
        elif msg == "system memory":
            block = replace(
                block,
                system_total=serverlog.parse_size(attrs.get("total", "")),
                system_free=serverlog.parse_size(attrs.get("free", "")),
                system_memory_source=f"the server log ({where})",
            )
    if block is None:
        return unknown(f"no `server config` line in {origin}")
    return block


def facts_from_environment(
    environ: Mapping[str, str], origin: str, *, version: str | None = None
) -> ServerFacts:
    """Facts from a process environment or a service definition (only what is set is named)."""
    settings = {k: Setting(k, v, origin) for k, v in environ.items() if k.startswith("OLLAMA_")}
    return ServerFacts(origin=origin, env=settings, version=version)


def plan_limits(
    facts: ServerFacts, max_loaded: int | None, memory: int | None
) -> tuple[Limit, Limit]:
    """The cap and memory a plan uses: the options when given, else the server's facts.

    ``max_loaded`` 0 means no cap. Memory from the facts is an estimate (``known`` False).
    """
    if max_loaded is not None:
        option = f"--max-loaded {max_loaded}"
        cap = Limit(max_loaded or None, option, True, option)
    else:
        cap = facts.max_loaded()
    mem = Limit(memory, "--memory", True) if memory is not None else facts.memory()
    return cap, mem
