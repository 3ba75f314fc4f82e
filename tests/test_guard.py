"""`guard` against the fake server (issue #6): every way residency breaks, restored."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from conftest import Run, reaped, wait_until
from fakeollama import FakeOllama
from ollama_resident import render, why
from ollama_resident.client import OllamaClient
from ollama_resident.durations import KeepAlive
from ollama_resident.events import Event
from ollama_resident.guard import Guard, GuardTarget
from ollama_resident.host import parse_host
from ollama_resident.journal import Journal
from ollama_resident.residency import LoadRequest
from ollama_resident.watcher import Watcher

_clients: list[OllamaClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def _guard(
    server: FakeOllama, *models: str, keep: KeepAlive | None = None, interval: float = 0.2
) -> tuple[Guard, list[Event]]:
    client = OllamaClient(parse_host(server.url), timeout=60)
    _clients.append(client)
    seen: list[Event] = []
    watcher = Watcher(client, interval, server.url, settle_s=0.5, source="guard")
    targets = [GuardTarget(LoadRequest(m, keep or KeepAlive.forever())) for m in models]
    guard = Guard(client, targets, watcher, interval=interval, on_events=seen.extend)
    return guard, seen


class _FrozenClock:
    """The guard's monotonic clock, moved only by the test: back-off without sleeping."""

    def __init__(self, guard: Guard) -> None:
        self.now = 1000.0
        guard.monotonic = lambda: self.now


def _ps(server: FakeOllama) -> dict[str, dict]:
    return {m["name"]: m for m in httpx.get(f"{server.url}/api/ps").json()["models"]}


def _kinds(events: list[Event], model: str | None = None) -> list[tuple[str, str | None]]:
    return [(e.event, e.reason) for e in events if model is None or e.model == model]


def test_first_check_loads_the_set(ollama: FakeOllama):
    guard, events = _guard(ollama, "tiny", "tiny-embed")
    guard.check()
    ps = _ps(ollama)
    assert set(ps) == {"tiny:latest", "tiny-embed:latest"}
    assert all(int(m["expires_at"][:4]) > 2200 for m in ps.values())
    assert ("restored", "not_loaded") in _kinds(events, "tiny:latest")


def test_client_reset_is_reasserted_with_the_same_context(ollama: FakeOllama):
    ollama.preload("tiny", -1, num_ctx=256)
    guard, events = _guard(ollama, "tiny")
    guard.check()
    assert _kinds(events) == [("recording_started", None), ("loaded", "already_loaded")]
    # Another client (same context) sends its own keep_alive: the pin becomes 5 minutes.
    body = {"model": "tiny", "keep_alive": "5m", "options": {"num_ctx": 256}}
    httpx.post(f"{ollama.url}/api/generate", json=body)
    ollama.wait_idle()
    guard.check()
    assert ("reasserted", "pin_lost") in _kinds(events, "tiny:latest")
    [lost] = [e for e in events if e.event == "keep_alive_changed" and e.reason == "pin_lost"]
    assert not lost.by_tool  # the guard's own earlier pin did not reset it: another client did
    tiny = _ps(ollama)["tiny:latest"]
    assert int(tiny["expires_at"][:4]) > 2200
    assert tiny["context_length"] == 256  # same context: no reload
    assert ollama.load_history == ["tiny:latest"]


def test_a_pinned_model_left_alone_costs_one_ps(ollama: FakeOllama):
    ollama.preload("tiny", -1)
    guard, _events = _guard(ollama, "tiny")
    guard.check()
    ollama.clear_requests()
    guard.check()
    assert [(r.method, r.path) for r in ollama.requests] == [("GET", "/api/ps")]


