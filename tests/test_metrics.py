"""Prometheus metrics (issue #14): the exposition parses with prometheus_client's own
parser, follows the naming rules, and changes when a model unloads."""

from __future__ import annotations

import math
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Run, wait_until
from fakeollama import FakeOllama
from ollama_resident.client import OllamaClient
from ollama_resident.events import Event
from ollama_resident.host import parse_host
from ollama_resident.metrics import Board, Counters, HostView, exposition
from ollama_resident.metrics_http import MetricsServer
from ollama_resident.models import PsSnapshot
from ollama_resident.watcher import Watcher

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(text: str, name: str, **labels: str) -> float | None:
    return _samples(text).get((name, tuple(sorted(labels.items()))))


def _snapshot(*models: dict) -> PsSnapshot:
    return PsSnapshot.from_api({"models": list(models)}, NOW)


def test_exposition_parses_and_says_what_is_loaded():
    snap = _snapshot(
        {
            "name": "pinned:latest",
            "size": 1000,
            "size_vram": 250,
            "expires_at": "2318-03-01T00:00:00Z",
        },
        {
            "name": "window:latest",
            "size": 10,
            "size_vram": 10,
            "expires_at": (NOW + timedelta(seconds=90)).isoformat(),
        },
    )
    views = [
        HostView("http://a:11434", True, snap, "0.24.0", 7, {"pinned:latest": "forever"}),
        HostView("http://b:11434", False, None, None, 0, {"x:latest": "forever"}),
    ]
    text = exposition(views, Counters(), NOW)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # Conventions: a prefix, counters named *_total (the parser strips it), base units.
    assert all(name.startswith("ollama_resident_") for name in families)
    assert families["ollama_resident_polls"].type == "counter"
    assert families["ollama_resident_model_expires_in_seconds"].type == "gauge"
    a = {"host": "http://a:11434"}
    assert _value(text, "ollama_resident_host_up", **a) == 1
    assert _value(text, "ollama_resident_host_up", host="http://b:11434") == 0
    assert _value(text, "ollama_resident_host_info", version="0.24.0", **a) == 1
    assert _value(text, "ollama_resident_polls_total", **a) == 7
    pinned = {**a, "model": "pinned:latest"}
    window = {**a, "model": "window:latest"}
    assert _value(text, "ollama_resident_model_loaded", **pinned) == 1
    assert _value(text, "ollama_resident_model_pinned", **pinned) == 1
    assert _value(text, "ollama_resident_model_pinned", **window) == 0
    assert _value(text, "ollama_resident_model_expires_in_seconds", **pinned) == math.inf
    assert _value(text, "ollama_resident_model_expires_in_seconds", **window) == 90
    assert _value(text, "ollama_resident_model_cpu_ratio", **pinned) == 0.75
    assert _value(text, "ollama_resident_model_cpu_ratio", **window) == 0
    assert _value(text, "ollama_resident_model_size_bytes", **pinned) == 1000
    assert _value(text, "ollama_resident_model_vram_bytes", **pinned) == 250
    guarded = {"keep_alive": "forever", **pinned}
    assert _value(text, "ollama_resident_model_guarded", **guarded) == 1
    # A host that is down shows no model state, only what the guard keeps there.
    down = [k[0] for k in _samples(text) if ("host", "http://b:11434") in k[1] and "model" in k[0]]
    assert down == ["ollama_resident_model_guarded"]
    # Every family has HELP and TYPE lines.
    for name in families:
        base = name + "_total" if families[name].type == "counter" else name
        assert f"# HELP {base} " in text and f"# TYPE {base} " in text


def test_a_guarded_model_that_is_gone_reads_zero():
    view = HostView("http://a:1", True, _snapshot(), "0.24.0", 1, {"tiny:latest": "forever"})
    text = exposition([view], None, NOW)
    assert _value(text, "ollama_resident_model_loaded", host="http://a:1", model="tiny:latest") == 0
    assert _value(text, "ollama_resident_model_pinned", host="http://a:1", model="tiny:latest") == 0


