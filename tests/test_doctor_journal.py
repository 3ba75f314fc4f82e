"""doctor reads a journal of any size: only the newest `server config` block, from its end.

The old read (`journalctl -u ollama -n 268435`, oldest first) made journald seek a quarter
of a million entries back before its first line: on a large journal that took more than
doctor's 1 s, and the server's settings were lost. Now doctor asks for the setting lines
newest first (`--reverse --grep`) and stops at the newest start; on a systemd without
`--grep` (no PCRE2) it reads `--reverse` alone, without `--reverse` the old way.

A fake `journalctl` on PATH plays the journal: it prints what it is asked for and then
never ends (the rest of a huge journal), and its forward read never answers at all, so
only a reader that stops at the newest start gets the settings.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import ollamalogs as L
from conftest import Run
from fakeollama import FakeOllama

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="journalctl")

FAKE_JOURNALCTL = """\
#!{python}
import json, os, re, sys, time

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "journal.json"), encoding="utf-8") as f:
    conf = json.load(f)
args = sys.argv[1:]
with open(os.path.join(here, "journalctl.argv"), "a", encoding="utf-8") as f:
    f.write(json.dumps(args) + "\\n")

def fail(text):
    sys.stderr.write(text + "\\n")
    sys.exit(1)

lines = conf["lines"]  # oldest first, as `-o short-iso` shows them
reverse = "--reverse" in args or "-r" in args
grep = next((a.split("=", 1)[1] for a in args if a.startswith("--grep=")), None)
limit = next((int(a.split("=", 1)[1]) for a in args if a.startswith("--lines=")), None)
if "-n" in args:
    limit = int(args[args.index("-n") + 1])
if reverse and not conf["reverse"]:
    fail("journalctl: unrecognized option '--reverse'")
if grep is not None:
    if conf["grep"] == "unknown":
        fail("journalctl: unrecognized option '--grep=" + grep + "'")
    if conf["grep"] == "no-pcre":
        fail("Compiled without pattern matching support")
    lines = [ln for ln in lines if re.search(grep, ln.split(": ", 1)[1])]
if reverse:
    for line in lines[::-1][:limit]:
        print(line, flush=True)
    if conf["endless"]:
        time.sleep(600)  # still reading back through a huge journal
    sys.exit(0)
if conf["forward"] == "slow":
    time.sleep(600)  # seeking `-n N` entries back in a huge journal
