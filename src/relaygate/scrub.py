"""Upstream text on its way to a client: no credential, URL or address of the operator's upstreams.

Two strengths. ``Scrubber.text`` is for what an upstream says about an error (messages, codes, params,
types, Midjourney descriptions and fail reasons): the channel's own secrets and anything that looks like
a key, a bearer token, a URL or an IP address become ``[redacted]``. ``Scrubber.content`` is for
upstream text that may carry the client's own URLs (a Midjourney ``finalPrompt`` starts with the image
links the client sent): only the channel's secrets and IP addresses go.

A channel's scrubber knows its key (whole, and the masked echoes relays print: ``sk-abc***wxyz``,
``sk-ab…yz``), its base URL, its host and ``host:port``. It is built once per channel when the snapshot
is built (``ChannelRecord.scrubber``), so a request pays only for the regex runs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

REDACTED = "[redacted]"
LIMIT = 1000  # characters of one upstream string a client sees at most

_SECRETISH = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{6,}|key-[A-Za-z0-9]{8,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+\S+"
    r"|[a-z][a-z0-9+.\-]*://[^\s\"'<>)\]]+"  # any URL, whatever its scheme
    r"|[?&](?:key|api[_-]?key|token|secret)=[^\s&\"']+"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b)",
    re.IGNORECASE,
)
# IPv6 candidates (checked with ``ipaddress``, so a clock time such as 12:30:45 stays).
_IPV6 = re.compile(r"\[?(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?"
                   r"(?![\w:])(?:%\w+)?\]?(?::\d+)?")
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
# A word with a run of mask characters in it: the shape of a key echoed in part.
_MASKED = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]*(?:\*{2,}|…|\.{3,}|x{4,}|X{4,})[A-Za-z0-9_\-]*")
_MASK_RUN = re.compile(r"\*{2,}|…|\.{3,}|x{4,}|X{4,}")
_MIN_LITERAL = 3  # shorter keys or hosts would redact ordinary words
_MIN_KEY = 8  # shorter "keys" (placeholders) are matched whole only, not as masked echoes
_MIN_ECHO = 3  # characters of a key's head or tail that identify a masked echo
_OPTION_HINTS = ("key", "secret", "token", "password", "url", "host")


def scrub(message: str, limit: int = LIMIT) -> str:
    """Upstream text scrubbed of anything that looks like a key, a URL or an address (no channel known)."""
    return NO_CHANNEL.text(message, limit)


class Scrubber:
    """The scrubber of one channel: its secrets and addresses, plus the generic patterns."""

    __slots__ = ("_keys", "_literal")

    def __init__(self, keys: Iterable[str] = (), addresses: Iterable[str] = ()) -> None:
        keys = [k for k in dict.fromkeys(keys) if len(k) >= _MIN_LITERAL]
        self._keys = tuple(k for k in keys if len(k) >= _MIN_KEY)
        # Keys anywhere (they are long and unique); an address only as a whole word, so that a host
        # named ``api`` leaves ``api_error`` alone. Longest first: a URL before its host.
        patterns = [re.escape(k) for k in sorted(keys, key=len, reverse=True)]
        patterns += [rf"(?<![\w.\-]){re.escape(a)}(?![\w\-])"
                     for a in sorted({a for a in addresses if len(a) >= _MIN_LITERAL}, key=len, reverse=True)]
        self._literal = re.compile("|".join(patterns), re.IGNORECASE) if patterns else None

    @classmethod
    def for_channel(cls, api_key: str, base_url: str, options: Mapping[str, Any] | None = None) -> Scrubber:
        """The scrubber of a channel with this key, base URL and options (string options whose name says
        key, secret, token, URL or host count as secrets too)."""
        keys = [api_key] if api_key else []
        addresses: list[str] = []
        for name, value in (options or {}).items():
            if isinstance(value, str) and len(value) >= 4 and any(h in name.lower() for h in _OPTION_HINTS):
                (addresses if "url" in name.lower() or "host" in name.lower() else keys).append(value)
                if "url" in name.lower():
                    addresses.extend(_url_parts(value))
        if base_url:
            addresses.append(base_url.rstrip("/"))
            addresses.extend(_url_parts(base_url))
        return cls(keys, addresses)

    def text(self, value: str, limit: int = LIMIT) -> str:
        """Error text: the channel's secrets, keys, bearer tokens, URLs and IP addresses redacted."""
        value = self._secrets(value)
        value = _IPV6.sub(_ipv6_or_same, value)
        return _SECRETISH.sub(REDACTED, value)[:limit]

    def content(self, value: str, limit: int | None = None) -> str:
        """Content that may hold the client's own URLs: the channel's secrets and IP addresses redacted."""
        value = _IPV4.sub(REDACTED, _IPV6.sub(_ipv6_or_same, self._secrets(value)))
        return value if limit is None else value[:limit]

    def message(self, value: Any, fallback: str) -> str:
        """``text`` of a non-empty string; ``fallback`` (relaygate's own words) for anything else."""
        return self.text(value) if isinstance(value, str) and value else fallback

    def optional(self, value: Any) -> str | None:
        """``text`` of a string; None for anything else (an upstream's field of the wrong type)."""
        return self.text(value) if isinstance(value, str) else None

    def deep(self, value: Any) -> Any:
        """``content`` applied to every string inside a JSON value (a copy; other values kept)."""
        if isinstance(value, str):
            return self.content(value)
        if isinstance(value, Mapping):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value

    def _secrets(self, value: str) -> str:
        if self._literal is not None:
            value = self._literal.sub(REDACTED, value)
        if self._keys:
            value = _MASKED.sub(self._masked_echo, value)
        return value

    def _masked_echo(self, match: re.Match[str]) -> str:
        """A word like ``sk-abc***wxyz``: redacted when what shows of it is the head or the tail of a key."""
        word = match.group(0)
        runs = list(_MASK_RUN.finditer(word))
        head, tail = word[:runs[0].start()], word[runs[-1].end():]
        for key in self._keys:
            if (len(head) >= _MIN_ECHO and key.startswith(head)) or (len(tail) >= _MIN_ECHO and key.endswith(tail)):
                return REDACTED
        return word


def _url_parts(url: str) -> list[str]:
    """The host and ``host:port`` of a URL (bracketed IPv6 too), and the URL without its scheme."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return []
    if not host:
        return []
    found = [parts.netloc, f"{parts.netloc}{parts.path}".rstrip("/")]
    bracketed = f"[{host}]" if ":" in host else host
    found += [host, bracketed] + ([f"{bracketed}:{port}"] if port else [])
    return found


def _ipv6_or_same(match: re.Match[str]) -> str:
    candidate = match.group(0)
    bare = candidate.strip("[]")
    if candidate.startswith("[") and "]:" in candidate:
        bare = candidate[1:candidate.index("]:")]
    bare = bare.split("%", 1)[0]
    try:
        ipaddress.IPv6Address(bare)
    except ValueError:
        return candidate
    return REDACTED


NO_CHANNEL = Scrubber()
