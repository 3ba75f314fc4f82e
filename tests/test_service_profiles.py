"""One service for several profiles (issue #14): `service print|install -p a -p b`."""

from __future__ import annotations

import plistlib
from collections.abc import Callable
from pathlib import Path

from conftest import Run
from test_service import systemd_split

PROFILES = '[profiles.laptop]\nmodels = ["tiny"]\n\n[profiles."gpu box"]\nmodels = ["tiny2"]\n'


def test_systemd_unit_guards_every_profile(tmp_path: Path, cli: Callable[..., Run]) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PROFILES)
    run = cli("--profiles", str(path), "service", "print", "-p", "laptop", "-p", "gpu box")
    assert run.exit_code == 0, run
    [exec_start] = [ln for ln in run.stdout.splitlines() if ln.startswith("ExecStart=")]
    words = systemd_split(exec_start.removeprefix("ExecStart="))
    i = words.index("guard")
    assert words[i:] == ["guard", "--profile", "laptop", "--profile", "gpu box", "--wait", "300"]
    assert "profiles 'laptop', 'gpu box'" in run.stdout


def test_install_names_the_unit_after_every_profile(
    tmp_path: Path, cli: Callable[..., Run], monkeypatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME")  # unset: ~/.config
    path = tmp_path / "p.toml"
    path.write_text(PROFILES)
    run = cli("--profiles", str(path), "service", "install", "-p", "laptop", "-p", "gpu box")
    assert run.exit_code == 0, run
    units = list((tmp_path / ".config" / "systemd" / "user").iterdir())
    assert [u.name for u in units] == ["ollama-resident-guard-laptop-gpu\\x20box.service"]
    plist = cli(
        "--profiles", str(path), "service", "print", "-p", "laptop", "-p", "gpu box", "--launchd"
    )
    data = plistlib.loads(plist.stdout.encode())
    assert data["Label"] == "io.github.ollama-resident.guard.laptop+gpu-box"
    assert data["ProgramArguments"][-6:-2] == ["--profile", "laptop", "--profile", "gpu box"]


def test_a_repeated_or_unknown_profile(tmp_path: Path, cli: Callable[..., Run]) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PROFILES)
    run = cli("--profiles", str(path), "service", "print", "-p", "laptop", "-p", "laptop")
    [exec_start] = [ln for ln in run.stdout.splitlines() if ln.startswith("ExecStart=")]
    words = systemd_split(exec_start.removeprefix("ExecStart="))
    assert words[words.index("guard") :] == ["guard", "--profile", "laptop", "--wait", "300"]
    assert (
        cli("--profiles", str(path), "service", "print", "-p", "laptop", "-p", "x").exit_code == 2
    )
