"""``doctor`` and plans from the server's real limits, against the fake Ollama and its log."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from fakeollama import FakeOllama
from ollamalog import start_block, write_log

Cli = Callable[..., Run]

THREE = '[profiles.three]\nkeep_alive = "forever"\nmodels = ["tiny", "tiny2", "tiny3"]\n'


@pytest.fixture
def profiles(isolated_env: Path) -> Path:
    path = isolated_env / "profiles.toml"
    path.write_text(THREE)
    return path


def server_log(tmp_path: Path, server: FakeOllama, **env: str) -> str:
    """The fake's start block as a real server writes it, with these settings."""
    return str(write_log(tmp_path / "server.log", start_block(server.port, env=env)))


def loaded(server: FakeOllama) -> set[str]:
    server.wait_idle()
    return {m["name"] for m in server.loaded()}


# -- doctor ------------------------------------------------------------------------------------


def test_cap_and_keep_alive_mismatch_fail_with_sources_and_fixes(
    cli: Cli,
    profiles: Path,
    make_ollama: Callable[..., FakeOllama],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_ollama(max_loaded=2, default_keep_alive=-1)
    log = server_log(
        tmp_path,
        server,
        OLLAMA_MAX_LOADED_MODELS="2",
        OLLAMA_KEEP_ALIVE="2562047h47m16.854775807s",
    )
    monkeypatch.setenv("OLLAMA_KEEP_ALIVE", "24h")
    monkeypatch.setenv("COLUMNS", "250")  # one check, one line: no wrapping to match across
    run = cli("doctor", "--profile", "three", "--server-log", log)
    assert run.exit_code == 1, run
    out = run.stdout
    assert (
        "FAIL  shell:OLLAMA_KEEP_ALIVE: OLLAMA_KEEP_ALIVE is 24h in this shell but forever "
        "(2562047h47m16.854775807s) on the server" in out
    )
    assert "this shell: OLLAMA_KEEP_ALIVE=24h" in out
    assert f"from the server log ({log} line 1, server config)" in out
    assert 'FAIL  max-loaded: profile "three" has 3 models but the server keeps at most 2' in out
    assert "from: OLLAMA_MAX_LOADED_MODELS=2, from the server log" in out
    assert "make Ollama evict" in out
    # What runs the fake is unknown here: each fix points at one block with every form.
    assert "set OLLAMA_KEEP_ALIVE=24h where the server is started" in out
    assert 'Environment="OLLAMA_KEEP_ALIVE=24h"' in out
    assert "sudo systemctl daemon-reload" in out
    assert "launchctl setenv OLLAMA_MAX_LOADED_MODELS 3" in out
    assert "doctor: 2 failed" in run.stderr
    # Nothing was changed: no load, no unload.
    assert not server.requests_to("/api/generate") and not server.requests_to("/api/embed")


def test_the_fakes_own_log_drives_doctor_and_the_plan(
    cli: Cli,
    profiles: Path,
    make_ollama: Callable[..., FakeOllama],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's case: a server started with OLLAMA_MAX_LOADED_MODELS=2 OLLAMA_KEEP_ALIVE=-1
    and its log in a file, a shell with OLLAMA_KEEP_ALIVE=24h, a profile of three models."""
    log = tmp_path / "ollama.log"
    server = make_ollama(max_loaded=2, default_keep_alive=-1, log_path=str(log))
    server.preload("tiny")  # a load: the log gets its `system memory` line too
    monkeypatch.setenv("OLLAMA_KEEP_ALIVE", "24h")
    run = cli("doctor", "--profile", "three", "--server-log", str(log), "--json")
    assert run.exit_code == 1, run
    failed = {c["id"]: c for c in json.loads(run.stdout)["checks"] if c["status"] == "fail"}
    assert set(failed) == {"shell:OLLAMA_KEEP_ALIVE", "max-loaded"}
    shell = failed["shell:OLLAMA_KEEP_ALIVE"]
    assert (
        "24h in this shell but forever (2562047h47m16.854775807s) on the server"
        in (shell["summary"])
    )
    assert shell["server_settings"] == {"OLLAMA_KEEP_ALIVE": "24h"}
    assert "keeps at most 2 loaded" in failed["max-loaded"]["summary"]
    # apply --dry-run, without --max-loaded, predicts the eviction from the cap of 2.
    plan = cli("apply", "three", "--dry-run", "--server-log", str(log))
    assert plan.exit_code == 1, plan  # as the real apply would: refused
    assert 'apply would refuse profile "three"' in plan.stderr
    assert "limits: at most 2 models loaded (OLLAMA_MAX_LOADED_MODELS=2, from" in plan.stderr
    assert "make Ollama evict" in plan.stderr
    # A server with neither problem: doctor exits 0.
    server.stop()
    healthy_log = tmp_path / "healthy.log"
    make_ollama(default_keep_alive="24h", log_path=str(healthy_log), log_debug=True)
    healthy = cli("doctor", "--profile", "three", "--server-log", str(healthy_log))
    assert healthy.exit_code == 0, healthy


def test_a_server_without_problems_exits_0(
    cli: Cli, profiles: Path, ollama: FakeOllama, tmp_path: Path
) -> None:
    log = server_log(
        tmp_path, ollama, OLLAMA_DEBUG="DEBUG", OLLAMA_KEEP_ALIVE="2562047h47m16.854775807s"
    )
    run = cli("doctor", "--profile", "three", "--server-log", log)
    assert run.exit_code == 0, run
    assert "FAIL" not in run.stdout
    assert 'ok    max-loaded: profile "three" has 3 models; the server keeps up to 3' in run.stdout


def test_json_document(cli: Cli, ollama: FakeOllama, tmp_path: Path) -> None:
    log = server_log(tmp_path, ollama, OLLAMA_MAX_LOADED_MODELS="4")
    run = cli("doctor", "--json", "--server-log", log)
    assert run.exit_code == 0, run
    doc = json.loads(run.stdout)
    assert doc["ok"] is True and doc["host"] == ollama.url
    assert doc["facts"]["version"] == "0.24.0"
    assert doc["facts"]["max_loaded"] == {
        "value": 4,
        "source": f"OLLAMA_MAX_LOADED_MODELS=4, from the server log ({log} line 1, server config)",
        "known": True,
    }
    ids = [c["id"] for c in doc["checks"]]
    assert ids[:3] == ["server", "features", "config"]
    assert {c["status"] for c in doc["checks"]} <= {"ok", "warn", "fail"}


def test_a_log_of_another_server_is_not_used(cli: Cli, ollama: FakeOllama, tmp_path: Path) -> None:
    other = write_log(tmp_path / "other.log", start_block(ollama.port + 1))
    run = cli("doctor", "--json", "--server-log", str(other))
    doc = json.loads(run.stdout)
    config = next(c for c in doc["checks"] if c["id"] == "config")
    assert config["status"] == "warn"
    assert f"not port {ollama.port}" in config["evidence"][0]


def test_log_from_stdin(cli: Cli, ollama: FakeOllama) -> None:
    text = "\n".join(start_block(ollama.port, env={"OLLAMA_MAX_LOADED_MODELS": "5"}))
    run = cli("doctor", "--json", "--server-log", "-", input=text)
    assert json.loads(run.stdout)["facts"]["max_loaded"]["value"] == 5


def test_old_server_lacks_features(
    cli: Cli, make_ollama: Callable[..., FakeOllama], tmp_path: Path
) -> None:
    server = make_ollama(version="0.5.7")
    run = cli("doctor", "--server-log", server_log(tmp_path, server))
    assert run.exit_code == 0, run  # warnings only
    assert "warn  features: Ollama 0.5.7 lacks 2 features" in run.stdout


def test_clock_offset_from_the_date_header(
    cli: Cli, make_ollama: Callable[..., FakeOllama], tmp_path: Path
) -> None:
    server = make_ollama(clock_offset_s=-90)
    run = cli("doctor", "--server-log", server_log(tmp_path, server))
    assert "warn  clock: the server's clock is 90 s behind this machine's" in run.stdout


def test_unreachable_server_exits_3(cli: Cli) -> None:
    run = cli("doctor")
    assert run.exit_code == 3
    assert run.stdout.startswith("FAIL  server: cannot reach Ollama at")


def test_a_server_that_accepts_and_never_answers_exits_3(cli: Cli, ollama: FakeOllama) -> None:
    ollama.hold_path("/api/version")
    try:
        run = cli("doctor")
    finally:
        ollama.release_path()
    assert run.exit_code == 3, run
    assert "accepted the connection but did not answer GET" in run.stdout
    assert not ollama.requests_to("/api/generate")


# -- plans from the server's limits ------------------------------------------------------------


def test_apply_dry_run_predicts_the_eviction_from_the_servers_cap(
    cli: Cli, profiles: Path, make_ollama: Callable[..., FakeOllama], tmp_path: Path
) -> None:
    server = make_ollama(max_loaded=2)
    log = server_log(tmp_path, server, OLLAMA_MAX_LOADED_MODELS="2")
    run = cli("apply", "three", "--dry-run", "--server-log", log)
    assert run.exit_code == 1, run  # the real apply is refused: the dry run exits as it would
    assert (
        f"limits: at most 2 models loaded (OLLAMA_MAX_LOADED_MODELS=2, from the server log "
        f"({log} line 1, server config))" in run.stderr
    )
    assert "make Ollama evict" in run.stderr
    assert 'error: apply would refuse profile "three": ' in run.stderr
    assert not server.requests_to("/api/generate")


def test_apply_refuses_a_plan_that_evicts_its_own_model_unless_forced(
    cli: Cli, profiles: Path, make_ollama: Callable[..., FakeOllama], tmp_path: Path
) -> None:
    server = make_ollama(max_loaded=2)
    log = server_log(tmp_path, server, OLLAMA_MAX_LOADED_MODELS="2")
    run = cli("apply", "three", "--server-log", log)
    assert run.exit_code == 1, run
    assert (
        'error: not applying profile "three": loading tiny3:latest pushes out tiny2:latest '
        "(the server keeps at most 2 models: OLLAMA_MAX_LOADED_MODELS=2), one of the "
        "profile's own models" in run.stderr
    )
    assert "--force" in run.stderr
    assert not server.requests_to("/api/generate")
    forced = cli("apply", "three", "--server-log", log, "--force", "--json")
    assert forced.exit_code == 1, forced  # done as asked, but one did not stay
    doc = json.loads(forced.stdout)
    assert doc["ok"] is False
    [lost] = doc["end_state"]["lost"]
    assert lost["pushed_out_by"] == "tiny3:latest"
    assert len(loaded(server)) == 2


def test_max_loaded_option_overrides_the_log(
    cli: Cli, profiles: Path, make_ollama: Callable[..., FakeOllama], tmp_path: Path
) -> None:
    server = make_ollama(max_loaded=3)
    log = server_log(tmp_path, server, OLLAMA_MAX_LOADED_MODELS="2")
    run = cli("apply", "three", "--dry-run", "--server-log", log, "--max-loaded", "3")
    assert "limits: at most 3 models loaded (--max-loaded 3)" in run.stderr
    assert "evict" not in run.stderr


def test_without_a_log_the_cap_is_an_assumption_said_as_such(
    cli: Cli, profiles: Path, ollama: FakeOllama
) -> None:
    run = cli("apply", "three", "--dry-run")
    assert "limits: at most 3 models loaded (assumed: Ollama's automatic value" in run.stderr


# -- a result says what stayed -----------------------------------------------------------------


SIX = ("tiny", "tiny2", "tiny3", "tiny-embed", "llama3.2", "myns/coder:7b")


def test_pin_more_than_the_server_holds_says_what_stayed_and_exits_1(
    cli: Cli, ollama: FakeOllama
) -> None:
    run = cli("pin", *SIX)
    assert run.exit_code == 1, run
    assert "6 models: 6 loaded" not in run.stderr
    assert "error: 6 models asked, 3 resident at the end: " in run.stderr
    assert "tiny:latest was pushed out by" in run.stderr
    assert len(loaded(ollama)) == 3


def test_pin_json_marks_who_did_not_stay(cli: Cli, ollama: FakeOllama) -> None:
    run = cli("pin", *SIX, "--json")
    assert run.exit_code == 1
    docs = json.loads(run.stdout)
    stayed = {d["name"] for d in docs if d["resident"]}
    assert stayed == loaded(ollama)
    gone = [d for d in docs if not d["resident"]]
    assert len(gone) == 3 and all(d["pushed_out_by"] for d in gone)


def test_pin_refuses_up_front_when_the_cap_is_known(
    cli: Cli, ollama: FakeOllama, tmp_path: Path
) -> None:
    log = server_log(tmp_path, ollama)  # automatic: 3 on CPU
    run = cli("pin", *SIX, "--server-log", log)
    assert run.exit_code == 1, run
    assert "error: not loading: these models cannot all stay loaded" in run.stderr
    assert not ollama.requests_to("/api/generate")


def test_pin_dry_run_prints_the_plan(cli: Cli, ollama: FakeOllama, tmp_path: Path) -> None:
    log = server_log(tmp_path, ollama, OLLAMA_MAX_LOADED_MODELS="2")
    run = cli("pin", "tiny", "tiny2", "tiny3", "--dry-run", "--server-log", log, "--json")
    # The real run is refused (1): the dry run says it would be, with the same code.
    assert run.exit_code == 1, run
    assert "error: pin would refuse: these models cannot all stay loaded" in run.stderr
    assert "hint: --force" in run.stderr
    doc = json.loads(run.stdout)
    assert doc["refused"]
    assert [s["action"] for s in doc["plan"]["steps"]] == ["load", "load", "load"]
    assert doc["plan"]["max_loaded"] == 2
    assert [e["in_profile"] for e in doc["plan"]["evictions"]] == [True]
    assert not ollama.requests_to("/api/generate")


def test_pin_within_the_cap_still_exits_0(cli: Cli, ollama: FakeOllama, tmp_path: Path) -> None:
    run = cli("pin", "tiny", "tiny2", "--server-log", server_log(tmp_path, ollama))
    assert run.exit_code == 0, run
    assert run.stderr.splitlines()[-1] == "2 models: 2 loaded"


def test_guard_once_exits_1_on_a_conflict(cli: Cli, make_ollama: Callable[..., FakeOllama]) -> None:
    make_ollama(max_loaded=2)
    run = cli("guard", "tiny", "tiny2", "tiny3", "--once", "--jsonl", "--no-journal")
    assert run.exit_code == 1, run
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert any(e["event"] == "conflict" for e in events)


@pytest.mark.parametrize("command", ["pin", "preload"])
def test_dry_run_exits_as_the_refused_run_would(
    cli: Cli, ollama: FakeOllama, tmp_path: Path, command: str
) -> None:
    log = server_log(tmp_path, ollama, OLLAMA_MAX_LOADED_MODELS="2")
    real = cli(command, "tiny", "tiny2", "tiny3", "--server-log", log)
    dry = cli(command, "tiny", "tiny2", "tiny3", "--server-log", log, "--dry-run")
    assert (real.exit_code, dry.exit_code) == (1, 1), (real, dry)
    assert f"error: {command} would refuse: " in dry.stderr
    assert "load     tiny3:latest" in dry.stdout
    assert not ollama.requests_to("/api/generate")
    # --force: the dry run would go ahead, so it exits 0.
    assert (
        cli(
            command, "tiny", "tiny2", "tiny3", "--server-log", log, "--dry-run", "--force"
        ).exit_code
        == 0
    )
