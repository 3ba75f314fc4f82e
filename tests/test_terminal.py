"""What a person sees: tables that fit 80 and 120 columns, NO_COLOR as colour only.

Golden outputs for ps, apply --dry-run and profile show, at COLUMNS=80 and 120,
plain and coloured; the coloured form must be the plain one plus escape codes.
Golden outputs for long messages too (an error and its hint, doctor's fix, why's
notes, journal show, guard's events): on a terminal a wrapped line hangs under its
text, with or without NO_COLOR; on a pipe each stays one line.
Some tests run the real program in a pseudo-terminal of 80 columns.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import Run
from fakeollama import DEFAULT_MODELS, FakeModel, FakeOllama

Cli = Callable[..., Run]
LONG = "hf.co/bartowski/qwen-coder:q4k"  # 30 characters, the longest the issue asks to keep
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COUNTDOWN = re.compile(r"\b(29m|4m) [0-5]\ds\b")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def steady(text: str) -> str:
    """Countdowns tick while a test runs: pin them to their first second."""
    return COUNTDOWN.sub(lambda m: f"{m.group(1)} 59s", text)


def ps_steady(text: str) -> str:
    """Also sort the rows: Ollama lists models with equal expiry seconds in any order."""
    head, *rows = steady(text).splitlines()
    return "\n".join([head, *sorted(rows)]) + "\n"


@pytest.fixture
def busy(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    """Four models as the issue saw them: a 30-character name, one split CPU/GPU."""
    extra = FakeModel(LONG, size=6_100_000_000, file_size=4_000_000_000, context_length=32768)
    server = FakeOllama([*DEFAULT_MODELS, extra], gpu_memory=12_000_000_000, max_loaded=4).start()
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    for model in ("qwen2.5:14b", "nomic-embed-text", "llama3.2"):
        server.preload(model, -1)
    server.preload(LONG, "30m")
    try:
        yield server
    finally:
        server.stop()


def run_as(cli: Cli, args: tuple[str, ...], columns: int, mode: str) -> str:
    """stdout as a pipe (plain), a terminal (coloured) or a terminal with NO_COLOR."""
    env = {"COLUMNS": str(columns), "NO_COLOR": "", "FORCE_COLOR": ""}
    if mode == "colour":
        env["FORCE_COLOR"] = "1"
    elif mode == "no-colour-terminal":
        env.update(FORCE_COLOR="1", NO_COLOR="1")
    else:
        env["NO_COLOR"] = "1"
    run = cli(*args, env=env)
    assert run.exit_code == 0, run
    return run.stdout


PS_80 = f"""\
NAME                               SIZE   PROCESSOR         CONTEXT   UNTIL
qwen2.5:14b                       10 GB   100% GPU             4096   Forever
nomic-embed-text:latest          577 MB   100% GPU             2048   Forever
llama3.2:latest                  3.4 GB   64%/36% CPU/GPU      4096   Forever
{LONG}   6.1 GB   100% CPU             4096   29m 59s
"""

PS_120 = f"""\
NAME                             ID               SIZE   PROCESSOR         CONTEXT   UNTIL
qwen2.5:14b                      fcfde9c2f592    10 GB   100% GPU             4096   Forever
nomic-embed-text:latest          f5d93963963e   577 MB   100% GPU             2048   Forever
llama3.2:latest                  fbcce832f243   3.4 GB   64%/36% CPU/GPU      4096   Forever
{LONG}   3380e20c1762   6.1 GB   100% CPU             4096   29m 59s
"""


@pytest.mark.parametrize(("columns", "golden"), [(80, PS_80), (120, PS_120)])
@pytest.mark.parametrize("mode", ["plain", "colour", "no-colour-terminal"])
def test_ps_golden(cli: Cli, busy: FakeOllama, columns: int, golden: str, mode: str) -> None:
    out = run_as(cli, ("ps",), columns, mode)
    if mode == "colour":
        assert ANSI.search(out), "the coloured form has colour"
    assert ps_steady(strip_ansi(out)) == ps_steady(golden)
    assert max(len(line) for line in strip_ansi(out).splitlines()) <= columns


def test_ps_gives_way_in_order_and_never_cuts_a_header(cli: Cli, busy: FakeOllama) -> None:
    at = {c: steady(run_as(cli, ("ps",), c, "plain")) for c in (92, 77, 70, 60, 50)}
    assert " ID " in at[92] and " ID " not in at[77]  # 1. the ID column goes first
    assert "64%/36% CPU/GPU" in at[77] and "36% GPU" in at[70]  # 2. then the split shortens
    assert LONG in at[70] and LONG not in at[60]  # 3. then long names lose their middle
    assert "hf.co/barto…n-coder:q4k" in at[60]
    for text in at.values():
        header = text.splitlines()[0].split()
        assert header[0] == "NAME" and header[-3:] == ["PROCESSOR", "CONTEXT", "UNTIL"]
        assert "…" not in text.splitlines()[0]
        assert "29m 59s" in text and "6.1 GB" in text and "577 MB" in text  # never cut


@pytest.fixture
def profile_file(isolated_env: Path) -> Path:
    path = isolated_env / "profiles.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [profiles.coding]
            keep_alive = "forever"
            models = [
              "{LONG}",
              {{ name = "nomic-embed-text", keep_alive = "10m", num_ctx = 2048 }},
              "llama3.2",
              "tiny",
            ]
            """
        )
    )
    return path


