"""Tests of the fake Ollama server itself: it must behave like the real one (contract +
transcripts of Ollama 0.24.0), or every test built on it proves nothing."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakeollama import (
    DEFAULT_LOAD_ERROR,
    MAX_DURATION,
    MIN_DURATION,
    FakeModel,
    FakeOllama,
    GoDurationError,
    canonical_name,
    env_keep_alive,
    format_go_time,
    keep_alive_from_json,
    parse_go_duration,
    parse_go_time,
)

S = 1_000_000_000
MINUTE = 60 * S
JSON_TYPE = "application/json; charset=utf-8"

Make = Callable[..., tuple[FakeOllama, httpx.Client]]


@pytest.fixture
def make() -> Iterator[Make]:
    """Start fake servers on free ports (fast loads by default); stop them afterwards."""
    servers: list[FakeOllama] = []
    clients: list[httpx.Client] = []

    def factory(**kwargs: Any) -> tuple[FakeOllama, httpx.Client]:
        kwargs.setdefault("load_delay", 0.01)
        server = FakeOllama(**kwargs).start()
        servers.append(server)
        # plain HTTP on loopback: verify=False skips loading the CA bundle (~35 ms per client)
        client = httpx.Client(base_url=server.url, timeout=60, verify=False)
        clients.append(client)
        return server, client

    yield factory
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def load(client: httpx.Client, model: str, keep_alive: Any = ..., **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "prompt": "", **extra}
    if keep_alive is not ...:
        body["keep_alive"] = keep_alive
    r = client.post("/api/generate", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def unload(client: httpx.Client, model: str) -> dict[str, Any]:
    r = client.post("/api/generate", json={"model": model, "keep_alive": 0})
    assert r.status_code == 200, r.text
    return r.json()


def ps(client: httpx.Client) -> list[dict[str, Any]]:
    r = client.get("/api/ps")
    assert r.status_code == 200
    assert r.headers["content-type"] == JSON_TYPE
    return r.json()["models"]


def names(client: httpx.Client) -> list[str]:
    return [m["name"] for m in ps(client)]


def runner(fake: FakeOllama, name: str) -> dict[str, Any]:
    (entry,) = [r for r in fake.loaded() if r["name"] == name]
    return entry


def wait_until(pred: Callable[[], Any], timeout: float = 60.0) -> None:
    """Poll until ``pred()``; the deadline only bounds a test that fails anyway."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def generate_long(client: httpx.Client, model: str, tokens: int, **extra: Any) -> dict[str, Any]:
    body = {"model": model, "prompt": "hi", "stream": False, "options": {"num_predict": tokens}}
    r = client.post("/api/generate", json={**body, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def start_generation(
    pool: ThreadPoolExecutor, fake: FakeOllama, client: httpx.Client, model: str, tokens: int
) -> Future[dict[str, Any]]:
    """Run a generation in the background, held (its runner busy) until the test calls
    ``fake.release_requests()``; return once it is being generated."""
    name = canonical_name(model)
    fake.wait_idle()
    fake.hold_requests(model)
    future = pool.submit(generate_long, client, model, tokens)
    wait_until(lambda: any(r["name"] == name and r["in_use"] for r in fake.loaded()))
    return future


# ------------------------------------------------------------------ plain endpoints


def test_root_version_and_head(make: Make) -> None:
    _, client = make()
    r = client.get("/")
    assert (r.status_code, r.text) == (200, "Ollama is running")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = client.head("/")
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "17")
    r = client.get("/api/version")
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        200,
        '{"version":"0.24.0"}',
        JSON_TYPE,
    )
    assert client.head("/api/version").status_code == 200
    assert client.get("/api/ps").text == '{"models":[]}'


def test_unknown_path_and_wrong_method_are_plain_text(make: Make) -> None:
    _, client = make()
    r = client.get("/api/nope")
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        404,
        "404 page not found",
        "text/plain",
    )
    r = client.post("/api/ps", json={})
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        405,
        "405 method not allowed",
        "text/plain",
    )
    assert r.headers["allow"] == "GET"
    assert client.get("/api/generate").headers["allow"] == "POST"


def test_old_server_without_ps(make: Make) -> None:
    _, client = make(ps_supported=False)
    r = client.get("/api/ps")
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        404,
        "404 page not found",
        "text/plain",
    )


def test_foreign_host_header_is_forbidden(make: Make) -> None:
    _, client = make()
    r = client.get("/api/ps", headers={"Host": "ollama.example.com"})
    assert (r.status_code, r.content) == (403, b"")
    assert client.get("/api/ps", headers={"Host": "localhost:11434"}).status_code == 200


def test_tags_shape(make: Make) -> None:
    _, client = make()
    r = client.get("/api/tags")
    assert r.headers["content-type"] == JSON_TYPE
    models = r.json()["models"]
    tiny = models[0]
    assert list(tiny) == ["name", "model", "modified_at", "size", "digest", "details"]
    assert tiny["name"] == tiny["model"] == "tiny:latest"
    assert tiny["size"] == 506_922
    assert tiny["digest"] == "a09825f870c31be8ce11111462e5b72fcae75284a25649bea6220a647bd9cba0"
    assert tiny["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "124K",
        "quantization_level": "unknown",
    }
    parse_go_time(tiny["modified_at"])
    assert {m["name"] for m in models} >= {
        "tiny-embed:latest",
        "llama3.2:latest",
        "qwen2.5:14b",
        "nomic-embed-text:latest",
        "myns/coder:7b",
    }


