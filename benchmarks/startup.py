#!/usr/bin/env python3
"""Start-up cost of ollama-resident, as ratios against baselines measured in the same run.

A shell startup file runs this tool in every new terminal, so its start-up time is
user-visible latency. Absolute timings on a shared machine are noise; the figures to
quote are ratios (and, for shells, paired differences) between cases measured
round-robin in one run, so that a noisy moment hits every case alike.

    python benchmarks/startup.py                 # 21 rounds
    python benchmarks/startup.py --runs 31
    python benchmarks/startup.py --importtime    # where `ps --json` spends its imports
    pip install ollama                           # optional: the official client as baseline
    python benchmarks/startup.py --mtop PATH     # optional: ollama-mtop's `--json` as well

Cases:

- the floor of any Typer + httpx tool: ``python -c "import typer, httpx"``;
- the official client: ``python -c "import ollama; print(ollama.ps())"`` (if installed);
- ``ollama-mtop --json`` (if on PATH as ollama-mtop, or given with --mtop);
- ``ollama-resident ps --json`` and ``pin tiny --quiet`` of a model already pinned;
- for bash, zsh and fish (each if installed): ``SHELL -i -c exit`` with an empty startup
  file and with the line ``shell-init`` prints. After a run with the line, the benchmark
  waits for the detached apply it started to finish, so that it does not load the next
  case.

The server is the fake Ollama from tests/ in its own process. Wall time is the figure
that matters; CPU time (the child's user + system) is printed too, as it is less
disturbed by other work on the machine.
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
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND_MODULES = ("ps", "load", "apply", "profile", "guard", "service", "watch", "why", "shell")
if (ROOT / "src" / "ollama_resident" / "cli" / "doctor.py").exists():
    COMMAND_MODULES += ("doctor",)


@contextlib.contextmanager
def fake_server() -> Iterator[str]:
    """The fake Ollama in its own process (in ours it would share our GIL), tiny pinned."""
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


@dataclass
class Case:
    label: str
    argv: list[str]
    env: dict[str, str]
    after: Path | None = None  # a log whose " exit " lines count finished background runs
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def run(self) -> None:
        done_before = _finished(self.after)
        start = time.perf_counter()
        proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        self.wall.append(time.perf_counter() - start)
        self.cpu.append(usage.ru_utime + usage.ru_stime)
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stderr.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{self.label} failed ({proc.returncode}): {err.decode()[-400:]}")
        if self.after is not None:
            deadline = time.monotonic() + 60
            while _finished(self.after) <= done_before:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{self.label}: the background apply did not finish")
                time.sleep(0.02)

    def median(self, what: str = "wall") -> float:
        return statistics.median(self.wall if what == "wall" else self.cpu)


def _finished(log: Path | None) -> int:
    if log is None or not log.exists():
        return 0
    return log.read_text(errors="replace").count(" exit ")


def shell_cases(url: str, exe_dir: Path, tmp: Path) -> list[Case]:
    """``SHELL -i -c exit``, with an empty startup file and with shell-init's line."""
    from ollama_resident.startup import startup_line

    profiles = tmp / "profiles.toml"
    profiles.write_text('[profiles.work]\nkeep_alive = "forever"\nmodels = ["tiny"]\n')
    cases = []
    for shell in ("bash", "zsh", "fish"):
        binary = shutil.which(shell)
        if binary is None:
            print(f"({shell} not installed: skipped)")
            continue
        for with_line in (False, True):
            home = tmp / f"{shell}-{'line' if with_line else 'bare'}"
            state = home / "state"
            (home / ".config" / "fish").mkdir(parents=True)
            env = {
                **os.environ,
                "HOME": str(home),
                "ZDOTDIR": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "OLLAMA_HOST": url,
                "OLLAMA_RESIDENT_HOME": str(state),
                "OLLAMA_RESIDENT_PROFILES": str(profiles),
                "PATH": f"{exe_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            }
            text = ""
            if with_line:
                os.environ["OLLAMA_RESIDENT_HOME"] = str(state)  # for the log path shown
                text = startup_line(shell, "work")
            rc = {"bash": ".bashrc", "zsh": ".zshrc", "fish": ".config/fish/config.fish"}[shell]
            (home / rc).write_text(text)
            label = f"{shell} -i -c exit" + (" + startup line" if with_line else "")
            after = state / "apply-work.log" if with_line else None
            cases.append(Case(label, [binary, "-i", "-c", "exit"], env, after))
    os.environ.pop("OLLAMA_RESIDENT_HOME", None)
    return cases


def import_costs(py: str) -> dict[str, float]:
    """Milliseconds ``-X importtime`` gives each command module, once the CLI is imported."""
    costs: dict[str, list[float]] = {}
    for _ in range(5):
        for mod in COMMAND_MODULES:
            name = f"ollama_resident.cli.{mod}"
            run = subprocess.run(
                [py, "-X", "importtime", "-c", f"import ollama_resident.cli, {name}"],
                capture_output=True,
                text=True,
                check=True,
            )
            for line in run.stderr.splitlines():
                parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
                if len(parts) == 3 and parts[2] == name:
                    costs.setdefault(mod, []).append(int(parts[1]) / 1000)
    return {mod: statistics.median(v) for mod, v in costs.items()}


def paired(a: Case, b: Case, what: str = "wall") -> float:
    """The median of per-round ratios a/b."""
    xs, ys = (a.wall, b.wall) if what == "wall" else (a.cpu, b.cpu)
    return statistics.median(x / y for x, y in zip(xs, ys, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--importtime", action="store_true", help="dump -X importtime of ps")
    parser.add_argument("--mtop", help="path of ollama-mtop's command (default: on PATH)")
    parser.add_argument("--no-shells", action="store_true", help="skip the shell cases")
    args = parser.parse_args()

    py = sys.executable
    # An installed package has its bytecode compiled by pip; an editable checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would recompile every module on every start. Measure the
    # installed case.
    import ollama_resident

    subprocess.run(
        [py, "-m", "compileall", "-q", str(Path(ollama_resident.__file__).parent)], check=True
    )
    exe_dir = Path(py).parent
    exe = shutil.which("ollama-resident", path=str(exe_dir)) or "ollama-resident"
    with fake_server() as url, tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        env = {
            **os.environ,
            "OLLAMA_HOST": url,
            "NO_COLOR": "1",
            "OLLAMA_RESIDENT_HOME": str(Path(tmp) / "home"),
        }
        if args.importtime:
            subprocess.run([py, "-X", "importtime", exe, "ps", "--json"], env=env)
            return

        floor = Case(
            "floor: python -c 'import typer, httpx'", [py, "-c", "import typer, httpx"], env
        )
        ps = Case("ollama-resident ps --json", [exe, "ps", "--json"], env)
        pin = Case(
            "ollama-resident pin tiny --quiet (pinned)", [exe, "pin", "tiny", "--quiet"], env
        )
        cases = [Case("python -c pass", [py, "-c", "pass"], env), floor, ps, pin]
        official = None
        try:
            import ollama  # noqa: F401

            official = Case(
                "official: ollama.ps()", [py, "-c", "import ollama; print(ollama.ps())"], env
            )
            cases.append(official)
        except ImportError:
            print("(official client skipped: `pip install ollama` to compare with it)")
        mtop_path = args.mtop or shutil.which("ollama-mtop")
        mtop = None
        if mtop_path:
            mtop = Case("ollama-mtop --json", [mtop_path, "--json", "--no-docker"], env)
            cases.append(mtop)
        else:
            print("(ollama-mtop skipped: not on PATH; --mtop PATH to add it)")
        shells = [] if args.no_shells else shell_cases(url, exe_dir, Path(tmp))
        cases += shells

        for _ in range(args.runs):
            for case in cases:
                case.run()

    print(f"\n{args.runs} interleaved rounds; medians")
    print(f"{'case':48} {'wall':>9} {'cpu':>9}")
    for case in cases:
        print(f"{case.label:48} {case.median() * 1000:7.1f}ms {case.median('cpu') * 1000:7.1f}ms")

    def ratio(name: str, a: Case, b: Case, target: float | None, *, at_most: bool = True) -> None:
        ok = ""
        if target is not None:
            ok = "  ok" if paired(a, b) <= target else "  NOT MET"
            ok = f"  (target <= {target}x){ok}"
        print(
            f"{name:34} {paired(a, b):5.2f}x paired, {a.median() / b.median():5.2f}x of medians, "
            f"cpu {paired(a, b, 'cpu'):5.2f}x{ok}"
        )

    print("\nratios (wall; median of the per-round ratios, then of the medians; cpu paired)")
    ratio("ps --json / floor (typer+httpx)", ps, floor, 1.15)
    if official is not None:
        ratio("ps --json / official client", ps, official, 0.5)
    ratio("pin (pinned) / ps --json", pin, ps, 1.1)
    if mtop is not None:
        ratio("ps --json / ollama-mtop --json", ps, mtop, None)

    if shells:
        print("\nshell start: the startup line over the same shell without it (paired, wall)")
        for bare, line in zip(shells[::2], shells[1::2], strict=True):
            diffs = [a - b for a, b in zip(line.wall, bare.wall, strict=True)]
            over = statistics.median(diffs) * 1000
            verdict = "ok" if over <= 5 else "NOT MET"
            print(
                f"{line.label.split(' ')[0]:6} {over:+5.2f} ms median of {len(diffs)} "
                f"(bare {bare.median() * 1000:.1f} ms)  (target <= 5 ms) {verdict}"
            )

    print(
        "\nimport cost of each command module, after `import ollama_resident.cli` (-X importtime)"
    )
    for mod, ms in sorted(import_costs(py).items(), key=lambda kv: kv[1]):
        print(f"  ollama_resident.cli.{mod:10} {ms:6.1f} ms")


if __name__ == "__main__":
    main()
