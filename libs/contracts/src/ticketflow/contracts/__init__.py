"""ticketflow.contracts: what two ticketflow deployables must agree on, and nothing that does I/O."""

from . import names, search_attributes
from .converter import DATA_CONVERTER
from .models import *  # noqa: F403
from .models import __all__ as _models_all

__all__ = ["DATA_CONVERTER", "names", "search_attributes", *_models_all]
