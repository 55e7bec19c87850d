"""ticketflow.projection: the read model of finished tickets (SQLite), its Temporal worker, its gRPC
read API and its rebuild from Temporal."""

from .activities import ProjectionActivities
from .grpc_api import ReadApiServer, ReadModelServicer
from .rebuild import RebuildReport, TemporalUnreachable, rebuild
from .schema import UnsupportedSchema
from .settings import Settings
from .store import OutcomeFilter, ReadModelStore, StoredOutcome

__all__ = [
    "OutcomeFilter",
    "ProjectionActivities",
    "ReadApiServer",
    "ReadModelServicer",
    "ReadModelStore",
    "RebuildReport",
    "Settings",
    "StoredOutcome",
    "TemporalUnreachable",
    "UnsupportedSchema",
    "rebuild",
]
