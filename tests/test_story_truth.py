"""``why`` tells the truth about sequences the journal sees (issue 9, item 6).

Each test drives the fake Ollama the way other clients would, records with a real
:class:`Watcher` into a real journal (polled by the test, so nothing depends on timing), and
asserts what ``why`` then says.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import generate_in_background, wait_busy, wait_until
from fakeollama import FakeOllama
from ollama_resident import why
from ollama_resident.client import OllamaClient
from ollama_resident.events import Event
from ollama_resident.host import parse_host
from ollama_resident.journal import Journal
from ollama_resident.watcher import Watcher


class Recorder:
    """A watch recording into a journal; the test decides when it polls."""

    def __init__(self, server: FakeOllama, path: Path, *, settle_s: float = 0.5) -> None:
        self.client = OllamaClient(parse_host(server.url), timeout=60)
        self.journal = Journal(path)
        self.watcher = Watcher(
            self.client, 0.1, self.client.display_url, journal=self.journal, settle_s=settle_s
        )
        self.events: list[Event] = []

    def poll(self) -> list[Event]:
        new = self.watcher.poll_once()
        self.events.extend(new)
        return new

    def poll_until(self, match: Callable[[Event], bool], what: str, timeout: float = 60) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            for e in self.poll():
                if match(e):
                    return e
            assert time.monotonic() < deadline, f"{what}: not seen in {self.kinds()}"
            time.sleep(0.02)

    def kinds(self, model: str | None = None) -> list[tuple[Any, ...]]:
        return [
            (e.event, e.reason)
            for e in self.events
            if e.model is not None and (model is None or e.model == model)
        ]

    def story(self, model: str) -> why.Story:
        self.events.extend(self.watcher.stop())
        recorded = self.journal.read()
        return why.build_story(model, recorded, now=recorded[-1].time)

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def recorder(ollama: FakeOllama) -> Iterator[Recorder]:
    from ollama_resident.paths import journal_path

    r = Recorder(ollama, journal_path())  # the journal the commands write too
    try:
        yield r
    finally:
        r.close()


def _post(server: FakeOllama, path: str, **body: Any) -> None:
    httpx.post(f"{server.url}{path}", json=body, timeout=60).raise_for_status()


def _is(model: str, event: str, reason: str | None = None) -> Callable[[Event], bool]:
    return lambda e: (
        e.model == model and e.event == event and (reason is None or e.reason == reason)
    )


# -- a busy model stopped twice ------------------------------------------------------------


def test_a_busy_pinned_model_stopped_twice_is_stopping_then_stopped(
    ollama: FakeOllama, recorder: Recorder
) -> None:
    ollama.preload("tiny", -1)
    recorder.poll()
    ollama.hold_requests("tiny")  # a generation that runs until released below
    worker = generate_in_background(ollama, "tiny", tokens=4)
    wait_busy(ollama, "tiny:latest")
    _post(ollama, "/api/generate", model="tiny", keep_alive=0)  # stop 1
    recorder.poll_until(_is("tiny:latest", "busy", "stopping"), "the first stop")
    _post(ollama, "/api/generate", model="tiny", keep_alive=0)  # stop 2, the model still busy
    [runner] = ollama.loaded()
    second_stop = runner["expires_at"]
    # Poll on until the second stop moment is well past (a busy model's grace), as a
    # watch would while the request runs on.
    wait_until(
        lambda: bool(recorder.poll() or True) and time.time_ns() - second_stop > 1.5e9,
        timeout=60,
        what="polls past the second stop",
    )
    ollama.release_requests()  # the generation ends: the model goes
    recorder.poll_until(_is("tiny:latest", "unloaded"), "the unload")
    worker.join(timeout=60)

    assert recorder.kinds("tiny:latest") == [
        ("loaded", "already_loaded"),
        ("busy", "stopping"),
        ("unloaded", "stopped"),
    ]
    story = recorder.story("tiny")
    text = why.render_story(story)
    assert story.items[0].summary == (
        "unloaded: stopped by an explicit unload (keep_alive 0 or `ollama stop`)"
    )
    assert story.items[1].summary.startswith("stopping: an unload was asked for")
    assert "busy past its deadline" not in text
    assert "the pin was reset" not in text


# -- a reload loop -------------------------------------------------------------------------


def test_a_reload_loop_shows_every_reload_and_counts_them(
    ollama: FakeOllama, recorder: Recorder, cli: Callable[..., Any]
) -> None:
    # Two clients take turns: one asks for num_ctx 256, the other leaves it to the model.
    recorder.poll()
    for n in range(4):
        options = {"num_ctx": 256} if n % 2 else {}
        _post(ollama, "/api/chat", model="tiny", messages=[], options=options)
        ollama.wait_idle()
        if n == 0:
            recorder.poll_until(_is("tiny:latest", "loaded"), "the first load")
        else:
            recorder.poll_until(_is("tiny:latest", "unloaded", "reloaded"), f"reload {n}")
    assert recorder.kinds("tiny:latest").count(("unloaded", "reloaded")) == 3
    story = recorder.story("tiny")
    reloads = [i for i in story.items if i.event and i.event.reason == "reloaded"]
    assert [i.summary.split(";")[0] for i in reloads] == [
        "reloaded: context 512 -> 256",
        "reloaded: context 256 -> 512",
        "reloaded: context 512 -> 256",
    ]
    first, last = reloads[-1].time, reloads[0].time
    clock = why._clock  # the story's own clock format
    assert (
        f"Reloaded 3 times between {clock(first)} and {clock(last)}, alternating context 512 "
        "and 256" in why.render_story(story)
    )
    # The command tells it the same way, newest first: the new runner above the reload.
    out = cli("why", "tiny", "--no-server-log").stdout
    assert out.startswith("tiny:latest: loaded (last seen "), out
    assert "Last departure" in out.splitlines()[0] and "reloaded: context 512 -> 256" in out
    told = [
        line[12:]
        for line in out.splitlines()
        if re.match(r"  \d\d:\d\d:\d\d  ", line) and "recording stopped" not in line
    ]
    assert told[0].startswith("loaded again by the reload")
    assert told[1].startswith("reloaded: context 512 -> 256")
    assert "Reloaded 3 times between" in out


def test_one_reload_seen_by_a_watch_and_a_guard_is_told_once() -> None:
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 8, 22, 12, 0, tzinfo=timezone.utc)
    host = "http://127.0.0.1:11434"

    def reload(seconds: float, expires: str, ctx: list[int]) -> Event:
        detail = {
            "confidence": "certain",
            "since": "2026-08-22T12:00:00.000Z",
            "changes": {"context_length": ctx},
            "expires_at": expires,
        }
        return Event(
            t0 + timedelta(seconds=seconds), host, "tiny:latest", "unloaded", "reloaded", detail
        )

    same = [
        reload(1.0, "2026-08-22T12:05:00Z", [512, 256]),
        reload(1.3, "2026-08-22T12:05:00Z", [512, 256]),
    ]
    story = why.build_story("tiny", same, now=t0 + timedelta(seconds=5))
    assert len(story.items) == 1
    # one recorder, two reloads with the same change a few seconds apart: two reloads
    two = [
        reload(1.0, "2026-08-22T12:05:00Z", [512, 256]),
        reload(6.0, "2026-08-22T12:05:04Z", [512, 256]),
    ]
    story = why.build_story("tiny", two, now=t0 + timedelta(seconds=9))
    assert len(story.items) == 2


# -- two servers in one journal ------------------------------------------------------------


def test_why_tells_one_servers_story_and_names_the_others(
    make_ollama: Callable[..., FakeOllama], cli: Callable[..., Any]
) -> None:
    other = make_ollama()
    assert cli("pin", "llama3.2", "--host", other.url).exit_code == 0
    here = make_ollama()  # OLLAMA_HOST now points here
    assert cli("preload", "llama3.2").exit_code == 0
    out = cli("why", "llama3.2").stdout
    assert "loaded by ollama-resident preload" in out
    assert "loaded by ollama-resident pin" not in out  # the other server's load stays out
    assert (
        f"Told for {here.url}. The journal also has entries for llama3.2:latest from "
        f"{other.url}: add --host {other.url} to see them."
    ) in out
    there = cli("why", "llama3.2", "--host", other.url).stdout
    assert "loaded by ollama-resident pin" in there
    assert "loaded by ollama-resident preload" not in there
    data = __import__("json").loads(cli("why", "llama3.2", "--json").stdout)
    assert (data["host"], data["other_hosts"]) == (here.url, [other.url])


def test_a_story_from_every_server_names_each_items_server() -> None:
    from datetime import datetime, timezone

    t = datetime(2026, 8, 22, 12, 0, tzinfo=timezone.utc)
    events = [
        Event(t, "http://a:11434", "tiny:latest", "loaded", None, {"confidence": "certain"}),
        Event(t, "http://b:11434", "tiny:latest", "loaded", None, {"confidence": "certain"}),
    ]
    story = why.build_story("tiny", events, now=t)
    assert sorted(i.summary for i in story.items) == [
        "loaded (on http://a:11434)",
        "loaded (on http://b:11434)",
    ]
    assert "These entries come from 2 servers: http://a:11434 and http://b:11434." in story.notes


# -- recording gaps ------------------------------------------------------------------------


def test_a_recording_that_stopped_is_placed_in_time_and_later_entries_are_not_denied(
    ollama: FakeOllama, recorder: Recorder, cli: Callable[..., Any]
) -> None:
    ollama.preload("tiny", "10m")
    recorder.poll()
    recorder.events.extend(recorder.watcher.stop())  # the watch ends; tiny is still loaded
    assert cli("pin", "tiny").exit_code == 0  # later, the pin command journals its change
    recorded = recorder.journal.read()
    story = why.build_story("tiny", recorded, now=recorded[-1].time)
    summaries = [i.summary for i in story.items]
    assert summaries[0].startswith("pinned (keep-alive forever, was ")
    assert summaries[0].endswith(") by ollama-resident pin")
    assert summaries[1] == (
        "recording stopped while it was loaded; only ollama-resident's own commands wrote "
        "entries after that"
    )
    assert summaries[2].startswith("already loaded when recording began")
    text = why.render_story(story)
    assert "nothing after that" not in text
    assert story.headline.startswith("tiny:latest: pinned (keep-alive forever")
    assert why.story_json(story)["items"][1]["event"] == "recording_stopped"


def test_nothing_after_that_when_nothing_came_after(ollama: FakeOllama, recorder: Recorder) -> None:
    ollama.preload("tiny", "10m")
    recorder.poll()
    story = recorder.story("tiny")
    assert story.items[0].summary == (
        "recording stopped while it was loaded; the journal has nothing after that"
    )
    assert story.headline.startswith("tiny:latest: already loaded when recording began")
    assert any("the journal has nothing after that" in n for n in story.notes)


def test_two_recorders_seeing_one_change_tell_it_once(
    ollama: FakeOllama, recorder: Recorder
) -> None:
    from ollama_resident.paths import journal_path

    second = Recorder(ollama, journal_path())  # a guard's watcher beside the watch
    try:
        ollama.preload("tiny", -1)
        recorder.poll()
        second.poll()
        _post(ollama, "/api/generate", model="tiny", keep_alive="5m")
        ollama.wait_idle()
        recorder.poll_until(_is("tiny:latest", "keep_alive_changed", "pin_lost"), "the reset")
        second.poll_until(_is("tiny:latest", "keep_alive_changed", "pin_lost"), "the reset")
        second.watcher.stop()
        recorded = recorder.journal.read()
        assert [e.reason for e in recorded if e.event == "keep_alive_changed"] == [
            "pin_lost",
            "pin_lost",
        ]
        story = recorder.story("tiny")
        resets = [i for i in story.items if i.event and i.event.reason == "pin_lost"]
        assert len(resets) == 1
    finally:
        second.close()
