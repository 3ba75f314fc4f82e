"""Tab completion through the real scripts in completions/ and each shell's own machinery.

bash through its ``complete -F`` function and COMPREPLY; fish through ``complete -C``;
zsh through the generated function with ``_arguments`` caught (zsh's completion
system needs a terminal). Shells that are not installed are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import closed_port
from fakeollama import FakeOllama

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "completions"
BIN = str(Path(sys.executable).parent)  # where the ollama-resident script is installed


def _env(host: str | None = None) -> dict[str, str]:
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    if host is not None:
        env["OLLAMA_HOST"] = host
    return env


def bash(line: str, host: str | None = None) -> list[str]:
    """What bash offers for ``line`` (the word being completed is the last one)."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    words = line.split(" ")
    script = textwrap.dedent(
        f"""\
        source {SCRIPTS / "ollama-resident.bash"}
        spec=$(complete -p ollama-resident)
        fn=${{spec#*-F }}; fn=${{fn%% *}}
        COMP_WORDS=({" ".join(f"'{w}'" for w in words)})
        COMP_CWORD={len(words) - 1}
        COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}
        "$fn" ollama-resident "{words[-1]}" "{words[-2]}"
        printf '%s\\n' "${{COMPREPLY[@]}}"
        """
    )
    result = subprocess.run(
        ["bash", "--norc", "-c", script], env=_env(host), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return [w for w in result.stdout.splitlines() if w]


def fish(line: str, host: str | None = None) -> list[str]:
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed")
    script = f"source {SCRIPTS / 'ollama-resident.fish'}; complete -C '{line}'"
    result = subprocess.run(
        ["fish", "--no-config", "-c", script], env=_env(host), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return [w.split("\t")[0] for w in result.stdout.splitlines() if w]


def zsh(line: str, host: str | None = None) -> list[str]:
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed")
    words = line.split(" ")
    script = textwrap.dedent(
        f"""\
        compdef() {{ : }}
        source {SCRIPTS / "ollama-resident.zsh"}
        _arguments() {{ print -r -- "$@" }}
        _describe() {{ print -r -- "${{(P)2}}" }}
        words=({" ".join(f"'{w}'" for w in words)})
        CURRENT={len(words)}
        _ollama_resident_completion
        """
    )
    result = subprocess.run(
        ["zsh", "-f", "-c", script], env=_env(host), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    # _arguments '*: :(("a\\:latest" "b"))': the names, unescaped
    import re

    found = re.findall(r'"((?:[^"\\]|\\.)*)"', result.stdout)
    return [re.sub(r"\\+:", ":", n) for n in found]


SHELLS = {"bash": bash, "fish": fish, "zsh": zsh}


@pytest.fixture
def profiles(isolated_env: Path) -> Path:
    path = isolated_env / "profiles.toml"
    path.write_text(
        '[profiles.coding]\nmodels = ["tiny"]\n\n[profiles.chat]\nmodels = ["tiny2"]\n'
        '\n[profiles."late night"]\nmodels = []\n'
    )
    return path


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    "line",
    [
        "ollama-resident apply ",
        "ollama-resident guard --profile ",
        "ollama-resident profile show ",
        "ollama-resident pin --profile ",
    ],
)
def test_profile_names(shell: str, line: str, profiles: Path) -> None:
    offered = SHELLS[shell](line)
    assert {"chat", "coding"} <= set(offered), offered
    assert "tiny:latest" not in offered


@pytest.mark.parametrize("shell", SHELLS)
def test_profile_names_by_prefix(shell: str, profiles: Path) -> None:
    assert sorted(SHELLS[shell]("ollama-resident apply c")) == ["chat", "coding"]


@pytest.mark.parametrize("shell", SHELLS)
def test_why_offers_the_models_in_the_journal(shell: str, ollama: FakeOllama, cli) -> None:
    assert cli("pin", "tiny2", "tiny-embed").exit_code == 0  # journaled
    ollama.clear_requests()
    offered = SHELLS[shell]("ollama-resident why ", ollama.url)
    assert set(offered) == {"tiny2:latest", "tiny-embed:latest"}, offered
    assert ollama.requests_to("/api/tags") == []  # the journal, not the server


@pytest.mark.parametrize("shell", SHELLS)
def test_pin_completes_installed_models_not_yet_given(shell: str, ollama: FakeOllama) -> None:
    complete = SHELLS[shell]
    assert sorted(complete("ollama-resident pin ti", ollama.url)) == [
        "tiny-embed:latest",
        "tiny2:latest",
        "tiny3:latest",
        "tiny:latest",
    ]
    offered = complete("ollama-resident pin tiny ti", ollama.url)
    assert "tiny:latest" not in offered and "tiny2:latest" in offered


@pytest.mark.parametrize("shell", SHELLS)
def test_unload_completes_loaded_models(shell: str, ollama: FakeOllama) -> None:
    ollama.preload("tiny2", -1)
    assert SHELLS[shell]("ollama-resident unload ", ollama.url) == ["tiny2:latest"]


def test_commands_complete(ollama: FakeOllama) -> None:
    assert {"pin", "preload", "ps", "profile"} <= set(bash("ollama-resident p", ollama.url))


def test_the_model_list_is_cached_briefly(ollama: FakeOllama) -> None:
    assert "tiny:latest" in bash("ollama-resident pin ", ollama.url)
    assert "tiny:latest" in bash("ollama-resident preload t", ollama.url)
    assert len(ollama.requests_to("/api/tags")) == 1  # the second Tab press used the cache


def test_a_dead_server_completes_nothing_quietly() -> None:
    assert bash("ollama-resident pin ", f"127.0.0.1:{closed_port()}") == []


def test_a_hung_server_is_not_waited_for_twice(ollama: FakeOllama) -> None:
    """The first Tab press gives up after a fifth of a second; the next does not ask."""
    ollama.hang_next("/api/tags", 30)
    ollama.hang_next("/api/tags", 30)
    assert bash("ollama-resident pin ", ollama.url) == []
    assert bash("ollama-resident pin ", ollama.url) == []
    assert len(ollama.requests_to("/api/tags")) == 1


def test_a_server_that_went_away_leaves_its_last_list(ollama: FakeOllama) -> None:
    url = ollama.url
    assert "tiny:latest" in bash("ollama-resident pin ", url)
    ollama.stop()
    # The list is older than its time to live only after a minute; a stopped server
    # must not make the completion slower or emptier meanwhile.
    assert "tiny:latest" in bash("ollama-resident pin ", url)
