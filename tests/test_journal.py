"""The journal: JSON lines, rotation under a cap, whole lines with concurrent writers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ollama_resident import journal as journal_mod
from ollama_resident import why
from ollama_resident.events import Event, own_actions_from
from ollama_resident.journal import Journal
from ollama_resident.residency import LoadOutcome, UnloadOutcome

T0 = datetime(2026, 8, 22, 12, 0, 0, tzinfo=timezone.utc)
HOST = "http://127.0.0.1:11434"


def event(i: int, model: str = "tiny:latest", pad: int = 0) -> Event:
    detail = {"confidence": "certain", "i": i}
    if pad:
        detail["pad"] = "x" * pad
    return Event(T0 + timedelta(seconds=i), HOST, model, "loaded", None, detail)


def all_lines(j: Journal) -> list[bytes]:
    lines: list[bytes] = []
    for path in j.files:
        if path.exists():
            lines.extend(path.read_bytes().splitlines())
    return lines


def test_default_path_follows_the_env_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "elsewhere" / "j.jsonl"
    monkeypatch.setenv("OLLAMA_RESIDENT_JOURNAL", str(target))
    assert Journal().path == target
    journal_mod.record([event(1)])
    assert target.exists()
    assert [e.detail["i"] for e in journal_mod.read()] == [1]


def test_lines_are_compact_json_objects_time_first(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    assert j.record([event(1), event(2, "qwen2.5:14b")]) == 2
    raw = (tmp_path / "j.jsonl").read_bytes()
    lines = raw.splitlines()
    assert len(lines) == 2 and raw.endswith(b"\n")
    assert all(line.startswith(b'{"time":"2026-08-22T12:00:0') for line in lines)
    first = json.loads(lines[0])
    assert set(first) == {"time", "host", "model", "event", "reason", "detail", "schema_version"}
    assert (tmp_path / "j.jsonl").stat().st_mode & 0o777 == 0o600


def test_read_filters_by_model_and_time_and_keeps_server_events(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    server = Event(T0 + timedelta(seconds=5), HOST, None, "server_down", None, {})
    j.record([event(3, "llama3.2:latest"), event(1, "tiny:latest"), server, event(7)])
    assert [e.detail.get("i") for e in j.read()] == [1, 3, None, 7]  # sorted by time
    mine = j.read(model="llama3.2")  # as the user types it
    assert [(e.model, e.event) for e in mine] == [
        ("llama3.2:latest", "loaded"),
        (None, "server_down"),
    ]
    assert [e.detail.get("i") for e in j.read(since=T0 + timedelta(seconds=4))] == [None, 7]


def test_rotation_keeps_the_files_under_the_cap(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", max_bytes=4096, keep=2)
    for i in range(300):
        j.record([event(i, pad=100)])
    paths = [p.name for p in sorted(tmp_path.iterdir())]
    assert "j.jsonl.1" in paths and "j.jsonl.2" in paths and "j.jsonl.3" not in paths
    for path in j.files:
        assert path.stat().st_size <= 4096
    events = j.read()
    numbers = [e.detail["i"] for e in events]
    # the newest survive, oldest were dropped, nothing is out of order or duplicated
    assert numbers == sorted(set(numbers))
    assert numbers[-1] == 299 and numbers[0] > 0
    assert len(events) == len(all_lines(j))


def test_a_torn_line_is_skipped_and_a_glued_one_recovered(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    j.record([event(1)])
    good = json.dumps(event(2).to_json(), separators=(",", ":")).encode()
    with open(path, "ab") as fh:
        fh.write(b'{"time":"2026-08-22T12:00:0')  # a writer died mid-line...
        fh.write(good + b"\n")  # ...and the next line was appended to it
        fh.write(b"\xff\xfe not json at all\n")
        fh.write(b'["a list"]\n')
        fh.write(b'{"time":"2026-08-22T12:00:09.000Z","event":"loaded"')  # torn, last
    assert [e.detail["i"] for e in j.read()] == [1, 2]


def test_read_from_returns_only_new_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = Journal(path, max_bytes=2048)
    assert j.read_from(0) == ([], 0)
    j.record([event(1)])
    new, offset = j.read_from(0)
    assert [e.detail["i"] for e in new] == [1] and offset == path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b'{"time":"2026-08-22T12:00:0')  # being written
    assert j.read_from(offset) == ([], offset)
    # after a rotation the file is smaller than the offset: it is read from the start
    path.unlink()
    j.record([event(5)])
    new, _ = j.read_from(offset + 1000)
    assert [e.detail["i"] for e in new] == [5]


def test_concurrent_threads_write_only_whole_lines(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    n, per = 8, 200

    def writer(k: int) -> None:
        for i in range(per):
            j.record([event(k * 1000 + i, pad=300)])

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = all_lines(j)
    assert len(lines) == n * per
    assert sorted(json.loads(line)["detail"]["i"] for line in lines) == sorted(
        k * 1000 + i for k in range(n) for i in range(per)
    )


_WRITER = """
import sys
from datetime import datetime, timedelta, timezone
from ollama_resident.events import Event, own_actions_from
from ollama_resident.journal import Journal
path, who, count, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
j = Journal(path, max_bytes=cap, keep=2)
t0 = datetime(2026, 8, 22, tzinfo=timezone.utc)
for i in range(count):
    j.record([Event(t0 + timedelta(microseconds=i), "h", "m:latest", "loaded", None,
                    {"who": who, "i": i, "pad": "y" * (50 + (i * 37) % 900)})])
