"""Where :mod:`ollama_resident.serverfacts` gets its input: the only I/O behind it.

Each reader is bounded (a file read from its end, every subprocess with a 1 s timeout,
a journal read newest first back to the server's newest start within 2 s, through
:mod:`ollama_resident.logsource`, the one place commands and logs are read), never
needs root and never raises: what it could not read becomes a reason in words.

- the server log: a file (or stdin) named by the user, else the usual places;
- the running ``ollama serve``: ``/proc/PID/cmdline`` (anyone may read it) and
  ``/proc/PID/environ`` (the same user or root only), ``/proc/PID/cgroup`` for the
  service manager that started it;
- ``systemctl show ollama``: the unit's ``Environment=`` (systemd installs, Linux script);
- ``docker ps`` / ``docker inspect``: a container of the ``ollama/ollama`` image that
  publishes the server's port, and its ``Config.Env``;
- macOS: the app's ``~/.ollama/logs/server.log``; ``launchctl getenv`` for a variable.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from ollama_resident import serverfacts
from ollama_resident.host import Host
from ollama_resident.serverfacts import ServerFacts

if TYPE_CHECKING:
    from ollama_resident.doctor import GuardService
    from ollama_resident.logsource import LogSource

__all__ = [
    "Manager",
    "ServeProcess",
    "facts_from_source",
    "gather",
    "guard_service",
]

SUBPROCESS_TIMEOUT_S = 1.0  # each command doctor runs, a log command's every read too
JOURNAL_BUDGET_S = 2.0  # reading the journal back to the newest start, in all
LOG_MAX_BYTES = 64 * 1024 * 1024  # of a log, its last 64 MiB: the newest start is in there

ManagerKind = Literal["systemd", "launchd", "docker", "shell", "unknown"]


@dataclass(frozen=True)
class Manager:
    """What runs the server, so a fix can be written for it.

    ``name`` is the unit (``ollama.service``), the container, or ``ollama serve``.
    """

    kind: ManagerKind
    name: str
    evidence: str


@dataclass(frozen=True)
class ServeProcess:
    pid: int
    argv: tuple[str, ...]
    environ: Mapping[str, str] | None  # None: not readable
    environ_error: str | None
    cgroup: str
    port: int
    log_file: str | None = None  # its stderr, when that is a regular file (`serve 2> FILE`)


@dataclass
class Gathered:
    """Everything read about the server from outside the HTTP API."""

    facts: ServerFacts
    manager: Manager
    tried: list[str] = field(default_factory=list)  # what was looked at, in words


# -- the log -----------------------------------------------------------------------------------


# The start block's lines, and the memory line each load writes: all the facts need.
FACT_MESSAGES = (
    "server config",
    "inference compute",
    "vram-based default context",
    "system memory",
)
FACT_PREFIXES = ("Listening on ",)


def facts_from_source(source: LogSource) -> ServerFacts:
    """Facts from a log found or opened by :mod:`ollama_resident.logsource` (read once)."""
    from ollama_resident import serverlog

    reader = serverlog.LogReader(messages=FACT_MESSAGES, prefixes=FACT_PREFIXES, gin="none")

    def records() -> Iterator[serverlog.Record]:
        following = 1
        for text, first, _label in source.blocks:
            start = following if first is None else first
            following = start + text.count(b"\n")
            yield from reader.block(text, start)

    # A journal is read in parts (its newest start, or its last lines): its lines are
    # named by their time, which `journalctl --since` finds, not by a number.
    by_time = source.kind in ("journal", "journal-user")
    return serverfacts.facts_from_records(records(), source.name, by_time=by_time)


def _run(argv: list[str]) -> tuple[int, str, str]:
    """:func:`logsource.run` with doctor's timeout."""
    from ollama_resident import logsource

    return logsource.run(argv, SUBPROCESS_TIMEOUT_S)


