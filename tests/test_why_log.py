"""`why` with Ollama's server log: per scenario, found by itself, from the fake's own log, merged
with the journal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import ollamalogs as L
from conftest import Run, fake_bin, wait_until
from fakeollama import FakeOllama
from ollama_resident import logsource

Cli = Callable[..., Run]


def write(tmp_path: Path, lines: list[str], name: str = "server.log") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- Done when: each scenario at DEBUG names the cause and the client ------------------------


@pytest.mark.parametrize(
    ("scenario", "model", "expected"),
    [
        ("01-expiry", "tiny", ["unloaded: its keep-alive (3s) ran out while it was idle"]),
        (
            "02-stop",
            "tiny",
            ["unloaded: stopped by POST /api/generate from 127.0.0.5 at 16:37:17", "keep_alive 0"],
        ),
        (
            "03-eviction",
            "tiny2",
            [
                "unloaded: evicted to make room for tiny3:latest (OLLAMA_MAX_LOADED_MODELS=2",
                "tiny3:latest was asked for by POST /api/generate from 127.0.0.1",
            ],
        ),
        (
            "04-reload",
            "tiny-4k",
            [
                "reloaded with new options: context 4096 -> 2048 by POST /api/generate from "
                "10.0.0.7",
                "the pin was lost (keep-alive now 5m)",
            ],
        ),
        (
            "05-pin-reset",
            "tiny",
            ["the pin was reset to 5m by POST /api/generate from 127.0.0.2 at 16:37:17"],
        ),
        ("06-restart", "tiny", ["unloaded: the Ollama server restarted (it started again at"]),
    ],
)
def test_debug_log_names_cause_and_client(
    cli: Cli, tmp_path: Path, scenario: str, model: str, expected: list[str]
) -> None:
    path = write(tmp_path, L.SCENARIOS[scenario](True))
    run = cli("why", model, "--server-log", str(path), env={"TZ": "UTC"})
    assert run.exit_code == 0, run
    for text in expected:
        assert text in run.stdout, run
    assert "DEBUG level" in run.stdout
    assert "OLLAMA_DEBUG=1" not in run.stdout  # no advice to turn on what is on


@pytest.mark.parametrize(
    ("scenario", "blob", "expected"),
    [
        ("01-expiry", "tiny", "loaded in 0.29s (context 512"),
        ("04-reload", "tiny-4k", "reloaded with new options: context 4096 -> 2048"),
        ("06-restart", "tiny", "gone: the Ollama server restarted"),
        ("03-eviction", "tiny2", "one of sha256-1b8444b0d5ed, sha256-876d1158a74c was unloaded"),
    ],
)
def test_info_log_names_loads_reload_restart_and_says_how_to_get_debug(
    cli: Cli, tmp_path: Path, scenario: str, blob: str, expected: str
) -> None:
    path = write(tmp_path, L.SCENARIOS[scenario](False))
    run = cli("why", "sha256-" + L.BLOBS[blob][:12], "--server-log", str(path))
    assert run.exit_code == 0, run
    assert expected in run.stdout, run
    assert "The server log is at INFO" in run.stdout
    assert "OLLAMA_DEBUG=1" in run.stdout


def test_info_log_without_the_server_lists_the_blobs(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, L.expiry(False))
    run = cli("why", "tiny", "--server-log", str(path))
    assert "names models only by their blob" in run.stdout, run
    assert "sha256-876d1158a74c" in run.stdout


def test_log_from_stdin_under_journalctl(cli: Cli) -> None:
    text = "\n".join(L.wrap(L.pin_reset(True), "journal")) + "\n"
    run = cli("why", "tiny", "--server-log", "-", input=text)
    assert "the pin was reset to 5m by POST /api/generate from 127.0.0.2" in run.stdout, run


# -- the fake's own log: end to end ---------------------------------------------------------


def test_fake_server_log_tells_eviction_pin_reset_and_stop_with_an_empty_journal(
    make_ollama: Callable[..., FakeOllama], cli: Cli, isolated_env: Path
) -> None:
    log = isolated_env / ".ollama" / "logs" / "server.log"
    log.parent.mkdir(parents=True)
    server = make_ollama(max_loaded=2, log_path=str(log), log_debug=True)
    with httpx.Client(base_url=server.url) as c:
        c.post("/api/generate", json={"model": "tiny", "prompt": "", "keep_alive": -1})
        c.post(
            "/api/generate",
            json={"model": "tiny", "prompt": "hi", "keep_alive": "5m"},
            headers={"X-Forwarded-For": "192.0.2.10"},
        )
        c.post("/api/generate", json={"model": "tiny2", "prompt": "", "keep_alive": "10m"})
        c.post("/api/generate", json={"model": "tiny3", "prompt": "", "keep_alive": "10m"})
        server.wait_idle()
        c.post("/api/generate", json={"model": "tiny2", "prompt": "", "keep_alive": 0})
        wait_until(lambda: "tiny2:latest" not in [r["name"] for r in server.loaded()])
    # Found by itself (no journalctl unit here; the app's log file), the server answering.
    run = cli("why", "tiny")
    assert f"Server log: {log}" in run.stdout, run
    assert "journalctl -u ollama: no entries" in run.stdout
    assert "the pin was reset to 5m by POST /api/generate from 192.0.2.10" in run.stdout
    assert "unloaded: evicted to make room for tiny3:latest" in run.stdout
    run = cli("why", "tiny2", "--server-log", str(log))
    assert "unloaded: stopped by POST /api/generate from 127.0.0.1" in run.stdout, run


def test_fake_info_log_is_named_through_the_server(
    make_ollama: Callable[..., FakeOllama], cli: Cli, tmp_path: Path
) -> None:
    log = tmp_path / "info.log"
    server = make_ollama(log_path=str(log))
    server.preload("tiny", "5m")
    server.preload("tiny", "5m", num_ctx=256)
    run = cli("why", "tiny", "--server-log", str(log))
    assert "tiny:latest: " in run.stdout.splitlines()[0], run
    assert "reloaded with new options: context 512 -> 256" in run.stdout
    assert "The server log is at INFO" in run.stdout
    # The server gone: the same log names the blob only.
    server.stop()
    run = cli("why", "--server-log", str(log), "--since", "1h")
    assert "sha256-" in run.stdout, run


def test_restart_in_the_fake_log(
    make_ollama: Callable[..., FakeOllama], cli: Cli, tmp_path: Path
) -> None:
    log = tmp_path / "debug.log"
    server = make_ollama(log_path=str(log), log_debug=True)
    server.preload("tiny", -1)
    server.restart()
    run = cli("why", "tiny", "--server-log", str(log))
    assert "unloaded: the Ollama server restarted" in run.stdout, run


def test_journal_and_log_tell_one_stop_with_both_sources(
    make_ollama: Callable[..., FakeOllama], cli: Cli, tmp_path: Path
) -> None:
    log = tmp_path / "debug.log"
    server = make_ollama(log_path=str(log), log_debug=True)
    server.preload("tiny", "5m")
    assert cli("unload", "tiny").exit_code == 0
    wait_until(lambda: not server.loaded())
    run = cli("why", "tiny", "--server-log", str(log), "--json")
    data = json.loads(run.stdout)
    stops = [i for i in data["items"] if i["event"] == "unloaded"]
    assert len(stops) == 1, data
    kinds = [s["kind"] for s in stops[0]["sources"]]
    assert kinds == ["journal", "server_log"]
    assert stops[0]["confidence"] == "certain"
    assert stops[0]["request"]["path"] == "/api/generate"
    assert {s["kind"] for s in data["sources"]} == {"journal", "server_log"}


def test_json_schema(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, L.eviction(True))
    data = json.loads(cli("why", "tiny2", "--server-log", str(path), "--json").stdout)
    assert set(data) == {
        "schema_version",
        "model",
        "headline",
        "items",
        "notes",
        "sources",
        "journal",
        "covers",
        "host",
        "other_hosts",
        "items_total",
        "truncated",
    }
    assert (data["items_total"], data["truncated"]) == (len(data["items"]), False)
    item = data["items"][0]
    assert set(item) == {
        "time",
        "event",
        "reason",
        "confidence",
        "summary",
        "evidence",
        "sources",
        "request",
        "detail",
    }
    assert (item["event"], item["reason"]) == ("unloaded", "evicted")
    assert item["sources"][0]["kind"] == "server_log" and item["sources"][0]["level"] == "DEBUG"
    log_source = next(s for s in data["sources"] if s["kind"] == "server_log")
    assert log_source["read"] and log_source["level"] == "DEBUG"


def test_why_without_a_model_covers_every_model(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, L.eviction(True))
    run = cli("why", "--server-log", str(path), "--since", "24000h")
    assert "tiny2:latest" in run.stdout and "tiny3:latest" in run.stdout, run
    assert "evicted to make room for tiny3:latest" in run.stdout
    data = json.loads(cli("why", "--server-log", str(path), "--since", "24000h", "--json").stdout)
    assert {m["model"] for m in data["models"]} >= {"tiny:latest", "tiny2:latest", "tiny3:latest"}


# -- finding the log ------------------------------------------------------------------------


def test_found_in_the_journal(cli: Cli, tmp_path: Path) -> None:
    text = "\n".join(L.wrap(L.stop(True), "journal-iso")) + "\n"
    fake_bin(tmp_path, journal=text)
    run = cli("why", "tiny")
    assert "Server log: journalctl -u ollama" in run.stdout, run
    assert "unloaded: stopped by POST /api/generate from 127.0.0.5" in run.stdout


def test_journal_without_permission_and_docker_failures_are_said(cli: Cli, tmp_path: Path) -> None:
    fake_bin(
        tmp_path,
        journal="Hint: You are currently not seeing messages from other users and the system.\n",
        journal_exit=0,
    )
    run = cli("why", "tiny")
    assert "journalctl -u ollama: no permission" in run.stdout, run
    assert "no such file" in run.stdout  # ~/.ollama/logs/server.log
    run = cli("why", "tiny", "--docker", "ollama")
    assert "docker logs ollama: the Docker daemon is not running" in run.stdout, run


def test_docker_logs(cli: Cli, tmp_path: Path) -> None:
    docker = fake_bin(tmp_path) / "docker"
    log = write(tmp_path, L.wrap(L.pin_reset(True), "docker-t"), "docker.txt")
    docker.write_text(f'#!/bin/sh\ncat "{log}"\n', encoding="utf-8")
    run = cli("why", "tiny", "--docker", "ollama")
    assert "Server log: docker logs ollama" in run.stdout, run
    assert "the pin was reset to 5m by POST /api/generate from 127.0.0.2" in run.stdout


def test_a_remote_server_is_not_searched(cli: Cli) -> None:
    run = cli("why", "tiny", "--host", "http://gpu-box.example:11434")
    assert "not local" in run.stdout, run


def test_a_missing_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    run = cli("why", "tiny", "--server-log", str(tmp_path / "nope.log"))
    assert run.exit_code == 2
    assert "cannot read the server log" in run.stderr


def test_reading_the_end_of_a_big_file_keeps_true_line_numbers(tmp_path: Path) -> None:
    lines = [f"filler line {i} " + "x" * 50 for i in range(5000)] + L.expiry(True)
    path = write(tmp_path, lines)
    src = logsource.from_file(path, max_bytes=20_000)
    blocks = list(src.blocks)
    assert src.partial
    first_text, first_no, _ = blocks[0]
    whole = path.read_text(encoding="utf-8").splitlines()
    assert whole[first_no - 1] == first_text.decode().splitlines()[0]
    assert sum(len(t) for t, _, _ in blocks) <= 20_000
    from ollama_resident.logtimeline import read_timeline

    tl = read_timeline(blocks)
    (unload,) = [f for f in tl.facts if f.kind == "unloaded"]
    assert whole[unload.line_no - 1].endswith(L.expiry(True)[unload.line_no - 5001])


# -- watch follows the log ------------------------------------------------------------------


def test_watch_follows_the_server_log_and_names_cause_and_client(
    make_ollama: Callable[..., FakeOllama], tmp_path: Path
) -> None:
    from test_cli_watch import WatchProcess

    log = tmp_path / "server.log"
    server = make_ollama(max_loaded=1, log_path=str(log), log_debug=True)
    w = WatchProcess("--server-log", str(log), "--settle", "1")
    try:
        w.wait_for(lambda e: e["event"] == "recording_started")
        with httpx.Client(base_url=server.url) as c:
            c.post("/api/generate", json={"model": "tiny", "prompt": "", "keep_alive": "10m"})
            w.event("tiny:latest", "loaded")
            # another client's request evicts it (max_loaded 1)
            c.post(
                "/api/generate",
                json={"model": "tiny2", "prompt": "", "keep_alive": "10m"},
                headers={"X-Forwarded-For": "192.0.2.77"},
            )
        gone = w.event("tiny:latest", "unloaded")
        assert gone["reason"] == "evicted"
        assert gone["detail"]["confidence"] == "certain"
        assert gone["detail"]["server_log"]["cause"] == "evicted"
        assert gone["detail"]["by_client"] == "192.0.2.77"
        assert gone["detail"]["by_models"] == ["tiny2:latest"]
    finally:
        w.close()


def test_watch_server_log_needs_one_host(cli: Cli, tmp_path: Path) -> None:
    run = cli("watch", "--jsonl", "--server-log", "-", "--host", "a:1", "--host", "b:2")
    assert run.exit_code == 2 and "one server's log" in run.stderr
    run = cli("watch", "--jsonl", "--server-log", str(tmp_path / "missing.log"))
    assert run.exit_code == 2 and "cannot follow" in run.stderr


def test_info_log_points_at_requests_that_look_like_a_stop(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, L.stop(False))
    run = cli("why", "sha256-" + L.BLOBS["tiny"][:12], "--server-log", str(path))
    assert "After its last load, 1 request answered in under 10 ms" in run.stdout, run
    assert "POST /api/generate from 127.0.0.5" in run.stdout
    # the load's own request (296 ms) is not one of them; nor is anything at DEBUG
    debug = cli("why", "tiny", "--server-log", str(write(tmp_path, L.stop(True), "d.log")))
    assert "After its last load" not in debug.stdout


def test_on_a_terminal_the_story_wraps_with_hanging_indents() -> None:
    from datetime import timedelta

    from ollama_resident import logstory, why
    from ollama_resident.logtimeline import read_timeline

    tl = read_timeline(lines=L.reload(False))
    now = L.START + timedelta(minutes=5)
    story = logstory.tell(
        "sha256-be0b6e56fd42",
        why.build_story("sha256-be0b6e56fd42", [], now=now),
        tl,
        matches=lambda f: f.digest == L.BLOBS["tiny-4k"],
        log=logstory.LogInfo("file", "server.log"),
        now=now,
    )
    wide = logstory.render(story)
    narrow = logstory.render(story, width=80)
    assert max(len(line) for line in wide.splitlines()) > 80
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert " ".join(narrow.split()) == " ".join(wide.split())  # same words
    continued = [line for line in narrow.splitlines() if line.startswith(" " * 12)]
    assert continued  # items continue under their text, not under the clock


def test_since_is_a_duration_with_its_own_wording(cli: Callable[..., Run]) -> None:
    """The trial's case: `why --since 5x` spoke of a keep-alive and of "0 to unload"."""
    run = cli("why", "--since", "5x", "--no-server-log")
    assert run.exit_code == 2, run
    assert 'error: --since: invalid duration "5x": unknown unit "x"' in run.stderr
    assert "keep-alive" not in run.stderr and "unload" not in run.stderr
    assert "hint: e.g. --since 30m or 2h" in run.stderr


