"""``/docs``: the API reference as one plain HTML page rendered from the OpenAPI schema, offline.

FastAPI's default /docs and /redoc pages load Swagger UI and ReDoc from a CDN (jsdelivr). Servers of
this project often sit on a depot network without internet, where those pages stayed blank, and a
page that fetches scripts from a third party on every visit is a leak we do not need. Vendoring
Swagger UI and ReDoc (about 2.5 MB of minified JavaScript) into the package would make us track their
security releases for a page only developers read. So /docs is rendered here from ``app.openapi()``
with no script and no asset at all, and /redoc is not served; ``/openapi.json`` stays the full
machine-readable contract for any OpenAPI viewer or client generator.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

__all__ = ["mount_docs", "render_docs"]

_METHODS = ("get", "post", "put", "patch", "delete")

_STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;"
    "color:#222;overflow-wrap:anywhere}"
    "h2{margin-top:2rem;border-bottom:1px solid #ccc}code{background:#f3f3f3;padding:0 .2em}"
    ".op{margin:1rem 0;padding:.5rem .8rem;border-left:4px solid #4a7}"
    ".m{font-weight:700;text-transform:uppercase}"
    "table{border-collapse:collapse}td{padding:.1rem .6rem .1rem 0;vertical-align:top}"
)


def _parameters(op: dict[str, Any]) -> str:
    rows = [
        f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p.get('in', ''))}</td>"
        f"<td>{'required' if p.get('required') else 'optional'}</td>"
        f"<td>{escape(p.get('description', '') or '')}</td></tr>"
        for p in op.get("parameters", [])
    ]
    return f"<table>{''.join(rows)}</table>" if rows else ""


def _body(op: dict[str, Any]) -> str:
    content = op.get("requestBody", {}).get("content", {})
    if not content:
        return ""
    kinds = ", ".join(f"<code>{escape(k)}</code>" for k in content)
    return f"<p>Body: {kinds}</p>"


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    summary = escape(op.get("summary", ""))
    description = escape(op.get("description", "") or "").replace("\n\n", "<br><br>")
    codes = ", ".join(escape(str(c)) for c in op.get("responses", {}))
    return (
        f'<div class="op" id="{escape(method)}-{escape(path)}"><p><span class="m">{escape(method)}</span> '
        f"<code>{escape(path)}</code> {summary}</p>"
        f"<p>{description}</p>{_parameters(op)}{_body(op)}<p>Responses: {codes}</p></div>"
    )


def render_docs(spec: dict[str, Any]) -> str:
    """The whole page: the API's description, then every operation grouped by its first tag."""
    groups: dict[str, list[str]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["other"])[0]
                groups.setdefault(tag, []).append(_operation(method, path, op))
    info = spec.get("info", {})
    sections = "".join(f"<h2>{escape(tag)}</h2>{''.join(ops)}" for tag, ops in sorted(groups.items()))
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(info.get('title', 'API'))} API</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(info.get('title', ''))} {escape(info.get('version', ''))}</h1>"
        f"<p>{escape(info.get('description', ''))}</p>"
        f'<p>The machine-readable schema: <a href="/openapi.json">/openapi.json</a>.</p>'
        f"{sections}</body></html>"
    )


def mount_docs(app: FastAPI) -> None:
    """``GET /docs``, rendered once on first request (the schema does not change while running)."""
    page: list[str] = []

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if not page:
            page.append(render_docs(app.openapi()))
        return HTMLResponse(page[0])
