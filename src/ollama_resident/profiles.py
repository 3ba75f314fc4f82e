"""Profiles: named sets of models in a TOML file, validated with messages that point home.

The file (documented in ``docs/profiles.md``)::

    [profiles.coding]
    keep_alive = "forever"            # default for this profile's models
    host = "http://gpu-box:11434"     # optional; --host still wins
    exclusive = false                 # optional: apply unloads models not in the set
    models = [
      "qwen2.5-coder:14b",
      { name = "nomic-embed-text", keep_alive = "30m" },
      { name = "llama3.2", num_ctx = 8192 },
    ]

- :func:`validate` is pure: a parsed TOML document in, a :class:`ProfilesFile` or a
  :class:`ProfileError` out, naming the file, the line (found by searching the raw
  text when it is given), the profile, the model and the key.
- :func:`load` reads the file; a missing file is an empty set of profiles, and a file
  that does not parse is reported and never touched.
- :func:`update` is the one way to change the file: lock, read, change, validate,
  write atomically, unlock. Two concurrent ``profile add`` therefore both land.
  tomli-w does not keep comments, so a file that had any is copied to ``.bak`` first.

No typer, rich or httpx; tomli-w is imported only when writing.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ollama_resident.atomic import LockTimeout, atomic_write, file_lock
from ollama_resident.durations import DurationError, KeepAlive, parse_keep_alive
from ollama_resident.errors import ProfileError
from ollama_resident.models import canonical_name

if TYPE_CHECKING:
    from ollama_resident.residency import LoadRequest

__all__ = [
    "MODEL_KEYS",
    "PROFILE_KEYS",
    "Profile",
    "ProfileModel",
    "ProfilesFile",
    "WriteResult",
    "add_model",
    "backup_path",
    "has_comments",
    "keep_alive_text",
    "load",
    "load_text",
    "remove_model",
    "remove_profile",
    "resolve",
    "save",
    "set_profile",
    "to_toml",
    "to_toml_dict",
    "unknown_profile",
    "update",
    "validate",
    "validate_model_name",
    "validate_profile_name",
]

PROFILE_KEYS = ("keep_alive", "host", "exclusive", "models")
MODEL_KEYS = ("name", "keep_alive", "num_ctx")
_MAX_NAME = 64
_MAX_NUM_CTX = 2**31 - 1  # Ollama reads num_ctx into a Go int32-sized field in llama.cpp
_EDIT_HINT = (
    "fix it by hand or with `ollama-resident profile edit`; "
    "ollama-resident never writes over a file it cannot read"
)


# -- the data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileModel:
    """One model of a profile; ``None`` means "not set here" (inherit or omit)."""

    name: str
    keep_alive: KeepAlive | None = None
    num_ctx: int | None = None


@dataclass(frozen=True)
class Profile:
    """A named set of models, with defaults for all of them."""

    name: str
    models: tuple[ProfileModel, ...] = ()
    keep_alive: KeepAlive | None = None  # None: the server's default on a new load
    host: str | None = None
    exclusive: bool = False

    def keep_alive_for(self, model: ProfileModel) -> KeepAlive | None:
        """The model's own keep-alive, else the profile's, else None (server default)."""
        return model.keep_alive if model.keep_alive is not None else self.keep_alive

    def find(self, name: str) -> ProfileModel | None:
        key = canonical_name(name)
        return next((m for m in self.models if canonical_name(m.name) == key), None)

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    def load_requests(self) -> list[LoadRequest]:
        """What ``preload``/``pin``/``apply`` send: one request per model, in file order."""
        from ollama_resident.residency import LoadRequest

        return [LoadRequest(m.name, self.keep_alive_for(m), m.num_ctx) for m in self.models]


@dataclass(frozen=True)
class ProfilesFile:
    """Every profile in one file, in file order."""

    path: Path
    profiles: dict[str, Profile] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.profiles)

    def get(self, name: str) -> Profile:
        """The profile, or a ProfileError that lists the known names."""
        profile = self.profiles.get(name)
        if profile is None:
            raise unknown_profile(self, name)
        return profile


def unknown_profile(pf: ProfilesFile, name: str) -> ProfileError:
    """The error for a name that is not in the file, with the names that are."""
    known = pf.names
    if not known:
        exists = pf.path.exists()
        return ProfileError(
            str(pf.path),
            f'no profile named "{name}": '
            + ("the file has no profiles" if exists else "the file does not exist yet"),
            hint=f"create it with `ollama-resident profile add {name} MODEL` or, from what is "
            f"loaded now, `ollama-resident profile save {name}`",
        )
    close = difflib.get_close_matches(name, known, n=1)
    hint = "known profiles: " + ", ".join(known)
    if close:
        hint += f' (did you mean "{close[0]}"?)'
    return ProfileError(str(pf.path), f'no profile named "{name}"', hint=hint)


def keep_alive_text(value: KeepAlive) -> str:
    """How a keep-alive is written to the file: "forever", "30m", "1h30m"."""
    return value.describe()


# -- finding lines in the raw text -----------------------------------------------------------


def _split_dotted(text: str) -> list[str] | None:
    """``profiles."a.b" . c`` -> ['profiles', 'a.b', 'c']; None if it is not a dotted key."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return None
        if text[i] in "\"'":
            quote = text[i]
            end = text.find(quote, i + 1)
            if end < 0:
                return None
            parts.append(text[i + 1 : end])
            i = end + 1
        else:
            m = re.match(r"[A-Za-z0-9_-]+", text[i:])
            if m is None:
                return None
            parts.append(m.group(0))
            i += m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return parts
        if text[i] != ".":
            return None
        i += 1


