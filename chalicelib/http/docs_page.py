"""The API's docs page: Swagger UI (its files committed in chalicelib/http/docs/ with its
licence, packaged with the app, so nothing is loaded from elsewhere) over the service's own
OpenAPI document. Served at /docs on every stage, with no token: the document describes the
API, it holds no data.

Only names in that folder matching a strict pattern are served, so a request can never reach
another path.
"""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib.http.static_files import StaticFiles

FOLDER = Path(__file__).with_name("docs")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}(\.[a-z]+)?\.(html|js|css|txt)$")
# Swagger UI sets inline styles on its own elements; scripts and everything else are the
# service's own.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
          "frame-ancestors 'none'")


FILES = StaticFiles(FOLDER, "the docs", _NAME, POLICY)
