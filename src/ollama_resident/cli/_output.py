"""Where output goes: data to stdout, every message to stderr.

Whether a stream is a terminal decides the form: a live view, a spinner, a
table fitted to the width on a terminal; plain lines on a pipe or in a file, so
a script or a startup file never gets a control code. ``NO_COLOR`` removes the
colour and nothing else (rich reads it); ``FORCE_COLOR`` makes rich, and this
module, treat a stream as a terminal.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ollama_resident import _env

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Output", "is_terminal", "table_width"]


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

    ``quiet`` silences everything but errors and warnings that matter;
    ``json`` means stdout carries exactly one JSON document.
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
        return self._out

    def err_console(self) -> Console:
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False)
        return self._err

    # -- data --------------------------------------------------------------------------------

    def data(self, text: str) -> None:
        """A line (or block) of data on stdout."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def renderable(self, obj: Any, plain: str) -> None:
        """Data with a rich form for terminals and a plain form for everything else."""
        if self.rich_stdout:
            self.out_console().print(obj)
        else:
            self.data(plain)

    # -- messages ----------------------------------------------------------------------------

    def _message(self, text: str, style: str, prefix: str = "") -> None:
        if self.rich_stderr:
            from rich.text import Text

            line = Text(prefix, style=f"bold {style}") if prefix else Text()
            line.append(text, style=style if not prefix else "")
            self.err_console().print(line)
        else:
            sys.stderr.write(f"{prefix}{text}\n")
            sys.stderr.flush()

    def info(self, text: str) -> None:
        if not self.quiet:
            self._message(text, "")

    def success(self, text: str) -> None:
        if not self.quiet:
            self._message(text, "green")

    def warn(self, text: str) -> None:
        """Shown even with --quiet: something is not as the user asked."""
        self._message(text, "yellow", "warning: ")

    def error(self, text: str, hint: str | None = None) -> None:
        self._message(text, "red", "error: ")
        if hint:
            self._message(hint, "dim", "  hint: ")
