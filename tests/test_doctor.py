"""``doctor``'s checks, one by one (pure: facts, profile and journal in, checks out)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ollama_resident import serverlog
from ollama_resident.doctor import (
    Check,
    DoctorInput,
    GuardService,
    every_fix,
    fix_text,
    parse_version,
    run_checks,
)
from ollama_resident.durations import KeepAlive
from ollama_resident.events import Event
from ollama_resident.factsources import Manager
from ollama_resident.models import ModelInfo, PsSnapshot
from ollama_resident.plan import Installed
from ollama_resident.profiles import Profile, ProfileModel
from ollama_resident.serverfacts import ServerFacts, facts_from_records, unknown
from ollamalog import start_block

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc)
SYSTEMD = Manager("systemd", "ollama.service", "systemctl: ollama.service is active")
UNKNOWN = Manager("unknown", "", "nothing found")


def log_facts(**env: str) -> ServerFacts:
    return facts_from_records(
        serverlog.iter_records(start_block(11434, env=env)), "/var/log/ollama.log"
    )


def inp(**kw: Any) -> DoctorInput:
    base: dict[str, Any] = {
        "url": "http://127.0.0.1:11434",
        "version": "0.24.0",
        "facts": log_facts(),
        "manager": SYSTEMD,
        "shell_env": {},
        "snapshot": PsSnapshot((), NOW),
        "now": NOW,
        "clock_offset_s": 0.0,
    }
    base.update(kw)
    return DoctorInput(**base)


def check(checks: list[Check], ident: str) -> Check:
    found = [c for c in checks if c.id == ident]
    assert len(found) == 1, [c.id for c in checks]
    return found[0]


def three(**kw: Any) -> Profile:
    return Profile(
        "three",
        (ProfileModel("tiny"), ProfileModel("tiny2"), ProfileModel("tiny3")),
        keep_alive=KeepAlive.forever(),
        **kw,
    )


TAGS = {
    f"{n}:latest": Installed(f"{n}:latest", 500_000, f"{i:064x}")
    for i, n in enumerate(("tiny", "tiny2", "tiny3"))
}


# -- server, version, config ----------------------------------------------------------------------


def test_a_healthy_server_has_no_failure() -> None:
    checks = run_checks(inp(facts=log_facts(OLLAMA_DEBUG="DEBUG")))
    assert not [c for c in checks if c.status != "ok"], checks
    assert check(checks, "server").summary == "Ollama 0.24.0 answers at http://127.0.0.1:11434"


@pytest.mark.parametrize(
    ("version", "status", "words"),
    [
        ("0.1.30", "fail", "no /api/ps"),
        ("0.5.7", "warn", "lacks 2 features"),
        ("0.9.6", "warn", "lacks 1 feature"),
        ("0.24.0", "ok", "has /api/ps, capabilities and context_length"),
        ("0.0.0", "warn", "not a release"),
    ],
)
def test_features_by_version(version: str, status: str, words: str) -> None:
    c = check(run_checks(inp(version=version)), "features")
    assert c.status == status and words in c.summary
    if version == "0.5.7":
        assert any("capabilities" in e for e in c.evidence)
        assert any("context_length" in e for e in c.evidence)


def test_features_the_answers_lack_count_whatever_the_version() -> None:
    ps = PsSnapshot.from_api(
        {"models": [{"name": "tiny:latest", "expires_at": "2026-11-29T18:05:00Z", "size": 1}]},
        NOW,
    )
    info = {"tiny:latest": ModelInfo("tiny", (), "llama", 512)}
    c = check(run_checks(inp(version="0.24.0", snapshot=ps, model_info=info)), "features")
    assert c.status == "warn" and "lacks 2 features" in c.summary


def test_parse_version() -> None:
    assert parse_version("0.6.4-rc1") == (0, 6, 4)
    assert parse_version("garbage") is None


def test_unknown_config_is_a_warning_with_the_reason() -> None:
    c = check(run_checks(inp(facts=unknown("no `server config` line in x.log"))), "config")
    assert c.status == "warn"
    assert "reason: no `server config` line in x.log" in c.evidence
    assert c.fix is not None and "--server-log" in c.fix


# -- shell versus service --------------------------------------------------------------------------


def test_shell_keep_alive_differing_from_the_server_fails_with_sources_and_fix() -> None:
    facts = log_facts(OLLAMA_KEEP_ALIVE="2562047h47m16.854775807s")
    checks = run_checks(inp(facts=facts, shell_env={"OLLAMA_KEEP_ALIVE": "24h"}))
    c = check(checks, "shell:OLLAMA_KEEP_ALIVE")
    assert c.status == "fail"
    assert "24h in this shell but forever (2562047h47m16.854775807s) on the server" in c.summary
    assert "this shell: OLLAMA_KEEP_ALIVE=24h" in c.evidence
    assert (
        "server: OLLAMA_KEEP_ALIVE=2562047h47m16.854775807s, from the server log "
        "(/var/log/ollama.log line 1, server config)" in c.evidence
    )
    assert c.fix is not None
    assert 'Environment="OLLAMA_KEEP_ALIVE=24h"' in c.fix
    assert "sudo systemctl daemon-reload\n  sudo systemctl restart ollama" in c.fix
    assert c.settings == (("OLLAMA_KEEP_ALIVE", "24h"),)


def test_the_classic_trap_minus_one_in_the_shell_five_minutes_on_the_server() -> None:
    c = check(run_checks(inp(shell_env={"OLLAMA_KEEP_ALIVE": "-1"})), "shell:OLLAMA_KEEP_ALIVE")
    assert "forever (-1) in this shell but 5m (5m0s) on the server" in c.summary


def test_same_meaning_client_side_and_non_ollama_variables_pass() -> None:
    env = {
        "OLLAMA_KEEP_ALIVE": "5m",
        "OLLAMA_HOST": "10.0.0.5:11434",  # the client's: where to find the server
        "OLLAMA_RESIDENT_HOME": "/tmp/x",
        "PATH": "/bin",
    }
    checks = run_checks(inp(shell_env=env))
    c = check(checks, "shell")
    assert c.status == "ok" and "OLLAMA_KEEP_ALIVE match the server" in c.summary


def test_a_non_residency_mismatch_is_a_warning() -> None:
    checks = run_checks(inp(shell_env={"OLLAMA_DEBUG": "1"}))
    assert check(checks, "shell:OLLAMA_DEBUG").status == "warn"


def test_shell_values_cannot_be_compared_when_the_server_is_unknown() -> None:
    checks = run_checks(inp(facts=unknown("nothing"), shell_env={"OLLAMA_KEEP_ALIVE": "-1"}))
    c = check(checks, "shell")
    assert c.status == "warn" and "cannot be compared" in c.summary


def test_environment_facts_compare_against_ollamas_defaults() -> None:
    from ollama_resident.serverfacts import facts_from_environment

    facts = facts_from_environment({}, "`systemctl show ollama.service -p Environment`")
    c = check(
        run_checks(inp(facts=facts, shell_env={"OLLAMA_KEEP_ALIVE": "-1"})),
        "shell:OLLAMA_KEEP_ALIVE",
    )
    assert c.status == "fail"
    assert (
        "server: OLLAMA_KEEP_ALIVE=5m0s (Ollama's default), from not set in "
        "`systemctl show ollama.service -p Environment`" in c.evidence
    )


# -- profile against cap and memory ----------------------------------------------------------------


def test_a_profile_over_the_cap_fails_naming_the_victim() -> None:
    checks = run_checks(
        inp(facts=log_facts(OLLAMA_MAX_LOADED_MODELS="2"), profile=three(), installed=TAGS)
    )
    c = check(checks, "max-loaded")
    assert c.status == "fail"
    assert 'profile "three" has 3 models but the server keeps at most 2 loaded' in c.summary
    assert (
        "from: OLLAMA_MAX_LOADED_MODELS=2, from the server log (/var/log/ollama.log line 1, "
        "server config)" in c.evidence
    )
    # All pinned: the tie goes by digest, and tiny's is the lowest here.
    assert (
        "loading tiny3:latest will probably make Ollama evict tiny:latest (pinned): Ollama "
        "keeps at most "
        "2 models loaded (OLLAMA_MAX_LOADED_MODELS=2)" in c.evidence[1]
    )
    assert c.settings == (("OLLAMA_MAX_LOADED_MODELS", "3"),)


def test_a_profile_within_the_cap_passes_and_a_guessed_cap_only_warns() -> None:
    ok = check(run_checks(inp(profile=three(), installed=TAGS)), "max-loaded")
    assert ok.status == "ok" and "the server keeps up to 3" in ok.summary
    four = Profile("four", tuple(ProfileModel(n) for n in ("a", "b", "c", "d")))
    c = check(run_checks(inp(facts=unknown("nothing"), profile=four)), "max-loaded")
    assert c.status == "warn"


def test_a_profile_larger_than_memory_fails_naming_the_victim() -> None:
    big = {k: replace(v, size=10 * 1024**3) for k, v in TAGS.items()}
    facts = log_facts()  # CPU with 22.9 GiB available
    c = check(run_checks(inp(facts=facts, profile=three(), installed=big)), "memory")
    assert c.status == "fail"
    assert "needs about 32 GB but the server has 24 GB" in c.summary
    assert any("does not fit in 24 GB" in e for e in c.evidence)
    small = check(run_checks(inp(facts=facts, profile=three(), installed=TAGS)), "memory")
    assert small.status == "ok"


def test_num_ctx_above_the_training_context_warns() -> None:
    p = Profile("ctx", (ProfileModel("tiny", num_ctx=8192),))
    info = {"tiny:latest": ModelInfo("tiny", ("completion",), "llama", 512)}
    c = check(run_checks(inp(profile=p, model_info=info)), "num-ctx")
    assert c.status == "warn"
    assert "tiny: num_ctx 8192 > its training context 512 (/api/show)" in c.evidence[0]


def test_a_profile_context_other_than_the_servers_default_warns_of_reloads() -> None:
    p = Profile("ctx", (ProfileModel("llama3.2", num_ctx=2048),))
    info = {"llama3.2:latest": ModelInfo("llama3.2", ("completion",), "llama", 131072)}
    facts = log_facts(OLLAMA_CONTEXT_LENGTH="8192")
    c = check(run_checks(inp(facts=facts, profile=p, model_info=info)), "context-length")
    assert c.status == "warn"
    assert "a request without num_ctx gets 8192 and makes Ollama reload it" in c.evidence[1]
    assert c.settings == (("OLLAMA_CONTEXT_LENGTH", "2048"),)
    same = check(
        run_checks(inp(facts=log_facts(OLLAMA_CONTEXT_LENGTH="2048"), profile=p, model_info=info)),
        "context-length",
    )
    assert same.status == "ok"
    # OLLAMA_CONTEXT_LENGTH 0: the memory-based default from the log (4096 here).
    default = check(run_checks(inp(profile=p, model_info=info)), "context-length")
    assert "gets 4096" in default.evidence[1]


# -- the journal and the guard service -------------------------------------------------------------


def reset(minutes_ago: int, *, by_tool: bool = False) -> Event:
    detail: dict[str, Any] = {"before": "forever", "after": "5m", "confidence": "certain"}
    if by_tool:
        detail["by"] = "ollama-resident"
    return Event(
        NOW - timedelta(minutes=minutes_ago),
        "http://127.0.0.1:11434",
        "tiny:latest",
        "keep_alive_changed",
        "pin_lost",
        detail,
    )


def test_pins_reset_by_clients_suggest_guard_and_a_service() -> None:
    c = check(run_checks(inp(profile=three(), journal=[reset(30), reset(10)])), "pin-resets")
    assert c.status == "warn"
    assert c.summary.startswith("2 keep-alive resets by other clients in the last 24 h")
    assert c.fix is not None
    assert "`ollama-resident guard --profile three`" in c.fix
    assert "service install --profile three" in c.fix


def test_our_own_changes_and_old_ones_are_not_resets() -> None:
    journal = [reset(5, by_tool=True), reset(60 * 25)]
    c = check(run_checks(inp(journal=journal)), "pin-resets")
    assert c.status == "ok" and "no keep-alive reset" in c.summary


@pytest.mark.parametrize(
    ("installed", "running", "status"),
    [(True, True, "ok"), (True, False, "warn"), (False, None, "ok")],
)
def test_guard_service(installed: bool, running: bool | None, status: str) -> None:
    g = GuardService("u.service", "/x/u.service", installed, running, "systemctl --user enable")
    c = check(run_checks(inp(profile=three(), guard_service=g)), "guard-service")
    assert c.status == status
    if not installed:
        assert c.fix is not None and "service install --profile three" in c.fix


# -- log level, exposure, clock -------------------------------------------------------------------


def test_info_log_level_warns_with_the_debug_fix() -> None:
    c = check(run_checks(inp()), "log-level")
    assert c.status == "warn" and "cannot be certain of unload causes" in c.summary
    assert c.fix is not None and 'Environment="OLLAMA_DEBUG=1"' in c.fix
    debug = check(run_checks(inp(facts=log_facts(OLLAMA_DEBUG="DEBUG"))), "log-level")
    assert debug.status == "ok"


def test_all_interfaces_and_any_origin_are_notes() -> None:
    facts = log_facts(OLLAMA_HOST="http://0.0.0.0:11434", OLLAMA_ORIGINS="[http://localhost *]")
    c = check(run_checks(inp(facts=facts)), "exposure")
    assert c.status == "warn"
    assert "listens on all interfaces" in c.summary and "OLLAMA_ORIGINS" in c.summary
    assert c.fix is not None and c.fix.startswith("a note, not a failure")
    # Reached through a proxy (https, another port): only the origins note is left.
    proxied = check(run_checks(inp(facts=facts, url="https://gpu.example/ollama")), "exposure")
    assert "listens on all interfaces" not in proxied.summary
    assert any("a proxy" in e for e in proxied.evidence)


@pytest.mark.parametrize(
    ("offset", "status"),
    [(0.4, "ok"), (-2.5, "ok"), (9.0, "warn"), (-30.0, "warn"), (None, "warn")],
)
def test_clock_offset(offset: float | None, status: str) -> None:
    c = check(run_checks(inp(clock_offset_s=offset)), "clock")
    assert c.status == status
    if offset == 9.0:
        assert "9 s ahead of this machine's" in c.summary


# -- fixes for each service manager ---------------------------------------------------------------


def test_fix_for_each_manager() -> None:
    settings = {"OLLAMA_KEEP_ALIVE": "-1"}
    systemd = fix_text(Manager("systemd", "ollama-gpu.service", "x"), settings)
    assert "/etc/systemd/system/ollama-gpu.service.d/override.conf" in systemd
    assert "sudo systemctl restart ollama-gpu" in systemd
    assert "launchctl setenv OLLAMA_KEEP_ALIVE -1" in fix_text(Manager("launchd", "", ""), settings)
    docker = fix_text(Manager("docker", "llm", ""), settings)
    assert "re-create the container llm with -e OLLAMA_KEEP_ALIVE=-1" in docker
    assert "  environment:\n    - OLLAMA_KEEP_ALIVE=-1" in docker
    shell = fix_text(Manager("shell", "ollama serve", ""), settings)
    assert "OLLAMA_KEEP_ALIVE=-1 ollama serve" in shell
    pointer = fix_text(UNKNOWN, settings)
    assert pointer == "set OLLAMA_KEEP_ALIVE=-1 where the server is started (how: see the end)"


def test_every_fix_gathers_all_settings_once_when_the_manager_is_unknown() -> None:
    facts = log_facts(OLLAMA_MAX_LOADED_MODELS="2")
    checks = run_checks(
        inp(
            facts=facts,
            manager=UNKNOWN,
            shell_env={"OLLAMA_KEEP_ALIVE": "24h"},
            profile=three(),
            installed=TAGS,
        )
    )
    text = every_fix(UNKNOWN, checks)
    assert text is not None
    for line in (
        'Environment="OLLAMA_KEEP_ALIVE=24h"',
        'Environment="OLLAMA_MAX_LOADED_MODELS=3"',
        'Environment="OLLAMA_DEBUG=1"',
        "launchctl setenv OLLAMA_MAX_LOADED_MODELS 3",
        "OLLAMA_KEEP_ALIVE=24h OLLAMA_MAX_LOADED_MODELS=3 OLLAMA_DEBUG=1 ollama serve",
    ):
        assert line in text
    assert every_fix(SYSTEMD, checks) is None


def test_sizes_seen_in_the_journal_count_for_models_not_loaded() -> None:
    def loaded_event(name: str, size: int) -> Event:
        return Event(
            NOW - timedelta(days=2),
            "http://127.0.0.1:11434",
            name,
            "loaded",
            None,
            {"size": size, "confidence": "certain"},
        )

    journal = [loaded_event(f"{n}:latest", 10 * 1000**3) for n in ("tiny", "tiny2", "tiny3")]
    c = check(run_checks(inp(profile=three(), installed=TAGS, journal=journal)), "memory")
    assert c.status == "fail"
    assert "tiny:latest 10 GB (loaded 2026-11-27T18:00+00:00, /api/ps in the journal)" in c.evidence
    assert any("does not fit in 24 GB" in e for e in c.evidence)  # and who would go


def _evicted(model: str, by: str, hours_ago: float, profile: str = "three") -> Event:
    return Event(
        NOW - timedelta(hours=hours_ago),
        "http://127.0.0.1:11434",
        model,
        "unloaded",
        "evicted",
        {"confidence": "likely", "by_models": [by], "action": "apply", "profile": profile},
    )


def test_memory_is_not_ok_when_the_profile_pushed_itself_out() -> None:
    """The trial's case: `ok memory: ... 7.9 GB of 24 GB` right after `apply heavy` failed
    with one of its models pushed out by another."""
    facts = log_facts()
    journal = [_evicted("tiny:latest", "tiny2:latest", 1)]
    c = check(
        run_checks(inp(facts=facts, profile=three(), installed=TAGS, journal=journal)), "memory"
    )
    assert c.status == "warn", c
    assert "its models pushed each other out 1 time in the last 24 h" in c.summary
    assert any(
        "tiny:latest was pushed out by tiny2:latest (`apply three`)" in e for e in c.evidence
    ), c.evidence
    assert c.fix
    # Older than a day, or by a model outside the profile: no evidence against memory.
    old = [_evicted("tiny:latest", "tiny2:latest", 30), _evicted("tiny:latest", "big:latest", 1)]
    quiet = check(
        run_checks(inp(facts=facts, profile=three(), installed=TAGS, journal=old)), "memory"
    )
    assert quiet.status == "ok"
