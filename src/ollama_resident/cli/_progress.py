"""What a slow step is waiting for, with elapsed time, on a terminal only.

A spinner line on stderr, such as ``⠋ 12s  unloading qwen2.5:14b: busy, waiting
for the running request to end``, replaced in place and gone when the step ends. On a pipe
or with --quiet nothing is shown (a startup script gets no control codes);
NO_COLOR only takes the colour away. Elapsed time is written as every span of
time is (vocabulary.span): ``<1s``, ``12s``, ``1m 05s``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ollama_resident.cli._output import Output

__all__ = ["Activity"]


class Activity:
    """``with Activity(out) as act: act.start("loading x"); ...; act.update("..."); act.stop()``."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self._live: Any = None
        self._text: str | None = None
        self._since = 0.0
        self._spinner: Any = None

    @property
    def shown(self) -> bool:
        return self._live is not None

    def __enter__(self) -> Activity:
        if self.out.rich_stderr and self.out.chatty:
            from rich.live import Live
            from rich.spinner import Spinner

            self._spinner = Spinner("dots", style="cyan")
            self._live = Live(
                get_renderable=self._render,
                console=self.out.err_console(),
                refresh_per_second=8,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def _render(self) -> Any:
        from rich.text import Text

        from ollama_resident.vocabulary import span

        if self._text is None:
            return Text("")
        # The elapsed time first, so a narrow terminal cuts the words, never the clock.
        line = Text(f"{span(time.monotonic() - self._since)}  ", style="dim")
        line.append(self._text)
        line.no_wrap, line.overflow = True, "ellipsis"
        self._spinner.update(text=line)
        return self._spinner

    def start(self, text: str) -> None:
        """A new step: the clock starts again."""
        self._text = text
        self._since = time.monotonic()
        self._refresh()

    def update(self, text: str) -> None:
        """Say more about the same step: the clock keeps running."""
        if self._text is None:
            self.start(text)
        elif text != self._text:
            self._text = text
            self._refresh()

    def stop(self) -> None:
        """The step is over: the line goes (results are printed after)."""
        self._text = None
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._text = None
            self._live.stop()
            self._live = None