APPLY_80 = f"""\
ACTION   MODEL                           KEEP-ALIVE  CONTEXT  REASON
pin      {LONG}  forever           -  the profile wants
                                                              it pinned; it has
                                                              29m 59s left
shorten  nomic-embed-text:latest         10m            2048  pinned, longer
                                                              than the 10m the
                                                              profile asks
ok       llama3.2:latest                 forever           -  pinned, as asked
load     tiny:latest                     forever           -  not loaded
"""

APPLY_120 = f"""\
ACTION    MODEL                            KEEP-ALIVE   CONTEXT   REASON
pin       {LONG}   forever            -   the profile wants it pinned; it has 29m 59s left
shorten   nomic-embed-text:latest          10m             2048   pinned, longer than the 10m the profile asks
ok        llama3.2:latest                  forever            -   pinned, as asked
load      tiny:latest                      forever            -   not loaded
"""


@pytest.mark.parametrize(("columns", "golden"), [(80, APPLY_80), (120, APPLY_120)])
@pytest.mark.parametrize("mode", ["plain", "colour", "no-colour-terminal"])
def test_apply_dry_run_golden(
    cli: Cli, busy: FakeOllama, profile_file: Path, columns: int, golden: str, mode: str
) -> None:
    out = run_as(cli, ("apply", "coding", "--dry-run", "--max-loaded", "0"), columns, mode)
    assert steady(strip_ansi(out)) == golden
    assert max(len(line) for line in strip_ansi(out).splitlines()) <= columns


def test_profile_show_golden(cli: Cli, profile_file: Path) -> None:
    outs = {m: run_as(cli, ("profile", "show", "coding"), 80, m) for m in ("plain", "colour")}
    assert strip_ansi(outs["colour"]) == outs["plain"]
    assert outs["plain"] == textwrap.dedent(
        f"""\
        profile:     coding
        file:        {profile_file}
        host:        $OLLAMA_HOST or --host
        keep-alive:  forever
        exclusive:   no

        MODEL                            KEEP-ALIVE          CONTEXT
        {LONG}   forever (profile)         -
        nomic-embed-text                 10m                    2048
        llama3.2                         forever (profile)         -
        tiny                             forever (profile)         -
        """
    )


