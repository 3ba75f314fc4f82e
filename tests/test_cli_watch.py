"""``watch``, ``journal`` and ``why`` end to end, against the fake Ollama.

Each scenario runs the real ``ollama-resident watch --jsonl`` in a subprocess, causes one
kind of unload the way another client (or Ollama itself) would, reads the JSON lines as
they come, stops the watch with SIGTERM (exit 0) and asks ``why`` about the model.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import wait_busy
from fakeollama import FakeOllama
from ollama_resident import journal as journal_mod
from ollama_resident.client import OllamaClient
from ollama_resident.durations import parse_timestamp
from ollama_resident.host import parse_host
from ollama_resident.journal import Journal
from ollama_resident.residency import UnloadOutcome
from ollama_resident.watcher import Watcher

Json = dict[str, Any]


class WatchProcess:
    """``ollama-resident watch --jsonl`` in a subprocess, its events read as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ollama_resident",
                "watch",
                "--jsonl",
                "--interval",
                "0.1",
                "--settle",
                "0.6",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        self.events: list[Json] = []
        self._queue: queue.Queue[Json | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(lambda e: e["event"] == "recording_started")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(json.loads(line))  # every line is one whole JSON object
        self._queue.put(None)

    def wait_for(self, match: Callable[[Json], bool], timeout: float = 60.0) -> Json:
        for e in self.events:
            if match(e):
                return e
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event; got {self.summary()}")
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if item is None:
                raise AssertionError(f"watch ended early; got {self.summary()}")
            self.events.append(item)
            if match(item):
                return item

    def event(self, model: str, event: str, reason: str | None = None) -> Json:
        return self.wait_for(
            lambda e: (
                e["model"] == model
                and e["event"] == event
                and (reason is None or e["reason"] == reason)
            )
        )

    def summary(self) -> list[tuple[Any, ...]]:
        return [(e["model"], e["event"], e["reason"]) for e in self.events]

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self._reader.join(timeout=60)
        while True:
            item = self._queue.get_nowait() if not self._queue.empty() else None
            if item is None:
                break
            self.events.append(item)
        assert self.proc.stderr is not None
        stderr = self.proc.stderr.read()
        self.close()
        return rc, stderr

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=60)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def watch() -> Iterator[Callable[..., WatchProcess]]:
    started: list[WatchProcess] = []

    def start(*args: str) -> WatchProcess:
        w = WatchProcess(*args)
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()


def generate(server: FakeOllama, model: str, **body: Any) -> Json:
    reply = httpx.post(
        f"{server.url}/api/generate",
        json={"model": model, "prompt": "", "stream": False, **body},
        timeout=120,
    )
    reply.raise_for_status()
    data: Json = reply.json()
    return data


def finish(w: WatchProcess) -> None:
    rc, stderr = w.stop()
    assert rc == 0, stderr
    assert w.events[-1]["event"] == "recording_stopped"
    for e in w.events:
        assert {"time", "host", "model", "event", "reason", "detail"} <= set(e)


# -- one scenario per cause ----------------------------------------------------------------


def test_expiry(ollama: FakeOllama, watch: Callable[..., WatchProcess], cli: Any) -> None:
    w = watch()
    generate(ollama, "tiny", keep_alive="1s")
    loaded = w.event("tiny:latest", "loaded")
    assert loaded["detail"]["keep_alive"] == "1s"
    gone = w.event("tiny:latest", "unloaded")
    finish(w)
    assert (gone["reason"], gone["detail"]["confidence"]) == ("expired", "certain")
    run = cli("why", "tiny")
    assert run.exit_code == 0
    assert run.stdout.startswith(
        "tiny:latest: unloaded: its keep-alive (1s) ran out while it was idle ("
    )
    assert "had not moved, and it was gone between" in run.stdout


