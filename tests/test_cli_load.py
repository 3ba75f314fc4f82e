"""`preload`, `pin` and `unload` against the fake server (issue #3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from conftest import Run, closed_port, generate_in_background, reaped, wait_busy, wait_until
from fakeollama import FakeOllama


def _posts(server: FakeOllama, path: str) -> list[dict]:
    return [r.json for r in server.requests_to(path, "POST")]


def _ps(server: FakeOllama) -> dict[str, dict]:
    return {m["name"]: m for m in httpx.get(f"{server.url}/api/ps").json()["models"]}


def _years_ahead(expires_at: str) -> int:
    return int(expires_at[:4]) - time.gmtime().tm_year


# -- pin ----------------------------------------------------------------------------------------


def test_pin_loads_and_pins_forever(ollama: FakeOllama, cli: Callable[..., Run]):
    run = cli("pin", "tiny", "--json")
    assert run.exit_code == 0, run
    [result] = json.loads(run.stdout)
    assert result["status"] == "loaded" and result["ok"] is True
    assert result["pinned"] is True and result["keep_alive"] == "forever"
    assert result["load_seconds"] >= 0.04  # measured by the tool around the load request
    assert result["context_length"] == 512 and result["processor"] == "100% CPU"
    [body] = _posts(ollama, "/api/generate")
    assert body["keep_alive"] == -1  # the number: Ollama rejects the string "-1"
    assert body["prompt"] == "" and "options" not in body
    assert _years_ahead(_ps(ollama)["tiny:latest"]["expires_at"]) > 250


def test_pin_again_sends_no_load_request(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", -1)
    ollama.clear_requests()
    run = cli("pin", "tiny")
    assert run.exit_code == 0
    assert "already loaded (forever)" in run.stderr
    assert [(r.method, r.path) for r in ollama.requests] == [("GET", "/api/ps")]


def test_pin_for_a_window(ollama: FakeOllama, cli: Callable[..., Run]):
    run = cli("pin", "tiny", "--for", "90m", "--json")
    [result] = json.loads(run.stdout)
    assert result["pinned"] is False and result["keep_alive"] == "1h30m"
    assert _posts(ollama, "/api/generate")[0]["keep_alive"] == "1h30m0s"


def test_pin_replaces_a_client_reset(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", -1)
    # Another client sends its own keep_alive: the pin is silently gone.
    httpx.post(f"{ollama.url}/api/generate", json={"model": "tiny", "keep_alive": "5m"})
    run = cli("pin", "tiny", "--json")
    [result] = json.loads(run.stdout)
    assert result["status"] == "updated" and result["pinned"] is True
    assert result["previous"].endswith("left")
    assert ollama.load_history == ["tiny:latest"]  # re-pinned without a reload


def test_invalid_duration_is_usage_error_and_sends_nothing(
    ollama: FakeOllama, cli: Callable[..., Run]
):
    for bad in ("1d", "5 m", "", "0"):
        run = cli("pin", "tiny", "--for", bad)
        assert run.exit_code == 2, run
        assert "--for" in run.stderr
    assert ollama.requests == []


def test_pin_without_models_is_usage_error(ollama: FakeOllama, cli: Callable[..., Run]):
    run = cli("pin")
    assert run.exit_code == 2
    assert "name at least one model" in run.stderr
    assert ollama.requests == []


# -- no silent reloads ------------------------------------------------------------------------


def test_pin_keeps_a_smaller_requested_context_without_reload(
    ollama: FakeOllama, cli: Callable[..., Run]
):
    ollama.preload("tiny", "5m", num_ctx=256)
    run = cli("pin", "tiny", "--json")
    [result] = json.loads(run.stdout)
    assert result["status"] == "updated" and result["reloaded"] is False
    assert result["num_ctx_sent"] == 256
    assert _posts(ollama, "/api/generate")[-1]["options"] == {"num_ctx": 256}
    assert ollama.load_history == ["tiny:latest"]
    assert _ps(ollama)["tiny:latest"]["context_length"] == 256
    assert result["pinned"] is True


def test_pin_sends_no_context_when_loaded_at_training_context(
    ollama: FakeOllama, cli: Callable[..., Run]
):
    ollama.preload("tiny", "5m")  # default 4096, shown capped to 512
    run = cli("pin", "tiny", "--json")
    [result] = json.loads(run.stdout)
    assert result["num_ctx_sent"] is None and result["reloaded"] is False
    assert "options" not in _posts(ollama, "/api/generate")[-1]
    assert ollama.load_history == ["tiny:latest"]
    assert result["pinned"] is True


def test_explicit_num_ctx_is_a_reported_reload(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", -1)
    run = cli("pin", "tiny", "--num-ctx", "256", "--json")
    [result] = json.loads(run.stdout)
    assert result["status"] == "reloaded" and result["reloaded"] is True
    assert "as asked with num_ctx" in result["reload_reason"]
    assert result["context_length"] == 256 and result["pinned"] is True
    assert ollama.load_history == ["tiny:latest", "tiny:latest"]


def test_num_ctx_equal_to_loaded_context_does_not_reload(
    ollama: FakeOllama, cli: Callable[..., Run]
):
    ollama.preload("tiny", -1)  # shown as 512
    ollama.clear_requests()
    run = cli("pin", "tiny", "--num-ctx", "512", "--json")
    [result] = json.loads(run.stdout)
    assert result["status"] == "unchanged"
    assert _posts(ollama, "/api/generate") == []


def test_unexpected_reload_is_detected_and_reported(
    make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run]
):
    server = make_ollama()
    # Loaded by a client that asked for exactly the training context: /api/ps cannot tell
    # this from the default, so a pin without num_ctx makes Ollama reload it.
    server.preload("tiny", "5m", num_ctx=512)
    server.hold_loads()
    runs: list[Run] = []
    pin = threading.Thread(target=lambda: runs.append(cli("pin", "tiny", "--json")))
    pin.start()
    wait_until(lambda: server.loading() == ["tiny:latest"], timeout=60, what="the reload")
    _last_a_loads_time(server)
    server.release_loads()
    pin.join(120)
    [run] = runs
    [result] = json.loads(run.stdout)
    assert result["reloaded"] is True and result["status"] == "reloaded"
    assert "a load's time" in result["reload_reason"]
    assert server.load_history == ["tiny:latest", "tiny:latest"]
    human = cli("pin", "tiny2")
    assert human.exit_code == 0


def _last_a_loads_time(server: FakeOllama) -> None:
    """Keep a held load going until it has lasted far longer than a round trip to the server
    on this machine, however busy: the only sign of a reload ``pin`` gets is its duration."""
    started = time.monotonic()
    slowest = 0.0
    with httpx.Client(base_url=server.url, timeout=60) as client:
        while time.monotonic() - started < max(1.0, 50 * slowest):
            sent = time.monotonic()
            client.get("/api/version").raise_for_status()
            slowest = max(slowest, time.monotonic() - sent)


# -- preload ----------------------------------------------------------------------------------


def test_preload_new_model_gets_server_default(ollama: FakeOllama, cli: Callable[..., Run]):
    run = cli("preload", "tiny", "--json")
    [result] = json.loads(run.stdout)
    assert result["status"] == "loaded" and result["keep_alive"] == "5m"
    assert "server's default" in result["note"]
    assert "keep_alive" not in _posts(ollama, "/api/generate")[0]


def test_preload_loaded_model_keeps_its_pin(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", -1)
    ollama.clear_requests()
    run = cli("preload", "tiny")
    assert run.exit_code == 0
    assert "already loaded (forever)" in run.stderr
    assert _posts(ollama, "/api/generate") == []
    assert _years_ahead(_ps(ollama)["tiny:latest"]["expires_at"]) > 250


def test_preload_with_window_reports_previous_state(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", -1)
    run = cli("preload", "tiny", "--keep-alive", "10m")
    assert run.exit_code == 0
    assert "tiny:latest updated" in run.stderr and "keep-alive 10m" in run.stderr
    assert "(was forever)" in run.stderr


def test_embedding_model_preloads_via_embed_and_unloads(
    ollama: FakeOllama, cli: Callable[..., Run]
):
    run = cli("preload", "tiny-embed", "--keep-alive", "30m", "--json")
    [result] = json.loads(run.stdout)
    assert result["status"] == "loaded", result
    assert _posts(ollama, "/api/generate") == []
    [embed] = _posts(ollama, "/api/embed")
    assert embed["keep_alive"] == "30m0s" and embed["input"] == []
    run = cli("unload", "tiny-embed", "--json")
    [gone] = json.loads(run.stdout)
    assert gone["status"] == "unloaded"
    assert _ps(ollama) == {}


def test_preload_reports_eviction(make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run]):
    server = make_ollama(max_loaded=2)
    server.preload("tiny", "5m")
    server.preload("tiny2", -1)
    run = cli("preload", "tiny3", "--keep-alive", "10m", "--json")
    [result] = json.loads(run.stdout)
    assert result["evicted"] == ["tiny:latest"]
    human = cli("preload", "tiny", "--keep-alive", "1m")
    assert "loading tiny:latest evicted tiny3:latest" in human.stderr


def test_partial_offload_warns(make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run]):
    make_ollama(gpu_memory=4_000_000_000)
    run = cli("preload", "qwen2.5:14b")
    assert run.exit_code == 0
    assert "did not fit in GPU memory" in run.stderr and "% runs on the CPU" in run.stderr


def test_missing_model_is_a_usage_error_with_pull_hint(ollama: FakeOllama, cli: Callable[..., Run]):
    """A name that matches nothing installed: exit 2, nothing sent (#11.7)."""
    run = cli("pin", "doesnotexist", "tiny")
    assert run.exit_code == 2
    assert 'error: model "doesnotexist" matches no model installed or loaded' in run.stderr
    assert "ollama pull doesnotexist" in run.stderr
    assert "tiny:latest" not in _ps(ollama)


def test_load_failure_carries_ollama_message(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.fail_load("tiny2", "llama runner process has terminated: out of memory")
    run = cli("preload", "tiny2", "tiny", "--json")
    assert run.exit_code == 1
    results = {r["model"]: r for r in json.loads(run.stdout)}
    assert results["tiny2"]["error"] == "llama runner process has terminated: out of memory"
    assert results["tiny"]["ok"] is True


def test_names_as_users_type_them(ollama: FakeOllama, cli: Callable[..., Run]):
    assert cli("pin", "registry.ollama.ai/library/tiny:latest").exit_code == 0
    ollama.clear_requests()
    run = cli("pin", "tiny", "TINY:latest", "myns/coder:7b", "--json")
    statuses = [r["status"] for r in json.loads(run.stdout)]
    assert statuses == ["unchanged", "unchanged", "loaded"]
    assert "myns/coder:7b" in _ps(ollama)


def test_quiet_prints_nothing_on_success(ollama: FakeOllama, cli: Callable[..., Run]):
    run = cli("pin", "tiny", "tiny2", "--quiet")
    assert run.exit_code == 0 and run.stdout == "" and run.stderr == ""


def test_many_models_summary(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", -1)
    run = cli("pin", "tiny", "tiny2", "tiny-embed")
    assert run.exit_code == 0
    assert run.stderr.splitlines()[-1] == "3 models: 2 loaded, 1 unchanged"


# -- --wait -------------------------------------------------------------------------------------


def test_wait_on_dead_server_exits_3_after_the_wait(cli: Callable[..., Run]):
    # That it keeps trying during the wait: test_server_that_comes_up_during_wait_is_used.
    run = cli("pin", "tiny", "--wait", "1")
    assert run.exit_code == 3
    assert "no answer within --wait 1s" in run.stderr


def test_server_that_comes_up_during_wait_is_used(cli: Callable[..., Run], monkeypatch):
    port = closed_port()
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    server = FakeOllama(port=port)
    timer = threading.Timer(0.6, server.start)
    timer.start()
    try:
        run = cli("pin", "tiny", "--wait", "300", "--json")  # ends when the server is up
        assert run.exit_code == 0, run
        assert json.loads(run.stdout)[0]["pinned"] is True
        assert "waiting up to" not in run.stderr  # --json implies no chatter
    finally:
        timer.join()
        server.stop()


# -- unload -------------------------------------------------------------------------------------


def test_unload_confirms_gone(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", -1)
    run = cli("unload", "tiny")
    assert run.exit_code == 0
    assert run.stderr.startswith("tiny:latest unloaded in ")
    assert _ps(ollama) == {}
    assert _posts(ollama, "/api/generate") == [
        {"model": "tiny:latest", "prompt": "", "keep_alive": 0, "stream": False}
    ]


def test_unload_not_loaded_is_success_with_note(ollama: FakeOllama, cli: Callable[..., Run]):
    run = cli("unload", "tiny", "--json")
    assert run.exit_code == 0
    [result] = json.loads(run.stdout)
    assert result["status"] == "not-loaded" and result["ok"] is True
    assert _posts(ollama, "/api/generate") == []


def test_unload_all_except(ollama: FakeOllama, cli: Callable[..., Run]):
    for model in ("tiny", "tiny2", "tiny-embed"):
        ollama.preload(model, -1)
    run = cli("unload", "--all", "--except", "tiny2", "--json")
    assert run.exit_code == 0
    assert sorted(r["name"] for r in json.loads(run.stdout)) == ["tiny-embed:latest", "tiny:latest"]
    assert list(_ps(ollama)) == ["tiny2:latest"]


def test_unload_usage_errors(ollama: FakeOllama, cli: Callable[..., Run]):
    assert cli("unload").exit_code == 2
    assert cli("unload", "tiny", "--all").exit_code == 2
    assert cli("unload", "tiny", "--except", "x").exit_code == 2
    assert ollama.requests == []


def test_unload_busy_model_is_pending_not_failed(
    make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run]
):
    server = make_ollama()
    server.preload("tiny", -1)

    server.hold_requests("tiny")  # the generation runs until released
    worker = generate_in_background(server, "tiny", tokens=150)
    wait_busy(server, "tiny:latest")
    run = cli("unload", "tiny", "--timeout", "0.3", "--json")
    assert run.exit_code == 0
    [result] = json.loads(run.stdout)
    assert result["status"] == "pending" and result["ok"] is True
    assert "request is still running" in result["note"]
    assert "tiny:latest" in _ps(server)
    server.release_requests()
    worker.join(120)
    server.wait_idle()
    assert _ps(server) == {}  # it went once the generation ended


# -- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_cancels_load_and_exits_130(make_ollama: Callable[..., FakeOllama]):
    server = make_ollama()
    server.hold_loads("tiny2")  # never completes: only the client going away ends it
    env = {**os.environ, "OLLAMA_HOST": server.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "pin", "tiny", "tiny2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with reaped(proc):
        wait_until(lambda: "tiny2:latest" in server.loading(), timeout=120, what="tiny2's load")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "tiny:latest loaded" in err
    assert "cancelled while loading tiny2" in err
    wait_until(lambda: not server.loading(), timeout=120, what="the load aborted")
    assert list(_ps(server)) == ["tiny:latest"]


# -- profiles and the journal -------------------------------------------------------------------


def _profile_file(tmp_path, host: str | None = None):
    path = tmp_path / "profiles.toml"
    host_line = f'host = "{host}"\n' if host else ""
    path.write_text(
        f'[profiles.work]\nkeep_alive = "forever"\n{host_line}'
        'models = ["tiny", { name = "tiny-embed", keep_alive = "30m" }, '
        '{ name = "tiny2", num_ctx = 256 }]\n'
    )
    return path


def test_pin_and_preload_take_a_profile(ollama: FakeOllama, cli: Callable[..., Run], tmp_path):
    path = _profile_file(tmp_path)
    run = cli("--profiles", str(path), "preload", "--profile", "work", "--json")
    assert run.exit_code == 0, run
    results = {r["name"]: r for r in json.loads(run.stdout)}
    assert results["tiny:latest"]["pinned"] is True
    assert results["tiny-embed:latest"]["keep_alive"] == "30m"
    assert results["tiny2:latest"]["context_length"] == 256
    unload = cli("--profiles", str(path), "unload", "--profile", "work", "--json")
    assert {r["status"] for r in json.loads(unload.stdout)} == {"unloaded"}
    assert _ps(ollama) == {}
    pinned = cli("--profiles", str(path), "pin", "--profile", "work", "--json")
    assert all(r["pinned"] for r in json.loads(pinned.stdout))


def test_profile_host_is_used_and_host_option_wins(
    make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run], tmp_path, monkeypatch
):
    remote = make_ollama()
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")  # the default is dead
    path = _profile_file(tmp_path, host=remote.url)
    run = cli("--profiles", str(path), "pin", "--profile", "work", "--quiet")
    assert run.exit_code == 0, run
    assert set(_ps(remote)) == {"tiny:latest", "tiny-embed:latest", "tiny2:latest"}
    dead = cli("--profiles", str(path), "pin", "--profile", "work", "--host", "127.0.0.1:1")
    assert dead.exit_code == 3


def test_unknown_profile_is_exit_2_and_sends_nothing(
    ollama: FakeOllama, cli: Callable[..., Run], tmp_path
):
    path = _profile_file(tmp_path)
    run = cli("--profiles", str(path), "pin", "--profile", "nope")
    assert run.exit_code == 2
    assert "work" in run.stderr  # names the profiles that exist
    assert cli("--profiles", str(path), "pin", "tiny", "--profile", "work").exit_code == 2
    assert ollama.requests == []


def test_own_actions_are_journaled(ollama: FakeOllama, cli: Callable[..., Run], tmp_path):
    from ollama_resident import journal

    cli("pin", "tiny")
    cli("pin", "tiny")  # unchanged: nothing to journal
    cli("unload", "tiny")
    cli("pin", "tiny2", "--for", "1h")  # journaled as the pin it was, with its window
    cli("preload", "tiny3")
    events = [(e.model, e.event, e.reason, e.detail.get("action")) for e in journal.read()]
    assert events == [
        ("tiny:latest", "loaded", None, "pin"),
        ("tiny:latest", "unloaded", "stopped", "unload"),
        ("tiny2:latest", "loaded", None, "pin"),
        ("tiny3:latest", "loaded", None, "preload"),
    ]
    windowed = journal.read()[2]
    assert windowed.detail["keep_alive"] == "1h"


@pytest.mark.parametrize(
    "args",
    [
        ("unload", "tiny", "--all"),
        ("unload", "tiny", "--except", "tiny2"),
        ("unload", "--all", "--profile", "p"),
        ("pin", "tiny", "--profile", "p"),
        ("guard", "--once", "tiny", "--profile", "p"),
        ("guard", "--once", "tiny", "--for", "0"),
        ("guard", "--once", "tiny", "--for", "5x"),
        ("service", "install", "--systemd", "--compose", "--profile", "p"),
        ("profile", "add", "-bad", "tiny"),
        ("profile", "add", "p", "tiny", "tiny"),
    ],
)
def test_every_usage_error_has_a_hint(
    ollama: FakeOllama, cli: Callable[..., Run], args: tuple[str, ...]
) -> None:
    """The trial's case: `unload tiny --all` had an error line and no hint."""
    run = cli(*args)
    assert run.exit_code == 2, run
    lines = run.stderr.splitlines()
    assert lines[0].startswith("error: "), run
    assert any(ln.startswith("  hint: ") for ln in lines[1:]), run
    assert not ollama.requests_to("/api/generate")


def test_unload_names_and_all_hint_says_both_ways(
    ollama: FakeOllama, cli: Callable[..., Run]
) -> None:
    run = cli("unload", "tiny", "--all")
    assert "error: give model names or --all, not both" in run.stderr
    assert (
        "hint: `ollama-resident unload tiny` unloads just it; "
        "`unload --all --except tiny` unloads all the others" in run.stderr
    )


def test_preload_keep_alive_hint_does_not_offer_what_it_refuses(
    ollama: FakeOllama, cli: Callable[..., Run]
) -> None:
    run = cli("preload", "tiny", "--keep-alive", "5x")
    assert run.exit_code == 2, run
    assert 'invalid keep-alive "5x"' in run.stderr
    assert "0 to unload" not in run.stderr
    assert cli("preload", "tiny", "--keep-alive", "0").exit_code == 2


@pytest.mark.parametrize("command", ["pin", "preload", "unload"])
def test_one_close_match_rule_catches_swapped_letters(
    ollama: FakeOllama, cli: Callable[..., Run], command: str
) -> None:
    """The trial's case: `pin tinyx` got suggestions, `preload tyni2` none."""
    ollama.preload("tiny2")
    run = cli(command, "tyni2")
    assert run.exit_code == 2, run
    assert 'hint: did you mean "tiny2:latest"' in run.stderr
    assert cli(command, "tinyx").exit_code == 2
    assert 'did you mean "tiny:latest"' in cli(command, "tinyx").stderr


def test_a_dry_run_without_a_profile_says_as_asked(
    ollama: FakeOllama, cli: Callable[..., Run]
) -> None:
    ollama.preload("tiny3", -1)
    run = cli("pin", "tiny3", "--dry-run")
    assert run.exit_code == 0, run
    assert "nothing to do: 1 model as asked" in run.stderr
    assert "profile" not in run.stderr


def test_a_dry_run_plans_reasons_in_the_commands_words(
    ollama: FakeOllama, cli: Callable[..., Run]
) -> None:
    # The trial: `pin ... --dry-run` gave "the profile wants it pinned", with no profile.
    ollama.preload("tiny", "5m")
    ollama.preload("tiny2", "5m")
    run = cli("pin", "tiny", "tiny2", "tiny3", "--dry-run", "--max-loaded", "2", "--json")
    assert run.exit_code == 1, run  # they cannot all stay loaded
    reasons = {s["model"]: s["reason"] for s in json.loads(run.stdout)["plan"]["steps"]}
    assert reasons["tiny:latest"].startswith("asked to pin it; it has "), reasons
    assert reasons["tiny3:latest"] == "not loaded"
    run = cli("preload", "tiny", "tiny2", "--keep-alive", "1m", "--dry-run", "--json")
    reasons = {s["model"]: s["reason"] for s in json.loads(run.stdout)["plan"]["steps"]}
    assert reasons["tiny2:latest"].endswith(" left, longer than the 1m asked"), reasons
    plan = json.loads(run.stdout)["plan"]
    assert "profile" not in " ".join(s["reason"] for s in plan["steps"]) + run.stderr


def test_unload_all_except_says_what_stayed(ollama: FakeOllama, cli: Callable[..., Run]):
    """The trial's case: only the unloaded model was named, not the kept one."""
    ollama.preload("tiny", -1)
    ollama.preload("tiny-embed", -1)
    run = cli("unload", "--all", "--except", "tiny")
    assert run.exit_code == 0, run
    assert "tiny-embed:latest unloaded" in run.stderr
    assert "kept: tiny:latest" in run.stderr
    assert list(_ps(ollama)) == ["tiny:latest"]


def test_unload_except_a_model_not_loaded_says_so(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", -1)
    run = cli("unload", "--all", "--except", "tiny3")
    assert run.exit_code == 0, run
    assert "tiny:latest unloaded" in run.stderr
    assert "--except tiny3: not loaded, so nothing to keep" in run.stderr
    assert "kept:" not in run.stderr


def test_nothing_to_unload_names_what_was_kept(ollama: FakeOllama, cli: Callable[..., Run]):
    ollama.preload("tiny", -1)
    ollama.preload("tiny2", -1)
    run = cli("unload", "--all", "--except", "tiny2", "--except", "tiny")
    assert run.exit_code == 0, run
    assert "Nothing to unload; kept: tiny2:latest, tiny:latest." in run.stderr
    assert sorted(_ps(ollama)) == ["tiny2:latest", "tiny:latest"]
