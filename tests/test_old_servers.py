"""Servers older than the tool's usual path (issue 11, item 9).

Before 0.6.4 /api/show has no ``capabilities``, so an embedding model cannot be
told from a chat model up front; before 0.2.6 there is no /api/embed, only the
legacy /api/embeddings. pin, preload, apply and guard load them all the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from conftest import Run
from fakeollama import FakeOllama

Cli = Callable[..., Run]


@pytest.fixture
def before_0_6_4(ollama: FakeOllama) -> FakeOllama:
    ollama.show_capabilities = False
    return ollama


@pytest.mark.parametrize("command", ["pin", "preload"])
def test_an_embedding_model_loads_without_capabilities(
    before_0_6_4: FakeOllama, cli: Cli, command: str
) -> None:
    """The instance: `pin nomic-embed-text` failed with "does not support generate", exit 1."""
    run = cli(command, "nomic-embed-text", "--json")
    assert run.exit_code == 0, run
    [result] = json.loads(run.stdout)
    assert (result["name"], result["ok"]) == ("nomic-embed-text:latest", True)
    assert [m["name"] for m in before_0_6_4.loaded()] == ["nomic-embed-text:latest"]
    # generate was tried first (no way to know), answered 400, then /api/embed loaded it
    assert len(before_0_6_4.requests_to("/api/generate")) == 1
    assert len(before_0_6_4.requests_to("/api/embed")) == 1
    if command == "pin":
        assert result["pinned"] is True


def test_a_chat_model_still_loads_with_generate(before_0_6_4: FakeOllama, cli: Cli) -> None:
    run = cli("pin", "tiny")
    assert run.exit_code == 0, run
    assert before_0_6_4.requests_to("/api/embed") == []


def test_a_server_with_only_the_legacy_embeddings_endpoint(ollama: FakeOllama, cli: Cli) -> None:
    ollama.show_capabilities = False
    ollama.embed_supported = False
    run = cli("pin", "tiny-embed", "--json")
    assert run.exit_code == 0, run
    assert json.loads(run.stdout)[0]["pinned"] is True
    assert len(ollama.requests_to("/api/embeddings")) == 1
    body = ollama.requests_to("/api/embeddings")[0].json
    assert body == {"model": "tiny-embed", "prompt": "", "keep_alive": -1}


def test_guard_restores_an_embedding_model_on_an_old_server(
    before_0_6_4: FakeOllama, cli: Cli
) -> None:
    run = cli("guard", "tiny-embed", "--once", "--jsonl", "--no-journal")
    assert run.exit_code == 0, run
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert ("tiny-embed:latest", "restored") in {(e["model"], e["event"]) for e in events}
    assert not [e for e in events if e["event"] == "restore_failed"]
