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
arrives as ``(text, first_line_number, label)`` blocks of whole lines of about 1 MiB (the
number is None for a block that goes on from the one before). A
line longer than :data:`MAX_LINE` is cut there; a stream that gives :data:`GIVE_UP` bytes
without a newline (``/dev/zero`` piped in) is not a text log (:class:`LogUnreadable`); a
device (``--server-log /dev/zero``) is refused when opened.

Every command runs with a timeout: :func:`run` (``systemctl show``, ``docker inspect``)
to its end, and a log command (``journalctl``, ``docker logs``) per read, so a command that
stops answering is killed and named instead of hanging the caller.

No typer, no rich: callers render :class:`Attempt` and :class:`LogSource`.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

from ollama_resident.errors import LogUnreadable

__all__ = [
    "COMMAND_TIMEOUT_S",
    "DEFAULT_MAX_BYTES",
    "GIVE_UP",
    "MAX_LINE",
    "Attempt",
    "LineSplitter",
    "LogSource",
    "LogUnreadable",
    "NewestStart",
    "ServerLines",
    "discover",
    "from_docker",
    "from_file",
    "from_stream",
    "is_local",
    "open_log_file",
    "run",
]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""How much of a log is read by default: its last 256 MiB."""
_CHUNK = 1024 * 1024  # small enough to stay in cache for the scans that follow
_COUNT_CHUNK = 16 * 1024 * 1024
_LINE_GUESS = 250  # bytes per line, to turn a byte budget into `journalctl -n`/`--tail`
MAX_LINE = 1024 * 1024
"""A log line longer than this (1 MiB) is cut here; the rest, up to its newline, is skipped."""
GIVE_UP = 64 * 1024 * 1024
"""This much of a stream without a newline (64 MiB) is not a text log: LogUnreadable."""
COMMAND_TIMEOUT_S = 30.0
"""How long a log command (``journalctl``, ``docker logs``) may keep a read waiting before it
is killed: generous, as a big journal takes seconds to seek."""
_STALLED = "did not answer within"  # a log command killed by its timeout, in its Attempt
RUN_TIMEOUT_S = 1.0
"""How long :func:`run` gives a short command (``systemctl show``, ``docker inspect``)."""


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
    # (whole lines, number of the first, label): the number is given for the first block
    # of each file or stream and is None for a block that goes on from the one before
    # (its first line follows that block's last; count them if you need the numbers).
    blocks: Iterator[tuple[bytes, int | None, str | None]]
    attempts: list[Attempt] = field(default_factory=list)
    partial: bool = False  # set once reading started past the beginning

    def describe(self) -> str:
        return self.name


class ServerLines:
    """Whether a log holds any line Ollama's server writes, told from its blocks as they
    are read (pure, cheap: a search per block until one is found).

    Ollama's own lines are slog text (``time=... level=INFO source=... msg=...``), gin's
    request lines (``[GIN] 2026/11/29 - 16:37:17 | 200 | ...``) and, before 0.5, Go's log
    lines (``2025/01/21 16:42:13 routes.go:1187: INFO server config ...``); any wrapper
    (journalctl, docker) may come before them. ``blank`` stays True while every line read
    is empty (or journalctl's ``-- No entries --``): an empty log, not a wrong file.
    """

    def __init__(self) -> None:
        self.found = False
        self.blank = True

    def feed(self, data: bytes) -> None:
        if self.found:
            return
        if self.blank and data.replace(b"-- No entries --", b"").strip():
            self.blank = False
        if not self.blank and _server_line().search(data) is not None:
            self.found = True


@functools.cache
def _server_line() -> re.Pattern[bytes]:
    return re.compile(
        rb"time=\S+ level=[A-Z]+\b"
        rb"|\[GIN\] \d{4}/\d\d/\d\d - \d\d:\d\d:\d\d \|"
        rb"|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [\w.-]+\.go:\d+: "
    )


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


# -- lines ---------------------------------------------------------------------------------


class LineSplitter:
    """Whole lines out of byte chunks, in bounded memory.

    :meth:`feed` returns the complete lines a chunk finished (ending with ``\\n``, maybe
    ``b""``); a line longer than :data:`MAX_LINE` keeps its first :data:`MAX_LINE` bytes.
    With ``give_up`` (bytes), that many without a newline raise :class:`LogUnreadable`
    naming ``name``: a stream that never ends a line is not a log.
    """

    def __init__(self, name: str, *, give_up: int | None = GIVE_UP) -> None:
        self.name = name
        self.give_up = give_up
        self.carry = b""  # the unfinished line (at most MAX_LINE bytes)
        self._skipped = 0  # bytes of an overlong line dropped so far

    @property
    def skipping(self) -> bool:
        """Inside an overlong line, dropping what follows its first MAX_LINE bytes."""
        return self._skipped > 0

    def feed(self, chunk: bytes) -> bytes:
        if self._skipped:
            nl = chunk.find(b"\n")
            if nl == -1:
                self._skipped += len(chunk)
                self._check()
                return b""
            self._skipped = 0
            chunk = chunk[nl:]  # its newline ends the cut line kept in carry
        data = self.carry + chunk if self.carry else chunk
        cut = data.rfind(b"\n")
        if cut == -1:
            self.carry = self._cap(data)
            return b""
        self.carry = self._cap(data[cut + 1 :])
        return data[: cut + 1]

    def _cap(self, tail: bytes) -> bytes:
        if len(tail) <= MAX_LINE:
            return tail
        self._skipped = len(tail) - MAX_LINE
        self._check()
        return tail[:MAX_LINE]

    def _check(self) -> None:
        if self.give_up is not None and MAX_LINE + self._skipped > self.give_up:
            raise LogUnreadable(
                f"{self.name} is not a text log: {self.give_up // (1024 * 1024)} MiB without "
                "a newline",
                hint="give Ollama's server log (journalctl -u ollama, ~/.ollama/logs/server.log)",
            )


# -- files ---------------------------------------------------------------------------------


def open_log_file(path: str | Path) -> IO[bytes]:
    """``path`` opened for reading; OSError for one that cannot be, or is not a file or a
    pipe (``/dev/zero``, a directory): reading those would never end or makes no sense."""
    import stat

    p = Path(path).expanduser()
    fh = p.open("rb")
    try:
        mode = os.fstat(fh.fileno()).st_mode
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            raise OSError("a device, not a log file (give - to read standard input)")
        if stat.S_ISDIR(mode):
            raise OSError("a directory, not a log file")
    except BaseException:
        fh.close()
        raise
    return fh


def _file_blocks(
    path: Path, max_bytes: int, label: str | None, chunk: int = _CHUNK
) -> Iterator[tuple[bytes, int | None, str | None]]:
    import stat

    with open_log_file(path) as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # a pipe (`<(journalctl ...)`)
            yield from _blocks_of(fh, 1, label, str(path), chunk=chunk)
            return
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        line = 1
        fh.seek(0)
        if start > 0:
            # True line numbers: count the newlines of the part skipped, a chunk at a time.
            fh.seek(0)
            left = start
            while left > 0:
                part = fh.read(min(_COUNT_CHUNK, left))
                if not part:
                    break
                line += part.count(b"\n")
                left -= len(part)
            # Begin after the first newline: the line cut in half is not read.
            fh.seek(start - 1)
            prev = fh.read(1)
            if prev != b"\n":
                rest = fh.readline()
                if rest.endswith(b"\n"):
                    line += 1
        # A file holds what it holds: an overlong line is cut, never the end of the story.
        yield from _blocks_of(fh, line, label, str(path), give_up=None, seekable=True, chunk=chunk)


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _blocks_of(
    fh: _Readable,
    line: int,
    label: str | None,
    name: str,
    *,
    give_up: int | None = GIVE_UP,
    seekable: bool = False,
    chunk: int = _CHUNK,
) -> Iterator[tuple[bytes, int | None, str | None]]:
    """Blocks of whole lines of ``fh``: the first numbered ``line``, the next ones None.

    ``seekable`` (a regular file): a read that ends inside a line seeks back to that
    line's start instead of carrying it over, so a block is not copied again.
    """
    lines = LineSplitter(name, give_up=give_up)
    first: int | None = line
    seek = getattr(fh, "seek", None) if seekable else None
    while True:
        got = fh.read(chunk)
        if not got:
            break
        if seek is not None and not lines.carry and not lines.skipping:
            cut = got.rfind(b"\n")
            if cut != -1:
                if cut + 1 < len(got):
                    seek(cut + 1 - len(got), os.SEEK_CUR)
                    got = got[: cut + 1]
                yield got, first, label
                first = None
                continue
        block = lines.feed(got)
        if seek is not None and block and lines.carry and not lines.skipping:
            seek(-len(lines.carry), os.SEEK_CUR)  # read the unfinished line again
            lines.carry = b""
        if block:
            yield block, first, label
            first = None
    if lines.carry:  # a truncated last line
        yield lines.carry, first, label


def from_file(
    path: str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    kind: str = "file",
    chunk: int = _CHUNK,
) -> LogSource:
    """A log file, its last ``max_bytes`` (raises OSError when it cannot be opened), read
    ``chunk`` bytes at a time (blocks are whole lines: one may be longer)."""
    p = Path(path).expanduser()
    with open_log_file(p):
        pass  # fail now, with the OS's reason, not in the middle of the story
    partial = p.stat().st_size > max_bytes
    return LogSource(kind, str(p), _file_blocks(p, max_bytes, None, chunk), partial=partial)


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

    def blocks() -> Iterator[tuple[bytes, int | None, str | None]]:
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
    return LogSource("stdin", name, _blocks_of(stream, 1, None, name))


# -- commands ------------------------------------------------------------------------------


def run(argv: Sequence[str], timeout: float = RUN_TIMEOUT_S) -> tuple[int, str, str]:
    """Run a short read-only command to its end: ``(exit code, stdout, first stderr line)``.

    ``(-1, "", reason)`` when it is not installed, cannot run, or is not done within
    ``timeout`` seconds (then it is killed). Never raises.
    """
    if shutil.which(argv[0]) is None:
        return -1, "", f"{argv[0]} not found"
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "LC_ALL": "C", "SYSTEMD_PAGER": "", "PAGER": "cat"},
            start_new_session=True,  # one process group, killed whole on a timeout
        )
    except OSError as exc:
        return -1, "", f"{argv[0]}: {exc.strerror or exc}"
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        return -1, "", f"{argv[0]} did not answer within {timeout:g}s"
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return proc.returncode, out.decode("utf-8", "replace"), lines[0].strip() if lines else ""


class _Watched:
    """A log command's stdout whose every read may wait at most ``timeout`` seconds for
    output; then the command (its whole process group) is killed and ``stalled`` is set."""

    def __init__(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        assert isinstance(proc.stdout, io.BufferedReader)  # a pipe, opened unbuffered=False
        self.proc = proc
        self.stdout = proc.stdout
        self.timeout = timeout
        self.stalled = False
        self._waiting_since: float | None = None
        self._done = threading.Event()
        threading.Thread(target=self._watch, name="log-command-watch", daemon=True).start()

    def _watch(self) -> None:
        while not self._done.wait(min(0.1, self.timeout / 4)):
            since = self._waiting_since
            if since is not None and time.monotonic() - since > self.timeout:
                self.stalled = True
                _kill(self.proc)
                return

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes (fewer at the end, or when the command stalled)."""
        want = n if n > 0 else _CHUNK
        parts: list[bytes] = []
        got = 0
        while got < want and not self.stalled:
            self._waiting_since = time.monotonic()
            try:
                part = self.stdout.read1(want - got)
            finally:
                self._waiting_since = None
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def close(self) -> None:
        self._done.set()
        self.stdout.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        if self.proc.poll() is None:
            _kill(self.proc)  # stopped early (the story had what it needed)
        self.proc.wait()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)  # journalctl's pager or a wrapper script too
        else:
            proc.kill()
    except OSError:
        pass  # already gone


