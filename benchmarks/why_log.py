#!/usr/bin/env python3
"""What reading a big Ollama server log costs `why`: wall time and peak memory.

Generates a log of about ``--mb`` megabytes (200 by default) in a temporary directory, at
DEBUG and at INFO, shaped like a busy real server's: ``/api/ps`` polls, chat requests (with
their DEBUG request and keep-alive timer lines), and now and then a load, a keep-alive
change, an expiry, an eviction and a reload (the shapes of tests/ollamalogs.py). Then, for
each level, in a fresh child process each, interleaved round-robin:

- baseline: read the file line by line in Python and count the lines (the floor of any
  line-oriented reader);
- read: ``logsource.from_file`` + ``logtimeline.read_timeline`` (what ``why`` does before
  telling the story), then the facts of one model;
- ``why``: the whole command, ``ollama-resident why tiny2 --server-log FILE`` (an empty
  journal, no server answering), start-up and story included, output thrown away; the
  package's bytecode compiled first, as an install has it.

Prints each run's wall time (measured by this process, interpreter start included) and
peak RSS, medians, and the ratios to the baseline. Targets (issue #9): under 2 s and under
100 MB for 200 MB.

    python benchmarks/why_log.py                # 200 MB, DEBUG and INFO, 3 rounds
    python benchmarks/why_log.py --mb 50 --rounds 5 --level debug
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
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
import sys, resource
n = 0
with open(sys.argv[1], encoding="utf-8", errors="replace") as fh:
    for line in fh:
        n += 1
print(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n, "lines")
"""

_CHILD_READ = """
import sys, resource
from ollama_resident import logsource
from ollama_resident.logtimeline import read_timeline
src = logsource.from_file(sys.argv[1], max_bytes=1 << 40)
tl = read_timeline(src.blocks)
mine = [f for f in tl.facts if f.digest and f.digest.startswith("1b8444b0d5ed")]  # tiny2
print(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, tl.lines, len(tl.facts), len(mine))
"""

_CHILD_WHY = """
import os, sys, resource
sys.argv = ["ollama-resident", "why", "tiny2", "--server-log", sys.argv[1]]
keep = os.dup(1)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
from ollama_resident.__main__ import main
try:
    main()
except SystemExit as e:
    code = e.code
else:
    code = 0
sys.stdout.flush()
os.dup2(keep, 1)
print(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "exit", code)
"""


def generate(path: Path, megabytes: int, *, debug: bool = True) -> int:
    """Write a busy server's log of about ``megabytes``; returns its size."""
    target = megabytes * 1024 * 1024
    start = L.START
    cycle = 0
    size = 0
    with path.open("w", encoding="utf-8") as fh:
        while size < target:
            log = L.Log(debug=debug, start=start, port=11434)
            log.pids = iter(range(4100 + 10 * cycle, 4110 + 10 * cycle))  # a new pid per runner
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
            log.evict("tiny2", "tiny3", keep_alive="1m0s").wait(60).expire("tiny3").expire("tiny")
            text = "\n".join(log.lines) + "\n"
            fh.write(text)
            size += len(text.encode())
            start = log.t
            cycle += 1
    return size


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def run(code: str, path: Path, env: dict[str, str]) -> tuple[float, float, float, str]:
    """Wall seconds (interpreter start included), CPU seconds (user + system: what other
    work on a shared machine does not add), peak RSS in MB, and what the child said."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, int(out[1]) / 1024, " ".join(out[2:])


Medians = tuple[float, float, float]  # wall s, CPU s, peak MB


def bench(path: Path, rounds: int, env: dict[str, str]) -> dict[str, Medians]:
    """Medians of baseline, read and why, run interleaved round-robin."""
    runs: dict[str, list[Medians]] = {"baseline": [], "read": [], "why": []}
    for _ in range(rounds):
        for name, code in (("baseline", _CHILD_BASE), ("read", _CHILD_READ), ("why", _CHILD_WHY)):
            wall, cpu, rss, said = run(code, path, env)
            runs[name].append((wall, cpu, rss))
            print(f"  {name:8} {wall:5.2f} s (cpu {cpu:5.2f} s) {rss:4.0f} MB  ({said})")
    return {
        k: (
            statistics.median(x[0] for x in v),
            statistics.median(x[1] for x in v),
            max(x[2] for x in v),
        )
        for k, v in runs.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--level", choices=("debug", "info", "both"), default="both")
    args = ap.parse_args()
    levels = ("debug", "info") if args.level == "both" else (args.level,)
    # An installed package has its bytecode compiled by pip; a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would recompile every module on every start (about 0.2 s
    # for `why`). Measure the installed case, as benchmarks/startup.py does.
    pkg = ROOT / "src" / "ollama_resident"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(pkg)], check=True)
    with tempfile.TemporaryDirectory(prefix="why-log-") as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "OLLAMA_HOST": _closed_port(),  # no server: names come from the log alone
            "NO_COLOR": "1",
        }
        for var in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
            env[var] = str(Path(tmp) / var.lower())  # an empty journal, no profiles
        results = {}
        for level in levels:
            path = Path(tmp) / f"server.{level}.log"
            t = time.perf_counter()
            size = generate(path, args.mb, debug=level == "debug")
            print(f"{level}: generated {size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s")
            results[level] = bench(path, args.rounds, env)
            path.unlink()
        for level, r in results.items():
            (bt, bc, _), (rt, rc, rm), (wt, wc, wm) = r["baseline"], r["read"], r["why"]
            print(
                f"{level} median wall (cpu): baseline {bt:.2f} s ({bc:.2f}); "
                f"read {rt:.2f} s ({rc:.2f}), {rt / bt:.2f}x, {rm:.0f} MB; "
                f"why {wt:.2f} s ({wc:.2f}), {wt / bt:.2f}x, {wm:.0f} MB"
            )
            print(
                f"{level} targets: why < 2 s {'met' if wt < 2 else 'NOT met'} "
                f"(cpu {'met' if wc < 2 else 'NOT met'}), "
                f"< 100 MB {'met' if max(rm, wm) < 100 else 'NOT met'}"
            )


if __name__ == "__main__":
    main()