def test_another_clients_unload(
    make_ollama: Callable[..., FakeOllama], watch: Callable[..., WatchProcess], cli: Any
) -> None:
    # An idle model goes in the same step as the stop (unload_delay=0), so no poll can see its
    # expires_at move: from outside, only "gone early, nothing else came" is left.
    ollama = make_ollama(unload_delay=0.0)
    ollama.preload("tiny", "5m")
    w = watch()
    w.event("tiny:latest", "loaded", "already_loaded")
    generate(ollama, "tiny", keep_alive=0)  # `ollama stop tiny`
    gone = w.event("tiny:latest", "unloaded")
    finish(w)
    assert (gone["reason"], gone["detail"]["confidence"]) == ("stopped", "likely")
    run = cli("why", "tiny")
    assert run.stdout.startswith(
        "tiny:latest: unloaded early, most likely stopped by a client (keep_alive 0 or "
        "`ollama stop`)"
    )
    assert "no other model appeared within 0." in run.stdout  # --settle 0.6
    assert "and the server did not restart" in run.stdout
    assert "It was already loaded when recording began" in run.stdout


def test_a_stop_while_busy_is_certain(
    make_ollama: Callable[..., FakeOllama], watch: Callable[..., WatchProcess], cli: Any
) -> None:
    server = make_ollama()
    server.preload("tiny", "5m")
    w = watch()
    w.event("tiny:latest", "loaded", "already_loaded")
    server.hold_requests("tiny")  # the generation runs until released
    busy = threading.Thread(
        target=generate,
        args=(server, "tiny"),
        kwargs={"prompt": "hi", "options": {"num_predict": 14}},
    )
    busy.start()
    wait_busy(server, "tiny:latest")
    generate(server, "tiny", keep_alive=0)  # arrives while the request runs
    stopping = w.event("tiny:latest", "busy", "stopping")
    server.release_requests()
    busy.join()
    gone = w.event("tiny:latest", "unloaded")
    finish(w)
    assert stopping["detail"]["confidence"] == "certain"
    assert (gone["reason"], gone["detail"]["confidence"]) == ("stopped", "certain")
    out = cli("why", "tiny").stdout
    assert out.startswith(
        "tiny:latest: unloaded: stopped by an explicit unload (keep_alive 0 or `ollama stop`)"
    )
    assert "the moment of the stop: Ollama does that only for an explicit unload" in out


def test_eviction(
    make_ollama: Callable[..., FakeOllama], watch: Callable[..., WatchProcess], cli: Any
) -> None:
    server = make_ollama(max_loaded=3)
    w = watch()
    generate(server, "tiny", keep_alive=-1)
    generate(server, "tiny2", keep_alive="5m")
    generate(server, "tiny3", keep_alive="1h")
    for name in ("tiny", "tiny2", "tiny3"):
        w.event(f"{name}:latest", "loaded")
    generate(server, "llama3.2", keep_alive="5m")  # a fourth model: one must go
    gone = w.event("tiny2:latest", "unloaded")
    finish(w)
    assert (gone["reason"], gone["detail"]["confidence"]) == ("evicted", "likely")
    assert gone["detail"]["by_models"] == ["llama3.2:latest"]
    out = cli("why", "tiny2").stdout
    assert out.startswith(
        "tiny2:latest: unloaded: evicted to make room for llama3.2:latest (likely)"
    )
    assert (
        "3 models were resident (limit 3, the default: OLLAMA_MAX_LOADED_MODELS); Ollama "
        "evicts the idle model with the shortest keep-alive; tiny2:latest had 5m "
        "(others: tiny:latest forever, tiny3:latest 1h)"
    ) in out
    assert "llama3.2:latest appeared" in out


