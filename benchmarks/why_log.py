#!/usr/bin/env python3
"""What reading a big Ollama server log costs `why`: wall time and peak memory.

Generates a DEBUG log of about ``--mb`` megabytes (200 by default) in a temporary
directory, shaped like a busy real server's: ``/api/ps`` polls, chat requests with their
DEBUG request lines, and now and then a load, a keep-alive change, an expiry, an eviction and
a reload (the shapes of tests/ollamalogs.py). Then, in a fresh child process each, interleaved
round-robin:

- baseline: read the file line by line in Python and count the lines (the floor of any
  line-oriented reader);
- ``why``: ``logsource.from_file`` + ``logtimeline.read_timeline`` (what ``why MODEL
  --server-log FILE`` does before telling the story), then the story of one model.

Prints each run's wall time and peak RSS, medians, and the ratio why / baseline.
Targets (issue #9): under 2 s and under 100 MB for 200 MB.

    python benchmarks/why_log.py            # 200 MB, 3 rounds
    python benchmarks/why_log.py --mb 50 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import ollamalogs as L  # noqa: E402

_CHILD_BASE = """
import sys, time, resource
t = time.perf_counter()
n = 0
with open(sys.argv[1], encoding="utf-8", errors="replace") as fh:
    for line in fh:
        n += 1
dt = time.perf_counter() - t
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n)
"""

_CHILD_WHY = """
import sys, time, resource
t = time.perf_counter()
from ollama_resident import logsource
from ollama_resident.logtimeline import read_timeline
src = logsource.from_file(sys.argv[1], max_bytes=1 << 40)
tl = read_timeline(src.blocks)
mine = [f for f in tl.facts if f.model == "tiny2:latest"]
dt = time.perf_counter() - t
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, tl.lines, len(tl.facts), len(mine))
"""


def generate(path: Path, megabytes: int) -> int:
    """Write a busy server's DEBUG log of about ``megabytes``; returns its size."""
    target = megabytes * 1024 * 1024
    start = L.START
    cycle = 0
    size = 0
    with path.open("w", encoding="utf-8") as fh:
        while size < target:
            log = L.Log(debug=True, start=start, port=11434)
            if cycle == 0:
                log.preamble().start(max_loaded=2)
            log.load("tiny", count=1, keep_alive=L.FOREVER)
            log.load("tiny2", count=2, first=False, keep_alive="10m0s")
            for i in range(400):  # a chat client and a dashboard polling /api/ps
                log.request("tiny2", keep_alive="10m0s", client="192.0.2.10")
                log.slog("DEBUG", "loading cache slot", "id=0 cache=12 prompt=40 used=12")
                log.ps().ps()
                if i % 100 == 50:
                    log.request("tiny", keep_alive="5m0s", client="127.0.0.2")
                log.wait(0.5)
            log.slog("DEBUG", "max runners achieved, unloading one to make room", "runner_count=2")
            log.slog("DEBUG", "found an idle runner to unload", log.runner("tiny2"))
            log.chain("tiny2", completed=True)
            log.load("tiny3", count=2, first=False, keep_alive="1m0s")
            log.wait(60)
            log.slog("DEBUG", "timer expired, expiring to unload", log.runner("tiny3"))
            log.chain("tiny3")
            log.slog("DEBUG", "timer expired, expiring to unload", log.runner("tiny"))
            log.chain("tiny")
            text = "\n".join(log.lines) + "\n"
            fh.write(text)
            size += len(text.encode())
            start = log.t
            cycle += 1
    return size


def run(code: str, path: Path) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024, " ".join(out[2:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="why-log-") as tmp:
        path = Path(tmp) / "server.log"
        t = time.perf_counter()
        size = generate(path, args.mb)
        print(f"generated {size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s: {path}")
        base: list[tuple[float, float]] = []
        why: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            b = run(_CHILD_BASE, path)
            w = run(_CHILD_WHY, path)
            base.append(b[:2])
            why.append(w[:2])
            print(f"  baseline {b[0]:.2f} s {b[1]:.0f} MB ({b[2]} lines)")
            print(f"  why      {w[0]:.2f} s {w[1]:.0f} MB (lines, facts, tiny2's: {w[2]})")
        bt = statistics.median(x[0] for x in base)
        wt = statistics.median(x[0] for x in why)
        wm = max(x[1] for x in why)
        print(f"median: baseline {bt:.2f} s, why {wt:.2f} s, ratio {wt / bt:.2f}x")
        print(f"why peak memory {wm:.0f} MB")
        print(
            f"targets: why < 2 s ({'met' if wt < 2 else 'NOT met'}), < 100 MB "
            f"({'met' if wm < 100 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
