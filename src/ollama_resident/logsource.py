"""Where Ollama's server log is, and reading it in bounded blocks (the only log I/O).

:func:`discover` tries, for a server on this machine, the places a log is kept and says
for each why it was not used:

- ``journalctl -u ollama`` (the Linux install script's system unit), then ``journalctl
  --user -u ollama``;
- ``~/.ollama/logs/server.log`` (the macOS app; older runs rotate into ``server-1.log``,
  ``server-2.log`` ...);
- ``%LOCALAPPDATA%\\Ollama\\server.log`` (the Windows app, rotated the same way);
- with ``--docker NAME``: ``docker logs -t NAME`` (stdout and stderr merged).

Reading is bounded: a file is read from ``max_bytes`` before its end (seeking, never
loading it whole), a command is asked for ``--since`` or its last lines, and everything
arrives as ``(text, first_line_number, label)`` blocks of whole lines of about 4 MiB.

No typer, no rich: callers render :class:`Attempt` and :class:`LogSource`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Attempt",
    "LogSource",
    "discover",
    "from_docker",
    "from_file",
    "from_stream",
    "is_local",
]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""How much of a log is read by default: its last 256 MiB."""
_CHUNK = 4 * 1024 * 1024
_COUNT_CHUNK = 16 * 1024 * 1024
_LINE_GUESS = 250  # bytes per line, to turn a byte budget into `journalctl -n`/`--tail`


@dataclass(frozen=True)
class Attempt:
    """One place tried: ``kind`` is ``journal``, ``journal-user``, ``file``, ``macos-app``,
    ``windows-app``, ``docker`` or ``stdin``; ``reason`` says why it was not used."""

    kind: str
    name: str
    ok: bool
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "ok": self.ok, "reason": self.reason}


@dataclass
class LogSource:
    """A log found: what it is and its blocks (read once)."""

    kind: str
    name: str
    blocks: Iterator[tuple[bytes, int, str | None]]
    attempts: list[Attempt] = field(default_factory=list)
    partial: bool = False  # set once reading started past the beginning

    def describe(self) -> str:
        return self.name


def is_local(hostname: str) -> bool:
    """Whether the server address is this machine (loopback, or one of its names)."""
    import socket

    name = hostname.strip("[]").lower()
    if name in ("localhost", "::1", "0.0.0.0", "::", "") or name.startswith("127."):
        return True
    try:
        mine = {socket.gethostname().lower(), socket.getfqdn().lower()}
    except OSError:
        mine = set()
    return name in mine


# -- files ---------------------------------------------------------------------------------


def _file_blocks(
    path: Path, max_bytes: int, label: str | None
) -> Iterator[tuple[bytes, int, str | None]]:
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        line = 1
        fh.seek(0)
        if start > 0:
            # True line numbers: count the newlines of the part skipped, a chunk at a time.
            fh.seek(0)
            left = start
            while left > 0:
                chunk = fh.read(min(_COUNT_CHUNK, left))
                if not chunk:
                    break
                line += chunk.count(b"\n")
                left -= len(chunk)
            # Begin after the first newline: the line cut in half is not read.
            fh.seek(start - 1)
            prev = fh.read(1)
            if prev != b"\n":
                rest = fh.readline()
                if rest.endswith(b"\n"):
                    line += 1
        yield from _blocks_of(fh, line, label)


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _blocks_of(
    fh: _Readable, line: int, label: str | None
) -> Iterator[tuple[bytes, int, str | None]]:
    carry = b""
    while True:
        chunk = fh.read(_CHUNK)
        if not chunk:
            break
        data = carry + chunk
        cut = data.rfind(b"\n")
        if cut == -1:
            carry = data
            continue
        carry = data[cut + 1 :]
        block = data[: cut + 1]
        yield block, line, label
        line += block.count(b"\n")
    if carry:  # a truncated last line
        yield carry, line, label


def from_file(
    path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, kind: str = "file"
) -> LogSource:
    """A log file, its last ``max_bytes`` (raises OSError when it cannot be opened)."""
    p = Path(path).expanduser()
    with p.open("rb"):
        pass  # fail now, with the OS's reason, not in the middle of the story
    partial = p.stat().st_size > max_bytes
    return LogSource(kind, str(p), _file_blocks(p, max_bytes, None), partial=partial)


def _rotated(path: Path, max_bytes: int, kind: str) -> LogSource:
    """``server.log`` and, budget permitting, its older runs ``server-1.log`` ... oldest first."""
    files = [path]
    budget = max_bytes - path.stat().st_size
    n = 1
    while budget > 0:
        older = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not older.is_file():
            break
        files.insert(0, older)
        budget -= older.stat().st_size
        n += 1

    def blocks() -> Iterator[tuple[bytes, int, str | None]]:
        for f in files:
            label = None if f == path else f.name
            try:
                yield from _file_blocks(f, max_bytes, label)
            except OSError:
                continue

    name = str(path) + (
        f" (and {len(files) - 1} older: {files[0].name}...)" if len(files) > 1 else ""
    )
    return LogSource(kind, name, blocks(), partial=budget < 0)


def from_stream(stream: IO[bytes], name: str = "stdin") -> LogSource:
    """A log piped in (``journalctl -u ollama | ollama-resident why --server-log -``)."""
    return LogSource("stdin", name, _blocks_of(stream, 1, None))


# -- commands ------------------------------------------------------------------------------