_HEADER = re.compile(r"\s*\[(\[?)([^\[\]]*)\]\]?\s*(#.*)?")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEYLINE = re.compile(rf"\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")


class _Locator:
    """Best-effort line numbers (1-based) for keys and values of a file that parsed.

    It reads headers, ``key =`` lines and quoted strings, which is all a profiles
    file uses; when it cannot tell, it returns None and the message goes without.
    Built in one pass (the table each line belongs to is kept per line), so every
    lookup is linear in the file at worst and a large file never costs a square.
    """

    def __init__(self, text: str | None) -> None:
        self.lines = text.splitlines() if text else []
        self.headers: list[tuple[int, list[str]]] = []
        self._header_at: dict[int, list[str]] = {}
        self._header_lines: list[int] = []
        self._prefix: list[list[str]] = []  # the table each line belongs to
        prefix: list[str] = []
        for i, line in enumerate(self.lines):
            m = _HEADER.fullmatch(line) if line.lstrip().startswith("[") else None
            if m is not None:
                keys = _split_dotted(m.group(2))
                if keys is not None:
                    self.headers.append((i, keys))
                    self._header_at[i] = keys
                    self._header_lines.append(i)
                    prefix = keys
            self._prefix.append(prefix)

    def _key_at(self, i: int) -> list[str] | None:
        m = _KEYLINE.match(self.lines[i])
        return _split_dotted(m.group(1)) if m else None

    def _full_key(self, i: int) -> list[str] | None:
        key = self._key_at(i)
        return None if key is None else self._prefix[i] + key

    def _next_header(self, i: int) -> int:
        """The first header line after line ``i``, or the end of the file."""
        import bisect

        k = bisect.bisect_right(self._header_lines, i)
        return self._header_lines[k] if k < len(self._header_lines) else len(self.lines)

    def top_key(self, key: str) -> int | None:
        for i in range(len(self.lines)):
            for path in (self._header_at.get(i), self._full_key(i)):
                if path and path[0] == key:
                    return i + 1
        return None

    def profile_span(self, name: str) -> tuple[int, int] | None:
        """0-based [start, end) of the lines that define profile ``name``."""
        for line, keys in self.headers:
            if keys == ["profiles", name]:
                return line, self._next_header(line)
        # `[profiles]` with `name = {...}`, or a dotted `profiles.name.models = [...]`.
        for i in range(len(self.lines)):
            header = self._header_at.get(i)
            path = header if header is not None else self._full_key(i)
            if path is not None and path[:2] == ["profiles", name]:
                return i, self._next_header(i)
        return None

    def profile(self, name: str) -> int | None:
        span = self.profile_span(name)
        return None if span is None else span[0] + 1

    def profile_key(self, name: str, key: str) -> int | None:
        span = self.profile_span(name)
        if span is None:
            return None
        for i in range(*span):
            full = self._full_key(i)
            if full is not None and full[:3] == ["profiles", name, key]:
                return i + 1
            if full is not None and full[:2] == ["profiles", name] and len(full) == 2:
                return i + 1  # an inline table: the whole profile is on this line
        return span[0] + 1

    def model(self, profile: str, value: str, occurrence: int) -> int | None:
        """The line of the ``occurrence``-th (0-based) quoted ``value`` after ``models``."""
        start = self.profile_key(profile, "models")
        span = self.profile_span(profile)
        if start is None or span is None:
            return None
        quoted = (f'"{value}"', f"'{value}'")
        seen = 0
        for i in range(start - 1, span[1]):
            line = self.lines[i]
            for q in quoted:
                pos = line.find(q)
                while pos >= 0:
                    if seen == occurrence:
                        return i + 1
                    seen += 1
                    pos = line.find(q, pos + 1)
        return start