def _log_sources(
    host: Host, manager: Manager, process: ServeProcess | None
) -> Iterator[LogSource | str]:
    """Logs to try, best first (the same places as `why`), or why one could not be read.

    Where the ``ollama serve`` process writes its stderr, when that is a file; the
    container's ``docker logs``; then :func:`logsource.discover` (the journal, the app's
    file). Each is read lazily, so a later one costs nothing when an earlier one answers.
    """
    from ollama_resident import logsource

    if process is not None and process.log_file:
        try:
            src = logsource.from_file(process.log_file, max_bytes=LOG_MAX_BYTES)
            src.name = f"{process.log_file} (where process {process.pid} writes)"
            yield src
        except OSError as exc:
            yield f"{process.log_file}: {exc.strerror or exc}"
    if manager.kind == "docker":
        found, attempt = logsource.from_docker(
            manager.name, max_bytes=LOG_MAX_BYTES, timeout=SUBPROCESS_TIMEOUT_S
        )
        yield found if found is not None else f"{attempt.name}: {attempt.reason}"
    # Of a journal, only the newest start's lines, read from its end (`journalctl --reverse
    # --grep`): a journal of many GB answers as fast as a small one.
    newest = logsource.NewestStart(
        start='msg="server config"',
        words=(*FACT_MESSAGES, *FACT_PREFIXES),
        budget=JOURNAL_BUDGET_S,
    )
    found, attempts = logsource.discover(
        host.host, max_bytes=LOG_MAX_BYTES, timeout=SUBPROCESS_TIMEOUT_S, newest=newest
    )
    for a in attempts:
        if not a.ok:
            yield f"{a.name}: {a.reason}"
    if found is not None:
        yield found


# -- the process -------------------------------------------------------------------------------


def _port_of(value: str | None) -> int:
    """The port an ``OLLAMA_HOST`` value makes the server listen on (11434 by default)."""
    if not value:
        return 11434
    text = value.strip().strip("\"'")
    if "://" in text:
        scheme, text = text.split("://", 1)
    else:
        scheme = ""
    text = text.split("/", 1)[0]
    if text.startswith("["):
        _host, _, rest = text.partition("]")
        port = rest.lstrip(":")
    elif text.count(":") == 1:
        port = text.split(":")[1]
    else:
        port = ""
    if port.isdigit():
        return int(port)
    return {"http": 80, "https": 443}.get(scheme, 11434)


def find_serve_processes(proc: Path = Path("/proc")) -> list[ServeProcess]:
    """Every ``ollama serve`` this user can see (Linux ``/proc``; empty elsewhere)."""
    found: list[ServeProcess] = []
    try:
        entries = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return found
    for entry in entries:
        try:
            argv = tuple(
                a.decode(errors="replace")
                for a in (entry / "cmdline").read_bytes().split(b"\0")
                if a
            )
        except OSError:
            continue
        if len(argv) < 2 or Path(argv[0]).name not in ("ollama", "ollama.exe"):
            continue
        if "serve" not in argv[1:3]:
            continue
        environ: dict[str, str] | None = None
        error = None
        try:
            raw = (entry / "environ").read_bytes()
            environ = {}
            for item in raw.split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep:
                    environ[key] = value
        except PermissionError:
            error = (
                f"/proc/{entry.name}/environ is readable only by the user the server runs as "
                "(or root)"
            )
        except OSError as exc:
            error = f"/proc/{entry.name}/environ: {exc.strerror or exc}"
        try:
            cgroup = (entry / "cgroup").read_text(errors="replace")
        except OSError:
            cgroup = ""
        port = _port_of((environ or {}).get("OLLAMA_HOST"))
        log_file = None
        try:  # `ollama serve > server.log 2>&1`: its slog lines go to that file
            target = os.readlink(entry / "fd" / "2")
            if target.startswith("/") and Path(target).is_file():
                log_file = target
        except OSError:
            pass
        found.append(ServeProcess(int(entry.name), argv, environ, error, cgroup, port, log_file))
    return found


def _manager_from_cgroup(p: ServeProcess) -> Manager | None:
    text = p.cgroup
    for line in text.splitlines():
        path = line.rsplit(":", 1)[-1]
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if "docker" in path or "containerd" in path or name.startswith("libpod"):
            return None  # a container: docker names it
        if name.endswith(".service") and "user@" not in path and "session" not in name:
            return Manager("systemd", name, f"process {p.pid} runs in {name}")
    return None


# -- systemd and docker ------------------------------------------------------------------------


