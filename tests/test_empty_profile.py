"""An empty profile has one answer everywhere: nothing to do, exit 0 (issue 11, item 11).

A guard service for it must not fail and be restarted in a loop (Restart=on-failure).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from fakeollama import FakeOllama

Cli = Callable[..., Run]


@pytest.fixture(autouse=True)
def empty_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text("[profiles.empty]\nmodels = []\n")
    monkeypatch.setenv("OLLAMA_RESIDENT_PROFILES", str(path))
    return path


@pytest.mark.parametrize(
    "command",
    [
        ("apply", "empty"),
        ("guard", "--profile", "empty"),
        ("guard", "--profile", "empty", "--once"),
        ("pin", "--profile", "empty"),
        ("preload", "--profile", "empty"),
        ("unload", "--profile", "empty"),
    ],
    ids=" ".join,
)
def test_an_empty_profile_is_nothing_to_do_and_exit_0(
    ollama: FakeOllama, cli: Cli, command: tuple[str, ...]
) -> None:
    ollama.preload("tiny", "5m")
    run = cli(*command)
    assert run.exit_code == 0, run
    assert "error" not in run.stderr
    assert ollama.requests_to("/api/generate") == []  # nothing loaded or unloaded
    assert [m["name"] for m in ollama.loaded()] == ["tiny:latest"]


def test_the_service_for_an_empty_profile_would_not_restart(cli: Cli) -> None:
    """guard exits 0 at once even with no server: no failure for systemd to act on."""
    run = cli("guard", "--profile", "empty", "--wait", "300")
    assert run.exit_code == 0, run
    assert "has no models: nothing to guard" in run.stderr


def test_quiet_leaves_the_note_out(ollama: FakeOllama, cli: Cli) -> None:
    assert cli("pin", "--profile", "empty", "--quiet").stderr == ""
    assert "nothing to do" in cli("pin", "--profile", "empty").stderr
