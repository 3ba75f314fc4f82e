"""Start-up discipline: importing the CLI must not pull in heavy modules.

Run in a subprocess so that other tests' imports do not hide a regression.
"""

from __future__ import annotations

import json
import subprocess
import sys

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