# -- validation --------------------------------------------------------------------------------


def _at(method: Callable[..., int | None], *args: Any) -> Callable[[_Locator], int | None]:
    """A line lookup to run only if an error is raised: ``_at(_Locator.profile, name)``."""
    return lambda where: method(where, *args)


class _Ctx:
    """Builds ProfileErrors for one file: location, line, hint."""

    def __init__(self, path: str | os.PathLike[str], text: str | None) -> None:
        self.path = str(path)
        self._text = text
        self._where: _Locator | None = None

    @property
    def where(self) -> _Locator:
        """The line finder, built only when an error needs a line."""
        if self._where is None:
            self._where = _Locator(self._text)
        return self._where

    def error(
        self,
        message: str,
        *,
        location: str | None,
        line: Callable[[_Locator], int | None] | None,
        hint: str | None = None,
    ) -> ProfileError:
        """``line`` finds the line from the locator; it runs only here, on an error."""
        found = line(self.where) if line is not None else None
        return ProfileError(self.path, message, line=found, location=location, hint=hint)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _unknown_key_hint(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key.replace("-", "_"), allowed, n=1, cutoff=0.6)
    text = "allowed keys: " + ", ".join(allowed)
    return f'did you mean "{close[0]}"? ({text})' if close else text


def validate_profile_name(name: str) -> str | None:
    """None when ``name`` can be a profile name, else what is wrong with it."""
    if not name.strip():
        return "a profile name cannot be empty"
    if len(name) > _MAX_NAME:
        return f"a profile name has at most {_MAX_NAME} characters"
    # Any printable text is fine (service definitions quote it for their format), but
    # not a name that reads as an option, hides in whitespace, or breaks a line.
    if name != name.strip() or name.startswith("-") or not name.isprintable():
        return (
            f'invalid profile name {name!r}: no leading "-", no surrounding spaces, '
            "no control characters"
        )
    return None


def validate_model_name(name: str) -> str | None:
    """None when ``name`` can be a model name, else what is wrong with it."""
    if not name.strip():
        return "the model name is empty"
    if any(c.isspace() for c in name.strip()):
        return f'invalid model name "{name}": model names have no spaces'
    return None