def parse_systemd_environment(value: str) -> dict[str, str]:
    """``Environment=`` of ``systemctl show``: space-separated, each word maybe quoted.

    >>> parse_systemd_environment('OLLAMA_HOST=0.0.0.0 "OLLAMA_ORIGINS=a b" X=1')
    {'OLLAMA_HOST': '0.0.0.0', 'OLLAMA_ORIGINS': 'a b', 'X': '1'}
    """
    import shlex

    try:
        words = shlex.split(value)
    except ValueError:
        words = value.split()
    out: dict[str, str] = {}
    for word in words:
        key, sep, val = word.partition("=")
        if sep:
            out[key] = val
    return out


def systemd_unit(unit: str = "ollama.service") -> tuple[dict[str, str] | None, str]:
    """``systemctl show UNIT``'s properties, or None and why."""
    code, text, err = _run(
        [
            "systemctl",
            "show",
            unit,
            "--no-pager",
            "-p",
            "LoadState",
            "-p",
            "ActiveState",
            "-p",
            "MainPID",
            "-p",
            "Environment",
            "-p",
            "FragmentPath",
        ]
    )
    if code != 0:
        return None, f"systemctl show {unit}: {err or 'failed'}"
    props = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key] = value
    if props.get("LoadState") != "loaded":
        return None, f"no {unit} unit"
    return props, ""


def docker_container(port: int) -> tuple[tuple[str, dict[str, str]] | None, str]:
    """The running container of an Ollama image publishing ``port``, and its environment."""
    code, text, err = _run(
        ["docker", "ps", "--no-trunc", "--format", "{{.Names}}\t{{.Image}}\t{{.Ports}}"]
    )
    if code != 0:
        return None, f"docker ps: {err or 'failed'}"
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or "ollama" not in parts[1].lower():
            continue
        name, ports = parts[0], parts[2]
        if f":{port}->" not in ports and not (ports == "" and port == 11434):
            continue
        code, env_text, err = _run(["docker", "inspect", "--format", "{{json .Config.Env}}", name])
        env: dict[str, str] = {}
        if code == 0:
            try:
                items = json.loads(env_text)
            except ValueError:
                items = []
            for item in items if isinstance(items, list) else []:
                key, sep, value = str(item).partition("=")
                if sep:
                    env[key] = value
        return (name, env), ""
    return None, f"no running Ollama container publishes port {port}"


# -- all together ------------------------------------------------------------------------------


def _log_matches(facts: ServerFacts, host: Host, version: str | None) -> str | None:
    """Why the log's newest start is not the server at ``host``, or None when it may be."""
    if facts.listening:
        port = _port_of(facts.listening)
        if port != host.port and host.port not in (80, 443):
            return f"its newest start listens on {facts.listening}, not port {host.port}"
    if version and facts.version and facts.version != version:
        return (
            f"its newest start is version {facts.version} but the server answers {version}: "
            "the log is older than the running server"
        )
    return None