def _command_blocks(argv: list[str]) -> tuple[Iterator[tuple[bytes, int, str | None]], str]:
    """Run ``argv``; its first block is read now, so that a failure is known before any
    story is told. Returns the blocks and the error text ("" when it worked)."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if argv[0] == "docker" and "logs" in argv else subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = proc.stdout.read(_CHUNK)
    hints_only = len(first) < 8192 and all(
        not line.strip() or line.startswith((b"Hint:", b"-- ")) for line in first.splitlines()
    )
    if not first or hints_only:
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        err = (first.decode("utf-8", "replace") + err).strip()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
        proc.wait()
        return iter(()), err or f"no output (exit {proc.returncode})"

    def blocks() -> Iterator[tuple[bytes, int, str | None]]:
        assert proc.stdout is not None
        try:
            yield from _blocks_of(_Prepend(first, proc.stdout), 1, None)
        finally:
            proc.stdout.close()
            if proc.stderr is not None:
                proc.stderr.close()
            proc.wait()

    return blocks(), ""


class _Prepend:
    """A byte stream that first returns ``head`` then reads ``rest``."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head = head
        self.rest = rest

    def read(self, n: int = -1, /) -> bytes:
        if self.head:
            out, self.head = self.head, b""
            return out
        return self.rest.read(n)


def _journal(
    user: bool, since: datetime | None, max_bytes: int
) -> tuple[LogSource | None, Attempt]:
    kind = "journal-user" if user else "journal"
    name = "journalctl" + (" --user" if user else "") + " -u ollama"
    exe = shutil.which("journalctl")
    if exe is None:
        return None, Attempt(kind, name, False, "journalctl is not installed (no systemd)")
    argv = [
        exe,
        *(["--user"] if user else []),
        "-u",
        "ollama",
        "-o",
        "short-iso",
        "--no-pager",
        "-q",
    ]
    if since is not None:
        argv += ["--since", since.astimezone().strftime("%Y-%m-%d %H:%M:%S")]
    else:
        argv += ["-n", str(max(1000, max_bytes // _LINE_GUESS))]
    try:
        blocks, err = _command_blocks(argv)
    except OSError as exc:
        return None, Attempt(kind, name, False, f"cannot run journalctl: {exc.strerror or exc}")
    if err:
        low = err.lower()
        if "not seeing messages" in low or "permission" in low or "access" in low:
            reason = (
                "no permission to read the system journal (add yourself to the "
                "systemd-journal or adm group, or run with sudo)"
            )
        elif "no output" in low or "no entries" in low:
            reason = "no entries: no ollama unit" + (" for this user" if user else "")
            if since is not None:
                reason = "no entries in the time asked for (or no ollama unit)"
        else:
            reason = err.splitlines()[-1][:160]
        return None, Attempt(kind, name, False, reason)
    return LogSource(kind, name, blocks), Attempt(kind, name, True)


def from_docker(
    container: str, *, since: datetime | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[LogSource | None, Attempt]:
    """``docker logs -t CONTAINER`` (both streams), bounded by ``since`` or its last lines."""
    name = f"docker logs {container}"
    exe = shutil.which("docker")
    if exe is None:
        return None, Attempt("docker", name, False, "docker is not installed")
    argv = [exe, "logs", "-t"]
    if since is not None:
        argv += [
            "--since",
            since.strftime("%Y-%m-%dT%H:%M:%SZ") if since.utcoffset() == 0 else since.isoformat(),
        ]
    else:
        argv += ["--tail", str(max(1000, max_bytes // _LINE_GUESS))]
    argv.append(container)
    try:
        blocks, err = _command_blocks(argv)
    except OSError as exc:
        return None, Attempt("docker", name, False, f"cannot run docker: {exc.strerror or exc}")
    if err:
        low = err.lower()
        if "no such container" in low:
            reason = f"no such container: {container}"
        elif "permission denied" in low:
            reason = "no permission to talk to the Docker daemon (add yourself to the docker group)"
        elif "cannot connect" in low or "is the docker daemon running" in low:
            reason = "the Docker daemon is not running"
        else:
            reason = err.splitlines()[-1][:160]
        return None, Attempt("docker", name, False, reason)
    return LogSource("docker", name, blocks), Attempt("docker", name, True)


# -- discovery -----------------------------------------------------------------------------


def _app_logs() -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    local_app = os.environ.get("LOCALAPPDATA")
    if sys.platform == "win32" or local_app:
        if local_app:
            out.append(("windows-app", Path(local_app) / "Ollama" / "server.log"))
    out.append(("macos-app", Path.home() / ".ollama" / "logs" / "server.log"))
    return out


def discover(
    hostname: str,
    *,
    since: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[LogSource | None, list[Attempt]]:
    """The log of the server at ``hostname``, if it runs here: the first place that gives
    lines, and every place tried with why it gave none."""
    attempts: list[Attempt] = []
    if not is_local(hostname):
        attempts.append(
            Attempt(
                "remote",
                hostname,
                False,
                f"not local: Ollama at {hostname} runs on another machine; pass its log "
                "with --server-log FILE (or -)",
            )
        )
        return None, attempts
    if sys.platform.startswith("linux"):
        for user in (False, True):
            src, attempt = _journal(user, since, max_bytes)
            attempts.append(attempt)
            if src is not None:
                src.attempts = attempts
                return src, attempts
    for kind, path in _app_logs():
        name = str(path)
        if not path.exists():
            attempts.append(Attempt(kind, name, False, "no such file"))
            continue
        try:
            src = _rotated(path, max_bytes, kind)
        except PermissionError:
            attempts.append(Attempt(kind, name, False, "no permission to read it"))
            continue
        except OSError as exc:
            attempts.append(Attempt(kind, name, False, exc.strerror or str(exc)))
            continue
        attempts.append(Attempt(kind, src.name, True))
        src.attempts = attempts
        return src, attempts
    return None, attempts
