"""Names with wide characters (CJK, emoji) in every table: widths are display cells.

``qwen中文助手:7b`` is 11 characters but 15 cells on a terminal; counting characters
misaligned ``ps``, ``watch``, the ``apply`` plan and ``profile show``. Each table here
is checked at 80 and 60 columns: every column starts at the same cell in every row,
no line is wider than the terminal, and a cut name never splits a wide character.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from conftest import Run
from fakeollama import FakeOllama
from ollama_resident import cells
from ollama_resident.layout import Column, elide_middle, fit
from test_terminal import ANSI, run_as, strip_ansi

Cli = Callable[..., Run]
CJK = "qwen中文助手:7b"  # 11 characters, 15 cells
EMOJI = "llama🦙:latest"  # 13 characters, 14 cells
LONG_CJK = "中文中文中文中文中文中文中文中文:latest"  # 23 characters, 39 cells
LONG = "hf.co/bartowski/qwen-coder:q4k"
NAMES = (CJK, EMOJI, LONG, LONG_CJK)


def at(line: str, text: str) -> int:
    """The cell where ``text`` starts in ``line``."""
    return cells.width(line[: line.index(text)])


def ends(line: str, text: str) -> int:
    """The cell where ``text`` ends in ``line`` (right-aligned columns line up there)."""
    return at(line, text) + cells.width(text)


def _ps_model(name: str, size: int, vram: int, ctx: int) -> dict[str, object]:
    return {
        "name": name,
        "model": name,
        "size": size,
        "digest": (name.encode().hex() * 4)[:64],
        "details": {},
        "expires_at": "2318-01-01T00:00:00Z",
        "size_vram": vram,
        "context_length": ctx,
    }


@pytest.fixture
def wide(ollama: FakeOllama) -> FakeOllama:
    """A server whose /api/ps lists the wide names (Ollama's own names are ASCII; a
    proxy's, or a future Ollama's, need not be: the table must hold either way)."""
    models = [
        _ps_model(CJK, 4_700_000_000, 4_700_000_000, 4096),
        _ps_model(EMOJI, 2_000_000_000, 1_000_000_000, 8192),
        _ps_model(LONG, 6_100_000_000, 0, 32768),
        _ps_model(LONG_CJK, 577_000_000, 577_000_000, 2048),
    ]
    ollama.reply_next("/api/ps", json.dumps({"models": models}, ensure_ascii=False), times=0)
    return ollama


# -- layout, pure ------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 60])
def test_fit_aligns_wide_names_in_cells(width: int) -> None:
    columns = [
        Column("NAME", elide=True, min_width=16),
        Column("SIZE", align="right"),
        Column("REASON", wrap=True),
    ]
    rows = [(n, "4.7 GB", f"{n} 模型 is pinned, as the profile asks") for n in NAMES]
    fitted = fit(columns, rows, width)
    starts: dict[int, set[int]] = {}
    for line in fitted.lines():
        cell = 0
        for text, col, _row in line:
            if col is not None:
                starts.setdefault(col, set()).add(cell)
            cell += cells.width(text)
        assert cell <= max(width, fitted.width), line
    assert all(len(s) == 1 for s in starts.values()), starts  # one start cell per column
    assert fitted.width <= width


@pytest.mark.parametrize("name", [*NAMES, "中文中文中文", "ab🦙🦙🦙🦙cd"])
def test_a_cut_name_is_whole_characters_and_fills_its_cells(name: str) -> None:
    for width in range(2, cells.width(name)):
        cut = elide_middle(name, width)
        head, _, tail = cut.partition("…")
        assert name.startswith(head) and name.endswith(tail), (width, cut)
        # exactly the width, unless only wide characters are left to fill an odd cell
        assert cells.width(cut) == width or (
            cells.width(cut) == width - 1 and not name.isascii()
        ), (width, cut)
    assert elide_middle(CJK, 10) == "qwen中…:7b"
    assert elide_middle(CJK, 9) == "qwe…手:7b"  # 9 cells, not 8: the wide 手 moves to the end


def test_cells_of_wide_and_combining_text() -> None:
    assert cells.width(CJK) == 15 and cells.width(EMOJI) == 14
    assert cells.width("e\u0301") == 1 and cells.width("a\u200db") == 2
    assert cells.cut("中文", 3) == "中" and cells.cut_end("中文", 3) == "文"
    assert cells.ljust("中", 4) == "中  " and cells.rjust("中", 4) == "  中"


# -- the commands ------------------------------------------------------------------------------

PS_WIDE_80 = f"""\
NAME                                        SIZE   PROCESSOR   CONTEXT   UNTIL
{CJK}                           4.7 GB   100% GPU       4096   Forever
{EMOJI}                              2 GB   50% GPU        8192   Forever
{LONG}            6.1 GB   100% CPU      32768   Forever
{LONG_CJK}   577 MB   100% GPU       2048   Forever
"""

PS_WIDE_60 = f"""\
NAME                       SIZE  PROCESSOR  CONTEXT  UNTIL
{CJK}          4.7 GB  100% GPU      4096  Forever
{EMOJI}             2 GB  50% GPU       8192  Forever
hf.co/barto…n-coder:q4k  6.1 GB  100% CPU     32768  Forever
中文中文中文中文…latest  577 MB  100% GPU      2048  Forever
"""


def assert_aligned(table: Sequence[str], columns: int, left: Sequence[str]) -> None:
    """Every line fits ``columns`` cells; each header in ``left`` starts where the
    row's cell below it does (the text after the previous column's gap)."""
    header, *rows = table
    assert all(cells.width(line) <= columns for line in table), table
    for row in rows:
        for word in left[1:]:
            start = at(header, word)
            assert _cell(row, start - 1) == " " != _cell(row, start), (word, row)


def _cell(line: str, n: int) -> str:
    """The character that covers cell ``n`` of ``line``."""
    used = 0
    for ch in line:
        used += cells.width(ch)
        if used > n:
            return ch
    return " "


@pytest.mark.parametrize(("columns", "golden"), [(80, PS_WIDE_80), (60, PS_WIDE_60)])
@pytest.mark.parametrize("mode", ["plain", "colour", "no-colour-terminal"])
def test_ps_aligns_wide_names(
    cli: Cli, wide: FakeOllama, columns: int, golden: str, mode: str
) -> None:
    out = run_as(cli, ("ps",), columns, mode)
    assert strip_ansi(out) == golden
    lines = strip_ansi(out).splitlines()
    assert_aligned(lines, columns, ["NAME", "PROCESSOR", "UNTIL"])
    for line in lines[1:]:
        assert ends(line, "GB" if "GB" in line else "MB") == ends(lines[0], "SIZE")
        assert at(line, "Forever") == at(lines[0], "UNTIL")


@pytest.fixture
def wide_profile(isolated_env: Path) -> Path:
    path = isolated_env / "profiles.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [profiles.wide]
            keep_alive = "forever"
            models = [
              "{CJK}",
              {{ name = "{EMOJI}", keep_alive = "10m", num_ctx = 8192 }},
              "{LONG}",
              "{LONG_CJK}",
              "tiny",
            ]
            """
        ),
        encoding="utf-8",
    )
    return path


