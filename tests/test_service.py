"""Service definitions: every hostile word reaches the guard as one literal argument."""

from __future__ import annotations

import json
import plistlib
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from ollama_resident import service

HOSTILE = [
    "plain",
    "with space",
    'double"quote',
    "single'quote",
    "dollar$HOME",
    "brace${HOME}",
    "percent%h%n%%",
    "subshell$(rm -rf ~)",
    "back`tick`",
    "back\\slash",
    "semi;colon&amp<tag>",
    "ünïcödé",
    "--looks-like-an-option",
]


def systemd_split(line: str) -> list[str]:
    """ExecStart= words as systemd reads them (systemd.service(5), "Command lines"):
    quoting and C escapes, then %-specifiers (%% is a literal %), then $$ -> $."""
    words: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        assert line[i] == '"', f"every word must be quoted: {line[i:]!r}"
        i += 1
        word = ""
        while line[i] != '"':
            if line[i] == "\\":
                word += {"\\": "\\", '"': '"', "n": "\n"}[line[i + 1]]
                i += 2
            else:
                word += line[i]
                i += 1
        i += 1
        # No specifier or variable survives: every % and $ must come doubled.
        assert re.fullmatch(r"(?:[^%$]|%%|\$\$)*", word), word
        words.append(word.replace("%%", "%").replace("$$", "$"))
    return words


@pytest.mark.parametrize("word", HOSTILE)
def test_systemd_word_round_trips(word: str) -> None:
    argv = ["/usr/bin/python3", "-m", "ollama_resident", "guard", "--profile", word]
    unit = service.systemd_unit(argv, word, Path("/home/u"))
    [exec_line] = [line for line in unit.text.splitlines() if line.startswith("ExecStart=")]
    assert systemd_split(exec_line.removeprefix("ExecStart=")) == argv
    assert unit.path is not None and unit.path.parent == Path("/home/u/.config/systemd/user")
    assert "/" not in unit.path.name.removesuffix(".service").replace("\\x2f", "")
    assert unit.enable is not None and unit.enable.startswith("systemctl --user enable --now ")


@pytest.mark.parametrize("word", HOSTILE)
def test_launchd_word_round_trips(word: str) -> None:
    argv = ["/usr/bin/python3", "-m", "ollama_resident", "guard", "--profile", word]
    plist = service.launchd_plist(argv, word, Path("/Users/u"), Path("/Users/u/state"))
    data = plistlib.loads(plist.text.encode())
    assert data["ProgramArguments"] == argv
    assert data["RunAtLoad"] is True
    assert data["Label"].startswith("io.github.ollama-resident.guard.")
    assert plist.path is not None and plist.path.name == data["Label"] + ".plist"


@pytest.mark.parametrize("word", HOSTILE)
def test_compose_word_round_trips(word: str) -> None:
    argv = ["ollama-resident", "guard", "--profile", word, "--wait", "300"]
    snippet = service.compose_snippet(argv, word)
    [line] = [ln.strip() for ln in snippet.text.splitlines() if ln.strip().startswith("command:")]
    flow = line.removeprefix("command:").strip()
    # A flow sequence of double-quoted scalars is JSON; compose then turns $$ into $.
    assert [w.replace("$$", "$") for w in json.loads(flow)] == argv
    assert "$" not in flow.replace("$$", "")
    assert snippet.path is None


def test_line_breaks_are_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        service.systemd_quote("a\nb")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_accepts_the_unit(tmp_path: Path) -> None:
    argv = ["/bin/true", "guard", "--profile", 'we ird"$(x)%h']
    unit = service.systemd_unit(argv, "weird", tmp_path)
    path = tmp_path / service.systemd_unit_name("weird")
    path.write_text(unit.text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True
    )
    problems = [
        line
        for line in result.stderr.splitlines()
        if "ExecStart" in line or "Failed to parse" in line or "Unknown key" in line
    ]
    assert problems == []


