"""Several hosts per command (issue #14): asked at once, a HOST column and a `host` field,
a down host is a row saying so, and exit codes that say what happened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Run, closed_port, wait_until
from fakeollama import MAX_DURATION, FakeOllama
from ollama_resident.cli._ps_hosts import PS_KEYS


@pytest.fixture
def three() -> Iterator[tuple[FakeOllama, FakeOllama, FakeOllama]]:
    """Two live servers and a third one stopped (connection refused on its port)."""
    a, b, c = FakeOllama().start(), FakeOllama().start(), FakeOllama().start()
    c.stop()
    try:
        yield a, b, c
    finally:
        for s in (a, b):
            s.release_path()
            s.stop()


def _hosts(*servers: FakeOllama) -> list[str]:
    return [arg for s in servers for arg in ("--host", s.url)]


def _pinned(server: FakeOllama, model: str) -> bool:
    return any(r["name"] == model and r["keep_alive_ns"] == MAX_DURATION for r in server.loaded())


def test_ps_of_three_hosts_one_down(cli, three):
    a, b, c = three
    a.preload("tiny", -1)
    b.preload("tiny2", "1h")
    run: Run = cli("ps", *_hosts(a, b, c), env={"COLUMNS": "120"})
    assert run.exit_code == 1, run
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["HOST", "NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    rows = [line.split(None, 2) for line in lines[1:]]
    assert [(r[0], r[1]) for r in rows] == [
        (a.url, "tiny:latest"),
        (b.url, "tiny2:latest"),
        (c.url, "(unreachable)"),
    ]
    assert rows[0][2].endswith("Forever")
    assert len(rows[2]) == 2  # why it is down: on its own line, not in a column
    assert f"error: cannot reach Ollama at {c.url} (connection refused)" in run.stderr
    # At 80 columns the table still fits, the countdowns whole, the error on one line.
    narrow = cli("ps", *_hosts(a, b, c), env={"COLUMNS": "80"})
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    assert "Forever" in narrow.stdout
    assert f"error: cannot reach Ollama at {c.url} (connection refused)\n" in narrow.stderr


def test_ps_json_has_a_host_field_per_row(cli, three):
    a, b, c = three
    a.preload("tiny", -1)
    # /api/ps lists the longest remaining first, by the second: equal keep-alives would order
    # by whether the two loads fell in the same second.
    b.preload("tiny2", "2h")
    b.preload("tiny3", "1h")
    run = cli("ps", "--json", *_hosts(a, b, c))
    assert run.exit_code == 1
    items = json.loads(run.stdout)
    # Hosts in the order given; within a host, Ollama's own order.
    assert [(i["host"], i["name"]) for i in items] == [
        (a.url, "tiny:latest"),
        (b.url, "tiny2:latest"),
        (b.url, "tiny3:latest"),
        (c.url, None),
    ]
    assert all(set(i) == {*PS_KEYS, "host", "error"} for i in items)
    assert [i["error"] for i in items[:3]] == [None, None, None]
    assert items[3]["state"] == "unreachable"
    assert items[3]["error"] == f"cannot reach Ollama at {c.url} (connection refused)"
    # One host alone keeps the single-host contract: no host field.
    single = json.loads(cli("ps", "--json", "--host", a.url).stdout)
    assert "host" not in single[0]


def test_every_host_down_is_exit_3_and_credentials_never_show(cli):
    dead = [f"http://127.0.0.1:{closed_port()}", f"http://alice:s3cret@127.0.0.1:{closed_port()}"]
    run = cli("ps", "--host", dead[0], "--host", dead[1])
    assert run.exit_code == 3
    json_run = cli("ps", "--json", "--host", dead[0], "--host", dead[1])
    assert json_run.exit_code == 3
    for text in (run.stdout, run.stderr, json_run.stdout, json_run.stderr):
        assert "s3cret" not in text and "alice" not in text
    assert "***@127.0.0.1:" in run.stdout


def test_ps_all_hosts_takes_every_host_of_the_profiles_file(cli, isolated_env: Path, three):
    a, b, c = three
    a.preload("tiny", -1)
    b.preload("tiny2", -1)
    (isolated_env / "profiles.toml").write_text(
        f'[profiles.x]\nhost = "{a.url}"\nmodels = ["tiny"]\n\n'
        f'[profiles.y]\nhost = "{b.url}"\nmodels = ["tiny2"]\n\n'
        f'[profiles.z]\nhost = "{a.url}/"\nmodels = ["tiny3"]\n\n'
        '[profiles.local]\nmodels = ["tiny"]\n'
    )
    os.environ["OLLAMA_HOST"] = c.url  # the default host: down
    run = cli("ps", "--all-hosts", "--json")
    assert run.exit_code == 1
    items = json.loads(run.stdout)
    assert [(i["host"], i["name"]) for i in items] == [
        (a.url, "tiny:latest"),
        (b.url, "tiny2:latest"),
        (c.url, None),
    ]


def test_hosts_are_asked_at_once(three, tmp_path: Path):
    """Both servers hold their /api/ps: both requests wait together, so neither waited for
    the other's answer (N hosts take as long as the slowest, not the sum)."""
    a, b, _c = three
    a.preload("tiny", -1)
    b.preload("tiny2", -1)
    a.hold_path("/api/ps")
    b.hold_path("/api/ps")
    env = {**os.environ, "OLLAMA_RESIDENT_HOME": str(tmp_path), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "ps", "--json", "--timeout", "60", *_hosts(a, b)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: a.waiting_on("/api/ps") == 1 and b.waiting_on("/api/ps") == 1, 30)
        assert proc.poll() is None
        # b answers first, a last: the output still follows the order the hosts were given.
        b.release_path()
        wait_until(lambda: b.waiting_on("/api/ps") == 0, 30)
    finally:
        a.release_path()
        b.release_path()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert [i["host"] for i in json.loads(out)] == [a.url, b.url]


