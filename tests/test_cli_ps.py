"""`ps` against the fake server: the table, the JSON contract, and every error path."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from conftest import Run, closed_port, generate_in_background, wait_busy
from fakeollama import FakeOllama

PS_KEYS = {
    "name",
    "model",
    "digest",
    "size",
    "size_vram",
    "context_length",
    "expires_at",
    "pinned",
    "expires_in_s",
    "state",
    "processor",
    "until",
}


def test_nothing_loaded_is_one_message_and_exit_0(ollama: FakeOllama, cli: Callable[..., Run]):
    run = cli("ps")
    assert run.exit_code == 0
    assert run.stdout == ""
    assert run.stderr.strip() == f"No models loaded on {ollama.url}."


def test_nothing_loaded_json_is_empty_array(ollama: FakeOllama, cli: Callable[..., Run]):
    run = cli("ps", "--json")
    assert run.exit_code == 0
    assert json.loads(run.stdout) == []


def test_every_kind_of_model_in_table_and_json(
    make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run]
):
    # 4 GB of VRAM: the tiny models fit, qwen2.5:14b (~10 GB) is split CPU/GPU.
    server = make_ollama(gpu_memory=4_000_000_000, max_loaded=6)
    server.preload("tiny", -1)
    server.preload("tiny2", "5m")
    server.preload("tiny-embed", "30m")
    server.preload("tiny3", "5m")
    server.preload("qwen2.5:14b", "10m")  # last: takes the VRAM that is left
    # tiny3: a generation held until the test ends, then an unload while it runs -> listed,
    # deadline in the past.
    server.hold_requests("tiny3")
    generate_in_background(server, "tiny3", tokens=200)
    wait_busy(server, "tiny3:latest")
    httpx.post(f"{server.url}/api/generate", json={"model": "tiny3", "keep_alive": 0})

    run = cli("ps", "--json")
    assert run.exit_code == 0, run
    rows = {row["name"]: row for row in json.loads(run.stdout)}
    assert set(rows) == {
        "tiny:latest",
        "tiny2:latest",
        "tiny3:latest",
        "tiny-embed:latest",
        "qwen2.5:14b",
    }
    for row in rows.values():
        assert set(row) == PS_KEYS
    pinned = rows["tiny:latest"]
    assert pinned["pinned"] is True and pinned["expires_in_s"] is None
    assert pinned["until"] == "Forever" and pinned["state"] == "pinned"
    assert pinned["expires_at"].startswith("23")  # ~292 years ahead, as the server sent it
    assert pinned["processor"] == "100% GPU" and pinned["context_length"] == 512
    five = rows["tiny2:latest"]
    assert five["pinned"] is False and 295 < five["expires_in_s"] <= 300
    assert five["state"] == "expiring"
    assert rows["tiny-embed:latest"]["state"] == "expiring"
    split = rows["qwen2.5:14b"]
    assert split["processor"].endswith("% CPU/GPU") and 0 < split["size_vram"] < split["size"]
    stopping = rows["tiny3:latest"]
    assert stopping["state"] == "overdue" and stopping["expires_in_s"] <= 0
    assert stopping["until"] == "busy or stopping"

    table = cli("ps")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert by_name["tiny:latest"].endswith("Forever")
    assert "a09825f870c3" in by_name["tiny:latest"]  # ID: 12 hex chars of the digest
    assert "675 KB" in by_name["tiny:latest"]
    assert by_name["tiny3:latest"].endswith("busy or stopping")
    assert "% CPU/GPU" in by_name["qwen2.5:14b"]
    assert all(not line.endswith(" ") for line in lines)
    assert "\x1b[" not in table.stdout and "─" not in table.stdout  # plain text when piped
    # Same order as the server: longest-lived first.
    server_order = [m["name"] for m in httpx.get(f"{server.url}/api/ps").json()["models"]]
    assert [line.split()[0] for line in lines[1:]] == server_order


def test_prefix_filters_like_ollama_ps(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", -1)
    ollama.preload("tiny-embed", "5m")
    ollama.preload("qwen2.5:14b", "5m")
    run = cli("ps", "tiny", "--json")
    assert sorted(r["name"] for r in json.loads(run.stdout)) == ["tiny-embed:latest", "tiny:latest"]
    none = cli("ps", "zzz")
    assert none.exit_code == 0 and "matching 'zzz'" in none.stderr


def test_countdown_in_table(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", "5m")
    line = cli("ps").stdout.splitlines()[1]
    assert line.split()[-2:] in (["4m", "59s"], ["5m", "00s"], ["4m", "58s"])


def test_server_offset_and_nanoseconds_parse(
    make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run]
):
    server = make_ollama(utc_offset_minutes=-420)
    server.preload("tiny", -1)
    server.preload("tiny2", "90s")
    rows = {r["name"]: r for r in json.loads(cli("ps", "--json").stdout)}
    assert rows["tiny:latest"]["expires_at"].endswith("-07:00")
    assert rows["tiny:latest"]["pinned"] is True
    assert 85 < rows["tiny2:latest"]["expires_in_s"] <= 90


def test_unreachable_is_exit_3_with_url_and_hint(cli: Callable[..., Run]):
    port = closed_port()
    run = cli("ps", "--host", f"127.0.0.1:{port}")
    assert run.exit_code == 3
    assert run.stdout == ""
    first = run.stderr.splitlines()[0]
    assert first == f"error: cannot reach Ollama at http://127.0.0.1:{port} (connection refused)"
    assert "ollama serve" in run.stderr and "OLLAMA_HOST" in run.stderr
    assert "Traceback" not in run.stderr


def test_credentials_never_printed(cli: Callable[..., Run]):
    port = closed_port()
    run = cli("ps", "--host", f"http://alice:s3cret@127.0.0.1:{port}")
    assert run.exit_code == 3
    assert "s3cret" not in run.stderr and "alice" not in run.stderr
    assert f"127.0.0.1:{port}" in run.stderr


def test_ollama_host_env_is_used(ollama: FakeOllama, cli: Callable[..., Run], monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{ollama.port}")  # bare host:port, no scheme
    ollama.preload("tiny", -1)
    assert cli("ps", "--json").exit_code == 0
    assert ollama.requests_to("/api/ps")


def test_host_option_beats_env(ollama: FakeOllama, cli: Callable[..., Run], monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    run = cli("ps", "--host", ollama.url)
    assert run.exit_code == 0


def test_server_too_old_for_ps(make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run]):
    make_ollama(ps_supported=False)
    run = cli("ps")
    assert run.exit_code == 1
    assert "has no /api/ps endpoint" in run.stderr
    assert "0.1.38" in run.stderr


def test_server_error_carries_ollama_text(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.fail_next("/api/ps", 500, "something broke inside")
    run = cli("ps")
    assert run.exit_code == 1
    assert run.stderr.splitlines()[0] == "error: something broke inside"


def test_hanging_server_times_out(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.hang_next("/api/ps", 3600)  # until the server stops
    run = cli("ps", "--timeout", "0.5")
    assert run.exit_code == 3  # not answering is unreachable, in every command (#11.2)
    assert "did not answer GET /api/ps within 0.5s" in run.stderr


def test_debug_shows_traceback(cli: Callable[..., Run]):
    from typer.testing import CliRunner

    from ollama_resident.cli import app
    from ollama_resident.errors import ServerUnreachable

    runner = CliRunner()
    result = runner.invoke(app, ["--debug", "ps"])
    assert isinstance(result.exception, ServerUnreachable)


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str, cli: Callable[..., Run]):
    from ollama_resident import __version__

    run = cli(flag)
    assert run.exit_code == 0
    assert run.stdout.strip() == f"ollama-resident {__version__}"
