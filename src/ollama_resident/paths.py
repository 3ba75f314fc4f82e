"""Where this tool keeps its files, by platform convention, with env overrides.

Config (profiles) and state (the residency journal, locks) live in the
platform's directories for the app; ``OLLAMA_RESIDENT_HOME`` puts both in one
directory (tests, portable setups). No typer or platformdirs import: start-up
stays cheap and the rules are visible here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ollama_resident import _env

__all__ = ["APP_NAME", "config_dir", "journal_path", "profiles_path", "state_dir"]

APP_NAME = "ollama-resident"


def _home_override() -> Path | None:
    value = os.environ.get(_env.HOME, "").strip()
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """Linux ``$XDG_CONFIG_HOME/ollama-resident`` (``~/.config/...``); macOS
    ``~/Library/Application Support/ollama-resident``; Windows ``%APPDATA%``.
    The same places as Typer's ``get_app_dir``."""
    override = _home_override()
    if override is not None:
        return override
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    base = os.environ.get("XDG_CONFIG_HOME", "").strip() or str(Path.home() / ".config")
    return Path(base) / APP_NAME


def state_dir() -> Path:
    """Linux ``$XDG_STATE_HOME/ollama-resident`` (``~/.local/state/...``); macOS
    ``~/Library/Application Support/ollama-resident``; Windows ``%LOCALAPPDATA%``."""
    override = _home_override()
    if override is not None:
        return override
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    base = os.environ.get("XDG_STATE_HOME", "").strip() or str(Path.home() / ".local" / "state")
    return Path(base) / APP_NAME


def profiles_path(option: str | None = None) -> Path:
    """``--profiles FILE``, else ``$OLLAMA_RESIDENT_PROFILES``, else the config dir."""
    if option:
        return Path(option).expanduser()
    env = os.environ.get(_env.PROFILES, "").strip()
    if env:
        return Path(env).expanduser()
    return config_dir() / "profiles.toml"


def journal_path() -> Path:
    """``$OLLAMA_RESIDENT_JOURNAL``, else ``state_dir()/journal.jsonl``."""
    env = os.environ.get(_env.JOURNAL, "").strip()
    if env:
        return Path(env).expanduser()
    return state_dir() / "journal.jsonl"