def test_a_slow_host_does_not_hold_back_the_others_in_watch(three, tmp_path: Path):
    """`watch --host A --host B`: while A hangs, B's events keep coming."""
    a, b, _c = three
    env = {**os.environ, "OLLAMA_RESIDENT_HOME": str(tmp_path), "NO_COLOR": "1"}
    a.hold_path("/api/ps")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ollama_resident",
            "watch",
            "--jsonl",
            "-n",
            "0.1",
            *_hosts(a, b),
            "--timeout",
            "60",
            "--no-journal",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events: list[dict] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: a.waiting_on("/api/ps") == 1, 30)
        b.preload("tiny2", "1h")
        wait_until(lambda: any(e["host"] == b.url and e["event"] == "loaded" for e in events), 30)
        assert a.waiting_on("/api/ps") == 1  # A still has not answered
        assert not [e for e in events if e["host"] == a.url]
    finally:
        a.release_path()
        proc.terminate()
        proc.wait(timeout=10)
        reader.join(10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0


def test_pin_on_several_hosts(cli, three):
    a, b, c = three
    run = cli("pin", "tiny", *_hosts(a, b))
    assert run.exit_code == 0, run
    assert _pinned(a, "tiny:latest") and _pinned(b, "tiny:latest")
    # Each message names its host.
    lines = run.stderr.splitlines()
    assert {line.split()[0] for line in lines} == {a.url, b.url}
    docs = json.loads(cli("pin", "tiny", "--json", *_hosts(a, b)).stdout)
    assert [(d["host"], d["status"]) for d in docs] == [(a.url, "unchanged"), (b.url, "unchanged")]
    # One host down: the others are pinned, exit 1; the dead one is an item with its error.
    run = cli("preload", "tiny2", "--json", *_hosts(a, c))
    assert run.exit_code == 1
    docs = json.loads(run.stdout)
    assert [d["host"] for d in docs] == [a.url, c.url]
    assert docs[0]["status"] == "loaded"
    assert docs[1]["error"].startswith("cannot reach Ollama") and docs[1]["exit_code"] == 3
    dead = f"http://127.0.0.1:{closed_port()}"
    assert cli("pin", "tiny", "--host", c.url, "--host", dead).exit_code == 3


def test_unload_and_apply_on_several_hosts(cli, isolated_env: Path, three):
    a, b, _c = three
    (isolated_env / "profiles.toml").write_text(
        '[profiles.w]\nkeep_alive = "forever"\nmodels = ["tiny", "tiny2"]\n'
    )
    run = cli("apply", "w", "--json", *_hosts(a, b))
    assert run.exit_code == 0, run
    docs = json.loads(run.stdout)
    assert [(d["host"], d["ok"]) for d in docs] == [(a.url, True), (b.url, True)]
    for s in (a, b):
        assert _pinned(s, "tiny:latest") and _pinned(s, "tiny2:latest")
    assert cli("apply", "nope", *_hosts(a, b)).exit_code == 2
    assert cli("apply", "w", "--background", *_hosts(a, b)).exit_code == 2
    run = cli("unload", "tiny2", *_hosts(a, b))
    assert run.exit_code == 0, run
    for s in (a, b):
        wait_until(lambda s=s: [r["name"] for r in s.loaded()] == ["tiny:latest"])
