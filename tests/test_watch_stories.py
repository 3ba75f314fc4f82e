"""What `watch` and `guard` record and say, told truthfully: the command that caused a
change (``apply NAME``), a server never seen up, and lines that name their host once.

Against the fake Ollama over loopback; every wait is on a condition, never on time.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import Run, closed_port, reaped, wait_until
from fakeollama import FakeOllama
from ollama_resident import events as ev
from ollama_resident import render
from ollama_resident.client import OllamaClient
from ollama_resident.errors import unreachable_reason, without_host
from ollama_resident.events import Event, OwnAction
from ollama_resident.host import parse_host
from ollama_resident.journal import Journal
from ollama_resident.models import PsSnapshot, RunningModel
from ollama_resident.paths import journal_path
from ollama_resident.watcher import Watcher

Cli = Callable[..., Run]
T0 = datetime(2026, 8, 22, 12, 0, 0, tzinfo=timezone.utc)


# -- 3. what a watch sees of `apply NAME` names the profile ----------------------------------


def test_an_apply_reload_seen_going_and_coming_back_is_one_load_by_apply_work(
    ollama: FakeOllama, cli: Cli, isolated_env: Path
) -> None:
    """The watch sees the model go (the reload unloads it first), reads the apply's journal
    lines, then sees it back: the story is the apply's reload, told as `apply work`, once."""
    ollama.preload("tiny", "5m")  # context 512
    (isolated_env / "profiles.toml").write_text(
        '[profiles.work]\nmodels = [{ name = "tiny", keep_alive = "1h", num_ctx = 256 }]\n'
    )
    client = OllamaClient(parse_host(ollama.url), timeout=60)
    watcher = Watcher(client, 0.1, client.display_url, journal=Journal(journal_path()), settle_s=30)
    try:
        watcher.poll_once()
        ollama.hold_loads("tiny")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ollama_resident", "apply", "work"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        with reaped(proc):
            # The old runner is gone, the new one held: the watch holds the departure.
            wait_until(lambda: bool(watcher.poll_once() or watcher.pending), what="tiny gone")
            assert watcher.pending == ["tiny:latest"]
            ollama.release_loads()
            output, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, output
        back = watcher.poll_once()  # reads the apply's lines, then sees it back
        watcher.stop()
    finally:
        client.close()
    load = next(e for e in back if e.event == "loaded")
    assert (load.detail["action"], load.detail["profile"]) == ("apply", "work"), back
    shown = cli("journal", "show").stdout.splitlines()
    tiny = [ln.split("  ", 2)[2] for ln in shown if "  tiny:latest  " in ln]
    assert tiny == [
        "already loaded when recording began (keep-alive at least 4m, context 512, 100% CPU)",
        "reloaded: context 512 -> 256, as asked with num_ctx by ollama-resident apply work",
        "loaded again by the reload: keep-alive 1h, context 256, 100% CPU",
    ], shown
    story = cli("why", "tiny", "--no-server-log").stdout
    assert "ollama-resident apply work" in story, story
    assert "ollama-resident apply:" not in story and "apply loaded" not in story, story


def _ps(t: float, *models: RunningModel) -> PsSnapshot:
    return PsSnapshot(models=tuple(models), taken_at=T0 + timedelta(seconds=t))


def _tiny(expires: str) -> RunningModel:
    return RunningModel.from_api(
        {
            "name": "tiny:latest",
            "model": "tiny:latest",
            "size": 1_000_000,
            "digest": "ab" * 32,
            "expires_at": expires,
            "size_vram": 0,
            "context_length": 512,
        }
    )


