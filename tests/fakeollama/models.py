"""The catalogue of installed models: ``FakeModel`` (name, family, capabilities, sizes, digest)
and ``DEFAULT_MODELS`` (the tiny models carry the digests and sizes of real transcripts).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from .names import _Name, _parse_name

# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass
class FakeModel:
    """An installed model. ``size`` is the runtime size (``/api/ps``), ``file_size`` the size
    on disk (``/api/tags``). ``digest`` defaults to a sha256 derived from the name."""

    name: str
    family: str = "llama"
    capabilities: tuple[str, ...] = ("completion",)
    context_length: int = 512
    size: int = 675_328
    file_size: int = 506_922
    digest: str = ""
    parameter_size: str = "124K"
    quantization_level: str = "unknown"
    format: str = "gguf"
    embedding_length: int = 64
    _parsed: _Name = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = _parse_name(self.name)
        if not parsed.valid():
            raise ValueError(f"invalid model name: {self.name!r}")
        self._parsed = parsed
        self.capabilities = tuple(self.capabilities)
        if not self.digest:
            self.digest = hashlib.sha256(f"fakeollama:{parsed.short()}".encode()).hexdigest()

    @property
    def runner_key(self) -> str:
        """The model file: what runners are keyed by (every name of one file shares one)."""
        return self.digest

    @property
    def short_name(self) -> str:
        return self._parsed.short()

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self._parsed.key()

    @property
    def full_name(self) -> str:
        return self._parsed.full()


DEFAULT_MODELS: list[FakeModel] = [
    FakeModel(
        "tiny:latest",
        digest="a09825f870c31be8ce11111462e5b72fcae75284a25649bea6220a647bd9cba0",
    ),
    FakeModel(
        "tiny2:latest",
        digest="792e1977a21ce3ee08e30b6f11fadffe2d8735da3ba25a8a1abd3d1ab278cf9a",
    ),
    FakeModel(
        "tiny3:latest",
        digest="31b9425a82d85d8fec458ca03fc6a5335b819c6e49d51a777edc628723dd862a",
    ),
    FakeModel(
        "tiny-embed:latest",
        family="bert",
        capabilities=("embedding",),
        size=5_298_688,
        file_size=429_352,
        digest="d476eaee16a343538623457d6d4180aa57e15b831233038d72f08a37e13905c0",
        parameter_size="106K",
    ),
    FakeModel(
        "llama3.2:latest",
        capabilities=("completion", "tools"),
        context_length=131_072,
        size=3_442_000_000,
        file_size=2_019_393_189,
        parameter_size="3.2B",
        quantization_level="Q4_K_M",
        embedding_length=3072,
    ),
    FakeModel(
        "qwen2.5:14b",
        family="qwen2",
        capabilities=("completion", "tools"),
        context_length=32_768,
        size=10_180_000_000,
        file_size=8_988_124_069,
        parameter_size="14.8B",
        quantization_level="Q4_K_M",
        embedding_length=5120,
    ),
    FakeModel(
        "nomic-embed-text:latest",
        family="nomic-bert",
        capabilities=("embedding",),
        context_length=2048,
        size=577_000_000,
        file_size=274_302_450,
        parameter_size="137M",
        quantization_level="F16",
        embedding_length=768,
    ),
    FakeModel(
        "myns/coder:7b",
        family="qwen2",
        capabilities=("completion", "tools", "insert"),
        context_length=32_768,
        size=5_900_000_000,
        file_size=4_683_087_332,
        parameter_size="7.6B",
        quantization_level="Q4_K_M",
        embedding_length=3584,
    ),
]


def _parameter_count(size: str) -> int:
    m = re.fullmatch(r"([0-9.]+)\s*([KMBT]?)", size.strip(), re.IGNORECASE)
    if not m:
        return 0
    scale = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)
