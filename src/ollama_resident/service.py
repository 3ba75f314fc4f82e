"""Service definitions that run ``guard`` for profiles: systemd, launchd, compose.

One service can guard several profiles (``guard --profile a --profile b``); its
name then joins theirs. Kubernetes manifests are :mod:`ollama_resident.kube`'s.

Pure text generation. Every argument reaches the guard as one literal word,
whatever it contains, by each format's own quoting rules:

- systemd: each word double-quoted with C escapes; ``%`` doubled (specifiers)
  and ``$`` doubled (variable expansion), per systemd.service(5) "Command lines".
- launchd: one ``<string>`` per word in ``ProgramArguments``, XML-escaped; no
  shell is involved.
- compose: the exec form (a list), each word a JSON string (valid YAML), with
  ``$`` doubled because compose interpolates variables in every value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

__all__ = [
    "ServiceFile",
    "compose_snippet",
    "guard_argv",
    "launchd_label",
    "launchd_plist",
    "systemd_quote",
    "systemd_unit",
    "systemd_unit_name",
]

# Enough for a GPU server that is still booting; the guard then keeps waiting
# in its own loop anyway.
SERVICE_WAIT_S = 300


@dataclass(frozen=True)
class ServiceFile:
    kind: str  # systemd | launchd | compose
    text: str
    path: Path | None  # where `install` writes it; None: no standard place
    enable: str | None  # the one command that enables it


Profiles = str | Sequence[str]


def _names(profile: Profiles) -> list[str]:
    return [profile] if isinstance(profile, str) else list(profile)


def guard_argv(
    program: Sequence[str], profile: Profiles, *, profiles_file: str | None = None
) -> list[str]:
    """``PROGRAM [--profiles FILE] guard --profile A [--profile B ...] --wait 300``."""
    argv = [*program]
    if profiles_file:
        argv += ["--profiles", profiles_file]
    argv.append("guard")
    for name in _names(profile):
        argv += ["--profile", name]
    argv += ["--wait", str(SERVICE_WAIT_S)]
    return argv


def _check_word(word: str) -> None:
    if "\n" in word or "\r" in word or "\x00" in word:
        raise ValueError(f"a service argument cannot contain a line break or NUL: {word!r}")


# -- systemd -----------------------------------------------------------------------------------


def systemd_quote(word: str) -> str:
    """One ExecStart word, literal under systemd's quoting, specifiers and expansion.

    >>> print(systemd_quote('a b'), systemd_quote('100%$(x)'))
    "a b" "100%%$$(x)"
    """
    _check_word(word)
    escaped = word.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _systemd_escape(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch == "/":
            out.append("-")
        elif (ch.isascii() and (ch.isalnum() or ch in ":_")) or (ch == "." and i > 0):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode())
    return "".join(out)


def systemd_unit_name(profile: Profiles) -> str:
    r"""``ollama-resident-guard-<profile>.service``, escaped like ``systemd-escape``.

    Several profiles are joined with '-' (which escaping never leaves inside a name).

    >>> print(systemd_unit_name(["work", "gpu box"]))
    ollama-resident-guard-work-gpu\x20box.service
    """
    return f"ollama-resident-guard-{'-'.join(_systemd_escape(n) for n in _names(profile))}.service"


def _systemd_comment(text: str) -> str:
    return re.sub(r"[\r\n]", " ", text)


def systemd_environment(name: str, value: str) -> str:
    """One ``Environment=`` line, literal under systemd's quoting and specifiers.

    >>> print(systemd_environment("OLLAMA_HOST", 'http://gpu-box:11434/100%'))
    Environment="OLLAMA_HOST=http://gpu-box:11434/100%%"
    """
    _check_word(value)
    escaped = f"{name}={value}".replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'Environment="{escaped}"'


def systemd_unit(
    argv: Sequence[str],
    profile: Profiles,
    home: Path,
    *,
    environment: Mapping[str, str] | None = None,
    config_home: Path | None = None,
) -> ServiceFile:
    """A user unit; ``environment`` is set for the guard (the host and paths in use).

    It goes to ``$XDG_CONFIG_HOME/systemd/user/`` (``config_home``), else
    ``~/.config/systemd/user/``, where ``systemctl --user`` looks.
    """
    names = _names(profile)
    name = systemd_unit_name(names)
    exec_start = " ".join(systemd_quote(w) for w in argv)
    title = _systemd_comment(", ".join(repr(n) for n in names))
    which = "profile" if len(names) == 1 else "profiles"
    env_lines = "".join(
        systemd_environment(k, v) + "\n" for k, v in sorted((environment or {}).items())
    )
    text = f"""# Keeps the models of ollama-resident {which} {title} loaded.
