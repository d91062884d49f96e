"""The operator web page: a dependency-free single-page app served by the server.

Everything the browser needs lives in :data:`STATIC_DIR` (plain ES modules, CSS, icons; no CDN, no
build step), so the page works offline. The server mounts it at ``/static`` and serves
``static/index.html`` at ``/``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["INDEX_HTML", "STATIC_DIR"]

#: The folder served at ``/static``.
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The page served at ``/``.
INDEX_HTML = STATIC_DIR / "index.html"