def test_show(make: Make) -> None:
    _, client = make()
    r = client.post("/api/show", json={"model": "tiny"})
    assert r.status_code == 200
    body = r.json()
    assert list(body) == [
        "modelfile",
        "template",
        "details",
        "model_info",
        "tensors",
        "capabilities",
        "modified_at",
    ]
    assert body["capabilities"] == ["completion"]
    assert body["model_info"]["general.architecture"] == "llama"
    assert body["model_info"]["llama.context_length"] == 512
    assert '"llama.attention.layer_norm_rms_epsilon":0.00001' in r.text
    embed = client.post("/api/show", json={"model": "tiny-embed"}).json()
    assert embed["capabilities"] == ["embedding"]
    assert embed["model_info"]["bert.context_length"] == 512
    nomic = client.post("/api/show", json={"name": "nomic-embed-text"}).json()
    assert nomic["model_info"]["nomic-bert.context_length"] == 2048
    llama = client.post("/api/show", json={"model": "llama3.2"}).json()
    assert llama["model_info"]["llama.context_length"] == 131072
    for alias in ("TINY", "library/tiny", "registry.ollama.ai/library/tiny:latest"):
        assert client.post("/api/show", json={"model": alias}).status_code == 200


def test_show_errors(make: Make) -> None:
    _, client = make()
    r = client.post("/api/show", json={"model": "doesnotexist"})
    # real 0.24.0 echoes the name as sent (transcript 27c)
    assert (r.status_code, r.text) == (404, '{"error":"model \'doesnotexist\' not found"}')
    assert r.headers["content-type"] == JSON_TYPE
    r = client.post("/api/show", json={})
    assert (r.status_code, r.json()) == (400, {"error": "model is required"})
    r = client.post("/api/show", json={"model": "bad name!"})
    assert (r.status_code, r.json()) == (400, {"error": "invalid model name"})
    r = client.post("/api/show", content=b"")
    assert (r.status_code, r.json()) == (400, {"error": "missing request body"})


def test_canonical_names(make: Make) -> None:
    fake, client = make()
    assert canonical_name("tiny") == "tiny:latest"
    assert canonical_name("library/tiny") == "tiny:latest"
    assert canonical_name("registry.ollama.ai/library/tiny:latest") == "tiny:latest"
    assert canonical_name("myns/coder:7b") == "myns/coder:7b"
    assert canonical_name("example.com:5000/ns/m:t") == "example.com:5000/ns/m:t"
    with pytest.raises(ValueError):
        canonical_name("tiny:")
    reply = load(client, "registry.ollama.ai/library/tiny:latest")
    assert reply["model"] == "registry.ollama.ai/library/tiny:latest"  # echoed as sent
    assert load(client, "TINY")["model"] == "TINY"
    load(client, "myns/coder:7b")
    assert sorted(names(client)) == ["myns/coder:7b", "tiny:latest"]
    assert fake.load_history == ["tiny:latest", "myns/coder:7b"]  # TINY reused the runner


# ------------------------------------------------------------------ keep_alive parsing


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5m", 5 * MINUTE),
        (30, 30 * S),
        ("30s", 30 * S),
        ("1h30m", 90 * MINUTE),
        ("1.5h", 90 * MINUTE),
        ("300ms", 300_000_000),
        (42.5, 42_500_000_000),
        (1.5, 1_500_000_000),
        (-1, MAX_DURATION),
        (-3.14, MAX_DURATION),
        (-0.5, MAX_DURATION),
        ("-5m", MAX_DURATION),
        ("-1s", MAX_DURATION),
        (None, 5 * MINUTE),  # null on a fresh load: the server default
    ],
)
def test_keep_alive_values(make: Make, value: Any, expected: int) -> None:
    fake, client = make()
    before = time.time_ns()
    assert load(client, "tiny", value)["done_reason"] == "load"
    fake.wait_idle()
    after = time.time_ns()
    assert runner(fake, "tiny:latest")["keep_alive_ns"] == expected
    (entry,) = ps(client)
    expires = parse_go_time(entry["expires_at"])
    assert expires == runner(fake, "tiny:latest")["expires_at"]
    assert before + expected <= expires <= after + expected


def test_absent_keep_alive_uses_server_default(make: Make) -> None:
    fake, client = make(default_keep_alive="10s")
    load(client, "tiny")
    assert runner(fake, "tiny:latest")["keep_alive_ns"] == 10 * S


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("-1", 'time: missing unit in duration "-1"'),
        ("300", 'time: missing unit in duration "300"'),
        ("bogus", 'time: invalid duration "bogus"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("", 'time: invalid duration ""'),
        (" 5m", 'time: invalid duration " 5m"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
        (True, "Unsupported type: 'bool'"),
        ([1], "Unsupported type: '[]interface {}'"),
        ({"s": 1}, "Unsupported type: 'map[string]interface {}'"),
    ],
)
def test_keep_alive_errors_leave_state_unchanged(make: Make, value: Any, error: str) -> None:
    fake, client = make()
    load(client, "tiny", "1h30m")
    fake.wait_idle()
    before = ps(client)
    requests = [
        ("/api/generate", {"model": "tiny", "prompt": ""}),
        ("/api/generate", {"model": "tiny2", "prompt": ""}),
        ("/api/chat", {"model": "tiny", "messages": []}),
        ("/api/embed", {"model": "tiny-embed"}),
        ("/api/embeddings", {"model": "tiny"}),
        ("/api/generate", {"model": "doesnotexist"}),
    ]
    for path, body in requests:
        r = client.post(path, json={**body, "keep_alive": value})
        assert (r.status_code, r.json()) == (400, {"error": error}), path
        assert r.headers["content-type"] == JSON_TYPE
    assert ps(client) == before
    assert [r["keep_alive_ns"] for r in fake.loaded()] == [90 * MINUTE]
    assert fake.load_history == ["tiny:latest"]