def test_evicted_model_is_restored(make_ollama: Callable[..., FakeOllama]):
    server = make_ollama(max_loaded=1)
    guard, events = _guard(server, "tiny")
    guard.check()
    # Another client loads a model: with room for one, Ollama evicts the pinned tiny.
    httpx.post(f"{server.url}/api/generate", json={"model": "tiny2", "keep_alive": "10m"})
    server.wait_idle()
    assert list(_ps(server)) == ["tiny2:latest"]
    guard.check()
    assert list(_ps(server)) == ["tiny:latest"]
    assert ("restored", "evicted") in _kinds(events, "tiny:latest")
    assert server.load_history == ["tiny:latest", "tiny2:latest", "tiny:latest"]


def test_stopped_model_is_restored(ollama: FakeOllama):
    guard, events = _guard(ollama, "tiny")
    guard.check()
    httpx.post(f"{ollama.url}/api/generate", json={"model": "tiny", "keep_alive": 0})
    wait_until(lambda: "tiny:latest" not in _ps(ollama), what="unload")
    guard.check()
    assert "tiny:latest" in _ps(ollama)
    restored = [e for e in events if e.event == "restored" and e.model == "tiny:latest"]
    assert len(restored) == 2


def test_server_restart_restores_the_set(ollama: FakeOllama):
    guard, events = _guard(ollama, "tiny", "tiny2")
    guard.check()
    ollama.stop()
    guard.check()
    assert ("server_down", None) in _kinds(events)
    assert not guard.watcher.up
    ollama.start()
    guard.check()
    assert set(_ps(ollama)) == {"tiny:latest", "tiny2:latest"}
    assert any(e.event == "server_up" for e in events)
    assert ("restored", "server_restart") in _kinds(events, "tiny:latest")


def test_models_that_cannot_fit_back_off_and_report_once(
    make_ollama: Callable[..., FakeOllama],
):
    server = make_ollama(max_loaded=1)
    guard, events = _guard(server, "tiny", "tiny2", interval=0.05)
    clock = _FrozenClock(guard)
    for _ in range(15):
        guard.check()
    [conflict] = [e for e in events if e.event == "conflict"]  # once, not once per check
    assert "OLLAMA_MAX_LOADED_MODELS" in conflict.detail["advice"]
    assert len(server.load_history) == 2  # no retry while the back-off runs
    assert conflict.detail["retry_in_s"] >= 0.05
    clock.now += conflict.detail["retry_in_s"] + 0.1
    for _ in range(15):
        guard.check()
    conflicts = [e for e in events if e.event == "conflict"]
    assert len(conflicts) <= 2  # once per model at most
    assert len(server.load_history) == 3  # one retry once the back-off ran out, no thrashing


def test_failing_load_backs_off_and_reports_once(ollama: FakeOllama):
    ollama.fail_load("tiny", "llama runner process has terminated: out of memory")
    guard, events = _guard(ollama, "tiny", interval=0.05)
    clock = _FrozenClock(guard)
    for _ in range(10):
        guard.check()
    [failure] = [e for e in events if e.event == "restore_failed"]
    assert "out of memory" in failure.detail["error"]
    assert len(ollama.requests_to("/api/generate", "POST")) == 1  # backing off
    clock.now += failure.detail["retry_in_s"] + 0.1
    for _ in range(10):
        guard.check()
    assert len(ollama.requests_to("/api/generate", "POST")) == 2  # one retry after the wait
    assert len([e for e in events if e.event == "restore_failed"]) == 1  # reported once
    ollama.clear_faults()


def test_finite_window_reset_is_reasserted(ollama: FakeOllama):
    guard, events = _guard(ollama, "tiny", keep=KeepAlive.of_seconds(3600))
    guard.check()
    first = _ps(ollama)["tiny:latest"]["expires_at"]
    guard.check()
    assert _ps(ollama)["tiny:latest"]["expires_at"] == first  # left alone while counting down
    httpx.post(f"{ollama.url}/api/generate", json={"model": "tiny", "keep_alive": "5m"})
    ollama.wait_idle()
    guard.check()
    assert ("reasserted", "window_changed") in _kinds(events, "tiny:latest")


# -- the command ------------------------------------------------------------------------------


