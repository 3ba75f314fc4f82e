"""The residency journal: events appended as JSON lines, bounded, safe with several writers.

Where: ``$OLLAMA_RESIDENT_JOURNAL``, else ``journal.jsonl`` in the app's state directory
(:func:`ollama_resident.paths.journal_path`, printed by ``ollama-resident journal path``).

Bounded: when the file would grow past ``max_bytes`` (1 MiB) it is renamed to ``.1`` (the
old ``.1`` to ``.2``) and a new one is started, so the journal never takes more than about
three times the cap. At a few hundred bytes an event that is thousands of events, weeks of
an ordinary day's loads and unloads.

Several writers (a ``watch`` and a ``guard``, a ``pin`` run by cron) may append at once.
Each line is written with a single ``os.write`` on a file descriptor opened with
``O_APPEND``: the kernel moves to the end and writes in one step, so lines never
interleave. Rotation is the one multi-step operation; it runs under an exclusive lock on a
side file and re-checks the size after taking it, so only one writer rotates. A writer
that opened the file just before a rotation appends its line to the renamed file, which
:func:`read` reads too. Readers never lock: a torn or garbled line (a crash mid-write, a
disk full) is skipped, and a line that got glued to the start of the next is recovered.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ollama_resident import paths
from ollama_resident.events import (
    Event,
    OwnActionKind,
    from_load_outcome,
    from_unload_outcome,
)
from ollama_resident.models import names_match

__all__ = [
    "DEFAULT_KEEP",
    "DEFAULT_MAX_BYTES",
    "Journal",
    "read",
    "record",
    "record_outcomes",
]

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_KEEP = 2
_LINE_START = b'{"time":'


def _dump(event: Event) -> bytes:
    text = json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (a side file); a no-op where there is none."""
    try:
        import fcntl
    except ImportError:  # Windows: rotation is not guarded; lines are still whole
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Journal:
    """One journal file and its rotated predecessors (``.1`` ... ``.keep``)."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        self.path = Path(path) if path is not None else paths.journal_path()
        self.max_bytes = max(max_bytes, 1024)
        self.keep = max(keep, 1)

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @property
    def files(self) -> list[Path]:
        """Oldest first: ``.2``, ``.1``, then the current file."""
        old = [self.path.with_name(f"{self.path.name}.{i}") for i in range(self.keep, 0, -1)]
        return [*old, self.path]

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    # -- writing -----------------------------------------------------------------------------

    def record(self, events: Iterable[Event]) -> int:
        """Append ``events``; returns how many lines were written.

        Raises OSError when the directory cannot be created or written; callers that
        record as a side effect (``watch``) should catch it and say so once.
        """
        lines = [_dump(e) for e in events]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = self._open()
        try:
            for line in lines:
                if os.fstat(fd).st_size + len(line) > self.max_bytes:
                    os.close(fd)
                    fd = -1
                    self._rotate(len(line))
                    fd = self._open()
                _write_all(fd, line)
        finally:
            if fd >= 0:
                os.close(fd)
        return len(lines)

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        return os.open(self.path, flags, 0o600)

    def _rotate(self, incoming: int) -> None:
        with _locked(self._lock_path):
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                return
            if size + incoming <= self.max_bytes or size == 0:
                return  # another writer rotated while we waited for the lock
            files = self.files
            for older, newer in itertools.pairwise(files):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(newer, older)

    # -- reading -----------------------------------------------------------------------------

    def read(
        self,
        since: datetime | None = None,
        model: str | None = None,
        *,
        host: str | None = None,
    ) -> list[Event]:
        """Every readable event, oldest first, optionally only from ``since`` / for ``model``.

        ``model`` matches names as users type them (``llama3.2`` is ``llama3.2:latest``);
        events without a model (server and recording events) are kept so that a story
        can tell restarts and gaps in the recording.
        """
        out: list[Event] = []
        for path in self.files:
            try:
                with open(path, "rb") as fh:
                    out.extend(_parse_lines(fh))
            except FileNotFoundError:
                continue
        if since is not None:
            out = [e for e in out if e.time >= since]
        if model is not None:
            out = [e for e in out if e.model is None or names_match(e.model, model)]
        if host is not None:
            out = [e for e in out if e.host == host or not e.host]
        out.sort(key=lambda e: e.time)  # stable: same-time events keep their written order
        return out

    def read_from(self, offset: int) -> tuple[list[Event], int]:
        """Events appended to the current file since byte ``offset``, and the new offset.

        A file smaller than ``offset`` was rotated: read it from the start. Only whole
        lines are consumed, so a line being written is picked up by the next call.
        """
        try:
            if os.stat(self.path).st_size == offset:
                return [], offset  # the common case when idle: one stat, no open
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < offset:
                    offset = 0
                fh.seek(offset)
                data = fh.read(size - offset)
        except FileNotFoundError:
            return [], 0
        end = data.rfind(b"\n") + 1
        events = list(_parse_lines(data[:end].splitlines(keepends=True)))
        return events, offset + end

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written != len(data):  # only on a full disk or a signal; finish the line
        view = memoryview(data)[written:]
        while view:
            n = os.write(fd, view)
            view = view[n:]


def _parse_lines(lines: Iterable[bytes] | IO[bytes]) -> Iterator[Event]:
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        event = _parse(line)
        if event is None:
            # A torn line (a writer died mid-line) with the next one glued on: keep the
            # last whole object that starts on this line.
            start = line.rfind(_LINE_START)
            if start > 0:
                event = _parse(line[start:])
        if event is not None:
            yield event


def _parse(line: bytes) -> Event | None:
    try:
        data: Any = json.loads(line)
    except (ValueError, RecursionError):  # includes UnicodeDecodeError; [[[... nested deep
        return None
    if not isinstance(data, dict):
        return None
    try:
        return Event.from_json(data)
    except ValueError:
        return None


def record(events: Iterable[Event], path: Path | str | None = None) -> int:
    """Append ``events`` to the journal (``journal_path()`` unless ``path``)."""
    return Journal(path).record(events)


def record_outcomes(
    *,
    host: str,
    loads: Iterable[Any] = (),
    unloads: Iterable[Any] = (),
    action: OwnActionKind = "preload",
    profile: str | None = None,
    time: datetime | None = None,
    path: Path | str | None = None,
) -> str | None:
    """Journal what a command did (``loads``, LoadOutcomes; ``unloads``, UnloadOutcomes),
    so ``why`` and a running ``watch`` know it was this tool and which command:
    ``action`` is ``preload``, ``pin``, ``apply`` (with its ``profile``) or ``unload``.
    Never raises for the journal's sake: returns None when written (or there was
    nothing to write), else a one-line reason for a warning.
    """
    when = time or datetime.now(timezone.utc)
    events: list[Event] = []
    for outcome in loads:
        events.extend(
            from_load_outcome(outcome, host=host, time=when, action=action, profile=profile)
        )
    for outcome in unloads:
        events.extend(
            from_unload_outcome(outcome, host=host, time=when, action=action, profile=profile)
        )
    if not events:
        return None
    journal = Journal(path)
    try:
        journal.record(events)
    except OSError as exc:
        return f"could not write the journal {journal.path}: {exc.strerror or exc}"
    return None


def read(
    since: datetime | None = None, model: str | None = None, path: Path | str | None = None
) -> list[Event]:
    """The journal's events, oldest first (see :meth:`Journal.read`)."""
    return Journal(path).read(since=since, model=model)
