"""FastAPI dependencies: how handlers reach the settings and the service layer.

`create_app` stores them on `app.state`; tests may replace any of them with
`app.dependency_overrides[get_x] = ...`.
"""

from typing import Annotated

from fastapi import Depends, Request

from .read_model_client import ReadModelClient
from .service import TicketService
from .settings import Settings
from .temporal import TicketGateway

__all__ = [
    "GatewayDep",
    "ReadModelClientDep",
    "SettingsDep",
    "TicketsDep",
    "get_gateway",
    "get_read_model_client",
    "get_settings",
    "get_tickets",
    "settings_of",
    "tickets_of",
]


# `app.state` is untyped (Starlette's State holds Any): each getter names the type it stored.
# Each is `async def` although it awaits nothing: FastAPI runs a plain `def` dependency in its
# thread pool, a thread hop per dependency per request (under load, a third of the api's CPU
# went to handing requests to threads and back).


def settings_of(request: Request) -> Settings:
    """The app's settings, for code that has the request (the console) rather than a dependency."""
    settings: Settings = request.app.state.settings
    return settings


def tickets_of(request: Request) -> TicketService:
    """The app's service layer, for code that has the request rather than a dependency."""
    tickets: TicketService = request.app.state.tickets
    return tickets


async def get_settings(request: Request) -> Settings:
    return settings_of(request)


async def get_tickets(request: Request) -> TicketService:
    return tickets_of(request)


async def get_gateway(request: Request) -> TicketGateway:
    return tickets_of(request).gateway


async def get_read_model_client(request: Request) -> ReadModelClient:
    return tickets_of(request).read_model_client


SettingsDep = Annotated[Settings, Depends(get_settings)]
TicketsDep = Annotated[TicketService, Depends(get_tickets)]
GatewayDep = Annotated[TicketGateway, Depends(get_gateway)]
ReadModelClientDep = Annotated[ReadModelClient, Depends(get_read_model_client)]
