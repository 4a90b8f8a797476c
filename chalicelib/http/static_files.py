"""A folder of static files packaged with the app (the console's, the API docs'), served by
name: only names matching the folder's pattern are served, so a request can never reach
another path; each file is read once per process (they change only with a deploy) and
revalidated by its ETag on every load."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chalicelib.domain.errors import NotFound

# The Content-Type of each extension a folder may serve (its name pattern picks which).
CONTENT_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
                 "css": "text/css; charset=utf-8", "svg": "image/svg+xml",
                 "txt": "text/plain; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str
    etag: str


@dataclass
class StaticFiles:
    folder: Path
    what: str  # how a 404 names the folder: "the console", "the docs"
    names: re.Pattern[str]  # a whole name; its extension is one of CONTENT_TYPES
    policy: str  # the Content-Security-Policy the files are served with
    # What a file's text becomes before it is served (the console fills its page's slot).
    prepare: Callable[[str, str], str] = lambda name, body: body
    _read: dict[str, Asset] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def asset(self, name: str) -> Asset:
        """A file by name; 404 for any name not in the folder."""
        if self.names.fullmatch(name) is None or not (self.folder / name).is_file():
            raise NotFound(f"{self.what} has no file {name[:80]!r}", file=name[:80])
        with self._lock:  # only names of files that exist reach it, so it stays small
            if name not in self._read:
                body = self.prepare(name, (self.folder / name).read_text(encoding="utf-8"))
                etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'
                self._read[name] = Asset(body=body, etag=etag,
                                         content_type=CONTENT_TYPES[name.rsplit(".", 1)[1]])
            return self._read[name]

    def headers(self, item: Asset) -> dict[str, str]:
        # no-cache: revalidated each load (ETag), so a deploy is seen at once.
        return {"Content-Type": item.content_type, "Cache-Control": "no-cache",
                "ETag": item.etag, "Content-Security-Policy": self.policy,
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