def test_hostile_labels_are_escaped():
    name = 'we"ird\\model\nname:latest'
    host = 'http://x"y\\z:1'
    snap = _snapshot({"name": name, "size": 1, "expires_at": "2318-01-01T00:00:00Z"})
    text = exposition([HostView(host, True, snap, 'v"1\n', 1)], None, NOW)
    assert _value(text, "ollama_resident_model_loaded", host=host, model=name) == 1
    assert _value(text, "ollama_resident_host_info", host=host, version='v"1\n') == 1
    # No raw line break inside a sample line.
    assert all(line.startswith(("#", "ollama_resident_")) for line in text.splitlines())


def test_counters_by_reason_and_guard_action():
    c = Counters()
    c.expect("h", ["tiny"])
    at = NOW
    c.count(
        [
            Event(at, "h", "tiny:latest", "unloaded", "expired"),
            Event(at, "h", "tiny:latest", "unloaded", "evicted"),
            Event(at, "h", "tiny:latest", "unloaded", "evicted"),
            Event(at, "h", "tiny:latest", "reasserted", "pin_lost"),
            Event(at, "h", "tiny:latest", "restored", "evicted"),
            Event(at, "h", None, "server_down"),
        ]
    )
    text = exposition([], c, NOW)
    m = {"host": "h", "model": "tiny:latest"}
    assert _value(text, "ollama_resident_unloads_total", reason="evicted", **m) == 2
    assert _value(text, "ollama_resident_unloads_total", reason="expired", **m) == 1
    assert _value(text, "ollama_resident_guard_repins_total", **m) == 1
    assert _value(text, "ollama_resident_guard_reloads_total", reason="evicted", **m) == 1
    # Expected series exist at zero before anything happened.
    assert _value(text, "ollama_resident_guard_restore_failures_total", **m) == 0


def test_endpoint_changes_when_a_model_unloads(ollama: FakeOllama):
    ollama.preload("tiny", -1)
    ollama.preload("tiny2", "1h")
    client = OllamaClient(parse_host(ollama.url), timeout=5)
    watcher = Watcher(client, 0.1, client.display_url, settle_s=0)
    board = Board()
    board.add(watcher)
    host = client.display_url
    with client, MetricsServer(board.render, "127.0.0.1", 0) as server:
        board.count(watcher.poll_once())
        reply = httpx.get(server.url)
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
        before = reply.text
        assert _value(before, "ollama_resident_model_loaded", host=host, model="tiny2:latest") == 1
        # Another client unloads tiny2; the next poll sees it go.
        body = {"model": "tiny2", "prompt": "", "keep_alive": 0, "stream": False}
        httpx.post(f"{ollama.url}/api/generate", json=body)
        wait_until(lambda: "tiny2:latest" not in [m["name"] for m in ollama.loaded()])
        board.count(watcher.poll_once())
        after = httpx.get(server.url).text
        assert after != before
        assert (
            _value(after, "ollama_resident_model_loaded", host=host, model="tiny2:latest") is None
        )
        assert _value(after, "ollama_resident_model_loaded", host=host, model="tiny:latest") == 1
        stopped = {"host": host, "model": "tiny2:latest", "reason": "stopped"}
        assert _value(after, "ollama_resident_unloads_total", **stopped) == 1
        assert httpx.get(server.url.replace("/metrics", "/nope")).status_code == 404
        # The server that goes down reads as down.
        ollama.stop()
        watcher.poll_once()
        assert _value(httpx.get(server.url).text, "ollama_resident_host_up", host=host) == 0


def test_port_in_use_is_a_usage_error(cli, ollama: FakeOllama):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        run: Run = cli("watch", "--jsonl", "--metrics-port", str(port))
    assert run.exit_code == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in run.stderr
    assert "hint:" in run.stderr


@pytest.fixture
def guard_proc(ollama: FakeOllama, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {
        **os.environ,
        "OLLAMA_HOST": ollama.url,
        "OLLAMA_RESIDENT_HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
    }
    argv = [sys.executable, "-m", "ollama_resident", "guard", "tiny", "-n", "0.1"]
    argv += ["--metrics-port", "0", "--no-journal"]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"serving metrics at (http://\S+)", line)
        assert match, line
        yield proc, match.group(1)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.mark.slow
