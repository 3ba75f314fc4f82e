"""Generated files must match the app: docs/cli.md and the completion scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("NO_COLOR", None)
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=full_env, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_current(shell: str) -> None:
    fresh = _run(
        "-m",
        "ollama_resident",
        "--show-completion",
        shell,
        env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
    )
    committed = (ROOT / "completions" / f"ollama-resident.{shell}").read_text()
    assert "_OLLAMA_RESIDENT_COMPLETE" in committed
    assert fresh == committed, "completions are stale: run scripts/gen-docs"


def test_cli_reference_is_current(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    _run(
        "-m",
        "typer",
        "ollama_resident.cli",
        "utils",
        "docs",
        "--name",
        "ollama-resident",
        "--output",
        str(out),
    )
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert out.read_text() == committed, "docs/cli.md is stale: run scripts/gen-docs"


def test_every_command_has_help_and_is_documented() -> None:
    from typer.main import get_command

    from ollama_resident.cli import app

    root = get_command(app)
    reference = (ROOT / "docs" / "cli.md").read_text()
    ctx = typer.Context(root)
    assert len(root.list_commands(ctx)) >= 10
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        assert command.help, f"{name} has no help text"
        assert f"`ollama-resident {name}" in reference, f"{name} missing from docs/cli.md"
        assert name in (ROOT / "README.md").read_text(), f"{name} missing from README.md"


def test_every_command_and_group_teaches_by_example() -> None:
    """The trial's case: `profile --help`, `service --help`, `journal --help` had none."""
    from typer.main import get_command

    from ollama_resident.cli import app

    root = get_command(app)
    ctx = typer.Context(root)
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        assert command is not None and command.help
        assert "Examples:" in command.help, f"{name} --help has no examples"
