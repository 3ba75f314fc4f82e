"""Model names as Ollama parses them (``types/model/name.go``): host/namespace/model:tag,
validity rules, and the short display form (``tiny:latest``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .durations import _is_digit

# --------------------------------------------------------------------------------------------
# Model names (types/model/name.go)
# --------------------------------------------------------------------------------------------

_DEFAULT_HOST = "registry.ollama.ai"
_DEFAULT_NAMESPACE = "library"
_DEFAULT_TAG = "latest"
_MISSING = "!MISSING!"


@dataclass(frozen=True)
class _Name:
    host: str
    namespace: str
    model: str
    tag: str

    def valid(self) -> bool:
        return (
            _valid_part("host", self.host)
            and _valid_part("namespace", self.namespace)
            and _valid_part("model", self.model)
            and _valid_part("tag", self.tag)
        )

    def key(self) -> tuple[str, str, str, str]:
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())

    def short(self) -> str:
        """``DisplayShortest``: drop the default host and namespace, keep the tag."""
        prefix = ""
        if self.host.lower() != _DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != _DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"

    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"


def _cut_last(s: str, sep: str) -> tuple[str, str] | None:
    i = s.rfind(sep)
    if i < 0:
        return None
    return (s[:i] or _MISSING, s[i + len(sep) :] or _MISSING)


def _parse_name(s: str) -> _Name:
    """``model.ParseName``: split host/namespace/model:tag and fill the defaults."""
    host = namespace = tag = ""
    if s.rfind(":") > s.rfind("/"):
        cut = _cut_last(s, ":")
        assert cut is not None
        s, tag = cut
    cut = _cut_last(s, "/")
    if cut is None:
        model = s
    else:
        s, model = cut
        cut = _cut_last(s, "/")
        if cut is None:
            namespace = s
        else:
            s, namespace = cut
            scheme, sep, rest = s.partition("://")
            host = rest if sep else scheme
    return _Name(host or _DEFAULT_HOST, namespace or _DEFAULT_NAMESPACE, model, tag or _DEFAULT_TAG)


def _alnum_or_underscore(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z") or _is_digit(ch)


def _valid_part(kind: str, s: str) -> bool:
    limit = 350 if kind == "host" else 80
    if not 1 <= len(s.encode()) <= limit:
        return False
    for i, ch in enumerate(s):
        if i == 0:
            if not _alnum_or_underscore(ch):
                return False
            continue
        if ch in "_-":
            continue
        if ch == ".":
            if kind == "namespace":
                return False
            continue
        if ch == ":":
            if kind != "host":
                return False
            continue
        if not _alnum_or_underscore(ch):
            return False
    return True


def canonical_name(name: str) -> str:
    """The name Ollama displays for ``name`` (``tiny`` -> ``tiny:latest``); ValueError if invalid.

    >>> canonical_name("registry.ollama.ai/library/tiny"), canonical_name("myns/coder:7b")
    ('tiny:latest', 'myns/coder:7b')
    """
    parsed = _parse_name(name)
    if not parsed.valid():
        raise ValueError(f"invalid model name: {name!r}")
    return parsed.short()
