"""ensure_search_attributes: registers what a namespace lacks, once, and refuses a type conflict."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from ticketflow.contracts import names
from ticketflow.runtime.search_attributes import (
    SearchAttributeConflictError,
    ensure_search_attributes,
)
from ticketflow.testkit import DevServer, free_port


async def custom_attributes(address: str, namespace: str = "default") -> dict[str, int]:
    client = await Client.connect(address, namespace=namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(listed.custom_attributes)


@pytest.mark.integration
async def test_ensure_search_attributes_registers_missing_and_detects_conflicts(
    tmp_path: Path,
) -> None:
    with DevServer(log_path=tmp_path / "devserver.log") as server:
        deadline = time.monotonic() + 30
        # The dev server got ticketflow's own on its command line: nothing to add.
        assert await ensure_search_attributes(server.address, "default", deadline) == []
        extra = {"RuntimeTestAttr": "KeywordList"}
        assert await ensure_search_attributes(server.address, "default", deadline, extra) == [
            "RuntimeTestAttr"
        ]
        assert await ensure_search_attributes(server.address, "default", deadline, extra) == []
        attrs = await custom_attributes(server.address)
        assert attrs["RuntimeTestAttr"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST
        with pytest.raises(SearchAttributeConflictError, match="TicketStatus"):
            await ensure_search_attributes(
                server.address, "default", deadline, {names.TICKET_STATUS_SA: "Int"}
            )


async def test_ensure_search_attributes_times_out_without_a_server() -> None:
    with pytest.raises(TimeoutError, match="did not list"):
        await ensure_search_attributes(f"127.0.0.1:{free_port()}", "default", time.monotonic() + 1)