# -- the commands -----------------------------------------------------------------------------


def _profiles(tmp_path: Path, name: str = "work") -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(f'[profiles."{name}"]\nmodels = ["tiny"]\n')
    return path


def test_print_systemd_for_existing_profile(tmp_path: Path, cli: Callable[..., Run]) -> None:
    path = _profiles(tmp_path)
    run = cli("--profiles", str(path), "service", "print", "--profile", "work", "--systemd")
    assert run.exit_code == 0, run
    exec_line = next(ln for ln in run.stdout.splitlines() if ln.startswith("ExecStart="))
    words = systemd_split(exec_line.removeprefix("ExecStart="))
    assert words[1:] == [
        "-m",
        "ollama_resident",
        "--profiles",
        str(path.resolve()),
        "guard",
        "--profile",
        "work",
        "--wait",
        "300",
    ]
    assert "sh -c" not in run.stdout


def test_unknown_profile_is_exit_2(tmp_path: Path, cli: Callable[..., Run]) -> None:
    path = _profiles(tmp_path)
    run = cli("--profiles", str(path), "service", "print", "--profile", "nope")
    assert run.exit_code == 2
    assert "nope" in run.stderr and "work" in run.stderr
    assert run.stdout == ""


def test_install_writes_to_user_dir_and_prints_enable(
    tmp_path: Path, cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home-dir"))
    monkeypatch.delenv("XDG_CONFIG_HOME")  # unset: ~/.config (see test_service_env.py)
    path = _profiles(tmp_path)
    run = cli("--profiles", str(path), "service", "install", "--profile", "work", "--systemd")
    assert run.exit_code == 0, run
    unit = tmp_path / "home-dir/.config/systemd/user/ollama-resident-guard-work.service"
    assert unit.is_file() and "ExecStart=" in unit.read_text()
    assert run.stdout.strip() == "systemctl --user enable --now ollama-resident-guard-work.service"
    launchd = cli("--profiles", str(path), "service", "install", "--profile", "work", "--launchd")
    assert launchd.exit_code == 0
    plist = next((tmp_path / "home-dir/Library/LaunchAgents").glob("*.plist"))
    assert plistlib.loads(plist.read_bytes())["ProgramArguments"][-3:] == ["work", "--wait", "300"]
    compose = cli("--profiles", str(path), "service", "install", "--profile", "work", "--compose")
    assert compose.exit_code == 2 and "service print" in compose.stderr


def test_choose_one_format(tmp_path: Path, cli: Callable[..., Run]) -> None:
    path = _profiles(tmp_path)
    run = cli("--profiles", str(path), "service", "print", "-p", "work", "--systemd", "--compose")
    assert run.exit_code == 2


@pytest.mark.parametrize("name", ['we ird"$(rm -rf ~)%h', "it's 100%", "a$b `c`"])
def test_hostile_profile_name_reaches_guard_literally(
    name: str, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    path = tmp_path / "profiles.toml"
    assert cli("--profiles", str(path), "profile", "add", name, "tiny").exit_code == 0
    systemd = cli("--profiles", str(path), "service", "print", "-p", name, "--systemd")
    exec_line = next(ln for ln in systemd.stdout.splitlines() if ln.startswith("ExecStart="))
    words = systemd_split(exec_line.removeprefix("ExecStart="))
    assert words[-4:-2] == ["--profile", name]
    launchd = cli("--profiles", str(path), "service", "print", "-p", name, "--launchd")
    args = plistlib.loads(launchd.stdout.encode())["ProgramArguments"]
    assert args[-4:-2] == ["--profile", name]
    compose = cli("--profiles", str(path), "service", "print", "-p", name, "--compose")
    line = next(ln.strip() for ln in compose.stdout.splitlines() if "command:" in ln)
    words = [w.replace("$$", "$") for w in json.loads(line.removeprefix("command:").strip())]
    assert words[-4:-2] == ["--profile", name]
