"""``apply NAME``: plan, then act, against the fake Ollama."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Run, closed_port
from fakeollama import MAX_DURATION, FakeOllama

Cli = Callable[..., Run]
MIN = 60 * 1_000_000_000


@pytest.fixture
def path(isolated_env: Path) -> Path:
    return isolated_env / "profiles.toml"


def write(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))


def posts(server: FakeOllama) -> list[tuple[str, Any]]:
    return [(r.path, r.json) for r in server.requests if r.method == "POST"]


def state(server: FakeOllama) -> dict[str, tuple[int, int]]:
    """name -> (keep_alive_ns, context_length) of what is loaded."""
    server.wait_idle()
    return {m["name"]: (m["keep_alive_ns"], m["context_length"]) for m in server.loaded()}


def test_dry_run_prints_the_plan_and_sends_nothing(
    cli: Cli, path: Path, ollama: FakeOllama
) -> None:
    ollama.preload("tiny", "5m")
    ollama.preload("tiny2", -1)
    write(
        path,
        """\
        [profiles.coding]
        keep_alive = "forever"
        models = ["tiny", "tiny2", { name = "tiny3", keep_alive = "30m" }]
        """,
    )
    ollama.clear_requests()
    run = cli("apply", "coding", "--dry-run")
    assert run.exit_code == 0, run
    # The countdown ticks while the test runs: compare it apart.
    assert re.search(r"it has 4m [45]\ds left", run.stdout), run
    assert re.sub(r"4m [45]\ds left", "4m 59s left", run.stdout).splitlines() == [
        "ACTION   MODEL          KEEP-ALIVE   CONTEXT   REASON",
        "pin      tiny:latest    forever            -   "
        "the profile wants it pinned; it has 4m 59s left",
        "ok       tiny2:latest   forever            -   pinned, as asked",
        "load     tiny3:latest   30m                -   not loaded",
    ]
    assert f'Plan for profile "coding" on {ollama.url}: 1 to load, 1 to pin, 1 ok' in (run.stderr)
    assert posts(ollama) == []
    assert set(state(ollama)) == {"tiny:latest", "tiny2:latest"}


def test_apply_loads_repins_and_leaves_what_is_right(
    cli: Cli, path: Path, ollama: FakeOllama
) -> None:
    ollama.preload("tiny", "5m")
    ollama.preload("tiny2", -1)
    write(
        path,
        """\
        [profiles.coding]
        keep_alive = "forever"
        models = ["tiny", "tiny2", { name = "tiny-embed", keep_alive = "30m" }]
        """,
    )
    ollama.clear_requests()
    run = cli("apply", "coding")
    assert run.exit_code == 0, run
    assert state(ollama) == {
        "tiny:latest": (MAX_DURATION, 512),
        "tiny2:latest": (MAX_DURATION, 512),
        "tiny-embed:latest": (30 * MIN, 512),
    }
    sent = [
        (p, body["model"], body.get("keep_alive")) for p, body in posts(ollama) if p != "/api/show"
    ]
    # tiny2 was pinned as asked: no request; the embedding model loads through /api/embed.
    assert sent == [
        ("/api/generate", "tiny", -1),
        ("/api/embed", "tiny-embed", "30m0s"),
    ]
    assert f'profile "coding" applied on {ollama.url}: 1 updated, 1 loaded' in run.stderr
    # A second run finds nothing to do and sends nothing.
    ollama.clear_requests()
    run = cli("apply", "coding")
    assert run.exit_code == 0, run
    assert "nothing to do: 3 models as the profile asks" in run.stderr
    assert posts(ollama) == []


def test_a_longer_window_is_drift_a_counted_down_one_is_not(
    cli: Cli, path: Path, ollama: FakeOllama
) -> None:
    ollama.preload("tiny", -1)  # pinned: longer than the 10m asked
    ollama.preload("tiny2", "10m")  # counting down within 10m
    write(path, '[profiles.p]\nkeep_alive = "10m"\nmodels = ["tiny", "tiny2"]\n')
    ollama.clear_requests()
    run = cli("apply", "p")
    assert run.exit_code == 0, run
    assert "shorten   tiny:latest    10m" in run.stdout
    assert "ok        tiny2:latest   10m" in run.stdout
    generated = [body["model"] for p, body in posts(ollama) if p == "/api/generate"]
    assert generated == ["tiny"]
    assert state(ollama)["tiny:latest"][0] == 10 * MIN


def test_wrong_context_is_reloaded_only_when_named(
    cli: Cli, path: Path, ollama: FakeOllama
) -> None:
    ollama.preload("tiny", -1)  # context 512 (the training context)
    ollama.preload("tiny2", -1, num_ctx=256)
    write(
        path,
        """\
        [profiles.p]
        keep_alive = "forever"
        models = [{ name = "tiny", num_ctx = 256 }, { name = "tiny2", num_ctx = 4096 }]
        """,
    )
    run = cli("apply", "p", "--dry-run")
    assert "reload   tiny:latest    forever          256   loaded with context 512" in run.stdout
    # tiny2: 256 -> 512 (the reason wraps at 100 columns)
    assert "the profile asks 4096 (512 after capping" in " ".join(run.stdout.split())
    assert cli("apply", "p").exit_code == 0
    assert state(ollama) == {
        "tiny:latest": (MAX_DURATION, 256),
        "tiny2:latest": (MAX_DURATION, 512),
    }


def test_exclusive_unloads_what_is_not_in_the_profile(
    cli: Cli, path: Path, ollama: FakeOllama
) -> None:
    ollama.preload("tiny", -1)
    ollama.preload("tiny2", "5m")
    ollama.preload("tiny-embed", "5m")
    write(path, '[profiles.p]\nkeep_alive = "forever"\nmodels = ["tiny", "tiny3"]\n')
    run = cli("apply", "p", "--exclusive")
    assert run.exit_code == 0, run
    lines = run.stdout.splitlines()
    assert sorted(lines[1:3]) == [  # /api/ps order among the unloads
        'unload   tiny-embed:latest   -                  -   not in profile "p" (exclusive)',
        'unload   tiny2:latest        -                  -   not in profile "p" (exclusive)',
    ]
    assert lines[3:] == [
        "ok       tiny:latest         forever            -   pinned, as asked",
        "load     tiny3:latest        forever            -   not loaded",
    ]
    assert set(state(ollama)) == {"tiny:latest", "tiny3:latest"}
    assert "2 unloaded, 1 loaded" in run.stderr


def test_exclusive_from_the_file_and_overridden(cli: Cli, path: Path, ollama: FakeOllama) -> None:
    ollama.preload("tiny2", "5m")
    write(path, '[profiles.p]\nexclusive = true\nmodels = ["tiny"]\n')
    assert cli("apply", "p", "--no-exclusive").exit_code == 0
    assert set(state(ollama)) == {"tiny:latest", "tiny2:latest"}
    assert cli("apply", "p").exit_code == 0
    assert set(state(ollama)) == {"tiny:latest"}


def test_predicted_eviction_is_named_and_happens(cli: Cli, path: Path, ollama: FakeOllama) -> None:
    ollama.preload("tiny", -1)
    ollama.preload("tiny2", "2m")
    ollama.preload("tiny-embed", "1h")
    write(path, '[profiles.p]\nmodels = [{ name = "tiny3", keep_alive = "forever" }]\n')
    run = cli("apply", "p", "--dry-run")
    assert (
        "warning: loading tiny3:latest will probably make Ollama evict tiny2:latest "
        "(keep-alive at least 2m): Ollama keeps at most 3 models loaded" in run.stderr
    )
    run = cli("apply", "p")
    assert run.exit_code == 0, run
    assert "loading tiny3:latest evicted tiny2:latest" in run.stderr
    assert set(state(ollama)) == {"tiny:latest", "tiny-embed:latest", "tiny3:latest"}
    # With --max-loaded 4 no eviction is predicted.
    run = cli("apply", "p", "--dry-run", "--max-loaded", "4")
    assert "evict" not in run.stderr


def test_a_profile_host_other_than_the_default(
    cli: Cli, path: Path, make_ollama: Callable[..., FakeOllama], monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = make_ollama()
    default = make_ollama()
    monkeypatch.setenv("OLLAMA_HOST", default.url)
    write(
        path, f'[profiles.gpu]\nhost = "{remote.url}"\nkeep_alive = "forever"\nmodels = ["tiny"]\n'
    )
    run = cli("apply", "gpu")
    assert run.exit_code == 0, run
    assert f"on {remote.url}" in run.stderr
    assert state(remote) == {"tiny:latest": (MAX_DURATION, 512)}
    assert default.requests == []
    # --host still wins over the profile's host.
    run = cli("apply", "gpu", "--host", default.url)
    assert run.exit_code == 0, run
    assert set(state(default)) == {"tiny:latest"}


def test_unreachable_profile_host_exits_3(cli: Cli, path: Path, ollama: FakeOllama) -> None:
    write(path, f'[profiles.gpu]\nhost = "127.0.0.1:{closed_port()}"\nmodels = ["tiny"]\n')
    run = cli("apply", "gpu")
    assert run.exit_code == 3
    assert "cannot reach Ollama at http://127.0.0.1:" in run.stderr
    assert ollama.requests == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[profiles.p]\nmodels = ["tiny"]\nkeep_alive = "1d"\n', ":3: profiles -> p -> keep_alive"),
        ('[profiles.p]\nmodels = ["tiny", "tiny"]\n', '"tiny" is listed twice'),
        ('[profiles.p]\nmodels = ["tiny"\n', "not valid TOML"),
        ('[profiles.other]\nmodels = ["tiny"]\n', 'no profile named "p"'),
    ],
)
def test_bad_profiles_exit_2_and_send_nothing(
    cli: Cli, path: Path, ollama: FakeOllama, text: str, message: str
) -> None:
    path.write_text(text)
    run = cli("apply", "p")
    assert run.exit_code == 2, run
    assert message in run.stderr
    assert ollama.requests == []  # not even a GET


def test_a_failed_step_exits_1_and_the_rest_goes_ahead(
    cli: Cli, path: Path, ollama: FakeOllama
) -> None:
    # A name that matches nothing is refused up front (exit 2); a load that fails is a
    # failed step.
    write(path, '[profiles.p]\nkeep_alive = "forever"\nmodels = ["tiny2", "tiny"]\n')
    ollama.fail_load("tiny2")
    run = cli("apply", "p")
    assert run.exit_code == 1, run
    assert "error: tiny2" in run.stderr
    assert set(state(ollama)) == {"tiny:latest"}
    assert 'profile "p" applied in part: 1 step failed' in run.stderr


def test_json_document(cli: Cli, path: Path, ollama: FakeOllama) -> None:
    ollama.preload("tiny2", "5m")
    write(path, '[profiles.p]\nkeep_alive = "forever"\nmodels = ["tiny"]\n')
    run = cli("apply", "p", "--exclusive", "--json")
    assert run.exit_code == 0, run
    doc = json.loads(run.stdout)
    assert set(doc) == {
        "schema_version",
        "profile",
        "host",
        "dry_run",
        "plan",
        "unloaded",
        "loaded",
        "refused",
        "end_state",
        "ok",
    }
    assert doc["refused"] is None
    assert doc["end_state"] == {
        "ok": True,
        "asked": 1,
        "resident": ["tiny:latest"],
        "lost": [],
    }
    assert (doc["schema_version"], doc["profile"], doc["host"]) == (1, "p", ollama.url)
    assert (doc["dry_run"], doc["ok"]) == (False, True)
    assert [(s["action"], s["model"]) for s in doc["plan"]["steps"]] == [
        ("unload", "tiny2:latest"),
        ("load", "tiny:latest"),
    ]
    assert [(u["name"], u["status"]) for u in doc["unloaded"]] == [("tiny2:latest", "unloaded")]
    assert [(x["name"], x["status"], x["pinned"]) for x in doc["loaded"]] == [
        ("tiny:latest", "loaded", True)
    ]
    assert run.stderr == ""
    dry = json.loads(cli("apply", "p", "--dry-run", "--json").stdout)
    assert dry["dry_run"] is True
    assert dry["plan"]["summary"] == "nothing to do: 1 model as the profile asks"
    assert (dry["loaded"], dry["unloaded"]) == ([], [])


def test_quiet_prints_nothing_on_success(cli: Cli, path: Path, ollama: FakeOllama) -> None:
    write(path, '[profiles.p]\nkeep_alive = "forever"\nmodels = ["tiny"]\n')
    run = cli("apply", "p", "--quiet")
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")
    assert set(state(ollama)) == {"tiny:latest"}


def test_snapshot_round_trip(cli: Cli, path: Path, ollama: FakeOllama) -> None:
    """Save what is loaded, unload all, apply: the same set with the same keep-alives."""
    ollama.preload("tiny", -1)
    ollama.preload("tiny2", "30m")
    ollama.preload("tiny3", "10m", num_ctx=256)
    before = state(ollama)
    assert before["tiny3:latest"] == (10 * MIN, 256)
    assert cli("profile", "save", "snap").exit_code == 0
    assert cli("unload", "--all").exit_code == 0
    assert state(ollama) == {}
    run = cli("apply", "snap")
    assert run.exit_code == 0, run
    assert state(ollama) == before


def test_the_journal_names_apply_and_its_profile(cli: Cli, path: Path, ollama: FakeOllama) -> None:
    from ollama_resident import journal, why

    ollama.preload("tiny2", "5m")
    write(path, '[profiles.work]\nkeep_alive = "forever"\nmodels = ["tiny"]\n')
    assert cli("apply", "work", "--exclusive").exit_code == 0
    events = journal.read()
    assert [(e.model, e.event, e.reason, e.detail.get("action")) for e in events] == [
        ("tiny2:latest", "unloaded", "stopped", "apply"),
        ("tiny:latest", "loaded", None, "apply"),
    ]
    assert {e.detail.get("profile") for e in events} == {"work"}
    story = why.render_story(why.build_story("tiny", events, now=events[-1].time))
    assert "loaded by ollama-resident apply work: pinned forever" in story
    assert "unloaded by ollama-resident apply work" in why.render_story(
        why.build_story("tiny2", events, now=events[-1].time)
    )