# Generated by `ollama-resident service print --systemd`; regenerate rather than edit.
[Unit]
Description=ollama-resident guard ({which} {" ".join(systemd_quote(n) for n in names)})
After=network-online.target ollama.service
Wants=network-online.target

[Service]
Type=simple
{env_lines}ExecStart={exec_start}
Restart=on-failure
RestartSec=10
# guard exits 0 on SIGTERM within a second
TimeoutStopSec=10

[Install]
WantedBy=default.target
"""
    path = (config_home or home / ".config") / "systemd" / "user" / name
    return ServiceFile("systemd", text, path, f"systemctl --user enable --now {_sh(name)}")


# -- launchd -----------------------------------------------------------------------------------


def _launchd_safe(profile: Profiles) -> str:
    return "+".join(re.sub(r"[^A-Za-z0-9.-]", "-", n) or "profile" for n in _names(profile))


def launchd_label(profile: Profiles) -> str:
    return f"io.github.ollama-resident.guard.{_launchd_safe(profile)}"


def launchd_plist(
    argv: Sequence[str],
    profile: Profiles,
    home: Path,
    log_dir: Path,
    *,
    environment: Mapping[str, str] | None = None,
) -> ServiceFile:
    for word in [*argv, *(environment or {}).values()]:
        _check_word(word)
    env = ""
    if environment:
        pairs = "".join(
            f"    <key>{xml_escape(k)}</key>\n    <string>{xml_escape(v)}</string>\n"
            for k, v in sorted(environment.items())
        )
        env = f"  <key>EnvironmentVariables</key>\n  <dict>\n{pairs}  </dict>\n"
    label = launchd_label(profile)
    args = "\n".join(f"    <string>{xml_escape(w)}</string>" for w in argv)
    log = xml_escape(str(log_dir / f"guard-{_launchd_safe(profile)}.log"))
    names = ", ".join(_names(profile))
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Keeps the models of ollama-resident profile {xml_escape(names).replace("--", "- -")} loaded.
     Generated by "ollama-resident service print"; regenerate rather than edit. -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{xml_escape(label)}</string>
  <key>ProgramArguments</key>
  <array>
{args}
  </array>
{env}  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ThrottleInterval</key>
  <integer>10</integer>
  <key>StandardOutPath</key>
  <string>{log}</string>
  <key>StandardErrorPath</key>
  <string>{log}</string>
</dict>
</plist>
"""
    path = home / "Library" / "LaunchAgents" / f"{label}.plist"
    return ServiceFile("launchd", text, path, f"launchctl bootstrap gui/$(id -u) {_sh(str(path))}")


# -- docker compose ------------------------------------------------------------------------------


def _compose_word(word: str) -> str:
    _check_word(word)
    return json.dumps(word.replace("$", "$$"), ensure_ascii=False)


def compose_snippet(argv: Sequence[str], profile: Profiles) -> ServiceFile:
    joined = "-".join(_names(profile))
    service = "ollama-resident-" + (re.sub(r"[^a-z0-9_-]", "-", joined.lower()) or "guard")
    command = ", ".join(_compose_word(w) for w in argv)
    title = ", ".join(json.dumps(n, ensure_ascii=False) for n in _names(profile))
    text = f"""# Keeps the models of ollama-resident profile {title} loaded.
# Add under `services:` beside your ollama service. The image needs ollama-resident
# installed, e.g. a Dockerfile of two lines:
#   FROM python:3.12-slim
#   RUN pip install --no-cache-dir ollama-resident
services:
  {service}:
    build: ./ollama-resident
    command: [{command}]
    environment:
      OLLAMA_HOST: "http://ollama:11434"
      OLLAMA_RESIDENT_HOME: "/config"
    volumes:
      - "./ollama-resident:/config:ro"
    depends_on:
      - ollama
    restart: unless-stopped
    stop_signal: SIGTERM
"""
    return ServiceFile("compose", text, None, None)


def _sh(word: str) -> str:
    """POSIX shell quoting for the printed enable command."""
    if re.fullmatch(r"[A-Za-z0-9_./:@%+=,-]+", word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"
