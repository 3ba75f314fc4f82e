"""Model names as typed, matched to what the server has: installed (/api/tags), loaded (/api/ps).

Two rules, one per problem of issue 11:

- A name that matches nothing installed (nor loaded) is a typo until shown
  otherwise: ``unload --all --except lama3.2`` must not unload llama3.2 with
  the rest. :func:`check_names` raises a UsageError (exit 2) before anything is
  sent, with the close matches.
- Names differ, files do not: ``ollama cp tiny coder-alias`` gives tiny's file a
  second name, and Ollama serves ``coder-alias`` from tiny's runner (runners are
  keyed by the model file, ``server/sched.go``), listed in /api/ps as
  ``tiny:latest``. A typed name not listed is matched to a loaded model by its
  digest from /api/tags; the client keeps these aliases so every later /api/ps
  read (:meth:`PsSnapshot.find`) finds the runner under either name.

/api/tags is read only when a typed name is not listed by name in /api/ps, so
``pin`` of a model already pinned costs no more than before.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ollama_resident.client import OllamaClient
from ollama_resident.errors import UsageError
from ollama_resident.models import PsSnapshot, canonical_name

__all__ = ["check_names", "close_matches", "installed_digests", "unknown_name_error"]


def installed_digests(tags: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """``/api/tags`` as canonical name -> (name as listed, digest without ``sha256:``).

    >>> installed_digests([{"name": "Tiny:latest", "digest": "sha256:ab"}])
    {'tiny:latest': ('Tiny:latest', 'ab')}
    """
    out: dict[str, tuple[str, str]] = {}
    for entry in tags:
        name = str(entry.get("name") or entry.get("model") or "")
        if name:
            digest = str(entry.get("digest") or "").removeprefix("sha256:")
            out[canonical_name(name)] = (name, digest)
    return out


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates closest to ``name``, compared by their canonical forms.

    >>> close_matches("lama3.2", ["llama3.2:latest", "tiny:latest", "qwen2.5:14b"])
    ['llama3.2:latest']
    """

    def key(text: str) -> str:  # ":latest" on both sides would make any two names alike
        return canonical_name(text).removesuffix(":latest")

    by_key: dict[str, str] = {}
    for c in candidates:
        by_key.setdefault(key(c), c)
    wanted = key(name)
    # Typing slips first (up to two swapped, missing, extra or wrong letters, one in a name
    # under 5: "tyni2" for "tiny2", which difflib's ratio alone misses), then difflib's.
    slips = [k for k in by_key if _edit_distance(wanted, k) <= (1 if len(wanted) < 5 else 2)]
    alike = difflib.get_close_matches(wanted, list(by_key), n=n, cutoff=0.75)
    keys = list(dict.fromkeys([*sorted(slips, key=lambda k: _edit_distance(wanted, k)), *alike]))
    return [by_key[k] for k in keys[:n]]


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and
    swaps of two neighbours each cost 1.

    >>> _edit_distance("tyni2", "tiny2"), _edit_distance("lama3.2", "llama3.2")
    (2, 1)
    """
    if abs(len(a) - len(b)) > 2:
        return 3  # more than any rule here accepts
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def unknown_name_error(
    names: Sequence[str], candidates: Iterable[str], where: str, role: str
) -> UsageError:
    """The exit-2 error for names that match nothing on the server, with close matches."""
    candidates = list(candidates)
    quoted = ", ".join(f'"{n}"' for n in names)
    one = len(names) == 1
    message = (
        f"{role} {quoted} {'matches' if one else 'match'} no model installed or loaded on "
        f"{where}; nothing was sent"
    )
    suggestions = [m for n in names for m in close_matches(n, candidates)]
    if suggestions:
        hint = "did you mean " + " or ".join(f'"{s}"' for s in dict.fromkeys(suggestions))
        hint += "? (`ollama list` shows what is installed)"
    else:
        hint = f"check the name with `ollama list`, or install it with `ollama pull {names[0]}`"
    return UsageError(message, hint=hint)


def check_names(
    client: OllamaClient,
    names: Sequence[str],
    snapshot: PsSnapshot,
    *,
    role: str = "model",
    strict: bool = True,
) -> PsSnapshot:
    """Every name must be loaded or installed; returns ``snapshot`` knowing the aliases.

    A name not listed in ``snapshot`` is looked up in /api/tags (read once, only
    then): installed, its digest becomes an alias (kept on ``client`` for later
    reads too); not installed, a UsageError naming it and the close matches
    (``strict=False``: left alone, for ``guard``, which retries until it is pulled).
    """
    missing = [n for n in dict.fromkeys(names) if snapshot.find(n) is None]
    if not missing:
        return snapshot
    installed = installed_digests(client.tags())
    unknown = [n for n in missing if canonical_name(n) not in installed]
    if unknown and strict:
        candidates = [name for name, _digest in installed.values()] + list(snapshot.names)
        raise unknown_name_error(unknown, candidates, client.display_url, role)
    aliases = dict(snapshot.aliases)
    for n in missing:
        if canonical_name(n) not in installed:
            continue  # not strict: left to fail (or be pulled) later
        _name, digest = installed[canonical_name(n)]
        if digest:
            aliases[canonical_name(n)] = digest
    client.aliases.update(aliases)
    return snapshot._replace(aliases=aliases)
