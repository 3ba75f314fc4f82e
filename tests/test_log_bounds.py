"""Reading a server log stays bounded (issue 13's loose ends): a device is refused, a stream
without newlines is not a log, an overlong line is cut, and a log command that stops
answering (journalctl, docker logs) is killed and named, in `why`, `watch` and `doctor`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Run
from fakeollama import FakeOllama
from ollama_resident import logsource
from ollama_resident.errors import LogUnreadable

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="journalctl")


@pytest.mark.parametrize("command", ["why", "watch", "doctor"])
def test_a_device_is_no_server_log(cli, ollama: FakeOllama, command: str) -> None:
    args = {"why": ["why", "tiny"], "watch": ["watch", "--jsonl"], "doctor": ["doctor", "--json"]}
    run: Run = cli(*args[command], "--server-log", "/dev/zero")
    if command == "doctor":  # doctor goes on without the log, and says why
        assert run.exit_code in (0, 1), run
        reason = json.loads(run.stdout)["facts"]["reason"]
        assert "/dev/zero: a device, not a log file" in reason, reason
        return
    assert run.exit_code == 2, run
    [line, hint] = run.stderr.splitlines()
    what = "cannot read the server log" if command == "why" else "cannot follow"
    why = "a device, not a log file (give - to read standard input)"
    assert line == f"error: {what} /dev/zero: {why}"
    assert hint.startswith("  hint: ")


def test_zeros_piped_in_are_not_a_log(ollama: FakeOllama, tmp_path: Path) -> None:
    """`why --server-log - < /dev/zero`: one error after 64 MiB, not a MemoryError or a hang."""
    env = {**os.environ, "OLLAMA_RESIDENT_HOME": str(tmp_path), "NO_COLOR": "1"}
    with open("/dev/zero", "rb") as zeros:
        done = subprocess.run(
            [sys.executable, "-m", "ollama_resident", "why", "tiny", "--server-log", "-"],
            stdin=zeros,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert done.returncode == 2, done
    assert done.stderr.splitlines()[0] == (
        "error: stdin is not a text log: 64 MiB without a newline"
    ), done.stderr


def test_a_100_mb_line_is_cut_and_the_lines_after_it_are_read(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    after = b'time=2026-01-01T00:00:00.000Z level=INFO source=routes.go:1 msg="after"\n'
    with path.open("wb") as fh:
        fh.write(b"before\n")
        block = b"x" * (1024 * 1024)
        for _ in range(100):
            fh.write(block)
        fh.write(b"\n" + after)
    src = logsource.from_file(path)
    lines: list[bytes] = []
    for text, first, _label in src.blocks:
        assert len(text) <= 4 * 1024 * 1024 + logsource.MAX_LINE  # bounded, whatever the line
        lines.extend(text.splitlines())
        assert first is None or first >= 1
    assert [len(x) for x in lines] == [6, logsource.MAX_LINE, len(after) - 1]
    assert lines[-1] == after.rstrip(b"\n")


def test_line_splitter_keeps_whole_lines_and_cuts_long_ones() -> None:
    cut = logsource.LineSplitter("t", give_up=None)
    assert cut.feed(b"ab") == b""
    assert cut.feed(b"c\nde") == b"abc\n"
    assert cut.feed(b"f" * (logsource.MAX_LINE + 10)) == b""
    assert len(cut.carry) == logsource.MAX_LINE
    assert cut.feed(b"g" * 5) == b""  # still the overlong line: skipped
    assert cut.feed(b"gg\nok\nrest") == b"de" + b"f" * (logsource.MAX_LINE - 2) + b"\nok\n"
    assert cut.carry == b"rest"
    stream = logsource.LineSplitter("the pipe", give_up=3 * logsource.MAX_LINE)
    with pytest.raises(LogUnreadable, match=r"^the pipe is not a text log"):
        for _ in range(5):
            stream.feed(b"\0" * logsource.MAX_LINE)


def _fake_command(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(0o755)


@linux_only
def test_a_journalctl_that_never_answers_is_killed_and_named(tmp_path: Path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    _fake_command(bin_dir, "journalctl", "sleep 600")  # a child: the whole group is killed
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path))
    src, attempts = logsource.discover("127.0.0.1", timeout=0.5)
    assert src is None
    # journald stuck: the user's journal is not tried (it would wait as long); the files are.
    assert [(a.name, a.reason) for a in attempts[:1]] == [
        ("journalctl -u ollama", "did not answer within 0.5s; stopped it"),
    ]
    assert [a.kind for a in attempts[1:]] == [k for k, _p in logsource._app_logs()]


@linux_only
def test_a_journalctl_that_stops_midway_ends_with_an_error_naming_it(
    tmp_path: Path, monkeypatch
) -> None:
    bin_dir = tmp_path / "bin"
    line = 'time=2026-01-01T00:00:00.000Z level=INFO source=routes.go:1 msg="hello"'
    _fake_command(bin_dir, "journalctl", f"echo '{line}'; sleep 600")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    src, _attempts = logsource.discover("127.0.0.1", timeout=0.5)
    assert src is not None and src.name == "journalctl -u ollama"
    read: list[bytes] = []
    with pytest.raises(LogUnreadable) as caught:
        for text, _first, _label in src.blocks:
            read.append(text)
    assert read == [line.encode() + b"\n"]
    assert (
        caught.value.message == "journalctl -u ollama gave no output for 0.5s; stopped reading it"
    )


@linux_only
def test_doctor_is_not_held_by_a_stuck_journalctl(
    cli, ollama: FakeOllama, tmp_path: Path, monkeypatch
) -> None:
    bin_dir = tmp_path / "bin"
    for name in ("journalctl", "systemctl", "docker"):
        _fake_command(bin_dir, name, "sleep 600")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    run = cli("doctor", "--json")
    assert run.exit_code in (0, 1), run
    reason = json.loads(run.stdout)["facts"]["reason"]
    assert "systemctl did not answer within 1s" in reason, reason
    assert "journalctl -u ollama: did not answer within 1s; stopped it" in reason, reason
