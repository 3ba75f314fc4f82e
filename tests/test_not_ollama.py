"""Replies that are not Ollama's, and a server that never answers: one line, exit 3, everywhere.

Issue 11, items 1 and 2. The fake answers like a proxy in front of a dead Ollama
(nginx's 502 page), a dev server (plain text), a broken one (empty, cut-short or
wrong-shaped JSON), or accepts and never answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from fakeollama import FakeOllama

Cli = Callable[..., Run]

COMMANDS = [
    ("ps",),
    ("ps", "--json"),
    ("preload", "tiny"),
    ("pin", "tiny"),
    ("unload", "tiny"),
    ("unload", "--all"),
    ("apply", "work"),
    ("guard", "tiny", "--once"),
    ("profile", "save", "snap"),
]

WHAT = {
    "html-502": 'HTTP 502 with an HTML page titled "502 Bad Gateway", probably from a proxy',
    "plain-text": 'HTTP 200 with plain text: "Hello from a dev server"',
    "empty": "HTTP 200 with an empty reply",
    "truncated-json": "HTTP 200 with JSON cut short or malformed",
    "wrong-shape": 'HTTP 200 with JSON that is not Ollama\'s: "models" is a string, not an array',
}


@pytest.fixture(autouse=True)
def work_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.work]\nmodels = ["tiny"]\n')
    monkeypatch.setenv("OLLAMA_RESIDENT_PROFILES", str(path))
    return path


def _the_error(run: Run) -> str:
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, run
    assert lines[-1].startswith("  hint: "), run  # one line, then its hint
    return errors[0]


@pytest.mark.parametrize("kind", sorted(WHAT))
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_reply_that_is_not_ollamas_is_one_line_and_exit_3(
    ollama: FakeOllama, cli: Cli, command: tuple[str, ...], kind: str
) -> None:
    ollama.preload("tiny", "5m")
    ollama.not_ollama_next("/api/ps", kind, times=0)
    run = cli(*command)
    assert run.exit_code == 3, run
    assert _the_error(run) == (
        f"error: not Ollama's answer from {ollama.url} to GET /api/ps: {WHAT[kind]}"
    )
    assert "<html>" not in run.stderr and "<center>" not in run.stderr
    assert "No models loaded" not in run.stderr + run.stdout
    assert ollama.requests_to("/api/generate") == []  # nothing was done on a bad reading


def test_a_proxy_page_on_a_later_request_stops_the_command_the_same_way(
    ollama: FakeOllama, cli: Cli
) -> None:
    ollama.not_ollama_next("/api/show", "html-502", times=0)
    run = cli("pin", "tiny", "tiny2")
    assert run.exit_code == 3, run
    assert _the_error(run) == (
        f"error: not Ollama's answer from {ollama.url} to POST /api/show: {WHAT['html-502']}"
    )
    assert ollama.requests_to("/api/show") and len(ollama.requests_to("/api/show")) == 1


def test_ollamas_own_errors_are_still_ollamas(ollama: FakeOllama, cli: Cli) -> None:
    ollama.fail_next("/api/show", 500, "llama runner process has terminated")
    run = cli("pin", "tiny")
    assert run.exit_code == 1, run
    assert "error: tiny: llama runner process has terminated" in run.stderr


def test_the_wrong_shape_is_not_taken_for_nothing_loaded(ollama: FakeOllama, cli: Cli) -> None:
    """The instance: {"models":"oops"} once printed "No models loaded" and exited 0."""
    ollama.reply_next("/api/ps", '{"models":"oops"}')
    run = cli("ps")
    assert run.exit_code == 3, run
    for body, why in [
        ("{}", 'no "models" array'),
        ('{"models":[1]}', '"models"[0] is a number, not an object'),
        ('{"models":[{"size":1}]}', '"models"[0] has no name'),
        ("[]", "an array"),
    ]:
        ollama.reply_next("/api/ps", body)
        run = cli("ps", "--json")
        assert run.exit_code == 3, (body, run)
        assert _the_error(run).endswith(f"JSON that is not Ollama's: {why}"), run


def test_guard_once_says_what_every_other_command_says(ollama: FakeOllama, cli: Cli) -> None:
    ollama.not_ollama_next("/api/ps", "html-502", times=0)
    ps, guard = cli("ps"), cli("guard", "tiny", "--once")
    assert (ps.exit_code, guard.exit_code) == (3, 3)
    assert _the_error(guard) == _the_error(ps)
    assert "ollama serve" not in guard.stderr  # not "start it": something answered


# -- a server that accepts and never answers ----------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("ps", "--timeout", "0.5"),
        ("preload", "tiny", "--timeout", "0.5"),
        ("pin", "tiny", "--timeout", "0.5"),
        ("apply", "work", "--timeout", "0.5"),
    ],
    ids=" ".join,
)
def test_a_server_that_never_answers_is_exit_3(
    ollama: FakeOllama, cli: Cli, command: tuple[str, ...]
) -> None:
    ollama.mute = True
    run = cli(*command)
    assert run.exit_code == 3, run
    assert _the_error(run) == (
        f"error: Ollama at {ollama.url} accepted the connection but did not answer "
        "GET /api/ps within 0.5s"
    )


def test_unload_and_guard_never_answered_exit_3_too(ollama: FakeOllama) -> None:
    """These wait the default 10 s for a quick request; both run at once."""
    ollama.mute = True
    env = {**os.environ, "NO_COLOR": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ollama_resident", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for args in (("unload", "tiny"), ("guard", "tiny", "--once", "--no-journal"))
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 3, stderr
        assert (
            f"error: Ollama at {ollama.url} accepted the connection but did not answer GET "
            "/api/ps within 10s"
        ) in stderr
    # One attempt each, as the words say (guard --once asked twice: 20 s for "within 10s").
    asked = [r for r in ollama.requests if r.path == "/api/ps"]
    assert len(asked) == len(procs)
