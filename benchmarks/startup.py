#!/usr/bin/env python3
"""Start-up cost of ollama-resident, as ratios against baselines measured in the same run.

A shell startup file and every Tab press of a completion run this tool, so its
start-up time is user-visible latency. Absolute timings on a shared machine
are noise; the ratios to baselines taken in the same run are the figures to
quote.

    python benchmarks/startup.py              # 15 runs per case, medians
    python benchmarks/startup.py --runs 30
    python benchmarks/startup.py --importtime # where `ps --json` spends its imports

Baselines: ``python -c pass``; ``import httpx; print(httpx.get(URL).text)``
(target: ps --json <= 1.6x); the official client ``import ollama;
print(ollama.ps())`` (target: ps --json <= 0.5x; skipped unless the `ollama`
package is installed: pip install ollama). The server is the loopback fake
Ollama from tests/ with two models loaded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakeollama import FakeOllama  # noqa: E402


def timed(cmd: list[str], env: dict[str, str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-400:]}")
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--importtime", action="store_true", help="dump -X importtime of ps")
    args = parser.parse_args()

    py = sys.executable
    exe = shutil.which("ollama-resident", path=str(Path(py).parent)) or "ollama-resident"
    with FakeOllama(load_delay=0.0) as server:
        env = {**os.environ, "OLLAMA_HOST": server.url, "NO_COLOR": "1"}
        for model, ka in (("tiny", -1), ("tiny2", "5m")):
            import httpx

            httpx.post(
                f"{server.url}/api/generate",
                json={"model": model, "prompt": "", "keep_alive": ka, "stream": False},
            ).raise_for_status()
        if args.importtime:
            subprocess.run([py, "-X", "importtime", "-m", "ollama_resident", "ps", "--json"],
                           env=env, stdout=subprocess.DEVNULL)
            return

        cases: list[tuple[str, list[str], dict[str, str]]] = [
            ("python -c pass", [py, "-c", "pass"], env),
            ("python -c 'import typer'", [py, "-c", "import typer"], env),
            (
                "httpx.get(/api/ps)  [baseline b]",
                [py, "-c", f"import httpx; print(httpx.get('{server.url}/api/ps').text)"],
                env,
            ),
        ]
        try:
            import ollama  # noqa: F401

            cases.append(
                ("ollama.ps()  [baseline a]", [py, "-c", "import ollama; print(ollama.ps())"], env)
            )
        except ImportError:
            print("(baseline a skipped: `pip install ollama` to compare with the official client)")
        complete_env = {
            **env,
            "_OLLAMA_RESIDENT_COMPLETE": "complete_bash",
            "COMP_WORDS": "ollama-resident p",
            "COMP_CWORD": "1",
        }
        cases += [
            ("ollama-resident --version", [exe, "--version"], env),
            ("ollama-resident --help", [exe, "--help"], env),
            ("completion request (bash)", [exe], complete_env),
            ("ollama-resident ps --json", [exe, "ps", "--json"], env),
            ("ollama-resident ps (plain)", [exe, "ps"], env),
            ("pin tiny --quiet (already pinned)", [exe, "pin", "tiny", "--quiet"], env),
        ]
        results = {}
        for label, cmd, case_env in cases:
            results[label] = timed(cmd, case_env, args.runs)

    base = results["python -c pass"]
    httpx_base = results["httpx.get(/api/ps)  [baseline b]"]
    ps = results["ollama-resident ps --json"]
    print(f"{'case':40} {'median':>9} {'x python':>9} {'x httpx':>8}")
    for label, value in results.items():
        print(f"{label:40} {value * 1000:7.1f}ms {value / base:8.1f}x {value / httpx_base:7.2f}x")
    print()
    print(f"ps --json / httpx baseline (b): {ps / httpx_base:.2f}x  (target <= 1.6x)")
    official = results.get("ollama.ps()  [baseline a]")
    if official:
        print(f"ps --json / official client (a): {ps / official:.2f}x  (target <= 0.5x)")
    pin = results["pin tiny --quiet (already pinned)"]
    print(f"pin already-pinned / ps --json:  {pin / ps:.2f}x  (target <= 1.2x)")


if __name__ == "__main__":
    main()
