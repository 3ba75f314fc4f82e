"""One story from the journal and the server log tells each change once, with what each
source knows (issue 9, "one story"): a journal entry goes with the log fact of its own kind
(a pin reset with a reset, a re-pin with a re-pin), the command of ours that sent a request
stays named beside the request the log shows, a reload is one item, an INFO eviction is told
from the side of each model it may have been, and a request is told by when it was sent."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

import ollamalogs as L
from conftest import Run
from fakeollama import FakeOllama
from ollama_resident import logstory
from ollama_resident.client import OllamaClient
from ollama_resident.durations import KeepAlive
from ollama_resident.guard import Guard, GuardTarget
from ollama_resident.host import parse_host
from ollama_resident.journal import Journal
from ollama_resident.logtimeline import Request
from ollama_resident.paths import journal_path
from ollama_resident.residency import LoadRequest
from ollama_resident.watcher import Watcher

Cli = Callable[..., Run]
ITEM = re.compile(r"^  (\d\d:\d\d:\d\d)  (.*)   \[(.*); (.*)\]$")


@pytest.fixture
def clients() -> Iterator[list[OllamaClient]]:
    made: list[OllamaClient] = []
    yield made
    for c in made:
        c.close()


def _client(server: FakeOllama, made: list[OllamaClient]) -> OllamaClient:
    c = OllamaClient(parse_host(server.url), timeout=60)
    made.append(c)
    return c


def _guard(server: FakeOllama, made: list[OllamaClient]) -> Guard:
    """A guard of tiny (pinned forever) journaling where `why` reads."""
    client = _client(server, made)
    watcher = Watcher(
        client,
        0.2,
        client.display_url,
        journal=Journal(journal_path()),
        settle_s=0.5,
        source="guard",
    )
    return Guard(client, [GuardTarget(LoadRequest("tiny", KeepAlive.forever()))], watcher)


def _reset_pin(server: FakeOllama) -> None:
    httpx.post(
        f"{server.url}/api/generate",
        json={"model": "tiny", "prompt": "hi", "keep_alive": "5m"},
        timeout=60,
    ).raise_for_status()
    server.wait_idle()


def _items(out: str) -> list[tuple[str, str, str]]:
    """(summary, sources, evidence) of each item of a rendered story."""
    told: list[tuple[str, str, str]] = []
    for line in out.splitlines():
        m = ITEM.match(line)
        if m:
            told.append((m.group(2), m.group(4), ""))
        elif told and line.startswith("            - "):
            summary, sources, ev = told[-1]
            told[-1] = (summary, sources, ev + line.strip() + "\n")
    return told


def _check_pairs(items: list[tuple[str, str, str]], resets: int) -> None:
    reset = [i for i in items if i[0].startswith("the pin was reset to 5m")]
    repin = [i for i in items if i[0].startswith("pinned again")]
    assert len(reset) == resets and len(repin) == resets, items
    for summary, sources, evidence in reset:
        # A reset with the journal's reset, never with its re-pin.
        assert sources.startswith("journal, log line"), (summary, sources)
        assert "re-pinned" not in evidence, evidence
    for summary, sources, evidence in repin:
        # The re-pin with the guard's own entry: by the guard, through the log's request.
        assert summary.startswith(
            "pinned again (keep-alive forever, was 5m) by ollama-resident guard "
            "(POST /api/generate from 127.0.0.1 at "
        ), summary
        assert sources.startswith("journal, log line"), (summary, sources)
        assert "the pin was reset" not in evidence, evidence
    # Nothing of the journal's is left alone beside what the log shows.
    alone = [i for i in items if i[1] == "journal" and not i[0].startswith("recording stopped")]
    assert not alone, items


def test_a_pin_reset_and_the_guards_repin_each_pair_with_their_own_kind(
    make_ollama: Callable[..., FakeOllama],
    cli: Cli,
    tmp_path: Path,
    clients: list[OllamaClient],
) -> None:
    log = tmp_path / "server.log"
    server = make_ollama(log_path=str(log), log_debug=True)
    guard = _guard(server, clients)
    guard.check()  # loads and pins it
    for _ in range(2):  # another client resets the pin; the guard re-pins it
        _reset_pin(server)
        guard.check()
    guard.watcher.stop()
    run = cli("why", "tiny", "--server-log", str(log))
    assert run.exit_code == 0, run
    _check_pairs(_items(run.stdout), resets=2)
    assert run.stdout.startswith(
        "tiny:latest: pinned again (keep-alive forever, was 5m) by ollama-resident guard"
    ), run
    # One address pinned and reset it: the journal says the pins were the guard's.
    note = " ".join(run.stdout.split())
    assert (
        "127.0.0.1 both pinned tiny:latest (the pins were ollama-resident guard's) and reset "
        "its pin: the resets came from another program at that address" in note
    ), run


def test_with_a_watch_and_a_guard_recording_each_change_is_told_once(
    make_ollama: Callable[..., FakeOllama],
    cli: Cli,
    tmp_path: Path,
    clients: list[OllamaClient],
) -> None:
    log = tmp_path / "server.log"
    server = make_ollama(log_path=str(log), log_debug=True)
    guard = _guard(server, clients)
    client = _client(server, clients)
    watch = Watcher(client, 0.2, client.display_url, journal=Journal(journal_path()), settle_s=0.5)
    guard.check()
    watch.poll_once()
    for _ in range(2):
        _reset_pin(server)
        watch.poll_once()  # the watch sees the reset first ...
        guard.check()  # ... the guard sees it too and re-pins
        watch.poll_once()  # ... and the watch sees the re-pin
    watch.stop()
    guard.watcher.stop()
    run = cli("why", "tiny", "--server-log", str(log))
    assert run.exit_code == 0, run
    _check_pairs(_items(run.stdout), resets=2)


def test_a_restore_journaled_after_its_loads_timer_pairs_with_the_load(tmp_path: Path) -> None:
    # The load's request ends (the timer line), then the guard gets its answer and
    # journals "restored": the timer between them is part of that load.
    from ollama_resident import why
    from ollama_resident.events import Event
    from ollama_resident.logtimeline import read_timeline

    log = L.Log(debug=True, start=L.START).preamble().start()
    log.load("tiny", count=1, keep_alive=L.FOREVER).ps()
    timeline = read_timeline(lines=log.lines)
    timer = next(f for f in timeline.facts if f.kind == "keep_alive")
    restored = Event(
        timer.time + timedelta(milliseconds=10),
        "http://127.0.0.1:11434",
        "tiny:latest",
        "restored",
        "not_loaded",
        {"by": "ollama-resident", "action": "guard", "keep_alive": "forever"},
    )
    story = why.build_story("tiny", [restored], now=restored.time)
    told = logstory.tell(
        "tiny:latest",
        story,
        timeline,
        matches=lambda f: f.name == "tiny:latest",
        log=logstory.LogInfo("file", "server.log"),
        now=restored.time,
    )
    [load] = [i for i in told.items if i.event in ("loaded", "restored")]
    assert [s["kind"] for s in load.sources] == ["journal", "server_log"], told.items


def test_one_pin_reset_seen_by_a_watch_and_a_guard_is_one_entry() -> None:
    # The guard's poll read the pin its own load set, the watch's a moment later (a new
    # forever deadline): the same reset to the same new deadline, seen by both.
    from ollama_resident import why
    from ollama_resident.events import Event

    t0 = datetime(2026, 11, 29, 21, 54, 24, tzinfo=timezone.utc)
    host = "http://127.0.0.1:11434"

    def reset(ms: int, previous: str) -> Event:
        return Event(
            t0 + timedelta(milliseconds=ms),
            host,
            "tiny:latest",
            "keep_alive_changed",
            "pin_lost",
            {
                "before": "forever",
                "after": "5m",
                "expires_at": "2026-11-29T21:59:24.770615916Z",
                "previous_expires_at": previous,
                "since": "2026-11-29T21:54:24.645Z",
                "confidence": "certain",
            },
        )

    events = [
        reset(771, "2319-03-11T21:41:41.501528198Z"),
        reset(775, "2319-03-11T21:41:41.499801823Z"),
    ]
    story = why.build_story("tiny", events, now=events[-1].time)
    assert [i.summary for i in story.items] == [
        "the pin was reset to about 5m by a request that carried its own keep_alive"
    ]
    # Another new deadline is another change.
    from dataclasses import replace

    other = replace(events[1], detail={**events[1].detail, "expires_at": "2026-11-29T21:59:25Z"})
    assert len(why.build_story("tiny", [events[0], other], now=other.time).items) == 2


def test_a_commands_load_and_its_eviction_name_the_command_and_the_request(
    make_ollama: Callable[..., FakeOllama], cli: Cli, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    make_ollama(max_loaded=1, log_path=str(log), log_debug=True)
    assert cli("profile", "add", "work", "tiny2", "--keep-alive", "10m").exit_code == 0
    assert cli("preload", "tiny").exit_code == 0
    assert cli("apply", "work").exit_code == 0  # the cap is 1: evicts tiny
    plain = cli("why", "tiny", "--no-server-log").stdout
    assert "tiny2:latest was loaded by ollama-resident apply work" in plain, plain
    run = cli("why", "tiny", "--server-log", str(log))
    [evicted] = [i for i in _items(run.stdout) if i[0].startswith("unloaded")]
    summary, sources, evidence = evicted
    assert summary.startswith("unloaded: evicted to make room for tiny2:latest"), run
    assert sources.startswith("journal, log line"), run
    # The command that caused it (the journal) and the request (the log): both.
    assert re.search(
        r"tiny2:latest was asked for by ollama-resident apply work "
        r"\(POST /api/generate from 127\.0\.0\.1 at \d\d:\d\d:\d\d\)",
        evidence,
    ), run
    run = cli("why", "tiny2", "--server-log", str(log), "--json")
    data = json.loads(run.stdout)
    [load] = [i for i in data["items"] if i["event"] == "loaded"]
    assert "by ollama-resident apply work" in load["summary"], load
    assert load["request"]["client"] == "127.0.0.1", load
    assert [s["kind"] for s in load["sources"]] == ["journal", "server_log"]
    # The timer the same request left is the command's too.
    [timer] = [i for i in data["items"] if i["event"] == "keep_alive_changed"]
    assert timer["summary"].startswith(
        "keep-alive set to 10m by ollama-resident apply work (POST /api/generate from 127.0.0.1"
    ), timer


# -- INFO logs, every model ---------------------------------------------------------------


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "server.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _two_evictions() -> list[str]:
    """OLLAMA_MAX_LOADED_MODELS=2 at INFO: tiny, tiny2, then tiny3 and tiny-4k each make room."""
    log = L.Log(debug=False, start=L.START).preamble().start(max_loaded=2)
    log.load("tiny", count=1, keep_alive=L.FOREVER).ps()
    log.load("tiny2", count=2, first=False).ps()
    log.load("tiny3", count=2, first=False).ps()
    log.load("tiny-4k", count=2, first=False, kv=4096).ps()
    return log.lines


def test_info_listing_tells_each_model_its_own_story(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path, _two_evictions())
    run = cli("why", "--server-log", str(path), "--since", "100000h")
    assert run.exit_code == 0, run
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^  (sha256-[0-9a-f]{12})  (.*)$", run.stdout, re.M)
    }
    assert len(rows) == 4, run
    last = "sha256-" + L.BLOBS["tiny-4k"][:12]
    for blob, answer in rows.items():
        # Each line starts with what happened to its own model, never another blob's name.
        assert not answer.startswith("sha256-"), (blob, answer)
        if blob != last:
            assert answer.startswith("perhaps evicted: " + last + " loaded while 2"), answer
            assert blob in answer  # among the ones that may have made room
    assert rows[last].startswith("loaded in "), rows


@pytest.mark.parametrize("debug", [False, True])
def test_a_reload_is_told_once(cli: Cli, tmp_path: Path, debug: bool) -> None:
    path = _write(tmp_path, L.reload(debug))
    model = "tiny-4k" if debug else "sha256-" + L.BLOBS["tiny-4k"][:12]
    data = json.loads(cli("why", model, "--server-log", str(path), "--json").stdout)
    told = [i for i in data["items"] if "reload" in i["summary"] or i["reason"] == "reloaded"]
    assert len(told) == 1, data["items"]
    [reload] = told
    assert reload["summary"].startswith("reloaded with new options: context 4096 -> 2048"), reload
    assert any(e.startswith("the new runner loaded in ") for e in reload["evidence"]), reload
    # One item, resting on the lines of both: the old runner's end and the new one's load.
    [source] = reload["sources"]
    assert len(source["lines"]) >= 2, source
    lines = [s["line"] for i in data["items"] for s in i["sources"]]
    assert len(lines) == len(set(lines)), data["items"]  # no line cited twice


# -- when a request was made ----------------------------------------------------------------


def _request(start: float, end: float) -> Request:
    t0 = datetime(2026, 11, 29, 16, 38, 0, tzinfo=timezone.utc)
    return Request(
        "POST",
        "/api/generate",
        "127.0.0.1",
        t0 + timedelta(seconds=start),
        t0 + timedelta(seconds=end),
        200,
        9,
    )


@pytest.mark.parametrize(
    ("start", "end", "during", "ended", "expected"),
    [
        # gin: 16:38:21, 1.430s; the timer it left at 21.078: sent at 19.648
        (19.570, 21.0, None, 21.078, "sent at 16:38:19, answered at 16:38:21"),
        # gin: 16:38:18, 300 ms; the eviction it caused at 17.72: sent in second 17
        (17.7, 18.0, 17.72, None, "at 16:38:17"),
        # gin: 16:38:24, 311 ms; the load it caused at 24.18: sent in second 24, not 23
        (23.688, 24.0, 24.18, None, "at 16:38:24"),
        # a 0.2 ms stop ended in second 18: sent in second 18, not 17.9998
        (17.9998, 18.0, None, None, "at 16:38:18"),
    ],
)
def test_a_request_is_told_by_when_it_was_sent(
    start: float, end: float, during: Any, ended: Any, expected: str
) -> None:
    t0 = datetime(2026, 11, 29, 16, 38, 0, tzinfo=timezone.utc)

    def at(s: Any) -> Any:
        return t0 + timedelta(seconds=s) if s is not None else None

    req = _request(start, end)
    sent = logstory.sent_at(req, at(during), at(ended))
    assert logstory.request_when(req, timezone.utc, None, sent) == expected


@pytest.mark.parametrize(
    ("scenario", "model", "expected"),
    [
        # a 3.6 s stream: sent during the load's second, answered when it ended
        (
            "08-busy",
            "tiny",
            "by POST /api/generate from 127.0.0.1, sent at 16:37:16, answered at 16:37:20",
        ),
        # the request that made room was sent in the eviction's second, not the answer's
        ("03-eviction", "tiny2", "was asked for by POST /api/generate from 127.0.0.1 at 16:37:"),
    ],
)
def test_story_lines_say_when_the_request_was_sent(
    cli: Cli, tmp_path: Path, scenario: str, model: str, expected: str
) -> None:
    lines = L.SCENARIOS[scenario](True)
    if scenario == "08-busy":
        # The stream's [GIN] line where Ollama writes it: when the answer ends, just
        # before the timer it leaves.
        [gin] = [n for n, line in enumerate(lines) if "3.645867905s" in line]
        stream = lines.pop(gin).replace("16:37:17", "16:37:20")
        timer = next(n for n, line in enumerate(lines) if "duration=2s" in line)
        lines.insert(timer, stream)
    path = _write(tmp_path, lines)
    run = cli("why", model, "--server-log", str(path), env={"TZ": "UTC"})
    assert expected in run.stdout, run
    data = json.loads(cli("why", model, "--server-log", str(path), "--json").stdout)
    for item in data["items"]:
        req = item["request"]
        if req is None:
            continue
        start = datetime.fromisoformat(req["start"])
        end = datetime.fromisoformat(req["end"])
        assert start <= end  # JSON keeps both
        shown = re.search(r"(?:sent )?at (\d\d:\d\d:\d\d)", item["summary"])
        if shown and "by POST" in item["summary"]:
            # The time shown is the start's second (or the next: gin's seconds are cut),
            # never the end's when the answer took a second or more.
            sent = datetime.strptime(shown.group(1), "%H:%M:%S").time()
            assert start.replace(microsecond=0).time() <= sent, item
            assert sent <= (start + timedelta(seconds=1)).time(), item
