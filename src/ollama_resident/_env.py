"""Every environment variable this tool reads, in one place."""

from __future__ import annotations

__all__ = [
    "COLUMNS",
    "COMPLETE",
    "DEBUG",
    "FORCE_COLOR",
    "HOME",
    "JOURNAL",
    "NO_COLOR",
    "OLLAMA_HOST",
    "PROFILES",
]

OLLAMA_HOST = "OLLAMA_HOST"  # the server, read as Ollama reads it
DEBUG = "OLLAMA_RESIDENT_DEBUG"  # 1: show tracebacks for unexpected errors
HOME = "OLLAMA_RESIDENT_HOME"  # directory for config and state (overrides the app dirs)
PROFILES = "OLLAMA_RESIDENT_PROFILES"  # the profiles file
JOURNAL = "OLLAMA_RESIDENT_JOURNAL"  # the residency journal file
NO_COLOR = "NO_COLOR"  # https://no-color.org: no colour, nothing else changes
FORCE_COLOR = "FORCE_COLOR"  # act as on a terminal even on a pipe (as rich does)
COMPLETE = "_OLLAMA_RESIDENT_COMPLETE"  # set by the shell completion scripts
COLUMNS = "COLUMNS"  # the width tables fit (default: the terminal's; unlimited on a pipe)
