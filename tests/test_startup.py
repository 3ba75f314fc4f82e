"""Shell startup: the line returns at once, ten terminals cause one load, a failure is
never lost (the log, and the next command on a terminal), and the lines `shell-init`
prints work in the shells they are for."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run, closed_port, wait_until
from fakeollama import FakeOllama
from ollama_resident import startup

PROFILE = '[profiles.work]\nkeep_alive = "forever"\nmodels = ["tiny", "tiny-embed"]\n'


def _env(server_url: str, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILE)
    return {**os.environ, "OLLAMA_HOST": server_url, "OLLAMA_RESIDENT_PROFILES": str(path)}


def _background_ok(env: dict[str, str]) -> None:
    proc = _apply_background(env)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def _apply_background(env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    """`apply work --background` in its own process, as a shell runs it (the detached
    child outlives it; in-process, the never-waited-for child would outlive the test)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "apply", "work", "--background", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _runs_finished(n: int) -> Callable[[], bool]:
    """True once the profile's log shows ``n`` detached runs that have exited."""

    def done() -> bool:
        log = startup.log_path("work")
        return log.exists() and log.read_text().count(" exit ") >= n

    return done


def _on_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with stderr on a pseudo-terminal, as in an interactive shell; its stderr."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", *args],
        env={**env, "NO_COLOR": "1", "COLUMNS": "200"},
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        assert ready, "no output and no exit within 60 s"
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(60) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_ten_terminals_cause_one_load(make_ollama: Callable[..., FakeOllama], tmp_path: Path):
    server = make_ollama()
    server.hold_loads()  # no load completes until every shell has its prompt back
    env = _env(server.url, tmp_path)
    procs = [_apply_background(env) for _ in range(10)]
    results = [p.communicate(timeout=120) for p in procs]
    # Every shell got its prompt back while no load could finish.
    assert server.load_history == []
    assert all(p.returncode == 0 for p in procs), results
    messages = [err for _out, err in results]
    assert sum("in the background" in m for m in messages) == 1, messages
    assert sum("already being applied" in m for m in messages) == 9
    server.release_loads()
    wait_until(_runs_finished(1), timeout=120, what="the detached apply")
    assert sorted(server.load_history) == ["tiny-embed:latest", "tiny:latest"]
    loads = [r for r in server.requests if r.method == "POST" and r.path != "/api/show"]
    assert len(loads) == 2  # one load each, not ten
    assert not startup.failure_path("work").exists()


def test_a_resident_profile_gets_no_load(ollama: FakeOllama, tmp_path: Path):
    env = _env(ollama.url, tmp_path)
    ollama.preload("tiny", -1)
    ollama.preload("tiny-embed", -1)
    ollama.clear_requests()
    proc = _apply_background(env, "--quiet")
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (0, "", "")
    wait_until(_runs_finished(1), what="the detached apply")
    assert not [r for r in ollama.requests if r.method == "POST" and r.path != "/api/show"]
    assert "exit 0" in startup.log_path("work").read_text()
    assert not startup.failure_path("work").exists()


def test_a_failure_is_logged_and_shown_once_on_a_terminal(
    ollama: FakeOllama, tmp_path: Path, cli: Callable[..., Run]
):
    dead = _env(f"127.0.0.1:{closed_port()}", tmp_path)
    started = _apply_background(dead)
    _out, err = started.communicate(timeout=60)
    assert started.returncode == 0, err  # the shell is never kept waiting, even for that
    wait_until(_runs_finished(1), what="the detached apply")
    assert startup.failure_path("work").exists()
    log = startup.log_path("work").read_text()
    assert "error: cannot reach Ollama" in log
    assert "exit 3" in log

    # Not on a terminal (a script): nothing said, and the failure is kept for a person.
    alive = {**dead, "OLLAMA_HOST": ollama.url}
    assert "not applied" not in cli("ps", env={"OLLAMA_HOST": ollama.url}).stderr
    assert startup.failure_path("work").exists()

    first = _on_terminal(["ps", "--json"], alive)
    # It names what ran: the same command runs from a startup line or by hand.
    assert 'warning: profile "work" was not applied (`apply work --background`, ' in first
    assert "shell startup" not in first
    assert "cannot reach Ollama" in first
    assert str(startup.log_path("work")) in first
    assert "not applied" not in _on_terminal(["ps", "--json"], alive)