def _keep_alive(value: object) -> KeepAlive:
    """A keep-alive from TOML: a string as typed on the command line, or a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DurationError(
            f'must be a string such as "30m" or "forever" (or a number of seconds), '
            f"not {_type_name(value)}"
        )
    text = value if isinstance(value, str) else repr(value)
    parsed = parse_keep_alive(text)
    if parsed.kind == "unload":
        raise DurationError(
            f"keep-alive {text!s} would unload the model as soon as it is idle; a profile keeps "
            'models loaded: use a window such as "30m", or "forever"'
        )
    return parsed


def _profile(ctx: _Ctx, name: str, data: object) -> Profile:
    loc = f"profiles -> {name}"
    problem = validate_profile_name(name)
    if problem is not None:
        raise ctx.error(problem, location=loc, line=_at(_Locator.profile, name))
    if not isinstance(data, dict):
        raise ctx.error(
            f"a profile must be a table ([profiles.{name}]), not {_type_name(data)}",
            location=loc,
            line=_at(_Locator.profile, name),
        )
    for key in data:
        if key not in PROFILE_KEYS:
            raise ctx.error(
                f'unknown key "{key}"',
                location=loc,
                line=_at(_Locator.profile_key, name, key),
                hint=_unknown_key_hint(key, PROFILE_KEYS),
            )

    keep_alive: KeepAlive | None = None
    if "keep_alive" in data:
        try:
            keep_alive = _keep_alive(data["keep_alive"])
        except DurationError as exc:
            raise ctx.error(
                str(exc),
                location=f"{loc} -> keep_alive",
                line=_at(_Locator.profile_key, name, "keep_alive"),
            ) from None

    host: str | None = None
    if "host" in data:
        raw = data["host"]

        def line(w: _Locator) -> int | None:
            return w.profile_key(name, "host")

        if not isinstance(raw, str):
            raise ctx.error(
                f'must be a string such as "http://gpu-box:11434", not {_type_name(raw)}',
                location=f"{loc} -> host",
                line=line,
            )
        host = raw.strip()
        if not host:
            raise ctx.error(
                "is empty; remove the key to use $OLLAMA_HOST",
                location=f"{loc} -> host",
                line=line,
            )
        scheme, sep, _ = host.partition("://")
        if sep and scheme.lower() not in ("http", "https"):
            raise ctx.error(
                f'unsupported scheme "{scheme}" in "{host}": use http:// or https://',
                location=f"{loc} -> host",
                line=line,
            )
        if any(c.isspace() for c in host):
            raise ctx.error(f'"{host}" contains a space', location=f"{loc} -> host", line=line)
        from ollama_resident.host import host_problem, redact

        problem = host_problem(host)
        if problem is not None:
            raise ctx.error(
                f'"{redact(host)}" cannot be used: {problem}',
                location=f"{loc} -> host",
                line=line,
                hint='for example "http://gpu-box:11434" or "https://gpu-box/ollama"',
            )

    exclusive = data.get("exclusive", False)
    if not isinstance(exclusive, bool):
        raise ctx.error(
            f"must be true or false, not {_type_name(exclusive)}",
            location=f"{loc} -> exclusive",
            line=_at(_Locator.profile_key, name, "exclusive"),
        )

    if "models" not in data:
        raise ctx.error(
            'has no "models" key',
            location=loc,
            line=_at(_Locator.profile, name),
            hint='list them: models = ["llama3.2", { name = "nomic-embed-text", '
            'keep_alive = "30m" }] (an empty list is allowed)',
        )
    raw_models = data["models"]
    if not isinstance(raw_models, list):
        raise ctx.error(
            f'must be an array such as ["llama3.2"], not {_type_name(raw_models)}',
            location=f"{loc} -> models",
            line=_at(_Locator.profile_key, name, "models"),
        )
    models: list[ProfileModel] = []
    seen: dict[str, int] = {}
    occurrences: dict[str, int] = {}
    for index, item in enumerate(raw_models):
        model = _model(ctx, name, index, item, occurrences)
        key = canonical_name(model.name)
        if key in seen:
            first = seen[key]
            raise ctx.error(
                f'"{model.name}" is listed twice (also models[{first}], "{models[first].name}")',
                location=f"{loc} -> models[{index}]",
                line=_at(_Locator.model, name, model.name, occurrences[model.name] - 1),
                hint="keep one entry per model; put its keep_alive and num_ctx there",
            )
        seen[key] = index
        models.append(model)
    return Profile(
        name=name, models=tuple(models), keep_alive=keep_alive, host=host, exclusive=exclusive
    )


def _model(
    ctx: _Ctx, profile: str, index: int, item: object, occurrences: dict[str, int]
) -> ProfileModel:
    loc = f"profiles -> {profile} -> models[{index}]"

    def models_line(w: _Locator) -> int | None:
        return w.profile_key(profile, "models")

    if isinstance(item, str):
        occurrence = occurrences.get(item, 0)
        occurrences[item] = occurrence + 1
        problem = validate_model_name(item)
        if problem is not None:
            raise ctx.error(
                problem, location=loc, line=_at(_Locator.model, profile, item, occurrence)
            )
        return ProfileModel(item.strip())
    if not isinstance(item, dict):
        raise ctx.error(
            f'a model is a name ("llama3.2") or a table ({{ name = "llama3.2", '
            f'keep_alive = "30m" }}), not {_type_name(item)}',
            location=loc,
            line=models_line,
        )
    raw_name = item.get("name")
    line: Callable[[_Locator], int | None] = models_line
    if isinstance(raw_name, str):
        occurrence = occurrences.get(raw_name, 0)
        occurrences[raw_name] = occurrence + 1

        def named_line(w: _Locator) -> int | None:
            return w.model(profile, raw_name, occurrence)

        line = named_line
        loc = f"{loc} ({raw_name.strip()})" if raw_name.strip() else loc
    for key in item:
        if key not in MODEL_KEYS:
            raise ctx.error(
                f'unknown key "{key}"',
                location=loc,
                line=line,
                hint=_unknown_key_hint(key, MODEL_KEYS),
            )
    if "name" not in item:
        raise ctx.error(
            'has no "name" key', location=loc, line=line, hint='for example { name = "llama3.2" }'
        )
    if not isinstance(raw_name, str):
        raise ctx.error(
            f"must be a string, not {_type_name(raw_name)}", location=f"{loc} -> name", line=line
        )
    problem = validate_model_name(raw_name)
    if problem is not None:
        raise ctx.error(problem, location=f"{loc} -> name", line=line)

    keep_alive: KeepAlive | None = None
    if "keep_alive" in item:
        try:
            keep_alive = _keep_alive(item["keep_alive"])
        except DurationError as exc:
            raise ctx.error(str(exc), location=f"{loc} -> keep_alive", line=line) from None

    num_ctx: int | None = None
    if "num_ctx" in item:
        raw = item["num_ctx"]
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ctx.error(
                f"must be a whole number of tokens such as 8192, not {_type_name(raw)}",
                location=f"{loc} -> num_ctx",
                line=line,
            )
        if not 1 <= raw <= _MAX_NUM_CTX:
            raise ctx.error(
                f"must be between 1 and {_MAX_NUM_CTX}, not {raw}",
                location=f"{loc} -> num_ctx",
                line=line,
            )
        num_ctx = raw
    return ProfileModel(raw_name.strip(), keep_alive, num_ctx)


def validate(
    data: Mapping[str, Any], path: str | os.PathLike[str], *, text: str | None = None
) -> ProfilesFile:
    """Check a parsed profiles document and build a :class:`ProfilesFile`.

    Pure. ``text`` is the raw file, used only to find line numbers for messages.
    Raises :class:`ProfileError` at the first problem, e.g.
    ``profiles.toml:7: profiles -> coding -> models[1] (nomic-embed-text) -> keep_alive:
    invalid keep-alive "1d": unknown unit "d" (...)``.
    """
    ctx = _Ctx(path, text)
    for key in data:
        if key != "profiles":
            raise ctx.error(
                f'unknown top-level key "{key}"',
                location=None,
                line=_at(_Locator.top_key, key),
                hint="a profiles file holds only [profiles.NAME] tables",
            )
    raw = data.get("profiles", {})
    if not isinstance(raw, dict):
        raise ctx.error(
            f"must be a table of profiles ([profiles.NAME]), not {_type_name(raw)}",
            location="profiles",
            line=_at(_Locator.top_key, "profiles"),
        )
    profiles = {name: _profile(ctx, name, body) for name, body in raw.items()}
    return ProfilesFile(Path(path), profiles)


# -- reading -----------------------------------------------------------------------------------

_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def _toml_error(path: str, text: str, exc: Exception) -> ProfileError:
    """A TOMLDecodeError as ``file:line: not valid TOML: <reason> (column N)``."""
    message = str(getattr(exc, "msg", "") or exc)
    line = getattr(exc, "lineno", None)  # Python 3.14+
    column = getattr(exc, "colno", None)
    m = _AT_LINE.search(message)
    pos = getattr(exc, "pos", None)  # tomli 2.1+ and Python 3.14 also give lineno/colno
    if isinstance(pos, int) and pos >= len(text.rstrip()):
        # At the end of the document: point at the last line with content, not past it.
        message = _AT_END.sub("", message) + " at the end of the file"
        line = max(1, len(text.rstrip().splitlines()))
    elif m is not None:
        line, column = line or int(m.group(1)), column or int(m.group(2))
        message = message[: m.start()]
    elif _AT_END.search(message):
        message = _AT_END.sub("", message) + " at the end of the file"
        if line is None:
            line = max(1, len(text.rstrip().splitlines()))  # the last line with content
    detail = f"not valid TOML: {message}"
    if column and "end of the file" not in message:
        detail += f" (column {column})"
    return ProfileError(path, detail, line=line if isinstance(line, int) else None, hint=_EDIT_HINT)


def _parse_toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    data: dict[str, Any] = tomllib.loads(text)
    return data


# A profiles file of 10 000 models is about 400 KB; anything past this is not one
# (``--profiles /dev/zero``, a log given by mistake) and is refused before parsing.
MAX_FILE_BYTES = 4 * 1024 * 1024


def _check_regular(path: Path) -> None:
    """ProfileError for an existing path that is not a regular file (a device, a FIFO)."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing (created on write) or unreadable (reported by the read)
    if stat.S_ISDIR(mode):
        raise ProfileError(str(path), "is a directory, not a profiles file")
    if not stat.S_ISREG(mode):
        raise ProfileError(
            str(path),
            "is not a regular file (a device or a pipe), so it cannot hold profiles",
            hint="point --profiles or $OLLAMA_RESIDENT_PROFILES at the profiles TOML file",
        )