@pytest.mark.parametrize("value", [0, 0.0, "0", "0s", "-0", "0h"])
def test_keep_alive_zero_unloads(make: Make, value: Any) -> None:
    _, client = make()
    load(client, "tiny", -1)
    reply = unload(client, "tiny") if value == 0 else load(client, "tiny", value)
    assert list(reply) == ["model", "created_at", "response", "done", "done_reason"]
    assert (reply["model"], reply["done_reason"]) == ("tiny", "unload")
    assert reply["created_at"].endswith("Z")
    wait_until(lambda: ps(client) == [])


def test_huge_keep_alive_number_overflows_and_unloads_when_idle(make: Make) -> None:
    fake, client = make()
    assert load(client, "tiny", 1e10)["done_reason"] == "load"
    wait_until(lambda: ps(client) == [])
    assert fake.load_history == ["tiny:latest"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("+5m", 5 * MINUTE),
        ("1h2m3.5s", 3723 * S + S // 2),
        (".5s", S // 2),
        ("5.s", 5 * S),
        ("1µs", 1000),
        ("1μs", 1000),
        ("1us", 1000),
        ("10ns", 10),
        ("9223372036854775807ns", MAX_DURATION),
        ("-9223372036854775808ns", MIN_DURATION),
        ("2562047h47m16.854775807s", MAX_DURATION),
    ],
)
def test_parse_go_duration(text: str, expected: int) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("00", 'time: missing unit in duration "00"'),
        ("1.5.5s", 'time: missing unit in duration "1.5.5s"'),
        (".s", 'time: invalid duration ".s"'),
        ("-", 'time: invalid duration "-"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("5é", 'time: unknown unit "\\xc3\\xa9" in duration "5\\xc3\\xa9"'),
        ('5"x', 'time: unknown unit "\\"x" in duration "5\\"x"'),
    ],
)
def test_parse_go_duration_errors(text: str, error: str) -> None:
    with pytest.raises(GoDurationError) as info:
        parse_go_duration(text)
    assert str(info.value) == error


def test_keep_alive_from_json_numbers() -> None:
    assert keep_alive_from_json(None) is None
    assert keep_alive_from_json(0.4) == 400_000_000
    assert keep_alive_from_json(9.2e9) == 9_200_000_000 * S
    assert keep_alive_from_json(9.3e9) == MIN_DURATION  # int64 overflow on amd64
    assert keep_alive_from_json(-1e300) == MAX_DURATION


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 5 * MINUTE),
        ("", 5 * MINUTE),
        ("10s", 10 * S),
        ("60", 60 * S),
        ("-1", MAX_DURATION),
        ("-1m", MAX_DURATION),
        ("0", 0),
        ("'30s'", 30 * S),
        (' "2h" ', 2 * 60 * MINUTE),
        ("1d", 5 * MINUTE),
        ("1.5", 5 * MINUTE),
        ("???", 5 * MINUTE),
        (-1, MAX_DURATION),
        (90, 90 * S),
    ],
)
def test_server_default_keep_alive_parsing(value: Any, expected: int) -> None:
    assert env_keep_alive(value) == expected


# ------------------------------------------------------------------ /api/ps times


def test_forever_is_a_date_292_years_ahead_with_nanoseconds(make: Make) -> None:
    fake, client = make()
    before = time.time_ns()
    load(client, "tiny", -1)
    fake.wait_idle()
    after = time.time_ns()
    (entry,) = ps(client)
    assert list(entry) == [
        "name",
        "model",
        "size",
        "digest",
        "details",
        "expires_at",
        "size_vram",
        "context_length",
    ]
    assert (entry["name"], entry["model"], entry["size"], entry["size_vram"]) == (
        "tiny:latest",
        "tiny:latest",
        675_328,
        0,
    )
    assert entry["context_length"] == 512
    text = entry["expires_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", text)
    expires = parse_go_time(text)
    assert before + MAX_DURATION <= expires <= after + MAX_DURATION
    assert int(text[:4]) - datetime.now(timezone.utc).year in (292, 293)
    assert format_go_time(expires) == text


@pytest.mark.parametrize(("offset", "suffix"), [(120, "+02:00"), (-420, "-07:00")])
def test_expires_at_uses_the_server_offset(make: Make, offset: int, suffix: str) -> None:
    fake, client = make(utc_offset_minutes=offset)
    load(client, "tiny", "5m")
    fake.wait_idle()
    (entry,) = ps(client)
    assert entry["expires_at"].endswith(suffix)
    assert parse_go_time(entry["expires_at"]) == runner(fake, "tiny:latest")["expires_at"]
    assert load(client, "tiny")["created_at"].endswith("Z")  # created_at is always UTC


def test_go_time_format() -> None:
    assert format_go_time(1_700_000_000 * S) == "2023-11-14T22:13:20Z"
    assert format_go_time(1_700_000_000 * S + 120_000_000) == "2023-11-14T22:13:20.12Z"
    assert format_go_time(1_700_000_000 * S + 5, 90) == "2023-11-14T23:43:20.000000005+01:30"
    for text in ("2319-03-04T01:31:06.21506357Z", "2026-11-22T01:49:04.958131124Z"):
        assert format_go_time(parse_go_time(text)) == text


def test_ps_sorted_by_expiry_descending(make: Make) -> None:
    fake, client = make()
    load(client, "tiny2", "5m")
    load(client, "tiny", -1)
    load(client, "tiny3", "1h")
    fake.wait_idle()
    assert names(client) == ["tiny:latest", "tiny3:latest", "tiny2:latest"]


