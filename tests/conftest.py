"""Shared fixtures: an isolated environment for every test, and a fake Ollama.

The fake server (tests/fakeollama/) speaks real HTTP on loopback; nothing in
httpx or the client is mocked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakeollama import FakeOllama
from ollama_resident.cli import app

# A suite started in the background by a script (`.ci/run &`, nohup) inherits SIGINT ignored, and
# so would every CLI a test starts: a test's Ctrl-C (SIGINT) would then never arrive. A Python
# handler here is reset to the default in each child, as in a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Kill ``proc`` if the test fails while it runs, so no child outlives its test."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the developer's config, journal or server, or gets colour."""
    home = tmp_path / "home"
    home.mkdir()
    for name in (
        "OLLAMA_HOST",
        "OLLAMA_RESIDENT_DEBUG",
        "OLLAMA_RESIDENT_PROFILES",
        "OLLAMA_RESIDENT_JOURNAL",
        "FORCE_COLOR",
        "EDITOR",
        "VISUAL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_RESIDENT_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    # Point the default at a port nothing listens on, so a test that forgets
    # the server fails fast instead of finding a real Ollama.
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    # `why` looks for Ollama's server log (journalctl, ~/.ollama/logs): none of the machine's.
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path)) + os.pathsep + os.environ.get("PATH", ""))
    return home


def fake_bin(tmp_path: Path, journal: str = "", journal_exit: int = 0) -> Path:
    """A directory of stand-ins for the commands `why` runs to find a server log:
    ``journalctl`` prints ``journal`` (nothing by default: no unit) and ``docker``
    says the daemon is not running. Tests replace them to show a log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "journal.txt").write_text(journal, encoding="utf-8")
    script = bin_dir / "journalctl"
    script.write_text(
        f'#!/bin/sh\ncat "{bin_dir / "journal.txt"}"\nexit {journal_exit}\n', encoding="utf-8"
    )
    script.chmod(0o755)
    docker = bin_dir / "docker"
    if not docker.exists():
        docker.write_text(
            "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
            "Is the docker daemon running?' >&2\nexit 1\n",
            encoding="utf-8",
        )
        docker.chmod(0o755)
    return bin_dir


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    """A fresh fake Ollama for this test; OLLAMA_HOST points at it."""
    server = FakeOllama().start()
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeOllama]]:
    """Build a fake Ollama with custom settings (max_loaded, gpu_memory, ...)."""
    servers: list[FakeOllama] = []

    def factory(**kwargs: object) -> FakeOllama:
        server = FakeOllama(**kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        return server

    try:
        yield factory
    finally:
        for server in servers:
            server.stop()


def generate_in_background(server: FakeOllama, model: str, tokens: int) -> threading.Thread:
    """Another client's generation, running while the test goes on (the model is busy).
    To keep it busy until the test says so, call ``server.hold_requests(model)`` first and
    ``server.release_requests()`` when done; never rely on how long it takes."""
    import httpx

    def run() -> None:
        body = {"model": model, "prompt": "hi", "stream": False, "options": {"num_predict": tokens}}
        with contextlib.suppress(httpx.HTTPError):  # the test may stop the server first
            httpx.post(f"{server.url}/api/generate", json=body, timeout=300)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_until(
    predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` until true. The deadline is generous: on a busy machine it only
    bounds a test that is failing anyway; tests never assert how long something took."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.01)


def wait_busy(server: FakeOllama, model: str) -> None:
    wait_until(
        lambda: any(r["in_use"] for r in server.loaded() if r["name"] == model),
        what=f"{model} busy",
    )


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return f"Run(exit={self.exit_code}\n--stdout--\n{self.stdout}\n--stderr--\n{self.stderr})"


@pytest.fixture
def cli() -> Callable[..., Run]:
    """Run the real CLI in-process: ``cli("ps", "--json")``."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Run:
        result = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        run = Run(result.exit_code, result.stdout, result.stderr)
        assert "unexpected error" not in run.stderr, run
        return run

    return invoke
