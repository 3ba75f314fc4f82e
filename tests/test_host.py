"""OLLAMA_HOST parsing: Ollama's rules, loopback for bind addresses, secrets kept hidden.

Tables: ollama-python's ``_parse_host`` doctests (ollama/_client.py), Ollama's own
``TestHost`` (envconfig/config_test.go) and contract §5.
"""

from __future__ import annotations

import pytest

from ollama_resident.host import DEFAULT_HOST, DEFAULT_PORT, Host, parse_host, redact

V6 = "0001:002:003:0004::1"

# All 30 of ollama-python's _parse_host doctests. Its port rules (http 80, https 443,
# bare 11434) are Ollama's; ':56789' gives 127.0.0.1 there as here (Ollama: 'http://:56789').
OLLAMA_PYTHON_DOCTESTS: list[tuple[str | None, str]] = [
    (None, "http://127.0.0.1:11434"),
    ("", "http://127.0.0.1:11434"),
    ("1.2.3.4", "http://1.2.3.4:11434"),
    (":56789", "http://127.0.0.1:56789"),
    ("1.2.3.4:56789", "http://1.2.3.4:56789"),
    ("http://1.2.3.4", "http://1.2.3.4:80"),
    ("https://1.2.3.4", "https://1.2.3.4:443"),
    ("https://1.2.3.4:56789", "https://1.2.3.4:56789"),
    ("example.com", "http://example.com:11434"),
    ("example.com:56789", "http://example.com:56789"),
    ("http://example.com", "http://example.com:80"),
    ("https://example.com", "https://example.com:443"),
    ("https://example.com:56789", "https://example.com:56789"),
    ("example.com/", "http://example.com:11434"),
    ("example.com:56789/", "http://example.com:56789"),
    ("example.com/path", "http://example.com:11434/path"),
    ("example.com:56789/path", "http://example.com:56789/path"),
    ("https://example.com:56789/path", "https://example.com:56789/path"),
    ("example.com:56789/path/", "http://example.com:56789/path"),
    (f"[{V6}]", f"http://[{V6}]:11434"),
    (f"[{V6}]:56789", f"http://[{V6}]:56789"),
    (f"http://[{V6}]", f"http://[{V6}]:80"),
    (f"https://[{V6}]", f"https://[{V6}]:443"),
    (f"https://[{V6}]:56789", f"https://[{V6}]:56789"),
    (f"[{V6}]/", f"http://[{V6}]:11434"),
    (f"[{V6}]:56789/", f"http://[{V6}]:56789"),
    (f"[{V6}]/path", f"http://[{V6}]:11434/path"),
    (f"[{V6}]:56789/path", f"http://[{V6}]:56789/path"),
    (f"https://[{V6}]:56789/path", f"https://[{V6}]:56789/path"),
    (f"[{V6}]:56789/path/", f"http://[{V6}]:56789/path"),
]

# Ollama's TestHost, plus contract §5 examples, with the loopback difference applied.
OLLAMA_TESTHOST: list[tuple[str | None, str]] = [
    ("", "http://127.0.0.1:11434"),
    ("1.2.3.4", "http://1.2.3.4:11434"),
    (":1234", "http://127.0.0.1:1234"),  # Ollama: http://:1234
    ("1.2.3.4:1234", "http://1.2.3.4:1234"),
    ("example.com", "http://example.com:11434"),
    ("example.com:1234", "http://example.com:1234"),
    (":0", "http://127.0.0.1:0"),  # Ollama: http://:0
    (":66000", "http://127.0.0.1:11434"),  # too large port
    (":-1", "http://127.0.0.1:11434"),  # too small port
    ("[::1]", "http://[::1]:11434"),
    ("[::]", "http://[::1]:11434"),  # Ollama: http://[::]:11434
    ("::1", "http://[::1]:11434"),
    ("[::1]:1337", "http://[::1]:1337"),
    (" 1.2.3.4 ", "http://1.2.3.4:11434"),
    ('"1.2.3.4"', "http://1.2.3.4:11434"),
    (' " 1.2.3.4 " ', "http://1.2.3.4:11434"),
    ("'1.2.3.4'", "http://1.2.3.4:11434"),
    ("http://1.2.3.4", "http://1.2.3.4:80"),
    ("http://1.2.3.4:4321", "http://1.2.3.4:4321"),
    ("https://1.2.3.4", "https://1.2.3.4:443"),
    ("https://1.2.3.4:4321", "https://1.2.3.4:4321"),
    ("https://example.com/ollama", "https://example.com:443/ollama"),
    ("ollama.com", "https://ollama.com:443"),
]

