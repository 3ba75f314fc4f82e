"""Options shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "HostOpt",
    "HostsOpt",
    "JsonOpt",
    "MetricsHostOpt",
    "MetricsPortOpt",
    "QuietOpt",
    "TimeoutOpt",
    "WaitOpt",
]

HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host",
        help="Ollama server, e.g. 127.0.0.1:11434 or https://gpu-box/ollama. "
        "Default: a profile's host, then $OLLAMA_HOST, then 127.0.0.1:11434.",
        show_default=False,
        metavar="URL",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print nothing but errors: no tables, notes, progress or warnings. Data asked "
        "for with --json or --jsonl is still printed; the exit code tells the rest.",
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        help="Wait up to SECONDS for the server to answer before starting "
        "(for startup scripts); exit 3 if it never does.",
        metavar="SECONDS",
        min=0,
        show_default=False,
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Seconds to wait for quick requests (ps, show); loads never time out.",
        metavar="SECONDS",
        min=0.1,
    ),
]
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        help="Serve Prometheus metrics at http://127.0.0.1:PORT/metrics while running "
        "(0: any free port). See docs/metrics.md.",
        metavar="PORT",
        min=0,
        max=65535,
        show_default=False,
    ),
]
MetricsHostOpt = Annotated[
    str,
    typer.Option(
        "--metrics-host",
        help="Address the metrics are served on; 0.0.0.0 or :: for every interface.",
        metavar="ADDR",
    ),
]
HostsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--host",
        help="Ollama server, e.g. 127.0.0.1:11434 or https://gpu-box/ollama; repeat it to "
        "work on several at once. Default: a profile's host, then $OLLAMA_HOST, then "
        "127.0.0.1:11434.",
        show_default=False,
        metavar="URL",
    ),
]