def gather(
    host: Host,
    *,
    version: str | None,
    server_log: str | None = None,
    stdin: IO[bytes] | None = None,
    proc: Path = Path("/proc"),
) -> Gathered:
    """Facts by precedence (log, process, service manager), and the manager found.

    ``server_log`` is a path or ``-`` (then ``stdin`` is read); otherwise the log is
    looked for: where the ``ollama serve`` process writes its stderr, the journal, docker,
    the macOS app's file. A log whose newest start does not match the server (another
    port, another version) is not used. ``proc`` is where processes are listed.
    """
    from ollama_resident import logsource

    tried: list[str] = []
    local = logsource.is_local(host.host)
    manager = Manager("unknown", "", "not on this machine" if not local else "nothing found")
    processes = find_serve_processes(proc) if local and sys.platform.startswith("linux") else []
    process = next((p for p in processes if p.port == host.port), None)
    if process is None and len(processes) == 1 and processes[0].environ is None:
        process = processes[0]  # its port is unknown without its environment
    systemd: dict[str, str] | None = None
    if local:
        if process is not None:
            found = _manager_from_cgroup(process)
            if found is not None:
                manager = found
        if manager.kind == "unknown" and sys.platform.startswith("linux"):
            systemd, why = systemd_unit()
            if systemd is not None and systemd.get("ActiveState") == "active":
                manager = Manager(
                    "systemd", "ollama.service", "systemctl: ollama.service is active"
                )
            elif why:
                tried.append(why)
        if manager.kind == "unknown" and sys.platform == "darwin":
            app = Path("/Applications/Ollama.app")
            if app.exists():
                manager = Manager("launchd", "Ollama.app", "the Ollama app is installed")
        docker: tuple[str, dict[str, str]] | None = None
        if manager.kind == "unknown":
            docker, why = docker_container(host.port)
            if docker is not None:
                manager = Manager("docker", docker[0], f"container {docker[0]} publishes the port")
            elif why:
                tried.append(why)
        if manager.kind == "unknown" and process is not None:
            manager = Manager(
                "shell", "ollama serve", f"process {process.pid} (`{' '.join(process.argv)}`)"
            )
    else:
        docker = None

    # 1. the log
    sources: Iterable[LogSource | str] = ()
    if server_log == "-":
        sources = [logsource.from_stream(stdin or sys.stdin.buffer, "standard input")]
    elif server_log:
        try:
            sources = [logsource.from_file(server_log, max_bytes=LOG_MAX_BYTES)]
        except OSError as exc:
            tried.append(f"{server_log}: {exc.strerror or exc}")
    elif local:
        sources = _log_sources(host, manager, process)
    for source in sources:
        if isinstance(source, str):
            tried.append(source)
            continue
        try:
            facts = facts_from_source(source)
        except logsource.LogUnreadable as exc:  # not text, or its command stopped answering
            tried.append(exc.message)
            continue
        if not facts.known:
            tried.append(facts.reason or f"{source.name}: no server config")
            continue
        mismatch = _log_matches(facts, host, version)
        if mismatch:
            tried.append(f"{source.name}: {mismatch}")
            continue
        return Gathered(facts, manager, tried)

    # 2. the process
    if process is not None and process.environ is not None:
        origin = f"the environment of process {process.pid} (`{' '.join(process.argv)}`)"
        facts = serverfacts.facts_from_environment(process.environ, origin, version=version)
        return Gathered(facts, manager, tried)
    if process is not None and process.environ_error:
        tried.append(process.environ_error)
    elif local and sys.platform.startswith("linux") and not processes:
        tried.append("no `ollama serve` process visible on this machine")

    # 3. the service manager
    if systemd is None and manager.kind == "systemd":
        systemd, _why = systemd_unit(manager.name)
    if systemd is not None and manager.kind == "systemd":
        env = parse_systemd_environment(systemd.get("Environment", ""))
        facts = serverfacts.facts_from_environment(
            env, f"`systemctl show {manager.name} -p Environment`", version=version
        )
        return Gathered(facts, manager, tried)
    if docker is not None:
        facts = serverfacts.facts_from_environment(
            docker[1], f"`docker inspect {docker[0]}`", version=version
        )
        return Gathered(facts, manager, tried)
    if not local:
        tried.append(
            "the server is not on this machine: give its log with --server-log "
            "(e.g. `ssh HOST journalctl -u ollama | ollama-resident doctor --server-log -`)"
        )
    reason = "; ".join(tried) if tried else "no server log, process or service found"
    return Gathered(serverfacts.unknown(reason), manager, tried)


def guard_service(profile: str) -> GuardService:
    """The guard service `service install` writes for ``profile``, and whether it runs."""
    from ollama_resident import service
    from ollama_resident.doctor import GuardService

    home = Path.home()
    if sys.platform == "darwin":
        label = service.launchd_label(profile)
        path = home / "Library" / "LaunchAgents" / f"{label}.plist"
        enable = f"launchctl load -w {path}"
        running: bool | None = None
        if path.exists():
            code, _out, _err = _run(["launchctl", "list", label])
            running = code == 0 if code >= 0 else None
        return GuardService(label, str(path), path.exists(), running, enable)
    name = service.systemd_unit_name(profile)
    path = home / ".config" / "systemd" / "user" / name
    enable = f"systemctl --user enable --now {name}"
    running = None
    if path.exists():
        code, out, _err = _run(["systemctl", "--user", "is-active", name])
        running = out.strip() == "active" if code >= 0 and out.strip() else None
    return GuardService(name, str(path), path.exists(), running, enable)