MORE: list[tuple[str | None, str]] = [
    # invalid ports fall back to the *scheme's* default
    ("http://example.com:66000", "http://example.com:80"),
    ("https://example.com:-1", "https://example.com:443"),
    ("https://example.com:abc", "https://example.com:443"),
    ("example.com:abc", "http://example.com:11434"),
    ("example.com:", "http://example.com:11434"),
    ("example.com:+80", "http://example.com:80"),
    ("example.com:0080", "http://example.com:80"),
    ("example.com:-0", "http://example.com:0"),
    ("example.com:65535", "http://example.com:65535"),
    ("example.com:65536", "http://example.com:11434"),
    ("example.com:99999999999999999999999", "http://example.com:11434"),
    ("example.com:\u0668\u0668", "http://example.com:11434"),  # non-ASCII digits
    ("[::1]:", "http://[::1]:11434"),
    # paths
    ("https://example.com/ollama/", "https://example.com:443/ollama"),
    ("https://example.com/ollama///", "https://example.com:443/ollama"),
    ("https://example.com/a/b/", "https://example.com:443/a/b"),
    ("https://example.com:8443/proxy/ollama", "https://example.com:8443/proxy/ollama"),
    ("http://example.com/", "http://example.com:80"),
    ("localhost", "http://localhost:11434"),
    ("LOCALHOST:8080", "http://LOCALHOST:8080"),
    # other schemes keep 11434 and pass through
    ("tcp://1.2.3.4", "tcp://1.2.3.4:11434"),
    ("HTTP://1.2.3.4", "HTTP://1.2.3.4:11434"),  # Ollama compares schemes case-sensitively
    # only the bare value is special
    ("https://ollama.com", "https://ollama.com:443"),
    ("http://ollama.com", "http://ollama.com:80"),
    ("ollama.com:11434", "http://ollama.com:11434"),
    ("ollama.com/", "http://ollama.com:11434"),
    # Go's net.SplitHostPort fallback: an unbracketed IPv6 with a "port" is one address
    ("::1:8080", "http://[::1:8080]:11434"),
    ("fe80::1", "http://[fe80::1]:11434"),
    ("2001:db8::1", "http://[2001:db8::1]:11434"),
    ("[2001:db8::1]:443", "http://[2001:db8::1]:443"),
    ("https://[2001:db8::1]/ollama", "https://[2001:db8::1]:443/ollama"),
]

# The deliberate difference: unspecified or empty hosts connect to loopback, as
# Ollama's ConnectableHost() does.
LOOPBACK: list[tuple[str | None, str]] = [
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("0.0.0.0:8080", "http://127.0.0.1:8080"),
    ("http://0.0.0.0", "http://127.0.0.1:80"),
    ("https://0.0.0.0:8443/x", "https://127.0.0.1:8443/x"),
    ("::", "http://[::1]:11434"),
    ("[::]", "http://[::1]:11434"),
    ("[::]:8080", "http://[::1]:8080"),
    ("[0:0::0]:8080", "http://[::1]:8080"),
    ("::ffff:0.0.0.0", "http://127.0.0.1:11434"),
    (":1234", "http://127.0.0.1:1234"),
    ("http://:8080", "http://127.0.0.1:8080"),
    ("https://:8443", "https://127.0.0.1:8443"),
    ("http://", "http://127.0.0.1:80"),
    ("https:///ollama", "https://127.0.0.1:443/ollama"),
    ("''", "http://127.0.0.1:11434"),
    ("   ", "http://127.0.0.1:11434"),
    # loopback and real addresses stay as they are
    ("127.0.0.1", "http://127.0.0.1:11434"),
    ("127.0.0.2:9", "http://127.0.0.2:9"),
    ("[::1]:8080", "http://[::1]:8080"),
    ("0.0.0.1", "http://0.0.0.1:11434"),
]


@pytest.mark.parametrize(
    ("value", "url"), OLLAMA_PYTHON_DOCTESTS + OLLAMA_TESTHOST + MORE + LOOPBACK
)
def test_parse_host_url(value: str | None, url: str) -> None:
    host = parse_host(value)
    assert host.url == url
    assert host.display == url  # no credentials, nothing to hide
    assert str(host) == url


