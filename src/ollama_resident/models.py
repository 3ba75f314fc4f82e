"""What Ollama reports, as immutable records, and the pure rules for reading it.

Parsing is tolerant of what versions differ in: a field a server version does
not send gets a neutral default (or None where absent means unknown), so the
tool works against old and new servers alike. It is strict about the shape
every version has: a reply of another shape (``{"models": "oops"}``) raises
:class:`ShapeError`, which the client reports as not Ollama's answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from ollama_resident.durations import is_forever, parse_timestamp, seconds_until

__all__ = [
    "ModelInfo",
    "PsSnapshot",
    "RunningModel",
    "ShapeError",
    "canonical_name",
    "human_bytes",
    "name_starts_with",
    "names_match",
    "processor_text",
    "tags_from_api",
    "version_from_api",
]

_DEFAULT_REGISTRY = "registry.ollama.ai"
_DEFAULT_NAMESPACE = "library"


def canonical_name(name: str) -> str:
    """The short name Ollama lists in ``/api/ps``: ``llama3.2`` -> ``llama3.2:latest``.

    The default registry and the ``library`` namespace are dropped, a missing
    tag becomes ``latest``, and case is folded as Ollama compares names
    case-insensitively.

    >>> canonical_name("llama3.2")
    'llama3.2:latest'
    >>> canonical_name("registry.ollama.ai/library/Qwen2.5:14B")
    'qwen2.5:14b'
    >>> canonical_name("myns/coder")
    'myns/coder:latest'
    >>> canonical_name("registry.ollama.ai/myns/coder:7b")
    'myns/coder:7b'
    >>> canonical_name("registry.ollama.ai/library/myns/coder:7b")
    'myns/coder:7b'
    >>> canonical_name("host.example:5000/ns/m:q4")
    'host.example:5000/ns/m:q4'
    """
    text = name.strip()
    # A tag is a ':' after the last '/', so a registry port is never mistaken for one.
    slash = text.rfind("/")
    if ":" not in text[slash + 1 :]:
        text += ":latest"
    parts = text.split("/")
    # registry.ollama.ai/library/ns/model: never Ollama's own spelling (it writes
    # registry.ollama.ai/ns/model), but one log writer did; the name is ns/model.
    if len(parts) == 4 and [p.lower() for p in parts[:2]] == [_DEFAULT_REGISTRY, "library"]:
        parts = parts[2:]
    if len(parts) == 3 and parts[0].lower() == _DEFAULT_REGISTRY:
        parts = parts[1:]
    if len(parts) == 2 and parts[0].lower() == _DEFAULT_NAMESPACE:
        parts = parts[1:]
    return "/".join(parts).lower()


def names_match(a: str, b: str) -> bool:
    """True when two names as users type them refer to the same model.

    The one rule for comparing names, everywhere: ``tiny``, ``Tiny:latest`` and
    ``registry.ollama.ai/library/tiny:latest`` are one model.

    >>> names_match("tiny", "Tiny:latest"), names_match("tiny", "tiny:1b")
    (True, False)
    """
    return canonical_name(a) == canonical_name(b)


def name_starts_with(name: str, prefix: str) -> bool:
    """``ps PREFIX``: the same model as ``prefix``, or a name that starts with it.

    Compared by the rule of :func:`names_match` (case folded, the default
    registry and namespace dropped), so ``ps tiny`` lists ``Tiny:latest``.

    >>> name_starts_with("Tiny:latest", "tiny"), name_starts_with("tinyllama:1b", "tiny")
    (True, True)
    >>> name_starts_with("llama3.2:latest", "registry.ollama.ai/library/llama3.2")
    True
    >>> name_starts_with("qwen2.5:14b", "tiny")
    False
    """
    if names_match(name, prefix):
        return True
    short = canonical_name(prefix).removesuffix(":latest")
    if ":" in prefix.rpartition("/")[2]:
        short = canonical_name(prefix)  # the user typed a tag: keep it as typed
    return canonical_name(name).startswith(short)


def human_bytes(n: int) -> str:
    """Ollama's ``format.HumanBytes``: decimal units, integers from 10 up.

    >>> human_bytes(675328), human_bytes(4_700_000_000), human_bytes(20_000_000_000)
    ('675 KB', '4.7 GB', '20 GB')
    >>> human_bytes(5_000_000), human_bytes(999)
    ('5 MB', '999 B')
    """
    units = [(1000**4, "TB"), (1000**3, "GB"), (1000**2, "MB"), (1000, "KB")]
    factor, unit = next(((f, u) for f, u in units if n >= f), (1, "B"))
    if factor == 1:
        return f"{n} B"
    value = n / factor
    if value >= 10:
        return f"{int(value)} {unit}"
    rounded = round(value, 1)
    if rounded == int(rounded):
        return f"{int(rounded)} {unit}"
    return f"{rounded:.1f} {unit}"


def processor_text(size: int, size_vram: int) -> str:
    """The PROCESSOR column of ``ollama ps`` (contract §3.3), first matching rule.

    >>> processor_text(100, 0), processor_text(100, 100), processor_text(100, 52)
    ('100% CPU', '100% GPU', '48%/52% CPU/GPU')
    >>> processor_text(0, 5), processor_text(10, 20)
    ('Unknown', 'Unknown')
    """
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = round((size - size_vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


class ShapeError(ValueError):
    """A reply whose JSON has another shape than Ollama's; the text says what is wrong."""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _model_list(data: Mapping[str, Any], what: str) -> list[Mapping[str, Any]]:
    """``data["models"]``: an array of objects that each have a name (null: empty).

    >>> _model_list({"models": "oops"}, "/api/ps")
    Traceback (most recent call last):
    ...
    ollama_resident.models.ShapeError: "models" is a string, not an array
    """
    if "models" not in data:
        raise ShapeError('no "models" array')
    items = data["models"]
    if items is None:
        return []
    if not isinstance(items, list):
        raise ShapeError(f'"models" is {_kind(items)}, not an array')
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ShapeError(f'"models"[{i}] is {_kind(item)}, not an object')
        name = item.get("name") or item.get("model")
        if not isinstance(name, str) or not name:
            raise ShapeError(f'"models"[{i}] has no name')
    return items


