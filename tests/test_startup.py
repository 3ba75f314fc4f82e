"""Shell startup: `apply NAME --background` returns at once and ten terminals cause one load."""

from __future__ import annotations

import os
import subprocess
import sys
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


def _lock_is_free(lock_file: Path) -> bool:
    """True once no detached apply holds the profile's lock (it has exited)."""
    import fcntl

    with lock_file.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def test_ten_terminals_cause_one_load(
    make_ollama: Callable[..., FakeOllama], tmp_path: Path, isolated_env: Path
):
    server = make_ollama()
    server.hold_loads()  # no load completes until every shell has its prompt back
    env = _env(server.url, tmp_path)
    procs = [_apply_background(env) for _ in range(10)]
    results = [p.communicate(timeout=120) for p in procs]
    # Every shell got its prompt back while no load could finish.
    assert server.load_history == []
    assert all(p.returncode == 0 for p in procs), results
    messages = [err for _out, err in results]
    assert sum("in the background" in m for m in messages) == 1, messages
    assert sum("already being applied" in m for m in messages) == 9
    server.release_loads()
    wait_until(lambda: len(server.load_history) == 2, timeout=120, what="background apply")
    lock_file = isolated_env / "apply-work.lock"
    assert lock_file.exists()
    wait_until(lambda: _lock_is_free(lock_file), timeout=120, what="the background apply's exit")
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


def test_dead_server_does_not_block(tmp_path: Path, isolated_env: Path):
    """Nothing listens: the shell gets exit 3 at once and no background apply is left waiting.

    "At once" is a bounded wait (a blocked start would hit the timeout), not a duration
    assertion; the start-up time itself is measured in benchmarks/startup.py.
    """
    env = _env(f"127.0.0.1:{closed_port()}", tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "apply", "work", "--background", "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert out == ""
    assert not (isolated_env / "apply-work.lock").exists()  # nothing was spawned


def test_background_with_dry_run_is_usage_error(tmp_path: Path, cli: Callable[..., Run]):
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    assert cli("--profiles", str(path), "apply", "work", "--background", "-n").exit_code == 2