def test_guard_serves_metrics_that_follow_its_repairs(ollama: FakeOllama, guard_proc):
    _proc, url = guard_proc
    host = ollama.url
    tiny = {"host": host, "model": "tiny:latest"}

    def scrape() -> str:
        return httpx.get(url, timeout=5).text

    wait_until(lambda: _value(scrape(), "ollama_resident_model_pinned", **tiny) == 1, 20)
    text = scrape()
    guarded = {"keep_alive": "forever", **tiny}
    assert _value(text, "ollama_resident_model_guarded", **guarded) == 1
    # Another client resets the pin: the guard re-pins, and counts it.
    ollama.wait_idle()
    httpx.post(f"{host}/api/generate", json={"model": "tiny", "keep_alive": "5m"})
    wait_until(
        lambda: (_value(scrape(), "ollama_resident_guard_repins_total", **tiny) or 0) >= 1, 20
    )
    # It is unloaded: the guard loads it again, and counts why it had gone.
    ollama.wait_idle()
    httpx.post(f"{host}/api/generate", json={"model": "tiny", "keep_alive": 0})

    def reloaded() -> bool:
        samples = _samples(scrape())
        return any(
            name == "ollama_resident_guard_reloads_total" and v >= 1
            for (name, _l), v in samples.items()
        )

    wait_until(reloaded, 20)
    reasons = {
        dict(labels)["reason"]
        for (name, labels), v in _samples(scrape()).items()
        if name == "ollama_resident_guard_reloads_total" and v >= 1
    }
    # Gone before its deadline: what the guard can say at once (the watcher settles the rest).
    assert reasons <= {"went_early", "stopped", "not_loaded", "unknown"}, reasons
    wait_until(lambda: _value(scrape(), "ollama_resident_model_pinned", **tiny) == 1, 20)


def test_metrics_cost_nothing_without_the_option():
    """http.server (and prometheus_client, ever) stay off commands that do not serve."""
    code = (
        "import sys\n"
        "from ollama_resident.cli import _build_command\n"
        "for name in ('guard', 'watch', 'ps', 'pin'):\n"
        "    _build_command(name)\n"
        "print(sorted(m for m in ('http.server', 'prometheus_client', 'ollama_resident.metrics',"
        " 'ollama_resident.fleet') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docs_list_every_metric_and_no_other():
    text = exposition([], None, NOW)
    emitted = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    docs = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `(ollama_resident_\w+)` \|", docs, re.M))
    assert documented == emitted


def test_a_host_with_credentials_is_labelled_without_them(ollama: FakeOllama):
    host = parse_host(ollama.url.replace("http://", "http://alice:s3cret@"))
    client = OllamaClient(host, timeout=5)
    watcher = Watcher(client, 0.1, client.display_url, settle_s=0)
    board = Board()
    board.add(watcher, {"tiny": "forever"})
    with client:
        board.count(watcher.poll_once())
    text = board.render()
    assert "s3cret" not in text and "alice" not in text
    assert _value(text, "ollama_resident_host_up", host=host.display) == 1
    assert host.display.startswith("http://***@")


def test_watch_of_two_hosts_serves_both(tmp_path: Path):
    a, b = FakeOllama().start(), FakeOllama().start()
    a.preload("tiny", -1)
    env = {**os.environ, "OLLAMA_RESIDENT_HOME": str(tmp_path), "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "ollama_resident", "watch", "--jsonl", "-n", "0.1"]
    argv += ["--host", a.url, "--host", b.url, "--metrics-port", "0", "--no-journal"]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        match = re.search(r"serving metrics at (http://\S+)", proc.stderr.readline())
        assert match
        url = match.group(1)

        def up(host: str) -> float | None:
            return _value(httpx.get(url, timeout=5).text, "ollama_resident_host_up", host=host)

        wait_until(lambda: up(a.url) == 1 and up(b.url) == 1, 20)
        text = httpx.get(url, timeout=5).text
        assert _value(text, "ollama_resident_model_pinned", host=a.url, model="tiny:latest") == 1
        b.stop()
        wait_until(lambda: up(b.url) == 0, 20)
        assert up(a.url) == 1
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        a.stop()
        b.stop()