def test_every_poll_event_an_apply_explains_carries_its_profile() -> None:
    """The kind: a load, a keep-alive change and a stop a poll attributes to `apply work`
    (read from the apply's journal lines) name the profile, as the apply's own lines do."""
    entries = [
        Event(
            T0,
            "h",
            "tiny:latest",
            "loaded",
            None,
            {"by": ev.TOOL, "action": "apply", "profile": "work", "keep_alive": "1h"},
        ),
        Event(
            T0,
            "h",
            "tiny:latest",
            "unloaded",
            "stopped",
            {"by": ev.TOOL, "action": "apply", "profile": "work"},
        ),
    ]
    load, stop = ev.own_actions_from(entries)
    assert (load.profile, stop.profile, stop.stops) == ("work", "work", True)
    loaded = ev.diff(_ps(0), _ps(1, _tiny("2026-08-22T13:00:00.5Z")), host="h", own_actions=[load])
    assert [(e.event, e.detail.get("profile")) for e in loaded] == [("loaded", "work")]
    mem = ev.Memory()
    first = _ps(1, _tiny("2026-08-22T12:05:00.5Z"))  # a 5m window
    ev.diff(_ps(0), first, host="h", memory=mem)
    window = ev.diff(
        first,
        _ps(10, _tiny("2026-08-22T13:00:09.5Z")),  # 1h, set by the apply
        host="h",
        memory=mem,
        own_actions=[OwnAction(T0 + timedelta(seconds=9), "tiny:latest", "apply", profile="work")],
    )
    assert [(e.event, e.detail.get("profile")) for e in window] == [("keep_alive_changed", "work")]
    gone = ev.diff(_ps(1, _tiny("2026-08-22T13:00:00.5Z")), _ps(2), host="h", own_actions=[stop])
    assert [(e.event, e.reason, e.detail.get("profile")) for e in gone] == [
        ("unloaded", "stopped", "work")
    ]
    from ollama_resident.why import describe

    assert describe(gone[0]).endswith("by ollama-resident apply work")


def test_a_journal_with_the_polls_load_and_the_apply_reload_tells_one_load(cli: Cli) -> None:
    """Journals written before the watch knew better hold both: a poll's `loaded` by
    `apply` (no profile) and the apply's own `loaded`/`reload`. One line, the apply's."""
    seen = {"since": "2026-08-22T12:00:00.400Z", "expires_at": "2026-08-22T13:00:00.5Z"}
    Journal(journal_path()).record(
        [
            Event(
                T0,
                "h",
                "tiny:latest",
                "loaded",
                "reload",
                {
                    "confidence": "certain",
                    "by": ev.TOOL,
                    "action": "apply",
                    "profile": "work",
                    "keep_alive": "1h",
                    "context_length": 256,
                },
            ),
            Event(
                T0 + timedelta(seconds=0.1),
                "h",
                "tiny:latest",
                "loaded",
                None,
                {
                    "confidence": "certain",
                    "by": ev.TOOL,
                    "action": "apply",
                    "keep_alive": "1h",
                    "context_length": 256,
                    **seen,
                },
            ),
        ]
    )
    shown = cli("journal", "show").stdout.splitlines()
    assert [ln.split("  ", 2)[2] for ln in shown] == [
        "loaded again by the reload: keep-alive 1h, context 256"
    ], shown


# -- 1. a server never seen up is not reached (yet), not "down" ------------------------------


