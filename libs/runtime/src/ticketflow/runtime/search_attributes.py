"""Search attributes: make sure a namespace has the ones ticketflow lists by.

The dev server gets them on its command line; a Temporal cluster that ticketflow did not start gets
them through the operator service (``ensure_search_attributes``), once, idempotently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from ticketflow.contracts import names

__all__ = ["SearchAttributeConflictError", "ensure_search_attributes"]


class SearchAttributeConflictError(RuntimeError):
    """A search attribute ticketflow needs exists with another type."""


async def ensure_search_attributes(
    address: str,
    namespace: str,
    deadline: float,
    attributes: Mapping[str, str] | None = None,
) -> list[str]:
    """Make sure ``attributes`` (default ``names.SEARCH_ATTRIBUTES``) exist in ``namespace``.

    Registers missing ones through the operator service and returns their names (empty when all
    were there). Retries while the server is still starting, until ``deadline``
    (a ``time.monotonic()`` instant). Raises when an attribute exists with another
    type (``SearchAttributeConflictError``), ``TimeoutError`` when the server does not answer in time.
    """
    wanted = dict(names.SEARCH_ATTRIBUTES if attributes is None else attributes)
    types = {
        k: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{_snake_upper(v)}")
        for k, v in wanted.items()
    }
    type_names = {value: name for name, value in IndexedValueType.items()}
    added: list[str] = []
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            remaining = max(1.0, deadline - time.monotonic())
            client = await asyncio.wait_for(
                Client.connect(address, namespace=namespace), timeout=remaining
            )
            listed = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
            have = {**dict(listed.system_attributes), **dict(listed.custom_attributes)}
            for key, kind in types.items():
                if key in have and have[key] != kind:
                    raise SearchAttributeConflictError(
                        f"search attribute {key} exists in namespace {namespace} as "
                        f"{type_names.get(have[key], have[key])}, ticketflow needs {wanted[key]}"
                    )
            missing = {k: v for k, v in types.items() if k not in have}
            if not missing:
                return added
            try:
                await client.operator_service.add_search_attributes(
                    AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
                )
                added.extend(sorted(missing))
            except RPCError as err:
                if err.status != RPCStatusCode.ALREADY_EXISTS:
                    raise
            # Loop once more to confirm they are visible.
        except SearchAttributeConflictError:
            raise
        except Exception as err:  # the server is still starting: retry until the deadline
            last_error = err
            await asyncio.sleep(0.1)
    raise TimeoutError(
        f"Temporal at {address} did not list the search attributes of namespace {namespace} "
        f"in time (last error: {last_error!r})"
    )


def _snake_upper(kind: str) -> str:
    """ "KeywordList" -> "KEYWORD_LIST" (the CLI's type names -> IndexedValueType names)."""
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(kind)).upper()
