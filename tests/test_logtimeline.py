"""logtimeline: per-model facts from Ollama's log, per scenario, at INFO and DEBUG, under every
wrapper (pure: the fixtures are built in tests/ollamalogs.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

import ollamalogs as L
from ollama_resident.logtimeline import LogFact, Timeline, read_timeline

WRAPPERS = list(L.WRAPPERS)
TINY, TINY2, TINY3, TINY4K = (L.BLOBS[m] for m in ("tiny", "tiny2", "tiny3", "tiny-4k"))


def timeline(scenario: str, debug: bool, wrapper: str) -> Timeline:
    return read_timeline(lines=L.wrap(L.SCENARIOS[scenario](debug), wrapper))


def facts(tl: Timeline, kind: str, digest: str | None = None) -> list[LogFact]:
    return [f for f in tl.facts if f.kind == kind and (digest is None or f.digest == digest)]


def unload(tl: Timeline, digest: str) -> LogFact:
    found = facts(tl, "unloaded", digest)
    assert len(found) == 1, tl.facts
    return found[0]


@pytest.fixture(params=WRAPPERS)
def wrapper(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_01_expiry(wrapper: str) -> None:
    tl = timeline("01-expiry", True, wrapper)
    f = unload(tl, TINY)
    assert (f.cause, f.confidence, f.level, f.model) == (
        "expired",
        "certain",
        "DEBUG",
        "tiny:latest",
    )
    assert f.detail["keep_alive"] == "3s"
    info = timeline("01-expiry", False, wrapper)
    assert facts(info, "unloaded") == []
    assert [x.model for x in facts(info, "loaded")] == ["sha256-876d1158a74c"]
    assert not info.has_debug and tl.has_debug


def test_02_stop_names_the_client_whose_line_follows_the_unload(wrapper: str) -> None:
    f = unload(timeline("02-stop", True, wrapper), TINY)
    assert (f.cause, f.detail["how"], f.confidence) == ("stopped", "keep_alive_0", "certain")
    assert f.request is not None
    assert (f.request.client, f.request.method, f.request.path) == (
        "127.0.0.5",
        "POST",
        "/api/generate",
    )
    assert facts(timeline("02-stop", False, wrapper), "unloaded") == []


def test_03_eviction_is_no_reload_and_names_the_newcomer(wrapper: str) -> None:
    tl = timeline("03-eviction", True, wrapper)
    f = unload(tl, TINY2)
    assert (f.cause, f.detail["rule"], f.detail["limit"]) == ("evicted", "max_loaded", 2)
    assert f.detail["by_model"] == "tiny3:latest"
    assert facts(tl, "unloaded", TINY) == []  # the pinned one stayed
    info = timeline("03-eviction", False, wrapper)
    (hint,) = facts(info, "evicted_unknown")
    assert hint.detail["by_digest"] == TINY3
    assert set(hint.detail["candidates"]) == {TINY, TINY2}
    assert hint.confidence == "likely"


def test_04_reload_says_old_and_new_context_once(wrapper: str) -> None:
    tl = timeline("04-reload", True, wrapper)
    f = unload(tl, TINY4K)
    assert (f.cause, f.confidence) == ("reloaded", "certain")
    assert (f.detail["context_before"], f.detail["context_after"]) == (4096, 2048)
    assert f.detail["keep_alive"] == "forever"
    assert f.request is not None and f.request.client == "10.0.0.7"
    after = facts(tl, "keep_alive", TINY4K)[-1]
    assert after.detail["keep_alive"] == "5m" and after.time > f.time
    loads = facts(tl, "loaded", TINY4K)
    assert [x.detail.get("reload", False) for x in loads] == [False, True]
    info = timeline("04-reload", False, wrapper)
    g = unload(info, TINY4K)
    assert (g.cause, g.confidence, g.level) == ("reloaded", "likely", "INFO")
    assert (g.detail["context_before"], g.detail["context_after"]) == (4096, 2048)


def test_05_pin_reset_by_another_client(wrapper: str) -> None:
    tl = timeline("05-pin-reset", True, wrapper)
    pins = facts(tl, "keep_alive", TINY)
    assert [p.detail["keep_alive"] for p in pins] == ["forever", "5m"]
    reset = pins[-1]
    assert reset.detail["before_forever"] and not reset.detail["forever"]
    assert reset.request is not None and reset.request.client == "127.0.0.2"
    assert facts(timeline("05-pin-reset", False, wrapper), "keep_alive") == []


def test_06_restart(wrapper: str) -> None:
    tl = timeline("06-restart", True, wrapper)
    assert tl.starts == 2
    f = unload(tl, TINY)
    assert f.cause == "shutdown" and f.detail["restarted_at"] == facts(tl, "server_start")[1].time
    info = timeline("06-restart", False, wrapper)
    g = unload(info, TINY)
    assert (g.cause, g.level) == ("server_restart", "INFO")
    assert g.detail["until"] < g.time


def test_07_server_config(wrapper: str) -> None:
    for debug in (True, False):
        (start,) = facts(timeline("07-config", debug, wrapper), "server_start")
        config = start.detail["config"]
        assert config["OLLAMA_MAX_LOADED_MODELS"] == "2"
        assert config["OLLAMA_KEEP_ALIVE"] == L.FOREVER
        assert config["OLLAMA_CONTEXT_LENGTH"] == "8192"
        assert config["OLLAMA_DEBUG"] == ("DEBUG" if debug else "INFO")
        assert (start.detail["version"], start.detail["address"]) == ("0.24.0", "127.0.0.1:41917")


def test_08_busy_model_expires_after_its_stream(wrapper: str) -> None:
    tl = timeline("08-busy", True, wrapper)
    f = unload(tl, TINY)
    assert f.cause == "expired" and f.detail["keep_alive"] == "2s"
    (load,) = facts(tl, "loaded", TINY)
    assert load.request is not None and load.request.end - load.request.start > timedelta(seconds=3)


def test_09_gin_lines_take_the_servers_zone(wrapper: str) -> None:
    tl = timeline("09-timezone", False, wrapper)
    (load,) = facts(tl, "loaded", TINY)
    assert load.time.utcoffset() == timedelta(hours=5, minutes=30)
    assert load.request is not None
    assert load.request.end.utcoffset() == timedelta(hours=5, minutes=30)
    assert abs((load.request.end - load.time).total_seconds()) < 2


def test_named_by_the_server_and_since() -> None:
    tl = read_timeline(lines=L.stop(False))
    tl.name_models({TINY: "tiny:latest"})
    assert [f.model for f in facts(tl, "loaded")] == ["tiny:latest"]
    late = read_timeline(lines=L.expiry(True), since=L.START + timedelta(seconds=2))
    assert [f.kind for f in late.facts] == ["unloaded"]
    assert late.facts[0].cause == "expired"  # the state before `since` was still followed


def test_blocks_and_lines_agree() -> None:
    lines = L.wrap(L.eviction(True), "journal")
    text = "\n".join(lines) + "\n"
    half = len(lines) // 2
    first = "\n".join(lines[:half]) + "\n"
    second = "\n".join(lines[half:]) + "\n"
    by_blocks = read_timeline([(first, 1, None), (second, half + 1, None)])
    by_lines = read_timeline(lines=text.splitlines())
    assert [f.to_json() for f in by_blocks.facts] == [f.to_json() for f in by_lines.facts]
    assert by_blocks.lines == by_lines.lines == len(lines)
