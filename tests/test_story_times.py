"""Journal entries carry each event's own time, and ``why`` tells one story with the
server log (issue 9, "the story must be true"): a load that takes more than a second is
journaled when it finished, its evictions when the load was sent, an unload when the
/api/ps read that showed it gone was taken."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import Run, reaped, wait_until
from fakeollama import FakeOllama
from ollama_resident.client import OllamaClient
from ollama_resident.host import parse_host
from ollama_resident.journal import Journal
from ollama_resident.logtimeline import read_timeline
from ollama_resident.paths import journal_path
from ollama_resident.watcher import Watcher

Cli = Callable[..., Run]


def _log_facts(log: Path, model: str) -> list[tuple[str, str | None]]:
    tl = read_timeline(lines=log.read_text(encoding="utf-8").splitlines())
    return [(f.kind, f.cause) for f in tl.facts if f.model == model]


def test_one_shot_commands_journal_each_event_at_its_own_time(
    make_ollama: Callable[..., FakeOllama], cli: Cli, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    make_ollama(max_loaded=2, load_delay=1.5, log_path=str(log), log_debug=True)
    assert cli("preload", "tiny", "tiny2").exit_code == 0
    assert cli("preload", "tiny3").exit_code == 0  # the cap is 2: evicts one of them
    journal = Journal(journal_path()).read()
    [evicted] = [e for e in journal if e.event == "unloaded"]
    victim = evicted.model
    survivor = "tiny2:latest" if victim == "tiny:latest" else "tiny:latest"
    assert cli("unload", survivor).exit_code == 0
    journal = Journal(journal_path()).read()
    by = {(e.model, e.event): e for e in journal if e.model}
    loaded = by[("tiny3:latest", "loaded")]
    assert evicted.reason == "evicted"
    # The eviction happened when tiny3's load was sent, before the load finished: the
    # journal no longer gives both the time the command ended.
    assert evicted.time < loaded.time
    tl = read_timeline(lines=log.read_text(encoding="utf-8").splitlines())
    log_loaded = next(f for f in tl.facts if f.kind == "loaded" and f.name == "tiny3:latest")
    log_evicted = next(f for f in tl.facts if f.kind == "unloaded" and f.name == victim)
    # Against the server's own clock (the same machine): the eviction is journaled no
    # later than the log shows it, the load no earlier than the log says it finished.
    assert evicted.time <= log_evicted.time
    assert loaded.time >= log_loaded.time
    # And the load is journaled before the next command's unload.
    assert loaded.time < by[(survivor, "unloaded")].time


def test_why_with_the_server_log_tells_each_event_once_in_order(
    make_ollama: Callable[..., FakeOllama], cli: Cli, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    make_ollama(max_loaded=2, load_delay=1.5, log_path=str(log), log_debug=True)
    for args in (
        ("preload", "tiny", "llama3.2"),
        ("pin", "tiny"),
        ("pin", "tiny2"),  # the cap is 2: evicts llama3.2 (tiny is pinned, and newer)
        ("pin", "tiny3"),
        ("unload", "--all", "--except", "tiny3"),
    ):
        assert cli(*args).exit_code == 0, args
    causes = {
        "llama3.2": "unloaded: evicted to make room for tiny2:latest",
        # The journal knows which command sent the request the log shows: both are told.
        "tiny": "unloaded: stopped by ollama-resident unload (POST /api/generate from 127.0.0.1",
        "tiny2": "unloaded: evicted to make room for tiny3:latest",
    }
    for model, cause in causes.items():
        run = cli("why", model, "--server-log", str(log))
        assert run.exit_code == 0, run
        items = [line for line in run.stdout.splitlines() if re.match(r"  \d\d:\d\d:\d\d  ", line)]
        # One unload, told with the log's cause, journal and log line as its sources.
        unloads = [line for line in items if "unloaded" in line]
        assert len(unloads) == 1, run
        assert cause in unloads[0] and "journal, log line" in unloads[0], run
        # Newest first, in the true order.
        times = [line.split()[0] for line in items]
        assert times == sorted(times, reverse=True), run
        # A journal entry sits under the log fact of its own kind.
        blocks = run.stdout.split("\n  ")
        for block in blocks:
            head = block.split("\n")[0]
            for seen in re.findall(r"the journal saw it at \S+: (\w+)", block):
                assert seen.startswith("unloaded") == ("unloaded" in head), run
        # The server log shows what other clients and Ollama did: nothing is said unseen.
        assert "were not seen" not in run.stdout, run
        assert "nothing was recording" not in run.stdout, run
    # Without the log, what others did was indeed not seen: said so.
    run = cli("why", "tiny", "--no-server-log")
    assert "changes made by other clients or by Ollama itself were not seen" in run.stdout, run


def test_watch_and_the_command_tell_one_eviction_with_the_commands_cause(
    make_ollama: Callable[..., FakeOllama], cli: Cli
) -> None:
    server = make_ollama(max_loaded=2)
    assert cli("preload", "tiny-embed", "tiny2").exit_code == 0
    # A watch recording into the journal the commands write (settle 0: an unload with no
    # visible cause is classified at once, as a guess).
    client = OllamaClient(parse_host(server.url), timeout=60)
    watcher = Watcher(client, 0.1, client.display_url, journal=Journal(journal_path()), settle_s=0)
    try:
        watcher.poll_once()
        server.hold_loads("tiny3")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ollama_resident", "preload", "tiny3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        with reaped(proc):
            # tiny3's load made room (one of the two went) and has not finished: the
            # watch sees a model gone with no newcomer and guesses.
            wait_until(lambda: len(server.loaded()) < 2, what="room made for tiny3")
            watcher.poll_once()
            server.release_loads()
            output, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, output
        watcher.poll_once()
        watcher.stop()
    finally:
        client.close()
    journal = Journal(journal_path()).read()
    gone = [e.model for e in journal if e.event == "unloaded" and e.detail.get("action")]
    assert len(gone) == 1, journal  # the command journaled its eviction
    first = next(e for e in journal if e.event == "unloaded" and e.detail.get("action"))
    victim = (first.model or "").split(":")[0]
    # The watch saw it go too (a guess), but `journal show` has one unload line, naming
    # the command's evictor.
    raw = [e for e in journal if e.event == "unloaded" and e.model == first.model]
    assert len(raw) == 2 and any("since" in e.detail for e in raw), raw
    shown = cli("journal", "show").stdout.splitlines()
    [line] = [ln for ln in shown if f"  {victim}:latest  " in ln and "unloaded" in ln]
    assert "tiny3:latest" in line, shown
    run = cli("why", victim, "--no-server-log")
    unloads = [ln for ln in run.stdout.splitlines() if re.match(r"  \d\d:\d\d:\d\d  unloaded", ln)]
    assert len(unloads) == 1 and "evicted to make room for tiny3:latest" in unloads[0], run


def test_watch_does_not_journal_a_guess_for_an_unload_a_command_journaled(
    make_ollama: Callable[..., FakeOllama], cli: Cli
) -> None:
    server = make_ollama(max_loaded=2)
    assert cli("preload", "tiny-embed", "tiny2").exit_code == 0
    client = OllamaClient(parse_host(server.url), timeout=60)
    watcher = Watcher(client, 0.1, client.display_url, journal=Journal(journal_path()), settle_s=0)
    try:
        watcher.poll_once()
        assert cli("preload", "tiny3").exit_code == 0  # journals its eviction before the poll
        seen = watcher.poll_once()
        watcher.stop()
    finally:
        client.close()
    journal = Journal(journal_path()).read()
    [command] = [e for e in journal if e.event == "unloaded"]
    assert command.detail.get("action") == "preload" and command.detail["by_models"] == [
        "tiny3:latest"
    ]
    # The watch saw it go (and says so on screen), but keeps no second line for it.
    assert any(e.event == "unloaded" and e.model == command.model for e in seen)