def test_once_restores_and_exits_0(ollama: FakeOllama, cli: Callable[..., Run]):
    run = cli("guard", "tiny", "tiny-embed", "--once", "--jsonl", "--no-journal")
    assert run.exit_code == 0, run
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert {(e["model"], e["event"]) for e in lines} >= {
        ("tiny:latest", "restored"),
        ("tiny-embed:latest", "restored"),
    }
    assert all({"time", "host", "model", "event", "reason", "detail"} <= set(e) for e in lines)


def test_once_with_failure_exits_1(ollama: FakeOllama, cli: Callable[..., Run]):
    run = cli("guard", "doesnotexist", "--once", "--no-journal")
    assert run.exit_code == 1
    assert "ollama pull doesnotexist" in run.stderr


@pytest.mark.parametrize("jsonl", [False, True])
def test_once_with_a_conflict_promises_no_retry(
    make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run], jsonl: bool
):
    """`guard --once` retries nothing: neither its words nor its events say it will."""
    make_ollama(max_loaded=1)
    run = cli("guard", "tiny", "tiny2", "--once", "--no-journal", *(["--jsonl"] if jsonl else []))
    assert run.exit_code == 1, run
    assert "cannot all stay loaded" in run.stderr
    assert "retrying" not in run.stderr + run.stdout
    if jsonl:
        events = [json.loads(line) for line in run.stdout.splitlines()]
        [conflict] = [e for e in events if e["event"] == "conflict"]
        assert "retry_in_s" not in conflict["detail"]


def test_once_unreachable_exits_3(cli: Callable[..., Run]):
    run = cli("guard", "tiny", "--once", "--no-journal")
    assert run.exit_code == 3


def test_usage_errors(ollama: FakeOllama, cli: Callable[..., Run]):
    assert cli("guard").exit_code == 2
    assert cli("guard", "tiny", "--profile", "x").exit_code == 2
    assert cli("guard", "tiny", "--for", "1d").exit_code == 2
    assert ollama.requests == []


