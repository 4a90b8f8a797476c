"""What may be shown of a text that is recorded and served: URLs with their secrets redacted,
and no file paths of the machine that raised it. Pure."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Anything that looks like a file path (/var/task/x.py, C:\\x\\y.py, ./a/b): callers never see one.
_PATH = re.compile(r'(?:[A-Za-z]:\\|\.{0,2}/)?(?:[\w.\-]+[/\\])+[\w.\-]+')
# A URL as it appears in a message: scheme, then anything up to white space or a quote.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def redacted_url(url: str) -> str:
    """scheme://host:port/path of a URL, safe to record: no userinfo, every query value (and
    any bare query item) replaced by ***, no fragment. Which endpoint it was stays visible."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "<an invalid URL>"
    scheme = parts.scheme.lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if port is None:
        port = 443 if scheme == "https" else 80
    query = "&".join(f"{item.partition('=')[0]}=***" if "=" in item else "***"
                     for item in parts.query.split("&") if item)
    return f"{scheme}://{host}:{port}{parts.path or '/'}" + (f"?{query}" if query else "")


def without_paths(text: str) -> str:
    """The text with file paths replaced by <path>, and URLs kept whole but redacted (a URL's
    path names an endpoint, not a file of this machine)."""
    urls: list[str] = []

    def keep(match: re.Match[str]) -> str:
        urls.append(redacted_url(match.group(0)))
        return f"\x00{len(urls) - 1}\x00"

    held = _URL.sub(keep, text)
    scrubbed = _PATH.sub("<path>", held)
    return re.sub(r"\x00(\d+)\x00", lambda m: urls[int(m.group(1))], scrubbed)