def test_a_client_resetting_a_pin_with_5m(
    ollama: FakeOllama, watch: Callable[..., WatchProcess], cli: Any
) -> None:
    w = watch()
    generate(ollama, "tiny", keep_alive=-1)
    assert w.event("tiny:latest", "loaded")["detail"]["keep_alive"] == "forever"
    generate(ollama, "tiny", prompt="hello", keep_alive="5m")  # e.g. a chat UI
    changed = w.event("tiny:latest", "keep_alive_changed")
    finish(w)
    assert (changed["reason"], changed["detail"]["after"]) == ("pin_lost", "5m")
    out = cli("why", "tiny").stdout
    assert out.startswith(
        "tiny:latest: the pin was reset to about 5m by a request that carried its own keep_alive"
    )
    assert "expires_at went from forever to" in out


def test_a_num_ctx_reload(ollama: FakeOllama, watch: Callable[..., WatchProcess], cli: Any) -> None:
    w = watch()
    generate(ollama, "tiny", keep_alive=-1)
    w.event("tiny:latest", "loaded")
    generate(ollama, "tiny", prompt="hi", options={"num_ctx": 256})  # no keep_alive
    gone = w.event("tiny:latest", "unloaded")
    again = w.event("tiny:latest", "loaded", "reload")
    finish(w)
    assert gone["reason"] == "reloaded"
    assert gone["detail"]["changes"]["context_length"] == [512, 256]
    assert gone["detail"]["pin_lost"] is True
    assert again["detail"]["context_length"] == 256
    out = cli("why", "tiny").stdout
    assert "reloaded: context 512 -> 256; the pin was lost" in out
    assert "the new runner took that request's keep-alive (5m), not the pin" in out


def test_a_server_restart(ollama: FakeOllama, watch: Callable[..., WatchProcess], cli: Any) -> None:
    w = watch()
    generate(ollama, "tiny", keep_alive=-1)
    w.event("tiny:latest", "loaded")
    ollama.stop()
    down = w.wait_for(lambda e: e["event"] == "server_down")
    ollama.start()  # same port, nothing loaded
    up = w.wait_for(lambda e: e["event"] == "server_up")
    gone = w.event("tiny:latest", "unloaded")
    rc, stderr = w.stop()
    assert rc == 0
    lines = stderr.splitlines()
    assert (
        f"warning: Ollama at {ollama.url} is not answering (connection refused); still trying"
        in (lines)
    )
    assert f"Ollama at {ollama.url} is answering again" in lines
    assert "connection refused" in down["detail"]["error"]
    assert (up["reason"], up["detail"]["version"]) == ("restarted", "0.24.0")
    down_for = (parse_timestamp(up["time"]) - parse_timestamp(down["time"])).total_seconds()
    assert up["detail"]["down_for_s"] == pytest.approx(down_for, abs=0.002)
    assert up["detail"]["down_for_s"] > 0
    assert gone["reason"] == "server_restart"
    out = cli("why", "tiny").stdout
    assert out.startswith("tiny:latest: unloaded: the Ollama server restarted (likely)")
    assert "Ollama keeps nothing across a restart: pins must be set again" in out


# -- watch itself --------------------------------------------------------------------------


def test_watch_keeps_running_while_the_server_is_down(watch: Callable[..., WatchProcess]) -> None:
    """A server never seen up is not reached yet, not "down": `server_unreachable` once,
    then `server_up`/`first_answer` when it answers; no `server_down` was seen."""
    w = watch()  # OLLAMA_HOST points at a closed port
    unreachable = w.wait_for(lambda e: e["event"] == "server_unreachable")
    port = int(os.environ["OLLAMA_HOST"].rsplit(":", 1)[1])
    with FakeOllama(port=port):  # it kept polling: it sees the server come up
        up = w.wait_for(lambda e: e["event"] == "server_up")
        assert w.proc.poll() is None
        rc, stderr = w.stop()
    assert rc == 0
    kinds = [e["event"] for e in w.events]
    assert kinds.count("server_unreachable") == 1 and "server_down" not in kinds
    assert unreachable["model"] is None
    assert "connection refused" in unreachable["detail"]["error"]
    assert (up["reason"], up["detail"]["version"]) == ("first_answer", "0.24.0")
    host = unreachable["host"]
    assert f"warning: cannot reach Ollama at {host} yet (connection refused); still trying" in (
        stderr.splitlines()
    )
    assert f"Ollama at {host} is answering now" in stderr.splitlines()
    assert "is not answering" not in stderr and "answering again" not in stderr