def test_ollama_python_table_is_complete() -> None:
    assert len(OLLAMA_PYTHON_DOCTESTS) == 30


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Host("http", "127.0.0.1", 11434)),
        ("[::1]:8080", Host("http", "::1", 8080)),
        ("::1", Host("http", "::1", 11434)),
        ("https://example.com/ollama/", Host("https", "example.com", 443, "/ollama")),
        ("example.com:56789/path/", Host("http", "example.com", 56789, "/path")),
        ("0.0.0.0", Host("http", "127.0.0.1", 11434)),
        ("[::]", Host("http", "::1", 11434)),
        (
            "https://user:pa:ss@example.com:8443/x",
            Host("https", "example.com", 8443, "/x", "user", "pa:ss"),
        ),
    ],
)
def test_parse_host_fields(value: str | None, expected: Host) -> None:
    assert parse_host(value) == expected


def test_defaults() -> None:
    assert (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 11434)
    assert parse_host(None) == parse_host("") == Host("http", DEFAULT_HOST, DEFAULT_PORT)


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("value", "url", "display", "username", "password"),
    [
        (
            "https://user:secret@example.com",
            "https://user:secret@example.com:443",
            "https://***@example.com:443",
            "user",
            "secret",
        ),
        (
            "https://user:secret@example.com:8443/ollama/",
            "https://user:secret@example.com:8443/ollama",
            "https://***@example.com:8443/ollama",
            "user",
            "secret",
        ),
        (
            "http://token@10.0.0.5",
            "http://token@10.0.0.5:80",
            "http://***@10.0.0.5:80",
            "token",
            None,
        ),
        (
            "user:secret@example.com:11434",  # no scheme
            "http://user:secret@example.com:11434",
            "http://***@example.com:11434",
            "user",
            "secret",
        ),
        (
            "http://user:p@ss@[::1]:8080",  # an unescaped '@' in the password
            "http://user:p@ss@[::1]:8080",
            "http://***@[::1]:8080",
            "user",
            "p@ss",
        ),
        (
            "http://user:p%40ss@host",  # percent-encoding kept as written
            "http://user:p%40ss@host:80",
            "http://***@host:80",
            "user",
            "p%40ss",
        ),
        (
            "http://:secret@0.0.0.0:1",
            "http://:secret@127.0.0.1:1",
            "http://***@127.0.0.1:1",
            "",
            "secret",
        ),
        ("http://@host", "http://host:80", "http://host:80", None, None),
    ],
)
def test_credentials(
    value: str, url: str, display: str, username: str | None, password: str | None
) -> None:
    host = parse_host(value)
    assert host.url == url
    assert host.display == display
    assert str(host) == display
    assert (host.username, host.password) == (username, password)
    if password:
        assert password not in repr(host)
        assert password not in host.display


def test_repr_hides_credentials() -> None:
    host = parse_host("https://alice:hunter2@example.com")
    assert "hunter2" not in repr(host)
    assert "alice" not in repr(host)
    assert "hunter2" not in f"{host}"


# --------------------------------------------------------------------------- redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no urls here", "no urls here"),
        ("http://127.0.0.1:11434/api/ps", "http://127.0.0.1:11434/api/ps"),
        ("https://user:secret@example.com:443/x", "https://***@example.com:443/x"),
        (
            "Client error '401 Unauthorized' for url 'https://u:p@example.com:443/api/ps'",
            "Client error '401 Unauthorized' for url 'https://***@example.com:443/api/ps'",
        ),
        ("http://token@host:80", "http://***@host:80"),
        ("a http://u:p@h:1 b https://v:q@k:2 c", "a http://***@h:1 b https://***@k:2 c"),
        ("http://user:p@ss@[::1]:8080/api", "http://***@[::1]:8080/api"),
        ("(http://u:p@h)", "(http://***@h)"),
        ("OLLAMA_HOST=user:secret@1.2.3.4:11434", "OLLAMA_HOST=***@1.2.3.4:11434"),
        ("cannot reach user:secret@1.2.3.4", "cannot reach ***@1.2.3.4"),
        ("'user:secret@1.2.3.4'", "'***@1.2.3.4'"),
        # not credentials
        ("mail alice@example.com", "mail alice@example.com"),
        ("http://host/path?to=a@b", "http://host/path?to=a@b"),
        ("http://host/#frag@x", "http://host/#frag@x"),
        ("time: 10:30", "time: 10:30"),
        ("http://***@host:80", "http://***@host:80"),  # idempotent
        ("", ""),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(redact(text)) == expected


def test_redact_hides_every_parsed_secret() -> None:
    for value in ["https://user:secret@example.com", "user:secret@example.com:1"]:
        host = parse_host(value)
        assert "secret" not in redact(f"GET {host.url}/api/ps failed")
