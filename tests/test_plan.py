"""plan.py: drift rules, steps and Ollama's eviction order, without a server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ollama_resident.durations import KeepAlive
from ollama_resident.models import PsSnapshot
from ollama_resident.plan import (
    Installed,
    Plan,
    installed_from_tags,
    make_plan,
    parse_size,
)
from ollama_resident.profiles import Profile, ProfileModel

NOW = datetime(2026, 9, 1, 12, 0, 0, tzinfo=timezone.utc)
FOREVER = KeepAlive.forever()


def ka(seconds: float) -> KeepAlive:
    return KeepAlive.of_seconds(seconds)


def running(
    name: str,
    *,
    left: float | None = None,
    pinned: bool = False,
    ctx: int = 512,
    size: int = 1000,
    digest: str = "",
) -> dict[str, Any]:
    if pinned:
        expires = NOW + timedelta(days=292 * 365)
    else:
        assert left is not None
        expires = NOW + timedelta(seconds=left)
    return {
        "name": name,
        "model": name,
        "digest": digest or name.encode().hex().ljust(64, "0")[:64],
        "size": size,
        "size_vram": 0,
        "context_length": ctx,
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
    }


def snap(*models: dict[str, Any]) -> PsSnapshot:
    return PsSnapshot.from_api({"models": list(models)}, NOW)


def profile(*models: ProfileModel | str, keep_alive: KeepAlive | None = None, **kw: Any) -> Profile:
    entries = tuple(ProfileModel(m) if isinstance(m, str) else m for m in models)
    return Profile("p", entries, keep_alive=keep_alive, **kw)


def only(plan: Plan) -> tuple[str, str]:
    assert len(plan.steps) == 1, plan.steps
    return plan.steps[0].action, plan.steps[0].reason


# -- one model: load, ok, repin, reload ----------------------------------------------------------


def test_a_model_not_loaded_is_loaded_with_the_effective_keep_alive() -> None:
    plan = make_plan(profile("llama3.2", keep_alive=FOREVER), snap())
    step = plan.steps[0]
    assert (step.action, step.model, step.requested) == ("load", "llama3.2:latest", "llama3.2")
    assert step.reason == "not loaded"
    assert step.keep_alive == FOREVER
    assert [(r.model, r.keep_alive, r.num_ctx) for r in plan.load_requests()] == [
        ("llama3.2", FOREVER, None)
    ]


@pytest.mark.parametrize(
    ("wanted", "loaded", "action", "reason"),
    [
        # wants forever
        (FOREVER, running("m:latest", pinned=True), "ok", "pinned, as asked"),
        (
            FOREVER,
            running("m:latest", left=240),
            "repin",
            "the profile wants it pinned; it has 4m 00s left",
        ),
        # wants a window: longer than asked is drift
        (
            ka(600),
            running("m:latest", pinned=True),
            "repin",
            "pinned, longer than the 10m the profile asks",
        ),
        (
            ka(600),
            running("m:latest", left=3600),
            "repin",
            "1h 00m left, longer than the 10m the profile asks",
        ),
        # ...a window that counted down is not
        (
            ka(600),
            running("m:latest", left=120),
            "ok",
            "2m 00s left of 10m: counting down, the next request restarts it",
        ),
        (ka(600), running("m:latest", left=601), "ok", "10m 01s left of 10m: counting down"),
        (ka(600), running("m:latest", left=-3), "ok", "busy or stopping"),
        # no keep-alive in the profile: anything goes
        (None, running("m:latest", left=30), "ok", "loaded (30s left); the profile sets no"),
        (None, running("m:latest", pinned=True), "ok", "loaded (pinned)"),
    ],
)
def test_drift_rules(
    wanted: KeepAlive | None, loaded: dict[str, Any], action: str, reason: str
) -> None:
    got_action, got_reason = only(make_plan(profile("m", keep_alive=wanted), snap(loaded)))
    assert got_action == action
    assert got_reason.startswith(reason)


def test_the_model_keep_alive_wins_over_the_profile_one() -> None:
    p = profile(ProfileModel("m", ka(1800)), keep_alive=FOREVER)
    plan = make_plan(p, snap(running("m:latest", left=1700)))
    assert plan.steps[0].action == "ok"
    assert plan.steps[0].keep_alive == ka(1800)


def test_wrong_context_reloads_only_when_the_profile_names_one() -> None:
    loaded = running("m:latest", pinned=True, ctx=4096)
    assert only(make_plan(profile("m", keep_alive=FOREVER), snap(loaded)))[0] == "ok"
    plan = make_plan(profile(ProfileModel("m", FOREVER, 8192)), snap(loaded))
    assert only(plan) == ("reload", "loaded with context 4096, the profile asks 8192")
    assert plan.load_requests()[0].num_ctx == 8192


def test_a_context_above_the_training_context_is_capped_not_a_reload() -> None:
    loaded = running("m:latest", pinned=True, ctx=512)
    p = profile(ProfileModel("m", FOREVER, 4096))
    assert only(make_plan(p, snap(loaded), training_contexts={"m": 512}))[0] == "ok"
    plan = make_plan(
        p, snap(running("m:latest", pinned=True, ctx=256)), training_contexts={"m": 512}
    )
    assert only(plan) == (
        "reload",
        "loaded with context 256, the profile asks 4096 (512 after capping to its training "
        "context)",
    )


def test_an_old_server_without_context_length_never_triggers_a_reload() -> None:
    loaded = running("m:latest", pinned=True, ctx=0)
    assert only(make_plan(profile(ProfileModel("m", FOREVER, 8192)), snap(loaded)))[0] == "ok"


def test_names_match_as_ollama_matches_them() -> None:
    p = profile("registry.ollama.ai/library/Llama3.2", keep_alive=FOREVER)
    plan = make_plan(p, snap(running("llama3.2:latest", pinned=True)))
    assert only(plan)[0] == "ok"


def test_not_installed_is_said_in_the_step_and_the_notes() -> None:
    tags = installed_from_tags([{"name": "tiny:latest", "size": 5, "digest": "sha256:ab"}])
    plan = make_plan(profile("tiny", "ghost"), snap(), installed=tags)
    assert [s.installed for s in plan.steps] == [True, False]
    assert "not installed on this server" in plan.steps[1].reason
    assert plan.notes == ("not installed on this server: ghost (ollama pull them first)",)
    assert plan.steps[0].size == 5


# -- exclusive ------------------------------------------------------------------------------------


def test_exclusive_unloads_what_is_not_in_the_profile_first() -> None:
    s = snap(running("other:latest", left=100), running("m:latest", pinned=True))
    p = profile("m", "new", keep_alive=FOREVER)
    plan = make_plan(p, s, exclusive=True)
    assert [(st.action, st.model) for st in plan.steps] == [
        ("unload", "other:latest"),
        ("ok", "m:latest"),
        ("load", "new:latest"),
    ]
    assert plan.steps[0].reason == 'not in profile "p" (exclusive)'
    assert plan.unload_names() == ["other:latest"]
    assert make_plan(p, s).unload_names() == []  # not exclusive by default


def test_the_profile_setting_applies_unless_overridden() -> None:
    s = snap(running("other:latest", left=100))
    p = profile("m", exclusive=True)
    assert make_plan(p, s).unload_names() == ["other:latest"]
    assert make_plan(p, s, exclusive=False).unload_names() == []


# -- evictions: shortest configured keep-alive first, forever last, ties by digest, idle first ----


def test_the_shortest_keep_alive_is_evicted_and_the_pin_is_last() -> None:
    s = snap(
        running("pinned:latest", pinned=True),
        running("short:latest", left=60),
        running("long:latest", left=3000),
    )
    plan = make_plan(profile(ProfileModel("new", FOREVER)), s)
    assert [(e.model, e.by, e.cause) for e in plan.evictions] == [
        ("short:latest", "new:latest", "max-loaded")
    ]
    e = plan.evictions[0]
    assert not e.in_profile
    assert not e.certain  # short:latest's configured keep-alive is only known to be >= 1m
    assert e.message.startswith(
        "loading new:latest will probably make Ollama evict short:latest "
        "(keep-alive at least 1m): Ollama keeps at most 3 models loaded"
    )


def test_a_pinned_model_is_evicted_when_it_is_the_only_candidate() -> None:
    s = snap(
        running("a:latest", pinned=True, digest="b" * 64),
        running("b:latest", pinned=True, digest="a" * 64),
        running("c:latest", pinned=True, digest="c" * 64),
    )
    plan = make_plan(profile(ProfileModel("new", FOREVER)), s)
    # All pinned: one of them goes. Ollama breaks the tie by blob path, which /api/ps does
    # not show; the digest order is the best guess, and the message says so.
    assert [e.model for e in plan.evictions] == ["b:latest"]
    assert not plan.evictions[0].certain
    assert plan.evictions[0].message.startswith(
        "loading new:latest will probably make Ollama evict b:latest (pinned)"
    )
    assert "(or a:latest, c:latest, with the same keep-alive: Ollama then picks by blob path" in (
        plan.evictions[0].message
    )


def test_a_busy_model_is_passed_over_for_an_idle_one() -> None:
    s = snap(
        running("busy:latest", left=-1),  # deadline passed: a request runs on it
        running("idle:latest", left=3000),
        running("pin:latest", pinned=True),
    )
    plan = make_plan(profile(ProfileModel("new", FOREVER)), s)
    assert [e.model for e in plan.evictions] == ["idle:latest"]


def test_evicting_the_profile_own_model_is_flagged() -> None:
    s = snap(running("x:latest", pinned=True), running("y:latest", pinned=True))
    p = profile(ProfileModel("a", ka(60)), ProfileModel("b", ka(120)), keep_alive=None)
    plan = make_plan(p, s)
    # a loads into the third slot; b then evicts a (1m, the shortest), which is in the profile.
    assert [(e.model, e.by, e.in_profile, e.certain) for e in plan.evictions] == [
        ("a:latest", "b:latest", True, True)
    ]
    assert "a:latest is in this profile" in plan.evictions[0].message


def test_a_repin_changes_the_order_before_the_next_load() -> None:
    s = snap(
        running("a:latest", left=60),
        running("b:latest", left=3000),
        running("c:latest", pinned=True),
    )
    p = profile(ProfileModel("a", FOREVER), ProfileModel("new", FOREVER))
    plan = make_plan(p, s)
    assert [st.action for st in plan.steps] == ["repin", "load"]
    assert [e.model for e in plan.evictions] == ["b:latest"]  # a is pinned by then


def test_unloads_make_room_first() -> None:
    s = snap(*(running(f"o{i}:latest", left=100) for i in range(3)))
    plan = make_plan(profile("new"), s, exclusive=True)
    assert plan.evictions == ()


def test_a_reload_frees_its_own_slot() -> None:
    s = snap(
        running("a:latest", pinned=True, ctx=512),
        running("b:latest", pinned=True),
        running("c:latest", pinned=True),
    )
    plan = make_plan(profile(ProfileModel("a", FOREVER, 256)), s)
    assert plan.steps[0].action == "reload"
    assert plan.evictions == ()


def test_max_loaded_can_be_raised_or_turned_off() -> None:
    s = snap(*(running(f"o{i}:latest", left=100) for i in range(3)))
    assert make_plan(profile("new"), s, max_loaded=4).evictions == ()
    assert make_plan(profile("new"), s, max_loaded=None).evictions == ()
    plan = make_plan(profile("new"), s, max_loaded=2)
    assert len(plan.evictions) == 2


def test_memory_evictions_use_the_sizes() -> None:
    s = snap(
        running("big:latest", left=100, size=6_000_000_000),
        running("pin:latest", pinned=True, size=3_000_000_000),
    )
    tags = {"new:latest": Installed("new:latest", 4_000_000_000, "ff")}
    plan = make_plan(profile("new"), s, installed=tags, memory=parse_size("12GB"))
    assert [(e.model, e.cause) for e in plan.evictions] == [("big:latest", "memory")]
    assert "new:latest (4 GB) does not fit in 12 GB" in plan.evictions[0].message
    assert make_plan(profile("new"), s, installed=tags, memory=parse_size("14GB")).evictions == ()


def test_a_new_load_without_keep_alive_is_assumed_at_the_server_default() -> None:
    s = snap(running("x:latest", pinned=True), running("y:latest", pinned=True))
    plan = make_plan(profile("a", "b"), s)
    assert [e.model for e in plan.evictions] == ["a:latest"]
    assert "the server's default keep-alive, 5m unless OLLAMA_KEEP_ALIVE" in (
        plan.evictions[0].message
    )
    assert not plan.evictions[0].certain


def test_a_profile_larger_than_max_loaded_gets_a_note() -> None:
    plan = make_plan(profile("a", "b", "c", "d"), snap())
    assert plan.notes == (
        "the profile has 4 models but Ollama keeps at most 3 loaded "
        "(OLLAMA_MAX_LOADED_MODELS): they cannot all stay",
    )


# -- the plan as data -----------------------------------------------------------------------------


def test_summary_and_json() -> None:
    s = snap(running("m:latest", pinned=True), running("x:latest", left=10))
    plan = make_plan(profile("m", "n", keep_alive=FOREVER), s, exclusive=True)
    assert plan.summary() == "1 to unload, 1 to load, 1 ok"
    doc = plan.to_json()
    assert set(doc) == {
        "profile",
        "exclusive",
        "max_loaded",
        "memory",
        "max_loaded_source",
        "memory_source",
        "steps",
        "evictions",
        "notes",
        "summary",
    }
    assert set(doc["steps"][0]) == {
        "action",
        "model",
        "requested",
        "reason",
        "keep_alive",
        "num_ctx",
        "current",
        "size",
        "installed",
    }
    assert [st["action"] for st in doc["steps"]] == ["unload", "ok", "load"]
    assert doc["steps"][2]["keep_alive"] == "forever"
    noop = make_plan(profile("m", keep_alive=FOREVER), snap(running("m:latest", pinned=True)))
    assert noop.is_noop
    assert noop.summary() == "nothing to do: 1 model as the profile asks"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24GB", 24_000_000_000),
        ("24gb", 24_000_000_000),
        ("1.5 GiB", 1_610_612_736),
        ("800MB", 800_000_000),
        ("512K", 512_000),
        ("1000", 1000),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "-1GB", "0", "5XB", "1e9"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)
