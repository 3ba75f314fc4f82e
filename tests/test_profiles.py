"""profiles.py and atomic.py: validation with lines, reading, and writes that lose nothing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ollama_resident import profiles
from ollama_resident.atomic import LockTimeout, atomic_write, file_lock, lock_path
from ollama_resident.durations import KeepAlive
from ollama_resident.errors import ExitCode, ProfileError
from ollama_resident.profiles import Profile, ProfileModel, ProfilesFile

GOOD = textwrap.dedent(
    """\
    # my profiles
    [profiles.coding]
    keep_alive = "forever"            # default for the models
    host = "http://gpu-box:11434"
    models = [
      "qwen2.5-coder:14b",
      { name = "nomic-embed-text", keep_alive = "30m" },
      { name = "llama3.2", num_ctx = 8192 },
    ]

    [profiles.writing]
    exclusive = true
    models = ["llama3.2"]
    """
)


def _load(text: str) -> ProfilesFile:
    return profiles.load_text(text, "p.toml")


def _error(text: str) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        _load(text)
    return info.value


# -- reading what is valid -------------------------------------------------------------------


def test_full_example_is_read_as_written() -> None:
    pf = _load(GOOD)
    assert pf.names == ["coding", "writing"]
    coding = pf.profiles["coding"]
    assert coding.keep_alive == KeepAlive.forever()
    assert coding.host == "http://gpu-box:11434"
    assert coding.exclusive is False
    assert coding.models == (
        ProfileModel("qwen2.5-coder:14b"),
        ProfileModel("nomic-embed-text", KeepAlive.of_seconds(1800)),
        ProfileModel("llama3.2", None, 8192),
    )
    writing = pf.profiles["writing"]
    assert writing.exclusive is True
    assert writing.keep_alive is None
    assert writing.host is None


def test_load_requests_use_the_model_keep_alive_else_the_profile_one() -> None:
    reqs = _load(GOOD).profiles["coding"].load_requests()
    assert [(r.model, r.keep_alive, r.num_ctx) for r in reqs] == [
        ("qwen2.5-coder:14b", KeepAlive.forever(), None),
        ("nomic-embed-text", KeepAlive.of_seconds(1800), None),
        ("llama3.2", KeepAlive.forever(), 8192),
    ]
    assert _load(GOOD).profiles["writing"].load_requests()[0].keep_alive is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"forever"', KeepAlive.forever()),
        ("-1", KeepAlive.forever()),
        ('"-1m"', KeepAlive.forever()),
        ("300", KeepAlive.of_seconds(300)),
        ("1.5", KeepAlive.of_seconds(1.5)),
        ('"1h30m"', KeepAlive.of_seconds(5400)),
    ],
)
def test_keep_alive_accepts_what_the_command_line_accepts(value: str, expected: KeepAlive) -> None:
    pf = _load(f'[profiles.a]\nkeep_alive = {value}\nmodels = ["x"]\n')
    assert pf.profiles["a"].keep_alive == expected


def test_other_toml_spellings_of_the_same_profile() -> None:
    inline = _load('[profiles]\ncoding = { keep_alive = "5m", models = ["a"] }\n')
    dotted = _load('profiles.coding.keep_alive = "5m"\nprofiles.coding.models = ["a"]\n')
    assert inline.profiles == dotted.profiles
    assert inline.profiles["coding"].keep_alive == KeepAlive.of_seconds(300)


def test_an_empty_model_list_is_allowed() -> None:
    assert _load("[profiles.idle]\nmodels = []\nexclusive = true\n").profiles["idle"].models == ()


def test_a_missing_file_has_no_profiles(tmp_path: Path) -> None:
    pf = profiles.load(tmp_path / "nope.toml")
    assert pf.profiles == {}
    assert not (tmp_path / "nope.toml").exists()


# -- validation messages: file, line, location, what is wrong -------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "location", "detail"),
    [
        (
            '"30m"',
            '"1d"',
            7,
            "profiles -> coding -> models[1] (nomic-embed-text) -> keep_alive",
            'invalid keep-alive "1d": unknown unit "d"',
        ),
        (
            'keep_alive = "forever"',
            'keepalive = "forever"',
            3,
            "profiles -> coding",
            'unknown key "keepalive"',
        ),
        (
            "num_ctx = 8192",
            'num_ctx = "8192"',
            8,
            "profiles -> coding -> models[2] (llama3.2) -> num_ctx",
            "must be a whole number of tokens such as 8192, not a string",
        ),
        (
            "num_ctx = 8192",
            "num_ctx = 0",
            8,
            "profiles -> coding -> models[2] (llama3.2) -> num_ctx",
            "must be between 1 and",
        ),
        (
            "num_ctx = 8192",
            "ctx = 8192",
            8,
            "profiles -> coding -> models[2] (llama3.2)",
            'unknown key "ctx"',
        ),
        (
            'models = ["llama3.2"]',
            'models = ["llama3.2", "llama3.2:latest"]',
            13,
            "profiles -> writing -> models[1]",
            '"llama3.2:latest" is listed twice (also models[0], "llama3.2")',
        ),
        (
            '"qwen2.5-coder:14b",',
            '"",',
            6,
            "profiles -> coding -> models[0]",
            "the model name is empty",
        ),
        (
            '"qwen2.5-coder:14b",',
            '"qwen coder",',
            6,
            "profiles -> coding -> models[0]",
            "model names have no spaces",
        ),
        (
            '"qwen2.5-coder:14b",',
            "42,",
            5,
            "profiles -> coding -> models[0]",
            "a model is a name",
        ),
        (
            '{ name = "llama3.2", num_ctx = 8192 }',
            "{ num_ctx = 8192 }",
            5,
            "profiles -> coding -> models[2]",
            'has no "name" key',
        ),
        (
            "[profiles.writing]",
            '[profiles."-my profile"]',
            11,
            "profiles -> -my profile",
            "invalid profile name '-my profile'",
        ),
        (
            'host = "http://gpu-box:11434"',
            "host = 11434",
            4,
            "profiles -> coding -> host",
            "must be a string",
        ),
        (
            'host = "http://gpu-box:11434"',
            'host = "ftp://gpu-box"',
            4,
            "profiles -> coding -> host",
            'unsupported scheme "ftp"',
        ),
        (
            'host = "http://gpu-box:11434"',
            'host = ""',
            4,
            "profiles -> coding -> host",
            "is empty",
        ),
        (
            "exclusive = true",
            'exclusive = "yes"',
            12,
            "profiles -> writing -> exclusive",
            "must be true or false, not a string",
        ),
        (
            'keep_alive = "forever"',
            "keep_alive = 0",
            3,
            "profiles -> coding -> keep_alive",
            "would unload the model as soon as it is idle",
        ),
        (
            'keep_alive = "forever"',
            "keep_alive = true",
            3,
            "profiles -> coding -> keep_alive",
            "not a boolean",
        ),
        (
            'models = ["llama3.2"]',
            'models = "llama3.2"',
            13,
            "profiles -> writing -> models",
            "must be an array",
        ),
        (
            'models = ["llama3.2"]',
            "",
            11,
            "profiles -> writing",
            'has no "models" key',
        ),
    ],
)
def test_validation_errors_name_line_location_and_problem(
    old: str, new: str, line: int, location: str, detail: str
) -> None:
    assert old in GOOD
    err = _error(GOOD.replace(old, new, 1))
    assert err.path == "p.toml"
    assert err.line == line
    assert err.location == location
    assert detail in err.detail
    assert str(err).startswith(f"p.toml:{line}: {location}: ")
    assert err.exit_code == ExitCode.USAGE


def test_unknown_keys_suggest_the_right_one() -> None:
    err = _error(GOOD.replace('keep_alive = "forever"', 'keep-alive = "forever"'))
    assert err.hint is not None
    assert 'did you mean "keep_alive"?' in err.hint


def test_a_duplicate_points_at_the_second_occurrence() -> None:
    err = _error("[profiles.a]\nmodels = [\n  'x',\n  'y',\n  'x',\n]\n")
    assert err.line == 5
    assert err.location == "profiles -> a -> models[2]"


def test_unknown_top_level_key() -> None:
    err = _error('title = "mine"\n' + GOOD)
    assert err.line == 1
    assert 'unknown top-level key "title"' in err.detail


def test_profiles_must_be_a_table() -> None:
    err = _error('profiles = ["coding"]\n')
    assert err.line == 1
    assert err.location == "profiles"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[profiles.a]\nmodels = [\n  'x'\n  'y',\n]\n", 4),  # missing comma
        ('[profiles.a]\nkeep_alive = "5m\nmodels = []\n', 2),  # unterminated string
        ("[profiles.a]\nmodels = []\n[profiles.a]\nmodels = []\n", 3),  # table defined twice
        ("[profiles.a]\nmodels = [\n\n", 2),  # at the end: the last line with content
    ],
)
def test_toml_syntax_errors_carry_the_line(text: str, line: int) -> None:
    err = _error(text)
    assert err.line == line
    assert err.detail.startswith("not valid TOML: ")
    assert "(at line" not in err.detail  # the position moved into .line
    assert err.hint is not None and "profile edit" in err.hint


def test_toml_error_reads_lineno_where_python_has_it() -> None:
    """Python 3.14's TOMLDecodeError has .msg/.lineno/.colno; the message has no position."""

    class Decode314(ValueError):
        msg = "Unclosed array"
        lineno = 7
        colno = 3

    err = profiles._toml_error("p.toml", "", Decode314("Unclosed array"))
    assert (err.line, err.detail) == (7, "not valid TOML: Unclosed array (column 3)")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="is a directory"):
        profiles.load(tmp_path)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[profiles.a]\nmodels = ["caf\xe9"]\n')
    with pytest.raises(ProfileError, match="not UTF-8") as info:
        profiles.load(latin)
    assert info.value.line == 2