def test_profile_guard_once(ollama: FakeOllama, cli: Callable[..., Run], tmp_path: Path):
    path = tmp_path / "p.toml"
    path.write_text(
        '[profiles.work]\nkeep_alive = "forever"\n'
        'models = ["tiny", { name = "tiny-embed", keep_alive = "30m" }]\n'
    )
    run = cli("--profiles", str(path), "guard", "--profile", "work", "--once", "--no-journal")
    assert run.exit_code == 0, run
    ps = _ps(ollama)
    assert int(ps["tiny:latest"]["expires_at"][:4]) > 2200
    assert int(ps["tiny-embed:latest"]["expires_at"][:4]) < 2200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_guard_during_its_sleep_with_exit_0(ollama: FakeOllama, sig: int):
    """An hour's interval: only a signal that cuts the sleep short ends it within the wait."""
    env = {**os.environ, "OLLAMA_HOST": ollama.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "guard", "tiny", "--interval", "3600", "--jsonl"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with reaped(proc):
        while "restored" not in proc.stdout.readline():
            assert proc.poll() is None, "guard ended before restoring"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "recording_stopped" in out
    assert "Traceback" not in err


def test_reset_right_after_our_pin_is_blamed_on_the_client(ollama: FakeOllama):
    guard, events = _guard(ollama, "tiny")
    guard.check()  # loads and pins it: this tool's own action, seconds before the reset
    httpx.post(f"{ollama.url}/api/generate", json={"model": "tiny", "keep_alive": "5m"})
    ollama.wait_idle()
    guard.check()
    [lost] = [e for e in events if e.event == "keep_alive_changed" and e.reason == "pin_lost"]
    assert not lost.by_tool
    assert ("reasserted", "pin_lost") in _kinds(events, "tiny:latest")


# -- what the journal keeps, and what `why` then tells (issue 9) -------------------------------


def _journaled_guard(server: FakeOllama, path: Path, *models: str) -> tuple[Guard, Journal]:
    client = OllamaClient(parse_host(server.url), timeout=60)
    _clients.append(client)
    journal = Journal(path)
    watcher = Watcher(client, 0.2, server.url, journal=journal, settle_s=0.5, source="guard")
    targets = [GuardTarget(LoadRequest(m, KeepAlive.forever())) for m in models]
    return Guard(client, targets, watcher, interval=0.2), journal


def _reset_pin(server: FakeOllama, model: str) -> None:
    httpx.post(f"{server.url}/api/generate", json={"model": model, "keep_alive": "5m"})
    server.wait_idle()


def test_the_guards_repin_is_journaled_and_why_ends_with_it(ollama: FakeOllama, tmp_path: Path):
    guard, journal = _journaled_guard(ollama, tmp_path / "j.jsonl", "tiny")
    guard.check()  # loads and pins it
    for _ in range(2):  # a client resets the pin twice; the guard re-pins it each time
        _reset_pin(ollama, "tiny")
        guard.check()
    events = journal.read()
    kinds = _kinds(events, "tiny:latest")
    assert kinds.count(("reasserted", "pin_lost")) == 2
    assert kinds.count(("keep_alive_changed", "pin_lost")) == 2
    # the guard's own re-pins, as its polls saw them: none hidden as "journaled already"
    assert kinds.count(("keep_alive_changed", "pinned")) == 2
    assert ("restored", "not_loaded") in kinds
    assert {e.detail.get("action") for e in events if e.by_tool} == {"guard"}

    story = why.build_story("tiny", events, now=events[-1].time)
    summaries = [i.summary for i in story.items]
    assert summaries[0] == "re-pinned by ollama-resident guard (a request had reset the pin)"
    assert summaries[1].startswith("the pin was reset to about 5m by a request")
    assert summaries.count(summaries[0]) == 2  # each re-pin told once, its poll's twin merged
    assert summaries[-1].startswith("loaded by ollama-resident guard (it was not loaded)")
    assert story.headline.startswith("tiny:latest: re-pinned by ollama-resident guard")


def test_a_client_stop_is_told_as_a_stop_and_the_guards_restore_ends_the_story(
    ollama: FakeOllama, tmp_path: Path
):
    guard, journal = _journaled_guard(ollama, tmp_path / "j.jsonl", "tiny")
    guard.check()
    httpx.post(f"{ollama.url}/api/generate", json={"model": "tiny", "keep_alive": 0})
    wait_until(lambda: "tiny:latest" not in _ps(ollama), what="unload")
    guard.check()  # sees it gone, loads it again, and polls once more
    events = journal.read()
    kinds = _kinds(events, "tiny:latest")
    assert ("unloaded", "stopped") in kinds
    assert ("unloaded", "reloaded") not in kinds  # same digest, loaded back by us: no reload
    # the guard says what why will say: not "evicted or stopped" but the settled cause
    [restored] = [e for e in events if e.event == "restored" and e.reason != "not_loaded"]
    assert (restored.reason, restored.detail["gone_confidence"]) == ("stopped", "likely")
    assert render.guard_event_text(restored).endswith(
        "(most likely a client stopped it: keep_alive 0 or `ollama stop`)"
    )
    story = why.build_story("tiny", events, now=events[-1].time)
    text = why.render_story(story)
    assert story.items[0].summary.startswith(
        "loaded again by ollama-resident guard (most likely a client had stopped it)"
    )
    assert story.items[1].summary.startswith("unloaded early, most likely stopped by a client")
    assert "align the options" not in text
    assert "ollama-resident guard loaded it again afterwards" in text
    assert story.headline.startswith("tiny:latest: loaded (last seen")
    assert "Last departure" in story.headline and "stopped by a client" in story.headline


def test_on_a_terminal_one_line_per_action_in_time_order_naming_every_model(
    make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run]
):
    server = make_ollama(max_loaded=2)
    server.preload("tiny3", "5m")
    server.preload("tiny-embed", "10m")
    # A terminal without colour: the human form, not JSON lines.
    run = cli("guard", "tiny", "tiny2", "--once", "--no-journal", env={"FORCE_COLOR": "1"})
    assert run.exit_code == 0, run
    assert run.stdout == ""
    lines = [line.removeprefix("warning: ") for line in run.stderr.splitlines()]
    actions = [line for line in lines if "  tiny:latest  " in line or "  tiny2:latest  " in line]
    tiny = [line for line in actions if "  tiny:latest  " in line]
    tiny2 = [line for line in actions if "  tiny2:latest  " in line]
    # The first load is a load, not "loaded again (it was not loaded)"; one line each.
    assert len(tiny) == 1 and "  tiny:latest  loaded in " in tiny[0], run
    assert len(tiny2) == 1 and "  tiny2:latest  loaded in " in tiny2[0], run
    assert "again" not in run.stderr and "it was not loaded" not in run.stderr
    # Each load names what it evicted: Ollama drops the shortest keep-alive first.
    assert tiny[0].endswith("pinned forever; evicted tiny3:latest to make room"), run
    assert tiny2[0].endswith("pinned forever; evicted tiny-embed:latest to make room"), run
    assert "loaded by ollama-resident guard" not in run.stderr  # the watcher's echo
    assert "evicted to make room for" not in run.stderr  # said in the load's own line
    times = [line[:8] for line in lines if re.match(r"\d\d:\d\d:\d\d  ", line)]
    assert len(times) >= 4
    assert times == sorted(times)


