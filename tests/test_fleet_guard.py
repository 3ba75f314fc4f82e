"""One guard, many profiles (issue #14): each profile on its own server, in one process,
each with its own backoff; one server down or hanging delays nobody else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from conftest import Run, closed_port, wait_until
from fakeollama import MAX_DURATION, FakeOllama


def _write_profiles(home: Path, **profiles: tuple[str, list[str]]) -> None:
    text = ""
    for name, (host, models) in profiles.items():
        text += f'[profiles.{name}]\nhost = "{host}"\nkeep_alive = "forever"\n'
        text += f"models = {json.dumps(models)}\n\n"
    (home / "profiles.toml").write_text(text)


def _pinned(server: FakeOllama, model: str) -> bool:
    return any(
        r["name"] == model and r["state"] == "ready" and r["keep_alive_ns"] == MAX_DURATION
        for r in server.loaded()
    )


def _reset_pin(server: FakeOllama, model: str) -> None:
    """Another client sends its own keep_alive: the pin becomes 5 minutes."""
    server.wait_idle()
    httpx.post(f"{server.url}/api/generate", json={"model": model, "keep_alive": "5m"})
    server.wait_idle()


class _Guard:
    """`ollama-resident guard ...` in a subprocess, its JSONL events collected as they come."""

    def __init__(self, argv: list[str], home: Path) -> None:
        env = {**os.environ, "OLLAMA_RESIDENT_HOME": str(home), "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ollama_resident", "guard", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def seen(self, pred: Callable[[dict], bool]) -> list[dict]:
        with self._lock:
            return [e for e in self.events if pred(e)]

    def wait_for(self, what: str, pred: Callable[[dict], bool], after: int = 0) -> dict:
        def found() -> bool:
            with self._lock:
                return any(pred(e) for e in self.events[after:])

        wait_until(found, 30, what)
        return next(e for e in self.seen(lambda e: True)[after:] if pred(e))

    def mark(self) -> int:
        with self._lock:
            return len(self.events)

    def stop(self) -> tuple[int, str]:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._reader.join(10)  # it ends at the end of stdout, which it alone reads
        assert self.proc.stdout is not None and self.proc.stderr is not None
        with self.proc.stdout, self.proc.stderr:
            return self.proc.returncode, self.proc.stderr.read()


@pytest.fixture
def two() -> Iterator[tuple[FakeOllama, FakeOllama]]:
    a, b = FakeOllama().start(), FakeOllama().start()
    try:
        yield a, b
    finally:
        a.release_path()
        b.release_path()
        a.stop()
        b.stop()


def _event(host: str, kind: str, model: str | None = None) -> Callable[[dict], bool]:
    return lambda e: (
        e["host"] == host and e["event"] == kind and (model is None or e["model"] == model)
    )


@pytest.mark.slow
def test_two_profiles_two_servers_repaired_independently(two, isolated_env: Path):
    a, b = two
    _write_profiles(isolated_env, a=(a.url, ["tiny"]), b=(b.url, ["tiny2"]))
    g = _Guard(["--profile", "a", "--profile", "b", "-n", "0.2", "--jsonl"], isolated_env)
    try:
        wait_until(lambda: _pinned(a, "tiny:latest") and _pinned(b, "tiny2:latest"), 30, "pins")
        # Each profile stays on its own server.
        assert [r["name"] for r in a.loaded()] == ["tiny:latest"]
        assert [r["name"] for r in b.loaded()] == ["tiny2:latest"]

        # A client reset on each server: both pins come back.
        mark = g.mark()
        _reset_pin(a, "tiny")
        _reset_pin(b, "tiny2")
        g.wait_for("a re-pinned", _event(a.url, "reasserted", "tiny:latest"), mark)
        g.wait_for("b re-pinned", _event(b.url, "reasserted", "tiny2:latest"), mark)
        wait_until(lambda: _pinned(a, "tiny:latest") and _pinned(b, "tiny2:latest"), 30)

        # Server a hangs (its /api/ps held): b's repair does not wait for it.
        a.hold_path("/api/ps")
        wait_until(lambda: a.waiting_on("/api/ps") >= 1, 30, "the guard blocked on a")
        mark = g.mark()
        _reset_pin(b, "tiny2")
        g.wait_for("b re-pinned while a hangs", _event(b.url, "reasserted", "tiny2:latest"), mark)
        assert a.waiting_on("/api/ps") >= 1  # a's thread is still waiting on its answer
        a.release_path("/api/ps")

        # Server a restarts (down, then up without its models): b is repaired meanwhile,
        # and a gets its model back once it answers.
        mark = g.mark()
        a.stop()
        g.wait_for("a seen down", _event(a.url, "server_down"), mark)
        _reset_pin(b, "tiny2")
        g.wait_for("b re-pinned while a is down", _event(b.url, "reasserted", "tiny2:latest"), mark)
        assert not a.running
        a.start()
        g.wait_for("a restored", _event(a.url, "restored", "tiny:latest"), mark)
        wait_until(lambda: _pinned(a, "tiny:latest"), 30, "a pinned again")
        # Nothing of one profile leaked onto the other's server.
        assert all(e["model"] != "tiny2:latest" for e in g.seen(lambda e: e["host"] == a.url))
    finally:
        code, err = g.stop()
    assert code == 0, err
    assert "guarding tiny on " + a.url in err and "guarding tiny2 on " + b.url in err


def test_once_with_one_server_down_exits_1(cli, isolated_env: Path, two):
    a, _b = two
    dead = f"http://127.0.0.1:{closed_port()}"
    _write_profiles(isolated_env, a=(a.url, ["tiny"]), d=(dead, ["tiny"]))
    run: Run = cli("guard", "--profile", "a", "--profile", "d", "--once", "--jsonl")
    assert run.exit_code == 1, run
    assert _pinned(a, "tiny:latest")
    assert f"cannot reach Ollama at {dead}" in run.stderr
    hosts = {json.loads(line)["host"] for line in run.stdout.splitlines()}
    assert hosts == {a.url, dead}


def test_once_with_every_server_down_exits_3(cli):
    dead = [f"http://127.0.0.1:{closed_port()}" for _ in range(2)]
    run = cli("guard", "tiny", "--host", dead[0], "--host", dead[1], "--once", "--jsonl")
    assert run.exit_code == 3, run


def test_the_same_model_kept_differently_on_one_host_is_a_usage_error(cli, isolated_env, two):
    a, _b = two
    (isolated_env / "profiles.toml").write_text(
        f'[profiles.x]\nhost = "{a.url}"\nmodels = ["tiny"]\n\n'
        f'[profiles.y]\nhost = "{a.url}"\nkeep_alive = "1h"\nmodels = ["tiny"]\n'
    )
    run = cli("guard", "--profile", "x", "--profile", "y", "--once")
    assert run.exit_code == 2
    assert "profile 'x' and profile 'y' both keep tiny:latest on" in run.stderr
    assert a.requests_to("/api/ps") == []  # nothing sent


def test_profiles_on_one_host_share_one_watcher(cli, isolated_env, two):
    a, _b = two
    (isolated_env / "profiles.toml").write_text(
        f'[profiles.x]\nhost = "{a.url}"\nkeep_alive = -1\nmodels = ["tiny"]\n\n'
        f'[profiles.y]\nhost = "{a.url}"\nkeep_alive = -1\nmodels = ["tiny", "tiny2"]\n'
    )
    run = cli("guard", "--profile", "x", "--profile", "y", "--once", "--jsonl")
    assert run.exit_code == 0, run
    assert _pinned(a, "tiny:latest") and _pinned(a, "tiny2:latest")
    starts = [json.loads(x) for x in run.stdout.splitlines() if "recording_started" in x]
    assert len(starts) == 1