# -- resolve: the lead's entry point for --profile NAME -------------------------------------------


def test_resolve_finds_a_profile_through_the_option_path(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    assert profiles.resolve("writing", str(path)).models == (ProfileModel("llama3.2"),)


def test_resolve_lists_known_names_and_suggests_one(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    with pytest.raises(ProfileError) as info:
        profiles.resolve("codng", str(path))
    err = info.value
    assert err.detail == 'no profile named "codng"'
    assert err.hint == 'known profiles: coding, writing (did you mean "coding"?)'
    assert err.exit_code == ExitCode.USAGE


def test_resolve_without_a_file_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_RESIDENT_PROFILES", str(tmp_path / "env.toml"))
    with pytest.raises(ProfileError) as info:
        profiles.resolve("coding")
    assert info.value.path == str(tmp_path / "env.toml")
    assert "does not exist yet" in info.value.detail
    assert info.value.hint is not None and "profile save coding" in info.value.hint


# -- writing --------------------------------------------------------------------------------------


def test_to_toml_round_trips_and_matches_the_documented_shape() -> None:
    pf = _load(GOOD)
    text = profiles.to_toml(pf)
    assert profiles.load_text(text, "p.toml").profiles == pf.profiles
    assert text.startswith(
        textwrap.dedent(
            """\
            [profiles.coding]
            keep_alive = "forever"
            host = "http://gpu-box:11434"
            models = [
              "qwen2.5-coder:14b",
              { name = "nomic-embed-text", keep_alive = "30m" },
              { name = "llama3.2", num_ctx = 8192 },
            ]
            """
        )
    )
    assert "exclusive = true" in text  # only written when set


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# a comment\n", True),
        ('a = "x" # trailing\n', True),
        ('a = "#not"\n', False),
        ("a = '#not'\n", False),
        ('a = """\n# not\n"""\n', False),
        ("a = '''\n# not\n'''\n", False),
        ('a = "x\\"#not"\n', False),
        ('a = """x\\""""\n# yes\n', True),
        ("", False),
    ],
)
def test_has_comments(text: str, expected: bool) -> None:
    assert profiles.has_comments(text) is expected