def on_tty(url: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the program on a pseudo-terminal 80 columns wide; all it wrote, stdout and stderr."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 80, 0, 0))
    full = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    full.update(env or {}, OLLAMA_HOST=url, TERM="xterm-256color")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env=full,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=60) in (0, 1)
    return b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_real_terminal_of_80_columns(busy: FakeOllama) -> None:
    """The program itself on a pseudo-terminal 80 wide: fits, and NO_COLOR only drops colour."""
    coloured = on_tty(busy.url, "ps")
    plain = on_tty(busy.url, "ps", env={"NO_COLOR": "1"})
    assert "\x1b[3" in coloured and "\x1b[3" not in plain  # colour codes (30-37) only there
    assert ps_steady(strip_ansi(coloured)) == ps_steady(strip_ansi(plain)) == ps_steady(PS_80)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_no_color_keeps_the_progress_of_a_load(ollama: FakeOllama) -> None:
    shown = strip_ansi(on_tty(ollama.url, "preload", "tiny", env={"NO_COLOR": "1"}))
    assert re.search(r"(<1s|\d+s)  loading tiny", shown), shown
    assert "tiny:latest loaded in" in shown


def test_no_progress_on_a_pipe(cli: Cli, ollama: FakeOllama) -> None:
    run = cli("preload", "tiny")
    assert run.exit_code == 0, run
    assert "loading tiny" not in run.stderr and "\x1b" not in run.stderr
    assert run.stderr.startswith("tiny:latest loaded in")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_busy_unload_says_what_it_waits_for(ollama: FakeOllama) -> None:
    from conftest import generate_in_background, wait_busy

    ollama.preload("tiny", "5m")
    generate_in_background(ollama, "tiny", 20_000)
    wait_busy(ollama, "tiny:latest")
    # --timeout 0.2: at least one poll sees it busy; it is then reported as pending.
    shown = strip_ansi(on_tty(ollama.url, "unload", "tiny", "--timeout", "0.2"))
    assert "unloading tiny:latest: busy, waiting for the running request to end" in shown, shown
    assert "tiny:latest is stopping" in shown


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (
            ("pin", "--for", "xx", "tiny"),
            "error: invalid value for '--for': invalid keep-alive",
            "ollama-resident pin --help",
        ),
        (("ps", "--bogus"), "error: no such option: --bogus", "ollama-resident ps --help"),
        (("--bogus",), "error: no such option: --bogus", "ollama-resident --help"),
        (("bogus",), "error: no such command 'bogus'", "ollama-resident --help"),
        (
            ("profile", "show"),
            "error: missing argument 'NAME'",
            "ollama-resident profile show --help",
        ),
        (
            ("journal", "show", "--limit", "-1"),
            "error: invalid value for '--limit'",
            "ollama-resident journal show --help",
        ),
    ],
)
def test_usage_errors_are_one_line_and_a_hint(
    cli: Cli, args: tuple[str, ...], error: str, hint: str
) -> None:
    """Not click's four lines (Usage:, Try ..., blank, Error:): ours, as README promises."""
    run = cli(*args)
    assert run.exit_code == 2, run
    assert run.stdout == ""
    first, second = run.stderr.splitlines()
    assert first.startswith(error), run
    assert second == f"  hint: see `{hint}`"


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_guard_event_lines_wrap_under_their_text_as_watch(ollama: FakeOllama) -> None:
    """The trial's case: guard's long event lines wrapped to column 0, watch's indented."""
    ollama.preload("tiny-embed", "5m")
    shown = strip_ansi(on_tty(ollama.url, "guard", "--once", "tiny-embed", env={"NO_COLOR": "1"}))
    lines = shown.splitlines()
    first = next(i for i, ln in enumerate(lines) if "tiny-embed:latest  already loaded" in ln)
    assert re.match(r"\d\d:\d\d:\d\d  tiny-embed:latest  already loaded", lines[first]), shown
    assert lines[first + 1].startswith(" " * 10) and lines[first + 1].strip(), shown
    assert all(len(ln) <= 80 for ln in lines), shown


# -- long messages: a wrapped line hangs under its text, on a terminal only ------------------------

DEAD = "127.0.0.1:1"  # nothing listens on port 1: refused at once


