"""What `watch` and `guard` record and say, told truthfully: the command that caused a
change (``apply NAME``), a server never seen up, and lines that name their host once.

Against the fake Ollama over loopback; every wait is on a condition, never on time.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import Run, reaped, wait_until
from fakeollama import FakeOllama
from ollama_resident import events as ev
from ollama_resident.client import OllamaClient
from ollama_resident.events import Event, OwnAction
from ollama_resident.host import parse_host
from ollama_resident.journal import Journal
from ollama_resident.models import PsSnapshot, RunningModel
from ollama_resident.paths import journal_path
from ollama_resident.watcher import Watcher

Cli = Callable[..., Run]
T0 = datetime(2026, 8, 22, 12, 0, 0, tzinfo=timezone.utc)


# -- 3. what a watch sees of `apply NAME` names the profile ----------------------------------


def test_an_apply_reload_seen_going_and_coming_back_is_one_load_by_apply_work(
    ollama: FakeOllama, cli: Cli, isolated_env: Path
) -> None:
    """The watch sees the model go (the reload unloads it first), reads the apply's journal
    lines, then sees it back: the story is the apply's reload, told as `apply work`, once."""
    ollama.preload("tiny", "5m")  # context 512
    (isolated_env / "profiles.toml").write_text(
        '[profiles.work]\nmodels = [{ name = "tiny", keep_alive = "1h", num_ctx = 256 }]\n'
    )
    client = OllamaClient(parse_host(ollama.url), timeout=60)
    watcher = Watcher(client, 0.1, client.display_url, journal=Journal(journal_path()), settle_s=30)
    try:
        watcher.poll_once()
        ollama.hold_loads("tiny")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ollama_resident", "apply", "work"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        with reaped(proc):
            # The old runner is gone, the new one held: the watch holds the departure.
            wait_until(lambda: bool(watcher.poll_once() or watcher.pending), what="tiny gone")
            assert watcher.pending == ["tiny:latest"]
            ollama.release_loads()
            output, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, output
        back = watcher.poll_once()  # reads the apply's lines, then sees it back
        watcher.stop()
    finally:
        client.close()
    load = next(e for e in back if e.event == "loaded")
    assert (load.detail["action"], load.detail["profile"]) == ("apply", "work"), back
    shown = cli("journal", "show").stdout.splitlines()
    tiny = [ln.split("  ", 2)[2] for ln in shown if "  tiny:latest  " in ln]
    assert tiny == [
        "already loaded when recording began (keep-alive at least 4m, context 512, 100% CPU)",
        "reloaded: context 512 -> 256, as asked with --num-ctx by ollama-resident apply work",
        "loaded again by the reload: keep-alive 1h, context 256, 100% CPU",
    ], shown
    story = cli("why", "tiny", "--no-server-log").stdout
    assert "ollama-resident apply work" in story, story
    assert "ollama-resident apply:" not in story and "apply loaded" not in story, story


def _ps(t: float, *models: RunningModel) -> PsSnapshot:
    return PsSnapshot(models=tuple(models), taken_at=T0 + timedelta(seconds=t))


def _tiny(expires: str) -> RunningModel:
    return RunningModel.from_api(
        {
            "name": "tiny:latest",
            "model": "tiny:latest",
            "size": 1_000_000,
            "digest": "ab" * 32,
            "expires_at": expires,
            "size_vram": 0,
            "context_length": 512,
        }
    )


def test_every_poll_event_an_apply_explains_carries_its_profile() -> None:
    """The kind: a load, a keep-alive change and a stop a poll attributes to `apply work`
    (read from the apply's journal lines) name the profile, as the apply's own lines do."""
    entries = [
        Event(
            T0,
            "h",
            "tiny:latest",
            "loaded",
            None,
            {"by": ev.TOOL, "action": "apply", "profile": "work", "keep_alive": "1h"},
        ),
        Event(
            T0,
            "h",
            "tiny:latest",
            "unloaded",
            "stopped",
            {"by": ev.TOOL, "action": "apply", "profile": "work"},
        ),
    ]
    load, stop = ev.own_actions_from(entries)
    assert (load.profile, stop.profile, stop.stops) == ("work", "work", True)
    loaded = ev.diff(_ps(0), _ps(1, _tiny("2026-08-22T13:00:00.5Z")), host="h", own_actions=[load])
    assert [(e.event, e.detail.get("profile")) for e in loaded] == [("loaded", "work")]
    mem = ev.Memory()
    first = _ps(1, _tiny("2026-08-22T12:05:00.5Z"))  # a 5m window
    ev.diff(_ps(0), first, host="h", memory=mem)
    window = ev.diff(
        first,
        _ps(10, _tiny("2026-08-22T13:00:09.5Z")),  # 1h, set by the apply
        host="h",
        memory=mem,
        own_actions=[OwnAction(T0 + timedelta(seconds=9), "tiny:latest", "apply", profile="work")],
    )
    assert [(e.event, e.detail.get("profile")) for e in window] == [("keep_alive_changed", "work")]
    gone = ev.diff(_ps(1, _tiny("2026-08-22T13:00:00.5Z")), _ps(2), host="h", own_actions=[stop])
    assert [(e.event, e.reason, e.detail.get("profile")) for e in gone] == [
        ("unloaded", "stopped", "work")
    ]
    from ollama_resident.why import describe

    assert describe(gone[0]).endswith("by ollama-resident apply work")


def test_a_journal_with_the_polls_load_and_the_apply_reload_tells_one_load(cli: Cli) -> None:
    """Journals written before the watch knew better hold both: a poll's `loaded` by
    `apply` (no profile) and the apply's own `loaded`/`reload`. One line, the apply's."""
    seen = {"since": "2026-08-22T12:00:00.400Z", "expires_at": "2026-08-22T13:00:00.5Z"}
    Journal(journal_path()).record(
        [
            Event(
                T0,
                "h",
                "tiny:latest",
                "loaded",
                "reload",
                {
                    "confidence": "certain",
                    "by": ev.TOOL,
                    "action": "apply",
                    "profile": "work",
                    "keep_alive": "1h",
                    "context_length": 256,
                },
            ),
            Event(
                T0 + timedelta(seconds=0.1),
                "h",
                "tiny:latest",
                "loaded",
                None,
                {
                    "confidence": "certain",
                    "by": ev.TOOL,
                    "action": "apply",
                    "keep_alive": "1h",
                    "context_length": 256,
                    **seen,
                },
            ),
        ]
    )
    shown = cli("journal", "show").stdout.splitlines()
    assert [ln.split("  ", 2)[2] for ln in shown] == [
        "loaded again by the reload: keep-alive 1h, context 256"
    ], shown
