"""Tab completion of model names, through the real completion protocol."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import closed_port
from fakeollama import FakeOllama


def _complete(words: str, cword: int, host: str) -> list[str]:
    env = {
        **os.environ,
        "OLLAMA_HOST": host,
        "_OLLAMA_RESIDENT_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
    }
    result = subprocess.run(
        [sys.executable, "-m", "ollama_resident"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_pin_completes_installed_models(ollama: FakeOllama):
    assert _complete("ollama-resident pin ti", 2, ollama.url) == [
        "tiny-embed:latest",
        "tiny2:latest",
        "tiny3:latest",
        "tiny:latest",
    ]


def test_unload_completes_loaded_models(ollama: FakeOllama):
    ollama.preload("tiny2", -1)
    assert _complete("ollama-resident unload ", 2, ollama.url) == ["tiny2:latest"]


def test_commands_complete(ollama: FakeOllama):
    assert {"pin", "preload", "ps", "profile"} <= set(_complete("ollama-resident p", 1, ollama.url))


def test_dead_server_completes_nothing_quietly():
    assert _complete("ollama-resident pin ", 2, f"127.0.0.1:{closed_port()}") == []