def _read_bounded(path: Path) -> bytes:
    with path.open("rb") as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ProfileError(
            str(path),
            f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB: not a profiles file",
            hint="point --profiles or $OLLAMA_RESIDENT_PROFILES at the profiles TOML file",
        )
    return raw


def _read_text(path: Path) -> str | None:
    """The file's text; None if it does not exist. Errors become ProfileError.

    At most :data:`MAX_FILE_BYTES` are read, so a device or a huge file is refused
    with a message instead of filling memory.
    """
    try:
        raw = _read_bounded(path)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ProfileError(str(path), "is a directory, not a profiles file") from None
    except OSError as exc:
        raise ProfileError(str(path), f"cannot read it: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProfileError(
            str(path), "is not UTF-8 text (TOML files are UTF-8)", line=line, hint=_EDIT_HINT
        ) from None


def load_text(text: str, path: str | os.PathLike[str]) -> ProfilesFile:
    """Parse and validate the text of a profiles file."""
    try:
        data = _parse_toml(text)
    except ValueError as exc:  # TOMLDecodeError subclasses ValueError
        raise _toml_error(str(path), text, exc) from None
    except (RecursionError, MemoryError):
        # Arrays or inline tables nested thousands deep: the parser recurses per level.
        raise ProfileError(
            str(path),
            "not valid TOML for a profiles file: values are nested too deeply to read",
            hint=_EDIT_HINT,
        ) from None
    return validate(data, path, text=text)