def test_info_log_of_another_server_is_said_so(
    make_ollama: Callable[..., FakeOllama], cli: Cli, tmp_path: Path
) -> None:
    server = make_ollama()  # it answers, and has none of the log's blobs
    path = write(tmp_path, L.expiry(False))
    run = cli("why", "tiny", "--server-log", str(path))
    assert f"the server at {server.url} does not have blob sha256-" in run.stdout, run
    assert "this log is probably from another server" in run.stdout
    assert "did not answer" not in run.stdout
    # The server gone: then it did not answer.
    server.stop()
    run = cli("why", "tiny", "--server-log", str(path))
    assert "the server did not answer to map blobs to names" in run.stdout, run


def test_why_of_a_name_never_seen_says_so_with_close_matches(
    cli: Callable[..., Run], ollama: FakeOllama
) -> None:
    """The trial's case: `why nosuchmodel` said nothing about the name itself."""
    assert cli("pin", "tiny2").exit_code == 0  # journaled: tiny2:latest is known
    run = cli("why", "tyni2", "--no-server-log")
    assert run.exit_code == 0, run
    assert '"tyni2" is not in the journal; did you mean "tiny2:latest"?' in run.stderr
    other = cli("why", "nosuchmodel", "--no-server-log")
    assert '"nosuchmodel" is not in the journal' in other.stderr
    assert "did you mean" not in other.stderr


def test_a_namespaced_model_is_named_from_a_debug_log_as_ollama_writes_it(
    make_ollama: Callable[..., FakeOllama], cli: Cli, tmp_path: Path
) -> None:
    # Ollama writes registry.ollama.ai/myns/coder:7b (library/ only for un-namespaced names).
    log = tmp_path / "debug.log"
    server = make_ollama(log_path=str(log), log_debug=True)
    server.preload("myns/coder:7b", "5m")
    server.preload("tiny", "5m")
    text = log.read_text()
    assert "runner.name=registry.ollama.ai/myns/coder:7b" in text
    assert "runner.name=registry.ollama.ai/library/tiny:latest" in text
    server.stop()  # the log alone names it: no server to ask
    run = cli("why", "--server-log", str(log), "--since", "1h")
    assert "myns/coder:7b" in run.stdout, run
    assert "library/myns" not in run.stdout and "registry.ollama.ai" not in run.stdout