def _command_blocks(
    argv: list[str], name: str, timeout: float
) -> tuple[Iterator[tuple[bytes, int | None, str | None]], str]:
    """Run ``argv``; its first block is read now, so that a failure is known before any
    story is told. Returns the blocks and the error text ("" when it worked).

    A read that waits more than ``timeout`` seconds kills the command: before any output
    that is the error text; later, the blocks raise :class:`LogUnreadable` naming ``name``.
    """
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if argv[0] == "docker" and "logs" in argv else subprocess.PIPE,
        start_new_session=True,  # one process group, killed whole on a timeout
    )
    stream = _Watched(proc, timeout)
    first = stream.read(_CHUNK)
    if stream.stalled and not first:
        stream.close()
        return iter(()), f"{_STALLED} {timeout:g}s; stopped it"
    hints_only = len(first) < 8192 and all(
        not line.strip() or line.startswith((b"Hint:", b"-- ")) for line in first.splitlines()
    )
    if not first or hints_only:
        # stdout ended: the command is done, and its stderr (bounded) says why.
        err = proc.stderr.read(64 * 1024).decode("utf-8", "replace") if proc.stderr else ""
        err = (first.decode("utf-8", "replace") + err).strip()
        stream.close()
        return iter(()), err or f"no output (exit {proc.returncode})"

    def blocks() -> Iterator[tuple[bytes, int | None, str | None]]:
        try:
            yield from _blocks_of(_Prepend(first, stream), 1, None, name)
            if stream.stalled:
                raise LogUnreadable(
                    f"{name} gave no output for {timeout:g}s; stopped reading it",
                    hint="pass the log with --server-log FILE (or - to pipe it in)",
                )
        finally:
            stream.close()

    return blocks(), ""


