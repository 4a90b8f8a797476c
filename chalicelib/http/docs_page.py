"""The API's docs page: Swagger UI (its files committed in chalicelib/http/docs/ with its
licence, packaged with the app, so nothing is loaded from elsewhere) over the service's own
OpenAPI document. Served at /docs on every stage, with no token: the document describes the
API, it holds no data.

Only names in that folder matching a strict pattern are served, so a request can never reach
another path.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from chalicelib.domain.errors import NotFound
from chalicelib.http.console import Asset

FOLDER = Path(__file__).with_name("docs")
PAGE = "index.html"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}(\.[a-z]+)?\.(html|js|css|txt)$")
_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
          "css": "text/css; charset=utf-8", "txt": "text/plain; charset=utf-8"}
# Swagger UI sets inline styles on its own elements; scripts and everything else are the
# service's own.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
          "frame-ancestors 'none'")


def asset(name: str) -> Asset:
    """A docs file by name; 404 for any name not in the folder."""
    match = _NAME.fullmatch(name)
    if match is None or not (FOLDER / name).is_file():
        raise NotFound(f"the docs have no file {name[:80]!r}", file=name[:80])
    return _read(name, match.group(2))


@functools.cache  # only names of files that exist reach it, so it stays small
def _read(name: str, extension: str) -> Asset:
    body = (FOLDER / name).read_text(encoding="utf-8")
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'
    return Asset(body=body, content_type=_TYPES[extension], etag=etag)


def headers(item: Asset) -> dict[str, str]:
    # The files change only with a deploy: revalidated each load (ETag).
    return {"Content-Type": item.content_type, "Cache-Control": "no-cache", "ETag": item.etag,
            "Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}
