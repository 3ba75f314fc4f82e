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
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def fake_server() -> Iterator[str]:
    """The fake Ollama in its own process (in ours it would share our GIL), two models loaded."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "fakeollama"),
            "--port",
            "0",
            "--load-delay",
            "0",
            "--preload",
            "tiny:-1",
            "--preload",
            "tiny2:5m",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            raise SystemExit(f"the fake server did not start: {line!r}")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


def timed_once(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-400:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--importtime", action="store_true", help="dump -X importtime of ps")
    args = parser.parse_args()

    py = sys.executable
    # An installed package has its bytecode compiled by pip; an editable checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would recompile every module on every start. Measure the
    # installed case.
    import ollama_resident

    subprocess.run(
        [py, "-m", "compileall", "-q", str(Path(ollama_resident.__file__).parent)], check=True
    )
    exe = shutil.which("ollama-resident", path=str(Path(py).parent)) or "ollama-resident"
    with fake_server() as url:
        env = {**os.environ, "OLLAMA_HOST": url, "NO_COLOR": "1"}
        if args.importtime:
            subprocess.run(
                [py, "-X", "importtime", "-m", "ollama_resident", "ps", "--json"],
                env=env,
                stdout=subprocess.DEVNULL,
            )
            return

        cases: list[tuple[str, list[str], dict[str, str]]] = [
            ("python -c pass", [py, "-c", "pass"], env),
            ("python -c 'import typer'", [py, "-c", "import typer"], env),
            (
                "floor: import typer+httpx, GET",
                [
                    py,
                    "-c",
                    "import typer, httpx; "
                    f"print(httpx.Client(verify=False).get('{url}/api/ps').text)",
                ],
                env,
            ),
            (
                "httpx.get(/api/ps)  [baseline b]",
                [py, "-c", f"import httpx; print(httpx.get('{url}/api/ps').text)"],
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
        # Round-robin over the cases, so that a noisy moment on a shared machine hits
        # every case alike instead of one block of runs.
        samples: dict[str, list[float]] = {label: [] for label, _c, _e in cases}
        for _ in range(args.runs):
            for label, cmd, case_env in cases:
                samples[label].append(timed_once(cmd, case_env))
        results = {label: statistics.median(values) for label, values in samples.items()}

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