def test_a_later_success_clears_an_earlier_failure(ollama: FakeOllama, tmp_path: Path):
    dead = _env(f"127.0.0.1:{closed_port()}", tmp_path)
    _background_ok(dead)
    wait_until(_runs_finished(1), what="the failing run")
    assert startup.failure_path("work").exists()
    alive = {**dead, "OLLAMA_HOST": ollama.url}
    _background_ok(alive)
    wait_until(_runs_finished(2), what="the second run")
    assert not startup.failure_path("work").exists()
    assert "not applied" not in _on_terminal(["ps"], alive)


def test_an_unknown_profile_is_refused_and_recorded(tmp_path: Path, cli: Callable[..., Run]):
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    run = cli("--profiles", str(path), "apply", "nosuch", "--background", "--quiet")
    assert run.exit_code == 2
    record = json.loads(startup.failure_path("nosuch").read_text())
    assert record["exit_code"] == 2
    assert 'no profile named "nosuch"' in record["errors"][0]


def test_background_with_dry_run_is_usage_error(tmp_path: Path, cli: Callable[..., Run]):
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    assert cli("--profiles", str(path), "apply", "work", "--background", "-n").exit_code == 2


# -- shell-init ------------------------------------------------------------------------------


def test_shell_init_refuses_an_unknown_profile(tmp_path: Path, cli: Callable[..., Run]):
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    run = cli("--profiles", str(path), "shell-init", "bash", "nosuch")
    assert run.exit_code == 2
    assert run.stdout == ""


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        (
            "bash",
            "{ nice ollama-resident apply work --background --quiet </dev/null >/dev/null 2>&1"
            " & disown; }",
        ),
        (
            "zsh",
            "&& nice ollama-resident apply work --background --quiet </dev/null >/dev/null 2>&1 &!",
        ),
        (
            "fish",
            "    nice ollama-resident apply work --background --quiet </dev/null >/dev/null 2>&1 &"
            "\n    disown",
        ),
    ],
)
def test_shell_init_prints_a_static_line(
    shell: str, expected: str, tmp_path: Path, cli: Callable[..., Run], monkeypatch
):
    monkeypatch.setenv("OLLAMA_RESIDENT_PROFILES", str(tmp_path / "p.toml"))
    (tmp_path / "p.toml").write_text(PROFILE)
    run = cli("shell-init", shell, "work")
    assert run.exit_code == 0, run
    assert expected in run.stdout
    assert "eval" not in run.stdout and "python" not in run.stdout
    assert str(startup.log_path("work")) in run.stdout


@pytest.mark.parametrize("name", ["it's mine", "-x", "a b$c"])
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_init_quotes_any_profile_name(shell: str, name: str):
    """The profile reaches `apply` as one literal argument, in every shell."""
    binary = shutil.which(shell)
    if binary is None:
        pytest.skip(f"{shell} is not installed")
    line = startup.startup_line(shell, name)
    command = line.split("command -q ollama-resident\n")[-1].splitlines()[
        -3 if shell == "fish" else -1
    ]
    # Print the arguments the shell would pass instead of running the tool.
    command = command.split("ollama-resident", 2)[-1].split(" </dev/null")[0]
    shown = subprocess.run(
        [binary, "-c", f"printf '%s\\n' {command}"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    if name.startswith("-"):
        assert shown == ["apply", "--background", "--quiet", "--", name]
    else:
        assert shown == ["apply", name, "--background", "--quiet"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_startup_line_brings_the_profile_in(
    shell: str, ollama: FakeOllama, tmp_path: Path, cli: Callable[..., Run]
):
    """The pasted line, in a real interactive shell: it exits silently, the profile loads."""
    binary = shutil.which(shell)
    if binary is None:
        pytest.skip(f"{shell} is not installed")
    env = _env(ollama.url, tmp_path)
    home = tmp_path / "shell-home"
    (home / ".config" / "fish").mkdir(parents=True)
    line = cli(
        "shell-init",
        shell,
        "work",
        env={"OLLAMA_RESIDENT_PROFILES": env["OLLAMA_RESIDENT_PROFILES"]},
    ).stdout
    rc = {
        "bash": home / ".bashrc",
        "zsh": home / ".zshrc",
        "fish": home / ".config/fish/config.fish",
    }
    rc[shell].write_text(line)
    bindir = str(Path(sys.executable).parent)
    env.update(
        HOME=str(home),
        ZDOTDIR=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        PATH=bindir + os.pathsep + env["PATH"],
    )
    done = subprocess.run(
        [binary, "-i", "-c", "exit"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done
    assert "ollama-resident" not in done.stdout + done.stderr
    assert "error" not in done.stdout + done.stderr
    wait_until(_runs_finished(1), what="the detached apply")
    assert sorted(ollama.load_history) == ["tiny-embed:latest", "tiny:latest"]