def test_two_guarded_models_that_evict_each_other_back_off_growing(
    make_ollama: Callable[..., FakeOllama],
):
    server = make_ollama(max_loaded=1)
    guard, _events = _guard(server, "tiny", "tiny2", interval=0.05)
    clock = _FrozenClock(guard)
    guard.check()  # loads both: the second evicts the first
    swaps: list[float] = []  # the frozen clock at each new load
    start = clock.now
    while len(swaps) < 6 and clock.now - start < 200:
        loads = len(server.load_history)
        guard.check()
        if len(server.load_history) > loads:
            swaps.append(clock.now)
        clock.now += 0.25
    gaps = [b - a for a, b in itertools.pairwise(swaps)]
    assert len(gaps) == 5
    # Each model's own back-off doubles (1 s, 2 s, 4 s...), the two taking turns.
    assert gaps == sorted(gaps) and gaps[-1] >= 4 * gaps[0]


def test_an_eviction_loop_is_reported_once_and_nobody_is_resident_again(
    make_ollama: Callable[..., FakeOllama],
):
    # The trial: guard tiny tiny2 tiny3 with OLLAMA_MAX_LOADED_MODELS=2 warned at every swap,
    # each time after "tiny2:latest resident again after earlier failures".
    server = make_ollama(max_loaded=2)
    guard, events = _guard(server, "tiny", "tiny2", "tiny3", interval=0.05)
    clock = _FrozenClock(guard)
    for _ in range(8):
        guard.check()
        guard.check()
        clock.now += 700  # past any back-off: the models swap again
    assert len(server.load_history) >= 8  # they did swap, again and again
    assert len([e for e in events if e.event == "conflict"]) == 1
    assert [e for e in events if e.event == "recovered"] == []
    seen: set[str] = set()
    lines = [line for _level, line in render.guard_lines(events, seen)]
    assert sum("cannot all stay loaded" in line for line in lines) == 1
    assert not any("resident again" in line for line in lines)


