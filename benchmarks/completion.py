#!/usr/bin/env python3
"""Tab-press latency of the completions, as ratios to ``ollama-resident --version``.

Every Tab press runs the program; the issue asks for an answer within 0.5 s even
when the server is dead or hangs. On a shared machine absolute times are noise,
so each case is quoted against ``--version`` (start-up alone) measured in the
same run, round-robin. Cases: profile names (``apply <TAB>``), journal models
(``why <TAB>``), installed models from a live server (cache cold and warm), from
a closed port, and from a server that accepts and never answers (the first Tab
press waits for it, the next ones do not).

    python benchmarks/completion.py --runs 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from startup import fake_server  # noqa: E402


def tab(exe: str, words: str, env: dict[str, str]) -> tuple[float, str]:
    full = {
        **env,
        "_OLLAMA_RESIDENT_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    start = time.perf_counter()
    out = subprocess.run([exe], env=full, capture_output=True, text=True)
    return time.perf_counter() - start, out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    exe = shutil.which("ollama-resident", path=str(Path(sys.executable).parent))
    assert exe, "install the package first (pip install -e .)"
    hung = socket.socket()  # accepts (the kernel does) and never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = f"127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    with fake_server() as url, tempfile.TemporaryDirectory() as home:
        Path(home, "profiles.toml").write_text(
            "".join(f'[profiles.p{i}]\nmodels = ["tiny"]\n' for i in range(20))
        )
        env = {**os.environ, "OLLAMA_RESIDENT_HOME": home, "OLLAMA_HOST": url}
        subprocess.run([exe, "pin", "tiny", "tiny2", "-q"], env=env, check=True)  # journaled
        cache = Path(home, "completion-cache.json")
        hung_url = f"127.0.0.1:{hung.getsockname()[1]}"
        samples: dict[str, list[float]] = {}

        def add(label: str, seconds: float) -> None:
            samples.setdefault(label, []).append(seconds)

        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run([exe, "--version"], env=env, capture_output=True)
            add("--version  [baseline]", time.perf_counter() - start)
            add("apply <TAB> (profile names)", tab(exe, "ollama-resident apply ", env)[0])
            add("why <TAB> (journal models)", tab(exe, "ollama-resident why ", env)[0])
            cache.unlink(missing_ok=True)
            add("pin <TAB>, live server, cold", tab(exe, "ollama-resident pin ", env)[0])
            add("pin <TAB>, live server, cached", tab(exe, "ollama-resident pin ", env)[0])
            dead_env = {**env, "OLLAMA_HOST": dead}
            add("pin <TAB>, closed port", tab(exe, "ollama-resident pin ", dead_env)[0])
            hung_env = {**env, "OLLAMA_HOST": hung_url}
            cache.unlink(missing_ok=True)
            add("pin <TAB>, hung server, 1st", tab(exe, "ollama-resident pin ", hung_env)[0])
            add("pin <TAB>, hung server, 2nd", tab(exe, "ollama-resident pin ", hung_env)[0])
    hung.close()
    base = statistics.median(samples["--version  [baseline]"])
    print(f"{'case':34} {'median':>9} {'x --version':>12} {'added':>9}")
    for label, values in samples.items():
        m = statistics.median(values)
        print(f"{label:34} {m * 1000:7.0f}ms {m / base:11.2f}x {(m - base) * 1000:7.0f}ms")


if __name__ == "__main__":
    main()