def _add(path: Path, profile: str, model: str) -> profiles.WriteResult:
    def change(pf: ProfilesFile) -> ProfilesFile:
        current = pf.profiles.get(profile) or Profile(profile)
        current, _ = profiles.add_model(current, ProfileModel(model))
        return profiles.set_profile(pf, current)

    return profiles.update(path, change)


def test_update_creates_the_file_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "profiles.toml"
    result = _add(path, "coding", "llama3.2")
    assert result.changed and result.backup is None
    assert profiles.load(path).profiles["coding"].models == (ProfileModel("llama3.2"),)


def test_a_corrupt_file_is_left_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    corrupt = b'# keep me\n[profiles.coding]\nmodels = ["a",\n\x00 oops'
    path.write_bytes(corrupt)
    before = set(tmp_path.iterdir())
    with pytest.raises(ProfileError):
        _add(path, "coding", "llama3.2")
    with pytest.raises(ProfileError):
        profiles.save(path, ProfilesFile(path, {"x": Profile("x")}))
    assert path.read_bytes() == corrupt
    # No .bak, no temp file; only the lock file may have appeared.
    assert set(tmp_path.iterdir()) - before <= {lock_path(path)}


def test_an_invalid_file_is_left_as_well(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.coding]\nmodels = ["a"]\nkeep_alive = "1d"\n')
    before = path.read_bytes()
    with pytest.raises(ProfileError, match='unknown unit "d"'):
        _add(path, "coding", "b")
    assert path.read_bytes() == before


