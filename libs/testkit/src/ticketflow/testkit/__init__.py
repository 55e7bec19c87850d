"""Test support for ticketflow's packages: a dev-only workspace member, never a runtime dependency.

Every package's tests take shared helpers from here, never from another service or the launcher:
``free_port``; ``eventually`` / ``eventually_async`` (poll with a deadline); real Temporal servers
(``DevServer``, ``start_dev_env``, ``start_time_skipping_env``); ``WorkerFleet`` (in-process
workers, ready once Temporal sees them poll); ``ServiceProcess`` (a console script as a real
process); ``PostgresServer`` (a real PostgreSQL on loopback); ticket factories; the fake agent.
The pytest plugin (``ticketflow.testkit.plugin``) adds the ``dev_env``, ``time_env``,
``worker_fleet``, ``service_process``, ``postgres_server`` and ``postgres_url`` fixtures.
"""

from .agents import FALLBACK_CONFIDENCE, RecordedOutcomes, fake_agent
from .fleet import WorkerFleet, wait_polling, wait_until_polling
from .observe import json_log_lines, metric_value, scrape
from .plugin import BACKENDS, backend_database_url
from .polling import eventually, eventually_async
from .ports import free_port, free_port_block
from .postgres import PostgresServer
from .processes import ServiceProcess, assert_healthcheck_fails, console_script
from .servers import (
    DevServer,
    start_dev_env,
    start_time_skipping_env,
    stop_env,
    time_skipping_server_binary,
)
from .tickets import BASE_TIME, TEST_DECISION_KEYS, fresh_id, new_ticket, outcome, ticket_input

__all__ = [
    "BACKENDS",
    "BASE_TIME",
    "FALLBACK_CONFIDENCE",
    "TEST_DECISION_KEYS",
    "DevServer",
    "PostgresServer",
    "RecordedOutcomes",
    "ServiceProcess",
    "WorkerFleet",
    "assert_healthcheck_fails",
    "backend_database_url",
    "console_script",
    "eventually",
    "eventually_async",
    "fake_agent",
    "free_port",
    "free_port_block",
    "fresh_id",
    "json_log_lines",
    "metric_value",
    "new_ticket",
    "outcome",
    "scrape",
    "start_dev_env",
    "start_time_skipping_env",
    "stop_env",
    "ticket_input",
    "time_skipping_server_binary",
    "wait_polling",
    "wait_until_polling",
]
