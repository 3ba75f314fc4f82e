"""serverlog: Ollama's log lines under every wrapper met in the wild (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ollama_resident.serverlog import (
    LogReader,
    blob_digest,
    env_map,
    go_fields,
    iter_records,
    listening,
    parse_size,
    unwrap,
)

BLOB = "/usr/share/ollama/.ollama/models/blobs/sha256-" + "ab" * 32
TIMER = (
    "time=2026-11-29T16:37:28.022Z level=DEBUG source=sched.go:309 "
    'msg="runner with non-zero duration has gone idle, adding timer" '
    'runner.name=registry.ollama.ai/library/tiny:latest runner.size="664.0 KiB" '
    f'runner.vram="0 B" runner.parallel=1 runner.pid=4128 runner.model={BLOB} '
    "runner.num_ctx=4096 duration=5m0s"
)
GIN = (
    '[GIN] 2026/11/29 - 16:37:28 | 200 |    40.58909ms |       127.0.0.2 | POST     "/api/generate"'
)
UTC = timezone.utc


def one(line: str, **kw: object) -> object:
    recs = list(iter_records([line], **kw))  # type: ignore[arg-type]
    assert len(recs) == 1
    return recs[0]


def test_slog_line_with_quoted_values_and_the_runner_group() -> None:
    rec = one(TIMER)
    assert rec.kind == "slog"
    assert rec.level == "DEBUG"
    assert rec.msg == "runner with non-zero duration has gone idle, adding timer"
    assert rec.time == datetime(2026, 11, 29, 16, 37, 28, 22000, tzinfo=UTC)
    assert rec.attrs["runner.name"] == "registry.ollama.ai/library/tiny:latest"
    assert rec.attrs["runner.size"] == "664.0 KiB"
    assert rec.attrs["runner.pid"] == "4128"
    assert rec.attrs["duration"] == "5m0s"
    assert blob_digest(rec.attrs["runner.model"]) == "ab" * 32


def test_bare_message_and_quoted_keys_and_empty_values() -> None:
    rec = one(
        "time=2026-11-29T16:37:17.153Z level=INFO source=runner.go:895 msg=load "
        'request="{Operation:commit LoraPath:[] Parallel:1 KvSize:2048 KvCacheType: MainGPU:0}"'
    )
    assert rec.msg == "load"
    assert go_fields(rec.attrs["request"])["KvSize"] == "2048"
    assert go_fields(rec.attrs["request"])["KvCacheType"] == ""
    rec = one(
        'time=2026-11-29T16:37:17.120Z level=INFO source=server.go:532 msg="loading model" '
        '"model layers"=3 requested=-1 compute="" esc="a \\"q\\" \\u00b5"'
    )
    assert rec.attrs["model layers"] == "3"
    assert rec.attrs["compute"] == ""
    assert rec.attrs["esc"] == 'a "q" µ'


def test_gin_line_start_is_end_minus_latency_and_micro_sign() -> None:
    rec = one(GIN)
    g = rec.gin
    assert g is not None and rec.kind == "gin"
    assert (g.method, g.path, g.client, g.status) == ("POST", "/api/generate", "127.0.0.2", 200)
    assert g.end == datetime(2026, 11, 29, 16, 37, 28, tzinfo=UTC)
    assert g.start == g.end - timedelta(seconds=0.04058909)
    assert g.is_model_request
    micro = one(
        "[GIN] 2026/11/29 - 16:37:17 | 200 |     191.479µs |       127.0.0.1 | GET      "
        '"/api/ps?verbose=1"'
    )
    assert micro.gin.latency_s == pytest.approx(191.479e-6)
    assert micro.gin.path == "/api/ps?verbose=1"
    assert not micro.gin.is_model_request
    long = one(
        '[GIN] 2026/11/29 - 16:40:00 | 200 |          1m2s |      192.0.2.10 | POST     "/api/chat"'
    )
    assert long.gin.latency_s == 62
    assert long.gin.client == "192.0.2.10"
    assert long.gin.start == datetime(2026, 11, 29, 16, 38, 58, tzinfo=UTC)


def test_gin_time_takes_the_zone_of_the_slog_lines() -> None:
    recs = list(
        iter_records(
            [
                "time=2026-11-29T22:09:25.736+05:30 level=INFO source=routes.go:1802 "
                'msg="server config" env="map[]"',
                "[GIN] 2026/11/29 - 22:09:26 | 404 |    1.025213ms |       127.0.0.1 | POST     "
                '"/api/generate"',
            ]
        )
    )
    ist = timezone(timedelta(hours=5, minutes=30))
    assert recs[0].time == datetime(2026, 11, 29, 22, 9, 25, 736000, tzinfo=ist)
    assert recs[1].time == datetime(2026, 11, 29, 22, 9, 26, tzinfo=ist)
    assert recs[1].gin.status == 404
    # Before any slog line, the zone given is used.
    alone = one(GIN, tz=ist)
    assert alone.time.utcoffset() == timedelta(hours=5, minutes=30)


@pytest.mark.parametrize(
    "wrapped",
    [
        "Nov 29 16:37:28 myhost ollama[1234]: {}",
        "Nov  9 16:37:28 myhost ollama[1234]: {}",
        "2026-11-29T16:37:28+0000 myhost ollama[1234]: {}",
        "2026-11-29T16:37:28+00:00 myhost ollama[1234]: {}",
        "Nov 29 16:37:28.123456 myhost ollama[1234]: {}",
        "2026-11-29T16:37:28.123456789Z {}",
        "ollama-1  | {}",
        "ollama-1  | 2026-11-29T16:37:28.123456789Z {}",
        "{}\r",
        "\x1b[0m{}",
    ],
)
def test_every_wrapper_yields_the_same_records(wrapped: str) -> None:
    raw = [one(TIMER), one(GIN)]
    got = list(iter_records([wrapped.format(TIMER) + "\n", wrapped.format(GIN) + "\n"]))
    assert [(r.kind, r.msg, r.time, r.attrs.get("duration")) for r in got] == [
        (r.kind, r.msg, r.time, r.attrs.get("duration")) for r in raw
    ]
    assert got[1].gin == raw[1].gin


def test_journal_prefix_keeps_ident_and_pid() -> None:
    text, prefix = unwrap("Nov 29 16:37:36 myhost systemd[1]: Stopping Ollama Service...")
    assert text == "Stopping Ollama Service..."
    assert prefix is not None and (prefix.source, prefix.ident, prefix.pid) == (
        "journal",
        "systemd",
        1,
    )
    _, iso = unwrap("2026-11-29T16:37:36+0000 myhost ollama[1301]: x")
    assert iso is not None and iso.pid == 1301
    assert iso.time == datetime(2026, 11, 29, 16, 37, 36, tzinfo=UTC)
    _, docker = unwrap("2026-11-29T16:37:36.5Z x")
    assert docker is not None and docker.source == "docker"


def test_gin_coloured_on_a_tty() -> None:
    line = (
        "[GIN] 2026/11/29 - 16:37:28 |\x1b[97;42m 200 \x1b[0m|    40.58909ms |"
        '       127.0.0.2 |\x1b[97;46m POST    \x1b[0m "/api/generate"'
    )
    g = one(line).gin
    assert g is not None and (g.status, g.method, g.client) == (200, "POST", "127.0.0.2")


def test_truncated_last_line_and_interleaved_llama_cpp_output() -> None:
    lines = [
        "llama_model_loader: - kv   0:    general.architecture str = llama",
        "load_tensors: CPU model buffer size = 0.40 MiB" + TIMER,
        'time=2026-11-29T16:37:28.030Z level=DEBUG source=sched.go:330 msg="runner expired ev',
    ]
    recs = list(iter_records(lines, start_line=10))
    assert [r.line_no for r in recs] == [10, 11, 12]
    assert recs[0].kind == "text"
    assert recs[1].kind == "slog" and recs[1].attrs["duration"] == "5m0s"
    assert recs[2].kind == "slog" and recs[2].msg == "runner expired ev"


def test_old_go_log_server_config() -> None:
    rec = one(
        "2025/01/21 16:42:13 routes.go:1187: INFO server config "
        'env="map[OLLAMA_DEBUG:false OLLAMA_KEEP_ALIVE:5m0s OLLAMA_MAX_LOADED_MODELS:0]"'
    )
    assert rec.kind == "golog" and rec.level == "INFO" and rec.msg == "server config"
    assert env_map(rec.attrs["env"]) == {
        "OLLAMA_DEBUG": "false",
        "OLLAMA_KEEP_ALIVE": "5m0s",
        "OLLAMA_MAX_LOADED_MODELS": "0",
    }
    assert rec.time == datetime(2025, 1, 21, 16, 42, 13, tzinfo=UTC)


def test_values() -> None:
    assert listening("Listening on 127.0.0.1:41917 (version 0.24.0)") == (
        "127.0.0.1:41917",
        "0.24.0",
    )
    assert listening("Listening on [::]:11434") == ("[::]:11434", None)
    assert listening("server config") is None
    assert parse_size("23.5 GiB") == round(23.5 * 1024**3)
    assert blob_digest("no blob here") is None


def test_garbage_never_raises() -> None:
    lines = [
        "",
        "time=",
        "time=x level=",
        "[GIN] nonsense",
        "2025/13/45 99:99:99 x: INFO y",
        "\x00\xff",
    ]
    recs = list(iter_records(lines))
    assert len(recs) == len(lines)
    assert recs[1].time is None


@pytest.mark.parametrize("wrap", ["{}", "Nov 29 16:37:28 h ollama[7]: {}", "ollama-1  | {}"])
def test_block_scan_finds_the_same_records_as_line_by_line(wrap: str) -> None:
    lines = [
        "llama_model_loader: - kv 0",
        TIMER,
        '[GIN] 2026/11/29 - 16:37:28 | 200 |     191.479µs |       127.0.0.1 | GET      "/api/ps"',
        GIN,
        TIMER.replace("adding timer", "something else"),
        '2025/01/21 16:42:13 routes.go:1187: INFO server config env="map[X:1]"',
        "",
        TIMER,
    ]
    text = "\n".join(wrap.format(line) for line in lines)
    wanted = {"runner with non-zero duration has gone idle, adding timer", "server config"}
    by_line = list(LogReader(messages=wanted, gin="post").lines(text.split("\n"), 5))
    by_block = list(LogReader(messages=wanted, gin="post").block(text, 5))
    assert [(r.line_no, r.kind, r.msg) for r in by_block] == [
        (r.line_no, r.kind, r.msg) for r in by_line
    ]
    assert [r.line_no for r in by_block] == [6, 8, 10, 12]


def test_importing_compiles_nothing() -> None:
    import subprocess
    import sys

    code = "import re, ollama_resident.serverlog as s\nprint(s._p.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
