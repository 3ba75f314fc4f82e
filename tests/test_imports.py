"""Start-up discipline: importing the CLI must not pull in heavy modules.

Run in a subprocess so that other tests' imports do not hide a regression.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HEAVY = ("httpx", "rich.table", "rich.live", "rich.progress", "tomli_w", "pydantic")


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys, json\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def test_cli_import_is_light() -> None:
    assert _loaded_after("import ollama_resident.cli") == []


def test_pure_modules_import_only_stdlib() -> None:
    code = (
        "import ollama_resident.durations, ollama_resident.host, ollama_resident.models, "
        "ollama_resident.errors, ollama_resident.paths"
    )
    assert _loaded_after(code) == []
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            code + "\nimport sys; print('typer' in sys.modules, 'rich' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert probe == ["False", "False"]


# -- the startup-file commands: `ps --json` and an already-pinned `pin` ----------------------

# Nothing here is needed to list models as JSON or to find a model already pinned. Each
# entry was once on the path, or is one careless import away from it.
NOT_ON_HOT_PATH = (
    # rich: plain output off a terminal; tables, live views and spinners even less
    "rich",
    "rich.console",
    "rich.table",
    "rich.live",
    "rich.progress",
    # httpx's default transport (plain http goes over http.client) and TLS set-up
    "httpcore",
    "h11",
    "anyio",
    "certifi",
    # version look-ups, pydantic (typer >= 0.29 imports it)
    "importlib.metadata",
    "pydantic",
    # writing or parsing TOML: profiles are not read by ps or pin MODEL
    "tomli_w",
    "tomllib",
    "tomli",
    # heavy stdlib that only some paths need; the idna codec (a str host for getaddrinfo)
    "fractions",
    "decimal",
    "encodings.idna",
    # the table layout: JSON and --quiet print no table
    "ollama_resident.layout",
    # other commands and the modules behind them
    "ollama_resident.cli.apply",
    "ollama_resident.cli.guard",
    "ollama_resident.cli.profile",
    "ollama_resident.cli.service",
    "ollama_resident.cli.watch",
    "ollama_resident.cli.why",
    "ollama_resident.events",
    "ollama_resident.guard",
    "ollama_resident.journal",
    "ollama_resident.plan",
    "ollama_resident.profiles",
    "ollama_resident.service",
    "ollama_resident.watcher",
    "ollama_resident.why",
)


def _run_and_inspect(args: list[str], server_url: str, tmp_path: Path) -> dict[str, Any]:
    """Run the CLI in a fresh interpreter; report its modules and the commands it built."""
    report = tmp_path / "report.json"
    probe = f"""
import atexit, json, sys
import typer.main

built = []
_build = typer.main.get_command_from_info
def _counting(info, **kwargs):
    built.append(info.name)
    return _build(info, **kwargs)
typer.main.get_command_from_info = _counting

def _report():
    with open({str(report)!r}, "w") as f:
        json.dump({{"modules": sorted(sys.modules), "built": built}}, f)
atexit.register(_report)

from ollama_resident.cli import main
main({args!r})
"""
    env = {**os.environ, "OLLAMA_HOST": server_url}
    run = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return dict(json.loads(report.read_text()))


@pytest.mark.parametrize(
    "args",
    [["ps", "--json"], ["pin", "tiny", "--quiet"], ["pin", "tiny"]],
    ids=["ps --json", "pin --quiet (pinned)", "pin (pinned)"],
)
def test_startup_commands_import_nothing_heavy(args: list[str], ollama: Any, tmp_path: Path):
    ollama.preload("tiny", -1)
    report = _run_and_inspect(args, ollama.url, tmp_path)
    heavy = sorted(set(NOT_ON_HOT_PATH) & set(report["modules"]))
    assert heavy == [], f"`{' '.join(args)}` imported {heavy}"
    # Only the command that runs is built, not its siblings (preload, unload) or others.
    assert report["built"] == [args[0]]


def test_hot_path_modules_compile_no_pattern_at_import():
    """A regex is compiled where it is first used, not when a module is imported."""
    modules = (
        "ollama_resident.cli, ollama_resident.cli.ps, ollama_resident.cli.load, "
        "ollama_resident.client, ollama_resident.client_transport, ollama_resident.render, "
        "ollama_resident.residency, ollama_resident.startup, ollama_resident.models, "
        "ollama_resident.host, ollama_resident.durations, ollama_resident.errors, "
        "ollama_resident.paths"
    )
    probe = f"""
import re, sys, json, httpx, typer.main
ours = []
_compile = re._compile
def _recording(pattern, flags):
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == "re":
        frame = frame.f_back  # re.compile, re.fullmatch, ...: the caller is next
    name = frame.f_globals.get("__name__", "") if frame is not None else ""
    if name.startswith("ollama_resident"):
        ours.append(f"{{name}}: {{pattern!r}}")
    return _compile(pattern, flags)
re._compile = _recording
import {modules}
print(json.dumps(ours))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
