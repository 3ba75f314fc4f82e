"""Shell startup: `apply NAME --background` returns at once and ten terminals cause one load."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conftest import Run, closed_port, wait_until
from fakeollama import FakeOllama

PROFILE = '[profiles.work]\nkeep_alive = "forever"\nmodels = ["tiny", "tiny-embed"]\n'


def _env(server_url: str, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILE)
    return {**os.environ, "OLLAMA_HOST": server_url, "OLLAMA_RESIDENT_PROFILES": str(path)}


def _apply_background(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "apply", "work", "--background"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ten_terminals_cause_one_load(make_ollama: Callable[..., FakeOllama], tmp_path: Path):
    server = make_ollama(load_delay=2.5)
    env = _env(server.url, tmp_path)
    procs = [_apply_background(env) for _ in range(10)]
    results = [p.communicate(timeout=20) for p in procs]
    # Every shell got its prompt back while the first load was still running.
    assert server.loading() or not server.load_history
    assert all(p.returncode == 0 for p in procs), results
    messages = [err for _out, err in results]
    assert sum("in the background" in m for m in messages) == 1, messages
    assert sum("already being applied" in m for m in messages) == 9
    wait_until(lambda: len(server.load_history) == 2, timeout=15, what="background apply")
    time.sleep(0.3)
    assert sorted(server.load_history) == ["tiny-embed:latest", "tiny:latest"]
    loads = [r for r in server.requests if r.method == "POST" and r.path != "/api/show"]
    assert len(loads) == 2  # one load each, not ten


def test_resident_profile_returns_without_spawning(
    ollama: FakeOllama, tmp_path: Path, cli: Callable[..., Run], monkeypatch
):
    env = _env(ollama.url, tmp_path)
    monkeypatch.setenv("OLLAMA_RESIDENT_PROFILES", env["OLLAMA_RESIDENT_PROFILES"])
    ollama.preload("tiny", -1)
    ollama.preload("tiny-embed", -1)
    ollama.clear_requests()
    run = cli("apply", "work", "--background")
    assert run.exit_code == 0, run
    assert 'profile "work" is resident' in run.stderr
    assert not [r for r in ollama.requests if r.method == "POST" and r.path != "/api/show"]
    assert cli("apply", "work", "--background", "--quiet").stderr == ""


def test_dead_server_does_not_block(tmp_path: Path, monkeypatch, cli: Callable[..., Run]):
    env = _env(f"127.0.0.1:{closed_port()}", tmp_path)
    monkeypatch.setenv("OLLAMA_RESIDENT_PROFILES", env["OLLAMA_RESIDENT_PROFILES"])
    monkeypatch.setenv("OLLAMA_HOST", env["OLLAMA_HOST"])
    started = time.monotonic()
    run = cli("apply", "work", "--background", "--quiet")
    assert run.exit_code == 3
    assert time.monotonic() - started < 3


def test_background_with_dry_run_is_usage_error(tmp_path: Path, cli: Callable[..., Run]):
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    assert cli("--profiles", str(path), "apply", "work", "--background", "-n").exit_code == 2
