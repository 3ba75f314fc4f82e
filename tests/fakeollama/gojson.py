"""JSON the Go way: ``encoding/json`` output (HTML escapes, float format, key order) and the
exact error texts of decoding a request body and binding it to Ollama's request structs
(syntax errors, type mismatches, numbers too big), plus Go's ``%q`` quoting.
"""

from __future__ import annotations

import decimal
import json
import math
from collections.abc import Iterable
from typing import Any

from .durations import GoDurationError, _BigNumber, keep_alive_from_json

# --------------------------------------------------------------------------------------------
# JSON the Go way
# --------------------------------------------------------------------------------------------

_HTML_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _go_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).translate(_HTML_ESCAPES)


def _go_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {f}")
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    a = abs(f)
    text = repr(f)
    if a < 1e-6 or a >= 1e21:
        mantissa, _, exp = text.partition("e")
        if not exp:
            mantissa, _, exp = f"{f:e}".partition("e")
        sign = "-" if exp.startswith("-") else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{sign}{digits}"
    text = format(decimal.Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _go_json(v: Any) -> str:
    """Serialise like Go's ``encoding/json`` (compact, HTML-escaped, dict order kept)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        return _go_str(v)
    if isinstance(v, dict):
        return "{" + ",".join(f"{_go_str(str(k))}:{_go_json(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_go_json(x) for x in v) + "]"
    raise TypeError(f"cannot serialise {type(v).__name__}")


def _dumps(v: Any) -> bytes:
    return _go_json(v).encode("utf-8", "replace")


class _JSONConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _JSONConstant(name)


def _parse_float(text: str) -> Any:
    value = float(text)
    return _BigNumber(text) if math.isinf(value) else value


def _parse_int(text: str) -> Any:
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts by default
        return _BigNumber(text)
    return _BigNumber(text) if abs(value) >= 2**1024 else value


_EOF = object()


def _quote_char(ch: str) -> str:
    """Go encoding/json ``quoteChar`` (used in syntax errors)."""
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    if ord(ch) >= 0x80:
        return f"'\\x{ch.encode('utf-8', 'surrogatepass')[0]:02x}'"
    return "'" + _go_quote(ch)[1:-1] + "'"


def _innermost_container(text: str, pos: int) -> str:
    stack: list[str] = []
    in_string = escaped = False
    for ch in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _syntax_error(text: str, err: json.JSONDecodeError) -> str:
    pos = err.pos
    msg = err.msg
    rest = text[pos:].strip()
    if pos >= len(text) or msg.startswith("Unterminated string"):
        return "unexpected EOF"
    if (
        msg.startswith("Expecting value")
        and rest
        and (any(word.startswith(rest) for word in ("true", "false", "null")) or rest == "-")
    ):
        return "unexpected EOF"
    ch = text[pos]
    if msg.startswith("Expecting property name"):
        where = "looking for beginning of object key string"
    elif msg.startswith("Expecting ':'"):
        where = "after object key"
    elif msg.startswith("Expecting ','"):
        inner = _innermost_container(text, pos)
        where = "after array element" if inner == "[" else "after object key:value pair"
    elif msg.startswith("Invalid control character"):
        where = "in string literal"
    elif "escape" in msg:
        if pos + 1 < len(text):
            ch = text[pos + 1]
        where = "in string escape code"
    else:
        where = "looking for beginning of value"
    return f"invalid character {_quote_char(ch)} {where}"


def _decode_go_json(body: bytes) -> tuple[Any, str | None]:
    """Decode the first JSON value like Go's ``json.Decoder.Decode`` (trailing data ignored).

    Returns ``(_EOF, None)`` for an empty body, ``(value, None)`` or ``(None, go_error_text)``.
    """
    text = body.decode("utf-8", "replace")
    i = 0
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    if i == len(text):
        return _EOF, None
    decoder = json.JSONDecoder(
        parse_float=_parse_float, parse_int=_parse_int, parse_constant=_reject_constant
    )
    try:
        value, _ = decoder.raw_decode(text, i)
    except _JSONConstant as exc:
        return None, f"invalid character {_quote_char(str(exc)[0])} looking for beginning of value"
    except json.JSONDecodeError as exc:
        return None, _syntax_error(text, exc)
    return value, None


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (int, float, _BigNumber)):
        return "number"
    if isinstance(v, list):
        return "array"
    return "object"


def _find_big_number(v: Any) -> _BigNumber | None:
    if isinstance(v, _BigNumber):
        return v
    items: Iterable[Any] = ()
    if isinstance(v, dict):
        items = v.values()
    elif isinstance(v, list):
        items = v
    for x in items:
        found = _find_big_number(x)
        if found is not None:
            return found
    return None


# field name -> (kind, Go type for error messages)
_Fields = dict[str, tuple[str, str]]
_STR = ("string", "string")
_BOOL = ("bool", "bool")
_INT = ("int", "int")
_MAP = ("object", "map[string]interface {}")
_ANY = ("any", "")
_DURATION = ("duration", "")

_GENERATE_FIELDS: _Fields = {
    "model": _STR,
    "prompt": _STR,
    "suffix": _STR,
    "system": _STR,
    "template": _STR,
    "context": ("array", "[]int"),
    "stream": _BOOL,
    "raw": _BOOL,
    "format": _ANY,
    "keep_alive": _DURATION,
    "images": ("array", "[]api.ImageData"),
    "options": _MAP,
    "think": _ANY,
    "truncate": _BOOL,
    "shift": _BOOL,
    "logprobs": _BOOL,
    "top_logprobs": _INT,
}
_CHAT_FIELDS: _Fields = {
    "model": _STR,
    "messages": ("array", "[]api.Message"),
    "stream": _BOOL,
    "format": _ANY,
    "keep_alive": _DURATION,
    "tools": ("array", "api.Tools"),
    "options": _MAP,
    "think": _ANY,
    "truncate": _BOOL,
    "shift": _BOOL,
    "logprobs": _BOOL,
    "top_logprobs": _INT,
}
_EMBED_FIELDS: _Fields = {
    "model": _STR,
    "input": _ANY,
    "keep_alive": _DURATION,
    "truncate": _BOOL,
    "dimensions": _INT,
    "options": _MAP,
}
_EMBEDDINGS_FIELDS: _Fields = {
    "model": _STR,
    "prompt": _STR,
    "keep_alive": _DURATION,
    "options": _MAP,
}
_SHOW_FIELDS: _Fields = {
    "model": _STR,
    "name": _STR,
    "system": _STR,
    "template": _STR,
    "verbose": _BOOL,
    "options": _MAP,
}
_DELETE_FIELDS: _Fields = {"model": _STR, "name": _STR}


def _kind_ok(kind: str, v: Any) -> bool:
    if kind == "string":
        return isinstance(v, str)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "object":
        return isinstance(v, dict)
    if kind == "array":
        return isinstance(v, list)
    return True


def _bind(value: Any, struct: str, fields: _Fields) -> tuple[dict[str, Any], str | None]:
    """Go json.Unmarshal into a request struct: case-insensitive keys, null = unset,
    keep_alive errors returned at once, the first type mismatch reported at the end."""
    out: dict[str, Any] = {}
    if value is None:
        return out, None
    if not isinstance(value, dict):
        return out, f"json: cannot unmarshal {_json_kind(value)} into Go value of type api.{struct}"
    type_error: str | None = None
    lowered = {name.lower(): name for name in fields}
    for key, v in value.items():
        name = key if key in fields else lowered.get(key.lower())
        if name is None:
            continue
        kind, go_type = fields[name]
        if kind == "duration":
            try:
                out[name] = keep_alive_from_json(v)
            except GoDurationError as exc:
                return {}, str(exc)
            continue
        if v is None:
            out.pop(name, None)
            continue
        if not _kind_ok(kind, v):
            if type_error is None:
                type_error = (
                    f"json: cannot unmarshal {_json_kind(v)} into Go struct field "
                    f"{struct}.{key} of type {go_type}"
                )
            continue
        big = _find_big_number(v)
        if big is not None:
            if type_error is None:
                type_error = (
                    f"json: cannot unmarshal number {big.text} into Go value of type float64"
                )
            continue
        out[name] = v
    return out, type_error


def _go_quote(s: str) -> str:
    """Go ``%q`` / ``strconv.Quote`` for the texts used here."""
    out = ['"']
    specials = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    specials["\v"] = "\\v"
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in specials:
            out.append(specials[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)