def test_watch_ends_cleanly_when_its_reader_goes_away(
    ollama: FakeOllama, isolated_env: Path
) -> None:
    """``watch --jsonl | head -1`` on a quiet server: it stops at once, exit 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "watch", "--jsonl", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = json.loads(proc.stdout.readline())
    assert first["event"] == "recording_started"
    proc.stdout.close()
    rc = proc.wait(timeout=60)
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert rc == 0, stderr
    assert "error" not in stderr.lower()
    journal = (isolated_env / "journal.jsonl").read_text().splitlines()
    assert json.loads(journal[-1])["event"] == "recording_stopped"


def test_the_journal_gets_the_events_and_journal_commands_show_them(
    ollama: FakeOllama, watch: Callable[..., WatchProcess], cli: Any, isolated_env: Path
) -> None:
    path = cli("journal", "path")
    assert path.stdout.strip() == str(isolated_env / "journal.jsonl")
    empty = cli("journal", "show")
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "Start recording with `ollama-resident watch`" in empty.stderr

    w = watch()
    generate(ollama, "tiny", keep_alive="5m")
    w.event("tiny:latest", "loaded")
    finish(w)
    lines = (isolated_env / "journal.jsonl").read_text().splitlines()
    assert [json.loads(x)["event"] for x in lines] == [e["event"] for e in w.events]

    shown = cli("journal", "show", "--model", "tiny")
    rows = shown.stdout.splitlines()
    assert rows[0].endswith(f"{ollama.url}  recording started (watch, every 0.1s)")
    assert rows[1].endswith("tiny:latest  loaded: keep-alive 5m, context 512, 100% CPU")
    told = cli("why", "tiny").stdout
    assert "while it was loaded; the journal has nothing after that." in told
    as_json = json.loads(cli("journal", "show", "--json").stdout)
    assert [e["event"] for e in as_json] == ["recording_started", "loaded", "recording_stopped"]

    no_journal = watch("--no-journal")
    finish(no_journal)
    assert len((isolated_env / "journal.jsonl").read_text().splitlines()) == len(lines)


def test_why_with_a_server_log_from_stdin(
    ollama: FakeOllama, watch: Callable[..., WatchProcess], cli: Any
) -> None:
    w = watch()
    generate(ollama, "tiny", keep_alive="300ms")
    gone = w.event("tiny:latest", "unloaded")
    finish(w)
    runner = (
        "runner.name=registry.ollama.ai/library/tiny:latest runner.pid=4128 "
        "runner.model=/usr/share/ollama/.ollama/models/blobs/sha256-" + "ab" * 32
    )
    log = (
        f'time={gone["time"]} level=DEBUG source=sched.go:1 msg="timer expired, expiring to '
        f'unload" {runner}\n'
        f'time={gone["time"]} level=DEBUG source=server.go:1884 msg="llama server stopped" '
        "pid=4128\n"
    )
    run = cli("why", "tiny", "--server-log", "-", input=log)
    assert "ran out while it was idle" in run.stdout
    assert "journal, log line 1" in run.stdout  # one item, both sources
    data = json.loads(cli("why", "tiny", "--server-log", "-", "--json", input=log).stdout)
    kinds = [s["kind"] for s in data["items"][0]["sources"]]
    assert kinds == ["journal", "server_log"]
    assert data["items"][0]["reason"] == "expired"
    missing = cli("why", "tiny", "--server-log", "/nonexistent/server.log")
    assert missing.exit_code == 2
    assert "cannot read the server log /nonexistent/server.log" in missing.stderr


def test_why_without_a_journal(cli: Any) -> None:
    run = cli("why", "llama3.2")
    assert run.exit_code == 0
    assert run.stdout.splitlines()[0] == "llama3.2:latest: nothing recorded"
    assert "The journal is empty: nothing has been recording" in run.stdout


# -- the Watcher in-process ----------------------------------------------------------------


def test_the_unload_commands_journal_entry_makes_its_unload_the_tools(
    ollama: FakeOllama, tmp_path: Path
) -> None:
    """A watch reads what the tool's commands journal: their unloads are not "some client"."""
    journal = Journal(tmp_path / "j.jsonl")
    ollama.preload("tiny", "5m")
    client = OllamaClient(parse_host(ollama.url))
    watcher = Watcher(client, 0.05, ollama.url, journal=journal, settle_s=5)
    assert [e.event for e in watcher.poll_once()] == ["recording_started", "loaded"]
    generate(ollama, "tiny", keep_alive=0)  # the `unload` command ...
    ollama.wait_idle()
    outcome = UnloadOutcome("tiny", "tiny:latest", "unloaded", seconds=0.02)
    assert (
        journal_mod.record_outcomes(host=ollama.url, unloads=[outcome], path=journal.path) is None
    )
    (gone,) = watcher.poll_once()  # ... then the watch polls
    assert (gone.event, gone.reason, gone.confidence) == ("unloaded", "stopped", "certain")
    assert gone.by_tool
    watcher.stop()
    client.close()
    # written once, by the command, not again by the watch
    stops = [e for e in journal.read() if e.event == "unloaded"]
    assert len(stops) == 1