class _Prepend:
    """A byte stream that first returns ``head`` then reads ``rest``."""

    def __init__(self, head: bytes, rest: _Readable) -> None:
        self.head = head
        self.rest = rest

    def read(self, n: int = -1, /) -> bytes:
        if self.head:
            out, self.head = self.head, b""
            return out
        return self.rest.read(n)


def _journal(
    user: bool, since: datetime | None, max_bytes: int, timeout: float
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
        blocks, err = _command_blocks(argv, name, timeout)
    except OSError as exc:
        return None, Attempt(kind, name, False, f"cannot run journalctl: {exc.strerror or exc}")
    if err:
        return None, Attempt(kind, name, False, _journal_reason(err, user, since))
    return LogSource(kind, name, blocks), Attempt(kind, name, True)


@dataclass(frozen=True)
class NewestStart:
    """What to read of a journal when only the newest server start matters (doctor).

    The lines holding one of ``words``, read newest first, back to the newest holding
    ``start`` (``msg="server config"``): a journal of any size answers this from its
    end. Bounded twice: journalctl is asked for at most ``max_lines`` lines, and the
    read stops after ``budget`` seconds in all.
    """

    start: str
    words: tuple[str, ...]
    budget: float = 2.0
    max_lines: int = 20000


_UNKNOWN_OPTION = ("unrecognized option", "invalid option", "unknown option")
_NOT_REACHED = "did not reach the server's newest start"
_PCRE_SPECIAL = frozenset("\\^$.|?*+()[]{}")
_NO_PATTERNS = ("pattern matching", "pcre")  # built without PCRE2, or libpcre2 not installed


def _journal_newest(
    user: bool, want: NewestStart, timeout: float, max_bytes: int
) -> tuple[LogSource | None, Attempt]:
    """The newest start block of ``journalctl -u ollama``, read backwards (see NewestStart).

    ``journalctl --reverse --lines=N --grep=WORDS`` (systemd 237 and later, with PCRE2):
    the journal hands over its newest matching lines first, so the read ends at the
    newest start however large the journal is. Without ``--grep`` (built without PCRE2,
    or older), ``--reverse`` alone, the words kept here; without ``--reverse`` either,
    the plain read of :func:`_journal`. ``timeout``: the longest wait for a first line.
    """
    kind = "journal-user" if user else "journal"
    name = "journalctl" + (" --user" if user else "") + " -u ollama"
    exe = shutil.which("journalctl")
    if exe is None:
        return None, Attempt(kind, name, False, "journalctl is not installed (no systemd)")
    base = [exe, *(["--user"] if user else []), "-u", "ollama", "-o", "short-iso"]
    base += ["--no-pager", "-q", "--reverse", f"--lines={want.max_lines}"]
    grep = "--grep=" + "|".join(
        "".join("\\" + c if c in _PCRE_SPECIAL else c for c in w) for w in want.words
    )
    for argv in ([*base, grep], base):
        try:
            lines, err = _read_back(argv, want, timeout)
        except OSError as exc:
            return None, Attempt(kind, name, False, f"cannot run journalctl: {exc.strerror or exc}")
        if lines is not None:
            block = b"".join(line + b"\n" for line in reversed(lines))
            source = LogSource(kind, name, iter([(block, 1, None)] if block else []))
            return source, Attempt(kind, name, True)
        low = err.lower()
        if argv is not base and any(w in low for w in (*_UNKNOWN_OPTION, *_NO_PATTERNS)):
            continue  # no --grep here: the same read, the words kept by us
        if any(w in low for w in _UNKNOWN_OPTION):
            return _journal(user, None, max_bytes, timeout)  # no --reverse either
        if "no output" in low:  # nothing matched: no unit, or a unit that never started
            unit = "no ollama unit" + (" for this user" if user else "")
            return None, Attempt(kind, name, False, f"no `server config` line ({unit}?)")
        return None, Attempt(kind, name, False, _journal_reason(err, user, None))
    raise AssertionError("unreachable")  # pragma: no cover


def _read_back(
    argv: list[str], want: NewestStart, timeout: float
) -> tuple[list[bytes] | None, str]:
    """Run ``argv`` (a log newest first) until a kept line holds ``want.start``.

    Returns the kept lines (newest first) and "", or None and why not: the command's
    own error, nothing within ``timeout`` seconds, or no start within ``want.budget``.
    The command is stopped as soon as the start is read.
    """
    import select

    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "LC_ALL": "C", "SYSTEMD_PAGER": ""},
        start_new_session=True,  # one process group, killed whole when done or stuck
    )
    assert proc.stdout is not None and proc.stderr is not None
    start, words = want.start.encode(), [w.encode() for w in want.words]
    kept: list[bytes] = []
    notes: list[bytes] = []
    carry = b""
    began = time.monotonic()
    ended = got = False
    try:
        fd = proc.stdout.fileno()
        while True:
            spent = time.monotonic() - began
            left = want.budget - spent if got else min(want.budget, timeout) - spent
            if left <= 0:
                break
            if not select.select([fd], [], [], left)[0]:
                continue
            chunk = os.read(fd, 256 * 1024)
            if not chunk:
                ended = True
                break
            got = True
            *done, carry = (carry + chunk).split(b"\n")
            carry = carry[:MAX_LINE]  # an overlong line keeps its start, as LineSplitter does
            for line in done:
                if any(w in line for w in words):
                    kept.append(line[:MAX_LINE])
                    if start in line:
                        return kept, ""
                elif line.startswith((b"Hint:", b"-- ")) and len(notes) < 8:
                    notes.append(line[:1024])  # journalctl's words: no permission ...
        if ended and carry and any(w in carry for w in words):
            kept.append(carry)
            if start in carry:
                return kept, ""
        if ended and kept:
            return kept, ""  # the whole journal read: it has no start (the facts say so)
        if ended:
            err = b"\n".join([*notes, proc.stderr.read(64 * 1024)])
            text = err.decode("utf-8", "replace").strip()
            return None, text or f"no output (exit {proc.wait()})"
        if not got:
            return None, f"{_STALLED} {min(want.budget, timeout):g}s; stopped it"
        return None, (
            f"{_NOT_REACHED} within {want.budget:g}s (newest first, {len(kept)} setting "
            "lines read); give the log with --server-log"
        )
    finally:
        if proc.poll() is None:
            _kill(proc)
        proc.stdout.close()
        proc.stderr.close()
        proc.wait()


