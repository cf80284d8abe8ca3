"""Where to send a visitor back to after a form: only ever a path of this site."""

from __future__ import annotations

from urllib.parse import urlsplit

#: Browsers drop these anywhere in a URL before reading it (WHATWG URL standard).
_DROPPED = str.maketrans("", "", "\t\r\n")


def same_site_path(raw: object, default: str = "/") -> str:
    """``raw`` when a browser would read it as a path on this site, else ``default``.

    Read the way browsers read a ``Location``: tabs and newlines are dropped and a
    backslash counts as a slash, so ``/\\t/evil.example`` and ``/\\\\evil.example`` are the
    protocol-relative ``//evil.example`` and are refused. Anything with a scheme or a host,
    or any other control character, is refused too.
    """
    if not isinstance(raw, str) or not raw:
        return default
    path = raw.translate(_DROPPED).replace("\\", "/")
    if not path.startswith("/") or path.startswith("//"):
        return default
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return default
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return default
    return path
