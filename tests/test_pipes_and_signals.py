"""Readers that go away, signals mid-write, and server text that would act on a terminal.

Issue 11, items 13 to 15. The pipe and signal tests run the real program in a
subprocess: a closed pipe and a SIGTERM are what a shell gives it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import Run, wait_until
from fakeollama import FakeOllama
from ollama_resident.cli import Terminated
from ollama_resident.cli._output import Output, deferred_signals

Cli = Callable[..., Run]


def _program(*args: str) -> list[str]:
    return [sys.executable, "-m", "ollama_resident", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1"}


# -- 13: the reader goes away -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("guard", "tiny", "--jsonl", "--interval", "0.2"),
        ("watch", "--jsonl", "--interval", "0.2"),
    ],
    ids=["guard", "watch"],
)
def test_a_stream_stops_quietly_when_its_reader_goes(
    ollama: FakeOllama, command: tuple[str, ...]
) -> None:
    """`guard --jsonl | head -1`: exit 0, nothing on stderr but the start line, at once.

    Nothing happens on the server after the first line, so only noticing the
    closed pipe (not a failed write hours later) can end the stream.
    """
    proc = subprocess.Popen(
        _program(*command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = json.loads(proc.stdout.readline())
    assert first["event"] == "recording_started"
    proc.stdout.close()  # what `head -1` does after its line
    try:
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert rc == 0, stderr
    assert "Traceback" not in stderr and "error" not in stderr, stderr


def test_a_one_shot_command_cut_short_by_its_reader_exits_0(ollama: FakeOllama) -> None:
    for i in range(3):
        ollama.preload(["tiny", "tiny2", "tiny3"][i], "10m")
    # `journal show`, `ps`: whatever does not fit in the pipe is dropped; no traceback.
    read, write = os.pipe()
    os.close(read)
    for command in (("ps",), ("ps", "--json"), ("journal", "show", "--json", "--limit", "0")):
        done = subprocess.run(
            _program(*command), stdout=write, stderr=subprocess.PIPE, env=_env(), timeout=60
        )
        assert done.returncode == 0, (command, done.stderr)
        assert b"Traceback" not in done.stderr and b"error" not in done.stderr, done.stderr
    os.close(write)


# -- 14: a record is written whole or not at all ------------------------------------------------


class _SignalMidWrite(io.StringIO):
    """A stdout that receives SIGTERM half-way through each write it is given."""

    def write(self, text: str) -> int:
        half = len(text) // 2
        super().write(text[:half])
        os.kill(os.getpid(), signal.SIGTERM)
        return super().write(text[half:]) + half


@pytest.fixture
def sigterm_raises() -> Iterator[None]:
    def on_term(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_during_a_write_comes_after_the_newline(
    monkeypatch: pytest.MonkeyPatch, sigterm_raises: None
) -> None:
    stdout = _SignalMidWrite()
    monkeypatch.setattr(sys, "stdout", stdout)
    records = [{"event": "loaded", "n": i} for i in range(3)]
    with pytest.raises(Terminated):
        Output().jsonl(records)
    # The signal acted after the first whole line, and before the second began.
    assert stdout.getvalue() == '{"event":"loaded","n":0}\n'


def test_a_signal_before_the_first_byte_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, sigterm_raises: None
) -> None:
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    with pytest.raises(Terminated), deferred_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        stdout.write("inside\n")  # still runs: the signal waits for the block to end
    assert stdout.getvalue() == "inside\n"


def test_sigterm_while_watching_leaves_only_whole_lines(ollama: FakeOllama, tmp_path: Path) -> None:
    """The instance of the bug: events, then SIGTERM, then recording_stopped on its own line."""
    out = tmp_path / "events.jsonl"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            _program("watch", "--jsonl", "--interval", "0.05"),
            stdout=sink,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        wait_until(lambda: out.stat().st_size > 0, timeout=60, what="first event")
        stop = threading.Event()

        def churn() -> None:  # events keep coming while the signal lands
            names = ["tiny", "tiny2", "tiny3"]
            i = 0
            while not stop.is_set():
                ollama.preload(names[i % 3], "1m" if i % 2 else "2m")
                i += 1

        worker = threading.Thread(target=churn, daemon=True)
        worker.start()
        wait_until(lambda: out.read_bytes().count(b"\n") >= 6, timeout=60, what="events")
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        stop.set()
        worker.join(timeout=10)
    assert proc.stderr is not None
    proc.stderr.close()
    assert rc == 0
    lines = out.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one whole object
    assert events[-1]["event"] == "recording_stopped"
    assert out.read_text().endswith("\n")


# -- 15: server text never acts on the terminal --------------------------------------------------

EVIL = "evil\x1b[2J\x1b]0;pwned\x07\r\x9bname\u202e:latest"


def _ps_reply_with(name: str) -> str:
    return json.dumps(
        {
            "models": [
                {
                    "name": name,
                    "model": name,
                    "size": 675328,
                    "digest": "ab" * 32,
                    "details": {},
                    "expires_at": "2099-01-01T00:00:00Z",
                    "size_vram": 0,
                    "context_length": 4096,
                }
            ]
        }
    )


def _no_controls(text: str) -> None:
    for char in "\x1b\x07\r\x9b\u202e":
        assert char not in text, repr(text)


def test_ps_shows_a_hostile_name_escaped(ollama: FakeOllama, cli: Cli) -> None:
    ollama.reply_next("/api/ps", _ps_reply_with(EVIL), times=3)
    table = cli("ps")
    _no_controls(table.stdout + table.stderr)
    assert table.stdout.splitlines()[1].startswith(
        "evil\\x1b[2J\\x1b]0;pwned\\x07\\r\\x9bname\\u202e:latest "
    ), table
    assert len(table.stdout.splitlines()) == 2  # the name forged no row
    as_json = cli("ps", "--json")
    _no_controls(as_json.stdout)
    assert json.loads(as_json.stdout)[0]["name"] == EVIL  # the data itself is kept, escaped
    assert cli("ps", "evil").exit_code == 0


def test_a_hostile_error_text_is_one_escaped_line(ollama: FakeOllama, cli: Cli) -> None:
    ollama.fail_next("/api/show", 500, "boom\x1b[2J\nerror: forged line")
    run = cli("pin", "tiny")
    assert run.exit_code == 1, run
    _no_controls(run.stderr)
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("error: ")]
    assert errors == ["error: tiny: boom\\x1b[2J\\nerror: forged line"], run


def test_watch_and_guard_events_carry_hostile_names_escaped(ollama: FakeOllama) -> None:
    ollama.reply_next("/api/ps", _ps_reply_with(EVIL), times=0)
    done = subprocess.run(
        _program("guard", "tiny", "--once", "--jsonl", "--no-journal"),
        capture_output=True,
        env=_env(),
        timeout=60,
    )
    for stream in (done.stdout, done.stderr):
        _no_controls(stream.decode())
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert any(e.get("model") == EVIL for e in lines), lines


def test_completion_leaves_hostile_names_out(
    ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ollama_resident.cli._complete import loaded_models

    monkeypatch.setenv("OLLAMA_RESIDENT_HOME", str(Path(os.environ["OLLAMA_RESIDENT_HOME"]) / "a"))
    ollama.preload("tiny", "5m")
    assert loaded_models(None, "") == ["tiny:latest"]  # type: ignore[arg-type]
    monkeypatch.setenv("OLLAMA_RESIDENT_HOME", str(Path(os.environ["OLLAMA_RESIDENT_HOME"]) / "b"))
    ollama.reply_next("/api/ps", _ps_reply_with(EVIL))
    assert loaded_models(None, "") == []  # type: ignore[arg-type]
