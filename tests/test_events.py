"""The classifier: snapshot pairs for every reason, with the server's clock off by ±50 ms.

Snapshots are stamped with the local time they were taken; ``expires_at`` values are the
server's, which runs ``skew`` seconds ahead of (or behind) ours. Each rule must give the
same answer for every skew: a naive "expires_at < now" does not.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ollama_resident import events as ev
from ollama_resident.events import Event, Memory, OwnAction, Window, diff
from ollama_resident.models import PsSnapshot, RunningModel
from ollama_resident.residency import LoadOutcome, UnloadOutcome

UTC = timezone.utc
T0 = datetime(2026, 8, 22, 12, 0, 0, tzinfo=UTC)
HOST = "http://127.0.0.1:11434"
SKEWS = [-0.05, 0.0, 0.05]
FOREVER = timedelta(days=365 * 292)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def server_time(seconds: float, skew: float) -> str:
    """A server timestamp (RFC 3339 with nanoseconds, as Go writes it) ``skew`` s off ours."""
    t = at(seconds + skew)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}123Z"


def model(
    name: str,
    expires: str,
    *,
    ctx: int = 4096,
    size: int = 1_000_000,
    vram: int = 0,
    digest: str | None = None,
) -> RunningModel:
    return RunningModel.from_api(
        {
            "name": name,
            "model": name,
            "size": size,
            "digest": digest or (name.encode().hex() * 8)[:64],
            "expires_at": expires,
            "size_vram": vram,
            "context_length": ctx,
        }
    )


def pinned(name: str, went_idle: float, skew: float = 0.0, **kw: Any) -> RunningModel:
    t = at(went_idle + skew) + FOREVER
    return model(name, t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "854Z", **kw)


def snap(t: float, *models: RunningModel) -> PsSnapshot:
    return PsSnapshot(models=tuple(models), taken_at=at(t))


def kinds(events: list[Event]) -> list[tuple[str | None, str, str | None]]:
    return [(e.model, e.event, e.reason) for e in events]


def one(events: list[Event], event: str, model_name: str | None = None) -> Event:
    found = [
        e for e in events if e.event == event and (model_name is None or e.model == model_name)
    ]
    assert len(found) == 1, kinds(events)
    return found[0]


# -- loaded ------------------------------------------------------------------------------------


@pytest.mark.parametrize("skew", SKEWS)
def test_a_new_model_is_loaded_with_its_window_inferred(skew: float) -> None:
    # went idle at 0.7 with a 5m keep-alive; polls at 0 and 1
    curr = snap(1.0, model("tiny:latest", server_time(0.7 + 300, skew), ctx=512))
    events = diff(snap(0.0), curr, host=HOST)
    e = one(events, "loaded")
    assert (e.model, e.reason, e.confidence) == ("tiny:latest", None, "certain")
    assert e.detail["keep_alive"] == "5m"
    assert e.detail["keep_alive_s"] == 300.0
    assert e.detail["context_length"] == 512
    assert e.detail["since"] == "2026-08-22T12:00:00.000Z"
    assert e.host == HOST


def test_a_pinned_newcomer_reads_forever() -> None:
    events = diff(snap(0.0), snap(1.0, pinned("tiny:latest", 0.5)), host=HOST)
    assert one(events, "loaded").detail["keep_alive"] == "forever"


def test_the_first_snapshot_lists_models_as_already_loaded_with_a_lower_bound() -> None:
    curr = snap(10.0, model("a:latest", server_time(10 + 250, 0)), pinned("b:latest", 1))
    events = diff(None, curr, host=HOST)
    assert kinds(events) == [
        ("a:latest", "loaded", "already_loaded"),
        ("b:latest", "loaded", "already_loaded"),
    ]
    # 250 s left says "at least 4m": the window itself is unknown
    assert events[0].detail["keep_alive"] == "at least 4m"
    assert events[1].detail["keep_alive"] == "forever"


# -- unloaded: expired ---------------------------------------------------------------------


@pytest.mark.parametrize("skew", SKEWS)
def test_gone_at_its_deadline_is_expired(skew: float) -> None:
    # The deadline is 20 ms before our poll by the server's clock; with the server 50 ms
    # ahead it is 30 ms *after* our poll by ours. Still an expiry.
    prev = snap(0.0, model("tiny:latest", server_time(0.98, skew)))
    events = diff(prev, snap(1.0), host=HOST)
    e = one(events, "unloaded")
    assert (e.reason, e.confidence) == ("expired", "certain")


def test_expired_with_a_newcomer_is_only_likely() -> None:
    prev = snap(0.0, model("tiny:latest", server_time(0.9, 0)))
    curr = snap(1.0, model("big:latest", server_time(300.8, 0)))
    e = one(diff(prev, curr, host=HOST), "unloaded")
    assert (e.reason, e.confidence) == ("expired", "likely")
    assert e.detail["newcomers"] == ["big:latest"]


# -- unloaded: stopped ---------------------------------------------------------------------


@pytest.mark.parametrize("skew", SKEWS)
def test_expires_at_moved_back_to_the_stop_moment_is_a_stop(skew: float) -> None:
    mem = Memory(settle_s=10)
    prev = snap(0.0, model("tiny:latest", server_time(250, skew)))
    # A request is running; `ollama stop` at 0.99 moves expires_at to that moment
    # (30 ms *ahead* of our poll by our clock when skew is +50 ms).
    busy = snap(1.0, model("tiny:latest", server_time(0.99, skew)))
    events = diff(prev, busy, host=HOST, memory=mem)
    e = one(events, "busy")
    assert (e.reason, e.confidence) == ("stopping", "certain")
    assert not [x for x in events if x.event == "keep_alive_changed"]
    gone = diff(busy, snap(3.0), host=HOST, memory=mem)
    e = one(gone, "unloaded")
    assert (e.reason, e.confidence) == ("stopped", "certain")
    assert e.detail["evidence"] == "expires_at_moved_to_stop"
    assert not mem.pending


@pytest.mark.parametrize("skew", SKEWS)
def test_a_second_stop_of_a_busy_pinned_model_is_still_the_stop(skew: float) -> None:
    """Pinned and generating; `keep_alive: 0` twice, 2 s apart; the request ends later."""
    mem = Memory(settle_s=10)
    s0 = snap(0.0, pinned("tiny:latest", -60, skew))
    s1 = snap(1.0, model("tiny:latest", server_time(0.9, skew)))  # stop 1 at 0.9
    s2 = snap(3.0, model("tiny:latest", server_time(2.9, skew)))  # stop 2: moved *later*
    s3 = snap(5.0, model("tiny:latest", server_time(2.9, skew)))  # 2 s past it, still busy
    s4 = snap(6.0)  # its request ended: gone
    out = []
    for prev, curr in ((s0, s1), (s1, s2), (s2, s3), (s3, s4)):
        out += diff(prev, curr, host=HOST, memory=mem)
    assert kinds(out) == [
        ("tiny:latest", "busy", "stopping"),
        ("tiny:latest", "unloaded", "stopped"),
    ]
    gone = one(out, "unloaded")
    assert gone.confidence == "certain"
    assert gone.detail["stopped_at"] == server_time(2.9, skew)


@pytest.mark.parametrize("skew", SKEWS)
def test_a_stop_of_a_model_busy_past_its_deadline_moves_expires_at_later(skew: float) -> None:
    mem = Memory(settle_s=10)
    s0 = snap(0.0, model("tiny:latest", server_time(-5, skew)))  # busy, 5 s past its deadline
    s1 = snap(1.0, model("tiny:latest", server_time(0.95, skew)))  # stopped at 0.95
    out = diff(s0, s1, host=HOST, memory=mem)
    assert kinds(out) == [("tiny:latest", "busy", "stopping")]
    out = diff(s1, snap(2.0), host=HOST, memory=mem)
    assert (one(out, "unloaded").reason, one(out, "unloaded").confidence) == ("stopped", "certain")


def test_gone_early_while_idle_with_nothing_new_is_likely_a_stop() -> None:
    prev = snap(0.0, model("tiny:latest", server_time(200, 0)))
    e = one(diff(prev, snap(1.0), host=HOST), "unloaded")
    assert (e.reason, e.confidence) == ("stopped", "likely")
    assert e.detail["evidence"] == "gone_early_no_newcomer"
    assert e.detail["early_by_s"] == pytest.approx(199.0, abs=0.01)


def test_the_tools_own_unload_is_a_certain_stop_by_it() -> None:
    prev = snap(0.0, model("tiny:latest", server_time(200, 0)))
    own = [OwnAction(at(0.5), "tiny", "unload")]
    e = one(diff(prev, snap(1.0), host=HOST, own_actions=own), "unloaded")
    assert (e.reason, e.confidence) == ("stopped", "certain")
    assert e.detail["by"] == "ollama-resident"
    assert e.by_tool


def test_an_old_own_action_does_not_count() -> None:
    prev = snap(100.0, model("tiny:latest", server_time(300, 0)))
    own = [OwnAction(at(10), "tiny", "unload")]
    e = one(diff(prev, snap(101.0), host=HOST, own_actions=own), "unloaded")
    assert not e.by_tool
    assert e.confidence == "likely"


def test_busy_past_its_deadline_then_gone_is_a_likely_stop() -> None:
    prev = snap(10.0, model("tiny:latest", server_time(5, 0)))  # listed 5 s past its deadline
    e = one(diff(prev, snap(11.0), host=HOST), "unloaded")
    assert (e.reason, e.confidence) == ("stopped", "likely")
    assert e.detail["evidence"] == "busy_then_gone"


# -- unloaded: evicted ---------------------------------------------------------------------


def _three_loaded(mem: Memory | None = None) -> tuple[PsSnapshot, list[Event]]:
    """tiny forever, tiny2 5m, tiny3 1h, loaded between polls at 0 and 1."""
    curr = snap(
        1.0,
        pinned("tiny:latest", 0.5),
        model("tiny3:latest", server_time(0.6 + 3600, 0)),
        model("tiny2:latest", server_time(0.7 + 300, 0)),
    )
    return curr, diff(snap(0.0), curr, host=HOST, memory=mem)


def test_gone_early_while_another_model_appeared_is_an_eviction_naming_it() -> None:
    prev, _ = _three_loaded()
    curr = snap(
        2.0,
        pinned("tiny:latest", 0.5),
        model("tiny3:latest", server_time(0.6 + 3600, 0)),
        model("qwen2.5:14b", server_time(1.8 + 300, 0)),
    )
    events = diff(prev, curr, host=HOST)
    e = one(events, "unloaded")
    assert (e.model, e.reason, e.confidence) == ("tiny2:latest", "evicted", "likely")
    assert e.detail["by_models"] == ["qwen2.5:14b"]
    assert e.detail["resident_count"] == 3
    assert e.detail["cause"] == "max_loaded"
    assert e.detail["victim_rule_ok"] is True
    assert {"name": "tiny:latest", "keep_alive": "forever"} in e.detail["resident"]
    assert one(events, "loaded").model == "qwen2.5:14b"


def test_an_eviction_that_skips_a_shorter_idle_keep_alive_is_only_a_guess() -> None:
    mem = Memory(settle_s=0)
    prev, _ = _three_loaded(mem)
    curr = snap(
        2.0,
        pinned("tiny:latest", 0.5),
        model("tiny2:latest", server_time(0.7 + 300, 0)),
        model("new:latest", server_time(1.8 + 300, 0)),
    )
    e = one(diff(prev, curr, host=HOST, memory=mem), "unloaded")
    assert (e.model, e.reason) == ("tiny3:latest", "evicted")
    assert e.confidence == "guess"
    assert e.detail["victim_rule_ok"] is False
    assert e.detail["resident"] == [
        {"name": "tiny:latest", "keep_alive": "forever"},
        {"name": "tiny3:latest", "keep_alive": "1h"},
        {"name": "tiny2:latest", "keep_alive": "5m"},
    ]


def test_an_eviction_whose_newcomer_appears_later_is_found_when_memory_waits() -> None:
    mem = Memory(settle_s=10)
    prev, _ = _three_loaded(mem)
    two_left = snap(2.0, pinned("tiny:latest", 0.5), model("tiny3:latest", server_time(3600.6, 0)))
    assert diff(prev, two_left, host=HOST, memory=mem) == []  # cause not settled yet
    assert list(mem.pending) == ["tiny2:latest"]
    still = diff(two_left, snap(3.0, *two_left.models), host=HOST, memory=mem)
    assert still == []
    big = model("big:latest", server_time(5.5 + 300, 0))
    events = diff(
        snap(3.0, *two_left.models), snap(6.0, *two_left.models, big), host=HOST, memory=mem
    )
    e = one(events, "unloaded")
    assert (e.model, e.reason) == ("tiny2:latest", "evicted")
    assert e.detail["by_models"] == ["big:latest"]
    assert e.detail["newcomer_after_s"] == pytest.approx(4.0)
    assert e.time == at(2.0)  # when it was seen gone, not when the cause was settled
    assert kinds(events)[-1] == ("big:latest", "loaded", None)


def test_a_pending_unload_with_no_newcomer_settles_as_a_stop() -> None:
    mem = Memory(settle_s=2)
    prev = snap(0.0, model("tiny:latest", server_time(200, 0)))
    assert diff(prev, snap(1.0), host=HOST, memory=mem) == []
    assert diff(snap(1.0), snap(2.0), host=HOST, memory=mem) == []
    e = one(diff(snap(2.0), snap(3.0), host=HOST, memory=mem), "unloaded")
    assert (e.reason, e.confidence) == ("stopped", "likely")
    assert e.detail["waited_s"] == pytest.approx(2.0)


def test_settle_all_flushes_pending_unloads() -> None:
    mem = Memory(settle_s=60)
    diff(snap(0.0, model("tiny:latest", server_time(200, 0))), snap(1.0), host=HOST, memory=mem)
    events = ev.settle_all(mem, host=HOST, at=at(2))
    assert kinds(events) == [("tiny:latest", "unloaded", "stopped")]
    assert mem.settle_s == 60 and not mem.pending


def test_gone_early_at_the_limit_with_no_newcomer_is_a_guessed_eviction() -> None:
    prev, _ = _three_loaded()
    curr = snap(2.0, pinned("tiny:latest", 0.5), model("tiny3:latest", server_time(3600.6, 0)))
    e = one(diff(prev, curr, host=HOST), "unloaded")
    assert (e.reason, e.confidence) == ("evicted", "guess")
    assert e.detail["evidence"] == "at_limit_no_newcomer"


def test_gpu_models_evicted_below_the_limit_blame_memory() -> None:
    prev = snap(
        0.0,
        model("a:latest", server_time(200, 0), size=8_000, vram=8_000),
    )
    curr = snap(1.0, model("b:latest", server_time(300.5, 0), size=9_000, vram=9_000))
    e = one(diff(prev, curr, host=HOST), "unloaded")
    assert (e.reason, e.confidence) == ("evicted", "likely")
    assert e.detail["cause"] == "memory"


# -- unloaded: reloaded --------------------------------------------------------------------


@pytest.mark.parametrize("skew", SKEWS)
def test_a_context_change_is_a_reload_that_loses_the_pin(skew: float) -> None:
    prev = snap(0.0, pinned("tiny:latest", -10, skew, ctx=4096))
    curr = snap(1.0, model("tiny:latest", server_time(0.8 + 300, skew), ctx=8192))
    events = diff(prev, curr, host=HOST)
    assert kinds(events) == [
        ("tiny:latest", "unloaded", "reloaded"),
        ("tiny:latest", "loaded", "reload"),
    ]
    e = events[0]
    assert e.confidence == "certain"
    assert e.detail["changes"] == {"context_length": [4096, 8192]}
    assert e.detail["pin_lost"] is True
    assert (e.detail["keep_alive_before"], e.detail["keep_alive_after"]) == ("forever", "5m")


def test_a_new_digest_is_a_reload() -> None:
    prev = snap(0.0, model("tiny:latest", server_time(200, 0), digest="a" * 64))
    curr = snap(1.0, model("tiny:latest", server_time(300.5, 0), digest="b" * 64))
    e = one(diff(prev, curr, host=HOST), "unloaded")
    assert (e.reason, e.confidence) == ("reloaded", "certain")
    assert e.detail["changes"]["digest"] == ["a" * 12, "b" * 12]


def test_a_model_that_went_and_came_back_with_another_context_was_reloaded() -> None:
    mem = Memory(settle_s=10)
    prev = snap(0.0, model("tiny:latest", server_time(200, 0), ctx=512))
    assert diff(prev, snap(1.0), host=HOST, memory=mem) == []
    back = snap(2.0, model("tiny:latest", server_time(1.9 + 300, 0), ctx=256))
    events = diff(snap(1.0), back, host=HOST, memory=mem)
    assert kinds(events) == [
        ("tiny:latest", "unloaded", "reloaded"),
        ("tiny:latest", "loaded", "reload"),
    ]
    assert events[0].confidence == "likely"
    assert events[0].detail["changes"] == {"context_length": [512, 256]}
    assert events[0].detail["gone_for_s"] == pytest.approx(1.0)


def test_a_changed_gpu_share_is_an_offload_change_and_a_reload() -> None:
    prev = snap(0.0, model("big:latest", server_time(200, 0), size=100, vram=100))
    curr = snap(1.0, model("big:latest", server_time(300.5, 0), size=100, vram=60))
    events = diff(prev, curr, host=HOST)
    off = one(events, "offload_changed")
    assert off.reason == "more_on_cpu"
    assert (off.detail["processor_before"], off.detail["processor"]) == (
        "100% GPU",
        "40%/60% CPU/GPU",
    )
    assert one(events, "unloaded").confidence == "likely"


# -- server restart ------------------------------------------------------------------------


def test_the_server_going_down_is_said_once() -> None:
    mem = Memory()
    prev = snap(0.0, pinned("tiny:latest", -5))
    down = diff(prev, None, host=HOST, curr_up=False, at=at(1), memory=mem)
    assert kinds(down) == [(None, "server_down", None)]
    assert diff(prev, None, host=HOST, prev_up=False, curr_up=False, at=at(2), memory=mem) == []
    assert mem.down_since == at(1)


def test_back_after_an_outage_without_the_models_is_a_restart() -> None:
    mem = Memory()
    prev = snap(0.0, pinned("tiny:latest", -5), model("tiny2:latest", server_time(200, 0)))
    diff(prev, None, host=HOST, curr_up=False, at=at(1), memory=mem)
    events = diff(
        prev,
        snap(5.0),
        host=HOST,
        prev_up=False,
        version="0.24.0",
        prev_version="0.24.0",
        memory=mem,
    )
    up = one(events, "server_up")
    assert (up.reason, up.confidence) == ("restarted", "likely")
    assert up.detail["down_for_s"] == pytest.approx(4.0)
    assert up.detail["version"] == "0.24.0"
    gone = [e for e in events if e.event == "unloaded"]
    assert [(e.model, e.reason) for e in gone] == [
        ("tiny:latest", "server_restart"),
        ("tiny2:latest", "server_restart"),
    ]
    assert gone[0].detail["evidence"] == "unreachable_then_empty"


def test_back_after_an_outage_with_the_models_unchanged_is_no_restart() -> None:
    prev = snap(0.0, pinned("tiny:latest", -5))
    events = diff(prev, snap(5.0, *prev.models), host=HOST, prev_up=False, version="0.24.0")
    assert kinds(events) == [(None, "server_up", None)]


def test_a_new_version_is_a_certain_restart_even_without_an_outage() -> None:
    prev = snap(0.0, pinned("tiny:latest", -5))
    curr = snap(1.0, pinned("tiny:latest", 0.5))  # preloaded again at once by a service
    events = diff(prev, curr, host=HOST, version="0.25.0", prev_version="0.24.0")
    assert kinds(events) == [
        (None, "server_up", "restarted"),
        ("tiny:latest", "unloaded", "server_restart"),
        ("tiny:latest", "loaded", "after_restart"),
    ]
    assert events[0].detail["previous_version"] == "0.24.0"
    assert events[1].confidence == "certain"


def test_everything_gone_at_once_is_a_guessed_restart() -> None:
    prev = snap(0.0, pinned("a:latest", -5), model("b:latest", server_time(200, 0)))
    events = diff(prev, snap(1.0), host=HOST)
    assert {(e.reason, e.confidence) for e in events} == {("server_restart", "guess")}


def test_gone_then_unreachable_settles_pending_unloads_as_a_restart() -> None:
    mem = Memory(settle_s=10)
    prev = snap(0.0, model("a:latest", server_time(200, 0)))
    assert diff(prev, snap(1.0), host=HOST, memory=mem) == []
    events = diff(snap(1.0), None, host=HOST, curr_up=False, at=at(2), memory=mem)
    assert kinds(events) == [
        (None, "server_down", None),
        ("a:latest", "unloaded", "server_restart"),
    ]


# -- keep-alive changes --------------------------------------------------------------------


@pytest.mark.parametrize("skew", SKEWS)
def test_a_client_resetting_a_pin_to_5m(skew: float) -> None:
    prev = snap(0.0, pinned("tiny:latest", -60, skew))
    curr = snap(1.0, model("tiny:latest", server_time(0.6 + 300, skew)))
    e = one(diff(prev, curr, host=HOST), "keep_alive_changed")
    assert (e.reason, e.confidence) == ("pin_lost", "certain")
    assert (e.detail["before"], e.detail["after"]) == ("forever", "5m")


def test_pinning_a_finite_model() -> None:
    prev = snap(0.0, model("tiny:latest", server_time(200, 0)))
    curr = snap(1.0, pinned("tiny:latest", 0.5))
    own = [OwnAction(at(0.4), "tiny:latest", "pin")]
    e = one(diff(prev, curr, host=HOST, own_actions=own), "keep_alive_changed")
    assert e.reason == "pinned"
    assert e.detail["after"] == "forever"
    assert e.detail["by"] == "ollama-resident" and e.detail["action"] == "pin"


def test_a_longer_window_needs_memory_to_be_seen() -> None:
    mem = Memory()
    first = snap(1.0, model("tiny:latest", server_time(0.5 + 300, 0)))
    diff(snap(0.0), first, host=HOST, memory=mem)
    assert mem.windows["tiny:latest"].text() == "5m"
    curr = snap(10.0, model("tiny:latest", server_time(9.5 + 3600, 0)))
    e = one(diff(first, curr, host=HOST, memory=mem), "keep_alive_changed")
    assert (e.reason, e.detail["before"], e.detail["after"]) == ("window_changed", "5m", "1h")
    # without memory only a shorter window than what was left can be told
    assert diff(first, curr, host=HOST) == []


@pytest.mark.parametrize("skew", SKEWS)
def test_renewals_with_the_same_window_say_nothing(skew: float) -> None:
    mem = Memory()
    prev = snap(0.0)
    for i in range(1, 8):
        # a request ends somewhere in each interval; the window stays 5m
        curr = snap(float(i), model("tiny:latest", server_time(i - 0.1 * (i % 9) + 300, skew)))
        events = diff(prev, curr, host=HOST, memory=mem)
        if i == 1:
            assert kinds(events) == [("tiny:latest", "loaded", None)]
        else:
            assert events == [], (i, kinds(events))
        prev = curr
    window = mem.windows["tiny:latest"]
    assert window.lo <= 300 <= (window.hi or 0)
    assert window.text() == "5m"


# -- busy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("skew", SKEWS)
def test_listed_past_an_unchanged_deadline_is_busy_once(skew: float) -> None:
    m = model("tiny:latest", server_time(2.0, skew))
    events = diff(snap(1.0, m), snap(4.0, m), host=HOST)
    e = one(events, "busy")
    assert (e.reason, e.confidence) == ("past_deadline", "certain")
    assert e.detail["overdue_s"] == pytest.approx(2.0 - skew, abs=0.01)
    assert diff(snap(4.0, m), snap(5.0, m), host=HOST) == []


def test_a_busy_model_going_idle_again_is_a_plain_renewal() -> None:
    mem = Memory()
    start = snap(1.0, model("tiny:latest", server_time(0.5 + 300, 0)))
    diff(snap(0.0), start, host=HOST, memory=mem)
    busy = snap(400.0, model("tiny:latest", server_time(0.5 + 300, 0)))
    assert kinds(diff(start, busy, host=HOST, memory=mem)) == [
        ("tiny:latest", "busy", "past_deadline")
    ]
    idle = snap(401.0, model("tiny:latest", server_time(400.5 + 300, 0)))
    assert diff(busy, idle, host=HOST, memory=mem) == []


# -- unknown -------------------------------------------------------------------------------


def test_gone_with_an_unreadable_deadline_is_unknown() -> None:
    prev = snap(0.0, model("tiny:latest", "garbage"))
    e = one(diff(prev, snap(1.0), host=HOST), "unloaded")
    assert (e.reason, e.confidence) == ("unknown", "guess")


# -- JSON and helpers ----------------------------------------------------------------------


def test_event_json_round_trip_and_contract() -> None:
    e = Event(at(1.2345), HOST, "tiny:latest", "unloaded", "evicted", {"confidence": "likely"})
    data = e.to_json()
    assert list(data) == ["time", "host", "model", "event", "reason", "detail", "schema_version"]
    assert data["time"] == "2026-08-22T12:00:01.234Z"
    back = Event.from_json(data)
    assert (back.model, back.event, back.reason, back.confidence) == (
        "tiny:latest",
        "unloaded",
        "evicted",
        "likely",
    )
    with pytest.raises(ValueError):
        Event.from_json({"event": "loaded"})


def test_window_rounding_and_text() -> None:
    assert Window(299.6, 300.4).text() == "5m"
    assert Window(0.7, 1.3).text() == "1s"
    assert Window(3599, 3601).text() == "1h"
    assert Window(89.5, 90.4).text() == "1m30s"
    assert Window(250).text() == "at least 4m"
    assert Window.pinned().text() == "forever"
    assert Window(290, 310).disjoint(Window(3590, 3610))
    assert not Window(290, 310).disjoint(Window(299, None))
    assert Window(290, None).narrow(Window(295, 305)) == Window(295, 305)


def test_from_load_outcome_describes_the_tools_own_pin() -> None:
    outcome = LoadOutcome(
        requested="tiny",
        name="tiny:latest",
        status="loaded",
        keep_alive_sent="forever",
        pinned=True,
        context_length=512,
        processor="100% CPU",
        seconds=0.31,
        evicted=("tiny2:latest",),
    )
    events = ev.from_load_outcome(outcome, host=HOST, time=at(0), action="pin")
    assert kinds(events) == [
        ("tiny2:latest", "unloaded", "evicted"),
        ("tiny:latest", "loaded", None),
    ]
    assert events[0].detail["by_models"] == ["tiny:latest"]
    loaded = events[1]
    assert loaded.by_tool and loaded.detail["action"] == "pin"
    assert loaded.detail["keep_alive"] == "forever"
    assert ev.own_actions_from(events) == [
        OwnAction(at(0), "tiny:latest", "pin", unload=False, forever=True)
    ]


def test_from_load_outcome_for_an_update_and_a_reload() -> None:
    updated = LoadOutcome(
        requested="tiny",
        name="tiny:latest",
        status="updated",
        keep_alive_sent="forever",
        pinned=True,
        previous="4m left",
    )
    (e,) = ev.from_load_outcome(updated, host=HOST, time=at(0), action="pin")
    assert (e.event, e.reason, e.detail["before"], e.detail["after"]) == (
        "keep_alive_changed",
        "pinned",
        "4m left",
        "forever",
    )
    reloaded = LoadOutcome(
        requested="tiny", name="tiny:latest", status="reloaded", reload_reason="context 512 -> 256"
    )
    assert kinds(ev.from_load_outcome(reloaded, host=HOST, time=at(0))) == [
        ("tiny:latest", "unloaded", "reloaded"),
        ("tiny:latest", "loaded", "reload"),
    ]
    unchanged = LoadOutcome(requested="tiny", name="tiny:latest", status="unchanged")
    assert ev.from_load_outcome(unchanged, host=HOST, time=at(0)) == []


def test_from_unload_outcome() -> None:
    done = UnloadOutcome("tiny", "tiny:latest", "unloaded", seconds=0.02)
    (e,) = ev.from_unload_outcome(done, host=HOST, time=at(0))
    assert (e.event, e.reason, e.confidence, e.detail["action"]) == (
        "unloaded",
        "stopped",
        "certain",
        "unload",
    )
    pending = UnloadOutcome("tiny", "tiny:latest", "pending")
    assert kinds(ev.from_unload_outcome(pending, host=HOST, time=at(0))) == [
        ("tiny:latest", "busy", "stopping")
    ]
    assert (
        ev.from_unload_outcome(UnloadOutcome("x", "x:latest", "not-loaded"), host=HOST, time=at(0))
        == []
    )