def test_first_request_in_flight_reports_now_plus_duration(
    make: Make, pool: ThreadPoolExecutor
) -> None:
    fake, client = make()
    fake.hold_requests("tiny")
    future = pool.submit(generate_long, client, "tiny", 15, keep_alive="5m")
    wait_until(lambda: fake.loaded())
    assert runner(fake, "tiny:latest")["expires_at"] is None
    first = parse_go_time(ps(client)[0]["expires_at"])
    time.sleep(0.02)  # lets the clock move between the two polls
    before = time.time_ns()
    second = parse_go_time(ps(client)[0]["expires_at"])
    after = time.time_ns()
    assert second > first  # recomputed on every poll
    assert before + 5 * MINUTE <= second <= after + 5 * MINUTE
    fake.release_requests()
    assert future.result()["done_reason"] == "length"
    fake.wait_idle()
    idle_expiry = ps(client)[0]["expires_at"]
    # a busy runner that had gone idle keeps its previous deadline while busy
    future = start_generation(pool, fake, client, "tiny", 8)
    assert ps(client)[0]["expires_at"] == idle_expiry
    fake.release_requests()
    future.result()
    fake.wait_idle()
    assert ps(client)[0]["expires_at"] > idle_expiry


def test_list_loading_shows_a_loading_model(make: Make, pool: ThreadPoolExecutor) -> None:
    fake, client = make(list_loading=True)
    fake.hold_loads()
    future = pool.submit(load, client, "tiny", "1h")
    wait_until(lambda: fake.loading())
    before = time.time_ns()
    (entry,) = ps(client)
    after = time.time_ns()
    assert before + 60 * MINUTE <= parse_go_time(entry["expires_at"]) <= after + 60 * MINUTE
    assert runner(fake, "tiny:latest")["state"] == "loading"
    fake.release_loads()
    future.result()


def test_loading_model_not_listed_by_default(make: Make, pool: ThreadPoolExecutor) -> None:
    fake, client = make()
    fake.hold_loads()
    future = pool.submit(load, client, "tiny", "1h")
    wait_until(lambda: fake.loading())
    assert ps(client) == []
    fake.release_loads()
    future.result()
    assert names(client) == ["tiny:latest"]


# ------------------------------------------------------------------ residency rules


def test_absent_keep_alive_keeps_the_pin(make: Make) -> None:
    fake, client = make()
    load(client, "tiny", -1)
    load(client, "tiny")
    load(client, "tiny", None)
    generate_long(client, "tiny", 2)
    r = client.post("/v1/chat/completions", json={"model": "tiny", "messages": [{"content": "x"}]})
    assert r.json()["object"] == "chat.completion"
    fake.wait_idle()
    assert runner(fake, "tiny:latest")["keep_alive_ns"] == MAX_DURATION
    assert int(ps(client)[0]["expires_at"][:4]) > 2300
    load(client, "tiny", "5m")  # the client reset trap: an explicit value overrides the pin
    assert runner(fake, "tiny:latest")["keep_alive_ns"] == 5 * MINUTE


def test_model_expires_after_short_keep_alive(make: Make) -> None:
    fake, client = make()
    before = time.time_ns()
    load(client, "tiny", "1s")
    fake.wait_idle()
    after = time.time_ns()
    expires = parse_go_time(ps(client)[0]["expires_at"])
    assert before + S <= expires <= after + S  # the timer starts when the request ends
    polls: list[tuple[int, list[str]]] = []  # (when a poll was sent, what it listed)

    def gone() -> bool:
        polls.append((time.time_ns(), names(client)))
        return polls[-1][1] == []

    wait_until(gone)
    early = S // 100  # expires_at is stamped a few microseconds after the timer starts
    # listed until its expiry, gone after it: never unloaded early
    assert all(listed == ["tiny:latest"] for sent, listed in polls if sent < expires - early)
    assert time.time_ns() >= expires - early


def test_explicit_unload_of_idle_model(make: Make) -> None:
    _, client = make()
    load(client, "tiny", "5m")
    assert unload(client, "tiny")["done_reason"] == "unload"
    wait_until(lambda: ps(client) == [])
    # not loaded: still 200 "unload"; chat has its own shape
    assert unload(client, "tiny")["done_reason"] == "unload"
    r = client.post("/api/chat", json={"model": "tiny", "messages": [], "keep_alive": 0})
    body = r.json()
    assert list(body) == ["model", "created_at", "message", "done", "done_reason"]
    assert body["message"] == {"role": "assistant", "content": ""}
    assert body["done_reason"] == "unload"


def test_explicit_unload_of_busy_model_waits_for_the_request(
    make: Make, pool: ThreadPoolExecutor
) -> None:
    fake, client = make()
    load(client, "tiny2", "5m")
    future = start_generation(pool, fake, client, "tiny2", 20)
    asked = time.time_ns()
    # answered while the generation is held: it does not wait for the request
    assert unload(client, "tiny2")["done_reason"] == "unload"
    (entry,) = ps(client)
    assert asked <= parse_go_time(entry["expires_at"]) <= time.time_ns()  # in the past
    assert runner(fake, "tiny2:latest")["keep_alive_ns"] == 0
    assert not future.done()
    fake.release_requests()
    reply = future.result()
    assert reply["done_reason"] == "length"  # not cut short
    assert reply["eval_count"] == 20
    wait_until(lambda: ps(client) == [])


def test_generation_with_keep_alive_zero_unloads_afterwards(make: Make) -> None:
    _, client = make()
    reply = generate_long(client, "tiny", 4, keep_alive=0)
    assert reply["done_reason"] == "length"
    wait_until(lambda: ps(client) == [])


def test_eviction_prefers_shortest_keep_alive(make: Make) -> None:
    fake, client = make(max_loaded=2)
    load(client, "tiny", -1)
    load(client, "tiny2", "5m")
    load(client, "tiny3", "5m")
    fake.wait_idle()
    assert sorted(names(client)) == ["tiny3:latest", "tiny:latest"]
    assert fake.load_history == ["tiny:latest", "tiny2:latest", "tiny3:latest"]