print("\\n".join(lines[-limit:]), flush=True)
"""


def journal_lines(port: int, *, starts: int = 2) -> list[str]:
    """``starts`` server starts, each with a different OLLAMA_MAX_LOADED_MODELS (1, 2 ...),
    loads after each, and llama.cpp noise, as `journalctl -o short-iso` prints them."""
    lines: list[str] = []
    for n in range(1, starts + 1):
        start = L.START + timedelta(hours=n - 1)
        log = L.Log(debug=False, start=start, port=port).start(max_loaded=n)
        log.load("tiny", count=1, keep_alive="5m0s").ps()
        log.load("tiny2", count=2, first=False, keep_alive="5m0s").ps()
        lines += log.lines
    return L.wrap(lines, "journal-iso")[:-1]  # whole lines only


def fake_journal(bin_dir: Path, lines: list[str], **conf: Any) -> Path:
    """Put the fake journalctl (and a systemctl and docker that find nothing) on PATH."""
    settings = {"grep": "ok", "reverse": True, "forward": "slow", "endless": True, **conf}
    settings["lines"] = lines
    (bin_dir / "journal.json").write_text(json.dumps(settings), encoding="utf-8")
    exe = bin_dir / "journalctl"
    exe.write_text(FAKE_JOURNALCTL.format(python=sys.executable), encoding="utf-8")
    exe.chmod(0o755)
    for name in ("systemctl", "docker"):
        other = bin_dir / name
        other.write_text("#!/bin/sh\necho 'not here' >&2\nexit 1\n", encoding="utf-8")
        other.chmod(0o755)
    return bin_dir / "journalctl.argv"


def calls(argv_file: Path) -> list[list[str]]:
    if not argv_file.exists():
        return []
    return [json.loads(line) for line in argv_file.read_text().splitlines()]


def doctor_facts(cli: Any) -> tuple[dict[str, Any], Run]:
    run: Run = cli("doctor", "--json")
    assert run.exit_code in (0, 1), run
    return json.loads(run.stdout)["facts"], run


def setting(facts: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = facts["env"][key]
    return found


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    return tmp_path / "bin"  # conftest's fake_bin, first on PATH


def test_doctor_reads_the_newest_start_from_the_end_of_a_huge_journal(
    cli: Any, ollama: FakeOllama, bin_dir: Path
) -> None:
    argv = fake_journal(bin_dir, journal_lines(ollama.port))
    facts, _run = doctor_facts(cli)
    assert facts["origin"] == "the server log (journalctl -u ollama)", facts
    # the newest of the two starts (OLLAMA_MAX_LOADED_MODELS 2), not the older one (1)
    assert setting(facts, "OLLAMA_MAX_LOADED_MODELS")["value"] == "2", facts
    # named by its time (`journalctl --since` finds it), not a line number of a partial read
    assert setting(facts, "OLLAMA_MAX_LOADED_MODELS")["source"] == (
        "the server log (journalctl -u ollama at 2026-11-29T17:37:16+00:00, server config)"
    )
    assert facts["version"] == "0.24.0" and facts["system_memory"]["free"], facts
    [asked] = calls(argv)  # one read: the system journal answered
    assert asked[:2] == ["-u", "ollama"] and "--reverse" in asked, asked
    grep = next(a for a in asked if a.startswith("--grep="))
    assert grep == (
        "--grep=server config|inference compute|vram-based default context|system memory"
        "|Listening on "
    ), asked
    assert any(a.startswith("--lines=") for a in asked), asked


@pytest.mark.parametrize("grep", ["unknown", "no-pcre"])
def test_without_grep_the_journal_is_read_backwards_all_the_same(
    cli: Any, ollama: FakeOllama, bin_dir: Path, grep: str
) -> None:
    """systemd older than 237 has no --grep; one built without PCRE2 refuses it."""
    argv = fake_journal(bin_dir, journal_lines(ollama.port), grep=grep)
    facts, _run = doctor_facts(cli)
    assert setting(facts, "OLLAMA_MAX_LOADED_MODELS")["value"] == "2", facts
    first, second = calls(argv)
    assert any(a.startswith("--grep=") for a in first)
    assert "--reverse" in second and not any(a.startswith("--grep=") for a in second), second


def test_without_reverse_the_journal_is_read_forward(
    cli: Any, ollama: FakeOllama, bin_dir: Path
) -> None:
    """A systemd too old for --reverse: the bounded forward read of before."""
    lines = journal_lines(ollama.port)
    argv = fake_journal(bin_dir, lines, grep="unknown", reverse=False, forward="fast")
    facts, _run = doctor_facts(cli)
    assert setting(facts, "OLLAMA_MAX_LOADED_MODELS")["value"] == "2", facts
    *_tried, last = calls(argv)
    assert "--reverse" not in last and "-n" in last, last


def test_a_start_further_back_than_the_budget_is_named(
    cli: Any, ollama: FakeOllama, bin_dir: Path
) -> None:
    """Setting lines keep coming but never the start (a server up for months): doctor stops
    after its budget and says so, instead of reading the whole journal."""
    loads = [ln for ln in journal_lines(ollama.port, starts=1) if "server config" not in ln]
    argv = fake_journal(bin_dir, loads)
    facts, _run = doctor_facts(cli)
    assert facts["origin"] is None, facts
    assert len(calls(argv)) == 1  # the unit is there, its start far back: no --user read too
    assert (
        "journalctl -u ollama: did not reach the server's newest start within 2s"
        in (facts["reason"])
    ), facts


def test_a_journal_with_no_ollama_unit(cli: Any, ollama: FakeOllama, bin_dir: Path) -> None:
    fake_journal(bin_dir, [], forward="fast", endless=False)
    facts, _run = doctor_facts(cli)
    assert "journalctl -u ollama: no `server config` line (no ollama unit?)" in facts["reason"]
    assert "journalctl --user -u ollama: no `server config` line" in facts["reason"], facts


def test_a_journal_this_user_may_not_read(cli: Any, ollama: FakeOllama, bin_dir: Path) -> None:
    hint = (
        "Hint: You are currently not seeing messages from other users and the system.\n"
        "      Users in groups 'adm', 'systemd-journal' can see all messages."
    )
    fake_journal(bin_dir, [], forward="fast", endless=False)
    script = bin_dir / "journalctl"
    body = script.read_text(encoding="utf-8").replace(
        'lines = conf["lines"]', f"print({hint!r}, flush=True)\nlines = conf['lines']"
    )
    script.write_text(body, encoding="utf-8")
    facts, _run = doctor_facts(cli)
    assert "journalctl -u ollama: no permission to read the system journal" in facts["reason"]


def test_a_dead_server_never_waits_on_the_journal(cli: Any, bin_dir: Path) -> None:
    """doctor's promise (under 3 s for a dead server) holds: no log is read at all."""
    argv = fake_journal(bin_dir, journal_lines(1))
    run: Run = cli("doctor", "--json", "--host", "127.0.0.1:1")
    assert run.exit_code == 3, run
    assert json.loads(run.stdout)["checks"][0]["status"] == "fail"
    assert calls(argv) == []


def test_the_fake_is_on_path(bin_dir: Path) -> None:
    assert os.environ["PATH"].split(os.pathsep)[0] == str(bin_dir)
