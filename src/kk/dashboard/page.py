"""The web dashboard: static files shipped in the package, served by the API process.

No CDN and no build step. Job data is untrusted (anyone who can add a job writes it), so
the page builds its DOM with textContent only and is served with a strict
Content-Security-Policy: scripts and styles from this origin's files, nothing inline, no
framing, no plugins.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from kk.dashboard.actions_router import router as actions_router
from kk.dashboard.attempts import router as attempts_router
from kk.dashboard.forms import router as forms_router
from kk.dashboard.router import router as dashboard_router
from kk.dashboard.session_router import router as session_router
from kk.dashboard.system import router as system_router

STATIC_DIR = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time: a new release's files are picked up at once.
    "Cache-Control": "no-cache",
}


class _Static(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def install_dashboard(app: FastAPI) -> None:
    """The dashboard's API routes, its page at /dashboard and its files."""
    app.include_router(dashboard_router)
    app.include_router(actions_router)
    app.include_router(session_router)
    app.include_router(system_router)
    app.include_router(attempts_router)
    app.include_router(forms_router)

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        """A person who opens the service's address lands on the dashboard."""
        return RedirectResponse("/dashboard", status_code=307)

    @app.get("/dashboard/", include_in_schema=False)
    async def dashboard_slash() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=308)

    app.mount("/dashboard/static", _Static(directory=STATIC_DIR), name="dashboard-static")
