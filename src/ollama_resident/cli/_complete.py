"""Shell completion: profile names, journal models, installed and loaded models.

Every Tab press runs the program again, so each of these answers fast and never
fails: profile names come from the profiles file, the models ``why`` can tell
about from the journal, and model names from the server through a short-lived
cache in the state dir (``completion-cache.json``). The server gets a fifth of a
second; when it is down or hangs, the last list it gave is used and it is not
asked again for a while, so the next Tab press does not wait either.
Names already on the command line are not offered again (``pin tiny <TAB>``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Set
from typing import Any

import typer

__all__ = [
    "installed_models",
    "journal_models",
    "loaded_models",
    "profile_names",
]

CACHE_FILE = "completion-cache.json"
INSTALLED_TTL_S = 60.0  # /api/tags changes when someone pulls or removes a model
LOADED_TTL_S = 5.0  # /api/ps changes with every load
RETRY_AFTER_FAILURE_S = 15.0  # a dead or hung server is not asked again before this
SERVER_BUDGET_S = 0.2  # to connect, and again to answer


def _given(ctx: typer.Context | None) -> set[str]:
    """Model names already typed for this command, as Ollama names them."""
    names: set[str] = set()
    values = [v for v in (ctx.params.values() if ctx is not None else ()) if v]
    typed = [n for v in values if isinstance(v, (list, tuple)) for n in v if isinstance(n, str)]
    if typed:
        from ollama_resident.models import canonical_name

        names.update(canonical_name(n) for n in typed if n)
    return names


def _offer(names: Iterable[str], incomplete: str, given: Set[str] = frozenset()) -> list[str]:
    from ollama_resident.textsafe import is_printable

    seen: set[str] = set()
    out = []
    for name in names:
        if not name or not name.startswith(incomplete) or name in seen:
            continue
        if not is_printable(name):
            continue  # control characters: the shell would print them raw
        if given:
            from ollama_resident.models import canonical_name

            if canonical_name(name) in given:
                continue
        seen.add(name)
        out.append(name)
    return sorted(out)


# -- profiles and the journal: local files ---------------------------------------------------------


def profile_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Names in the profiles file (``--profiles`` given before the command counts).

    Only the table names are read (no validation: that is for the command itself,
    and costs a Tab press 50 ms).
    """
    try:
        import sys

        from ollama_resident import paths

        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

        option = ctx.find_root().params.get("profiles") if ctx is not None else None
        path = paths.profiles_path(option if isinstance(option, str) else None)
        with open(path, "rb") as fh:
            table = tomllib.load(fh).get("profiles")
        return _offer(table if isinstance(table, dict) else (), incomplete)
    except Exception:  # a Tab press never shows an error
        return []


def journal_models(incomplete: str) -> list[str]:
    """Models the journal (and its last rotated file) has events for: what ``why`` can tell."""
    try:
        from ollama_resident import paths

        current = paths.journal_path()
        names: set[str] = set()
        for path in (current, current.with_name(current.name + ".1")):
            try:
                with open(path, "rb") as fh:
                    for line in fh:
                        if b'"model"' not in line:
                            continue
                        try:
                            model = json.loads(line).get("model")
                        except ValueError:
                            continue
                        if isinstance(model, str):
                            names.add(model)
            except FileNotFoundError:
                continue
        return _offer(names, incomplete)
    except Exception:
        return []


# -- the server, through a cache -------------------------------------------------------------------


def installed_models(ctx: typer.Context, incomplete: str) -> list[str]:
    """Installed models (``/api/tags``) not already given."""
    return _offer(_server_names(ctx, "installed"), incomplete, _given(ctx))


def loaded_models(ctx: typer.Context, incomplete: str) -> list[str]:
    """Loaded models (``/api/ps``) not already given."""
    return _offer(_server_names(ctx, "loaded"), incomplete, _given(ctx))


def _server_names(ctx: typer.Context | None, kind: str) -> list[str]:
    try:
        from ollama_resident.cli._common import resolve_host

        option = ctx.params.get("host") if ctx is not None else None
        host = resolve_host(option if isinstance(option, str) else None)
        return _cached(host.display, host, kind)  # never the credentials
    except Exception:
        return []


def _cache_path() -> Any:
    from ollama_resident import paths

    return paths.state_dir() / CACHE_FILE


def _read_cache() -> dict[str, Any]:
    try:
        with open(_cache_path(), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(data: dict[str, Any]) -> None:
    """Replace the cache file whole (a temporary file renamed over it), without fsync.

    A cache lost in a crash costs one request; an fsync costs a Tab press tens of
    milliseconds on a busy disk. Any error leaves the old file, and the next Tab
    press asks the server again.
    """
    import os

    path = _cache_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _cached(key: str, host: Any, kind: str) -> list[str]:
    now = time.time()
    cache = _read_cache()
    entry = cache.get(key) if isinstance(cache.get(key), dict) else None
    entry = dict(entry or {})
    ttl = LOADED_TTL_S if kind == "loaded" else INSTALLED_TTL_S
    names = entry.get(kind)
    fresh = isinstance(names, list) and now - float(entry.get(f"{kind}_at", 0)) < ttl
    resting = now - float(entry.get("failed_at", 0)) < RETRY_AFTER_FAILURE_S
    if isinstance(names, list) and (fresh or resting):
        return [str(n) for n in names]
    if resting:
        return []
    fetched = _ask(host, kind)
    if fetched is None:
        entry["failed_at"] = now
    else:
        entry[kind], entry[f"{kind}_at"] = fetched, now
        entry.pop("failed_at", None)
    cache[key] = entry
    _write_cache(cache)
    if fetched is not None:
        return fetched
    return [str(n) for n in names] if isinstance(names, list) else []


def _ask(host: Any, kind: str) -> list[str] | None:
    """The names from the server, or None when it does not answer within the budget."""
    from ollama_resident.client import model_names

    return model_names(host, "loaded" if kind == "loaded" else "installed", SERVER_BUDGET_S)