def test_comments_are_kept_in_a_bak_and_the_bak_is_not_clobbered(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(GOOD)
    first = _add(path, "coding", "tiny")
    assert first.backup == tmp_path / "profiles.toml.bak"
    assert first.backup.read_text() == GOOD
    assert "#" not in path.read_text()
    second = _add(path, "coding", "tiny2")
    assert second.backup is None  # the file had no comments any more
    assert (tmp_path / "profiles.toml.bak").read_text() == GOOD


def test_a_no_op_change_does_not_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(GOOD)
    result = _add(path, "coding", "llama3.2")  # already there, no new settings
    assert not result.changed
    assert path.read_text() == GOOD  # comments survive
    assert not (tmp_path / "profiles.toml.bak").exists()


def test_update_refuses_to_write_an_invalid_profile(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(GOOD)
    with pytest.raises(ProfileError, match="invalid profile name"):
        profiles.update(path, lambda pf: profiles.set_profile(pf, Profile("bad\tname")))
    assert path.read_text() == GOOD


def test_add_model_merges_and_remove_model_reports_what_is_there() -> None:
    p = Profile("c", (ProfileModel("llama3.2", KeepAlive.of_seconds(60)),))
    same, what = profiles.add_model(p, ProfileModel("llama3.2:latest"))
    assert (same, what) == (p, "unchanged")
    merged, what = profiles.add_model(p, ProfileModel("LLAMA3.2", None, 2048))
    assert what == "updated"
    assert merged.models == (ProfileModel("llama3.2", KeepAlive.of_seconds(60), 2048),)
    more, what = profiles.add_model(p, ProfileModel("tiny"))
    assert what == "added" and more.model_names == ["llama3.2", "tiny"]
    assert profiles.remove_model(more, "llama3.2:latest").model_names == ["tiny"]
    with pytest.raises(ProfileError) as info:
        profiles.remove_model(more, "qwen")
    assert info.value.hint == "its models: llama3.2, tiny"


# -- atomic writes and the lock -------------------------------------------------------------------


def test_atomic_write_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic_write(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_atomic_write_gives_a_new_file_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.toml", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.toml").stat().st_mode) == 0o640  # not mkstemp's 0600


def test_atomic_write_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "profiles.toml"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "profiles.toml"
    link.symlink_to(real)
    atomic_write(link, "new")
    assert link.is_symlink()
    assert real.read_text() == "new"


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "f.toml"
    path.parent.mkdir()
    path.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write(path, "bad \udcff surrogate")
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.toml"]


def test_the_lock_times_out_when_held(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    with file_lock(path), pytest.raises(LockTimeout), file_lock(path, timeout=0.1):
        pass  # pragma: no cover
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with file_lock(path):
            holding.set()
            release.wait(60)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert holding.wait(60)
        with pytest.raises(ProfileError, match="locked by another process"):
            profiles.update(path, lambda pf: pf, lock_timeout=0.1)
    finally:
        release.set()
        t.join()


def test_concurrent_writers_in_threads_all_land(tmp_path: Path) -> None:
    """Each change sleeps between read and write: without the lock most would be lost."""
    path = tmp_path / "profiles.toml"
    names = [f"model{i}" for i in range(6)]

    def add(model: str) -> None:
        def change(pf: ProfilesFile) -> ProfilesFile:
            current = pf.profiles.get("coding") or Profile("coding")
            time.sleep(0.05)
            current, _ = profiles.add_model(current, ProfileModel(model))
            return profiles.set_profile(pf, current)

        profiles.update(path, change)

    threads = [threading.Thread(target=add, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(profiles.load(path).profiles["coding"].model_names) == names


def test_concurrent_profile_add_processes_both_land(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "profiles.toml"
    env = {**os.environ, "OLLAMA_RESIDENT_PROFILES": str(path)}
    names = [f"model{i}" for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ollama_resident", "profile", "add", "coding", name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert sorted(profiles.load(path).profiles["coding"].model_names) == names
    left = sorted(p.name for p in path.parent.iterdir())
    assert left == ["profiles.toml", "profiles.toml.lock"]  # no temp file left behind