def load(path: str | os.PathLike[str]) -> ProfilesFile:
    """Read and validate the profiles file; a missing file has no profiles.

    Reading never writes: a file that does not parse or validate raises
    :class:`ProfileError` and stays exactly as it is.
    """
    target = Path(path)
    text = _read_text(target)
    if text is None:
        return ProfilesFile(target, {})
    return load_text(text, target)


def resolve(name: str, option_path: str | None = None) -> Profile:
    """The profile ``name`` from the file ``--profiles`` / ``$OLLAMA_RESIDENT_PROFILES`` /
    the config dir name; ProfileError (exit 2) for an unknown name, listing known ones."""
    from ollama_resident.paths import profiles_path

    return load(profiles_path(option_path)).get(name)


# -- writing -----------------------------------------------------------------------------------


def _model_entry(model: ProfileModel) -> str | dict[str, Any]:
    if model.keep_alive is None and model.num_ctx is None:
        return model.name
    entry: dict[str, Any] = {"name": model.name}
    if model.keep_alive is not None:
        entry["keep_alive"] = keep_alive_text(model.keep_alive)
    if model.num_ctx is not None:
        entry["num_ctx"] = model.num_ctx
    return entry


def to_toml_dict(pf: ProfilesFile | Iterable[Profile]) -> dict[str, Any]:
    """The document tomli-w writes: keys in a fixed order, defaults left out."""
    profiles = pf.profiles.values() if isinstance(pf, ProfilesFile) else pf
    out: dict[str, Any] = {}
    for p in profiles:
        body: dict[str, Any] = {}
        if p.keep_alive is not None:
            body["keep_alive"] = keep_alive_text(p.keep_alive)
        if p.host is not None:
            body["host"] = p.host
        if p.exclusive:
            body["exclusive"] = True
        body["models"] = [_model_entry(m) for m in p.models]
        out[p.name] = body
    return {"profiles": out}