def tags_from_api(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``GET /api/tags``: the installed models, each an object with a name."""
    return [dict(m) for m in _model_list(data, "/api/tags")]


def version_from_api(data: Mapping[str, Any]) -> str:
    """``GET /api/version``: the version string ("" when a build left it empty)."""
    version = data.get("version")
    if not isinstance(version, str):
        raise ShapeError(f'"version" is {_kind(version)}, not a string')
    return version


# The records below are NamedTuples, immutable like frozen dataclasses: a dataclass costs
# about 1 ms of start-up to define (it compiles its methods), a NamedTuple a tenth of that,
# and every `ps` defines these.
_NO_DETAILS: Mapping[str, Any] = MappingProxyType({})
_NO_ALIASES: Mapping[str, str] = MappingProxyType({})


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _opt_int(value: Any) -> int | None:
    """An integer the server sent, or None when it sent none (absent is not 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RunningModel(NamedTuple):
    """One entry of ``GET /api/ps``."""

    name: str
    model: str
    digest: str
    size: int
    size_vram: int
    context_length: int | None  # None: the server did not say (before Ollama 0.6.x)
    expires_at_raw: str
    expires_at: datetime | None
    details: Mapping[str, Any] = _NO_DETAILS

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> RunningModel:
        name = str(data.get("name") or data.get("model") or "")
        raw = str(data.get("expires_at") or "")
        try:
            expires: datetime | None = parse_timestamp(raw)
        except ValueError:
            expires = None
        details = data.get("details")
        return cls(
            name=name,
            model=str(data.get("model") or name),
            digest=str(data.get("digest") or "").removeprefix("sha256:"),
            size=_int(data.get("size")),
            size_vram=_int(data.get("size_vram")),
            context_length=_opt_int(data.get("context_length")),
            expires_at_raw=raw,
            expires_at=expires,
            details=dict(details) if isinstance(details, Mapping) else {},
        )

    @property
    def short_id(self) -> str:
        return self.digest[:12]

    @property
    def processor(self) -> str:
        return processor_text(self.size, self.size_vram)

    @property
    def on_cpu_fraction(self) -> float:
        """Share of the model held in system memory (0.0 = all on GPU)."""
        if self.size <= 0 or self.size_vram >= self.size:
            return 0.0
        return (self.size - self.size_vram) / self.size

    def is_pinned(self, now: datetime) -> bool:
        return self.expires_at is not None and is_forever(self.expires_at, now)

    def expires_in(self, now: datetime) -> float | None:
        """Seconds until the keep-alive runs out; None when pinned or unknown.

        Negative when the deadline has passed but the model is still listed:
        it is busy (a request outlived the deadline) or stopping (unloaded
        while a request runs). One snapshot cannot tell these apart.
        """
        if self.expires_at is None or self.is_pinned(now):
            return None
        return seconds_until(self.expires_at, now)

    def matches(self, name: str) -> bool:
        return names_match(self.name, name) or names_match(self.model, name)


class PsSnapshot(NamedTuple):
    """The loaded models at one moment, in the server's order (longest-lived first)."""

    models: tuple[RunningModel, ...]
    taken_at: datetime
    # Other names of loaded models' files: canonical name -> digest (`ollama cp`), so
    # that find() matches a name /api/ps does not list to the runner that serves it.
    aliases: Mapping[str, str] = _NO_ALIASES

    @classmethod
    def from_api(cls, data: Mapping[str, Any], taken_at: datetime) -> PsSnapshot:
        """``GET /api/ps``; ShapeError when ``models`` is not an array of named objects."""
        models = tuple(RunningModel.from_api(item) for item in _model_list(data, "/api/ps"))
        return cls(models=models, taken_at=taken_at)

    def find(self, name: str) -> RunningModel | None:
        """The loaded model ``name`` refers to: by name, else by the digest of an alias.

        Ollama serves every name of one model file from one runner, listed under the
        name it was loaded with (``server/sched.go``, runners keyed by model path).
        """
        for model in self.models:
            if model.matches(name):
                return model
        digest = self.aliases.get(canonical_name(name)) if self.aliases else None
        if digest:
            for model in self.models:
                if model.digest == digest:
                    return model
        return None

    def filter_prefix(self, prefix: str | None) -> PsSnapshot:
        """Rows whose name starts with ``prefix`` (compared as :func:`names_match` does)."""
        if not prefix:
            return self
        kept = tuple(m for m in self.models if name_starts_with(m.name, prefix))
        return PsSnapshot(models=kept, taken_at=self.taken_at, aliases=self.aliases)

    @property
    def names(self) -> Sequence[str]:
        return [m.name for m in self.models]


class ModelInfo(NamedTuple):
    """What ``POST /api/show`` says about an installed model."""

    name: str
    capabilities: tuple[str, ...]
    family: str
    context_length: int | None  # the training context, from model_info
    capabilities_known: bool = True  # False: a server before 0.6.4 sent none

    @property
    def embedding_only(self) -> bool:
        return "embedding" in self.capabilities and "completion" not in self.capabilities

    @classmethod
    def from_api(cls, name: str, data: Mapping[str, Any]) -> ModelInfo:
        """``POST /api/show``; ShapeError for fields of the wrong kind.

        ``capabilities`` is absent before Ollama 0.6.4 (contract §2.6): then it
        is an empty tuple and :attr:`capabilities_known` is False.
        """
        caps = data.get("capabilities") or []
        info = data.get("model_info") or {}
        details = data.get("details") or {}
        for key, value, kind in (
            ("capabilities", caps, list),
            ("model_info", info, Mapping),
            ("details", details, Mapping),
        ):
            if not isinstance(value, kind):
                raise ShapeError(f'"{key}" is {_kind(value)}')
        arch = ""
        if isinstance(info, Mapping):
            arch = str(info.get("general.architecture") or "")
        if not arch and isinstance(details, Mapping):
            arch = str(details.get("family") or "")
        ctx: int | None = None
        if isinstance(info, Mapping):
            value = info.get(f"{arch}.context_length") if arch else None
            if value is None:
                value = next(
                    (v for k, v in info.items() if str(k).endswith(".context_length")), None
                )
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                ctx = value
        return cls(
            name=name,
            capabilities=tuple(str(c) for c in caps if isinstance(c, str)),
            family=arch,
            context_length=ctx,
            capabilities_known="capabilities" in data,
        )