"""


@pytest.mark.parametrize("cap", [64 * 1024 * 1024, 32 * 1024])
def test_concurrent_processes_write_only_whole_lines(tmp_path: Path, cap: int) -> None:
    """Four processes append at once; with a small cap they also rotate under each other."""
    path = tmp_path / "j.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(k), "400", str(cap)])
        for k in range(4)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    j = Journal(path, max_bytes=cap, keep=2)
    lines = all_lines(j)
    parsed = [json.loads(line) for line in lines]  # raises on any torn or interleaved line
    assert all(p["detail"]["pad"] == "y" * len(p["detail"]["pad"]) for p in parsed)
    if cap > 1024 * 1024:
        assert len(parsed) == 1600
        for who in range(4):
            mine = [p["detail"]["i"] for p in parsed if p["detail"]["who"] == who]
            assert mine == list(range(400))  # each writer's lines in its own order
    else:
        assert len(parsed) < 1600  # rotation dropped the oldest
        # each writer may land one line in a file just renamed, past the cap
        assert all(p.stat().st_size <= cap + 8192 for p in j.files if p.exists())
        assert len(j.read()) == len(parsed)


def test_record_outcomes_journals_the_tools_own_actions(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    pin = LoadOutcome(requested="tiny", name="tiny:latest", status="loaded", pinned=True)
    gone = UnloadOutcome("tiny2", "tiny2:latest", "unloaded", seconds=0.01)
    problem = journal_mod.record_outcomes(
        host=HOST, loads=[pin], unloads=[gone], action="apply", profile="work", time=T0, path=path
    )
    assert problem is None
    events = journal_mod.read(path=path)
    # apply both loads and unloads: each entry names the command and its profile
    assert [(e.model, e.event, e.detail["action"], e.detail["profile"]) for e in events] == [
        ("tiny:latest", "loaded", "apply", "work"),
        ("tiny2:latest", "unloaded", "apply", "work"),
    ]
    assert all(e.by_tool for e in events)
    assert [(a.model, a.action, a.stops, a.pins) for a in own_actions_from(events)] == [
        ("tiny:latest", "apply", False, True),
        ("tiny2:latest", "apply", True, False),
    ]
    assert why.describe(events[1]) == "unloaded by ollama-resident apply work"


def test_record_outcomes_reports_an_unwritable_journal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = UnloadOutcome("tiny", "tiny:latest", "unloaded")
    problem = journal_mod.record_outcomes(host=HOST, unloads=[done], path=blocker / "j.jsonl")
    assert problem is not None and "could not write the journal" in problem
    # nothing to record is not a problem
    assert journal_mod.record_outcomes(host=HOST, path=blocker / "j.jsonl") is None
