"""The approvals console: server-rendered pages under /console for the people who decide.

`install_console(app, settings)` adds its pages (`routes`), its static files (CSS and one small
script, served by the api) and its session signer (`session`) to the app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ..settings import Settings
from .routes import STATIC_DIR, router
from .session import PATH, SessionSigner

__all__ = ["install_console"]


def install_console(app: FastAPI, settings: Settings) -> None:
    app.state.console_sessions = SessionSigner(settings, settings.keys_for_decisions)
    app.mount(f"{PATH}/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.include_router(router)