def _journal_reason(err: str, user: bool, since: datetime | None) -> str:
    """journalctl's error in words."""
    low = err.lower()
    if "not seeing messages" in low or "permission" in low or "access" in low:
        return (
            "no permission to read the system journal (add yourself to the "
            "systemd-journal or adm group, or run with sudo)"
        )
    if "no output" in low or "no entries" in low:
        if since is not None:
            return "no entries in the time asked for (or no ollama unit)"
        return "no entries: no ollama unit" + (" for this user" if user else "")
    if err.startswith((_STALLED, _NOT_REACHED)):
        return err  # our own words
    return err.splitlines()[-1][:160]


def from_docker(
    container: str,
    *,
    since: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = COMMAND_TIMEOUT_S,
) -> tuple[LogSource | None, Attempt]:
    """``docker logs -t CONTAINER`` (both streams), bounded by ``since`` or its last lines;
    ``timeout``: the longest a read may wait (see :func:`_command_blocks`)."""
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
        blocks, err = _command_blocks(argv, name, timeout)
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
    timeout: float = COMMAND_TIMEOUT_S,
    newest: NewestStart | None = None,
) -> tuple[LogSource | None, list[Attempt]]:
    """The log of the server at ``hostname``, if it runs here: the first place that gives
    lines, and every place tried with why it gave none. ``timeout`` (seconds) bounds each
    wait on ``journalctl``: a journal that does not answer is an attempt that failed.
    ``newest`` (doctor): of a journal, only the newest start's lines (see NewestStart)."""
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
            if newest is not None:
                src, attempt = _journal_newest(user, newest, timeout, max_bytes)
            else:
                src, attempt = _journal(user, since, max_bytes, timeout)
            attempts.append(attempt)
            if src is not None:
                src.attempts = attempts
                return src, attempts
            if attempt.reason and attempt.reason.startswith((_STALLED, _NOT_REACHED)):
                break  # journald is stuck or the unit's log is long: the user's would wait too
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