def both_as(cli: Cli, args: tuple[str, ...], columns: int, mode: str, code: int) -> Run:
    """Like :func:`run_as`, for a command that exits ``code``: stdout and stderr."""
    env = {"COLUMNS": str(columns), "NO_COLOR": "1", "FORCE_COLOR": ""}
    if mode == "colour":
        env.update(FORCE_COLOR="1", NO_COLOR="")
    elif mode == "no-colour-terminal":
        env.update(FORCE_COLOR="1")
    run = cli(*args, env=env)
    assert run.exit_code == code, run
    return Run(run.exit_code, strip_ansi(run.stdout), strip_ansi(run.stderr))


UNREACHABLE_80 = f"""\
error: cannot reach Ollama at http://{DEAD} (connection refused)
  hint: start it with `ollama serve` (or the Ollama app), or point OLLAMA_HOST
        or --host at the server
"""
UNREACHABLE_PIPE = f"""\
error: cannot reach Ollama at http://{DEAD} (connection refused)
  hint: start it with `ollama serve` (or the Ollama app), or point OLLAMA_HOST or --host at the server
"""
BAD_FOR_80 = """\
error: invalid value for '--for': invalid keep-alive "xx": invalid duration (use
       ns, us, ms, s, m or h, e.g. "24h"; "forever" or -1 to pin)
  hint: see `ollama-resident pin --help`
"""
BAD_FOR_120 = """\
error: invalid value for '--for': invalid keep-alive "xx": invalid duration (use ns, us, ms, s, m or h, e.g. "24h";
       "forever" or -1 to pin)
  hint: see `ollama-resident pin --help`
"""
BAD_FOR_PIPE = """\
error: invalid value for '--for': invalid keep-alive "xx": invalid duration (use ns, us, ms, s, m or h, e.g. "24h"; "forever" or -1 to pin)
  hint: see `ollama-resident pin --help`
"""


@pytest.mark.parametrize(
    ("args", "code", "at_80", "at_120", "on_a_pipe"),
    [
        (("ps", "--host", DEAD), 3, UNREACHABLE_80, UNREACHABLE_PIPE, UNREACHABLE_PIPE),
        (("pin", "--for", "xx", "tiny"), 2, BAD_FOR_80, BAD_FOR_120, BAD_FOR_PIPE),
    ],
)
@pytest.mark.parametrize("mode", ["colour", "no-colour-terminal"])
def test_an_error_and_its_hint_hang_under_their_text(
    cli: Cli, args: tuple[str, ...], code: int, at_80: str, at_120: str, on_a_pipe: str, mode: str
) -> None:
    """The second line of an error or a hint starts under the text after ``error: `` /
    ``  hint: ``, not at column 0; a pipe gets one line each even with COLUMNS set (a
    script greps it)."""
    assert both_as(cli, args, 80, mode, code).stderr == at_80
    assert both_as(cli, args, 120, mode, code).stderr == at_120
    assert both_as(cli, args, 80, "plain", code).stderr == on_a_pipe


DOCTOR_DEAD_80 = f"""\
FAIL  server: cannot reach Ollama at http://{DEAD} (connection refused)
      fix: start it with `ollama serve` (or the Ollama app), or point
           OLLAMA_HOST or --host at the server
"""
DOCTOR_DEAD_120 = f"""\
FAIL  server: cannot reach Ollama at http://{DEAD} (connection refused)
      fix: start it with `ollama serve` (or the Ollama app), or point OLLAMA_HOST or --host at the server
"""


@pytest.mark.parametrize("mode", ["colour", "no-colour-terminal"])
def test_doctor_fix_hangs_under_its_text(cli: Cli, mode: str) -> None:
    assert both_as(cli, ("doctor", "--host", DEAD), 80, mode, 3).stdout == DOCTOR_DEAD_80
    assert both_as(cli, ("doctor", "--host", DEAD), 120, mode, 3).stdout == DOCTOR_DEAD_120
    assert both_as(cli, ("doctor", "--host", DEAD), 80, "plain", 3).stdout == DOCTOR_DEAD_120


