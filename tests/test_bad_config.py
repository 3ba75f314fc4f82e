"""Configuration no command can use: a usage error (exit 2) naming it, nothing sent or changed.

Issue 11, items 3 to 5: host values from OLLAMA_HOST, --host and a profile; profiles
files nested too deep, too big, or big enough to show a quadratic reader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from fakeollama import FakeOllama

Cli = Callable[..., Run]


# -- profiles files: deep, huge, large -----------------------------------------------------------


def _one_line_error(run: Run, *needles: str) -> None:
    assert run.exit_code == 2, run
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("error: "), run
    assert all(not ln.startswith("error: ") for ln in lines[1:]), run  # one error, maybe a hint
    for needle in needles:
        assert needle in lines[0], run
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "nested",
    ["models = " + "[" * 100_000 + "]" * 100_000, "x = " + "{a = " * 100_000 + "1" + "}" * 100_000],
    ids=["arrays", "inline-tables"],
)
@pytest.mark.parametrize(
    "command", [("profile", "list"), ("apply", "a"), ("profile", "add", "a", "m")]
)
def test_a_file_nested_100000_deep_is_a_configuration_error(
    cli: Cli, tmp_path: Path, nested: str, command: tuple[str, ...]
) -> None:
    path = tmp_path / "profiles.toml"
    text = "[profiles.a]\n" + nested + "\n"
    path.write_text(text)
    run = cli("--profiles", str(path), *command)
    _one_line_error(run, str(path), "nested too deeply")
    assert path.read_text() == text  # nothing changed
    assert not (tmp_path / "profiles.toml.bak").exists()


@pytest.mark.parametrize(
    "command", [("profile", "list"), ("apply", "a"), ("profile", "add", "a", "m")]
)
def test_dev_zero_is_refused_without_reading_it_all(cli: Cli, command: tuple[str, ...]) -> None:
    run = cli("--profiles", "/dev/zero", *command)
    _one_line_error(run, "/dev/zero")
    assert "is not a regular file" in run.stderr or "larger than" in run.stderr
    assert not Path("/dev/zero.lock").exists()


def test_a_file_over_the_bound_is_refused(cli: Cli, tmp_path: Path) -> None:
    from ollama_resident.profiles import MAX_FILE_BYTES

    path = tmp_path / "profiles.toml"
    path.write_text("[profiles.a]\nmodels = []\n" + "#" * MAX_FILE_BYTES + "\n")
    run = cli("--profiles", str(path), "profile", "list")
    _one_line_error(run, str(path), "larger than 4 MiB")


def _big_file(path: Path, n: int) -> None:
    """``n`` profiles of two models each, then one profile of ``n`` models."""
    parts = []
    for i in range(n):
        parts.append(
            f'[profiles.p{i}]\nkeep_alive = "30m"\n'
            f'models = ["m{i}", {{ name = "e{i}", keep_alive = "5m" }}]\n'
        )
    parts.append("[profiles.big]\nmodels = [\n")
    for i in range(n):
        parts.append(f'  {{ name = "b{i}", num_ctx = 2048 }},\n' if i % 2 else f'  "b{i}",\n')
    parts.append("]\n")
    path.write_text("".join(parts))


def test_reading_10000_profiles_and_10000_models_is_linear(tmp_path: Path) -> None:
    """Linear reading takes about a second here; the quadratic one took minutes.

    The bound (60 s, in a subprocess) is far above the linear time on a loaded
    machine and far below the quadratic time, so it never flakes and still fails
    for a reader that is not linear.
    """
    path = tmp_path / "profiles.toml"
    _big_file(path, 10_000)
    env = {**os.environ, "NO_COLOR": "1"}
    base = [sys.executable, "-m", "ollama_resident", "--profiles", str(path)]
    listed = subprocess.run(
        [*base, "profile", "list", "--json"], capture_output=True, text=True, timeout=60, env=env
    )
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert len(data) == 10_001
    assert [m["name"] for m in data[9_999]["models"]] == ["m9999", "e9999"]
    big = data[-1]
    assert big["name"] == "big" and len(big["models"]) == 10_000
    assert big["models"][9_999] == {
        "name": "b9999",
        "keep_alive": None,
        "effective_keep_alive": None,
        "num_ctx": 2048,
    }


def test_an_error_in_a_large_file_still_names_its_line(tmp_path: Path, cli: Cli) -> None:
    path = tmp_path / "profiles.toml"
    _big_file(path, 10_000)
    text = path.read_text().replace('"b9998",', '{ name = "b9998", keep_alive = "1d" },')
    path.write_text(text)
    line = text.splitlines().index('  { name = "b9998", keep_alive = "1d" },') + 1
    run = cli("--profiles", str(path), "profile", "list")
    _one_line_error(run, f"{path}:{line}:", "models[9998] (b9998) -> keep_alive")


def test_a_journal_line_nested_deep_is_skipped_like_any_garbled_line(cli: Cli) -> None:
    from ollama_resident import paths

    good = (
        '{"time":"2026-01-01T00:00:00Z","host":"http://127.0.0.1:11434","model":"tiny:latest",'
        '"event":"loaded","reason":null,"detail":{}}\n'
    )
    path = paths.journal_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n" + good)
    run = cli("journal", "show", "--json")
    assert run.exit_code == 0, run
    assert [e["model"] for e in json.loads(run.stdout)] == ["tiny:latest"]


# -- host values no command can use ------------------------------------------------------------

SERVER_COMMANDS = [
    ("ps",),
    ("preload", "tiny"),
    ("pin", "tiny"),
    ("unload", "tiny"),
    ("unload", "--all"),
    ("apply", "work"),
    ("guard", "tiny", "--once"),
    ("watch", "--jsonl"),
    ("profile", "save", "snap"),
]
BAD_HOSTS = [
    ("127.0.0.1:99999", 'port "99999" is not a number from 1 to 65535'),
    ("http://[::1:11601", "brackets do not enclose an IPv6 address"),
    ("localhost:0", 'port "0"'),
    ("tcp://127.0.0.1:11434", 'scheme "tcp" is not http or https'),
    ("gpu box:11434", "contains ' '"),
]


@pytest.fixture
def work_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.work]\nmodels = ["tiny"]\n')
    monkeypatch.setenv("OLLAMA_RESIDENT_PROFILES", str(path))
    return path


@pytest.mark.parametrize(("value", "why"), BAD_HOSTS)
@pytest.mark.parametrize("command", SERVER_COMMANDS, ids=" ".join)
def test_an_unusable_ollama_host_is_a_usage_error(
    cli: Cli,
    ollama: FakeOllama,
    work_profile: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
    value: str,
    why: str,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    run = cli(*command)
    _one_line_error(run, f'OLLAMA_HOST "{value}" cannot be used', why)
    assert "hint: " in run.stderr


@pytest.mark.parametrize("command", SERVER_COMMANDS, ids=" ".join)
def test_an_unusable_host_option_is_a_usage_error_and_nothing_is_sent(
    cli: Cli, ollama: FakeOllama, work_profile: Path, command: tuple[str, ...]
) -> None:
    ollama.clear_requests()
    run = cli(*command, "--host", "127.0.0.1:99999")
    _one_line_error(run, '--host "127.0.0.1:99999" cannot be used', 'port "99999"')
    assert ollama.requests_to("/api/ps") == []
    assert ollama.requests_to("/api/generate") == []


def test_an_unusable_profile_host_names_the_file_and_line(
    cli: Cli, ollama: FakeOllama, work_profile: Path
) -> None:
    work_profile.write_text('[profiles.work]\nhost = "http://[::1:11601"\nmodels = ["tiny"]\n')
    for command in (("apply", "work"), ("pin", "--profile", "work"), ("profile", "list")):
        run = cli(*command)
        _one_line_error(
            run, f"{work_profile}:2: profiles -> work -> host", "brackets do not enclose"
        )


def test_credentials_in_an_unusable_host_are_not_shown(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://alice:hunter2@gpu-box:99999")
    run = cli("ps")
    _one_line_error(run, 'OLLAMA_HOST "http://***@gpu-box:99999" cannot be used')
    assert "hunter2" not in run.stderr


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1",
        "[::1]:1337",
        "::1",
        "example.com:",
        "https://gpu-box/ollama",
        "0.0.0.0:8080",
        "münchen.example:11434",
        "http://user:p@ss@[::1]:8080",
        "HTTP://1.2.3.4",
    ],
)
def test_values_ollama_reads_as_written_stay_valid(value: str) -> None:
    from ollama_resident.host import check_host, parse_host

    assert check_host(value) == parse_host(value)


@pytest.mark.parametrize(
    "command",
    [("doctor",), ("doctor", "--profile", "a"), ("profile", "list"), ("apply", "a")],
)
def test_a_syntax_error_is_the_same_error_in_doctor(
    cli: Cli, tmp_path: Path, ollama: FakeOllama, command: tuple[str, ...]
) -> None:
    """The trial's case: `doctor --profiles bad.toml` said nothing, rc 0."""
    path = tmp_path / "bad.toml"
    path.write_text('[profiles.a]\nmodels = ["tiny"\n')
    run = cli("--profiles", str(path), *command)
    assert run.exit_code == 2, run
    _one_line_error(run, str(path))
    assert f"{path}:2: not valid TOML" in run.stderr.splitlines()[0], run
    assert not ollama.requests, "nothing sent"