def test_pinned_model_is_evicted_when_it_is_the_only_idle_one(
    make: Make, pool: ThreadPoolExecutor
) -> None:
    fake, client = make(max_loaded=2)
    load(client, "tiny", -1)
    load(client, "tiny2", "5m")
    future = start_generation(pool, fake, client, "tiny2", 20)
    load(client, "tiny3", "5m")  # never refused because of a pin
    assert not future.done()  # loaded while tiny2 still generates
    assert sorted(names(client)) == ["tiny2:latest", "tiny3:latest"]
    fake.release_requests()
    future.result()


def test_eviction_tie_breaks_on_digest(make: Make) -> None:
    fake, client = make()  # 3 runners max, as on CPU
    load(client, "tiny", -1)
    load(client, "tiny2", -1)
    r = client.post("/api/embed", json={"model": "tiny-embed", "input": [], "keep_alive": -1})
    assert r.json() == {"model": "tiny-embed", "embeddings": []}
    load(client, "tiny3", "5m")
    fake.wait_idle()
    # tiny2's digest (792e...) sorts first among the equal forever pins (transcript 52)
    listed = names(client)
    assert sorted(listed[:2]) == ["tiny-embed:latest", "tiny:latest"]
    assert listed[2] == "tiny3:latest"


def test_busy_victim_is_drained_before_the_new_load(make: Make, pool: ThreadPoolExecutor) -> None:
    fake, client = make(max_loaded=1)
    load(client, "tiny", -1)
    fake.wait_idle()
    pinned_expiry = ps(client)[0]["expires_at"]
    future = start_generation(pool, fake, client, "tiny", 20)
    loading = pool.submit(load, client, "tiny2", "5m")
    wait_until(lambda: runner(fake, "tiny:latest")["keep_alive_ns"] == 0)
    assert ps(client)[0]["expires_at"] == pinned_expiry  # evicted pin keeps its far date
    assert not loading.done()  # waits for the busy victim
    assert fake.loading() == []
    fake.release_requests()
    assert loading.result()["done_reason"] == "load"
    assert future.result()["done_reason"] == "length"  # drained, not cut short
    assert fake.load_history == ["tiny:latest", "tiny2:latest"]
    assert names(client) == ["tiny2:latest"]


def test_memory_budget_eviction(make: Make) -> None:
    models = [
        FakeModel("a", size=100),
        FakeModel("b", size=100),
        FakeModel("c", size=150),
        FakeModel("huge", size=1000),
    ]
    fake, client = make(models=models, memory_budget=260, max_loaded=10)
    load(client, "a", -1)
    load(client, "b", "5m")
    load(client, "c")
    assert sorted(names(client)) == ["a:latest", "c:latest"]
    load(client, "b", "1h")  # c has the default 5m: shortest, goes first
    assert sorted(names(client)) == ["a:latest", "b:latest"]
    load(client, "huge")  # does not fit at all: everything goes, then it loads anyway
    fake.wait_idle()
    assert names(client) == ["huge:latest"]


def test_partial_offload(make: Make) -> None:
    fake, client = make(gpu_memory=4_000_000_000)
    load(client, "llama3.2", -1)
    load(client, "qwen2.5:14b", "5m")
    load(client, "tiny", "5m", options={"num_gpu": 0})
    fake.wait_idle()
    by_name = {m["name"]: m for m in ps(client)}
    llama = by_name["llama3.2:latest"]
    assert llama["size_vram"] == llama["size"] == 3_442_000_000
    assert llama["context_length"] == 4096  # default num_ctx, below the training context
    qwen = by_name["qwen2.5:14b"]
    assert qwen["size"] == 10_180_000_000
    assert qwen["size_vram"] == 4_000_000_000 - 3_442_000_000  # the rest runs on the CPU
    assert by_name["tiny:latest"]["size_vram"] == 0


def test_num_ctx_reload_when_loaded_with_explicit_value(make: Make) -> None:
    fake, client = make()
    load(client, "tiny", -1, options={"num_ctx": 256})
    assert ps(client)[0]["context_length"] == 256
    load(client, "tiny", options={"num_ctx": 256})
    assert fake.load_history == ["tiny:latest"]
    assert runner(fake, "tiny:latest")["keep_alive_ns"] == MAX_DURATION
    load(client, "tiny")  # automatic num_ctx differs from 256: reload, pin lost
    fake.wait_idle()
    assert fake.load_history == ["tiny:latest", "tiny:latest"]
    (entry,) = ps(client)
    assert entry["context_length"] == 512
    assert runner(fake, "tiny:latest")["keep_alive_ns"] == 5 * MINUTE


def test_num_ctx_reload_when_loaded_automatically(make: Make) -> None:
    fake, client = make()
    load(client, "tiny", -1)
    assert ps(client)[0]["context_length"] == 512
    load(client, "tiny")
    assert fake.load_history == ["tiny:latest"]
    load(client, "tiny", options={"num_ctx": 512})  # 512 != automatic (4096 requested)
    fake.wait_idle()
    assert fake.load_history == ["tiny:latest", "tiny:latest"]
    assert ps(client)[0]["context_length"] == 512
    assert runner(fake, "tiny:latest")["keep_alive_ns"] == 5 * MINUTE


def test_one_load_at_a_time_but_loaded_models_answer(make: Make, pool: ThreadPoolExecutor) -> None:
    fake, client = make()
    load(client, "tiny3", -1)
    fake.hold_loads()
    first = pool.submit(load, client, "tiny", "5m")
    second = pool.submit(load, client, "tiny2", "5m")
    wait_until(lambda: len(fake.requests_to("/api/generate")) == 3 and fake.loading())
    load(client, "tiny3")  # already loaded: answered while the loads are held
    assert len(fake.loading()) == 1  # the other load waits its turn
    assert not first.done() and not second.done()
    fake.release_loads()
    first.result()
    second.result()
    assert sorted(fake.load_history) == ["tiny2:latest", "tiny3:latest", "tiny:latest"]


