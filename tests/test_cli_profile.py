"""``profile list|show|save|add|remove|path|edit`` through the real CLI."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run, closed_port
from fakeollama import FakeOllama
from ollama_resident import profiles
from ollama_resident.durations import KeepAlive
from ollama_resident.profiles import ProfileModel

Cli = Callable[..., Run]
MIN = 60 * 1_000_000_000


@pytest.fixture
def path(isolated_env: Path) -> Path:
    """Where the CLI keeps profiles in these tests (OLLAMA_RESIDENT_HOME)."""
    return isolated_env / "profiles.toml"


def posts(server: FakeOllama) -> list[str]:
    return [r.path for r in server.requests if r.method == "POST"]


# -- path ---------------------------------------------------------------------------------------


def test_path_follows_option_then_env_then_home(
    cli: Cli, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = cli("profile", "path")
    assert (run.exit_code, run.stdout) == (0, f"{path}\n")
    assert "does not exist yet" in run.stderr
    monkeypatch.setenv("OLLAMA_RESIDENT_PROFILES", str(tmp_path / "env.toml"))
    assert cli("profile", "path").stdout == f"{tmp_path / 'env.toml'}\n"
    run = cli("--profiles", str(tmp_path / "opt.toml"), "profile", "path")
    assert run.stdout == f"{tmp_path / 'opt.toml'}\n"


# -- add / list / show / remove -------------------------------------------------------------------


def test_add_creates_then_merges(cli: Cli, path: Path) -> None:
    run = cli("profile", "add", "coding", "qwen2.5:14b", "llama3.2")
    assert run.exit_code == 0, run
    assert run.stdout == ""
    assert f'created profile "coding" in {path}' in run.stderr
    assert 'added qwen2.5:14b to profile "coding"' in run.stderr
    run = cli("profile", "add", "coding", "nomic-embed-text", "--keep-alive", "30m")
    assert run.exit_code == 0, run
    run = cli("profile", "add", "coding", "llama3.2:latest", "--num-ctx", "8192")
    assert 'updated llama3.2:latest in profile "coding": context 8192' in run.stderr
    run = cli("profile", "add", "coding", "llama3.2")
    assert 'llama3.2 is already in profile "coding" as asked' in run.stderr
    assert path.read_text() == textwrap.dedent(
        """\
        [profiles.coding]
        models = [
          "qwen2.5:14b",
          { name = "llama3.2", num_ctx = 8192 },
          { name = "nomic-embed-text", keep_alive = "30m" },
        ]
        """
    )


def test_list_and_show(cli: Cli, path: Path) -> None:
    path.write_text(
        textwrap.dedent(
            """\
            [profiles.coding]
            keep_alive = "forever"
            host = "http://user:secret@gpu-box:11434"
            models = ["qwen2.5:14b", { name = "nomic-embed-text", keep_alive = "30m" }]

            [profiles.idle]
            exclusive = true
            models = []
            """
        )
    )
    run = cli("profile", "list")
    assert run.exit_code == 0, run
    assert run.stdout == textwrap.dedent(
        """\
        NAME     MODELS   KEEP-ALIVE       HOST                       EXCLUSIVE
        coding        2   forever          http://***@gpu-box:11434   no
        idle          0   server default   -                          yes
        """
    )
    listed = json.loads(cli("profile", "list", "--json").stdout)
    assert [p["name"] for p in listed] == ["coding", "idle"]
    assert listed[0]["host"] == "http://***@gpu-box:11434"  # credentials never printed

    run = cli("profile", "show", "coding")
    assert run.exit_code == 0, run
    assert run.stdout.endswith(
        textwrap.dedent(
            """\
            MODEL              KEEP-ALIVE          CONTEXT
            qwen2.5:14b        forever (profile)         -
            nomic-embed-text   30m                       -
            """
        )
    )
    assert "secret" not in run.stdout
    doc = json.loads(cli("profile", "show", "coding", "--json").stdout)
    assert doc == {
        "schema_version": 1,
        "file": str(path),
        "name": "coding",
        "host": "http://***@gpu-box:11434",
        "keep_alive": "forever",
        "exclusive": False,
        "models": [
            {
                "name": "qwen2.5:14b",
                "keep_alive": None,
                "effective_keep_alive": "forever",
                "num_ctx": None,
            },
            {
                "name": "nomic-embed-text",
                "keep_alive": "30m",
                "effective_keep_alive": "30m",
                "num_ctx": None,
            },
        ],
    }


def test_list_without_a_file(cli: Cli) -> None:
    run = cli("profile", "list")
    assert (run.exit_code, run.stdout) == (0, "")
    assert "No profiles in" in run.stderr
    assert cli("profile", "list", "--json").stdout == "[]\n"


def test_remove_models_then_the_profile(cli: Cli, path: Path) -> None:
    cli("profile", "add", "coding", "a", "b", "c")
    run = cli("profile", "remove", "coding", "b")
    assert run.exit_code == 0, run
    assert 'removed b from profile "coding" (2 models left)' in run.stderr
    run = cli("profile", "remove", "coding", "zzz")
    assert run.exit_code == 2
    assert 'profile "coding" has no model "zzz"' in run.stderr
    assert "its models: a, c" in run.stderr
    run = cli("profile", "rm", "coding")
    assert run.exit_code == 0, run
    assert 'removed profile "coding" (a, c)' in run.stderr
    assert profiles.load(path).profiles == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("profile", "show", "codng"), 'no profile named "codng"'),
        (("profile", "remove", "codng"), 'no profile named "codng"'),
        (("profile", "add", "bad\nname", "x"), "invalid profile name 'bad\\nname'"),
        (("profile", "add", "-x", "x"), "no such option"),
        (("profile", "add", "coding", "a b"), "model names have no spaces"),
        (("profile", "add", "coding", "a", "a:latest"), '"a:latest" is given twice'),
        (("profile", "add", "coding", "a", "-k", "1d"), 'unknown unit "d"'),
        (("profile", "add", "coding", "a", "-k", "0"), "would unload"),
        (("profile", "add", "coding", "a", "--num-ctx", "0"), "--num-ctx"),
    ],
)
def test_bad_input_exits_2_and_leaves_the_file(
    cli: Cli, path: Path, args: tuple[str, ...], message: str
) -> None:
    cli("profile", "add", "coding", "llama3.2")
    before = path.read_bytes()
    run = cli(*args)
    assert run.exit_code == 2, run
    assert message in run.stderr
    assert path.read_bytes() == before


def test_unknown_profile_lists_the_known_ones(cli: Cli) -> None:
    cli("profile", "add", "coding", "llama3.2")
    run = cli("profile", "show", "codng")
    assert run.exit_code == 2
    assert 'hint: known profiles: coding (did you mean "coding"?)' in run.stderr


def test_writes_keep_comments_in_a_bak_and_say_so(cli: Cli, path: Path) -> None:
    original = '# my notes\n[profiles.coding]\nmodels = ["llama3.2"]  # the small one\n'
    path.write_text(original)
    run = cli("profile", "add", "coding", "tiny")
    assert run.exit_code == 0, run
    bak = path.with_name("profiles.toml.bak")
    assert bak.read_text() == original
    assert "warning: profiles.toml had comments, which a rewrite does not keep" in run.stderr
    assert str(bak) in run.stderr
    assert "#" not in path.read_text()
    run = cli("profile", "add", "coding", "tiny2")
    assert "comments" not in run.stderr
    assert bak.read_text() == original


def test_a_corrupt_file_is_never_written(cli: Cli, path: Path) -> None:
    corrupt = b'[profiles.coding]\nmodels = ["a"\nkeep_alive = "5m"\n'
    path.write_bytes(corrupt)
    for args in (
        ("profile", "add", "coding", "b"),
        ("profile", "remove", "coding"),
        ("profile", "save", "coding", "x"),
        ("profile", "list"),
    ):
        run = cli(*args)
        assert run.exit_code == 2, run
        assert f"error: {path}:3: not valid TOML: Unclosed array" in run.stderr
        assert "never writes over a file it cannot read" in run.stderr
    assert path.read_bytes() == corrupt
    assert sorted(p.name for p in path.parent.iterdir()) == ["profiles.toml", "profiles.toml.lock"]


# -- save ------------------------------------------------------------------------------------------


def test_save_named_models_replaces_and_keeps_host(cli: Cli, path: Path) -> None:
    path.write_text(
        '[profiles.w]\nhost = "http://gpu-box:11434"\nexclusive = true\nmodels = ["old"]\n'
    )
    run = cli("profile", "save", "w", "llama3.2", "tiny", "--keep-alive", "1h")
    assert run.exit_code == 0, run
    assert 'replaced profile "w": llama3.2 (1h), tiny (1h)' in run.stderr
    p = profiles.load(path).profiles["w"]
    assert p.models == (ProfileModel("llama3.2"), ProfileModel("tiny"))
    assert p.keep_alive == KeepAlive.of_seconds(3600)
    assert (p.host, p.exclusive) == ("http://gpu-box:11434", True)


def test_save_snapshots_what_is_loaded(cli: Cli, path: Path, ollama: FakeOllama) -> None:
    ollama.preload("tiny", -1)
    ollama.preload("tiny2", "30m")
    ollama.preload("tiny3", "10m", num_ctx=256)  # below the training context of 512
    run = cli("profile", "save", "snap")
    assert run.exit_code == 0, run
    assert f'saved profile "snap" from {ollama.url}:' in run.stderr
    p = profiles.load(path).profiles["snap"]
    assert p.keep_alive is None
    by_name = {m.name: m for m in p.models}
    assert by_name == {
        "tiny:latest": ProfileModel("tiny:latest", KeepAlive.forever(), None),
        # 29m59.9s left: rounded up to the minute, never down
        "tiny2:latest": ProfileModel("tiny2:latest", KeepAlive.of_seconds(1800), None),
        "tiny3:latest": ProfileModel("tiny3:latest", KeepAlive.of_seconds(600), 256),
    }
    assert posts(ollama) == ["/api/show"] * 3  # read only: nothing loaded or changed


def test_save_snapshot_hoists_a_shared_keep_alive(cli: Cli, path: Path, ollama: FakeOllama) -> None:
    ollama.preload("tiny", -1)
    ollama.preload("tiny2", -1)
    assert cli("profile", "save", "pins").exit_code == 0
    text = path.read_text()
    assert text.startswith('[profiles.pins]\nkeep_alive = "forever"\nmodels = [\n')
    p = profiles.load(path).profiles["pins"]
    assert p.keep_alive == KeepAlive.forever()
    assert sorted(p.models, key=lambda m: m.name) == [
        ProfileModel("tiny2:latest"),
        ProfileModel("tiny:latest"),
    ]


def test_save_snapshot_with_keep_alive_overrides_the_windows(
    cli: Cli, path: Path, ollama: FakeOllama
) -> None:
    ollama.preload("tiny", -1)
    ollama.preload("tiny2", "3m")
    assert cli("profile", "save", "s", "-k", "2h").exit_code == 0
    p = profiles.load(path).profiles["s"]
    assert p.keep_alive == KeepAlive.of_seconds(7200)
    assert all(m.keep_alive is None for m in p.models)


def test_save_snapshot_of_nothing_exits_2(cli: Cli, path: Path, ollama: FakeOllama) -> None:
    run = cli("profile", "save", "snap")
    assert run.exit_code == 2
    assert f"nothing is loaded on {ollama.url}" in run.stderr
    assert not path.exists()


def test_save_snapshot_from_another_host(
    cli: Cli, path: Path, make_ollama: Callable[..., FakeOllama], monkeypatch: pytest.MonkeyPatch
) -> None:
    local = make_ollama()
    remote = make_ollama()
    monkeypatch.setenv("OLLAMA_HOST", local.url)
    remote.preload("qwen2.5:14b", -1)
    local.preload("tiny", -1)
    run = cli("profile", "save", "gpu", "--host", remote.url)
    assert run.exit_code == 0, run
    p = profiles.load(path).profiles["gpu"]
    assert (p.host, p.model_names) == (remote.url, ["qwen2.5:14b"])
    assert local.requests == []


def test_save_snapshot_server_unreachable_exits_3(cli: Cli, path: Path) -> None:
    run = cli("profile", "save", "snap")  # OLLAMA_HOST points at a closed port
    assert run.exit_code == 3
    assert "cannot reach Ollama" in run.stderr
    assert not path.exists()


# -- edit -----------------------------------------------------------------------------------------


def _editor(tmp_path: Path, body: str) -> str:
    """An $EDITOR that copies what it was given to seen.toml, then writes ``body``."""
    script = tmp_path / "editor.py"
    script.write_text(
        "import pathlib, shutil, sys\n"
        "target = pathlib.Path(sys.argv[1])\n"
        f"shutil.copy(target, {str(tmp_path / 'seen.toml')!r})\n"
        f"target.write_text({body!r})\n"
    )
    return f"{sys.executable} {script}"


def test_edit_creates_an_example_and_validates(
    cli: Cli, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITOR", _editor(tmp_path, '[profiles.c]\nmodels = ["tiny"]\n'))
    run = cli("profile", "edit")
    assert run.exit_code == 0, run
    seen = (tmp_path / "seen.toml").read_text()
    assert seen.startswith("# ollama-resident profiles")
    assert profiles.load_text(seen, "x").profiles == {}  # the example is all comments: valid
    assert f"{path} is valid: 1 profile (c)" in run.stderr


def test_edit_reports_what_is_wrong_and_keeps_the_edit(
    cli: Cli, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = '[profiles.c]\nmodels = ["tiny"]\nkeep_alive = "1d"\n'
    monkeypatch.setenv("VISUAL", _editor(tmp_path, bad))
    monkeypatch.setenv("EDITOR", "false")  # VISUAL wins
    run = cli("profile", "edit")
    assert run.exit_code == 2, run
    assert f'error: {path}:3: profiles -> c -> keep_alive: invalid keep-alive "1d"' in run.stderr
    assert "run `ollama-resident profile edit` again" in run.stderr
    assert path.read_text() == bad


def test_edit_with_a_failing_editor(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITOR", f"{sys.executable} -c 'raise SystemExit(3)'")
    run = cli("profile", "edit")
    assert run.exit_code == 1
    assert "the editor exited with status 3" in run.stderr
    monkeypatch.setenv("EDITOR", "/nonexistent/editor")
    run = cli("profile", "edit")
    assert run.exit_code == 2
    assert "cannot run the editor '/nonexistent/editor'" in run.stderr


def test_profile_add_refuses_a_name_that_matches_nothing(
    cli: Callable[..., Run], ollama: FakeOllama, isolated_env: Path
) -> None:
    """The trial's case: `profile add work lama3.2` was accepted; apply failed half-way."""
    run = cli("profile", "add", "work", "tyni2")
    assert run.exit_code == 2, run
    assert 'model "tyni2" matches no model installed or loaded' in run.stderr
    assert 'did you mean "tiny2:latest"' in run.stderr
    assert "--no-check adds it anyway" in run.stderr
    assert "work" not in cli("profile", "list").stdout
    # --no-check adds it; an installed name goes in as usual.
    assert cli("profile", "add", "work", "tyni2", "--no-check").exit_code == 0
    assert cli("profile", "add", "work", "tiny").exit_code == 0
    assert [
        m["name"] for m in json.loads(cli("profile", "show", "work", "--json").stdout)["models"]
    ] == [
        "tyni2",
        "tiny",
    ]


def test_profile_add_with_a_dead_server_adds_with_a_warning(
    cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    run = cli("profile", "add", "work", "lama3.2")
    assert run.exit_code == 0, run
    assert "warning: names not checked" in run.stderr
    assert 'added lama3.2 to profile "work"' in run.stderr


def test_apply_checks_every_name_before_sending_anything(
    cli: Callable[..., Run], ollama: FakeOllama, isolated_env: Path
) -> None:
    (isolated_env / "profiles.toml").write_text('[profiles.work]\nmodels = ["tiny", "lama3.2"]\n')
    ollama.clear_requests()
    run = cli("apply", "work")
    assert run.exit_code == 2, run
    assert 'model "lama3.2" matches no model installed or loaded' in run.stderr
    assert [r for r in ollama.requests if r.method == "POST"] == []
