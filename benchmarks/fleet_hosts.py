#!/usr/bin/env python3
"""Many hosts at once: `ps --all-hosts` over 8 servers costs about as much as `ps` of one.

Starts 8 loopback fake Ollama servers, each answering every request after --latency seconds
(200 ms: a server across a WAN, or busy), and a profiles file that names all 8. Then, with the
cases interleaved round-robin so that a noisy moment hits all of them alike, it times whole
processes:

- one:   `ps --host H1`                  (one server: startup + one slow answer)
- all:   `ps --all-hosts`                (8 servers, asked at once)
- serial: 8 runs of `ps --host Hn` back to back (what asking them one by one would cost)

and prints the medians and the ratios all/one (target, issue #14: at most 1.5x) and
serial/all. Figures only; no assertions.

    python benchmarks/fleet_hosts.py              # 8 hosts, 200 ms, 7 rounds
    python benchmarks/fleet_hosts.py --hosts 16 --latency 0.5 --runs 5
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

from fakeollama import FakeOllama  # noqa: E402


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per answer")
    parser.add_argument("--runs", type=int, default=7, help="rounds of the interleaved cases")
    args = parser.parse_args()

    servers = [FakeOllama(latency=args.latency).start() for _ in range(args.hosts)]
    try:
        for i, s in enumerate(servers):
            s.preload("tiny", -1)
            s.preload("tiny2" if i % 2 else "tiny3", "1h")
        with tempfile.TemporaryDirectory() as home:
            text = "".join(
                f'[profiles.box{i}]\nhost = "{s.url}"\nmodels = ["tiny"]\n\n'
                for i, s in enumerate(servers)
            )
            Path(home, "profiles.toml").write_text(text)
            env = {
                **os.environ,
                "OLLAMA_RESIDENT_HOME": home,
                "OLLAMA_HOST": servers[0].url,  # the default host is one of them
                "NO_COLOR": "1",
            }
            cli = [sys.executable, "-m", "ollama_resident"]
            one = [*cli, "ps", "--json", "--host", servers[0].url]
            every = [*cli, "ps", "--json", "--all-hosts"]
            times: dict[str, list[float]] = {"one": [], "all": [], "serial": []}
            for _ in range(args.runs):
                t, code = _time(one, env)
                assert code == 0, code
                times["one"].append(t)
                t, code = _time(every, env)
                assert code == 0, code
                times["all"].append(t)
                total = 0.0
                for s in servers:
                    t, _code = _time([*cli, "ps", "--json", "--host", s.url], env)
                    total += t
                times["serial"].append(total)
    finally:
        for s in servers:
            s.stop()

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.hosts} hosts, {args.latency * 1000:.0f} ms per answer, {args.runs} rounds")
    for key, label in (
        ("one", "ps --host H1"),
        ("all", "ps --all-hosts"),
        ("serial", f"{args.hosts} x ps --host Hn"),
    ):
        print(f"  {label:<22} median {med[key]:.3f} s  (min {min(times[key]):.3f} s)")
    print(f"  all / one    = {med['all'] / med['one']:.2f}x   (target <= 1.5x)")
    print(f"  serial / all = {med['serial'] / med['all']:.2f}x")


if __name__ == "__main__":
    main()