# ------------------------------------------------------------------ response shapes


def test_preload_never_streams(make: Make) -> None:
    _, client = make()
    for extra in ({}, {"stream": True}, {"stream": False}):
        r = client.post("/api/generate", json={"model": "tiny", "prompt": "", **extra})
        assert r.headers["content-type"] == JSON_TYPE
        body = r.json()
        assert list(body) == ["model", "created_at", "response", "done", "done_reason"]
        assert (body["response"], body["done"], body["done_reason"]) == ("", True, "load")
    r = client.post("/api/chat", json={"model": "tiny", "messages": [], "keep_alive": -1})
    assert r.headers["content-type"] == JSON_TYPE
    body = r.json()
    assert list(body) == ["model", "created_at", "message", "done", "done_reason"]
    assert (body["message"], body["done_reason"]) == ({"role": "assistant", "content": ""}, "load")


def test_streaming_generation(make: Make) -> None:
    _, client = make()
    body = {"model": "tiny", "prompt": "hello world", "options": {"num_predict": 4}}
    with client.stream("POST", "/api/generate", json=body) as r:
        assert r.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert len(lines) == 5
    assert list(lines[0]) == ["model", "created_at", "response", "done"]
    assert all(line["done"] is False for line in lines[:-1])
    final = lines[-1]
    assert list(final) == [
        "model",
        "created_at",
        "response",
        "done",
        "done_reason",
        "context",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ]
    assert (final["response"], final["done_reason"], final["eval_count"]) == ("", "length", 4)
    assert final["load_duration"] > 10_000_000  # a cold load, in nanoseconds


def test_non_streaming_generation_and_chat(make: Make) -> None:
    _, client = make()
    reply = generate_long(client, "tiny", 3)
    assert reply["response"] == " The model is"
    assert reply["eval_count"] == 3
    assert isinstance(reply["total_duration"], int)
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    r = client.post("/api/chat", json={**body, "options": {"num_predict": 2}})
    chat = r.json()
    assert list(chat)[:5] == ["model", "created_at", "message", "done", "done_reason"]
    assert chat["message"] == {"role": "assistant", "content": " The model"}


def test_openai_chat_completion(make: Make) -> None:
    fake, client = make()
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    r = client.post("/v1/chat/completions", json=body)
    assert r.json()["choices"][0]["message"]["content"] == " The model"
    assert runner(fake, "tiny:latest")["keep_alive_ns"] == 5 * MINUTE
    r = client.post("/v1/chat/completions", json={"model": "nope", "messages": []})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "model 'nope' not found"


# ------------------------------------------------------------------ embedding models


def test_embedding_model_rules(make: Make) -> None:
    fake, client = make()
    for body in ({"prompt": "", "keep_alive": -1}, {"prompt": "hi", "stream": False}):
        r = client.post("/api/generate", json={"model": "tiny-embed", **body})
        assert (r.status_code, r.text) == (
            400,
            '{"error":"\\"tiny-embed\\" does not support generate"}',
        )
    r = client.post("/api/chat", json={"model": "tiny-embed", "messages": [], "keep_alive": -1})
    assert (r.status_code, r.json()) == (400, {"error": '"tiny-embed" does not support chat'})
    assert fake.loaded() == []
    # preload through /api/embed, with no input, "" or []
    for extra in ({}, {"input": ""}, {"input": []}):
        r = client.post("/api/embed", json={"model": "tiny-embed", "keep_alive": -1, **extra})
        assert (r.status_code, r.text) == (200, '{"model":"tiny-embed","embeddings":[]}')
    assert names(client) == ["tiny-embed:latest"]
    assert ps(client)[0]["size"] == 5_298_688
    # the unload shortcut runs before the capability check
    assert unload(client, "tiny-embed")["done_reason"] == "unload"
    wait_until(lambda: ps(client) == [])
    # embed with keep_alive 0 has no shortcut: it loads, then unloads once idle
    r = client.post("/api/embed", json={"model": "tiny-embed", "keep_alive": 0})
    assert r.json() == {"model": "tiny-embed", "embeddings": []}
    assert fake.load_history == ["tiny-embed:latest", "tiny-embed:latest"]
    wait_until(lambda: ps(client) == [])
    r = client.post("/api/embeddings", json={"model": "tiny-embed", "keep_alive": "30s"})
    assert r.text == '{"embedding":[]}'
    assert runner(fake, "tiny-embed:latest")["keep_alive_ns"] == 30 * S
    r = client.post("/api/embed", json={"model": "tiny-embed", "input": ["a", "b"]})
    vectors = r.json()["embeddings"]
    assert len(vectors) == 2
    assert len(vectors[0]) == 64
    r = client.post("/api/embeddings", json={"model": "tiny-embed", "prompt": "hello"})
    assert len(r.json()["embedding"]) == 64


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/api/generate", b'{"model":"tiny",', 400, "unexpected EOF"),
        ("/api/generate", b"", 400, "missing request body"),
        ("/api/chat", b"  ", 400, "missing request body"),
        ("/api/embed", b"", 400, "missing request body"),
        ("/api/embeddings", b"", 400, "missing request body"),
        (
            "/api/generate",
            b'{"model": tiny}',
            400,
            "invalid character 't' looking for beginning of value",
        ),
        (
            "/api/generate",
            b'{"model":"tiny" "x"}',
            400,
            "invalid character '\"' after object key:value pair",
        ),
        (
            "/api/generate",
            b"[]",
            400,
            "json: cannot unmarshal array into Go value of type api.GenerateRequest",
        ),
        (
            "/api/generate",
            b'{"model":"tiny","prompt":5}',
            400,
            "json: cannot unmarshal number into Go struct field GenerateRequest.prompt"
            " of type string",
        ),
        ("/api/generate", b'{"prompt":"","keep_alive":0}', 404, "model '' not found"),
        (
            "/api/generate",
            b'{"model":"doesnotexist","keep_alive":0}',
            404,
            "model 'doesnotexist' not found",
        ),
        ("/api/generate", b'{"model":"bad name!"}', 400, "invalid model name"),
        ("/api/chat", b'{"messages":[]}', 400, "model is required"),
        (
            "/api/chat",
            b'{"model":"doesnotexist","messages":[]}',
            404,
            "model 'doesnotexist' not found",
        ),
        ("/api/embed", b"{}", 404, "model '' not found"),
        ("/api/embed", b'{"model":"nope"}', 404, 'model "nope" not found, try pulling it first'),
        ("/api/embed", b'{"model":"tiny-embed","input":[1]}', 400, "invalid input type"),
        ("/api/embeddings", b"{}", 400, "model is required"),
        (
            "/api/embeddings",
            b'{"model":"nope"}',
            404,
            'model "nope" not found, try pulling it first',
        ),
        (
            "/api/generate",
            b'{"model":"tiny","options":{"num_ctx":"big"}}',
            500,
            'option "num_ctx" must be of type integer',
        ),
        (
            "/api/generate",
            b'{"model":"tiny","think":true}',
            400,
            '"tiny" does not support thinking',
        ),
    ],
)
def test_error_bodies(make: Make, path: str, body: bytes, status: int, error: str) -> None:
    fake, client = make()
    r = client.post(path, content=body)
    assert (r.status_code, r.json()) == (status, {"error": error})
    assert r.headers["content-type"] == JSON_TYPE
    assert fake.loaded() == []