APPLY_WIDE_80 = f"""\
ACTION   MODEL                             KEEP-ALIVE  CONTEXT  REASON
ok       {CJK}                   forever           -  pinned, as asked
shorten  {EMOJI}                    10m            8192  pinned, longer
                                                                than the 10m the
                                                                profile asks
ok       {LONG}    forever           -  pinned, as asked
ok       中文中文中文中文…中文中文:latest  forever           -  pinned, as asked
load     tiny:latest                       forever           -  not loaded
"""

APPLY_WIDE_60 = f"""\
ACTION   MODEL             KEEP-ALIVE  CONTEXT  REASON
ok       {CJK}   forever           -  pinned, as
                                                asked
shorten  {EMOJI}    10m            8192  pinned,
                                                longer than
                                                the 10m the
                                                profile asks
ok       hf.co/ba…der:q4k  forever           -  pinned, as
                                                asked
ok       中文中文…:latest  forever           -  pinned, as
                                                asked
load     tiny:latest       forever           -  not loaded
"""


@pytest.mark.parametrize(("columns", "golden"), [(80, APPLY_WIDE_80), (60, APPLY_WIDE_60)])
@pytest.mark.parametrize("mode", ["plain", "colour"])
def test_apply_plan_aligns_wide_names(
    cli: Cli, wide: FakeOllama, wide_profile: Path, columns: int, golden: str, mode: str
) -> None:
    out = run_as(cli, ("apply", "wide", "--dry-run", "--max-loaded", "0"), columns, mode)
    assert strip_ansi(out) == golden
    lines = [ln for ln in strip_ansi(out).splitlines() if not ln.startswith(" ")]
    assert_aligned(lines, columns, ["ACTION", "MODEL", "KEEP-ALIVE", "REASON"])


