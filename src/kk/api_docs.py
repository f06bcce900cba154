"""API docs at /docs (Swagger UI) and /redoc (ReDoc), served from the package.

FastAPI's own pages load both from a CDN: blank without internet access, and a third
party's script running on this origin, next to the dashboard's session cookie. Here the
assets come from the `fastapi-offline` package and two small start-up scripts of ours,
under a CSP that allows scripts from this origin's files only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

ASSETS = "/docs/assets"
_VENDOR = Path(fastapi_offline.__file__).parent / "static"
_OWN = Path(__file__).parent / "docs_static"
_FILES = {
    "swagger-ui-bundle.js": _VENDOR,
    "swagger-ui.css": _VENDOR,
    "redoc.standalone.js": _VENDOR,
    "favicon.png": _VENDOR,
    "swagger-init.js": _OWN,
    "redoc-init.js": _OWN,
}
_REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# Both UIs set inline styles (ReDoc injects <style> elements) and ReDoc runs its search in
# a blob: worker; scripts stay this origin's files only.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{ASSETS}/favicon.png">
{head}
</head>
<body>
{body}
</body>
</html>
"""
    return HTMLResponse(html, headers=HEADERS)


def install_docs(app: FastAPI) -> None:
    title = f"{app.title} - API docs"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _page(
            title,
            f'<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">',
            f'<div id="swagger-ui"></div>\n<script src="{ASSETS}/swagger-ui-bundle.js"></script>'
            f'\n<script src="{ASSETS}/swagger-init.js"></script>',
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _page(
            title,
            "",
            f'<div id="redoc"></div>\n<script src="{ASSETS}/redoc.standalone.js"></script>'
            f'\n<script src="{ASSETS}/redoc-init.js"></script>',
        )

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        folder = _FILES.get(name)
        if folder is None:
            raise HTTPException(404, f"No docs asset named {name!r}")
        if name == "redoc.standalone.js":
            return Response(_redoc_bundle(), media_type="text/javascript", headers=HEADERS)
        return FileResponse(folder / name, headers=HEADERS)


@cache
def _redoc_bundle() -> bytes:
    """ReDoc's bundle less its one outside URL: the sidebar's Redocly logo, which the CSP
    would block (a console error on every load), becomes an empty inline image."""
    bundle = (_VENDOR / "redoc.standalone.js").read_bytes()
    return bundle.replace(
        _REDOC_LOGO, b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"
    )