def test_go_json_is_case_insensitive_and_ignores_trailing_data(make: Make) -> None:
    fake, client = make()
    r = client.post("/api/generate", content=b'{"Model":"tiny","KEEP_ALIVE":-1} trailing')
    assert r.json()["done_reason"] == "load"
    assert runner(fake, "tiny:latest")["keep_alive_ns"] == MAX_DURATION


# ------------------------------------------------------------------ lifecycle


def test_restart_drops_models_and_keeps_the_port(make: Make) -> None:
    fake, client = make()
    load(client, "tiny", -1)
    url = fake.url
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        client.get("/api/version")
    fake.start()
    assert fake.url == url
    assert ps(client) == []
    load(client, "tiny", -1)
    fake.restart(down_for=0.05)
    assert fake.url == url
    assert ps(client) == []


def test_stop_during_load_leaves_nothing(make: Make, pool: ThreadPoolExecutor) -> None:
    fake, client = make()
    fake.hold_loads()
    future = pool.submit(client.post, "/api/generate", json={"model": "tiny", "keep_alive": -1})
    wait_until(lambda: fake.loading())
    fake.restart()
    with pytest.raises(httpx.TransportError):
        future.result()
    assert fake.loaded() == []
    assert fake.loading() == []
    assert ps(client) == []


def test_reset_keeps_serving(make: Make) -> None:
    fake, client = make()
    load(client, "tiny", -1)
    fake.fail_next("/api/ps", 500, "boom")
    fake.reset()
    assert ps(client) == []
    assert fake.requests_to("/api/ps") == [fake.requests[-1]]
    load(client, "tiny", "1s")
    assert names(client) == ["tiny:latest"]


