#!/usr/bin/env python3
"""What an idle ``watch --jsonl`` costs: CPU per minute, and memory as polls pile up.

Runs the real CLI in a child process against the loopback fake Ollama (tests/fakeollama/,
started in this process with a few models loaded, so every poll parses a realistic reply),
and reads the child's CPU time and resident memory from /proc (or, elsewhere, from
``resource.getrusage`` once it has exited). Nothing happens on the server, so the figures are
the watch's own overhead: one ``GET /api/ps`` per interval, the diff, and a ``stat`` of the
journal.

    python benchmarks/watch_cost.py          # 60 s at --interval 1, then 10 000 fast polls
    python benchmarks/watch_cost.py --seconds 20 --polls 2000
    python benchmarks/watch_cost.py --skip-idle --polls 10000 --fast-interval 0

Prints figures only; the target in issue #5 is at most 0.5 % of one core and flat memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakeollama import FakeOllama  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float | None:
    """utime + stime of a live process, in seconds (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _proc_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _start_watch(url: str, home: str, interval: float) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OLLAMA_HOST": url,
        "OLLAMA_RESIDENT_HOME": home,
        "NO_COLOR": "1",
    }
    env.pop("OLLAMA_RESIDENT_JOURNAL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "watch", "--jsonl", "--interval", str(interval)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, float, int]:
    """SIGTERM; exit code, child CPU seconds and max RSS (KiB) from getrusage."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    maxrss = after.ru_maxrss if sys.platform != "darwin" else after.ru_maxrss // 1024
    return rc, cpu, maxrss


def _ps_count(fake: FakeOllama) -> int:
    return len(fake.requests_to("/api/ps"))


def idle_cost(fake: FakeOllama, home: str, seconds: float, interval: float) -> None:
    print(f"idle cost: watch --jsonl --interval {interval:g} for {seconds:g} s")
    proc = _start_watch(fake.url, home, interval)
    deadline = time.monotonic() + 10
    while _ps_count(fake) < 2 and time.monotonic() < deadline:  # past start-up and first poll
        time.sleep(0.05)
    cpu0, t0, polls0 = _proc_cpu(proc.pid), time.monotonic(), _ps_count(fake)
    time.sleep(seconds)
    cpu1, t1, polls1 = _proc_cpu(proc.pid), time.monotonic(), _ps_count(fake)
    rss = _proc_rss_kib(proc.pid)
    rc, total_cpu, maxrss = _stop(proc)
    wall = t1 - t0
    if cpu0 is not None and cpu1 is not None:
        used = cpu1 - cpu0
        source = "/proc, after start-up"
    else:
        used = total_cpu
        source = "getrusage, including start-up"
    print(f"  polls:              {polls1 - polls0} in {wall:.1f} s")
    print(f"  CPU:                {used:.3f} s ({source})")
    print(f"  CPU per minute:     {used / wall * 60:.3f} s")
    print(f"  share of one core:  {used / wall * 100:.3f} %")
    print(f"  CPU per poll:       {used / max(1, polls1 - polls0) * 1000:.2f} ms")
    if rss is not None:
        print(f"  RSS:                {rss / 1024:.1f} MiB")
    print(f"  max RSS:            {maxrss / 1024:.1f} MiB   exit code {rc}")


def memory_growth(fake: FakeOllama, home: str, polls: int, interval: float) -> None:
    print(f"memory: watch --jsonl --interval {interval:g} until {polls} polls")
    proc = _start_watch(fake.url, home, interval)
    start = _ps_count(fake)
    marks = sorted({max(1, polls * k // 10) for k in range(1, 11)})
    samples: list[tuple[int, int | None, float]] = []
    t0 = time.monotonic()
    for mark in marks:
        while _ps_count(fake) - start < mark:
            if proc.poll() is not None:
                raise SystemExit(f"watch exited early with {proc.returncode}")
            time.sleep(0.02)
        samples.append((mark, _proc_rss_kib(proc.pid), time.monotonic() - t0))
    rc, cpu, maxrss = _stop(proc)
    print(f"  {'polls':>8}  {'RSS MiB':>8}  {'seconds':>8}")
    for mark, rss, elapsed in samples:
        shown = f"{rss / 1024:8.1f}" if rss is not None else "       ?"
        print(f"  {mark:>8}  {shown}  {elapsed:8.1f}")
    known = [(m, r) for m, r, _ in samples if r is not None]
    if len(known) >= 2:
        (m0, r0), (m1, r1) = known[0], known[-1]
        per_k = (r1 - r0) / max(1, m1 - m0) * 1000
        print(f"  growth: {r1 - r0:+d} KiB from {m0} to {m1} polls ({per_k:+.1f} KiB per 1000)")
    per_poll = cpu / polls * 1000
    print(f"  CPU: {cpu:.2f} s for {polls} polls ({per_poll:.2f} ms per poll, incl. start-up)")
    print(f"  max RSS: {maxrss / 1024:.1f} MiB   exit code {rc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="idle run length")
    parser.add_argument("--interval", type=float, default=1.0, help="idle poll interval")
    parser.add_argument("--polls", type=int, default=10_000, help="polls for the memory run")
    parser.add_argument("--fast-interval", type=float, default=0.0, help="memory run interval")
    parser.add_argument("--models", type=int, default=3, choices=range(0, 4))
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()

    fake = FakeOllama(max_loaded=3).start()
    try:
        for name, keep_alive in [("tiny", -1), ("tiny2", "24h"), ("tiny3", "12h")][: args.models]:
            fake.preload(name, keep_alive)
        python = sys.version.split()[0]
        print(f"fake Ollama at {fake.url} with {args.models} models loaded; python {python}")
        with tempfile.TemporaryDirectory() as home:
            if not args.skip_idle:
                idle_cost(fake, home, args.seconds, args.interval)
            if not args.skip_memory:
                memory_growth(fake, home, args.polls, args.fast_interval)
            journal = Path(home) / "journal.jsonl"
            if journal.exists():
                print(f"journal after both runs: {journal.stat().st_size} bytes")
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
