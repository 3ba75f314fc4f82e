"""Names that match nothing installed, and second names of one model file (issue 11, 7 and 8)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from conftest import Run
from fakeollama import FakeOllama

Cli = Callable[..., Run]


def _loaded(server: FakeOllama) -> list[str]:
    return sorted(m["name"] for m in server.loaded())


# -- 7: a typo is an error before anything is sent ---------------------------------------------


def test_a_typo_in_except_unloads_nothing(ollama: FakeOllama, cli: Cli) -> None:
    """The instance: `unload --all --except lama3.2` unloaded llama3.2 with the rest."""
    for name in ("llama3.2", "tiny", "tiny2"):
        ollama.preload(name, "10m")
    ollama.clear_requests()
    run = cli("unload", "--all", "--except", "lama3.2")
    assert run.exit_code == 2, run
    assert run.stderr.splitlines() == [
        f'error: --except "lama3.2" matches no model installed or loaded on {ollama.url}; '
        "nothing was sent",
        '  hint: did you mean "llama3.2:latest"? (`ollama list` shows what is installed)',
    ]
    assert ollama.requests_to("/api/generate") == []
    assert _loaded(ollama) == ["llama3.2:latest", "tiny2:latest", "tiny:latest"]


@pytest.mark.parametrize("command", ["pin", "preload", "unload"])
def test_a_name_that_matches_nothing_installed_exits_2(
    ollama: FakeOllama, cli: Cli, command: str
) -> None:
    ollama.preload("tiny2", "10m")
    ollama.clear_requests()
    run = cli(command, "tiny", "tiyn2")
    assert run.exit_code == 2, run
    assert run.stderr.splitlines()[0] == (
        f'error: model "tiyn2" matches no model installed or loaded on {ollama.url}; '
        "nothing was sent"
    )
    assert '"tiny2:latest"' in run.stderr.splitlines()[1]
    for path in ("/api/generate", "/api/embed", "/api/show"):
        assert ollama.requests_to(path) == []
    assert _loaded(ollama) == ["tiny2:latest"]


def test_installed_but_not_loaded_is_still_fine_for_unload(ollama: FakeOllama, cli: Cli) -> None:
    run = cli("unload", "tiny", "--json")
    assert run.exit_code == 0, run
    assert [r["status"] for r in json.loads(run.stdout)] == ["not-loaded"]


def test_no_tags_request_when_every_name_is_loaded(ollama: FakeOllama, cli: Cli) -> None:
    ollama.preload("tiny", -1)
    ollama.clear_requests()
    assert cli("pin", "tiny").exit_code == 0
    assert ollama.requests_to("/api/tags") == []  # the startup-file path stays one request


# -- 8: `ollama cp`: two names, one file, one runner -------------------------------------------


@pytest.fixture
def alias(ollama: FakeOllama) -> FakeOllama:
    ollama.copy_model("tiny", "coder-alias")
    ollama.preload("tiny", "10m")
    return ollama


def test_the_fake_serves_an_alias_from_the_same_runner(alias: FakeOllama) -> None:
    import httpx

    httpx.post(
        f"{alias.url}/api/generate",
        json={"model": "coder-alias", "prompt": "", "keep_alive": -1, "stream": False},
    ).raise_for_status()
    assert [m["name"] for m in alias.loaded()] == ["tiny:latest"]


def test_pin_an_alias_pins_the_runner_that_serves_it(alias: FakeOllama, cli: Cli) -> None:
    run = cli("pin", "coder-alias", "--json")
    assert run.exit_code == 0, run
    [result] = json.loads(run.stdout)
    assert (result["name"], result["status"], result["pinned"]) == ("tiny:latest", "updated", True)
    assert len(alias.requests_to("/api/generate")) == 1
    again = cli("pin", "coder-alias", "--json")
    assert json.loads(again.stdout)[0]["status"] == "unchanged"
    assert len(alias.requests_to("/api/generate")) == 1  # already pinned: nothing sent


def test_unload_an_alias_unloads_it(alias: FakeOllama, cli: Cli) -> None:
    run = cli("unload", "coder-alias", "--json")
    assert run.exit_code == 0, run
    assert [(r["name"], r["status"]) for r in json.loads(run.stdout)] == [
        ("tiny:latest", "unloaded")
    ]
    assert _loaded(alias) == []


def test_except_an_alias_keeps_its_runner(alias: FakeOllama, cli: Cli) -> None:
    alias.preload("tiny2", "10m")
    run = cli("unload", "--all", "--except", "coder-alias")
    assert run.exit_code == 0, run
    assert _loaded(alias) == ["tiny:latest"]


def test_guard_an_alias_sees_it_resident(alias: FakeOllama, cli: Cli) -> None:
    alias.preload("tiny", -1)
    alias.clear_requests()
    run = cli("guard", "coder-alias", "--once", "--jsonl", "--no-journal")
    assert run.exit_code == 0, run
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert not [e for e in events if e["event"] in ("restored", "restore_failed")], events
    assert alias.requests_to("/api/generate") == []
