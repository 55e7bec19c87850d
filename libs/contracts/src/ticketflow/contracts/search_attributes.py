"""Typed search-attribute keys, for upserts in the workflow and list queries in the API."""

from temporalio.common import SearchAttributeKey

from . import names

TICKET_STATUS = SearchAttributeKey.for_keyword(names.TICKET_STATUS_SA)

# Every key ticketflow upserts or lists by; a Temporal namespace must know each of them.
ALL = (TICKET_STATUS,)
