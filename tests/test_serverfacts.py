"""Server facts from a server's log or environment: every value with its source (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_resident import serverlog
from ollama_resident.durations import MAX_DURATION_NS
from ollama_resident.factsources import _port_of, facts_from_source, parse_systemd_environment
from ollama_resident.serverfacts import (
    ServerFacts,
    env_keep_alive,
    facts_from_environment,
    facts_from_records,
    log_level,
    plan_limits,
    same_setting,
    unknown,
)
from ollamalog import CPU, gin, gpu, start_block, write_log


def facts(lines: list[str], origin: str = "server.log") -> ServerFacts:
    return facts_from_records(serverlog.iter_records(lines), origin)


def test_the_newest_start_block_wins_with_every_value_and_its_line() -> None:
    old = start_block(11434, env={"OLLAMA_MAX_LOADED_MODELS": "5"}, version="0.23.0")
    new = start_block(
        11434,
        env={"OLLAMA_MAX_LOADED_MODELS": "2", "OLLAMA_KEEP_ALIVE": "2562047h47m16.854775807s"},
        at="2026-11-29T18:00:00",
    )
    f = facts([*old, gin(), *new, gin()])
    assert f.known and f.from_log
    assert f.version == "0.24.0"
    assert f.listening == "127.0.0.1:11434"
    assert f.started_at is not None and f.started_at.hour == 18
    setting = f.setting("OLLAMA_MAX_LOADED_MODELS")
    assert setting is not None and setting.raw == "2"
    # The source names the log and the line of the newest `server config`.
    assert setting.source == "the server log (server.log line 8, server config)"
    assert f.max_loaded().value == 2 and f.max_loaded().known
    ka = f.keep_alive()
    assert ka is not None and ka.kind == "forever"


def test_a_list_with_spaces_stays_one_value() -> None:
    f = facts(start_block(11434, env={"OLLAMA_ORIGINS": "[http://a https://b *]"}))
    origins = f.setting("OLLAMA_ORIGINS")
    assert origins is not None and origins.raw == "[http://a https://b *]"
    remotes = f.setting("OLLAMA_REMOTES")
    assert remotes is not None and remotes.raw == "[ollama.com]"
    assert f.setting("http_proxy") is None  # only OLLAMA_* settings are kept


def test_automatic_cap_is_three_per_gpu_or_three_on_cpu() -> None:
    cpu = facts(start_block(11434, devices=[CPU]))
    assert cpu.max_loaded().value == 3
    assert "3 on CPU" in cpu.max_loaded().source
    two = facts(start_block(11434, devices=[gpu(0), gpu(1)]))
    assert two.gpu_count() == 2
    assert two.max_loaded().value == 6
    assert "x 2 GPUs" in two.max_loaded().source


def test_memory_is_gpu_memory_when_there_are_gpus_else_system_memory() -> None:
    g = facts(start_block(11434, devices=[gpu(0, available="10.0 GiB"), gpu(1, available="5 GiB")]))
    assert g.memory().value == 15 * 1024**3
    load = (
        'time=2026-11-29T16:40:00.000Z level=INFO source=server.go:1 msg="system memory" '
        'total="23.5 GiB" free="20.0 GiB" free_swap="0 B"'
    )
    c = facts([*start_block(11434), load])
    assert c.memory().value == 20 * 1024**3
    assert "system memory free at the last load" in c.memory().source
    assert not c.memory().known  # memory is always an estimate


def test_old_go_log_style_config_line() -> None:
    line = (
        "2025/01/21 16:42:13 routes.go:1187: INFO server config "
        'env="map[OLLAMA_DEBUG:false OLLAMA_KEEP_ALIVE:5m0s OLLAMA_MAX_LOADED_MODELS:0 '
        'OLLAMA_ORIGINS:[http://localhost app://*]]"'
    )
    f = facts([line])
    assert f.known
    assert f.log_level() == "INFO"
    # No device lines in old logs: the automatic cap is assumed, and said to be.
    assert f.max_loaded().value == 3 and not f.max_loaded().known


def test_wrapped_lines_journalctl_and_docker() -> None:
    block = start_block(11434, env={"OLLAMA_MAX_LOADED_MODELS": "4"})
    journal = [f"Nov 29 16:37:41 myhost ollama[1301]: {line}" for line in block]
    assert facts(journal).max_loaded().value == 4
    docker = [f"2026-11-29T16:37:41.676123456Z {line}" for line in block]
    assert facts(docker).max_loaded().value == 4


def test_no_server_config_is_unknown_with_the_reason() -> None:
    f = facts([gin(), gin()], "journalctl -u ollama")
    assert not f.known
    assert f.reason == "no `server config` line in journalctl -u ollama"
    cap = f.max_loaded()
    assert (cap.value, cap.known) == (3, False)
    assert cap.source.startswith("assumed")
    assert f.setting("OLLAMA_KEEP_ALIVE") is None


def test_environment_facts_fall_back_to_ollama_defaults() -> None:
    f = facts_from_environment(
        {"OLLAMA_KEEP_ALIVE": "-1", "PATH": "/bin"}, "the environment of process 42"
    )
    ka = f.setting("OLLAMA_KEEP_ALIVE")
    assert ka is not None and not ka.default and ka.source == "the environment of process 42"
    cap = f.setting("OLLAMA_MAX_LOADED_MODELS")
    assert cap is not None and cap.default and cap.raw == "0"
    assert cap.source == "not set in the environment of process 42"
    assert f.setting("PATH") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "5m"),
        ("-1", "forever"),
        ("'-1'", "forever"),
        ("24h", "24h"),
        ("300", "5m"),  # integer seconds
        ("90", "1m30s"),
        ("1d", "5m"),  # not understood: silently the default
        ("0", "unload"),
        ("2562047h47m16.854775807s", "forever"),
    ],
)
def test_keep_alive_by_envconfig_rules(raw: str, expected: str) -> None:
    assert env_keep_alive(raw).describe() == expected


def test_shell_and_server_values_compare_by_meaning() -> None:
    assert same_setting("OLLAMA_KEEP_ALIVE", "-1", "2562047h47m16.854775807s")
    assert same_setting("OLLAMA_KEEP_ALIVE", "5m", "5m0s")
    assert not same_setting("OLLAMA_KEEP_ALIVE", "24h", "2562047h47m16.854775807s")
    assert same_setting("OLLAMA_DEBUG", "1", "DEBUG")
    assert not same_setting("OLLAMA_DEBUG", "1", "INFO")
    assert same_setting("OLLAMA_FLASH_ATTENTION", "1", "true")
    assert same_setting("OLLAMA_ORIGINS", "app://*", "[http://localhost app://*]")
    assert not same_setting("OLLAMA_ORIGINS", "*", "[http://localhost app://*]")
    assert log_level("2") == "TRACE"


def test_plan_limits_options_override_the_facts() -> None:
    f = facts(start_block(11434, env={"OLLAMA_MAX_LOADED_MODELS": "2"}))
    cap, mem = plan_limits(f, None, None)
    assert (cap.value, cap.known) == (2, True)
    assert mem.value == round(22.9 * 1024**3)
    assert mem.source == "system memory available at start, from the server log (server.log line 5)"
    cap, mem = plan_limits(f, 5, 1000)
    assert (cap.value, cap.source, mem.value, mem.source) == (5, "--max-loaded 5", 1000, "--memory")
    cap, _ = plan_limits(unknown("nothing"), 0, None)
    assert cap.value is None  # 0: no cap


def test_the_newest_start_in_a_long_log_read_from_its_end(tmp_path: Path) -> None:
    from ollama_resident import logsource

    filler = [gin() for _ in range(2000)]
    newest = [*start_block(11434, env={"OLLAMA_MAX_LOADED_MODELS": "2"}), *filler]
    path = write_log(
        tmp_path / "server.log",
        start_block(11434, env={"OLLAMA_MAX_LOADED_MODELS": "7"}),
        filler,
        newest,
    )
    # Read from the middle (as a big log is), the first block left out: line numbers stay
    # those of the file.
    tail = len("\n".join(newest).encode()) + 1000
    f = facts_from_source(logsource.from_file(path, max_bytes=tail))
    setting = f.setting("OLLAMA_MAX_LOADED_MODELS")
    assert setting is not None and setting.raw == "2"
    assert setting.source.endswith("line 2007, server config)")


def test_port_of_ollama_host_values() -> None:
    assert _port_of(None) == 11434
    assert _port_of("0.0.0.0") == 11434
    assert _port_of("0.0.0.0:8080") == 8080
    assert _port_of("http://127.0.0.1:36849") == 36849
    assert _port_of("[::]:11500") == 11500
    assert _port_of("https://example.com") == 443


def test_systemd_environment_words() -> None:
    env = parse_systemd_environment('OLLAMA_HOST=0.0.0.0 "OLLAMA_KEEP_ALIVE=-1" PATH=/bin')
    assert env == {"OLLAMA_HOST": "0.0.0.0", "OLLAMA_KEEP_ALIVE": "-1", "PATH": "/bin"}
    assert env_keep_alive(env["OLLAMA_KEEP_ALIVE"]).ns == MAX_DURATION_NS


def fake_proc(
    root: Path, pid: int, argv: list[str], env: dict[str, str], cgroup: str, log: Path | None
) -> Path:
    """A /proc entry as Linux shows an `ollama serve` process."""
    entry = root / str(pid)
    (entry / "fd").mkdir(parents=True)
    (entry / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (entry / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()))
    (entry / "cgroup").write_text(cgroup)
    if log is not None:
        (entry / "fd" / "2").symlink_to(log)
    return root


def test_the_serve_process_its_port_its_unit_and_the_file_it_logs_to(tmp_path: Path) -> None:
    from ollama_resident.factsources import _manager_from_cgroup, find_serve_processes, gather
    from ollama_resident.host import parse_host

    log = write_log(
        tmp_path / "serve.log", start_block(11500, env={"OLLAMA_MAX_LOADED_MODELS": "2"})
    )
    proc = tmp_path / "proc"
    fake_proc(
        proc,
        4302,
        ["/usr/local/bin/ollama", "serve"],
        {"OLLAMA_HOST": "127.0.0.1:11500", "OLLAMA_KEEP_ALIVE": "-1"},
        "0::/system.slice/ollama.service\n",
        log,
    )
    fake_proc(proc, 77, ["/usr/bin/python3", "x.py"], {}, "", None)  # not a server
    [p] = find_serve_processes(proc)
    assert (p.pid, p.port, p.log_file) == (4302, 11500, str(log))
    assert p.environ is not None and p.environ["OLLAMA_KEEP_ALIVE"] == "-1"
    manager = _manager_from_cgroup(p)
    assert manager is not None and (manager.kind, manager.name) == ("systemd", "ollama.service")

    got = gather(parse_host("127.0.0.1:11500"), version="0.24.0", proc=proc)
    assert got.manager.kind == "systemd"
    cap = got.facts.max_loaded()
    assert (cap.value, cap.known) == (2, True)
    assert f"{log} (where process 4302 writes)" in cap.source

    # Without a log, the process environment is the source (defaults for the rest).
    (proc / "4302" / "fd" / "2").unlink()
    got = gather(parse_host("127.0.0.1:11500"), version="0.24.0", proc=proc)
    ka = got.facts.setting("OLLAMA_KEEP_ALIVE")
    assert ka is not None and ka.raw == "-1"
    assert ka.source == "the environment of process 4302 (`/usr/local/bin/ollama serve`)"


def test_an_unknown_cap_says_why_inline_not_by_pointing_at_doctor() -> None:
    """The trial's case: doctor's own output said "`ollama-resident doctor` says why"."""
    limit = unknown("no server log found; no `ollama serve` process").max_loaded()
    assert not limit.known
    assert "ollama-resident doctor" not in limit.source
    assert limit.source.endswith(
        "the server's own setting was not found: no server log found; no `ollama serve` process"
    )