def test_a_server_never_seen_up_is_unreachable_and_only_a_seen_one_goes_down(
    cli: Cli,
) -> None:
    port = closed_port()
    client = OllamaClient(parse_host(f"127.0.0.1:{port}"), timeout=60)
    watcher = Watcher(client, 0.1, client.display_url, journal=Journal(journal_path()), settle_s=0)
    host = client.display_url
    try:
        first = watcher.poll_once()
        assert [e.event for e in first] == ["recording_started", "server_unreachable"]
        assert "connection refused" in first[1].detail["error"]
        assert watcher.poll_once() == []  # said once
        assert not watcher.up and not watcher.answered
        server = FakeOllama(port=port).start()
        try:
            server.preload("tiny", -1)
            up = watcher.poll_once()
            assert [(e.event, e.reason) for e in up] == [
                ("server_up", "first_answer"),
                ("loaded", "already_loaded"),
            ]
            assert up[0].detail["version"] == "0.24.0"
            assert up[0].detail["unreachable_for_s"] > 0
        finally:
            server.stop()
        down = watcher.poll_once()  # answered before: now it is down
        assert [e.event for e in down] == ["server_down"]
        watcher.stop()
    finally:
        client.close()
    kinds = [e.event for e in Journal(journal_path()).read()]
    assert kinds.count("server_down") == 1 and kinds.count("server_unreachable") == 1
    shown = cli("journal", "show").stdout.splitlines()
    words = [ln.split("  ", 1)[1] for ln in shown]
    assert words[1] == f"{host}  could not reach Ollama yet (connection refused)", shown
    assert words[2].startswith(f"{host}  Ollama is answering now (version 0.24.0), after "), shown
    assert words[4] == f"{host}  Ollama is not answering (connection refused)", shown
    assert sum("not answering" in w for w in words) == 1, shown
    # `why` tells the outage the model lived through, and nothing of the time before.
    story = cli("why", "tiny", "--no-server-log", "--host", host).stdout
    assert story.count("  Ollama is not answering (connection refused)   [") == 1, story
    assert "could not reach" not in story and "answering now" not in story, story


