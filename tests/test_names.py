"""One rule for comparing model names, in every command (issue 11, item 10)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from conftest import Run
from fakeollama import FakeModel, FakeOllama
from ollama_resident import render
from ollama_resident.models import PsSnapshot, name_starts_with, names_match

Cli = Callable[..., Run]


@pytest.fixture
def mixed(ollama: FakeOllama) -> FakeOllama:
    """``Mixed:latest`` installed with capitals, as `ollama create Mixed` leaves it, and loaded."""
    ollama.add_model(FakeModel("Mixed:latest"))
    ollama.preload("Mixed", "10m")
    return ollama


@pytest.mark.parametrize("typed", ["mixed", "Mixed", "MIXED:latest", "mixed:latest", "mix"])
def test_ps_prefix_finds_a_model_whatever_the_case(mixed: FakeOllama, cli: Cli, typed: str) -> None:
    run = cli("ps", typed, "--json")
    assert run.exit_code == 0, run
    assert [row["name"] for row in json.loads(run.stdout)] == ["Mixed:latest"]
    table = cli("ps", typed)
    assert table.stdout.splitlines()[1].startswith("Mixed:latest "), table


def test_ps_and_unload_agree_on_what_a_name_means(mixed: FakeOllama, cli: Cli) -> None:
    listed = json.loads(cli("ps", "mixed", "--json").stdout)
    run = cli("unload", "mixed", "--json")
    assert run.exit_code == 0, run
    assert [r["name"] for r in json.loads(run.stdout)] == [row["name"] for row in listed]
    assert json.loads(cli("ps", "mixed", "--json").stdout) == []


def test_ps_prefix_still_leaves_other_models_out(mixed: FakeOllama, cli: Cli) -> None:
    mixed.preload("tiny", "5m")
    assert [r["name"] for r in json.loads(cli("ps", "tin", "--json").stdout)] == ["tiny:latest"]
    assert json.loads(cli("ps", "tiny:1b", "--json").stdout) == []
    run = cli("ps", "nothing")
    assert run.stderr.strip() == f"No models matching 'nothing' loaded on {mixed.url}."


def test_the_rule_is_the_same_for_prefixes_and_whole_names() -> None:
    for a, b in [("tiny", "Tiny:latest"), ("registry.ollama.ai/library/tiny", "TINY")]:
        assert names_match(a, b)
        assert name_starts_with(b, a) and name_starts_with(a, b)
    assert not name_starts_with("tiny:latest", "tiny:1")  # a tag typed is kept as typed
    assert name_starts_with("tiny:1b", "tiny:1")


def test_ps_json_context_length_is_null_when_the_server_sends_none() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    entry = {
        "name": "tiny:latest",
        "model": "tiny:latest",
        "size": 1000,
        "size_vram": 0,
        "digest": "ab" * 32,
        "expires_at": "2026-01-01T00:05:00Z",
    }
    snapshot = PsSnapshot.from_api({"models": [entry, {**entry, "context_length": 4096}]}, now)
    rows = render.ps_json(snapshot, now)
    assert [r["context_length"] for r in rows] == [None, 4096]
    assert render.ps_rows(snapshot, now)[0][4] == "-"


def test_ps_json_null_context_from_a_server_that_sends_none(ollama: FakeOllama, cli: Cli) -> None:
    """A server that leaves context_length out (before it was added to /api/ps)."""
    entry = {
        "name": "tiny:latest",
        "model": "tiny:latest",
        "size": 675328,
        "digest": "ab" * 32,
        "details": {},
        "expires_at": "2099-01-01T00:00:00Z",
        "size_vram": 0,
    }
    ollama.reply_next("/api/ps", json.dumps({"models": [entry]}), times=2)
    run = cli("ps", "--json")
    assert run.exit_code == 0, run
    assert json.loads(run.stdout)[0]["context_length"] is None
    table = cli("ps")
    assert table.stdout.splitlines()[1].split()[-2] == "-", table  # CONTEXT, before UNTIL
