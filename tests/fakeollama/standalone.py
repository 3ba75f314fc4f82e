"""Standalone use: ``python tests/fakeollama --port 11434 --preload tiny:-1`` serves until
Ctrl-C (``--help`` lists the options).
"""

from __future__ import annotations

import argparse
import re
import signal
import time
from typing import Any

from . import FakeOllama
from .durations import GoDurationError, parse_go_duration

# --------------------------------------------------------------------------------------------
# Standalone use
# --------------------------------------------------------------------------------------------


def _split_preload(spec: str) -> tuple[str, Any]:
    """``MODEL[:KEEPALIVE]`` -> (model, JSON-style keep_alive); ``tiny:latest`` has none."""
    name, sep, tail = spec.rpartition(":")
    if sep and name:
        if re.fullmatch(r"[+-]?[0-9]+(\.[0-9]*)?", tail):
            return name, float(tail) if "." in tail else int(tail)
        try:
            parse_go_duration(tail)
        except GoDurationError:
            pass
        else:
            return name, tail
    return spec, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fakeollama", description="Serve a fake Ollama API until Ctrl-C."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--max-loaded", type=int, default=3)
    parser.add_argument("--memory-budget", type=int, default=None, help="bytes")
    parser.add_argument("--gpu-memory", type=int, default=0, help="bytes of VRAM (0 = CPU only)")
    parser.add_argument("--keep-alive", default="5m", help="server default (OLLAMA_KEEP_ALIVE)")
    parser.add_argument("--num-ctx", type=int, default=4096, help="default context")
    parser.add_argument("--load-delay", type=float, default=0.05, help="seconds")
    parser.add_argument("--unload-delay", type=float, default=0.02, help="seconds")
    parser.add_argument("--token-delay", type=float, default=0.002, help="seconds per token")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--utc-offset-minutes", type=int, default=0)
    parser.add_argument("--server-version", default="0.24.0")
    parser.add_argument("--list-loading", action="store_true", help="list models while loading")
    parser.add_argument("--no-ps", action="store_true", help="act as a server older than 0.1.38")
    parser.add_argument(
        "--log",
        metavar="FILE",
        default=None,
        help="append Ollama-shaped server log lines to FILE (for `why`/`doctor --server-log`)",
    )
    parser.add_argument(
        "--debug-log", action="store_true", help="log at DEBUG, as OLLAMA_DEBUG=1 does"
    )
    parser.add_argument(
        "--preload",
        action="append",
        default=[],
        metavar="MODEL:KEEPALIVE",
        help="load a model at start (repeatable), e.g. tiny:-1 or llama3.2:5m",
    )
    args = parser.parse_args(argv)
    fake = FakeOllama(
        max_loaded=args.max_loaded,
        memory_budget=args.memory_budget,
        gpu_memory=args.gpu_memory,
        default_keep_alive=args.keep_alive,
        default_num_ctx=args.num_ctx,
        load_delay=args.load_delay,
        unload_delay=args.unload_delay,
        token_delay=args.token_delay,
        version=args.server_version,
        utc_offset_minutes=args.utc_offset_minutes,
        list_loading=args.list_loading,
        ps_supported=not args.no_ps,
        host=args.host,
        port=args.port,
        latency=args.latency,
        log_path=args.log,
        log_debug=args.debug_log,
    )

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    fake.start()
    try:
        for spec in args.preload:
            model, keep_alive = _split_preload(spec)
            fake.preload(model, keep_alive)
        print(f"fake Ollama {fake.version} listening on {fake.url}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0
