"""The data converter every client and worker of ticketflow uses: JSON via pydantic."""

from temporalio.contrib.pydantic import pydantic_data_converter

DATA_CONVERTER = pydantic_data_converter

__all__ = ["DATA_CONVERTER"]