def to_toml(pf: ProfilesFile | Iterable[Profile]) -> str:
    import tomli_w

    return tomli_w.dumps(to_toml_dict(pf), indent=2)


def has_comments(text: str) -> bool:
    """True when a TOML text has a ``#`` comment (a ``#`` inside a string does not count)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            return True
        if text.startswith('"""', i) or text.startswith("'''", i):
            quote = text[i : i + 3]
            i += 3
            while i < n and not text.startswith(quote, i):
                i += 2 if quote == '"""' and text[i] == "\\" else 1
            i += 3
            while i < n and text[i] == quote[0]:  # up to two quotes may end the content
                i += 1
            continue
        if c in "\"'":
            i += 1
            while i < n and text[i] != c and text[i] != "\n":
                i += 2 if c == '"' and text[i] == "\\" else 1
            i += 1
            continue
        i += 1
    return False


def backup_path(path: str | os.PathLike[str]) -> Path:
    target = Path(os.path.realpath(path))
    return target.with_name(target.name + ".bak")


@dataclass(frozen=True)
class WriteResult:
    """What a write did: the file as now stored, and the ``.bak`` made on the way."""

    file: ProfilesFile
    changed: bool
    backup: Path | None = None  # the old file, comments included, when it had any


def _write(path: Path, old_text: str | None, new: ProfilesFile) -> Path | None:
    """Write ``new`` (already validated); copy the old file to .bak if it had comments."""
    text = to_toml(new)
    # Never write what could not be read back.
    load_text(text, path)
    backup: Path | None = None
    if old_text is not None and has_comments(old_text):
        backup = atomic_write(backup_path(path), old_text)
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise ProfileError(
            str(path), f"cannot write it: {exc.strerror or exc}", hint="nothing was changed"
        ) from None
    return backup