WHY_NOTES_80 = """\
The server log is at INFO: loads, reloads and restarts show; unload causes need
  OLLAMA_DEBUG=1 on the server.
To log at DEBUG: start the server with OLLAMA_DEBUG=1 (`OLLAMA_DEBUG=1 ollama
  serve`; systemd: `Environment="OLLAMA_DEBUG=1"` in a drop-in, then `systemctl
  daemon-reload` and restart; macOS app: `launchctl setenv OLLAMA_DEBUG 1`;
  Docker: `docker run -e OLLAMA_DEBUG=1`)."""
WHY_NOTES_120 = """\
The server log is at INFO: loads, reloads and restarts show; unload causes need OLLAMA_DEBUG=1 on the server.
To log at DEBUG: start the server with OLLAMA_DEBUG=1 (`OLLAMA_DEBUG=1 ollama serve`; systemd:
  `Environment="OLLAMA_DEBUG=1"` in a drop-in, then `systemctl daemon-reload` and restart; macOS app: `launchctl setenv
  OLLAMA_DEBUG 1`; Docker: `docker run -e OLLAMA_DEBUG=1`)."""


@pytest.mark.parametrize("mode", ["colour", "no-colour-terminal"])
def test_why_notes_hang_under_their_text(cli: Cli, tmp_path: Path, mode: str) -> None:
    """`why` without a model (every model in the window): its notes wrapped to column 0."""
    import ollamalogs

    log = tmp_path / "server.log"
    log.write_text("\n".join(ollamalogs.expiry(False)) + "\n", encoding="utf-8")
    args = ("why", "--server-log", str(log))

    def notes(columns: int, how: str) -> str:
        out = both_as(cli, args, columns, how, 0).stdout
        assert how == "plain" or all(len(line) <= columns for line in out.splitlines()), out
        start = out.index("The server log is at INFO")
        return out[start : out.index("\n\n", start)]

    assert notes(80, mode) == WHY_NOTES_80
    assert notes(120, mode) == WHY_NOTES_120
    plain = notes(80, "plain").splitlines()
    assert len(plain) == 2 and plain[1].startswith("To log at DEBUG") and len(plain[1]) > 200


@pytest.mark.parametrize("mode", ["colour", "no-colour-terminal"])
def test_journal_show_wraps_under_the_text_after_the_date(
    cli: Cli, ollama: FakeOllama, mode: str
) -> None:
    ollama.preload("tiny", -1)
    assert cli("guard", "--once", "tiny").exit_code == 0
    date = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ")
    shown = both_as(cli, ("journal", "show"), 80, mode, 0).stdout.splitlines()
    assert all(len(line) <= 80 for line in shown), shown
    assert all(date.match(line) or line.startswith(" " * 21 + line.strip()) for line in shown)
    long = next(i for i, line in enumerate(shown) if "already loaded when recording" in line)
    assert shown[long + 1].startswith(" " * 21) and shown[long + 1][21] != " ", shown
    plain = both_as(cli, ("journal", "show"), 80, "plain", 0).stdout.splitlines()
    assert all(date.match(line) for line in plain), plain  # one line per event on a pipe
    assert len(plain) < len(shown)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_guard_error_lines_hang_under_their_text(ollama: FakeOllama) -> None:
    """``HH:MM:SS  error: MODEL  words``: the clock first (the time column holds), the
    words' next lines under the text after the clock, as every guard line."""
    missing = "no-such-model-with-a-rather-long-name:latest"
    shown = strip_ansi(on_tty(ollama.url, "guard", "--once", missing, env={"NO_COLOR": "1"}))
    lines = shown.splitlines()
    first = next(i for i, ln in enumerate(lines) if "error: " in ln)
    assert re.match(rf"\d\d:\d\d:\d\d  error: {missing}  could not", lines[first])
    follow = lines[first + 1 : first + 3]
    assert all(ln.startswith(" " * 10) and ln[10] != " " for ln in follow), shown
    assert all(len(ln) <= 80 for ln in lines), shown
