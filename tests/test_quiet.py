"""--quiet means one thing in every command: nothing but errors (issue 11, item 12).

Tables, notes, successes, progress and warnings are left out; data asked for with
--json/--jsonl is still written; errors are always shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from fakeollama import FakeOllama

Cli = Callable[..., Run]


@pytest.fixture
def crowded(make_ollama: Callable[..., FakeOllama], tmp_path: Path, monkeypatch) -> FakeOllama:
    """One model at a time: every load evicts, which commands warn about."""
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.work]\nmodels = ["tiny2"]\n')
    monkeypatch.setenv("OLLAMA_RESIDENT_PROFILES", str(path))
    server = make_ollama(max_loaded=1)
    server.preload("tiny", "10m")
    return server


@pytest.mark.parametrize(
    "command",
    [
        ("preload", "tiny2"),
        ("pin", "tiny2"),
        ("unload", "tiny"),
        ("unload", "--all"),
        ("apply", "work"),
        ("profile", "add", "work", "tiny3"),
        ("profile", "remove", "work", "tiny2"),
        ("profile", "save", "snap"),
    ],
    ids=" ".join,
)
def test_quiet_prints_nothing_when_all_goes_well(
    crowded: FakeOllama, cli: Cli, command: tuple[str, ...]
) -> None:
    loud = cli(*command)  # the same command without --quiet says something
    assert loud.exit_code == 0, loud
    assert loud.stdout + loud.stderr != ""
    crowded.reset()
    crowded.preload("tiny", "10m")
    if command[0] == "profile":
        cli("profile", "add", "work", "tiny2")
    run = cli(*command, "--quiet")
    assert run.exit_code == 0, run
    assert (run.stdout, run.stderr) == ("", "")


def test_quiet_leaves_warnings_out_too(crowded: FakeOllama, cli: Cli) -> None:
    loud = cli("preload", "tiny2")
    assert "warning: loading tiny2:latest evicted tiny:latest" in loud.stderr
    crowded.preload("tiny", "10m")
    assert cli("preload", "tiny2", "-q").stderr == ""


def test_quiet_with_json_still_prints_the_data(crowded: FakeOllama, cli: Cli) -> None:
    run = cli("preload", "tiny2", "--json", "--quiet")
    assert run.exit_code == 0, run
    assert run.stderr == ""
    assert [r["name"] for r in json.loads(run.stdout)] == ["tiny2:latest"]


def test_json_alone_keeps_warnings_on_stderr(crowded: FakeOllama, cli: Cli) -> None:
    run = cli("preload", "tiny2", "--json")
    assert "evicted tiny:latest" in run.stderr
    json.loads(run.stdout)


@pytest.mark.parametrize(
    ("command", "code"),
    [(("pin", "tiyn"), 2), (("apply", "nope"), 2), (("unload", "tiny", "--host", "h:0"), 2)],
    ids=["typo", "no-profile", "bad-host"],
)
def test_quiet_still_shows_errors(
    crowded: FakeOllama, cli: Cli, command: tuple[str, ...], code: int
) -> None:
    run = cli(*command, "--quiet")
    assert run.exit_code == code, run
    assert run.stdout == ""
    assert run.stderr.startswith("error: "), run


def test_watch_and_guard_quiet_write_only_their_data(crowded: FakeOllama, cli: Cli) -> None:
    run = cli("guard", "tiny", "--once", "--quiet", "--no-journal")
    assert run.exit_code == 0, run
    assert run.stderr == ""
    assert all(json.loads(line) for line in run.stdout.splitlines())


def test_guard_once_quiet_shows_the_failed_restore_that_makes_it_exit_1(
    crowded: FakeOllama, cli: Cli
) -> None:
    """A failure that decides a non-zero exit is an error line, --quiet or not."""
    crowded.fail_load("tiny2", "llama runner process has terminated: out of memory")
    run = cli("guard", "tiny2", "--once", "--quiet", "--no-journal")
    assert run.exit_code == 1, run
    # --once tries once: the line does not promise a retry that will not come.
    assert run.stderr.splitlines() == [
        "error: could not load it: llama runner process has terminated: out of memory"
    ], run
    assert "restore_failed" in [json.loads(x)["event"] for x in run.stdout.splitlines()]
    # A guard that keeps running retries: there the same failure is a warning.
    from datetime import datetime, timezone

    from ollama_resident import render
    from ollama_resident.events import Event

    now = datetime.now(timezone.utc)
    failed = Event(
        time=now,
        host="h",
        event="restore_failed",
        model="tiny2:latest",
        detail={"error": "out of memory", "retry_in_s": 5},
    )
    down = Event(time=now, host="h", event="server_down", model=None)
    lines = render.guard_lines([failed, down])
    assert [level for level, _ in lines] == ["failed", "warn"]
    assert lines[0][1].endswith("tiny2:latest  could not load it: out of memory; retrying in 5s")
    [(_level, once)] = render.guard_lines([failed], retrying=False)
    assert once.endswith("tiny2:latest  could not load it: out of memory")


@pytest.mark.parametrize(
    "command",
    [("preload", "tiny2"), ("pin", "tiny2"), ("apply", "work")],
    ids=" ".join,
)
def test_quiet_shows_a_failed_load_as_an_error(
    crowded: FakeOllama, cli: Cli, command: tuple[str, ...]
) -> None:
    crowded.fail_load("tiny2", "llama runner process has terminated: out of memory")
    run = cli(*command, "--quiet")
    assert run.exit_code == 1, run
    assert run.stdout == ""
    assert run.stderr.startswith("error: ") and "out of memory" in run.stderr, run


@pytest.mark.parametrize("command", [("pin",), ("preload",)], ids=" ".join)
def test_quiet_shows_what_did_not_stay_loaded(
    crowded: FakeOllama, cli: Cli, command: tuple[str, ...]
) -> None:
    """One model at a time: the second load pushes the first out; the end state fails."""
    run = cli(*command, "tiny2", "tiny3", "--force", "--quiet")
    assert run.exit_code == 1, run
    assert run.stdout == ""
    first = run.stderr.splitlines()[0]
    assert first == (
        "error: 2 models asked, 1 resident at the end: tiny2:latest was pushed out by tiny3:latest"
    ), run


def test_quiet_unload_that_fails_is_an_error(crowded: FakeOllama, cli: Cli) -> None:
    crowded.fail_next("/api/generate", 500, "boom", times=5)
    run = cli("unload", "tiny", "--quiet")
    assert run.exit_code == 1, run
    assert run.stderr.startswith("error: tiny"), run
