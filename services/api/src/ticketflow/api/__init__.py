"""ticketflow.api: the HTTP and gRPC front door of ticketflow.

Talks to Temporal only by the names and payloads in `ticketflow.contracts`; never imports a worker.
"""

from ._version import VERSION
from .app import create_app
from .settings import Settings

__version__ = VERSION

__all__ = ["Settings", "__version__", "create_app"]