def test_guard_once_at_a_server_never_reached_says_so_once_and_journals_no_down(
    cli: Cli,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    run = cli("guard", "tiny", "--host", url, "--once", env={"FORCE_COLOR": "1"})
    assert run.exit_code == 3, run
    lines = re.sub(r"\x1b\[[0-9;]*m", "", run.stderr).splitlines()  # bold, on a terminal
    assert lines[0] == f"error: cannot reach Ollama at {url} (connection refused)", run
    assert "could not reach" not in run.stderr and "still trying" not in run.stderr, run
    kinds = [e.event for e in Journal(journal_path()).read()]
    assert kinds == ["recording_started", "server_unreachable", "recording_stopped"]


def test_a_guard_restore_after_a_first_answer_is_no_restart(isolated_env: Path, cli: Cli) -> None:
    """The first answer of a server never reached is no comeback: its models were not
    loaded, nothing restarted (the guard's restore says "loaded", not "loaded again")."""
    from ollama_resident.durations import KeepAlive
    from ollama_resident.guard import Guard, GuardTarget
    from ollama_resident.residency import LoadRequest

    port = closed_port()
    client = OllamaClient(parse_host(f"127.0.0.1:{port}"), timeout=60)
    watcher = Watcher(client, 0.1, client.display_url, settle_s=0, source="guard")
    guard = Guard(client, [GuardTarget(LoadRequest("tiny", KeepAlive.forever()))], watcher)
    try:
        assert [e.event for e in guard.check()] == ["recording_started", "server_unreachable"]
        with FakeOllama(port=port):
            events = guard.check()
    finally:
        client.close()
    assert ("server_up", "first_answer") in [(e.event, e.reason) for e in events]
    [restored] = [e for e in events if e.event == "restored"]
    assert restored.reason == "not_loaded", events


# -- 2. a line that names its host names it once ---------------------------------------------


def test_without_host_drops_the_server_a_line_names_already() -> None:
    url = "http://gpu-box:11434"
    refused = f"cannot reach Ollama at {url} (connection refused)"
    assert without_host(refused, url) == "cannot reach Ollama (connection refused)"
    assert unreachable_reason(refused, url) == "connection refused"
    late = f"Ollama at {url} accepted the connection but did not answer GET /api/ps within 5s"
    assert (
        without_host(late, url)
        == unreachable_reason(late, url)
        == ("Ollama accepted the connection but did not answer GET /api/ps within 5s")
    )
    proxy = f"not Ollama's answer from {url} to GET /api/ps: HTTP 502 with an HTML page"
    assert without_host(proxy, url) == (
        "not Ollama's answer to GET /api/ps: HTTP 502 with an HTML page"
    )
    assert without_host("model 'x' not found", url) == "model 'x' not found"


def test_a_command_on_several_hosts_names_the_one_it_cannot_reach_once(
    ollama: FakeOllama, cli: Cli
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    run = cli("preload", "tiny", "--host", ollama.url, "--host", dead)
    assert run.exit_code == 1, run
    assert f"{dead}  error: cannot reach Ollama (connection refused)" in run.stderr.splitlines()
    assert run.stderr.count(dead) == 2, run  # the error line and its hint's, once each


def test_guard_lines_of_several_hosts_name_each_host_once() -> None:
    url = "http://gpu-box:11434"
    down = Event(
        T0,
        url,
        None,
        "server_down",
        None,
        {"error": f"cannot reach Ollama at {url} (connection refused)"},
    )
    failed = Event(
        T0,
        url,
        "tiny:latest",
        "restore_failed",
        "not_loaded",
        {
            "error": f"Ollama at {url} accepted the connection but did not answer POST "
            "/api/generate within 10s",
            "retry_in_s": 5,
        },
    )
    when = T0.astimezone().strftime("%H:%M:%S")
    assert render.guard_lines([down, failed], with_host=True) == [
        ("warn", f"{when}  {url}  Ollama is not answering (connection refused); still trying"),
        (
            "failed",
            f"{when}  {url}  tiny:latest  could not load it: Ollama accepted the connection "
            "but did not answer POST /api/generate within 10s; retrying in 5s",
        ),
    ]
    # One host: the server's line is its host's, a model's line its model's.
    assert [line for _level, line in render.guard_lines([down, failed])] == [
        f"{when}  {url}  Ollama is not answering (connection refused); still trying",
        f"{when}  tiny:latest  could not load it: Ollama accepted the connection "
        "but did not answer POST /api/generate within 10s; retrying in 5s",
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_guard_of_two_servers_on_a_terminal_names_the_one_that_went_down_once(
    isolated_env: Path,
) -> None:
    """The real `guard --host A --host B` on a terminal: when B stops answering, its line
    is `HH:MM:SS  warning: B  Ollama is not answering (...)`, B named once."""
    import fcntl
    import pty
    import struct
    import termios

    a, b = FakeOllama().start(), FakeOllama().start()
    leader, follower = pty.openpty()
    # Wide enough that the line is not wrapped: the exact line is asserted.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 200, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    env.update(TERM="xterm-256color", NO_COLOR="1")
    argv = ["guard", "tiny", "--host", a.url, "--host", b.url, "--interval", "0.2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", *argv],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    seen = b""

    def read_until(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 120
        while text not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                seen += os.read(leader, 65536)

    try:
        read_until(f"{b.url}  tiny:latest  loaded".encode())
        b.stop()
        read_until(b"is not answering")
        read_until(b"still trying")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        os.close(leader)
        a.stop()
        b.stop()
    # NO_COLOR removes colour, not bold: the words are compared without it.
    plain = re.sub(r"\x1b\[[0-9;]*m", "", seen.decode().replace("\r\n", "\n"))
    lines = plain.splitlines()
    [down] = [ln for ln in lines if "is not answering" in ln]
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d  warning: {re.escape(b.url)}  Ollama is not answering "
        r"\(connection refused\); still trying",
        down,
    ), lines


def test_why_for_a_server_the_journal_has_nothing_from_does_not_call_it_empty(cli: Cli) -> None:
    a, b = "http://127.0.0.1:11434", "http://gpu-box:11434"
    Journal(journal_path()).record(
        [Event(T0, a, "tiny:latest", "loaded", None, {"confidence": "certain"})]
    )
    story = cli("why", "tiny", "--no-server-log", "--host", b).stdout
    assert "The journal is empty" not in story, story
    assert f"The journal has nothing from {b}: nothing has been recording it." in story, story
    assert f"add --host {a} to see them" in story, story
