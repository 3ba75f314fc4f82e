"""`why` and `journal show` at their bounds (issue #9, a new user's trial): a long story is
cut only with a note that says so, a file that is not Ollama's log is refused, a clock
that runs ahead is said, a name is one model however it is typed, a model with no entries
is said to have none."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

import ollamalogs as L
from conftest import Run, fake_bin, wait_until
from fakeollama import FakeOllama
from ollama_resident import journal
from ollama_resident.events import Event

Cli = Callable[..., Run]
UTC = {"TZ": "UTC"}


def expiries(n: int, start: datetime, *, every: float = 80.0) -> list[str]:
    """A DEBUG log of ``n`` loads of tiny, each expiring after 3 s, ``every`` seconds apart."""
    log = L.Log(debug=True, start=start).preamble().start()
    for i in range(n):
        log.load("tiny", count=1, first=i == 0, keep_alive="3s").ps()
        log.wait(3)
        log.slog("DEBUG", "timer expired, expiring to unload", log.runner("tiny"))
        log.chain("tiny")
        log.wait(every - 3)
    return log.lines


def write(tmp_path: Path, lines: list[str], name: str = "server.log") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def unloads(text: str) -> int:
    return sum("unloaded: its keep-alive (3s) ran out" in line for line in text.splitlines()[1:])


# -- 1. a long story: everything in the window, or a note saying what was left out ---------


def test_a_long_story_is_cut_with_a_note_and_limit_0_shows_all(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, expiries(40, L.START))
    run = cli("why", "tiny", "--server-log", str(path), env=UTC)
    assert run.exit_code == 0, run
    assert unloads(run.stdout) < 40
    whole = json.loads(cli("why", "tiny", "--server-log", str(path), "--json").stdout)
    total = whole["items_total"]
    assert whole["truncated"] is True and len(whole["items"]) == 30 and total > 30
    # The note names how many, how far back the shown ones reach, and how to see the rest.
    oldest = datetime.fromisoformat(whole["items"][-1]["time"].replace("Z", "+00:00"))
    assert (
        f"30 newest of {total} items shown (back to {oldest:%H:%M:%S}); --limit 0 shows all"
        in " ".join(run.stdout.split())
    ), run
    every = cli("why", "tiny", "--server-log", str(path), "--limit", "0", env=UTC)
    assert unloads(every.stdout) == 40, every  # all 40 expiries in the log
    assert "newest of" not in every.stdout
    data = json.loads(
        cli("why", "tiny", "--server-log", str(path), "--limit", "0", "--json").stdout
    )
    assert (len(data["items"]), data["items_total"], data["truncated"]) == (total, total, False)


def test_since_shows_the_window_asked_for_or_says_what_it_left_out(
    cli: Cli, tmp_path: Path
) -> None:
    now = datetime.now(timezone.utc)
    path = write(tmp_path, expiries(40, now - timedelta(minutes=55)))
    run = cli("why", "tiny", "--since", "2h", "--server-log", str(path), env=UTC)
    assert "30 newest of" in run.stdout and "items since" in run.stdout, run
    run = cli("why", "tiny", "--since", "2h", "--limit", "0", "--server-log", str(path), env=UTC)
    assert unloads(run.stdout) == 40, run


def test_the_journal_alone_is_not_cut_before_the_window(cli: Cli) -> None:
    now = datetime.now(timezone.utc)
    host = "http://127.0.0.1:11434"
    events = [Event(now - timedelta(hours=2), host, None, "recording_started", None, {"pid": 1})]
    for i in range(40):
        t = now - timedelta(minutes=100 - 2 * i)
        events.append(Event(t, host, "tiny:latest", "loaded", "request"))
        events.append(Event(t + timedelta(seconds=50), host, "tiny:latest", "unloaded", "expired"))
    journal.record(events)
    env = {"OLLAMA_HOST": "127.0.0.1:11434"}
    data = json.loads(cli("why", "tiny", "--no-server-log", "--json", env=env).stdout)
    assert (len(data["items"]), data["items_total"], data["truncated"]) == (30, 80, True)
    data = json.loads(
        cli("why", "tiny", "--no-server-log", "--json", "--limit", "0", env=env).stdout
    )
    assert sum(i["event"] == "unloaded" for i in data["items"]) == 40


# -- 2. a file that is not Ollama's server log ---------------------------------------------


def test_a_text_file_that_is_not_a_server_log_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# ollama-resident\n\nKeeps models loaded.\n", encoding="utf-8")
    run = cli("why", "--server-log", str(readme))
    assert run.exit_code == 2, run
    assert (
        f"{readme}: not an Ollama server log (no line of Ollama's server found in 3 lines)"
        in run.stderr
    )
    assert run.stdout == ""
    run = cli("why", "tiny", "--server-log", "-", input="no ollama here\n")
    assert run.exit_code == 2 and "stdin: not an Ollama server log" in run.stderr, run


def test_a_blank_log_is_empty_not_an_info_log(cli: Cli) -> None:
    for text in ("\n", "-- No entries --\n"):
        run = cli("why", "tiny", "--server-log", "-", input=text)
        assert run.exit_code == 0, run
        assert "The server log (stdin) is empty." in run.stdout
        assert "INFO level" not in run.stdout and "OLLAMA_DEBUG" not in run.stdout


def test_a_log_of_requests_only_is_ollamas(cli: Cli, tmp_path: Path) -> None:
    log = L.Log(debug=False, start=L.START)
    for _ in range(3):
        log.ps().wait(1)
    run = cli("why", "tiny", "--server-log", str(write(tmp_path, L.wrap(log.lines, "journal"))))
    assert run.exit_code == 0, run
    assert "Server log:" in run.stdout


def test_a_found_log_that_is_not_ollamas_is_a_place_tried(cli: Cli, tmp_path: Path) -> None:
    fake_bin(tmp_path, journal="Nov 29 10:00:00 myhost systemd[1]: Started Something Else.\n")
    run = cli("why", "tiny")
    assert run.exit_code == 0, run
    assert (
        "Server log not read: journalctl -u ollama: not an Ollama server log (no line of "
        "Ollama's server found in 1 line)" in " ".join(run.stdout.split())
    ), run


# -- 3. one model however it is typed --------------------------------------------------------


def test_a_name_recorded_from_another_server_is_not_unknown(cli: Cli) -> None:
    now = datetime.now(timezone.utc)
    host = "http://127.0.0.1:11434"
    journal.record(
        [
            Event(now - timedelta(minutes=5), host, None, "recording_started", None, {"pid": 1}),
            Event(now - timedelta(minutes=4), host, "tiny:latest", "loaded", "request"),
        ]
    )
    run = cli("why", "tiny", "--no-server-log", env={"OLLAMA_HOST": "127.0.0.1:1"})
    assert run.exit_code == 0, run
    assert "The journal has nothing from http://127.0.0.1:1" in run.stdout
    assert "add --host http://127.0.0.1:11434" in " ".join(run.stdout.split())
    assert "not in the journal" not in run.stderr and "did you mean" not in run.stderr, run
    run = cli("why", "Tiny:latest", "--since", "1m", env={"OLLAMA_HOST": "127.0.0.1:11434"})
    assert "tiny:latest has entries before the --since 1m window only." in run.stderr, run
    assert "did you mean" not in run.stderr


# -- 4. a log whose clock runs ahead -----------------------------------------------------------


def test_times_ahead_of_this_clock_are_said_once_and_never_just_now(
    cli: Cli, tmp_path: Path
) -> None:
    start = datetime.now(timezone.utc) + timedelta(hours=20)
    path = write(tmp_path, expiries(2, start))
    run = cli("why", "tiny", "--server-log", str(path), env=UTC)
    assert run.exit_code == 0, run
    assert "just now" not in run.stdout
    assert "ahead of this clock; log line" in run.stdout
    flat = " ".join(run.stdout.split())
    assert flat.count("The server log's times run up to 20h") == 1, run
    run = cli("why", "--server-log", str(path), "--since", "1h", env=UTC)
    assert "The server log's times run up to 20h" in " ".join(run.stdout.split()), run


# -- 5. journal show for a model with no entries -------------------------------------------


def test_journal_show_of_a_model_with_no_entries_says_so(cli: Cli) -> None:
    now = datetime.now(timezone.utc)
    host = "http://127.0.0.1:11434"
    journal.record(
        [
            Event(now - timedelta(minutes=5), host, None, "recording_started", None, {"pid": 1}),
            Event(now - timedelta(minutes=4), host, "tiny:latest", "loaded", "request"),
        ]
    )
    run = cli("journal", "show", "--model", "nosuch")
    assert run.exit_code == 0 and run.stdout == "", run
    assert 'No events for "nosuch"' in run.stderr and "It has: tiny:latest." in run.stderr
    run = cli("journal", "show", "--model", "tiyn")
    assert 'did you mean "tiny:latest"?' in run.stderr, run
    run = cli("journal", "show", "--model", "nosuch", "--json")
    assert json.loads(run.stdout) == []
    run = cli("journal", "show", "--model", "tiny")  # tiny is tiny:latest
    assert "recording started" in run.stdout and "tiny:latest  loaded" in run.stdout, run


def test_the_fake_servers_own_log_is_cut_with_a_note(
    make_ollama: Callable[..., FakeOllama], cli: Cli, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    server = make_ollama(log_path=str(log), log_debug=True)
    with httpx.Client(base_url=server.url) as c:
        for _ in range(6):  # 6 loads and 6 stops by keep_alive 0
            c.post("/api/generate", json={"model": "tiny", "prompt": "", "keep_alive": -1})
            c.post("/api/generate", json={"model": "tiny", "prompt": "", "keep_alive": 0})
            wait_until(lambda: not server.loaded())
    run = cli("why", "tiny", "--server-log", str(log), "--limit", "4", "--json")
    data = json.loads(run.stdout)
    assert (len(data["items"]), data["truncated"]) == (4, True), run
    assert "4 newest of" in data["notes"][0]
    every = json.loads(
        cli("why", "tiny", "--server-log", str(log), "--limit", "0", "--json").stdout
    )
    stops = [i for i in every["items"] if i["event"] == "unloaded"]
    assert len(stops) == 6 and all(i["reason"] == "stopped" for i in stops), every
    assert every["items_total"] == data["items_total"] == len(every["items"])
