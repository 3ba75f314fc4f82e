"""Every environment variable this tool reads, in one place."""

from __future__ import annotations

__all__ = [
    "COMPLETE",
    "DEBUG",
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
NO_COLOR = "NO_COLOR"  # https://no-color.org
COMPLETE = "_OLLAMA_RESIDENT_COMPLETE"  # set by the shell completion scripts
