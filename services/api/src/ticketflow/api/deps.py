"""FastAPI dependencies: how handlers reach the settings, Temporal and the read model.

`create_app` stores them on `app.state`; tests may replace any of them with
`app.dependency_overrides[get_x] = ...`.
"""

from typing import Annotated

from fastapi import Depends, Request

from .readmodel import ReadModel
from .settings import Settings
from .temporal import TicketGateway

__all__ = [
    "GatewayDep",
    "ReadModelDep",
    "SettingsDep",
    "get_gateway",
    "get_read_model",
    "get_settings",
]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_gateway(request: Request) -> TicketGateway:
    return request.app.state.gateway


def get_read_model(request: Request) -> ReadModel:
    return request.app.state.read_model


SettingsDep = Annotated[Settings, Depends(get_settings)]
GatewayDep = Annotated[TicketGateway, Depends(get_gateway)]
ReadModelDep = Annotated[ReadModel, Depends(get_read_model)]
