"""Several ``--host`` options: run a command's single-host body once per host, all at once.

Each host's run is the very code a single ``--host`` runs, in its own thread: N hosts
take about as long as the slowest. While they run, ``sys.stdout`` and ``sys.stderr``
route each thread's writes to that host: its messages reach stderr line by line,
prefixed with the host (as printed, never with credentials), and without spinners
(the stream is not a terminal); its data is kept and printed when all are done, in
the order the hosts were given. With ``--json`` the documents are merged into one
list whose every item has a ``host`` field.

The exit code says what happened overall (:func:`combine`): 3 only when every host
was unreachable, 2 when every host refused the same bad input, else 1 when any host
failed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import typer

from ollama_resident.errors import ExitCode, ResidentError

if TYPE_CHECKING:
    from ollama_resident.host import Host

__all__ = ["HostRun", "combine", "hosts_of", "on_each_host"]


@dataclass
class HostRun:
    """One host's share: the data it printed, its exit code, its error (if one stopped it)."""

    host: Host
    stdout: str = ""
    code: int = 0
    error: str | None = None


def combine(codes: Sequence[int]) -> int:
    """One exit code for several hosts.

    >>> combine([0, 0]), combine([3, 3]), combine([0, 3]), combine([2, 2]), combine([1, 0])
    (0, 3, 1, 2, 1)
    """
    distinct = set(codes)
    if distinct <= {0}:
        return 0
    if len(distinct) == 1:
        code = next(iter(distinct))
        if code in (ExitCode.UNREACHABLE, ExitCode.USAGE, ExitCode.INTERRUPTED):
            return code
    return int(ExitCode.FAILED)


def hosts_of(options: Sequence[str] | None) -> list[Host]:
    """The distinct hosts of repeated ``--host`` options (UsageError for one that is bad)."""
    from ollama_resident.cli._common import resolve_host
    from ollama_resident.fleet import unique_hosts

    return unique_hosts(resolve_host(h) for h in (options or []) if h.strip())


class _Router(io.TextIOBase):
    """A stand-in for sys.stdout or sys.stderr that sends each worker thread's writes to it.

    Threads not registered (the main thread) write to the real stream.
    """

    def __init__(self, real: TextIO, lock: threading.Lock) -> None:
        self.real = real
        self.lock = lock
        self.sinks: dict[int, Callable[[str], object]] = {}

    def write(self, text: str) -> int:
        sink = self.sinks.get(threading.get_ident())
        if sink is None:
            with self.lock:
                return self.real.write(text)
        sink(text)
        return len(text)

    def flush(self) -> None:
        if threading.get_ident() not in self.sinks:
            self.real.flush()

    def isatty(self) -> bool:
        # A worker's stream is not a terminal: plain lines, no spinner or live view.
        return threading.get_ident() not in self.sinks and self.real.isatty()

    def fileno(self) -> int:
        return self.real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.real, "encoding", "utf-8")


@dataclass
class _Lines:
    """A worker's stderr: whole lines go out at once, prefixed with the host."""

    prefix: str
    out: TextIO
    lock: threading.Lock
    pending: list[str] = field(default_factory=list)

    def __call__(self, text: str) -> None:
        self.pending.append(text)
        joined = "".join(self.pending)
        if "\n" not in joined:
            return
        done, _sep, rest = joined.rpartition("\n")
        self.pending = [rest] if rest else []
        with self.lock:
            for line in done.split("\n"):
                self.out.write(f"{self.prefix}{line}\n" if line else "\n")
            self.out.flush()

    def close(self) -> None:
        if self.pending:
            self("\n")


@contextlib.contextmanager
def _routed() -> Iterator[tuple[_Router, _Router]]:
    lock = threading.Lock()
    out, err = _Router(sys.stdout, lock), _Router(sys.stderr, lock)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        yield out, err
    finally:
        sys.stdout, sys.stderr = saved


def on_each_host(hosts: Sequence[Host], run: Callable[[str], object], *, json_output: bool) -> None:
    """``run(url)`` for every host at once, then print what each printed; typer.Exit if any
    host did not end in success (see :func:`combine`).

    ``run`` is a command's single-host body: it may raise ResidentError or typer.Exit.
    """
    from ollama_resident.cli._output import Output
    from ollama_resident.fleet import run_together

    runs = [HostRun(h) for h in hosts]
    with _routed() as (out, err):

        def work(r: HostRun) -> None:
            me = threading.get_ident()
            data = io.StringIO()
            lines = _Lines(f"{r.host.display}  ", err.real, err.lock)
            out.sinks[me], err.sinks[me] = data.write, lines
            try:
                run(r.host.url)
            except typer.Exit as exc:
                r.code = int(exc.exit_code)
            except ResidentError as exc:
                from ollama_resident.errors import without_host

                r.code, r.error = int(exc.exit_code), exc.message
                # The line is prefixed with the host: the message does not name it again.
                Output().error(without_host(exc.message, r.host.display), exc.hint)
            finally:
                lines.close()
                r.stdout = data.getvalue()
                del out.sinks[me], err.sinks[me]

        run_together([functools.partial(work, r) for r in runs])
    _print_data(runs, json_output)
    code = combine([r.code for r in runs])
    if code:
        raise typer.Exit(code)


def _print_data(runs: Sequence[HostRun], json_output: bool) -> None:
    if json_output:
        merged: list[dict[str, Any]] = []
        for r in runs:
            merged.extend(_with_host(r))
        sys.stdout.write(json.dumps(merged, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    for r in runs:
        if r.stdout.strip():
            sys.stdout.write(f"{r.host.display}\n{r.stdout.rstrip()}\n")
    sys.stdout.flush()


def _with_host(r: HostRun) -> list[dict[str, Any]]:
    host = r.host.display
    try:
        doc = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        doc = None
    if doc is None:
        return [{"host": host, "error": r.error or f"exit code {r.code}", "exit_code": r.code}]
    items = doc if isinstance(doc, list) else [doc]
    return [{**item, "host": host} if isinstance(item, dict) else item for item in items]
