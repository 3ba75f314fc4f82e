"""Following Ollama's server log live (I/O): a file as it grows, stdin, or ``docker logs -f``.

:class:`Follower` turns the new lines into facts with the same
:class:`~ollama_resident.logtimeline.TimelineBuilder` that ``why`` uses; ``watch`` asks it
for the facts so far (:meth:`Follower.facts`) before it records each batch of events, so an
unload seen at a poll carries the cause the server wrote a moment before.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from typing import IO

from ollama_resident.logtimeline import MESSAGES, PREFIXES, LogFact, TimelineBuilder
from ollama_resident.serverlog import LogReader

__all__ = ["Follower"]


class Follower:
    """Reads new log lines on a thread; :meth:`facts` returns what they established.

    ``open_stream`` returns the byte stream to read (a file opened at its end, stdin, a
    ``docker logs -f`` pipe); ``close`` ends it.
    """

    def __init__(
        self, name: str, open_stream: Callable[[], IO[bytes]], *, follow_file: bool = False
    ) -> None:
        self.name = name
        self._open = open_stream
        self._follow_file = follow_file
        self._reader = LogReader(messages=MESSAGES, prefixes=PREFIXES, gin="post")
        self._builder = TimelineBuilder()
        self._builder.reader = self._reader
        self._reader.prefilter = self._builder.prefilter
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None
        self.lines = 0

    @classmethod
    def file(cls, path: str) -> Follower:
        def open_at_end() -> IO[bytes]:
            from ollama_resident.logsource import open_log_file

            fh = open_log_file(path)  # OSError for a device (/dev/zero): never a log
            with contextlib.suppress(OSError):  # a pipe cannot seek: read it as it comes
                fh.seek(0, os.SEEK_END)
            return fh

        return cls(path, open_at_end, follow_file=True)

    @classmethod
    def stdin(cls) -> Follower:
        import sys

        return cls("stdin", lambda: sys.stdin.buffer)

    @classmethod
    def docker(cls, container: str) -> Follower:
        follower = cls(f"docker logs -f {container}", lambda: follower._docker(container))
        return follower

    def _docker(self, container: str) -> IO[bytes]:
        self._proc = subprocess.Popen(
            ["docker", "logs", "-f", "-t", "--since", "0s", container],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self._proc.stdout is not None
        return self._proc.stdout

    def start(self) -> Follower:
        stream = self._open()  # fail now (OSError) rather than on the thread
        self._thread = threading.Thread(
            target=self._run, args=(stream,), name="server-log", daemon=True
        )
        self._thread.start()
        return self

    def _run(self, stream: IO[bytes]) -> None:
        from ollama_resident.logsource import LineSplitter, LogUnreadable

        lines = LineSplitter(self.name)  # lines cut at 1 MiB; no newline in 64 MiB: not a log
        try:
            while not self._stop.is_set():
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not chunk:
                    if not self._follow_file:
                        break  # the pipe ended
                    self._stop.wait(0.1)
                    continue
                block = lines.feed(chunk)
                if block:
                    self._feed(block.decode("utf-8", errors="replace").split("\n")[:-1])
        except LogUnreadable as exc:
            self.error = exc.message
        except OSError as exc:
            self.error = f"reading {self.name}: {exc.strerror or exc}"
        finally:
            if self._follow_file:
                stream.close()

    def _feed(self, lines: list[str]) -> None:
        with self._lock:
            for line in lines:
                self.lines += 1
                n = self.lines
                if self._reader.prefilter is not None and self._reader.prefilter(n, line):
                    continue
                rec = self._reader.one(n, line)
                if rec is not None:
                    self._builder.feed(rec)

    def facts(self, *, keep: int = 200) -> list[LogFact]:
        """The latest facts read (at most ``keep``), oldest first."""
        with self._lock:
            facts = self._builder.facts
            names = self._builder.names
            recent = list(deque(facts, maxlen=keep))
        from dataclasses import replace

        return [replace(f, name=f.name or names.get(f.digest or "")) for f in recent]

    def wait_caught_up(self, timeout: float = 0.3) -> None:
        """Give the thread a moment to read what was written just now."""
        self._stop.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
