"""The fast walk of a server log (logscan) tells exactly what a line-by-line reading tells.

``read_timeline(lines=...)`` hands every line to the builder (its own prefilter, then the
reader, then feed): the plain reference. The block walk skips the lines that change
nothing at C speed and cuts request lines out of the block only when asked; whatever it
skips, the facts, their lines and requests, and the INFO fast requests must be the same,
for every scenario, level and collector wrapper, and whatever the block size.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import ollamalogs as L
from ollama_resident import logscan, logsource
from ollama_resident.logtimeline import (
    RecentRequests,
    Request,
    Timeline,
    read_timeline,
)

CHUNKS = (1024 * 1024, 4096, 700)  # 700 bytes: shorter than a timer line, so lines span reads


def _facts(tl: Timeline) -> list[str]:
    return [json.dumps(f.to_json(), sort_keys=True, default=str) for f in tl.facts]


def _same_as_line_by_line(path: Path, chunk: int) -> Timeline:
    fast = read_timeline(logsource.from_file(path, chunk=chunk).blocks)
    text = path.read_bytes().decode("utf-8", "replace")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    plain = read_timeline(lines=lines)
    assert fast.lines == plain.lines == len(lines)
    assert _facts(fast) == _facts(plain)
    assert [r.to_json() for r in fast.fast_requests] == [r.to_json() for r in plain.fast_requests]
    assert (fast.has_debug, fast.starts, fast.names) == (plain.has_debug, plain.starts, plain.names)
    return fast


def _write(tmp_path: Path, lines: list[str], name: str = "server.log") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize("wrapper", sorted(L.WRAPPERS))
@pytest.mark.parametrize("debug", [True, False], ids=["debug", "info"])
@pytest.mark.parametrize("scenario", sorted(L.SCENARIOS))
def test_every_scenario_reads_as_line_by_line(
    tmp_path: Path, scenario: str, debug: bool, wrapper: str
) -> None:
    path = _write(tmp_path, L.wrap(L.SCENARIOS[scenario](debug), wrapper))
    for chunk in CHUNKS:
        tl = _same_as_line_by_line(path, chunk)
        assert tl.facts, "every scenario shows something"


@pytest.mark.parametrize("wrapper", ["raw", "journal", "compose", "docker-t", "crlf"])
@pytest.mark.parametrize("debug", [True, False], ids=["debug", "info"])
def test_a_busy_server_reads_as_line_by_line(tmp_path: Path, debug: bool, wrapper: str) -> None:
    path = _write(tmp_path, L.wrap(L.busy_server(debug), wrapper))
    for chunk in CHUNKS:
        tl = _same_as_line_by_line(path, chunk)
    # What the busy log holds, read truly: two starts (one of them an old Go-log config
    # line), a pin reset by the 5m client and set again, evictions, and at INFO the
    # unload-like fast requests.
    assert tl.starts == 2
    old_start = [f for f in tl.facts if f.kind == "server_start"][1]
    assert (
        "INFO server config" in path.read_text(encoding="utf-8").splitlines()[old_start.line_no - 1]
    )
    if debug:
        resets = [f for f in tl.facts if f.kind == "keep_alive" and f.detail.get("before_forever")]
        assert resets and all(f.request and f.request.client == "127.0.0.2" for f in resets)
        assert any(f.cause == "evicted" for f in tl.facts)
        assert tl.fast_requests == []  # a DEBUG log names every unload's cause
    else:
        clients = {r.client for r in tl.fast_requests}
        assert "127.0.0.3" in clients  # POST /api/generate in 1.1 ms
        assert all(r.path in ("/api/generate", "/api/chat") for r in tl.fast_requests)


def test_a_pin_reset_on_every_request_is_followed_every_time(tmp_path: Path) -> None:
    # A guard re-pins, a client resets to 5m, two hundred times: each change is a fact.
    log = L.Log(debug=True, start=L.START)
    log.start().load("tiny", count=1, keep_alive=L.FOREVER)
    for i in range(200):
        log.request("tiny", keep_alive="5m0s" if i % 2 == 0 else L.FOREVER, client="127.0.0.2")
        log.wait(1)
    path = _write(tmp_path, log.lines)
    tl = _same_as_line_by_line(path, 4096)
    changes = [f for f in tl.facts if f.kind == "keep_alive"]
    assert len(changes) == 201  # the load's pin, then every request's
    assert [f.detail["keep_alive"] for f in changes[1:4]] == ["5m", "forever", "5m"]


def test_a_new_runner_pid_per_load_is_followed(tmp_path: Path) -> None:
    # Real servers give every runner a new pid: each one's timer lines are new shapes.
    log = L.Log(debug=True, start=L.START)
    log.start(max_loaded=1)
    for i in range(30):
        log.pids = iter([5000 + i])
        log.load("tiny", count=1, keep_alive="5m0s")
        for _ in range(20):
            log.request("tiny", keep_alive="5m0s")
            log.wait(1)
        log.slog("DEBUG", "timer expired, expiring to unload", log.runner("tiny"))
        log.chain("tiny")
    tl = _same_as_line_by_line(_write(tmp_path, log.lines), 4096)
    assert [f.cause for f in tl.facts if f.kind == "unloaded"] == ["expired"] * 30
    assert len([f for f in tl.facts if f.kind == "keep_alive"]) == 30  # one per runner


def test_compose_prefix_does_not_shift_the_latency_column(tmp_path: Path) -> None:
    # "ollama-1  | [GIN] ..." has a bar of its own before gin's fields.
    path = _write(tmp_path, L.wrap(L.stop(False), "compose"))
    tl = read_timeline(logsource.from_file(path).blocks)
    assert [(r.method, r.path, r.client) for r in tl.fast_requests] == [
        ("POST", "/api/generate", "127.0.0.5")
    ]


# -- the parts --------------------------------------------------------------------------


def _gin(latency: str, client: str = "127.0.0.1", method: str = "POST") -> bytes:
    return (
        f'[GIN] 2026/11/29 - 16:37:30 | 200 | {latency:>13} | {client:>15} | {method:<7}  "/api/x"'
    ).encode()


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (_gin("24.562759ms"), False),  # slow: gin's layout shows it, Python never sees it
        (_gin("150.25ms"), False),
        (_gin("10ms"), False),
        (_gin("2.5s"), False),
        (_gin("1m2.5s"), False),
        (_gin("0s"), False),  # not under 10 ms as the reader reads latencies
        (_gin("9ms"), True),  # fast: may be an unload
        (_gin("1.123456ms"), True),
        (_gin("812.3µs"), True),
        (_gin("12.5μs"), True),
        (_gin("734ns"), True),
        (_gin("24.562759ms", client="2001:db8:85a3::8a2e:370:7334"), True),  # layout unknown
        (_gin("24.562759ms").replace(b"| POST   ", b"|\x1b[97;46m POST   \x1b[0m"), True),
        (b'time=x level=INFO msg="a POST  \\"here\\""', False),  # no POST method field
        (b'llama.cpp said POST  "/completion"', True),  # not gin: read to be sure
    ],
)
def test_the_post_lines_python_reads(line: bytes, found: bool) -> None:
    scans = logscan._Scans(frozenset({"load"}), ())
    assert bool(scans.odd_post.search(line)) is found


def test_a_run_of_post_lines_is_cut_newest_first_with_true_line_numbers() -> None:
    lines = [
        _gin("2.5s", client="10.0.0.1"),  # line 10
        b'time=t level=INFO msg="x" path=/POSTx',  # "POST" in other text
        _gin("191.479µs", method="GET"),  # a GET poll
        b'llama.cpp: POST  "/completion"',  # a POST that is no [GIN] line
        _gin("3.5s", client="10.0.0.2"),  # line 14
        b"",
        _gin("4.5s", client="10.0.0.3"),  # line 16
    ]
    data = b"\n".join(lines) + b"\n"
    run = logscan.PostRun(data, 0, len(data), 17, re.compile(logscan._POST))
    got = []
    while run.more():
        got.append(run.got[-1])
    assert [(n, re.search(r"10\.0\.0\.\d", raw).group()) for n, raw in got] == [  # type: ignore[union-attr]
        (16, "10.0.0.3"),
        (14, "10.0.0.2"),
        (10, "10.0.0.1"),
    ]
    assert not run.more()
    assert run.data == b""  # the block is let go once the run is cut out


class _Lines:
    """LazyLines over a list, newest last, counting how far it was cut."""

    def __init__(self, items: list[tuple[int, str]]) -> None:
        self.left = list(items)
        self.got: list[Request | tuple[int, str]] = []

    def more(self) -> bool:
        if not self.left:
            return False
        self.got.append(self.left.pop())
        return True


def test_recent_requests_keep_the_newest_32_across_runs() -> None:
    recent = RecentRequests()
    recent.append((1, "a"))
    early = _Lines([(n, f"r{n}") for n in range(2, 42)])  # 40 lines
    recent.append(early)
    recent.append((42, "b"))
    late = _Lines([(43, "c"), (44, "d")])
    recent.append(late)
    newest = [holder[i][0] for holder, i in recent.newest()]
    assert newest == [44, 43, 42, *range(41, 12, -1)]
    assert len(newest) == RecentRequests.KEEP
    assert len(early.left) == 11  # only what was asked for was cut
    recent.seal()
    assert [item[0] for item in recent.items] == list(range(13, 45))  # type: ignore[index]


@pytest.mark.parametrize("chunk", [1024 * 1024, 700])
def test_the_log_covers_its_first_to_its_last_line(tmp_path: Path, chunk: int) -> None:
    # The window is the log's, not that of the last line that changed something: polls
    # go on for minutes after the last load.
    log = L.Log(debug=False, start=L.START)
    log.preamble().start().load("tiny", count=1)
    for _ in range(40):
        log.wait(10).ps()
    journal = L.WRAPPERS["journal"]
    path = _write(tmp_path, [journal(line, n) for n, line in enumerate(log.lines)])
    fast = read_timeline(logsource.from_file(path, chunk=chunk).blocks)
    plain = read_timeline(lines=path.read_text(encoding="utf-8").splitlines())
    for tl in (fast, plain):
        assert tl.first_time == L.START
        assert tl.last_time is not None
        assert tl.last_time.replace(microsecond=0) == log.t.replace(microsecond=0)
        assert (tl.last_time - tl.facts[-1].time).total_seconds() > 390
