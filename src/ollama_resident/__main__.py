"""The ``ollama-resident`` command and ``python -m ollama_resident``.

Start-up creates some hundred thousand objects (typer, click, httpx) that live until
the process ends. The cyclic garbage collector would walk them again and again while
they are being created: about a tenth of the start of `ps --json`. So it is off while
the CLI is imported, and what was created is then frozen out of its sight
(``gc.freeze``); it runs as usual afterwards, for long-running `watch` and `guard` too.
"""

from __future__ import annotations

import gc


def main() -> None:
    """Console-script entry point: import the CLI without the collector, then run it.

    Ctrl-C and SIGTERM are only noted from the first line on (``stopping.note_early``):
    a signal during start-up is acted on once the command is known (watch and guard
    stop with 0, other commands with 130), never by SIGTERM's default action (143).
    """
    from ollama_resident.stopping import note_early

    note_early()
    gc.disable()
    try:
        from ollama_resident.cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    cli_main()


if __name__ == "__main__":
    main()
