"""A service runs where the user's shell does not: it carries the host and paths in use.

Issue 11, item 6: `service install --profile work` with OLLAMA_HOST set in the shell
and no host in the profile made a unit that guarded 127.0.0.1:11434.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from fakeollama import FakeOllama

Cli = Callable[..., Run]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "elsewhere" / "profiles.toml"
    path.parent.mkdir()
    path.write_text('[profiles.work]\nmodels = ["tiny"]\n')
    monkeypatch.setenv("OLLAMA_RESIDENT_PROFILES", str(path))
    return path


def _words(line: str) -> list[str]:
    """systemd's double-quoted words, unescaped (\\\\, \\", %%, $$)."""
    words = re.findall(r'"((?:[^"\\]|\\.)*)"', line)
    return [re.sub(r"\\(.)", r"\1", w).replace("%%", "%").replace("$$", "$") for w in words]


def _unit(text: str) -> tuple[list[str], dict[str, str]]:
    argv: list[str] = []
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            argv = _words(line)
        elif line.startswith("Environment="):
            name, _, value = _words(line)[0].partition("=")
            env[name] = value
    return argv, env


def test_the_unit_guards_the_host_this_shell_uses(
    ollama: FakeOllama, work: Path, cli: Cli, tmp_path: Path
) -> None:
    run = cli("service", "print", "--systemd", "--profile", "work")
    assert run.exit_code == 0, run
    argv, env = _unit(run.stdout)
    assert env["OLLAMA_HOST"] == ollama.url
    # Run the unit's command as systemd would: none of this shell's variables, only its own.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA")}
    ollama.clear_requests()
    done = subprocess.run(
        [*argv, "--once", "--no-journal"],
        env={**clean, **env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert ollama.requests_to("/api/ps"), "the guard did not reach the shell's server"
    assert [m["name"] for m in ollama.loaded()] == ["tiny:latest"]


def test_a_profile_with_its_own_host_needs_no_ollama_host(
    ollama: FakeOllama, work: Path, cli: Cli
) -> None:
    work.write_text(f'[profiles.work]\nhost = "{ollama.url}"\nmodels = ["tiny"]\n')
    _argv, env = _unit(cli("service", "print", "--systemd", "--profile", "work").stdout)
    assert "OLLAMA_HOST" not in env


def test_journal_and_home_are_carried_as_absolute_paths(
    work: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OLLAMA_RESIDENT_JOURNAL", "logs/journal.jsonl")
    run = cli("service", "print", "--systemd", "--profile", "work")
    argv, env = _unit(run.stdout)
    assert env["OLLAMA_RESIDENT_JOURNAL"] == str(tmp_path / "logs" / "journal.jsonl")
    assert env["OLLAMA_RESIDENT_HOME"] == os.environ["OLLAMA_RESIDENT_HOME"]
    assert argv[argv.index("--profiles") + 1] == str(work)


def test_launchd_carries_them_as_environment_variables(
    ollama: FakeOllama, work: Path, cli: Cli
) -> None:
    text = cli("service", "print", "--launchd", "--profile", "work").stdout
    assert f"<key>OLLAMA_HOST</key>\n    <string>{ollama.url}</string>" in text
    assert "<key>EnvironmentVariables</key>" in text


def test_an_unusable_ollama_host_is_refused_not_installed(
    work: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:99999")
    run = cli("service", "install", "--systemd", "--profile", "work")
    assert run.exit_code == 2, run
    assert 'OLLAMA_HOST "127.0.0.1:99999" cannot be used' in run.stderr


def test_xdg_config_home_decides_where_a_user_unit_goes(
    ollama: FakeOllama, work: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    run = cli("service", "install", "--systemd", "--profile", "work")
    assert run.exit_code == 0, run
    unit = xdg / "systemd" / "user" / "ollama-resident-guard-work.service"
    assert unit.exists(), run
    assert f'Environment="OLLAMA_HOST={ollama.url}"' in unit.read_text()