def test_an_eviction_loop_that_ends_is_over_and_a_new_one_is_reported(
    make_ollama: Callable[..., FakeOllama],
):
    server = make_ollama(max_loaded=1)
    guard, events = _guard(server, "tiny", "tiny2", interval=0.05)
    clock = _FrozenClock(guard)
    guard.check()
    assert len([e for e in events if e.event == "conflict"]) == 1
    server.max_loaded = 2  # the situation changes: room for both
    clock.now += 700
    guard.check()
    guard.check()
    assert set(_ps(server)) == {"tiny:latest", "tiny2:latest"}
    assert [e.event for e in events].count("recovered") == 1
    server.max_loaded = 1
    httpx.post(f"{server.url}/api/generate", json={"model": "tiny3", "keep_alive": "1h"})
    clock.now += 700
    for _ in range(3):
        guard.check()
    assert len([e for e in events if e.event == "conflict"]) == 2  # a new episode, said again


def test_guard_once_journals_its_restore(ollama: FakeOllama, cli: Callable[..., Run]):
    from ollama_resident.journal import read

    assert cli("guard", "tiny", "--once", "--jsonl").exit_code == 0
    events = read()
    assert ("restored", "not_loaded") in _kinds(events, "tiny:latest")
    assert {e.detail.get("action") for e in events if e.by_tool} == {"guard"}
    story = why.build_story("tiny", events, now=events[-1].time)
    # --once records one check: the recording ends at once, with the model loaded
    assert [i.summary.split(":")[0] for i in story.items] == [
        "recording stopped while it was loaded; the journal has nothing after that",
        "loaded by ollama-resident guard (it was not loaded)",
    ]


def test_guard_loads_carry_the_time_each_load_finished(
    make_ollama: Callable[..., FakeOllama], tmp_path: Path
):
    """Two 1.5 s loads in one pass: each journaled when it finished, not at the pass's end
    (the issue: guard's `loaded` at 19:52:11 for a load the log shows done at 19:52:10)."""
    from ollama_resident.logtimeline import read_timeline

    log = tmp_path / "server.log"
    server = make_ollama(load_delay=1.5, log_path=str(log), log_debug=True)
    guard, events = _guard(server, "tiny", "tiny2")
    guard.check()
    acted = {e.model: e for e in events if e.detail.get("source") == "guard"}
    tl = read_timeline(lines=log.read_text(encoding="utf-8").splitlines())
    loaded = {f.name: f.time for f in tl.facts if f.kind == "loaded"}
    # tiny's load finished before tiny2's began: its entry is before tiny2's load in the log.
    assert loaded["tiny:latest"] <= acted["tiny:latest"].time < loaded["tiny2:latest"]
    assert acted["tiny2:latest"].time >= loaded["tiny2:latest"]


def test_a_failure_line_keeps_the_clock_first(
    make_ollama: Callable[..., FakeOllama], cli: Callable[..., Run]
):
    # The trial: "warning: HH:MM:SS  HOST ..." broke the time column; the clock comes first.
    make_ollama(max_loaded=1)
    env = {"FORCE_COLOR": "1", "NO_COLOR": "1"}
    run = cli("guard", "tiny", "tiny2", "--once", "--no-journal", env=env)
    assert run.exit_code == 1, run
    plain = re.sub(r"\x1b\[[0-9;]*m", "", run.stderr)  # bold stays under NO_COLOR
    [line] = [line for line in plain.splitlines() if "error: " in line]
    assert re.match(r"\d\d:\d\d:\d\d  error: tiny2:latest  loaded in ", line), run
    assert "cannot all stay loaded" in run.stderr


def test_a_server_not_reached_is_warned_with_the_clock_first(tmp_path: Path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connection refused
    env = {
        **os.environ,
        **{"OLLAMA_HOST": f"127.0.0.1:{port}", "FORCE_COLOR": "1", "NO_COLOR": "1"},
        "COLUMNS": "300",  # one line, not wrapped
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "guard", "tiny", "--interval", "3600"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    with reaped(proc):
        line = ""
        while "could not reach" not in line:
            line = re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr.readline())
            assert line, "guard ended before warning"
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    assert re.match(rf"\d\d:\d\d:\d\d  warning: http://127.0.0.1:{port}  could not reach", line)