def test_the_live_view_shows_the_table_and_the_latest_events(ollama: FakeOllama) -> None:
    from rich.console import Console

    from ollama_resident.cli.watch import _live_view

    client = OllamaClient(parse_host(ollama.url))
    watcher = Watcher(client, 1.0, ollama.url, settle_s=0)
    watcher.poll_once()
    generate(ollama, "tiny", keep_alive=-1)
    generate(ollama, "tiny2", keep_alive="5m")
    watcher.poll_once()
    generate(ollama, "tiny2", keep_alive=0)
    ollama.wait_idle()
    watcher.poll_once()
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(_live_view(watcher, "recording to /j"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert (
        f"Watching {ollama.url} (Ollama 0.24.0) every 1s; Ctrl-C to stop\nRecording to /j" in text
    )
    assert "tiny:latest" in text and "Forever" in text
    assert "Latest events" in text
    assert "tiny2:latest  unloaded early, most likely stopped by a client" in text
    ollama.stop()
    watcher.poll_once()
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(_live_view(watcher, "recording to /j"))
    down = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Ollama is not answering since" in down
    # The last table stays, marked stale, its countdowns as they stood when last seen.
    assert "Last seen at " in down and "(stale until Ollama answers)" in down
    assert down.index("stale") < down.index("tiny:latest") and "Forever" in down
    client.close()


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("no_color", ["", "1"])
def test_the_live_view_on_a_terminal_ends_cleanly_on_sigterm(
    ollama: FakeOllama, no_color: str
) -> None:
    """On a terminal, with or without NO_COLOR: the live view, never JSON lines."""
    import pty

    ollama.preload("tiny", -1)
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm-256color"
    if no_color:
        env["NO_COLOR"] = no_color
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "watch", "--interval", "0.1"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    while b"Forever" not in seen and time.monotonic() < deadline:
        try:
            seen += os.read(leader, 65536)
        except OSError:
            break
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert rc == 0
    assert b"Watching" in seen and b"Forever" in seen
    assert b'{"time"' not in seen  # NO_COLOR removes colour, not the live view
    assert (b"\x1b[32m" in seen) != bool(no_color)  # green "Forever" only with colour
    assert b"\x1b[?25l" in seen  # the cursor was hidden for the live view ...
    assert seen.rstrip().endswith(b"\x1b[?25h") or b"\x1b[?25h" in seen  # ... and restored
