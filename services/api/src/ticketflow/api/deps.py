"""FastAPI dependencies: how handlers reach the settings and the service layer.

`create_app` stores them on `app.state`; tests may replace any of them with
`app.dependency_overrides[get_x] = ...`.
"""

from typing import Annotated

from fastapi import Depends, Request

from .readmodel import ReadModel
from .service import TicketService
from .settings import Settings
from .temporal import TicketGateway

__all__ = [
    "GatewayDep",
    "ReadModelDep",
    "SettingsDep",
    "TicketsDep",
    "get_gateway",
    "get_read_model",
    "get_settings",
    "get_tickets",
]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_tickets(request: Request) -> TicketService:
    return request.app.state.tickets


def get_gateway(request: Request) -> TicketGateway:
    return request.app.state.tickets.gateway


def get_read_model(request: Request) -> ReadModel:
    return request.app.state.tickets.read_model


SettingsDep = Annotated[Settings, Depends(get_settings)]
TicketsDep = Annotated[TicketService, Depends(get_tickets)]
GatewayDep = Annotated[TicketGateway, Depends(get_gateway)]
ReadModelDep = Annotated[ReadModel, Depends(get_read_model)]