PROFILE_WIDE = {
    80: f"""\
MODEL                                     KEEP-ALIVE          CONTEXT
{CJK}                           forever (profile)         -
{EMOJI}                            10m                    8192
{LONG}            forever (profile)         -
{LONG_CJK}   forever (profile)         -
tiny                                      forever (profile)         -
""",
    60: f"""\
MODEL                             KEEP-ALIVE         CONTEXT
{CJK}                   forever (profile)        -
{EMOJI}                    10m                   8192
{LONG}    forever (profile)        -
中文中文中文中文…中文中文:latest  forever (profile)        -
tiny                              forever (profile)        -
""",
}


@pytest.mark.parametrize("columns", [80, 60])
def test_profile_show_aligns_wide_names(cli: Cli, wide_profile: Path, columns: int) -> None:
    outs = {m: run_as(cli, ("profile", "show", "wide"), columns, m) for m in ("plain", "colour")}
    assert strip_ansi(outs["colour"]) == outs["plain"]
    table = outs["plain"].split("\n\n", 1)[1]
    assert table == PROFILE_WIDE[columns]
    assert_aligned(table.splitlines(), columns, ["MODEL", "KEEP-ALIVE"])


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("columns", [80, 60])
def test_watch_live_view_aligns_wide_names(wide: FakeOllama, columns: int) -> None:
    """The live table of `watch` on a real pseudo-terminal of 80 and 60 columns."""
    import fcntl
    import pty
    import struct
    import termios

    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
    env.update(TERM="xterm-256color", OLLAMA_HOST=wide.url)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_resident", "watch", "--interval", "0.2", "--no-journal"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    try:
        while seen.count(b"Forever") < 4 and time.monotonic() < deadline:
            try:
                seen += os.read(leader, 65536)
            except OSError:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        os.close(leader)
    text = ANSI.sub("", seen.decode()).replace("\r", "")
    lines = text.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("NAME "))
    table = lines[head : head + 5]
    assert [ln.split()[0][:4] for ln in table[1:]] == ["qwen", "llam", "hf.c", "中文中文"], text
    assert_aligned(table, columns, ["NAME", "PROCESSOR", "UNTIL"])
    for line in table[1:]:
        assert at(line, "Forever") == at(table[0], "UNTIL")


@pytest.mark.parametrize("columns", [80, 60, 33])
def test_a_hanging_wrap_fits_in_cells_and_loses_nothing(columns: int) -> None:
    text = (
        f"loading {CJK} evicted {EMOJI} and {LONG_CJK}; see "
        "https://github.com/ollama/ollama/blob/main/docs/faq.md#how-do-i-keep-a-model-loaded "
        "模型中文助手模型中文助手模型中文助手模型中文助手模型中文助手 done"
    )
    lines = cells.hang(text, columns, "warning: ")
    assert len(lines) > 1
    assert all(cells.width(line) <= columns for line in lines), lines
    assert all(line.startswith(" " * 9) and line[9] != " " for line in lines[1:]), lines
    assert "".join(ln.strip() for ln in lines).replace(" ", "") == (
        "warning:" + text.replace(" ", "")
    )
    assert cells.hang(text, None, "warning: ") == ["warning: " + text]


def test_a_model_name_moves_whole_to_the_next_line_and_only_a_longer_one_is_cut() -> None:
    # The trial: "pushed out by som" / "everylongnamespace..." at 80 columns.
    name = "someverylongnamespace/a-very-long-model-name-for-wrapping:q4_K_M"  # 64 cells
    lines = cells.hang(f"tiny:latest was pushed out by {name} which needed room", 80, "", "  ")
    assert lines[1].strip().startswith(name), lines
    assert all(len(line) <= 80 for line in lines)
    # Longer than a whole line: it starts a line of its own and only then is cut.
    narrow = cells.wrap(f"pushed out by {name} which", 30)
    assert narrow[0] == "pushed out by"
    assert "".join(narrow[1:]).startswith(name)
