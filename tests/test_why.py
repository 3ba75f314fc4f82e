"""``why``: events in words, a model's story from the journal, and Ollama's server log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ollama_resident import why
from ollama_resident.events import Event, Memory, diff, recording_event
from ollama_resident.models import PsSnapshot, RunningModel

UTC = timezone.utc
T0 = datetime(2026, 8, 22, 12, 0, 0, tzinfo=UTC)
HOST = "http://127.0.0.1:11434"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ts(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def model(name: str, expires: str, **kw: Any) -> RunningModel:
    return RunningModel.from_api(
        {
            "name": name,
            "digest": (name.encode().hex() * 8)[:64],
            "size": kw.get("size", 1000),
            "size_vram": kw.get("vram", 0),
            "context_length": kw.get("ctx", 4096),
            "expires_at": expires,
        }
    )


def forever(went_idle: float) -> str:
    return (at(went_idle) + timedelta(days=365 * 292)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def snap(t: float, *models: RunningModel) -> PsSnapshot:
    return PsSnapshot(models=tuple(models), taken_at=at(t))


def ev(t: float, model_name: str | None, event: str, reason: str | None = None, **d: Any) -> Event:
    return Event(at(t), HOST, model_name, event, reason, d)


def started(t: float, pid: int = 1) -> Event:
    return recording_event("recording_started", host=HOST, time=at(t), source="watch", pid=pid)


def stopped(t: float, pid: int = 1) -> Event:
    return recording_event("recording_stopped", host=HOST, time=at(t), source="watch", pid=pid)


def text(events: list[Event], name: str, now: float = 600, **kw: Any) -> str:
    story = why.build_story(name, events, now=at(now), journal="/j.jsonl", tz=UTC, **kw)
    return why.render_story(story, tz=UTC)


def eviction_events() -> list[Event]:
    """A watch sees tiny2 (5m) evicted by qwen2.5:14b while tiny (forever) and tiny3 (1h) stay."""
    mem = Memory(settle_s=0)
    first = snap(
        1,
        model("tiny:latest", forever(0.5)),
        model("tiny3:latest", ts(0.6 + 3600)),
        model("tiny2:latest", ts(0.7 + 300)),
    )
    second = snap(
        61,
        model("tiny:latest", forever(0.5)),
        model("tiny3:latest", ts(0.6 + 3600)),
        model("qwen2.5:14b", ts(60.5 + 300), ctx=32768),
    )
    out = [started(1)]
    out += diff(snap(0), first, host=HOST, memory=mem)
    out += diff(first, second, host=HOST, memory=mem)
    return out


# -- the story -----------------------------------------------------------------------------


def test_an_eviction_is_explained_with_its_evidence() -> None:
    out = text(eviction_events(), "tiny2")
    lines = out.splitlines()
    assert (
        lines[0]
        == "tiny2:latest: unloaded: evicted to make room for qwen2.5:14b (likely) (8m 59s ago)"
    )
    assert "  12:01:01  unloaded: evicted to make room for qwen2.5:14b (likely)" in out
    assert (
        "3 models were resident (limit 3, the default: OLLAMA_MAX_LOADED_MODELS); Ollama evicts "
        "the idle model with the shortest keep-alive; tiny2:latest had 5m "
        "(others: tiny:latest forever, tiny3:latest 1h)"
    ) in out
    assert (
        "qwen2.5:14b appeared in the same interval between two polls (12:00:01 to 12:01:01)" in out
    )
    # newest first: the eviction, then the load
    assert out.index("evicted to make room") < out.index("loaded: keep-alive 5m")
    assert "Journal: /j.jsonl, covering 12:00:01 to 12:01:01" in out


def test_a_story_for_a_model_never_seen_says_what_the_journal_covers() -> None:
    out = text(eviction_events(), "llama3.2")
    assert out.splitlines()[0] == "llama3.2:latest: nothing recorded"
    assert "The journal covers 12:00:01 to 12:01:01 and never saw llama3.2:latest" in out
    assert "`ollama-resident watch` (or `guard`)" in out


def test_an_empty_journal_says_how_to_start_recording() -> None:
    out = text([], "tiny")
    assert "\n\n\n" not in out  # one blank line after "nothing recorded", not two
    assert out.splitlines()[1:3] == ["", out.splitlines()[2]] and out.splitlines()[2]
    assert "The journal is empty: nothing has been recording" in out
    assert "start recording with `ollama-resident watch` (or `guard`)" in out


def test_a_pin_reset_and_an_expiry() -> None:
    mem = Memory(settle_s=0)
    s1 = snap(1, model("tiny:latest", forever(0)))
    s2 = snap(2, model("tiny:latest", ts(1.5 + 300)))
    s3 = snap(302, model("tiny:latest", ts(1.5 + 300)))
    s4 = snap(303)
    events = [started(1)]
    events += diff(None, s1, host=HOST, memory=mem)
    events += diff(s1, s2, host=HOST, memory=mem)
    events += diff(s2, s3, host=HOST, memory=mem)
    events += diff(s3, s4, host=HOST, memory=mem)
    out = text(events, "tiny", now=400)
    assert out.splitlines()[0] == (
        "tiny:latest: unloaded: its keep-alive (5m) ran out while it was idle (1m 37s ago)"
    )
    assert "the pin was reset to about 5m by a request that carried its own keep_alive" in out
    assert "expires_at went from forever to 12:05:01" in out
    assert 'a client that sends its own keep_alive (e.g. "5m")' in out
    assert "already loaded when recording began (pinned forever" in out
    assert "It was already loaded when recording began at 12:00:01" in out
    assert [
        i.event.event for i in why.build_story("tiny", events, now=at(400)).items if i.event
    ] == [
        "unloaded",
        "keep_alive_changed",
        "loaded",
    ]


def test_the_same_unload_seen_by_watch_and_by_the_unload_command_is_told_once() -> None:
    events = [
        started(0),
        ev(1, "tiny:latest", "loaded", None, confidence="certain", keep_alive="5m"),
        ev(
            10.2,
            "tiny:latest",
            "unloaded",
            "stopped",
            confidence="likely",
            since=ts(10.1),
            expires_at=ts(301),
        ),
        ev(
            10.3,
            "tiny:latest",
            "unloaded",
            "stopped",
            confidence="certain",
            by="ollama-resident",
            action="unload",
        ),
    ]
    story = why.build_story("tiny", events, now=at(20))
    unloads = [i for i in story.items if i.event and i.event.event == "unloaded"]
    assert len(unloads) == 1
    assert unloads[0].summary == "unloaded by ollama-resident unload"


def test_a_model_gone_while_nothing_was_recording() -> None:
    events = [
        started(0, pid=1),
        ev(0, "tiny:latest", "loaded", "already_loaded", confidence="certain"),
        stopped(50, pid=1),
        started(100, pid=2),
        ev(130, "tiny:latest", "loaded", None, confidence="certain", keep_alive="5m"),
    ]
    out = text(events, "tiny", now=200)
    assert (
        "went away while nothing was recording (between 12:00:50 and 12:01:40); the journal "
        "cannot say why"
    ) in out
    assert out.splitlines()[0] == (
        "tiny:latest: loaded (last seen 12:02:10). Last departure, 1m 40s ago: went away while "
        "nothing was recording (between 12:00:50 and 12:01:40); the journal cannot say why"
    )
    assert out.index("  12:02:10  loaded") < out.index("  12:01:40  went away while nothing")


def test_a_model_that_survived_the_gap_is_not_repeated() -> None:
    events = [
        started(0, pid=1),
        ev(0, "tiny:latest", "loaded", "already_loaded", confidence="certain"),
        stopped(50, pid=1),
        started(100, pid=2),
        ev(100, "tiny:latest", "loaded", "already_loaded", confidence="certain"),
    ]
    story = why.build_story("tiny", events, now=at(200), tz=UTC)
    assert len(story.items) == 1
    assert not any("nothing was recording" in i.summary for i in story.items)


def test_recording_stopped_while_loaded_is_noted() -> None:
    events = [started(0), ev(1, "tiny:latest", "loaded", None, confidence="certain"), stopped(50)]
    out = text(events, "tiny", now=100)
    assert (
        "Recording stopped at 12:00:50 while it was loaded; the journal has nothing after that"
        in out
    )


def test_entries_only_from_commands_are_flagged() -> None:
    events = [
        ev(
            1,
            "tiny:latest",
            "loaded",
            None,
            confidence="certain",
            by="ollama-resident",
            action="pin",
        )
    ]
    out = text(events, "tiny", now=100)
    assert "loaded by ollama-resident pin" in out
    assert "Only ollama-resident's own commands wrote these entries" in out


def test_story_json_contract() -> None:
    story = why.build_story("tiny2", eviction_events(), now=at(600), journal="/j.jsonl")
    data = why.story_json(story)
    assert set(data) == {
        "schema_version",
        "model",
        "headline",
        "items",
        "notes",
        "journal",
        "host",
        "other_hosts",
        "covers",
    }
    first = data["items"][0]
    assert (first["event"], first["reason"], first["confidence"]) == (
        "unloaded",
        "evicted",
        "likely",
    )
    assert first["detail"]["by_models"] == ["qwen2.5:14b"]
    assert data["covers"] == ["2026-08-22T12:00:01.000Z", "2026-08-22T12:01:01.000Z"]


# -- describe ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e", "expected"),
    [
        (
            ev(0, "m", "unloaded", "expired", confidence="certain", keep_alive="5m"),
            "unloaded: its keep-alive (5m) ran out while it was idle",
        ),
        (
            ev(0, "m", "unloaded", "stopped", confidence="certain"),
            "unloaded: stopped by an explicit unload (keep_alive 0 or `ollama stop`)",
        ),
        (
            ev(0, "m", "unloaded", "stopped", confidence="likely"),
            "unloaded early, most likely stopped by a client (keep_alive 0 or `ollama stop`)",
        ),
        (
            ev(0, "m", "unloaded", "evicted", confidence="guess", by_models=["a", "b"]),
            "unloaded: evicted to make room for a and b (a guess)",
        ),
        (
            ev(
                0,
                "m",
                "unloaded",
                "reloaded",
                confidence="certain",
                pin_lost=True,
                changes={"context_length": [4096, 8192]},
            ),
            "reloaded: context 4096 -> 8192; the pin was lost",
        ),
        (
            ev(0, "m", "unloaded", "server_restart", confidence="likely"),
            "unloaded: the Ollama server restarted (likely)",
        ),
        (
            ev(0, "m", "unloaded", "unknown", confidence="guess"),
            "unloaded; the snapshots do not show why (a guess)",
        ),
        (
            ev(0, "m", "keep_alive_changed", "window_changed", before="5m", after="1h"),
            "keep-alive changed from about 5m to about 1h",
        ),
        (
            ev(
                0,
                "m",
                "keep_alive_changed",
                "pinned",
                before="5m",
                after="forever",
                by="ollama-resident",
                action="pin",
            ),
            "pinned (keep-alive forever, was 5m) by ollama-resident pin",
        ),
        (
            ev(
                0,
                "m",
                "offload_changed",
                "more_on_cpu",
                processor_before="100% GPU",
                processor="40%/60% CPU/GPU",
            ),
            "share on the CPU moved: 100% GPU -> 40%/60% CPU/GPU",
        ),
        (
            ev(0, "m", "busy", "past_deadline", confidence="certain"),
            "busy past its deadline: a request is still running, and the countdown restarts when "
            "it ends",
        ),
        (
            ev(0, None, "server_down", None, error="connection refused"),
            "Ollama is not answering (connection refused)",
        ),
        (
            ev(0, None, "server_unreachable", None, error="connection refused"),
            "could not reach Ollama yet (connection refused)",
        ),
        (
            ev(0, None, "server_up", "first_answer", version="0.24.0", unreachable_for_s=12.0),
            "Ollama is answering now (version 0.24.0), after 12s of trying",
        ),
        (
            ev(0, None, "server_up", None, version="0.24.0", down_for_s=12.0),
            "Ollama is answering again (version 0.24.0) after 12s",
        ),
        (
            ev(0, None, "server_up", "restarted", version="0.25.0", previous_version="0.24.0"),
            "Ollama restarted (version 0.24.0 -> 0.25.0)",
        ),
        (
            ev(0, "m", "loaded", "reload", keep_alive="5m", context_length=256),
            "loaded again by the reload: keep-alive 5m, context 256",
        ),
    ],
)
def test_describe(e: Event, expected: str) -> None:
    assert why.describe(e) == expected


@pytest.mark.parametrize(
    ("e", "expected"),
    [
        (
            ev(0, "m", "restored", "evicted", keep_alive="forever", context_length=512),
            "loaded again by ollama-resident guard (another model had evicted it): pinned "
            "forever, context 512",
        ),
        (
            ev(0, "m", "reasserted", "pin_lost", keep_alive="forever"),
            "re-pinned by ollama-resident guard (a request had reset the pin)",
        ),
        (
            ev(0, "m", "reasserted", "window_changed", keep_alive="1h"),
            "keep-alive set back to 1h by ollama-resident guard (a request had changed its "
            "keep-alive)",
        ),
        (
            ev(0, "m", "restore_failed", "evicted", error="out of memory", retry_in_s=30.0),
            "the guard could not load it again: out of memory; retrying in 30s",
        ),
        (
            ev(0, "m", "conflict", "evicted_by_guarded", by_models=["big:latest"], retry_in_s=8),
            "evicted by big:latest, which the guard also keeps: they do not fit together; "
            "retrying in 8s",
        ),
        (
            ev(0, "m", "recovered", None, after_failures=3),
            "the guard has it loaded again after 3 failed tries",
        ),
    ],
)
def test_describe_guard_events(e: Event, expected: str) -> None:
    assert why.describe(e) == expected


# The server log's part of the story: tests/test_logtimeline.py and tests/test_why_log.py.


def test_a_reload_reads_newest_first_with_the_new_runner_on_top() -> None:
    events = [
        started(0),
        ev(1, "tiny:latest", "loaded", None, confidence="certain", keep_alive="forever"),
        ev(
            5,
            "tiny:latest",
            "unloaded",
            "reloaded",
            confidence="certain",
            pin_lost=True,
            changes={"context_length": [512, 256]},
            keep_alive_after="5m",
        ),
        ev(5, "tiny:latest", "loaded", "reload", confidence="certain", keep_alive="5m"),
    ]
    story = why.build_story("tiny", events, now=at(65), tz=UTC)
    assert [i.summary.split(":")[0] for i in story.items] == [
        "loaded again by the reload",
        "reloaded",
        "loaded",
    ]
    assert story.headline_text(UTC) == (
        "tiny:latest: loaded (last seen 12:00:05). Last departure, 1m 00s ago: reloaded: "
        "context 512 -> 256; the pin was lost"
    )