def update(
    path: str | os.PathLike[str],
    change: Callable[[ProfilesFile], ProfilesFile],
    *,
    lock_timeout: float = 10.0,
) -> WriteResult:
    """Read-modify-write under one lock: the only way commands change the file.

    ``change`` gets the current file and returns the new one (or raises, and
    nothing is written). A file that does not parse raises ProfileError before
    ``change`` runs and is left as it is. When nothing changed, nothing is
    written (so comments survive a no-op).
    """
    target = Path(path)
    _check_regular(target)  # before the lock: never create /dev/zero.lock
    try:
        with file_lock(target, timeout=lock_timeout):
            old_text = _read_text(target)
            current = load_text(old_text, target) if old_text is not None else ProfilesFile(target)
            new = change(current)
            new = validate(to_toml_dict(new), target)  # the same rules as a hand-written file
            if old_text is not None and new.profiles == current.profiles:
                return WriteResult(current, changed=False)
            backup = _write(target, old_text, new)
            return WriteResult(new, changed=True, backup=backup)
    except LockTimeout as exc:
        raise ProfileError(
            str(target),
            str(exc),
            hint="another ollama-resident is writing the file; try again",
        ) from None
    except OSError as exc:
        raise ProfileError(str(target), f"cannot write it: {exc.strerror or exc}") from None


def save(path: str | os.PathLike[str], pf: ProfilesFile) -> WriteResult:
    """Replace the whole file with ``pf``, under the lock; never over a file that does not parse."""
    return update(path, lambda _current: replace(pf, path=Path(path)))


# -- changes (pure: ProfilesFile in, ProfilesFile out) -------------------------------------------


def set_profile(pf: ProfilesFile, profile: Profile) -> ProfilesFile:
    """Add ``profile``, or replace the one with its name in place (order kept)."""
    profiles = dict(pf.profiles)
    profiles[profile.name] = profile
    return replace(pf, profiles=profiles)


def remove_profile(pf: ProfilesFile, name: str) -> ProfilesFile:
    pf.get(name)  # raises with the known names
    return replace(pf, profiles={k: v for k, v in pf.profiles.items() if k != name})


def add_model(profile: Profile, model: ProfileModel) -> tuple[Profile, str]:
    """Add ``model`` or merge it into the entry for the same model.

    A merge keeps the entry's settings that ``model`` leaves unset. Returns the
    new profile and ``added``, ``updated`` or ``unchanged``.
    """
    key = canonical_name(model.name)
    for i, existing in enumerate(profile.models):
        if canonical_name(existing.name) != key:
            continue
        merged = ProfileModel(
            existing.name,
            model.keep_alive if model.keep_alive is not None else existing.keep_alive,
            model.num_ctx if model.num_ctx is not None else existing.num_ctx,
        )
        if merged == existing:
            return profile, "unchanged"
        models = (*profile.models[:i], merged, *profile.models[i + 1 :])
        return replace(profile, models=models), "updated"
    return replace(profile, models=(*profile.models, model)), "added"


def remove_model(profile: Profile, name: str, *, path: str | os.PathLike[str] = "") -> Profile:
    """The profile without ``name``; ProfileError listing its models if it is not there."""
    key = canonical_name(name)
    kept = tuple(m for m in profile.models if canonical_name(m.name) != key)
    if len(kept) == len(profile.models):
        listed = ", ".join(profile.model_names) or "none"
        raise ProfileError(
            str(path),
            f'profile "{profile.name}" has no model "{name}"',
            hint=f"its models: {listed}",
        )
    return replace(profile, models=kept)
