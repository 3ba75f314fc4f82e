"""Where output goes: data to stdout, every message to stderr.

Whether a stream is a terminal decides the form: a live view, a spinner, a
table fitted to the width on a terminal; plain lines on a pipe or in a file, so
a script or a startup file never gets a control code. ``NO_COLOR`` removes the
colour and nothing else (rich reads it); ``FORCE_COLOR`` makes rich, and this
module, treat a stream as a terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from ollama_resident import _env

if TYPE_CHECKING:
    import threading

    from rich.console import Console

__all__ = [
    "Output",
    "deferred_signals",
    "is_terminal",
    "safe_renderable",
    "stop_when_reader_leaves",
    "table_width",
]


def is_terminal(stream: TextIO) -> bool:
    """A person is reading ``stream``: a TTY, or FORCE_COLOR says to act as one (as rich does)."""
    if os.environ.get(_env.FORCE_COLOR):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def table_width(stream: TextIO) -> int | None:
    """The width a table must fit: $COLUMNS, else the terminal's; None (unlimited) on a pipe."""
    try:
        columns = int(os.environ.get(_env.COLUMNS, ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    if not is_terminal(stream):
        return None
    import shutil

    return shutil.get_terminal_size().columns


class Output:
    """The one sink commands print through.

    ``quiet`` (``--quiet``): nothing but errors, on any command. Tables, notes,
    successes and warnings are left out; data asked for with ``--json`` or
    ``--jsonl`` is still written, and the exit code still tells what happened.
    ``json`` means stdout carries exactly one JSON document, so notes and
    successes stay off stderr too (warnings and errors remain).

    Everything written passes :func:`ollama_resident.textsafe.printable`: text
    from the server never reaches the terminal as a control sequence. A reader
    that goes away (``| head -1``) raises BrokenPipeError once, after stdout is
    pointed at /dev/null; the CLI's error boundary turns it into a quiet exit 0.
    """

    def __init__(self, *, quiet: bool = False, json: bool = False) -> None:
        self.quiet = quiet
        self.json = json
        self._out: Console | None = None
        self._err: Console | None = None

    # -- consoles, built on first use so plain output never imports rich ---------------------

    @property
    def rich_stdout(self) -> bool:
        """stdout is a terminal: rich rendering (colour unless NO_COLOR), live views."""
        return is_terminal(sys.stdout)

    @property
    def rich_stderr(self) -> bool:
        """stderr is a terminal: spinners and progress (colour unless NO_COLOR)."""
        return is_terminal(sys.stderr)

    @property
    def width(self) -> int | None:
        """The width tables on stdout must fit (None: unlimited)."""
        return table_width(sys.stdout)

    def out_console(self) -> Console:
        if self._out is None:
            from rich.console import Console

            self._out = Console(highlight=False, soft_wrap=False)
            self._out.push_render_hook(_safe_hook())
        return self._out

    def err_console(self) -> Console:
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False)
            self._err.push_render_hook(_safe_hook())
        return self._err

    # -- data --------------------------------------------------------------------------------

    def data(self, text: str) -> None:
        """A line (or block) of data on stdout, control characters escaped."""
        from ollama_resident.textsafe import printable

        _write_stdout(printable(text, keep_newlines=True) + "\n")

    def renderable(self, obj: Any, plain: str) -> None:
        """Data with a rich form for terminals and a plain form for everything else."""
        if self.rich_stdout:
            try:
                self.out_console().print(obj)
            except BrokenPipeError:
                _reader_gone()
                raise
        else:
            self.data(plain)

    def jsonl(self, records: Iterable[Any]) -> None:
        """One JSON object per line, each line written whole or not at all.

        Each line goes out in one write with SIGINT, SIGTERM and SIGHUP held back
        until it is complete: a signal arriving mid-write is handled after the
        newline, never between an object and its newline.
        """
        import json

        from ollama_resident.textsafe import json_safe

        for record in records:
            line = json_safe(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            _write_whole((line + "\n").encode("utf-8", "backslashreplace"))

    @staticmethod
    def reader_gone() -> None:
        """Point stdout at /dev/null: its reader has gone, and nothing may fail at exit."""
        _reader_gone()

    # -- messages ----------------------------------------------------------------------------

    def _message(self, text: str, style: str, prefix: str = "", hang: int = 0) -> None:
        """One message on stderr: ``prefix`` (``error: ``) in bold, then ``text``.

        ``hang``: the first ``hang`` characters are an event line's clock; they come
        before the prefix (``12:00:05  warning: ...``), so the time column holds.
        On a terminal a line too long for it wraps with a hanging indent: under the
        text after the prefix (``error: ``, ``  hint: ``), under the text after the
        clock (as `watch`'s events), and two spaces in for a message with neither.
        On a pipe or in a file: one line, as is.
        """
        from ollama_resident.textsafe import printable

        text = printable(text)  # one line, whatever the server put in it
        try:
            if self.rich_stderr:
                self._wrapped(text, style, prefix, hang)
            else:
                lead = text[:hang] if 0 < hang < len(text) else ""
                # An event line keeps its clock first: ``12:00:05  warning: ...``.
                sys.stderr.write(f"{lead}{prefix}{text[len(lead) :]}\n")
                sys.stderr.flush()
        except BrokenPipeError:
            _devnull(sys.stderr)  # nobody reads messages any more; carry on

    def _wrapped(self, text: str, style: str, prefix: str, hang: int) -> None:
        from rich.text import Text

        from ollama_resident import cells

        console = self.err_console()
        body = style if not prefix else ""
        lead = text[:hang] if 0 < hang < len(text) else ""
        rest = text[len(lead) :]
        first = cells.width(prefix + lead)
        # An event line wraps under its text, after the clock (and the prefix, if any).
        indent = cells.width(lead) if lead else first if first else 2
        lines = cells.hang(rest, console.width, " " * first, " " * indent)
        # The clock first, then the prefix: ``12:00:05  warning: ...`` keeps the time column.
        message = Text(prefix, style=f"bold {style}") if prefix else Text()
        message.append(lines[0][first:], style=body)
        for more in lines[1:]:
            message.append("\n")
            message.append(more, style=body)
        line = Text(lead, style=body)
        line.append_text(message)  # with its style: a warning is bold, not its clock
        console.print(line, soft_wrap=True)

    @property
    def chatty(self) -> bool:
        """Notes, successes, tables and progress are shown: neither --quiet nor --json."""
        return not (self.quiet or self.json)

    def info(self, text: str, *, hang: int = 0) -> None:
        if self.chatty:
            self._message(text, "", hang=hang)

    def success(self, text: str) -> None:
        if self.chatty:
            self._message(text, "green")

    def warn(self, text: str, *, hang: int = 0) -> None:
        """Something is not as the user asked; left out with --quiet (errors only)."""
        if not self.quiet:
            self._message(text, "yellow", "warning: ", hang=hang)

    def error(self, text: str, hint: str | None = None, *, hang: int = 0) -> None:
        """Always shown, --quiet or not."""
        self._message(text, "red", "error: ", hang=hang)
        if hint:
            self._message(hint, "dim", "  hint: ")


# -- writing safely ------------------------------------------------------------------------------


def _devnull(stream: TextIO) -> None:
    """Point ``stream`` at /dev/null, so later writes and the flush at exit are silent."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return  # not a real file (a test runner's buffer)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def _reader_gone() -> None:
    _devnull(sys.stdout)


def _write_stdout(text: str) -> None:
    """Write and flush; BrokenPipeError (the reader left) after silencing stdout."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_gone()
        raise


def _write_whole(data: bytes) -> None:
    """Write ``data`` to stdout whole, or not at all if a signal comes before any of it.

    Signals are held back while writing; one that arrives before the first byte
    went out (a reader that does not read, a Ctrl-C) stops the write with nothing
    written, and acts as soon as the block ends. Once bytes are out, the rest
    follows before any signal acts.
    """
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        fd = -1
    try:
        sys.stdout.flush()
        with deferred_signals() as caught:
            if fd < 0:  # not a real file (a test runner's buffer): one write call
                sys.stdout.write(data.decode("utf-8"))
                sys.stdout.flush()
                return
            import select

            written = 0
            while written < len(data):
                if written == 0 and caught:
                    return  # nothing written yet: let the signal act
                if not select.select([], [fd], [], 0.2)[1]:
                    continue
                written += os.write(fd, data[written:])
    except BrokenPipeError:
        _reader_gone()
        raise


@contextlib.contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """Hold SIGINT, SIGTERM and SIGHUP back inside the block; they act right after it.

    Python runs a signal handler between two bytecodes, so a Ctrl-C or SIGTERM
    could otherwise cut a write in two (an object without its newline). Inside
    the block a signal is only noted (the yielded list says which arrived); on
    leaving, the real handlers are put back and each noted signal is handed to
    its handler, which may raise. Outside the main thread the block runs as is.
    """
    import signal
    import threading

    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def note(signum: int, frame: object) -> None:
        caught.append(signum)

    previous: dict[int, Any] = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        num = getattr(signal, name, None)
        if num is not None:
            previous[num] = signal.signal(num, note)
    try:
        yield caught
    finally:
        for num, handler in previous.items():
            signal.signal(num, handler if handler is not None else signal.SIG_DFL)
        for num in dict.fromkeys(caught):  # each signal once, in arrival order
            handler = previous.get(num)
            if callable(handler):
                handler(num, None)
            elif handler in (None, signal.SIG_DFL):
                signal.raise_signal(num)


def stop_when_reader_leaves(stop: threading.Event) -> None:
    """Set ``stop`` when nobody reads stdout any more (``guard --jsonl | head -1``).

    A pipe whose reader has gone reports POLLERR at once, but a write would only fail
    at the next event, which may be hours away on a quiet server. Only for a pipe;
    a thread polls it every half second.
    """
    import select
    import stat
    import threading

    try:
        fd = sys.stdout.fileno()
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
    except (OSError, ValueError, AttributeError):
        return
    if not is_pipe or not hasattr(select, "poll"):
        return
    poller = select.poll()
    poller.register(fd, 0)  # errors and hang-ups are always reported

    def check() -> None:
        while not stop.is_set():
            if poller.poll(500):
                stop.set()

    threading.Thread(target=check, name="stdout-reader", daemon=True).start()


class _Safe:
    """A rich renderable whose text segments have their control characters escaped."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.segment import Segment

        from ollama_resident.textsafe import printable

        for segment in console.render(self.inner, options):
            if segment.control or segment.text.isprintable():
                yield segment
            else:
                yield Segment(printable(segment.text, keep_newlines=True), segment.style)


def _safe_hook() -> Any:
    """A render hook for this tool's consoles: everything printed goes through :class:`_Safe`."""
    from rich.console import RenderHook

    class SafeHook(RenderHook):
        def process_renderables(self, renderables: list[Any]) -> list[Any]:
            return [_Safe(r) for r in renderables]

    return SafeHook()


def safe_renderable(obj: Any) -> Any:
    """``obj`` for a rich console, with any server text in it unable to act on the terminal."""
    return _Safe(obj)