def test_client_disconnect_aborts_the_load(make: Make) -> None:
    fake, client = make(list_loading=True)
    fake.hold_loads()
    body = json.dumps({"model": "tiny", "prompt": "", "keep_alive": -1}).encode()
    head = (
        f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:{fake.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", fake.port)) as sock:
        sock.sendall(head + body)
        wait_until(lambda: fake.loading())
        assert names(client) == ["tiny:latest"]  # listed while loading (list_loading)
    wait_until(lambda: not fake.loading())
    assert fake.loaded() == []
    assert fake.load_history == []
    assert ps(client) == []
    assert len(fake.requests_to("/api/generate")) == 1


def test_wait_idle_times_out(make: Make, pool: ThreadPoolExecutor) -> None:
    fake, client = make()
    fake.hold_loads()
    future = pool.submit(load, client, "tiny")
    wait_until(lambda: fake.loading())
    with pytest.raises(TimeoutError):
        fake.wait_idle(timeout=0.05)
    fake.release_loads()
    future.result()
    fake.wait_idle()


# ------------------------------------------------------------------ faults and recording


def test_fail_next(make: Make) -> None:
    fake, client = make()
    fake.fail_next("/api/ps", 500, "boom", times=2)
    for _attempt in range(2):
        r = client.get("/api/ps")
        assert (r.status_code, r.json()) == (500, {"error": "boom"})
    assert r.headers["content-type"] == JSON_TYPE
    assert client.get("/api/ps").status_code == 200


def test_fail_load(make: Make) -> None:
    fake, client = make()
    fake.fail_load("tiny")
    r = client.post("/api/generate", json={"model": "tiny", "keep_alive": -1})
    assert (r.status_code, r.json()) == (500, {"error": DEFAULT_LOAD_ERROR})
    r = client.post("/api/embed", json={"model": "tiny", "keep_alive": -1})
    assert r.status_code == 500
    assert fake.loaded() == []
    fake.clear_faults()
    assert load(client, "tiny", -1)["done_reason"] == "load"


def test_hang_next(make: Make) -> None:
    fake, client = make()
    fake.hang_next("/api/version", 3600)  # until the server stops
    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/version", timeout=0.1)
    assert client.get("/api/version").status_code == 200


def test_stream_error_next(make: Make) -> None:
    fake, client = make()
    message = "model runner has unexpectedly stopped"
    fake.stream_error_next(message)
    body = {"model": "tiny", "prompt": "hi", "options": {"num_predict": 5}}
    with client.stream("POST", "/api/generate", json=body) as r:
        assert r.status_code == 200
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines[0]["done"] is False
    assert lines[1:] == [{"error": message}]


def test_per_model_load_delay(make: Make, pool: ThreadPoolExecutor) -> None:
    fake, client = make()
    fake.set_load_delay(3600, model="tiny2")
    load(client, "tiny")  # not delayed: answers within the client's timeout
    future = pool.submit(load, client, "tiny2")
    wait_until(lambda: fake.loading() == ["tiny2:latest"])
    load(client, "tiny")  # a loaded model still answers meanwhile
    assert fake.loading() == ["tiny2:latest"]
    fake.stop()  # ends the hour-long load
    with pytest.raises(httpx.TransportError):
        future.result()
    assert fake.load_history == ["tiny:latest"]


def test_hold_loads(make: Make, pool: ThreadPoolExecutor) -> None:
    fake, client = make(max_loaded=5)
    fake.hold_loads("tiny2")
    load(client, "tiny")  # another model is not held
    held = pool.submit(load, client, "tiny2", -1)
    wait_until(lambda: fake.loading() == ["tiny2:latest"])
    fake.release_loads("tiny")  # a hold on another model: no effect
    assert fake.loading() == ["tiny2:latest"] and not held.done()
    fake.release_loads("tiny2")
    assert held.result()["done_reason"] == "load"
    fake.hold_loads()  # every model
    queued = pool.submit(load, client, "tiny3")
    wait_until(lambda: fake.loading() == ["tiny3:latest"])
    fake.clear_faults()  # ends every hold
    assert queued.result()["done_reason"] == "load"
    assert fake.load_history == ["tiny:latest", "tiny2:latest", "tiny3:latest"]


def test_hold_requests(make: Make, pool: ThreadPoolExecutor) -> None:
    fake, client = make()
    load(client, "tiny", -1)
    fake.hold_requests("tiny")
    held = pool.submit(generate_long, client, "tiny", 3)
    wait_until(lambda: runner(fake, "tiny:latest")["in_use"] == 1)
    assert generate_long(client, "tiny2", 3)["eval_count"] == 3  # other models answer
    assert not held.done()
    fake.release_requests()
    assert held.result()["eval_count"] == 3
    fake.wait_idle()
    assert runner(fake, "tiny:latest")["in_use"] == 0
    # a held request whose client goes away ends, and its runner is free again
    fake.hold_requests()
    body = json.dumps({"model": "tiny", "prompt": "hi", "stream": False}).encode()
    head = (
        f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:{fake.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", fake.port)) as sock:
        sock.sendall(head + body)
        wait_until(lambda: runner(fake, "tiny:latest")["in_use"] == 1)
    wait_until(lambda: runner(fake, "tiny:latest")["in_use"] == 0)
    fake.wait_idle()


def test_requests_are_recorded(make: Make) -> None:
    fake, client = make()
    client.get("/api/ps?x=1")
    client.post("/api/generate", json={"model": "tiny", "keep_alive": -1})
    client.post("/api/generate", content=b"{broken")
    recorded = [(r.method, r.path, r.json) for r in fake.requests]
    assert recorded == [
        ("GET", "/api/ps", None),
        ("POST", "/api/generate", {"model": "tiny", "keep_alive": -1}),
        ("POST", "/api/generate", None),
    ]
    assert fake.requests[0].query == "x=1"
    assert fake.requests[2].body == b"{broken"
    fake.clear_requests()
    assert fake.requests == []


def test_preload_helper(make: Make) -> None:
    fake, client = make(max_loaded=1)
    fake.preload("tiny", -1)
    assert runner(fake, "tiny:latest")["expires_at"] is not None  # the request has ended
    fake.preload("tiny2", "5m", num_ctx=256)
    assert names(client) == ["tiny2:latest"]
    assert ps(client)[0]["context_length"] == 256
    with pytest.raises(KeyError):
        fake.preload("nope")


def test_standalone_command() -> None:
    script = Path(__file__).with_name("fakeollama")  # a package directory with __main__.py
    cmd = [sys.executable, str(script), "--port", "0", "--preload", "tiny:-1"]
    cmd += ["--preload", "tiny2:latest:5m"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            url = line.rsplit(" ", 1)[-1].strip()
            assert url.startswith("http://127.0.0.1:")
            with httpx.Client(base_url=url, timeout=60, verify=False) as client:
                models = ps(client)
            assert [m["name"] for m in models] == ["tiny:latest", "tiny2:latest"]
            assert int(models[0]["expires_at"][:4]) > 2300
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def test_standalone_writes_a_log_with_its_memory_budget(tmp_path: Path) -> None:
    """The trial's case: `--memory-budget` never reached the log, and there was no --log."""
    script = Path(__file__).with_name("fakeollama")
    log = tmp_path / "ollama.log"
    help_text = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--log FILE" in help_text and "--debug-log" in help_text
    cmd = [sys.executable, str(script), "--port", "0", "--log", str(log), "--debug-log"]
    cmd += ["--memory-budget", str(8 * 1024**3), "--preload", "tiny:-1"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert "listening on" in proc.stdout.readline()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    text = log.read_text()
    assert 'msg="inference compute"' in text and 'total="8.0 GiB"' in text
    assert re.search(r'msg="system memory" total="8\.0 GiB" free="8\.0 GiB"', text), text
    assert "level=DEBUG" in text
