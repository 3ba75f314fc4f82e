"""Ollama-shaped server start blocks for tests (the lines a 0.24 server writes at start).

Written in the project's own form from what a real server prints (``server config`` with
every ``OLLAMA_*`` setting as Go's map print, ``Listening on``, one ``inference compute``
per device, ``vram-based default context``, and ``system memory`` at each load).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

# What a 0.24 server prints for settings nobody set (its keys, sorted as Go sorts them).
DEFAULT_ENV: dict[str, str] = {
    "CUDA_VISIBLE_DEVICES": "",
    "HTTPS_PROXY": "",
    "OLLAMA_CONTEXT_LENGTH": "0",
    "OLLAMA_DEBUG": "INFO",
    "OLLAMA_FLASH_ATTENTION": "false",
    "OLLAMA_GPU_OVERHEAD": "0",
    "OLLAMA_HOST": "http://127.0.0.1:11434",
    "OLLAMA_KEEP_ALIVE": "5m0s",
    "OLLAMA_KV_CACHE_TYPE": "",
    "OLLAMA_LOAD_TIMEOUT": "5m0s",
    "OLLAMA_MAX_LOADED_MODELS": "0",
    "OLLAMA_MAX_QUEUE": "512",
    "OLLAMA_MODELS": "/usr/share/ollama/.ollama/models",
    "OLLAMA_NOHISTORY": "false",
    "OLLAMA_NUM_PARALLEL": "1",
    "OLLAMA_ORIGINS": "[http://localhost https://localhost http://127.0.0.1 app://*]",
    "OLLAMA_REMOTES": "[ollama.com]",
    "OLLAMA_SCHED_SPREAD": "false",
    "http_proxy": "",
}

CPU = {"id": "cpu", "library": "cpu", "name": "cpu", "total": "23.5 GiB", "available": "22.9 GiB"}


def gpu(n: int, total: str = "24.0 GiB", available: str = "23.1 GiB") -> dict[str, str]:
    return {
        "id": f"GPU-{n:08x}",
        "library": "CUDA",
        "name": f"CUDA{n}",
        "total": total,
        "available": available,
    }


def _q(value: str) -> str:
    return f'"{value}"' if (" " in value or not value or '"' in value) else value


def start_block(
    port: int,
    *,
    env: Mapping[str, str] | None = None,
    version: str = "0.24.0",
    devices: Sequence[Mapping[str, str]] = (CPU,),
    at: str = "2026-11-29T16:37:41",
    listen: str | None = None,
) -> list[str]:
    """The lines of one server start, ``env`` overriding the defaults as the server prints them."""
    settings = {**DEFAULT_ENV, "OLLAMA_HOST": f"http://127.0.0.1:{port}", **(env or {})}
    body = " ".join(f"{k}:{v}" for k, v in sorted(settings.items()))
    env_text = f"map[{body}]".replace('"', '\\"')
    lines = [
        f'time={at}.676Z level=INFO source=routes.go:1802 msg="server config" env="{env_text}"',
        f'time={at}.678Z level=INFO source=images.go:517 msg="total blobs: 4"',
        f"time={at}.679Z level=INFO source=routes.go:1864 "
        f'msg="Listening on {listen or f"127.0.0.1:{port}"} (version {version})"',
        f'time={at}.681Z level=INFO source=runner.go:67 msg="discovering available GPUs..."',
    ]
    for d in devices:
        filter_id = "" if d["id"] == "cpu" else f" filter_id={d['id']}"
        lines.append(
            f'time={at}.734Z level=INFO source=types.go:60 msg="inference compute" id={d["id"]}'
            f'{filter_id} library={d["library"]} compute="" name={d["name"]} '
            f'description={d["name"]} libdirs=ollama driver="" pci_id="" type="" '
            f"total={_q(d['total'])} available={_q(d['available'])}"
        )
    total_vram = "0 B" if all(d["id"] == "cpu" for d in devices) else devices[0]["total"]
    lines.append(
        f"time={at}.734Z level=INFO source=routes.go:1914 "
        f'msg="vram-based default context" total_vram={_q(total_vram)} default_num_ctx=4096'
    )
    return lines


def gin(at: str = "2026/11/29 - 16:37:42", path: str = "/api/ps") -> str:
    return f'[GIN] {at} | 200 |     219.792µs |       127.0.0.1 | GET      "{path}"'


def write_log(path: Path, *blocks: Sequence[str]) -> Path:
    path.write_text("\n".join(line for block in blocks for line in block) + "\n")
    return path
